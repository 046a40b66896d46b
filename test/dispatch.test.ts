import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { JobWithMetadata } from 'pg-boss';
import { startTestApp, waitFor, TEST_HTTP_SECRET, type TestApp, fetchDispatchJob } from './support/app.ts';
import { startFakeTarget, type FakeTarget } from './support/http-target.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { dispatchWorker } from '../src/dispatch/worker.ts';
import { getRun, runHistory } from '../src/runs/read.ts';
import { setScheduleEnabled } from '../src/queries/flows.ts';
import { silentLogger } from '../src/log.ts';
import { HandedBackError } from '../src/queue/pool.ts';
import type { FlowInputRaw } from '../src/flows/spec.ts';

let app: TestApp;
let target: FakeTarget;
let calls = 0;

before(async () => {
  app = await startTestApp({ config: { httpTimeoutMs: 30_000 } });
  target = await startFakeTarget(TEST_HTTP_SECRET);
  app.registry.define('count', () => {
    calls++;
    return { message: `call ${calls}` };
  });
  // Blocks until aborted on its first call per run (honouring the signal); returns at once after.
  app.registry.define('cut-off-once', async (ctx) => {
    calls++;
    if (blocked.has(ctx.runId)) return { message: 'second call finished' };
    blocked.add(ctx.runId);
    await new Promise<never>((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
  });
});
const blocked = new Set<string>();
after(async () => {
  await target.close();
  await app.close();
});

async function flow(def: FlowInputRaw): Promise<void> {
  await withTransaction(app.pool, (tx) => upsertFlowTx(tx, def));
}

async function trigger(flowName: string, parameters: Record<string, unknown> = {}): Promise<string> {
  const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, flowName, parameters));
  return runId;
}

/** Fetch the run's real dispatch job from pg-boss (ignoring startAfter, as a retry would be later). */
const fetchJob = (runId: string) => fetchDispatchJob(app, runId);

const handle = (job: JobWithMetadata<{ runId: string }>) => dispatchWorker.handle(app.deps, job, silentLogger);

/** Deliver `job`, wait until its handler has started, abort the job's signal with `reason`, and let it settle. */
async function abortMidHandler(job: JobWithMetadata<{ runId: string }>, reason: Error): Promise<void> {
  const controller = new AbortController();
  const before = calls;
  const delivery = handle({ ...job, signal: controller.signal });
  await waitFor(() => calls > before, { what: 'the handler to start' });
  controller.abort(reason);
  await delivery;
}

describe('dispatch', () => {
  test('a job delivered twice calls the function target once', async () => {
    await flow({ name: 'counted', target: { type: 'function', handler: 'count' } });
    const runId = await trigger('counted');
    const job = await fetchJob(runId);
    const before = calls;
    await handle(job);
    await handle(job); // the same delivery again (e.g. a duplicate fetch)
    assert.equal(calls - before, 1);
    const run = await getRun(app.pool, runId);
    assert.equal(run?.stateType, 'COMPLETED');
    const history = await runHistory(app.pool, runId);
    assert.deepEqual(history.map((h) => h.toType), ['SCHEDULED', 'PENDING', 'RUNNING', 'COMPLETED']);
  });

  test('function runs claimed together each record SCHEDULED → PENDING → RUNNING → COMPLETED, in order', async () => {
    await flow({ name: 'counted-batch', target: { type: 'function', handler: 'count' } });
    const runIds = [];
    for (let i = 0; i < 5; i++) runIds.push(await trigger('counted-batch', { i }));
    const jobs = [];
    for (const id of runIds) jobs.push(await fetchJob(id));
    const before = calls;
    // Delivered in the same moment: one group claim moves them all (one row write per run).
    await Promise.all(jobs.map((j) => handle(j)));
    assert.equal(calls - before, 5);
    for (const id of runIds) {
      assert.equal((await getRun(app.pool, id))?.stateType, 'COMPLETED');
      const history = await runHistory(app.pool, id);
      assert.deepEqual(history.map((h) => h.toType), ['SCHEDULED', 'PENDING', 'RUNNING', 'COMPLETED']);
      for (let k = 1; k < history.length; k++) assert.equal(history[k]!.fromType, history[k - 1]!.toType, `history of ${id} is a chain`);
      assert.match(history[1]!.message ?? '', /^dispatch attempt \d+$/);
    }
  });

  test('a function handler that throws fails the run with its message', async () => {
    await flow({ name: 'failing', target: { type: 'function', handler: 'fail' } });
    const runId = await trigger('failing', { message: 'table missing' });
    await handle(await fetchJob(runId));
    const run = await getRun(app.pool, runId);
    assert.equal(run?.stateType, 'FAILED');
    assert.equal(run?.stateMessage, 'table missing');
  });

  test('an unknown handler fails the run at once with a clear message', async () => {
    await flow({ name: 'nohandler', target: { type: 'function', handler: 'does-not-exist' } });
    const runId = await trigger('nohandler');
    await handle(await fetchJob(runId));
    const run = await getRun(app.pool, runId);
    assert.equal(run?.stateType, 'FAILED');
    assert.match(run.stateMessage!, /no handler 'does-not-exist' is registered/);
  });

  test('a function run whose worker died mid-handler is CRASHED on redelivery, not re-run', async () => {
    await flow({ name: 'crashy', target: { type: 'function', handler: 'count' } });
    const runId = await trigger('crashy');
    const job = await fetchJob(runId);
    // Simulate the first attempt getting as far as RUNNING, then the pod dying.
    await app.pool.query(`update flowwarden.runs set state_type = 'RUNNING', state_name = 'Running', dispatch_attempt = 0 where id = $1`, [runId]);
    const before = calls;
    await handle({ ...job, retryCount: 1 });
    assert.equal(calls, before);
    assert.equal((await getRun(app.pool, runId))?.stateType, 'CRASHED');
  });

  test('a function run cut off by the drain deadline goes back to AwaitingRetry and its retried job runs it once more', async () => {
    await flow({ name: 'drained', target: { type: 'function', handler: 'cut-off-once' } });
    const runId = await trigger('drained');
    const job = await fetchJob(runId);
    const before = calls;
    await abortMidHandler(job, new HandedBackError());
    const requeued = await getRun(app.pool, runId);
    assert.deepEqual([requeued?.stateType, requeued?.stateName], ['PENDING', 'AwaitingRetry']);
    assert.match(requeued!.stateMessage!, /^interrupted by pod shutdown \(attempt 1: aborted\); will be retried$/);

    await handle({ ...job, retryCount: 1 }); // the handed-back job, redelivered
    await handle({ ...job, retryCount: 1 }); // and delivered twice: still one more call, not two
    assert.equal(calls - before, 2);
    const history = await runHistory(app.pool, runId);
    assert.deepEqual(history.map((h) => `${h.toType}/${h.toName}`), [
      'SCHEDULED/Scheduled', 'PENDING/Pending', 'RUNNING/Running', 'PENDING/AwaitingRetry', 'PENDING/Pending', 'RUNNING/Running', 'COMPLETED/Completed',
    ]);
  });

  test('a function run whose job expired mid-handler is CRASHED (no hand-back, no retry of the run)', async () => {
    await flow({ name: 'expired', target: { type: 'function', handler: 'cut-off-once' } });
    const runId = await trigger('expired');
    const job = await fetchJob(runId);
    await abortMidHandler(job, new Error('job expired after 3600s'));
    const run = await getRun(app.pool, runId);
    assert.equal(run?.stateType, 'CRASHED');
    assert.match(run.stateMessage!, /gave the run up before the handler finished \(job expiry\)/);
  });

  test('http sync target: signed request, 2xx completes the run', async () => {
    await flow({ name: 'http-sync', target: { type: 'http', url: target.url, mode: 'sync' } });
    target.script = [200];
    const runId = await trigger('http-sync', { day: '2026-11-22' });
    const n = target.calls.length;
    await handle(await fetchJob(runId));
    const call = target.calls[n]!;
    assert.equal(call.signatureValid, true);
    assert.equal(call.headers['idempotency-key'], runId);
    assert.equal(call.body.runId, runId);
    assert.deepEqual(call.body.parameters, { day: '2026-11-22' });
    assert.equal((await getRun(app.pool, runId))?.stateType, 'COMPLETED');
  });

  test('http target with a wrong secret is refused by the endpoint (401) and fails without retry', async () => {
    await flow({ name: 'http-badsig', target: { type: 'http', url: target.url, secret: 'another-secret-0123456789' } });
    const runId = await trigger('http-badsig');
    await handle(await fetchJob(runId));
    const run = await getRun(app.pool, runId);
    assert.equal(run?.stateType, 'FAILED');
    assert.match(run.stateMessage!, /401/);
  });

  test('http async target: 202 leaves the run RUNNING until the endpoint reports back', async () => {
    await flow({ name: 'http-async', target: { type: 'http', url: target.url, mode: 'async' } });
    target.script = [{ status: 202, body: { externalId: 'job-42' } }];
    const runId = await trigger('http-async');
    await handle(await fetchJob(runId));
    const run = await getRun(app.pool, runId);
    assert.equal(run?.stateType, 'RUNNING');
    assert.equal(run?.externalId, 'job-42');
  });

  test('transient failures retry with the same idempotency key, then complete', async () => {
    await flow({ name: 'http-flaky', target: { type: 'http', url: target.url } });
    target.script = [503, 'reset', 200];
    const runId = await trigger('http-flaky');
    const job = await fetchJob(runId);
    const n = target.calls.length;
    await assert.rejects(handle({ ...job, retryCount: 0 }), /503/);
    assert.equal((await getRun(app.pool, runId))?.stateName, 'AwaitingRetry');
    await assert.rejects(handle({ ...job, retryCount: 1 }));
    await handle({ ...job, retryCount: 2 });
    const run = await getRun(app.pool, runId);
    assert.equal(run?.stateType, 'COMPLETED');
    const sent = target.calls.slice(n);
    assert.equal(sent.length, 3);
    assert.ok(sent.every((c) => c.headers['idempotency-key'] === runId));
  });

  test('a 4xx fails the run at once; the last transient attempt fails it too', async () => {
    await flow({ name: 'http-4xx', target: { type: 'http', url: target.url } });
    target.script = [422];
    const runA = await trigger('http-4xx');
    const n = target.calls.length;
    await handle(await fetchJob(runA)); // no throw: permanent, not retried
    assert.equal(target.calls.length - n, 1);
    assert.equal((await getRun(app.pool, runA))?.stateType, 'FAILED');

    target.script = [500];
    const runB = await trigger('http-4xx');
    const job = await fetchJob(runB);
    await handle({ ...job, retryCount: job.retryLimit }); // the last attempt
    const run = await getRun(app.pool, runB);
    assert.equal(run?.stateType, 'FAILED');
    assert.match(run.stateMessage!, /gave up after \d+ attempts/);
  });

  test('overlap skip: a run is Skipped while the previous run of its schedule is RUNNING', async () => {
    await flow({ name: 'no-overlap', target: { type: 'function', handler: 'count' }, schedules: [{ name: 's', every: '1s', overlap: 'skip' }] });
    const now = new Date();
    await app.pool.query(`update flowwarden.schedules s set next_run_at = $1, anchor = $1 from flowwarden.flows f where f.id = s.flow_id and f.name = 'no-overlap'`, [now]);
    await app.scheduler.runOnce({ now });
    const { rows } = await app.pool.query<{ id: string }>(
      `select r.id from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where f.name = 'no-overlap' order by scheduled_for limit 2`,
    );
    const [first, second] = rows.map((r) => r.id);
    await app.pool.query(`update flowwarden.runs set state_type = 'RUNNING', state_name = 'Running' where id = $1`, [first]);
    await handle(await fetchJob(second!));
    const run = await getRun(app.pool, second!);
    assert.equal(run?.stateType, 'CANCELLED');
    assert.equal(run?.stateName, 'Skipped');
    assert.match(run.stateMessage!, /still RUNNING \(overlap: skip\)/);
  });

  test('a schedule-made run of a flow held by the guard is Skipped at dispatch; a manual run of the same flow still runs', async () => {
    await flow({ name: 'held-at-dispatch', target: { type: 'function', handler: 'count' }, schedules: [{ name: 's', every: '1s' }] });
    const now = new Date();
    await app.pool.query(`update flowwarden.schedules s set next_run_at = $1, anchor = $1 from flowwarden.flows f where f.id = s.flow_id and f.name = 'held-at-dispatch'`, [now]);
    await app.scheduler.runOnce({ now });
    const { rows: [made] } = await app.pool.query<{ id: string }>(
      `select r.id from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where f.name = 'held-at-dispatch' order by r.scheduled_for limit 1`,
    );
    const manual = await trigger('held-at-dispatch');
    // Held after its runs were made, as when a hold's cancel (SKIP LOCKED) passed over a run being dispatched.
    await app.pool.query(`update flowwarden.flows set disabled_at = now(), disabled_reason = 'held by the guard: 3 failures in a row' where name = 'held-at-dispatch'`);
    const before = calls;
    await handle(await fetchJob(made!.id));
    const skipped = await getRun(app.pool, made!.id);
    assert.equal(`${skipped?.stateType}/${skipped?.stateName}`, 'CANCELLED/Skipped');
    assert.match(skipped!.stateMessage!, /flow is disabled: held by the guard: 3 failures in a row/);
    await handle(await fetchJob(manual));
    assert.equal((await getRun(app.pool, manual))?.stateType, 'COMPLETED', 'an operator asked for the manual run: it runs');
    assert.equal(calls - before, 1, 'only the manual run called the handler');
    await app.pool.query(`update flowwarden.schedules s set enabled = false from flowwarden.flows f where f.id = s.flow_id and f.name = 'held-at-dispatch'`);
  });

  test('pausing a schedule cancels the runs pre-created for fire times still ahead, not the due ones', async () => {
    await flow({ name: 'paused-later', target: { type: 'function', handler: 'count' }, schedules: [{ name: 's', every: '1s' }] });
    const now = new Date();
    await app.pool.query(`update flowwarden.schedules s set next_run_at = $1, anchor = $1 from flowwarden.flows f where f.id = s.flow_id and f.name = 'paused-later'`, [new Date(now.getTime() - 5000)]);
    await app.scheduler.runOnce({ now });
    const { rows: [sched] } = await app.pool.query<{ id: string }>(`select s.id from flowwarden.schedules s join flowwarden.flows f on f.id = s.flow_id where f.name = 'paused-later'`);
    await withTransaction(app.pool, (tx) => setScheduleEnabled(tx, sched!.id, false, 'maintenance window', new Date()));
    const { rows } = await app.pool.query<{ stateType: string; message: string | null; future: boolean }>(
      `select r.state_type as "stateType", r.state_message as message, r.scheduled_for > now() as future
         from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where f.name = 'paused-later'`,
    );
    const future = rows.filter((r) => r.future);
    const due = rows.filter((r) => !r.future);
    assert.ok(future.length > 0 && due.length > 0);
    assert.ok(future.every((r) => r.stateType === 'CANCELLED' && /schedule paused: maintenance window/.test(r.message ?? '')));
    assert.ok(due.every((r) => r.stateType === 'SCHEDULED'), 'runs already due still run');
  });

  test('workers started for real pick up a due run and complete it', async () => {
    await flow({ name: 'live', target: { type: 'function', handler: 'noop' } });
    await app.start();
    const runId = await trigger('live');
    await waitFor(async () => (await getRun(app.pool, runId))?.stateType === 'COMPLETED', { what: 'run completed' });
  });
});

