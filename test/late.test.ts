import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from './support/app.ts';
import { createPool, withTransaction } from '../src/db/client.ts';
import { startBoss } from '../src/queue/boss.ts';
import { silentLogger } from '../src/log.ts';
import { LateSweeper } from '../src/maintenance/late-sweep.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { BOSS_SCHEMA, EVENTS } from '../src/queue/catalog.ts';
import type { FlowInputRaw } from '../src/flows/spec.ts';

let app: TestApp;
const LATE_QUEUE = 'test.run-late';

before(async () => {
  app = await startTestApp();
  await app.boss.createQueue(LATE_QUEUE);
  await app.boss.subscribe(EVENTS.runLate, LATE_QUEUE);
});
after(async () => {
  await app.close();
});

const T0 = new Date('2026-11-22T10:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

async function defineFlow(def: Partial<FlowInputRaw> & { name: string }): Promise<string> {
  const out = await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { target: { type: 'function', handler: 'noop' }, ...def }));
  return out.flow.id;
}

/** Insert `count` runs of a flow in one statement, all scheduled at `scheduledFor`, in the given state. */
async function insertRuns(flowId: string, count: number, scheduledFor: Date, state: [string, string] = ['SCHEDULED', 'Scheduled']): Promise<string[]> {
  const { rows } = await app.pool.query<{ id: string }>(
    `insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, origin)
     select $1, $2, $4, $5, 'schedule' from generate_series(1, $3) returning id`,
    [flowId, scheduledFor, count, state[0], state[1]],
  );
  return rows.map((r) => r.id);
}

async function stateOf(ids: string[]): Promise<Map<string, string>> {
  const { rows } = await app.pool.query<{ id: string; state: string }>(
    `select id, state_type || '/' || state_name as state from flowwarden.runs where id = any($1::uuid[])`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r.state]));
}

async function lateHistoryCounts(ids: string[]): Promise<Map<string, number>> {
  const { rows } = await app.pool.query<{ runId: string; n: number }>(
    `select run_id as "runId", count(*)::int as n from flowwarden.run_state_history
      where run_id = any($1::uuid[]) and to_name = 'Late' group by run_id`,
    [ids],
  );
  return new Map(rows.map((r) => [r.runId, r.n]));
}

/** run.late events for these runs, whether published one per job or in batch jobs ({ batch: [...] }). */
async function lateEventsFor(ids: string[]): Promise<number> {
  const { rows } = await app.pool.query<{ n: number }>(
    `select count(*)::int as n
       from ${BOSS_SCHEMA}.job j
       cross join lateral jsonb_array_elements(case when j.data ? 'batch' then j.data->'batch' else jsonb_build_array(j.data) end) e
      where j.name = $1 and e->>'event' = 'run.late' and e->>'runId' = any($2::text[])`,
    [LATE_QUEUE, ids],
  );
  return rows[0]!.n;
}

describe('late sweep', () => {
  test('runs past the threshold become Late exactly once under two concurrent sweepers, each with a run.late event', async () => {
    const flowId = await defineFlow({ name: 'late-race' });
    const ids = await insertRuns(flowId, 1200, at(-60));
    const pods = await Promise.all(
      [1, 2].map(async () => {
        const pool = createPool(app.db.url, { max: 2 });
        const boss = await startBoss({ connectionString: app.db.url, role: 'producer' });
        // Small batches so the two sweepers interleave many times.
        const sweeper = new LateSweeper({ pool, boss, log: silentLogger }, { lateAfterSeconds: 15, intervalMs: 1000, batchSize: 100 });
        return { pool, boss, sweeper };
      }),
    );
    let results;
    try {
      results = await Promise.all(pods.map((p) => p.sweeper.runOnce({ now: T0 })));
      // A second round finds nothing: marked once, ever.
      const again = await Promise.all(pods.map((p) => p.sweeper.runOnce({ now: at(3600) })));
      assert.deepEqual(again.map((r) => r.marked), [0, 0]);
    } finally {
      for (const p of pods) {
        await p.boss.stop({ graceful: false });
        await p.pool.end();
      }
    }
    assert.equal(results[0]!.marked + results[1]!.marked, 1200, 'the two sweepers split the work without overlap');
    const states = await stateOf(ids);
    assert.equal([...states.values()].filter((s) => s === 'SCHEDULED/Late').length, 1200);
    const history = await lateHistoryCounts(ids);
    assert.equal(history.size, 1200);
    assert.ok([...history.values()].every((n) => n === 1), 'exactly one history row per run');
    assert.equal(await lateEventsFor(ids), 1200, 'one run.late event per run');
  });

  test('dispatched runs (PENDING, RUNNING, COMPLETED) and fresh runs are never marked Late', async () => {
    const flowId = await defineFlow({ name: 'late-dispatched' });
    const pending = await insertRuns(flowId, 3, at(-600), ['PENDING', 'Pending']);
    const running = await insertRuns(flowId, 3, at(-600), ['RUNNING', 'Running']);
    const completed = await insertRuns(flowId, 3, at(-600), ['COMPLETED', 'Completed']);
    const fresh = await insertRuns(flowId, 3, at(-5)); // inside the 15 s default threshold
    const result = await app.lateSweeper.runOnce({ now: T0 });
    const all = [...pending, ...running, ...completed, ...fresh];
    const states = await stateOf(all);
    assert.ok(all.every((id) => !states.get(id)!.endsWith('/Late')), `nothing marked, got ${[...states.values()].join(', ')}`);
    assert.equal((await lateHistoryCounts(all)).size, 0);
    assert.equal(await lateEventsFor(all), 0);
    assert.equal(result.marked, 0);
  });

  test('the per-flow threshold overrides the global default', async () => {
    const patient = await defineFlow({ name: 'late-patient', lateAfter: '5m' });
    const strict = await defineFlow({ name: 'late-strict' });
    const patientRecent = await insertRuns(patient, 1, at(-60));
    const patientOld = await insertRuns(patient, 1, at(-301));
    const strictRecent = await insertRuns(strict, 1, at(-60));
    await app.lateSweeper.runOnce({ now: T0 });
    const states = await stateOf([...patientRecent, ...patientOld, ...strictRecent]);
    assert.equal(states.get(patientRecent[0]!), 'SCHEDULED/Scheduled', '60 s is not late for a 5 min threshold');
    assert.equal(states.get(patientOld[0]!), 'SCHEDULED/Late');
    assert.equal(states.get(strictRecent[0]!), 'SCHEDULED/Late', '60 s is late under the 15 s default');
    const { rows } = await app.pool.query(`select message from flowwarden.run_state_history where run_id = $1 and to_name = 'Late'`, [patientOld[0]]);
    assert.match(rows[0].message, /not started within 300 s/);
  });
});
