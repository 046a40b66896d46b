/**
 * FLOWWARDEN_READ_URL with a real streaming replica: two local PostgreSQL servers (Debian's, 15 on bookworm), the replica
 * made with pg_basebackup. Lag is made on demand by pausing the replica's WAL replay: reads without
 * a write position see the replica (stale while paused), a client that wrote reads its own write
 * (from the primary while the replica lags, from the replica once it has replayed it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createApp, type App } from '../../src/app.ts';
import { withTransaction } from '../../src/db/client.ts';
import { upsertFlowTx } from '../../src/flows/operations.ts';
import { silentLogger } from '../../src/log.ts';
import { TEST_ADMIN_TOKEN, TEST_READ_TOKEN, testConfig } from '../support/app.ts';
import { runCli } from '../support/cli.ts';
import { createDatabase, startPrimary, startReplica, type PgServer, type Replica } from './servers.ts';

let primary: PgServer;
let replica: Replica;
let app: App;
let base: string;

before(async () => {
  primary = await startPrimary();
  replica = await startReplica(primary);
  await createDatabase(primary, 'fw_replica');
  await replica.catchUp(primary, 'fw_replica');
  app = await createApp({
    config: testConfig({ readUrl: replica.url('fw_replica') }),
    log: silentLogger,
    databaseUrl: primary.url('fw_replica'),
    roles: ['api'],
  });
  base = `${app.address}/api`;
});

after(async () => {
  await app?.stop({ timeoutMs: 1000 });
  await replica?.stop();
  await primary?.stop();
});

const read = { authorization: `Bearer ${TEST_READ_TOKEN}` };
const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json' };

async function getFlow(name: string, headers: Record<string, string> = {}): Promise<{ disabled: boolean }> {
  const res = await fetch(`${base}/flows/${name}`, { headers: { ...read, ...headers } });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as { disabled: boolean };
}

describe('read replica', () => {
  test('reads go to the replica; a lagging replica is stale for others, never for the client that wrote', { timeout: 120_000 }, async () => {
    await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'rp-etl', target: { type: 'function', handler: 'noop' } }));
    await replica.catchUp(primary, 'fw_replica');
    const before = app.reads.served.replica;
    assert.equal((await getFlow('rp-etl')).disabled, false);
    assert.equal(app.reads.served.replica, before + 1, 'the GET read the replica');

    await replica.pauseReplay();
    try {
      const disable = await fetch(`${base}/flows/rp-etl/disable`, { method: 'POST', headers: admin, body: JSON.stringify({ reason: 'replica test' }) });
      assert.equal(disable.status, 200, await disable.clone().text());
      const lsn = disable.headers.get('flowwarden-lsn');
      assert.match(lsn ?? '', /^[0-9A-F]+\/[0-9A-F]+$/, 'a write answers with the primary WAL position');

      // Another client (no position) reads the lagging replica: still enabled there.
      assert.equal((await getFlow('rp-etl')).disabled, false, 'the paused replica has not replayed the disable');
      // The writer, sending its position back, reads from the primary.
      const primaryBefore = app.reads.served.primary;
      assert.equal((await getFlow('rp-etl', { 'flowwarden-lsn': lsn! })).disabled, true);
      assert.equal(app.reads.served.primary, primaryBefore + 1);

      // An operator reactivating with a browser: the cookie carries the position to the next page.
      const reactivate = await fetch(`${base}/flows/rp-etl/reactivate`, { method: 'POST', headers: admin, body: JSON.stringify({ by: 'ops' }) });
      assert.equal(reactivate.status, 200, await reactivate.clone().text());
      const cookie = reactivate.headers.getSetCookie().find((c) => c.startsWith('fw_lsn='));
      assert.ok(cookie, 'a write sets the fw_lsn cookie');
      assert.equal((await getFlow('rp-etl', { cookie: cookie.split(';')[0]! })).disabled, false, 'the operator sees the flow reactivated');
    } finally {
      await replica.resumeReplay();
    }

    // Once the replica has replayed the write, the writer's reads go back to it.
    await replica.catchUp(primary, 'fw_replica');
    const { rows } = await app.pool.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
    const replicaBefore = app.reads.served.replica;
    assert.equal((await getFlow('rp-etl', { 'flowwarden-lsn': rows[0]!.lsn })).disabled, false);
    assert.equal(app.reads.served.replica, replicaBefore + 1, 'a caught-up replica serves the writer');
  });

  test('writes always go to the primary: the replica is read-only', async () => {
    const res = await fetch(`${base}/flows/rp-write`, { method: 'PUT', headers: admin, body: JSON.stringify({ target: { type: 'function', handler: 'noop' } }) });
    assert.equal(res.status, 201, await res.clone().text());
    const c = new pg.Client({ connectionString: replica.url('fw_replica') });
    await c.connect();
    try {
      await assert.rejects(c.query(`insert into flowwarden.flows (name, target) values ('x', '{}')`), /read-only transaction/);
    } finally {
      await c.end();
    }
  });

  test('the CLI list commands read the replica', { timeout: 120_000 }, async () => {
    await replica.catchUp(primary, 'fw_replica');
    await replica.pauseReplay();
    try {
      await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'rp-new', target: { type: 'function', handler: 'noop' } }));
      const env = { DATABASE_URL: primary.url('fw_replica'), FLOWWARDEN_READ_URL: replica.url('fw_replica'), FLOWWARDEN_LOG_LEVEL: 'silent' };
      const stale = await runCli(['flows', 'list', '--json'], env);
      assert.equal(stale.code, 0, stale.stderr);
      const names = (JSON.parse(stale.stdout) as Array<{ name: string }>).map((f) => f.name);
      assert.ok(names.includes('rp-etl') && !names.includes('rp-new'), `the list came from the paused replica: ${names.join(', ')}`);
      const show = await runCli(['flows', 'show', 'rp-new', '--json'], env);
      assert.equal(show.code, 0, `show reads the primary: ${show.stderr}`);
    } finally {
      await replica.resumeReplay();
    }
  });
});
