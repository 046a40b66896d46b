import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import type { JobWithMetadata } from 'pg-boss';
import { startTestApp, upsertFlow, usePrefect, waitFor, type TestApp } from './support/app.ts';
import { startFakePrefect, type FakePrefect, type FakeStep } from './support/fake-prefect.ts';
import { createPool, withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { dispatchWorker } from '../src/dispatch/worker.ts';
import { deferredDispatchJobId } from '../src/dispatch/settle.ts';
import { pollWorker } from '../src/workers/poll.ts';
import { pollJobId, sendPoll } from '../src/runs/poll-jobs.ts';
import { BOSS_SCHEMA, QUEUES } from '../src/queue/catalog.ts';
import { getRun, runHistory, runTasks } from '../src/runs/read.ts';
import { type RunRow } from '../src/types.ts';
import { createLogger, silentLogger } from '../src/log.ts';
import { isTerminal } from '../src/runs/states.ts';
import { startBoss } from '../src/queue/boss.ts';
import { createPrefectClient, prefectIdempotencyKey, type PrefectClient } from '../src/prefect/client/index.ts';
import { createPrefectConnector, type PrefectConnector } from '../src/prefect/connector.ts';
import { PrefectWatcher } from '../src/maintenance/prefect-watch.ts';
import { listOpenWatchedRuns } from '../src/queries/prefect.ts';
import { RateLimitedError } from '../src/errors.ts';
import type { FlowInputRaw } from '../src/flows/spec.ts';
import type { FlowRow } from '../src/queries/flows.ts';
import { requireFlow } from '../src/queries/flows.ts';
import { evaluateFlowHealth } from '../src/guard/health.ts';
import { disableFlowTx, reactivateFlowTx } from '../src/guard/operations.ts';
import { healthWorker } from '../src/workers/health.ts';
import { guardFailureHook } from '../src/guard/health.ts';


let app: TestApp;
let fake: FakePrefect;
let connector: PrefectConnector;

before(async () => {
  fake = await startFakePrefect();
  app = await startTestApp({
    config: {
      httpTimeoutMs: 400,
      prefect: { apiUrl: fake.apiUrl, apiKey: fake.apiKey, pollIntervalSeconds: 0.05 },
    },
  });
  assert.ok(app.prefect, 'PREFECT_API_URL set → the Prefect connector is installed');
  connector = app.prefect.connector;
});
after(async () => {
  await app.close();
  await fake.close();
});

const flow = (def: FlowInputRaw): Promise<FlowRow> => upsertFlow(app, def);

async function trigger(flowName: string, parameters: Record<string, unknown> = {}): Promise<string> {
  const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, flowName, parameters));
  return runId;
}

function dispatchJob(runId: string, attempt: number): JobWithMetadata<{ runId: string }> {
  return {
    id: runId, name: QUEUES.dispatch, data: { runId }, retryCount: attempt, retryLimit: 5,
    signal: new AbortController().signal,
  } as unknown as JobWithMetadata<{ runId: string }>;
}

const dispatch = (runId: string, attempt = 0) => dispatchWorker.handle(app.deps, dispatchJob(runId, attempt), silentLogger);

async function run(runId: string): Promise<RunRow> {
  const r = await getRun(app.pool, runId);
  assert.ok(r, `run ${runId} exists`);
  return r;
}

/** Work the poll queue the way a worker does (fetch, handle, complete) until the run is terminal. */
async function pollUntilDone(runId: string): Promise<RunRow> {
  return waitFor(async () => {
    const jobs = await app.boss.fetch<{ runId: string; polls: number }>(QUEUES.poll, { includeMetadata: true, batchSize: 10 });
    for (const job of jobs) {
      await pollWorker.handle(app.deps, { ...job, signal: new AbortController().signal }, silentLogger);
      await app.boss.complete(QUEUES.poll, job.id);
    }
    const r = await run(runId);
    return isTerminal(r.stateType) ? r : false;
  }, { timeoutMs: 15_000, what: `run ${runId} to finish` });
}

function flowRunsOf(deploymentId: string) {
  return [...fake.state.flowRuns.values()].filter((r) => r.deployment_id === deploymentId);
}

describe('prefect target', () => {
  test('a dispatch retried after a timeout and a lost response creates exactly one Prefect flow run', async () => {
    const dep = fake.addDeployment({ flowName: 'etl', name: 'prod', runScript: [{ type: 'RUNNING' }, { type: 'COMPLETED' }] });
    await flow({
      name: 'pf-retry',
      target: { type: 'prefect', deployment: 'etl/prod', tags: ['nightly'], jobVariables: { image: 'etl:1' } },
    });
    const runId = await trigger('pf-retry', { date: '2026-01-01' });

    // Attempt 1: Prefect never answers: the client times out (transient) and the queue will retry.
    fake.failNext('create_flow_run', 'timeout');
    await assert.rejects(dispatch(runId, 0), /timed out/);
    assert.equal((await run(runId)).stateName, 'AwaitingRetry');
    assert.equal(flowRunsOf(dep.id).length, 0);

    // Attempt 2: Prefect creates the run but the response is lost on the way back.
    let lose = true;
    const real = connector.client;
    const lossy: PrefectClient = {
      ...real,
      async createFlowRun(...args) {
        const out = await real.createFlowRun(...args);
        if (lose) {
          lose = false;
          throw new Error('Prefect POST create_flow_run: network error (ECONNRESET)');
        }
        return out;
      },
    };
    usePrefect(app, createPrefectConnector({ client: lossy, config: app.config, log: silentLogger }));
    try {
      await assert.rejects(dispatch(runId, 1), /ECONNRESET/);
      assert.equal(flowRunsOf(dep.id).length, 1, 'the lost attempt did create the Prefect run');
      // Attempt 3: same idempotency key → Prefect answers 200 with the run it has.
      await dispatch(runId, 2);
    } finally {
      usePrefect(app, connector);
    }

    const created = flowRunsOf(dep.id);
    assert.equal(created.length, 1, 'one Prefect flow run for one flowwarden run');
    const fr = created[0]!;
    assert.deepEqual(fake.requestsTo('create_flow_run').map((r) => r.status), ['timeout', 201, 200]);
    assert.equal(fr.idempotency_key, prefectIdempotencyKey(dep.id, runId));
    assert.deepEqual(fr.parameters, { date: '2026-01-01' });
    assert.ok(fr.tags.includes('nightly') && fr.tags.includes('flowwarden'));
    assert.deepEqual(fr.job_variables, { image: 'etl:1' });

    const r = await run(runId);
    assert.equal(r.stateType, 'RUNNING');
    assert.equal(r.externalId, fr.id);
    const done = await pollUntilDone(runId);
    assert.equal(done.stateType, 'COMPLETED');
  });

  const terminalCases: Array<{ state: 'COMPLETED' | 'FAILED' | 'CRASHED' | 'CANCELLED'; script: FakeStep[]; message?: string }> = [
    { state: 'COMPLETED', script: [{ type: 'PENDING' }, { type: 'RUNNING' }, { type: 'COMPLETED', message: 'All states completed.' }], message: 'All states completed.' },
    {
      state: 'FAILED',
      // AwaitingRetry is a SCHEDULED state in Prefect: not terminal, and it does not move our RUNNING run back.
      script: [{ type: 'RUNNING' }, { type: 'SCHEDULED', name: 'AwaitingRetry' }, { type: 'RUNNING', name: 'Retrying' }, { type: 'FAILED', message: 'Flow run encountered an exception: dbt failed' }],
      message: 'Flow run encountered an exception: dbt failed',
    },
    { state: 'CRASHED', script: [{ type: 'RUNNING' }, { type: 'CRASHED', message: 'Flow run infrastructure exited with non-zero status code 137.' }], message: 'Flow run infrastructure exited with non-zero status code 137.' },
    { state: 'CANCELLED', script: [{ type: 'RUNNING' }, { type: 'CANCELLING' }, { type: 'CANCELLED', message: 'Cancelled by user.' }], message: 'Cancelled by user.' },
  ];
  for (const c of terminalCases) {
    test(`polling follows a Prefect flow run to ${c.state} with Prefect's message`, async () => {
      const name = `to-${c.state.toLowerCase()}`;
      const dep = fake.addDeployment({ flowName: name, name: 'd', runScript: c.script });
      await flow({ name, target: { type: 'prefect', deployment: dep.id } });
      const runId = await trigger(name);
      await dispatch(runId);
      const fr = flowRunsOf(dep.id)[0]!;
      if (c.state === 'FAILED') {
        fake.addTaskRun(fr.id, { name: 'extract', state: { type: 'COMPLETED' } });
        fake.addTaskRun(fr.id, { name: 'run_dbt', state: { type: 'FAILED', message: 'Database Error in model orders' } });
      }
      const done = await pollUntilDone(runId);
      assert.equal(done.stateType, c.state);
      assert.equal(done.stateMessage, c.message);
      const history = await runHistory(app.pool, runId);
      assert.deepEqual(history.at(-1)?.toType, c.state);
      assert.ok(!history.some((h) => h.toType === 'SCHEDULED' && h.fromType === 'RUNNING'), 'never regressed');
      if (c.state === 'FAILED') {
        const tasks = await runTasks(app.pool, runId);
        assert.deepEqual(
          tasks.map((t) => [t.name, t.stateType, t.message]).sort(),
          [['extract', 'COMPLETED', null], ['run_dbt', 'FAILED', 'Database Error in model orders']],
        );
        assert.ok(history.some((h) => h.toName === 'Retrying'), 'the retry is mirrored as RUNNING/Retrying');
      }
      if (c.state === 'CANCELLED') assert.ok(history.some((h) => h.toName === 'Cancelling'));
    });
  }

  test('hitting maxPolls fails the run as TimedOut and leaves the Prefect run alone', async () => {
    const dep = fake.addDeployment({ flowName: 'slow', name: 'd', runScript: [{ type: 'RUNNING' }] });
    await flow({ name: 'slow', target: { type: 'prefect', deployment: 'slow/d', maxPolls: 3, pollIntervalSeconds: 0.05 } });
    const runId = await trigger('slow');
    await dispatch(runId);
    const fr = flowRunsOf(dep.id)[0]!;
    const done = await pollUntilDone(runId);
    assert.equal(done.stateType, 'FAILED');
    assert.equal(done.stateName, 'TimedOut');
    assert.match(done.stateMessage ?? '', /still Running after 3 polls/);
    assert.match(done.stateMessage ?? '', /left the Prefect run alone/);
    assert.equal(fake.requestsTo((m, p) => m === 'GET' && p === `/flow_runs/${fr.id}`).length, 3);
    assert.equal(fake.state.flowRuns.get(fr.id)?.state_type, 'RUNNING', 'nothing was cancelled in Prefect');
  });

  test('poll jobs are idempotent: a duplicate is not enqueued and a poll of a finished run does nothing', async () => {
    const dep = fake.addDeployment({ flowName: 'idem', name: 'd', runScript: [{ type: 'COMPLETED' }] });
    await flow({ name: 'idem', target: { type: 'prefect', deployment: dep.id } });
    const runId = await trigger('idem');
    await dispatch(runId);
    await dispatch(runId, 1); // a duplicate delivery of the dispatch: no second run, no second poll
    assert.equal(flowRunsOf(dep.id).length, 1);
    await withTransaction(app.pool, (tx) => sendPoll(app.boss, tx, runId, 0, 0));
    const { rows } = await app.pool.query<{ n: number }>(
      `select count(*)::int as n from ${BOSS_SCHEMA}.job where name = $1 and data->>'runId' = $2`,
      [QUEUES.poll, runId],
    );
    assert.equal(rows[0]!.n, 1);
    assert.equal(pollJobId(runId, 0), pollJobId(runId, 0));
    assert.notEqual(pollJobId(runId, 0), pollJobId(runId, 1));
    await pollUntilDone(runId);
    const reads = fake.requestsTo('GET /flow_runs/:id').length;
    const again = await connector.poll(app.deps, { runId, polls: 0 }, { log: silentLogger });
    assert.equal(again.kind, 'noop');
    assert.equal(fake.requestsTo('GET /flow_runs/:id').length, reads, 'no Prefect call for a finished run');
  });

  test('an unknown or malformed deployment reference fails the run with a clear message', async () => {
    await flow({ name: 'missing-dep', target: { type: 'prefect', deployment: 'nope/missing' } });
    const a = await trigger('missing-dep');
    await dispatch(a);
    const ra = await run(a);
    assert.equal(ra.stateType, 'FAILED');
    assert.match(ra.stateMessage ?? '', /'nope\/missing' not found.*check the flow and deployment names/);

    await flow({ name: 'bad-ref', target: { type: 'prefect', deployment: 'just-a-name' } });
    const b = await trigger('bad-ref');
    await dispatch(b);
    assert.match((await run(b)).stateMessage ?? '', /use a deployment id \(UUID\) or 'flow-name\/deployment-name'/);
  });

  test('a short 429 Retry-After is waited out inside the poll; a long one goes back to the queue', async () => {
    const dep = fake.addDeployment({ flowName: 'limited', name: 'd', runScript: [{ type: 'RUNNING' }, { type: 'RUNNING' }, { type: 'COMPLETED' }] });
    await flow({ name: 'limited', target: { type: 'prefect', deployment: dep.id } });
    const runId = await trigger('limited');
    await dispatch(runId);
    const fr = flowRunsOf(dep.id)[0]!;
    const route = `GET /flow_runs/${fr.id}`;

    fake.failNext(route, '429', 1, { retryAfter: '0.3' });
    const t0 = performance.now();
    const first = await connector.poll(app.deps, { runId, polls: 0 }, { log: silentLogger });
    assert.equal(first.kind, 'waiting');
    assert.ok(performance.now() - t0 >= 280, 'waited as long as Retry-After asked');
    assert.deepEqual(fake.requestsTo(route).map((r) => r.status), [429, 200]);

    fake.failNext(route, '429', 1, { retryAfter: '120' });
    const t1 = performance.now();
    await assert.rejects(
      connector.poll(app.deps, { runId, polls: 1 }, { log: silentLogger }),
      (err: unknown) => err instanceof RateLimitedError && err.retryAfterMs === 120_000,
    );
    // Back well before the 120 s it was asked to wait: not slept in the job (however slow the machine).
    assert.ok(performance.now() - t1 < 120_000, 'a long wait is not slept in the job');
    assert.equal((await run(runId)).stateType, 'RUNNING');
    assert.equal((await pollUntilDone(runId)).stateType, 'COMPLETED');
  });

  test('a long 429 Retry-After re-sends the dispatch and the poll for when it ends, using no retry', async () => {
    const dep = fake.addDeployment({ flowName: 'long-limit', name: 'd', runScript: [{ type: 'RUNNING' }, { type: 'COMPLETED' }] });
    await flow({ name: 'long-limit', target: { type: 'prefect', deployment: dep.id } });
    const runId = await trigger('long-limit');
    /** Jobs of a queue for this run other than `exceptId`, with their delay from now (Postgres clock). */
    const followUps = async (queue: string, exceptId: string) =>
      (await app.pool.query<{ id: string; data: Record<string, unknown>; retryLimit: number; retryCount: number; state: string; delay: number }>(
        `select id, data, retry_limit as "retryLimit", retry_count as "retryCount", state::text as state,
                extract(epoch from start_after - now())::float8 as delay
           from ${BOSS_SCHEMA}.job where name = $1 and data->>'runId' = $2 and id <> $3`,
        [queue, runId, exceptId],
      )).rows;

    // Dispatch, on its 3rd attempt (2 retries used of 5): Prefect answers 429, Retry-After 120 s.
    fake.failNext('create_flow_run', '429', 1, { retryAfter: '120' });
    const t0 = performance.now();
    await dispatchWorker.handle(app.deps, dispatchJob(runId, 2), silentLogger); // completes: no retry consumed
    assert.ok(performance.now() - t0 < 120_000, 'not slept in the job (Retry-After was 120 s)');
    const r = await run(runId);
    assert.equal(`${r.stateType}/${r.stateName}`, 'PENDING/AwaitingRetry');
    assert.match(r.stateMessage ?? '', /rate limited \(429\); dispatch deferred 120s as Retry-After asks/);
    assert.equal(flowRunsOf(dep.id).length, 0);
    const [again, ...extra] = await followUps(QUEUES.dispatch, runId);
    assert.ok(again && extra.length === 0, 'one follow-up dispatch');
    assert.deepEqual(again.data, { runId, attemptOffset: 3 });
    assert.equal(again.id, deferredDispatchJobId(runId, 3));
    const carried = await app.pool.query<{ job: string }>(`select dispatch_job_id as job from flowwarden.runs where id = $1`, [runId]);
    assert.equal(carried.rows[0]!.job, again.id, 'the run names the job that carries it now (v_open_runs follows it)');
    assert.ok(again.delay > 115 && again.delay <= 120, `starts after Retry-After (${again.delay}s)`);
    assert.deepEqual([again.retryCount, again.retryLimit], [0, 3], 'the 3 retries left, none used');
    // A redelivery of the deferring job does nothing: no Prefect call, no second follow-up.
    const creates = fake.requestsTo('create_flow_run').length;
    await dispatchWorker.handle(app.deps, dispatchJob(runId, 2), silentLogger);
    assert.equal(fake.requestsTo('create_flow_run').length, creates);
    assert.equal((await followUps(QUEUES.dispatch, runId)).length, 1);

    // The follow-up, delivered (without waiting the 120 s), reclaims the run as attempt 4.
    await dispatchWorker.handle(app.deps, {
      ...dispatchJob(runId, 0), id: again.id, data: { runId, attemptOffset: 3 }, retryLimit: again.retryLimit,
    }, silentLogger);
    assert.equal((await run(runId)).stateType, 'RUNNING');
    assert.equal(flowRunsOf(dep.id).length, 1);
    assert.equal((await run(runId)).dispatchAttempt, 3);

    // Poll, on its last retry: 429, Retry-After 120 s → the same poll is re-sent, the run is not failed.
    const fr = flowRunsOf(dep.id)[0]!;
    fake.failNext(`GET /flow_runs/${fr.id}`, '429', 1, { retryAfter: '120' });
    const pollJob = (id: string, data: Record<string, unknown>, retryCount: number, retryLimit: number) =>
      ({ id, name: QUEUES.poll, data, retryCount, retryLimit, signal: new AbortController().signal }) as unknown as JobWithMetadata<{ runId: string; polls: number }>;
    await pollWorker.handle(app.deps, pollJob(pollJobId(runId, 0), { runId, polls: 0 }, 10, 10), silentLogger);
    assert.equal((await run(runId)).stateType, 'RUNNING', 'not failed on its last retry');
    const deferred = (await followUps(QUEUES.poll, pollJobId(runId, 0))).filter((j) => j.id === pollJobId(runId, 0, 1));
    assert.equal(deferred.length, 1);
    assert.deepEqual(deferred[0]!.data, { runId, polls: 0, deferred: 1 });
    assert.ok(deferred[0]!.delay > 115 && deferred[0]!.delay <= 120, `starts after Retry-After (${deferred[0]!.delay}s)`);
    assert.equal(deferred[0]!.retryLimit, 0, 'no retries left, none refunded');
    await pollWorker.handle(app.deps, pollJob(deferred[0]!.id, { runId, polls: 0, deferred: 1 }, 0, 0), silentLogger);
    assert.equal((await run(runId)).stateType, 'RUNNING');
    assert.equal((await pollUntilDone(runId)).stateType, 'COMPLETED');
  });

  test('the API key never appears in logs, even when Prefect fails', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const log = createLogger({ level: 'trace', destination: sink });
    const client = createPrefectClient({ apiUrl: fake.apiUrl, apiKey: fake.apiKey, timeoutMs: 300 });
    const noisy = createPrefectConnector({ client, config: app.config, log });
    const dep = fake.addDeployment({ flowName: 'noisy', name: 'd' });
    await flow({ name: 'noisy', target: { type: 'prefect', deployment: dep.id } });
    const runId = await trigger('noisy');
    usePrefect(app, noisy);
    try {
      fake.failNext('create_flow_run', '429', 1, { retryAfter: '0.05' });
      fake.failNext('create_flow_run', '500', 1);
      await assert.rejects(dispatchWorker.handle(app.deps, dispatchJob(runId, 0), log));
      await dispatchWorker.handle(app.deps, dispatchJob(runId, 1), log);
    } finally {
      usePrefect(app, connector);
    }
    assert.ok(lines.length > 0);
    assert.ok(!lines.join('\n').includes(fake.apiKey), 'the key is not in any log line');
  });
});

/** Two importer pods, each with its own pool, pg-boss, Prefect client and PrefectWatcher. */
async function startWatcherPods(options: ConstructorParameters<typeof PrefectWatcher>[1]) {
  return Promise.all([1, 2].map(async () => {
    const pool = createPool(app.db.url, { max: 3 });
    const boss = await startBoss({ connectionString: app.db.url, role: 'producer' });
    const c = createPrefectConnector({ client: createPrefectClient({ apiUrl: fake.apiUrl, apiKey: fake.apiKey }), config: app.config, log: silentLogger });
    return { pool, boss, watcher: new PrefectWatcher({ pool, boss, transitions: { boss, onFailure: guardFailureHook() }, log: silentLogger, connector: c }, options) };
  }));
}

async function closeWatcherPods(pods: Awaited<ReturnType<typeof startWatcherPods>>): Promise<void> {
  for (const p of pods) {
    await p.boss.stop({ graceful: false, close: true });
    await p.pool.end();
  }
}

describe('prefect watch mode', () => {
  test('two pods import a day of Prefect-scheduled runs with no duplicate and no gap, then keep them current', async () => {
    const dep = fake.addDeployment({ flowName: 'nightly-sync', name: 'prod', schedules: [{ schedule: { interval: 300 } }] });
    const now = Date.now();
    const first = now - 24 * 3600_000 + 60_000; // 288 runs, every 5 minutes, over the last day
    const seeded: string[] = [];
    for (let i = 0; i < 288; i++) {
      const state: FakeStep = i === 287 ? { type: 'RUNNING' } : i === 286 ? { type: 'SCHEDULED', name: 'Late' } : i % 50 === 7 ? { type: 'FAILED', message: `boom ${i}` } : { type: 'COMPLETED' };
      seeded.push(fake.addFlowRun(dep.id, { expectedStartTime: new Date(first + i * 300_000), state }).id);
    }
    // A failed run's task results feed the critical-task rule.
    fake.addTaskRun(seeded[7]!, { name: 'run_dbt', state: { type: 'FAILED', message: 'dbt exploded' } });
    // Not imported: runs Prefect pre-created for the future, and a run flowwarden itself created.
    const future = fake.addFlowRun(dep.id, { expectedStartTime: new Date(now + 3600_000) });
    const ours = fake.addFlowRun(dep.id, { expectedStartTime: new Date(now - 1000), idempotencyKey: 'flowwarden:x:y' });
    // Another deployment of the same Prefect flow is not ours either.
    const other = fake.addDeployment({ flowName: 'nightly-sync', name: 'staging' });
    fake.addFlowRun(other.id, { expectedStartTime: new Date(now - 60_000) });

    const watched = await flow({ name: 'watched-sync', target: { type: 'prefect', deployment: 'nightly-sync/prod', watch: true } });

    const pods = await startWatcherPods({ pageSize: 50, lookbackSeconds: 2 * 86400 });
    try {
      const importedBy = [0, 0];
      // Concurrently, one page per pass, then alternately: both interleavings of the cursor.
      for (let round = 0; round < 2; round++) {
        const results = await Promise.all(pods.map((p) => p.watcher.runOnce({ maxPagesPerPass: 1 })));
        results.forEach((r, i) => {
          assert.deepEqual(r.errors, []);
          importedBy[i]! += r.imported;
        });
      }
      for (let round = 0; round < 6; round++) {
        const r = await pods[round % 2]!.watcher.runOnce({ maxPagesPerPass: 1 });
        assert.deepEqual(r.errors, []);
        importedBy[round % 2]! += r.imported;
      }
      assert.equal(importedBy[0]! + importedBy[1]!, 288, 'each run was inserted by exactly one pod');
      assert.ok(importedBy[0]! > 0 && importedBy[1]! > 0, `both pods took pages (${importedBy.join(' + ')})`);
      const { rows } = await app.pool.query<{ externalId: string; n: number; stateType: string; stateName: string; origin: string; key: string }>(
        `select external_id as "externalId", count(*)::int as n, min(state_type) as "stateType", min(state_name) as "stateName",
                min(origin) as origin, min(idempotency_key) as key
           from flowwarden.runs where flow_id = $1 group by external_id`,
        [watched.id],
      );
      assert.equal(rows.length, 288, 'every run of the day, once');
      assert.ok(rows.every((r) => r.n === 1), 'no duplicate');
      assert.deepEqual(new Set(rows.map((r) => r.externalId)), new Set(seeded), 'no gap, nothing else');
      assert.ok(!rows.some((r) => r.externalId === future.id || r.externalId === ours.id));
      assert.ok(rows.every((r) => r.origin === 'watch' && r.key === `prefect:${r.externalId}`));
      const byId = new Map(rows.map((r) => [r.externalId, r]));
      assert.equal(byId.get(seeded[7]!)?.stateType, 'FAILED');
      assert.equal(byId.get(seeded[286]!)?.stateName, 'Late');
      assert.equal(byId.get(seeded[287]!)?.stateType, 'RUNNING');
      assert.equal(byId.get(seeded[0]!)?.stateType, 'COMPLETED');
      const history = await app.pool.query<{ n: number }>(
        `select count(*)::int as n from flowwarden.run_state_history h join flowwarden.runs r on r.id = h.run_id
          where r.flow_id = $1 and h.from_type is null`,
        [watched.id],
      );
      assert.equal(history.rows[0]!.n, 288, 'each run was created once (one creation record each)');
      const failedRun = (await app.pool.query<{ id: string }>(`select id from flowwarden.runs where external_id = $1`, [seeded[7]])).rows[0]!;
      assert.deepEqual((await runTasks(app.pool, failedRun.id)).map((t) => [t.name, t.stateType, t.message]), [['run_dbt', 'FAILED', 'dbt exploded']]);
      assert.match((await run(failedRun.id)).stateMessage ?? '', /boom 7/);

      // Later passes move unfinished runs forward, through valid transitions recorded in history.
      fake.advance(seeded[287]!, 'COMPLETED');
      fake.advance(seeded[286]!, 'RUNNING');
      const later = await pods[0]!.watcher.runOnce();
      assert.deepEqual(later.errors, []);
      const running = (await app.pool.query<{ id: string }>(`select id from flowwarden.runs where external_id = $1`, [seeded[287]])).rows[0]!;
      assert.equal((await run(running.id)).stateType, 'COMPLETED');
      const h = await runHistory(app.pool, running.id);
      assert.deepEqual(h.map((x) => x.toType), ['SCHEDULED', 'RUNNING', 'COMPLETED']);
      const late = (await app.pool.query<{ id: string }>(`select id from flowwarden.runs where external_id = $1`, [seeded[286]])).rows[0]!;
      assert.deepEqual((await runHistory(app.pool, late.id)).map((x) => `${x.toType}/${x.toName}`), ['SCHEDULED/Scheduled', 'SCHEDULED/Late', 'RUNNING/Running']);
      // A run that comes due later is imported by a later pass.
      const fresh = fake.addFlowRun(dep.id, { expectedStartTime: new Date(Date.now() - 500), state: { type: 'PENDING' } });
      await pods[1]!.watcher.runOnce();
      const count = await app.pool.query<{ n: number }>(`select count(*)::int as n from flowwarden.runs where external_id = $1`, [fresh.id]);
      assert.equal(count.rows[0]!.n, 1);
    } finally {
      await closeWatcherPods(pods);
    }
  });
});

describe('prefect watch mode: paging', () => {
  test('small pages over runs sharing timestamps, arriving in stages, read by two pods: no gap, no duplicate', async () => {
    const dep = fake.addDeployment({ flowName: 'paging', name: 'prod' });
    const watched = await flow({ name: 'watch-paging', target: { type: 'prefect', deployment: 'paging/prod', watch: true } });
    // Page of 3, overlap re-read of 2 s: each pass's first page reads runs it already has, and
    // groups of equal timestamps straddle page boundaries and outgrow a page.
    const pods = await startWatcherPods({ pageSize: 3, overlapSeconds: 2, lookbackSeconds: 3600 });
    const seeded: string[] = [];
    const start = Date.now() - 10 * 60_000;
    // Groups of runs at one timestamp (ms): sizes chosen to end stages on a small group.
    const groups = [1, 4, 2, 7, 3, 1];
    try {
      const pass = async (pod: number, maxPagesPerPass?: number) => {
        const r = await pods[pod]!.watcher.runOnce(maxPagesPerPass === undefined ? {} : { maxPagesPerPass });
        assert.deepEqual(r.errors, []);
        return r.imported;
      };
      let imported = 0;
      for (let stage = 0; stage < 6; stage++) {
        // A stage's runs come due 5 s after the previous stage's: outside the 2 s overlap.
        let t = start + stage * 5_000;
        for (const size of groups) {
          for (let i = 0; i < size; i++) seeded.push(fake.addFlowRun(dep.id, { expectedStartTime: new Date(t), state: { type: 'COMPLETED' } }).id);
          t += 1 + (stage % 2); // near timestamps: 1 or 2 ms apart
        }
        // The pods take turns a few pages at a time (each resumes from the other's cursor), and
        // also race (one finds the cursor locked and leaves it).
        imported += await pass(stage % 2, 4);
        imported += await pass((stage + 1) % 2, 4);
        imported += (await Promise.all([pass(0, 3), pass(1, 3)])).reduce((a, b) => a + b, 0);
      }
      // Then whole passes until nothing is left.
      for (let round = 0; round < 20; round++) {
        const n = await pass(round % 2);
        imported += n;
        if (n === 0 && round > 0) break;
      }
      const { rows } = await app.pool.query<{ externalId: string; n: number }>(
        `select external_id as "externalId", count(*)::int as n from flowwarden.runs where flow_id = $1 group by external_id`,
        [watched.id],
      );
      assert.equal(seeded.length, 6 * 18);
      assert.ok(rows.every((r) => r.n === 1), 'no duplicate');
      const missing = seeded.filter((id) => !rows.some((r) => r.externalId === id));
      assert.deepEqual(missing, [], 'no gap');
      assert.equal(rows.length, seeded.length);
      assert.equal(imported, seeded.length, 'each run inserted once, by one pod');
    } finally {
      await closeWatcherPods(pods);
    }
  });
});

describe('prefect watch mode: finished runs', () => {
  test('a critical task that failed inside a COMPLETED flow run is recorded in watch mode and trips the rule', async () => {
    const dep = fake.addDeployment({ flowName: 'watch-tasks', name: 'prod' });
    const watched = await flow({
      name: 'watch-tasks',
      target: { type: 'prefect', deployment: 'watch-tasks/prod', watch: true },
      health: { criticalTasks: ['run_dbt'], maxConsecutiveFailures: 3 },
    });
    // After the flow's baseline: one run imported already finished, one imported RUNNING that
    // completes on a later pass.
    const done = fake.addFlowRun(dep.id, { state: { type: 'COMPLETED' } });
    fake.addTaskRun(done.id, { name: 'run_dbt', state: { type: 'FAILED', message: 'dbt exploded (caught by the flow)' } });
    const later = fake.addFlowRun(dep.id, { state: { type: 'RUNNING' } });
    const watcher = new PrefectWatcher({ pool: app.pool, boss: app.boss, transitions: app.deps.transitions, log: silentLogger, connector });
    await watcher.runOnce();
    fake.addTaskRun(later.id, { name: 'load', state: { type: 'COMPLETED' } });
    fake.advance(later.id, 'COMPLETED');
    await watcher.runOnce();

    const ours = async (externalId: string) =>
      (await app.pool.query<{ id: string }>(`select id from flowwarden.runs where external_id = $1 and flow_id = $2`, [externalId, watched.id])).rows[0]!.id;
    const doneRun = await run(await ours(done.id));
    assert.equal(doneRun.stateType, 'COMPLETED');
    assert.deepEqual((await runTasks(app.pool, doneRun.id)).map((t) => [t.name, t.stateType, t.message]), [['run_dbt', 'FAILED', 'dbt exploded (caught by the flow)']]);
    const laterRun = await run(await ours(later.id));
    assert.equal(laterRun.stateType, 'COMPLETED');
    assert.deepEqual((await runTasks(app.pool, laterRun.id)).map((t) => [t.name, t.stateType]), [['load', 'COMPLETED']], 'refreshed runs get their tasks too');

    const outcome = await evaluateFlowHealth(app.deps, watched.id);
    assert.ok(outcome.action === 'disabled' || outcome.action === 'reported', `the critical-task rule fires (got ${outcome.action})`);
    assert.equal(outcome.verdict.rule, 'critical_task');
  });
});

describe('prefect watch mode: runs deleted in Prefect', () => {
  test('the guard switching a watched deployment off: future runs deleted by Prefect, past-due ones cancelled by the guard, a pause deletes; ours all closed', async () => {
    const dep = fake.addDeployment({ flowName: 'watch-deleted', name: 'prod', schedules: [{ slug: 'hourly' }, { slug: 'daily' }] });
    const [hourly, daily] = dep.schedules.map((s) => s.id) as [string, string];
    const f = await flow({ name: 'watch-deleted', target: { type: 'prefect', deployment: 'watch-deleted/prod', watch: true } });
    const now = Date.now();
    const late = fake.addFlowRun(dep.id, { expectedStartTime: new Date(now - 600_000), state: { type: 'SCHEDULED', name: 'Late' }, scheduleId: hourly });
    const running = fake.addFlowRun(dep.id, { expectedStartTime: new Date(now - 300_000), state: { type: 'RUNNING' }, scheduleId: hourly });
    const scheduled = fake.addFlowRun(dep.id, { expectedStartTime: new Date(now - 5_000), scheduleId: daily });
    const manual = fake.addFlowRun(dep.id, { expectedStartTime: new Date(now - 4_000) }); // not from a schedule
    const watcher = new PrefectWatcher({ pool: app.pool, boss: app.boss, transitions: app.deps.transitions, log: silentLogger, connector });
    await watcher.runOnce();
    const ours = async (externalId: string) => {
      const { rows } = await app.pool.query<{ id: string }>(`select id from flowwarden.runs where external_id = $1 and flow_id = $2`, [externalId, f.id]);
      assert.ok(rows[0], `flow run ${externalId} imported`);
      return run(rows[0].id);
    };
    assert.equal((await ours(late.id)).stateName, 'Late');

    const future = fake.addFlowRun(dep.id, { expectedStartTime: new Date(now + 3_600_000), scheduleId: daily });

    // The guard holds the flow. Prefect (≥ 3.3.4) deletes only the *future* runs its schedules
    // created; the past-due ones stay, so the guard cancels them and closes our copies.
    const actions = app.deps.guardActions.actions.find((a) => a.name === 'prefect')!;
    await actions.onDisable!(await requireFlow(app.pool, 'watch-deleted'), 'three failures in a row');
    assert.deepEqual(dep.schedules.map((s) => s.active), [false, false]);
    assert.ok(!fake.state.flowRuns.has(future.id), 'the future run is deleted by Prefect');
    for (const fr of [late, scheduled]) assert.equal(fake.state.flowRuns.get(fr.id)?.state_type, 'CANCELLED', 'past-due runs cancelled in Prefect');
    assert.equal(fake.state.flowRuns.get(running.id)?.state_type, 'RUNNING', 'a started run is left alone');
    assert.equal(fake.state.flowRuns.get(manual.id)?.state_type, 'SCHEDULED', 'a manual run is left alone');

    const pass = await watcher.runOnce();
    assert.deepEqual(pass.errors, []);
    for (const fr of [late, scheduled]) {
      const r = await ours(fr.id);
      assert.equal(`${r.stateType}/${r.stateName}`, 'CANCELLED/Cancelled');
      assert.match(r.stateMessage ?? '', /cancelled in Prefect by the guard/);
    }
    assert.deepEqual((await runHistory(app.pool, (await ours(late.id)).id)).map((h) => `${h.toType}/${h.toName}`), [
      'SCHEDULED/Scheduled', 'SCHEDULED/Late', 'CANCELLED/Cancelled',
    ]);
    assert.equal((await ours(running.id)).stateType, 'RUNNING');
    assert.equal((await ours(manual.id)).stateType, 'SCHEDULED');
    const open = await listOpenWatchedRuns(app.pool, 10_000);
    assert.ok(!open.some((o) => o.externalId === late.id || o.externalId === scheduled.id), 'no longer re-read on every pass');

    // Pausing the deployment deletes unstarted scheduled runs as well.
    await actions.onReactivate!(await requireFlow(app.pool, 'watch-deleted'), 'ops');
    const next = fake.addFlowRun(dep.id, { expectedStartTime: new Date(Date.now() - 1_000), scheduleId: hourly });
    await watcher.runOnce();
    assert.equal((await ours(next.id)).stateType, 'SCHEDULED');
    await connector.client.pauseDeployment(dep.id);
    assert.ok(!fake.state.flowRuns.has(next.id));
    await watcher.runOnce();
    assert.equal(`${(await ours(next.id)).stateType}/${(await ours(next.id)).stateName}`, 'CANCELLED/Deleted');
    assert.equal((await ours(manual.id)).stateType, 'SCHEDULED', 'a manual run is not deleted by a pause');
  });
});

describe('prefect guard actions', () => {
  test('disable switches off the deployment schedules, enforce undoes a redeploy, reactivate restores only ours', async () => {
    const dep = fake.addDeployment({
      flowName: 'guarded',
      name: 'prod',
      schedules: [{ slug: 'hourly' }, { slug: 'manual-off', active: false }],
    });
    await flow({ name: 'guarded', target: { type: 'prefect', deployment: 'guarded/prod', watch: true } });
    const f = await requireFlow(app.pool, 'guarded');
    const actions = app.deps.guardActions.actions.find((a) => a.name === 'prefect');
    assert.ok(typeof actions?.onDisable === 'function' && typeof actions.enforce === 'function' && typeof actions.onReactivate === 'function');
    const active = () => Object.fromEntries(dep.schedules.map((s) => [s.slug, s.active]));

    await actions.onDisable(f, 'three failures in a row');
    assert.deepEqual(active(), { hourly: false, 'manual-off': false });
    assert.equal(await actions.enforce(f), false, 'nothing to undo');

    // A redeploy switches the schedule back on and adds a new one.
    dep.schedules[0]!.active = true;
    dep.schedules.push({ ...dep.schedules[0]!, id: crypto.randomUUID(), slug: 'new-daily', active: true });
    assert.equal(await actions.enforce(f), true, 'had to switch schedules off again');
    assert.deepEqual(active(), { hourly: false, 'manual-off': false, 'new-daily': false });

    await actions.onReactivate(f, 'ops@example.com');
    assert.deepEqual(active(), { hourly: true, 'manual-off': false, 'new-daily': true }, 'the operator’s own off switch stays off');
    const holds = await app.pool.query(`select 1 from flowwarden.prefect_schedule_holds where flow_id = $1`, [f.id]);
    assert.equal(holds.rowCount, 0);

    // Flows not targeting Prefect are not its business.
    const fn = await flow({ name: 'not-prefect', target: { type: 'function', handler: 'noop' } });
    assert.equal(await actions.enforce(fn), false);
  });

  test('a reactivation Prefect fails once (5xx) is retried by pg-boss and switches the schedules back on', async () => {
    const dep = fake.addDeployment({ flowName: 'react-retry', name: 'prod', schedules: [{ slug: 'hourly' }] });
    const f = await flow({ name: 'react-retry', target: { type: 'prefect', deployment: 'react-retry/prod', watch: true } });
    const actions = app.deps.guardActions.actions.find((a) => a.name === 'prefect')!;
    await withTransaction(app.pool, (tx) => disableFlowTx(app.boss, tx, 'react-retry', { reason: 'maintenance', by: 'ops' }));
    await actions.onDisable!(await requireFlow(app.pool, 'react-retry'), 'maintenance');
    assert.equal(dep.schedules[0]!.active, false);

    await withTransaction(app.pool, (tx) => reactivateFlowTx(app.boss, tx, 'react-retry', { by: 'ops' }));
    const job = await waitFor(async () => {
      const jobs = await app.boss.fetch<{ flowId: string; reason: string }>(QUEUES.health, { includeMetadata: true, batchSize: 100 });
      return jobs.find((j) => j.data.flowId === f.id && j.data.reason === 'reactivated');
    }, { what: 'the reactivated health job' });
    fake.failNext('PATCH /deployments/:id/schedules/:id', '500', 1);
    const deliver = (retryCount: number) =>
      healthWorker.handle(app.deps, { ...job, retryCount, signal: new AbortController().signal } as unknown as Parameters<typeof healthWorker.handle>[1], silentLogger);
    await assert.rejects(deliver(0), /reactivating flow 'react-retry' in connectors failed/);
    assert.equal(dep.schedules[0]!.active, false, 'Prefect answered 500');

    // The job failed as a worker fails it: pg-boss schedules a retry with backoff.
    await app.boss.fail(QUEUES.health, { id: job.id, retryCount: 0 }, { message: 'failed' });
    const { rows } = await app.pool.query<{ state: string; retryLimit: number; later: boolean }>(
      `select state, retry_limit as "retryLimit", start_after > now() as later from ${BOSS_SCHEMA}.job where id = $1`,
      [job.id],
    );
    assert.deepEqual(rows[0], { state: 'retry', retryLimit: 10, later: true });

    await deliver(1); // the retry
    assert.equal(dep.schedules[0]!.active, true, 'switched back on');
    const holds = await app.pool.query(`select 1 from flowwarden.prefect_schedule_holds where flow_id = $1`, [f.id]);
    assert.equal(holds.rowCount, 0);
  });
});

describe('prefect watch yields to stop', () => {
  test('a pass whose signal is aborted imports nothing; the next pass resumes from the cursor', async () => {
    const dep = fake.addDeployment({ flowName: 'stop-sync', name: 'prod' });
    for (let i = 0; i < 5; i++) fake.addFlowRun(dep.id, { expectedStartTime: new Date(Date.now() - (i + 1) * 60_000), state: { type: 'COMPLETED' } });
    const watched = await flow({ name: 'watched-stop', target: { type: 'prefect', deployment: 'stop-sync/prod', watch: true } });
    const pods = await startWatcherPods({ pageSize: 50, lookbackSeconds: 3600 });
    try {
      const stop = new AbortController();
      stop.abort();
      const aborted = await pods[0]!.watcher.runOnce({ signal: stop.signal });
      assert.equal(aborted.imported, 0);
      assert.equal(aborted.pages, 0);
      const count = async () => (await app.pool.query<{ n: number }>(`select count(*)::int as n from flowwarden.runs where flow_id = $1`, [watched.id])).rows[0]!.n;
      assert.equal(await count(), 0);
      const normal = await pods[0]!.watcher.runOnce();
      assert.deepEqual(normal.errors, []);
      assert.equal(await count(), 5);
    } finally {
      await closeWatcherPods(pods);
    }
  });
});
