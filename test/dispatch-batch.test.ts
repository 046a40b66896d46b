/**
 * Multi-run dispatch jobs: the runs a tick creates for one instant share one pg-boss job; each run
 * of it is claimed, run and recorded once; a transient failure of one run retries it alone.
 */
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, waitFor, TEST_HTTP_SECRET, type TestApp, fetchDispatchJobs } from './support/app.ts';
import { startFakeTarget, type FakeTarget } from './support/http-target.ts';
import { withTransaction } from '../src/db/client.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { dispatchWorker } from '../src/dispatch/worker.ts';
import { retryDispatchJobId } from '../src/dispatch/settle.ts';
import { DISPATCH_BATCH_MAX } from '../src/queue/payloads.ts';
import { dispatchJobs, planDispatchJobs, QUEUES } from '../src/queue/catalog.ts';
import { Scheduler } from '../src/maintenance/tick.ts';
import { getRun } from '../src/runs/read.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { silentLogger } from '../src/log.ts';
import type { FlowInputRaw } from '../src/flows/spec.ts';

let app: TestApp;
let target: FakeTarget;
const calls = new Map<string, number>();

before(async () => {
  app = await startTestApp();
  target = await startFakeTarget(TEST_HTTP_SECRET);
  app.registry.define('count-each', (ctx) => {
    calls.set(ctx.runId, (calls.get(ctx.runId) ?? 0) + 1);
  });
});
after(async () => {
  await target.close();
  await app.close();
});

async function flow(def: FlowInputRaw): Promise<void> {
  await withTransaction(app.pool, (tx) => upsertFlowTx(tx, def));
}

/** Point the flows' schedules at `from` and tick once at `now` without a horizon: the fires in between become runs. */
async function tick(flows: string[], from: Date, now: Date): Promise<void> {
  await app.pool.query(
    `update flowwarden.schedules s set next_run_at = $1, anchor = $1 from flowwarden.flows f where f.id = s.flow_id and f.name = any($2)`,
    [from, flows],
  );
  await new Scheduler({ pool: app.pool, boss: app.boss, log: silentLogger }, { horizonSeconds: 0 }).runOnce({ now });
  await app.pool.query(`update flowwarden.schedules s set enabled = false from flowwarden.flows f where f.id = s.flow_id and f.name = any($1)`, [flows]);
}


const fetchJobsOf = (runIds: string[]) => fetchDispatchJobs(app, runIds, 100);

async function runsOf(flows: string[]): Promise<Array<{ id: string; scheduledFor: Date }>> {
  const { rows } = await app.pool.query<{ id: string; scheduledFor: Date }>(
    `select r.id, r.scheduled_for as "scheduledFor" from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id
      where f.name = any($1) order by r.scheduled_for, r.id`,
    [flows],
  );
  return rows;
}

describe('multi-run dispatch jobs', () => {
  test('planDispatchJobs + dispatchJobs: one job per instant, at most DISPATCH_BATCH_MAX runs each, its id on every run; a run alone keeps a job named after it', () => {
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
    const planned = planDispatchJobs([...Array.from({ length: DISPATCH_BATCH_MAX + 1 }, () => ({ scheduledFor: at(0) })), { scheduledFor: at(1) }]);
    assert.equal(new Set(planned.map((p) => p.id)).size, planned.length, 'each run gets an id of its own');
    const first = planned.slice(0, DISPATCH_BATCH_MAX);
    assert.ok(first[0]!.dispatchJobId && first.every((p) => p.dispatchJobId === first[0]!.dispatchJobId), 'the first 100 runs of the instant share a job id');
    assert.equal(planned[DISPATCH_BATCH_MAX]!.dispatchJobId, null, 'the 101st run of the instant is alone');
    assert.equal(planned.at(-1)!.dispatchJobId, null, 'the run of the other instant is alone');
    // Say the insert created all but the second run (a fire another pod inserted first).
    const created = planned.filter((_, i) => i !== 1);
    const jobs = dispatchJobs(created);
    assert.equal(jobs.length, 3);
    const batch = jobs.find((j) => j.id === first[0]!.dispatchJobId)!;
    assert.deepEqual(batch.data.runIds, first.filter((_, i) => i !== 1).map((p) => p.id), 'the created runs of the batch, in order');
    assert.deepEqual(batch.startAfter, at(0));
    const alone = planned.at(-1)!;
    assert.ok(jobs.some((j) => j.id === alone.id && j.data.runId === alone.id && (j.startAfter as Date).getTime() === at(1).getTime()));
  });

  test('a malformed dispatch payload is refused with a message that says what is wrong', async () => {
    const { DispatchPayload: schema } = await import('../src/queue/payloads.ts');
    const both = schema.safeParse({ runId: '11111111-1111-4111-8111-111111111111', runIds: ['11111111-1111-4111-8111-111111111111'] });
    assert.equal(both.success, false);
    assert.match(JSON.stringify(both.error?.issues), /either runId \(one run\) or runIds \(a batch\)/);
    assert.equal(schema.safeParse({}).success, false);
    assert.equal(schema.safeParse({ runIds: [] }).success, false);
  });

  test('the runs a tick creates for one instant share one job; running it calls each handler once and completes every run', async () => {
    const names = ['batch-a', 'batch-b', 'batch-c'];
    for (const name of names) await flow({ name, target: { type: 'function', handler: 'count-each' }, schedules: [{ name: 's', every: '1s' }] });
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    await tick(names, new Date(now.getTime() - 2000), now);
    const runs = await runsOf(names);
    const instants = new Set(runs.map((r) => r.scheduledFor.getTime()));
    assert.ok(instants.size >= 2 && runs.length === instants.size * 3, `three runs per instant (${runs.length} runs, ${instants.size} instants)`);
    const jobs = await fetchJobsOf(runs.map((r) => r.id));
    assert.equal(jobs.length, instants.size, 'one job per instant');
    const { rows: carried } = await app.pool.query<{ id: string; dispatchJobId: string; jobState: string }>(
      `select run_id as id, (select dispatch_job_id from flowwarden.runs where id = run_id) as "dispatchJobId", job_state as "jobState"
         from flowwarden.v_open_runs where run_id = any($1)`,
      [runs.map((r) => r.id)],
    );
    for (const job of jobs) {
      const ids = job.data.runIds!;
      assert.equal(ids.length, 3);
      for (const id of ids) {
        const c = carried.find((r) => r.id === id);
        assert.equal(c?.dispatchJobId, job.id, 'each run names its multi-run job (runs.dispatch_job_id)');
        assert.equal(c?.jobState, 'active', 'and v_open_runs finds it (fetched by this test)');
      }
      const times = new Set(ids.map((id) => runs.find((r) => r.id === id)!.scheduledFor.getTime()));
      assert.equal(times.size, 1, 'a job carries runs of one instant');
    }
    // Each unit as the pool would call it, all units of all jobs at once (their claims are grouped).
    const units = jobs.flatMap((job) => job.data.runIds!.map((_, unit) => ({ ...job, unit, units: job.data.runIds!.length, signal: new AbortController().signal })));
    await Promise.all(units.map((u) => dispatchWorker.handle(app.deps, u, silentLogger)));
    // Delivered again (a redelivery after a pod died): nothing runs twice.
    await Promise.all(units.map((u) => dispatchWorker.handle(app.deps, { ...u, retryCount: 1 }, silentLogger)));
    for (const r of runs) {
      assert.equal((await getRun(app.pool, r.id))?.stateType, 'COMPLETED');
      assert.equal(calls.get(r.id), 1, `handler of ${r.id} ran once`);
    }
  });

  test('a transient failure of one run of a batch retries that run alone, with the same idempotency key; the others complete', async () => {
    const names = ['flaky-a', 'flaky-b', 'flaky-c'];
    for (const name of names) await flow({ name, target: { type: 'http', url: target.url }, schedules: [{ name: 's', every: '1s' }] });
    const now = new Date(Math.floor(Date.now() / 1000) * 1000 + 500);
    await tick(names, new Date(now.getTime() - 500), now);
    const runs = await runsOf(names);
    assert.equal(runs.length, 3);
    const [job] = await fetchJobsOf(runs.map((r) => r.id));
    assert.equal(job!.data.runIds!.length, 3);
    const n = target.calls.length;
    target.script = [503];
    target.fallback = 200;
    // One unit at a time, so the 503 goes to the first run of the job.
    for (let unit = 0; unit < 3; unit++) {
      await dispatchWorker.handle(app.deps, { ...job!, unit, units: 3, signal: new AbortController().signal }, silentLogger);
    }
    const [first, ...rest] = job!.data.runIds!;
    const failed = await getRun(app.pool, first!);
    assert.equal(`${failed?.stateType}/${failed?.stateName}`, 'PENDING/AwaitingRetry');
    assert.match(failed!.stateMessage!, /attempt 1 failed: .*503/);
    for (const id of rest) assert.equal((await getRun(app.pool, id))?.stateType, 'COMPLETED');
    const retry = await app.boss.getJobById(QUEUES.dispatch, retryDispatchJobId(first!, 1));
    assert.ok(retry, 'a single-run retry job was sent');
    assert.deepEqual(retry.data, { runId: first, attemptOffset: 1 });
    assert.ok(retry.startAfter.getTime() > retry.createdOn.getTime(), 'after a backoff (both Postgres times)');
    assert.equal(retry.retryLimit, job!.retryLimit - 1, 'with the retries the batch had left');
    assert.equal(retry.retryDelay, Math.min(job!.retryDelayMax ?? Infinity, job!.retryDelay * 2), 'its backoff goes on from the next step (pg-boss counts its retries from 0)');
    const runRow = await app.pool.query<{ dispatchJobId: string }>(`select dispatch_job_id as "dispatchJobId" from flowwarden.runs where id = $1`, [first]);
    assert.equal(runRow.rows[0]!.dispatchJobId, retry.id, 'the run names the job that carries it now');
    const open = await app.pool.query<{ job_state: string }>(`select job_state from flowwarden.v_open_runs where run_id = $1`, [first]);
    assert.equal(open.rows[0]!.job_state, 'created', 'v_open_runs shows the retry job');
    // Its delivery completes the run, sending the same idempotency key.
    const [mine] = await fetchJobsOf([first!]);
    assert.equal(mine!.id, retry.id, 'the run is now carried by its retry job');
    await dispatchWorker.handle(app.deps, mine!, silentLogger);
    const done = await getRun(app.pool, first!);
    assert.equal(done?.stateType, 'COMPLETED');
    assert.equal(done?.dispatchAttempt, 1);
    const sent = target.calls.slice(n).filter((c) => c.headers['idempotency-key'] === first);
    assert.equal(sent.length, 2, 'the run was sent twice (503, then 200), with its own id as the key');
  });
  // Last: it starts the app's loops and workers for the rest of this file.
  test('with the workers running, a batch is fetched, each run dispatched once, and the job completed', async () => {
    const names = ['live-a', 'live-b'];
    for (const name of names) await flow({ name, target: { type: 'function', handler: 'count-each' }, schedules: [{ name: 's', every: '1s' }] });
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    await tick(names, new Date(now.getTime() - 1000), now);
    const runs = await runsOf(names);
    await app.start();
    await waitFor(async () => {
      const { rows } = await app.pool.query<{ n: number }>(`select count(*)::int as n from flowwarden.runs where id = any($1) and state_type = 'COMPLETED'`, [runs.map((r) => r.id)]);
      return rows[0]!.n === runs.length;
    }, { what: 'every run of the batch completed' });
    for (const r of runs) assert.equal(calls.get(r.id), 1);
    const { rows } = await app.pool.query<{ state: string; n: number }>(
      `select state, count(*)::int as n from flowwarden_queue.job where name = $1 and data ? 'runIds' and (data->'runIds') ?| $2 group by state`,
      [QUEUES.dispatch, runs.map((r) => r.id)],
    );
    await waitFor(async () => {
      const { rows: left } = await app.pool.query<{ n: number }>(
        `select count(*)::int as n from flowwarden_queue.job where name = $1 and data ? 'runIds' and (data->'runIds') ?| $2 and state <> 'completed'`,
        [QUEUES.dispatch, runs.map((r) => r.id)],
      );
      return left[0]!.n === 0;
    }, { what: 'the batch jobs completed' });
    assert.ok(rows.reduce((n, r) => n + r.n, 0) >= 1, 'the runs travelled in multi-run jobs');
  });


  test('a malformed dispatch job is dropped (completed, not retried forever) and the workers go on', async () => {
    const bad = await app.boss.send(QUEUES.dispatch, { runIds: [] });
    await waitFor(async () => (await app.boss.getJobById(QUEUES.dispatch, bad!))?.state === 'completed', { what: 'the malformed job completed' });
    // A triggered run, not a schedule: the app's own scheduler is live now and would add runs of
    // later fires (due in the future) to whatever a schedule here made.
    await flow({ name: 'after-bad', target: { type: 'function', handler: 'count-each' } });
    const runs = await Promise.all([1, 2].map(async () => ({ id: (await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, 'after-bad', {}))).runId })));
    await waitFor(async () => {
      const { rows } = await app.pool.query<{ n: number }>(`select count(*)::int as n from flowwarden.runs where id = any($1) and state_type = 'COMPLETED'`, [runs.map((r) => r.id)]);
      return rows[0]!.n === runs.length;
    }, { what: 'later runs still dispatched' });
  });
});
