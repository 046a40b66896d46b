/**
 * dispatch — hand a run to its target.
 *
 * Idempotent: the job id is the run id, and the run row decides what a delivery may do:
 *   SCHEDULED                       → claim (PENDING, dispatch_attempt = job.retryCount) and call the target;
 *   PENDING from an older attempt   → the previous attempt died or failed transiently: reclaim and call again
 *                                     (http/prefect targets get the run id as idempotency key);
 *   RUNNING from an older attempt   → function targets: the worker died mid-handler → CRASHED (a drained
 *                                     pod puts a cut-off run back to PENDING/AwaitingRetry instead, so its
 *                                     retry lands in the PENDING case and runs the handler again);
 *   anything else                   → a duplicate delivery: do nothing.
 * Overlap `skip` and disabled flows are applied at claim time, under the schedule row's lock, so two
 * concurrent dispatches of one schedule cannot both see "nothing running".
 * Errors: PermanentError (4xx, validation, unknown handler) fails the run at once; a long Prefect
 * 429 Retry-After (RateLimitedError) re-sends the dispatch for when it ends, using no retry
 * (deferForRateLimit); anything else leaves it PENDING/AwaitingRetry and rethrows so pg-boss
 * retries with exponential backoff; the last attempt fails the run.
 */
import { z } from 'zod';
import type { JobWithMetadata } from 'pg-boss';
import { QUEUES, sendJob, stableJobId } from '../queue/catalog.ts';
import type { WorkerDefinition, WorkerDeps } from '../workers/types.ts';
import { bossDb, isConnectionError, withTransaction, type Queryable } from '../db/client.ts';
import { claimScheduledRuns, getRun, type RunRow } from '../runs/store.ts';
import { reportTransitions } from '../runs/observe.ts';
import { applyLockedTransition, applyTransition } from '../runs/service.ts';
import { OutcomeWriter } from '../runs/outcomes.ts';
import type { FlowRow } from '../queries/flows.ts';
import { runFunctionTarget } from '../targets/function.ts';
import { runHttpTarget } from '../targets/http.ts';
import { issueReportToken } from '../security/keys.ts';
import type { RunContext, TargetOutcome } from '../types.ts';
import { RateLimitedError, errorMessage, isPermanent, resendAfterRateLimit } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { TargetSpec } from '../targets/spec.ts';
import type { DispatchOutcome } from '../metrics.ts';
import { HandedBackError, type PoolJob } from '../workers/pool.ts';

const Payload = z.object({
  runId: z.string().uuid(),
  /** Set on a dispatch re-sent after a long 429 Retry-After: attempts continue from here. */
  attemptOffset: z.number().int().min(0).optional(),
});

/**
 * The id of the dispatch re-sent after a long 429 Retry-After, for the attempt it continues with.
 * The first job's id is the run id and stays in pg-boss once completed, so a re-send needs its own
 * id; it is derived from (run, attempt), so a redelivery of the deferring job re-sends nothing.
 */
export function deferredDispatchJobId(runId: string, attempt: number): string {
  return stableJobId(`flowwarden:dispatch:${runId}:deferred:${attempt}`);
}

/** Prefect (and other connectors) plug in here: see src/prefect/. */
export interface DispatchConnector {
  dispatch(deps: WorkerDeps, run: RunRow, flow: FlowRow, ctx: RunContext): Promise<TargetOutcome>;
}

type Claim =
  | { kind: 'dispatch'; run: RunRow; flow: FlowRow; /** First claim only: claim time - fire time (Postgres clock). */ lagSeconds?: number }
  | { kind: 'skip'; reason: string };

async function claim(deps: WorkerDeps, tx: Queryable, runId: string, attempt: number): Promise<Claim> {
  const run = await getRun(tx, runId, { forUpdate: true, withFlow: true });
  if (!run) return { kind: 'skip', reason: 'run no longer exists' };
  // The claim only needs these columns of the flow; the connector seam takes the FlowRow type.
  const flow = run.flow as unknown as FlowRow;
  const previous = run.dispatchAttempt ?? -1;

  if (run.stateType === 'SCHEDULED') {
    if (flow.disabledAt && run.origin === 'schedule') {
      await applyLockedTransition(deps.boss, tx, run, {
        to: 'CANCELLED', name: 'Skipped', message: `flow is disabled: ${flow.disabledReason ?? 'held by the guard'}`,
      });
      return { kind: 'skip', reason: 'flow disabled' };
    }
    if (run.scheduleId) {
      const s = await tx.query<{ overlap: string }>(
        `select overlap from flowwarden.schedules where id = $1 for update`,
        [run.scheduleId],
      );
      if (s.rows[0]?.overlap === 'skip') {
        const busy = await tx.query<{ id: string; stateType: string }>(
          `select id, state_type as "stateType" from flowwarden.runs
            where schedule_id = $1 and id <> $2 and state_type in ('PENDING', 'RUNNING') limit 1`,
          [run.scheduleId, run.id],
        );
        if (busy.rows[0]) {
          await applyLockedTransition(deps.boss, tx, run, {
            to: 'CANCELLED', name: 'Skipped',
            message: `previous run ${busy.rows[0].id} is still ${busy.rows[0].stateType} (overlap: skip)`,
          });
          return { kind: 'skip', reason: 'overlap' };
        }
      }
    }
    let { run: claimed } = await applyLockedTransition(deps.boss, tx, run, { to: 'PENDING', dispatchAttempt: attempt, message: `dispatch attempt ${attempt + 1}` });
    const lagSeconds = (claimed.updatedAt.getTime() - run.scheduledFor.getTime()) / 1000;
    if ((flow.target as TargetSpec).type === 'function') {
      // The handler starts right after this commits: record RUNNING in the same transaction.
      ({ run: claimed } = await applyLockedTransition(deps.boss, tx, claimed, { to: 'RUNNING' }));
    }
    return { kind: 'dispatch', run: claimed, flow, lagSeconds };
  }
  if (run.stateType === 'PENDING' && previous < attempt) {
    if (run.stateName === 'AwaitingRetry') {
      const { run: claimed } = await applyLockedTransition(deps.boss, tx, run, { to: 'PENDING', name: 'Pending', dispatchAttempt: attempt, message: `dispatch attempt ${attempt + 1}` });
      return { kind: 'dispatch', run: claimed, flow };
    }
    await tx.query(`update flowwarden.runs set dispatch_attempt = $2, updated_at = now() where id = $1`, [run.id, attempt]);
    return { kind: 'dispatch', run: { ...run, dispatchAttempt: attempt }, flow };
  }
  if (run.stateType === 'RUNNING' && previous < attempt && (flow.target as TargetSpec).type === 'function') {
    await applyLockedTransition(deps.boss, tx, run, {
      to: 'CRASHED', message: 'the worker running this handler was lost (pod crash or job expiry); not re-run because function handlers are not idempotent',
    });
    return { kind: 'skip', reason: 'crashed' };
  }
  return { kind: 'skip', reason: `already ${run.stateType}/${run.stateName} (duplicate delivery)` };
}

async function callTarget(deps: WorkerDeps, run: RunRow, flow: FlowRow, ctx: RunContext): Promise<TargetOutcome> {
  const target = flow.target as TargetSpec;
  switch (target.type) {
    case 'function': {
      if (run.stateType !== 'RUNNING') {
        await withTransaction(deps.pool, (tx) => applyTransition(deps.boss, tx, { runId: run.id, to: 'RUNNING' }));
      }
      return runFunctionTarget(deps.registry, target.handler ?? flow.name, ctx);
    }
    case 'http':
      return runHttpTarget(deps.http, target, ctx, {
        secret: deps.config.httpSecret,
        timeoutMs: deps.config.httpTimeoutMs,
        // Report tokens come from a key only flowwarden holds, and only async runs get one.
        reportToken: target.mode === 'async' ? await issueReportToken(deps.pool, run.id) : undefined,
      });
    case 'prefect': {
      const connector = deps.extensions.get('prefect') as DispatchConnector | undefined;
      if (!connector) throw new Error('the Prefect connector is not configured in this worker (set PREFECT_API_URL)');
      return connector.dispatch(deps, run, flow, ctx);
    }
  }
}

/**
 * Group claim: the pool fetches several jobs at once and their handlers start together, so their
 * claims are taken together too. The plain cases — SCHEDULED, flow not held, overlap not `skip` —
 * are claimed by one statement for the whole batch (`claimScheduledRuns`: PENDING, and RUNNING for
 * function targets); every other case (overlap skip, held flow, redelivery, a failed batch) goes
 * through the per-run `claim`, each in its own transaction.
 */
interface ClaimItem {
  runId: string;
  attempt: number;
  resolve: (c: Claim) => void;
  reject: (err: unknown) => void;
}

class ClaimBatcher {
  readonly #deps: WorkerDeps;
  #queue: ClaimItem[] = [];
  #scheduled = false;

  constructor(deps: WorkerDeps) {
    this.#deps = deps;
  }

  claim(runId: string, attempt: number): Promise<Claim> {
    return new Promise<Claim>((resolve, reject) => {
      this.#queue.push({ runId, attempt, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    const all = this.#queue;
    this.#queue = [];
    this.#scheduled = false;
    // One claim per run per batch: duplicates (the same job twice) go through the single path.
    const batch: ClaimItem[] = [];
    const singles: ClaimItem[] = [];
    const seen = new Set<string>();
    for (const i of all) (seen.has(i.runId) ? singles : batch).push(i), seen.add(i.runId);
    const { pool } = this.#deps;
    let claimed = new Map<string, RunRow & { flow: unknown }>();
    try {
      claimed = new Map((await claimScheduledRuns(pool, batch)).map((r) => [r.id, r]));
    } catch (err) {
      this.#deps.log.warn({ err: errorMessage(err), runs: batch.length }, 'group claim failed; claiming each run alone');
    }
    let running = 0;
    for (const i of batch) {
      const row = claimed.get(i.runId);
      if (!row) {
        singles.push(i);
        continue;
      }
      const { flow, ...run } = row;
      if (run.stateType === 'RUNNING') running++;
      i.resolve({ kind: 'dispatch', run, flow: flow as FlowRow, lagSeconds: (run.updatedAt.getTime() - run.scheduledFor.getTime()) / 1000 });
    }
    reportTransitions(pool, 'PENDING', claimed.size);
    reportTransitions(pool, 'RUNNING', running);
    for (const i of singles) {
      try {
        i.resolve(await withTransaction(pool, (tx) => claim(this.#deps, tx, i.runId, i.attempt)));
      } catch (err) {
        i.reject(err);
      }
    }
  }
}

const claimers = new WeakMap<object, ClaimBatcher>();
function claimBatcher(deps: WorkerDeps): ClaimBatcher {
  let c = claimers.get(deps.pool);
  if (!c) {
    c = new ClaimBatcher(deps);
    claimers.set(deps.pool, c);
  }
  return c;
}

const writers = new WeakMap<object, OutcomeWriter>();

/**
 * Record a target's outcome (group-committed with other outcomes of the same moment). The target
 * has already done the work, so a database outage must not turn a finished run into a CRASHED one:
 * connection errors are retried with backoff for up to ~45 s before giving up.
 */
export async function recordOutcome(deps: WorkerDeps, runId: string, outcome: TargetOutcome): Promise<void> {
  let writer = writers.get(deps.pool);
  if (!writer) {
    writer = new OutcomeWriter(deps.pool, deps.boss, deps.log.child({ queue: QUEUES.dispatch }));
    writers.set(deps.pool, writer);
  }
  for (let attempt = 0; ; attempt++) {
    try {
      return await writer.record(runId, outcome);
    } catch (err) {
      if (!isConnectionError(err) || attempt >= 8) throw err;
      const waitMs = Math.min(500 * 2 ** attempt, 10_000);
      deps.log.warn({ runId, err: errorMessage(err), waitMs }, 'database unreachable while recording an outcome; retrying');
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}

/**
 * Put a function run whose job was handed back at the drain deadline back to PENDING/AwaitingRetry.
 * Only if this attempt still owns it (RUNNING, dispatch_attempt = attempt): if the retried job was
 * already taken elsewhere (the run moved on), this does nothing.
 */
async function requeueHandedBack(deps: WorkerDeps, runId: string, attempt: number, reason: string, log: Logger): Promise<void> {
  await withTransaction(deps.pool, async (tx) => {
    const current = await getRun(tx, runId, { forUpdate: true });
    if (current?.stateType !== 'RUNNING' || current.dispatchAttempt !== attempt) {
      log.info({ state: current && `${current.stateType}/${current.stateName}` }, 'handed-back run already moved on; not requeued');
      return;
    }
    await applyLockedTransition(deps.boss, tx, current, {
      to: 'PENDING', name: 'AwaitingRetry', requeue: true,
      message: `interrupted by pod shutdown (attempt ${attempt + 1}: ${reason}); will be retried`,
    });
  });
  log.warn({ attempt }, 'run interrupted by pod shutdown; requeued for retry');
}

async function handle(deps: WorkerDeps, job: PoolJob<z.infer<typeof Payload>>, log: Logger): Promise<void> {
  const runId = job.data.runId;
  const attempt = job.retryCount + (job.data.attemptOffset ?? 0);
  const lastAttempt = job.retryCount >= job.retryLimit;
  const claimed = await claimBatcher(deps).claim(runId, attempt);
  if (claimed.kind === 'skip') {
    log.debug({ reason: claimed.reason }, 'nothing to dispatch');
    return;
  }
  const { run, flow } = claimed;
  const targetType = (flow.target as TargetSpec).type;
  if (claimed.lagSeconds !== undefined) deps.metrics.fireLag(targetType, claimed.lagSeconds);
  const started = performance.now();
  const observe = (outcome: DispatchOutcome) => deps.metrics.dispatchDone(targetType, outcome, (performance.now() - started) / 1000);
  const ctx: RunContext = {
    runId, flow: flow.name, scheduledFor: run.scheduledFor, parameters: run.parameters, attempt,
    signal: job.signal, log: log.child({ flow: flow.name }),
  };
  let outcome: TargetOutcome;
  try {
    outcome = await callTarget(deps, run, flow, ctx);
  } catch (err) {
    job.release?.();
    const message = errorMessage(err);
    if (err instanceof RateLimitedError && targetType === 'prefect' && !job.signal.aborted) {
      await deferForRateLimit(deps, job, attempt, err, log);
      observe('retry');
      return;
    }
    if (isPermanent(err) || lastAttempt) {
      log.warn({ err: message, attempt }, 'dispatch failed permanently');
      await recordOutcome(deps, runId, {
        kind: 'failed',
        message: lastAttempt && !isPermanent(err) ? `gave up after ${attempt + 1} attempts: ${message}` : message,
      });
      observe('failed');
      return;
    }
    log.info({ err: message, attempt }, 'dispatch failed; will retry with backoff');
    await withTransaction(deps.pool, async (tx) => {
      const current = await getRun(tx, runId, { forUpdate: true });
      if (current?.stateType === 'PENDING') {
        await applyLockedTransition(deps.boss, tx, current, { to: 'PENDING', name: 'AwaitingRetry', message: `attempt ${attempt + 1} failed: ${message}` });
      }
    });
    observe(job.signal.aborted ? 'handed_back' : 'retry');
    throw err;
  }
  // The target is done: its slot goes to the next run while the outcome is written.
  job.release?.();
  if (job.signal.aborted && outcome.kind === 'failed' && targetType === 'function') {
    if (job.signal.reason instanceof HandedBackError && !lastAttempt) {
      // The drain deadline cut the handler off: the pool has already failed the job for retry, so
      // put the run back (RUNNING → PENDING/AwaitingRetry) and the retried job runs it again on
      // whichever pod takes it. Not a failure: the guard does not count it.
      await requeueHandedBack(deps, runId, attempt, outcome.message, log);
      observe('handed_back');
      return;
    }
    // pg-boss gave the job up while the handler ran (job expiry, or a hand-back on the last attempt,
    // which pg-boss fails for good): no retry will come, so settle the run now.
    await recordOutcome(deps, runId, {
      kind: 'failed', stateType: 'CRASHED',
      message: `the worker gave the run up before the handler finished (${lastAttempt ? 'pod shutdown past the drain deadline on the last attempt' : 'job expiry'}): ${outcome.message}`,
    });
    observe('crashed');
    return;
  }
  await recordOutcome(deps, runId, outcome);
  observe(outcome.kind === 'completed' ? 'completed' : outcome.kind === 'running' ? 'accepted' : outcome.stateType === 'CRASHED' ? 'crashed' : 'failed');
}

/**
 * The target asked us to wait longer than a job should sleep (429 with a long Retry-After): pg-boss's
 * own backoff would ignore the wait and burn the retries. So, in one transaction, the run stays
 * PENDING/AwaitingRetry saying why, and the dispatch is re-sent with startAfter = Retry-After, the
 * retries this job had left and the next attempt number (the claim rules above still apply: it
 * reclaims the run as a newer attempt). This job then completes: no retry is used.
 */
async function deferForRateLimit(
  deps: WorkerDeps,
  job: JobWithMetadata<z.infer<typeof Payload>>,
  attempt: number,
  err: RateLimitedError,
  log: Logger,
): Promise<void> {
  const runId = job.data.runId;
  const { startAfter: afterSeconds, retryLimit } = resendAfterRateLimit(job, err);
  await withTransaction(deps.pool, async (tx) => {
    const current = await getRun(tx, runId, { forUpdate: true });
    if (current?.stateType !== 'PENDING') return;
    await applyLockedTransition(deps.boss, tx, current, {
      to: 'PENDING', name: 'AwaitingRetry',
      message: `attempt ${attempt + 1}: rate limited (429); dispatch deferred ${afterSeconds}s as Retry-After asks: ${errorMessage(err)}`,
    });
    await sendJob(deps.boss, QUEUES.dispatch, { runId, attemptOffset: attempt + 1 }, {
      id: deferredDispatchJobId(runId, attempt + 1),
      startAfter: afterSeconds,
      retryLimit,
      db: bossDb(tx),
    });
  });
  log.info({ attempt, afterSeconds }, 'dispatch rate limited (429): re-sent for when Retry-After ends (no retry used)');
}

export const dispatchWorker: WorkerDefinition<typeof Payload> = {
  queue: QUEUES.dispatch,
  queueOptions: {
    retryLimit: 5,
    retryDelay: 2,
    retryBackoff: true,
    retryDelayMax: 300,
    expireInSeconds: 3600,
    // The pool heartbeats in-flight jobs every 10 s; a job of a pod that died (SIGKILL, OOM) goes
    // stale after 30 s and is failed for retry by pg-boss's supervisor, not after the 1 h expiry.
    heartbeatSeconds: 30,
    deleteAfterSeconds: 7 * 86400,
    notify: true,
  },
  workOptions: (config) => ({
    includeMetadata: true,
    localConcurrency: config.concurrency,
    batchSize: 1,
    pollingIntervalSeconds: 0.5,
    notifyPollingIntervalSeconds: 0.5,
  }),
  payload: Payload,
  consumer: 'pool',
  handle,
};
