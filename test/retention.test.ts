import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, TEST_ADMIN_TOKEN, type TestApp } from './support/app.ts';
import { createPool, withTransaction } from '../src/db/client.ts';
import { silentLogger } from '../src/log.ts';
import { RETENTION_MAX_BATCHES, RetentionSweeper, type RetentionSweepConfig } from '../src/maintenance/retention.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { WORKERS } from '../src/workers/index.ts';
import { ensureQueues, QUEUE_OPTIONS, QUEUES } from '../src/queue/catalog.ts';
import { tableSizes } from '../src/queries/retention.ts';
import type { FlowInputRaw } from '../src/flows/spec.ts';

let app: TestApp;

before(async () => {
  app = await startTestApp();
});
after(async () => {
  await app.close();
});

const T0 = new Date('2026-11-22T10:00:00.000Z');
const DAY = 86_400;
const ago = (seconds: number) => new Date(T0.getTime() - seconds * 1000);

async function defineFlow(def: Partial<FlowInputRaw> & { name: string }): Promise<string> {
  const out = await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { target: { type: 'function', handler: 'noop' }, ...def }));
  return out.flow.id;
}

/** `count` runs of a flow in `state`, created one second apart ending at `createdAt`, each with a history row and a task result. */
async function insertRuns(flowId: string, count: number, createdAt: Date, stateType: string): Promise<string[]> {
  const { rows } = await app.pool.query<{ id: string }>(
    `with r as (
       insert into flowwarden.runs (flow_id, scheduled_for, created_at, state_type, state_name, origin)
       select $1, $2::timestamptz - make_interval(secs => $3 - i), $2::timestamptz - make_interval(secs => $3 - i), $4, initcap($4), 'schedule'
         from generate_series(1, $3) i
       returning id, created_at),
     h as (insert into flowwarden.run_state_history (run_id, to_type, to_name, at) select id, $4, initcap($4), created_at from r),
     t as (insert into flowwarden.task_results (run_id, name, state_type) select id, 'load', $4 from r)
     select id from r order by created_at`,
    [flowId, createdAt, count, stateType],
  );
  return rows.map((r) => r.id);
}

async function surviving(ids: string[]): Promise<Set<string>> {
  const { rows } = await app.pool.query<{ id: string }>(`select id from flowwarden.runs where id = any($1::uuid[])`, [ids]);
  return new Set(rows.map((r) => r.id));
}

async function orphans(): Promise<number> {
  const { rows } = await app.pool.query<{ n: number }>(
    `select (select count(*) from flowwarden.run_state_history h where not exists (select 1 from flowwarden.runs r where r.id = h.run_id))
          + (select count(*) from flowwarden.task_results t where not exists (select 1 from flowwarden.runs r where r.id = t.run_id)) as n`,
  );
  return Number(rows[0]!.n);
}

function sweeper(retention: Partial<RetentionSweepConfig>, pool = app.pool): RetentionSweeper {
  const config: RetentionSweepConfig = {
    maxConsecutiveFailures: 3,
    runSeconds: 7 * DAY, notifySeconds: 7 * DAY, keepRuns: 20, intervalMs: 60_000, batchSize: 1000, maxBatches: RETENTION_MAX_BATCHES, ...retention,
  };
  return new RetentionSweeper({ pool, log: silentLogger }, config);
}

describe('retention sweep', () => {
  test('expired finished runs go with their history and task results; open runs, recent runs and the newest keepRuns terminal runs stay', async () => {
    const flowId = await defineFlow({ name: 'ret-basic' });
    const oldCompleted = await insertRuns(flowId, 50, ago(10 * DAY), 'COMPLETED');
    const oldCancelled = await insertRuns(flowId, 5, ago(10 * DAY - 100), 'CANCELLED');
    const oldOpen = [
      ...(await insertRuns(flowId, 2, ago(30 * DAY), 'SCHEDULED')),
      ...(await insertRuns(flowId, 2, ago(30 * DAY), 'PENDING')),
      ...(await insertRuns(flowId, 2, ago(30 * DAY), 'RUNNING')),
    ];
    const recent = await insertRuns(flowId, 10, ago(3600), 'FAILED');

    const result = await sweeper({ keepRuns: 20, batchSize: 7 }).runOnce({ now: T0 });

    const left = await surviving([...oldCompleted, ...oldCancelled, ...oldOpen, ...recent]);
    // keepRuns 20: the 10 recent runs and the newest 10 old COMPLETED runs are the newest 20 terminal runs.
    assert.deepEqual(oldCompleted.filter((id) => left.has(id)), oldCompleted.slice(40));
    assert.ok(oldCancelled.every((id) => !left.has(id)), 'expired CANCELLED runs go (the guard never counts them)');
    assert.ok(oldOpen.every((id) => left.has(id)), 'open runs are never deleted, however old');
    assert.ok(recent.every((id) => left.has(id)));
    assert.equal(result.runs, 45);
    assert.equal(result.run_state_history, 45);
    assert.equal(result.task_results, 45);
    assert.ok(result.batches > 6, `deleted in bounded batches of 7 (${result.batches} batches)`);
    assert.equal(await orphans(), 0);
    // Nothing more to do: a second pass deletes nothing.
    assert.equal((await sweeper({ keepRuns: 20, batchSize: 7 }).runOnce({ now: T0 })).runs, 0);
  });

  test('a pass started as the pod drains deletes nothing: the sweep stops at its next batch once the signal aborts', async () => {
    const flowId = await defineFlow({ name: 'ret-drain' });
    const old = await insertRuns(flowId, 30, ago(10 * DAY), 'COMPLETED');
    const draining = new AbortController();
    draining.abort();
    const cut = await sweeper({ keepRuns: 0, batchSize: 5 }).runOnce({ now: T0, signal: draining.signal });
    assert.deepEqual({ runs: cut.runs, batches: cut.batches }, { runs: 0, batches: 0 });
    assert.equal((await surviving(old)).size, 30, 'nothing was deleted after the drain began');
    // Aborted during a pass (after its first batch, as the drain would): it stops there.
    const midway = new AbortController();
    const stopping = new RetentionSweeper(
      { pool: app.pool, log: silentLogger, metrics: { retentionDeleted: (table) => { if (table === 'runs') midway.abort(); } } },
      { maxConsecutiveFailures: 3, runSeconds: 7 * DAY, notifySeconds: 7 * DAY, keepRuns: 0, intervalMs: 60_000, batchSize: 5, maxBatches: RETENTION_MAX_BATCHES },
    );
    const part = await stopping.runOnce({ now: T0, signal: midway.signal });
    assert.deepEqual({ runs: part.runs, batches: part.batches }, { runs: 5, batches: 1 }, 'one batch, then the abort stopped the pass');
    assert.ok((await surviving(old)).size >= 25, 'at most one batch of them went (expired runs of other tests may go first)');
    const full = await sweeper({ keepRuns: 0, batchSize: 5 }).runOnce({ now: T0 });
    assert.ok(full.runs >= 25, 'the next pass (another pod, or after restart) deletes them');
  });

  test("a flow's maxConsecutiveFailures raises keepRuns, and the evidence runs of an open hold are kept; disabled_flows is never deleted", async () => {
    const flowId = await defineFlow({ name: 'ret-guard', health: { maxConsecutiveFailures: 8 } });
    const failed = await insertRuns(flowId, 30, ago(20 * DAY), 'FAILED');
    const evidence = failed.slice(0, 2);
    await app.pool.query(
      `insert into flowwarden.disabled_flows (flow_id, flow_name, reason, rule, evidence, disabled_at, reactivated_at, reactivated_by) values
         ($1, 'ret-guard', 'old', 'manual', '{}', $3, $5, 'ops'), ($1, 'ret-guard', '8 consecutive failures', 'consecutive_failures', $2, $4, null, null)`,
      [flowId, { runIds: evidence }, ago(40 * DAY), ago(20 * DAY), ago(39 * DAY)],
    );

    await sweeper({ keepRuns: 1 }).runOnce({ now: T0 });

    const left = await surviving(failed);
    assert.deepEqual(failed.filter((id) => left.has(id)), [...evidence, ...failed.slice(22)], 'the open hold\'s evidence and the newest 8 (the flow\'s streak length)');
    const { rows } = await app.pool.query(`select count(*)::int as n from flowwarden.disabled_flows where flow_name = 'ret-guard'`);
    assert.equal(rows[0].n, 2, 'the guard history is an audit log: kept');
  });

  test("a flow's health.retention overrides the global window, also when the global window keeps forever", async () => {
    const keeper = await defineFlow({ name: 'ret-keeper', health: { retention: '30d' } });
    const brief = await defineFlow({ name: 'ret-brief', health: { retention: '1h' } });
    const plain = await defineFlow({ name: 'ret-plain' });
    const keeperRuns = await insertRuns(keeper, 5, ago(10 * DAY), 'COMPLETED');
    const briefRuns = await insertRuns(brief, 5, ago(2 * 3600), 'COMPLETED');
    const plainRuns = await insertRuns(plain, 5, ago(400 * DAY), 'COMPLETED');

    await sweeper({ runSeconds: 0, keepRuns: 0 }).runOnce({ now: T0 });

    const left = await surviving([...keeperRuns, ...briefRuns, ...plainRuns]);
    assert.ok(keeperRuns.every((id) => left.has(id)), '10 days old is inside a 30 d window');
    // keepRuns 0 still keeps the guard's streak (maxConsecutiveFailures, 3 by default).
    assert.deepEqual(briefRuns.filter((id) => left.has(id)), briefRuns.slice(2), '2 h old is outside a 1 h window; the newest 3 are the streak');
    assert.ok(plainRuns.every((id) => left.has(id)), 'FLOWWARDEN_RUN_RETENTION_SECONDS=0 keeps forever');
  });

  test('two sweepers split the work without waiting on each other, and a run locked by another transaction is skipped, not waited on', async () => {
    const flowId = await defineFlow({ name: 'ret-race' });
    const runs = await insertRuns(flowId, 600, ago(30 * DAY), 'COMPLETED');
    const pools = [createPool(app.db.url, { max: 2 }), createPool(app.db.url, { max: 2 })];
    const locker = await app.pool.connect();
    try {
      await locker.query('begin');
      await locker.query(`select id from flowwarden.runs where id = $1 for update`, [runs[0]]);
      const count = async () => Number((await app.pool.query(`select count(*) as n from flowwarden.runs`)).rows[0].n);
      const before = await count();
      const results = await Promise.all(pools.map((p) => sweeper({ keepRuns: 0, batchSize: 50 }, p).runOnce({ now: T0 })));
      assert.equal(results[0]!.runs + results[1]!.runs, before - (await count()), 'each deletion counted once');
      // The flow's newest 3 (the default streak length) stay too.
      assert.deepEqual([...(await surviving(runs))].sort(), [runs[0]!, ...runs.slice(597)].sort(), 'the locked run skipped');
      await locker.query('commit');
      assert.equal((await sweeper({ keepRuns: 0 }).runOnce({ now: T0 })).runs, 1, 'the next pass takes it');
    } finally {
      await locker.query('rollback').catch(() => undefined);
      locker.release();
      for (const p of pools) await p.end();
    }
  });

  test('delivered and failed notifications past the window go; pending messages and unfolded events stay', async () => {
    const { rows: ch } = await app.pool.query<{ id: string }>(`insert into flowwarden.notification_channels (name, kind) values ('ret-chat', 'console') returning id`);
    const channel = ch[0]!.id;
    const { rows: msgs } = await app.pool.query<{ id: string; status: string }>(
      `insert into flowwarden.notification_messages (channel_id, text, chunks, chunks_total, status, created_at)
       select $1, s, '[]', 1, s, $2 from unnest(array['delivered', 'failed', 'pending']) s returning id, status`,
      [channel, ago(8 * DAY)],
    );
    const msg = Object.fromEntries(msgs.map((m) => [m.status, m.id]));
    await app.pool.query(
      `insert into flowwarden.notification_events (channel_id, event, text, created_at, message_id) values
         ($1, 'run.failed', 'folded-delivered', $2, $3), ($1, 'run.failed', 'folded-pending', $2, $4), ($1, 'run.failed', 'unfolded', $2, null),
         ($1, 'run.failed', 'recent', $5, $3)`,
      [channel, ago(8 * DAY), msg.delivered, msg.pending, ago(3600)],
    );
    const result = await sweeper({}).runOnce({ now: T0 });
    assert.equal(result.notification_messages, 2);
    assert.equal(result.notification_events, 1);
    const left = await app.pool.query<{ status: string }>(`select status from flowwarden.notification_messages where channel_id = $1`, [channel]);
    assert.deepEqual(left.rows.map((r) => r.status), ['pending']);
    const events = await app.pool.query<{ text: string }>(`select text from flowwarden.notification_events where channel_id = $1 order by id`, [channel]);
    assert.deepEqual(events.rows.map((r) => r.text), ['folded-pending', 'unfolded', 'recent']);
  });

  test("the app's sweep counts deleted rows per table in flowwarden_retention_deleted_rows_total", async () => {
    const flowId = await defineFlow({ name: 'ret-metric' });
    await insertRuns(flowId, 30, ago(3650 * DAY), 'COMPLETED');
    const result = await app.retentionSweeper.runOnce();
    assert.ok(result.runs >= 10, `the default keeps the newest 20 (deleted ${result.runs})`);
    const body = await app.deps.metrics.registry.getSingleMetricAsString('flowwarden_retention_deleted_rows_total');
    assert.match(body, new RegExp(`flowwarden_retention_deleted_rows_total\\{table="runs"\\} ${result.runs}\\b`));
  });

  test('FLOWWARDEN_JOB_RETENTION_SECONDS sets deleteAfterSeconds on every flowwarden queue', async () => {
    await ensureQueues(app.boss, { jobRetentionSeconds: 7200 });
    for (const w of WORKERS) assert.equal((await app.boss.getQueue(w.queue))?.deleteAfterSeconds, 7200, w.queue);
    await ensureQueues(app.boss);
    const dispatch = WORKERS[0]!;
    assert.equal((await app.boss.getQueue(dispatch.queue))?.deleteAfterSeconds, QUEUE_OPTIONS[dispatch.queue].deleteAfterSeconds, 'unset: each queue keeps its own');
  });

  test("the dispatch queue's pg-boss notify is off (its pool wakes on flowwarden's own channel), also where an older version turned it on", async () => {
    await app.boss.updateQueue(QUEUES.dispatch, { notify: true });
    await ensureQueues(app.boss);
    assert.equal((await app.boss.getQueue(QUEUES.dispatch))?.notify, false);
    assert.equal((await app.boss.getQueue(QUEUES.poll))?.notify, true, 'queues pg-boss workers consume keep it');
  });

  test('table sizes list the runs table and the database size', async () => {
    const sizes = await tableSizes(app.pool);
    assert.ok(sizes.databaseBytes > 0);
    const runs = sizes.tables.find((t) => t.table === 'flowwarden.runs');
    assert.ok(runs && runs.totalBytes > 0);
    assert.ok(sizes.tables.some((t) => t.table.startsWith('flowwarden_queue.')));
  });

  test("the admin overview shows the retention settings in force and the largest tables", async () => {
    const login = await app.api!.inject({ method: 'POST', url: '/admin/login', payload: `token=${TEST_ADMIN_TOKEN}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const res = await app.api!.inject({ url: '/admin', headers: { cookie } });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /Retention and storage/);
    assert.match(res.body, /finished runs kept<\/td><td>7d<\/td>/);
    assert.match(res.body, /flowwarden\.runs<\/td>/);
  });
});
