/**
 * The connection budget (FLOWWARDEN_MAX_CONNECTIONS, src/db/topology.ts): how it splits by role
 * and setting, and a pod under load never holding more sessions than it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { connectionBudget, migrationUrl } from '../src/db/topology.ts';
import { loadConfig } from '../src/config.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { startTestApp, waitFor, TEST_READ_TOKEN, type TestApp } from './support/app.ts';

const base = { poolMode: 'session' as const, directUrl: undefined, readUrl: undefined, maxConnections: undefined, concurrency: 10 };

describe('connectionBudget', () => {
  test('without a budget: the sizes flowwarden always used, plus the two LISTEN connections', () => {
    assert.deepEqual(connectionBudget(base), { main: 15, boss: 12, listen: 1, bossListen: 1, read: 0, total: 29 });
  });

  test('a budget is split by role and never exceeded', () => {
    for (const maxConnections of [11, 12, 20, 50, 200]) {
      for (const roles of [['all'], ['worker'], ['api'], ['scheduler'], ['api', 'worker']] as const) {
        for (const poolMode of ['session', 'transaction'] as const) {
          for (const readUrl of [undefined, 'postgres://replica/db']) {
            const b = connectionBudget({ ...base, poolMode, readUrl, maxConnections, concurrency: 4 }, [...roles]);
            assert.equal(b.total, maxConnections, JSON.stringify({ maxConnections, roles, poolMode, readUrl, b }));
            assert.ok(b.main >= 2 && b.boss >= 2, JSON.stringify(b));
          }
        }
      }
    }
  });

  test('transaction mode opens no LISTEN unless a direct URL is given; the api role alone listens to nothing', () => {
    assert.equal(connectionBudget({ ...base, poolMode: 'transaction' }).listen, 0);
    assert.equal(connectionBudget({ ...base, poolMode: 'transaction' }).bossListen, 0);
    assert.equal(connectionBudget({ ...base, poolMode: 'transaction', directUrl: 'postgres://primary/db' }).listen, 1);
    assert.equal(connectionBudget(base, ['api']).listen + connectionBudget(base, ['api']).bossListen, 0);
  });

  test('a budget too small for the roles is refused with what it needs', () => {
    assert.throws(() => connectionBudget({ ...base, maxConnections: 6, concurrency: 10 }), /FLOWWARDEN_MAX_CONNECTIONS=6 is too small for roles all: they need at least 10 \(main pool 6, pg-boss 2, LISTEN 2\)/);
    assert.throws(() => loadConfig({ FLOWWARDEN_MAX_CONNECTIONS: '3' }), /FLOWWARDEN_MAX_CONNECTIONS/);
    assert.throws(() => loadConfig({ FLOWWARDEN_POOL_MODE: 'statement' }), /FLOWWARDEN_POOL_MODE: must be 'session'/);
  });
});

test('migrations use FLOWWARDEN_DIRECT_URL; in transaction mode without it they are refused with the fix', () => {
  assert.equal(migrationUrl({ poolMode: 'session', directUrl: undefined }, 'postgres://db/x'), 'postgres://db/x');
  assert.equal(migrationUrl({ poolMode: 'transaction', directUrl: 'postgres://primary/x' }, 'postgres://bouncer/x'), 'postgres://primary/x');
  assert.throws(() => migrationUrl({ poolMode: 'transaction', directUrl: undefined }, 'postgres://bouncer/x'), /set FLOWWARDEN_DIRECT_URL to a direct connection to the primary/);
});

describe('a pod under load', () => {
  const BUDGET = 10;
  let app: TestApp;
  let probe: pg.Client;
  before(async () => {
    app = await startTestApp({ config: { maxConnections: BUDGET, concurrency: 20 }, start: true });
    probe = new pg.Client({ connectionString: app.db.url });
    await probe.connect();
  });
  after(async () => {
    await probe?.end();
    await app?.close();
  });

  test(`never holds more than FLOWWARDEN_MAX_CONNECTIONS=${BUDGET} sessions`, { timeout: 120_000 }, async (t) => {
    assert.equal(app.budget.total, BUDGET);
    await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'budget', target: { type: 'function', handler: 'sleep' } }));
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      ids.push((await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, 'budget', { ms: 20 }, { origin: 'manual' }))).runId);
    }
    let peak = 0;
    const sessions = async () => {
      const { rows } = await probe.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`);
      peak = Math.max(peak, rows[0]!.n);
    };
    // API reads in parallel with the dispatch load.
    const reads = Promise.all(Array.from({ length: 40 }, () =>
      fetch(`${app.address}/api/runs?flow=budget&limit=50`, { headers: { authorization: `Bearer ${TEST_READ_TOKEN}` } }).then((r) => r.arrayBuffer())));
    await waitFor(async () => {
      await sessions();
      const { rows } = await probe.query<{ n: number }>(`select count(*)::int as n from flowwarden.runs where id = any($1::uuid[]) and state_type = 'COMPLETED'`, [ids]);
      return rows[0]!.n === ids.length;
    }, { timeoutMs: 110_000, what: '200 runs completed' });
    await reads;
    await sessions();
    t.diagnostic(`peak ${peak} sessions (budget ${BUDGET}: ${JSON.stringify(app.budget)})`);
    assert.ok(peak <= BUDGET, `peak ${peak} sessions > budget ${BUDGET}`);
    assert.ok(peak >= 4, `the load used the pools (peak ${peak})`);
  });
});
