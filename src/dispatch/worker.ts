/**
 * dispatch — hand a run to its target: claim (src/dispatch/claim.ts), call the target (a `Target`
 * from deps.targets), record the outcome (src/runs/outcomes.ts). One call per run: a multi-run job
 * is called once per run (its units). Idempotent: the run row decides what a delivery may do.
 * Errors: PermanentError fails the run at once, a long 429 defers the dispatch, anything else
 * retries with backoff (src/dispatch/settle.ts; a run of a multi-run job is retried alone).
 * The whole path: docs/architecture.md, "Path of a run".
 */
import { QUEUES } from '../queue/catalog.ts';
import { DispatchPayload as Payload, runIdsOf } from '../queue/payloads.ts';
import type { WorkerDefinition, WorkerDeps } from '../workers/types.ts';
import { HandedBackError, type PoolJob } from '../queue/pool.ts';
import { RateLimitedError, errorMessage, isPermanent } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { DispatchOutcome } from '../metrics.ts';
import type { RunContext, TargetOutcome } from '../types.ts';
import { deferForRateLimit, markForRetry, recordOutcome, requeueHandedBack, retryAlone } from './settle.ts';



async function handle(deps: WorkerDeps, job: PoolJob<Payload>, jobLog: Logger): Promise<void> {
  // A multi-run job: this call is one of its runs (its unit); see src/queue/pool.ts.
  const batch = (job.units ?? 1) > 1;
  const runId = runIdsOf(job.data)[job.unit ?? 0]!;
  const log = batch ? jobLog.child({ runId }) : jobLog;
  const attempt = job.retryCount + (job.data.attemptOffset ?? 0);
  const lastAttempt = job.retryCount >= job.retryLimit;
  const claimed = await deps.claims.claim(runId, attempt);
  if (claimed.kind === 'skip') {
    log.debug({ reason: claimed.reason }, 'nothing to dispatch');
    return;
  }
  const { run, flow } = claimed;
  const targetType = flow.target.type;
  if (claimed.lagSeconds !== undefined) deps.metrics.fireLag(targetType, claimed.lagSeconds);
  const started = performance.now();
  const observe = (outcome: DispatchOutcome) => deps.metrics.dispatchDone(targetType, outcome, (performance.now() - started) / 1000);
  const ctx: RunContext = {
    runId, flow: flow.name, scheduledFor: run.scheduledFor, parameters: run.parameters, attempt,
    signal: job.signal, log: log.child({ flow: flow.name }),
  };
  let outcome: TargetOutcome;
  try {
    outcome = await deps.targets[targetType].dispatch(run, flow, ctx);
  } catch (err) {
    job.release?.();
    const message = errorMessage(err);
    if (err instanceof RateLimitedError && targetType === 'prefect' && !job.signal.aborted) {
      await deferForRateLimit(deps, job, runId, attempt, err, log);
      observe('retry');
      return;
    }
    if (isPermanent(err) || lastAttempt) {
      log.warn({ err, attempt }, 'dispatch failed permanently');
      await recordOutcome(deps, runId, {
        kind: 'failed',
        message: lastAttempt && !isPermanent(err) ? `gave up after ${attempt + 1} attempts: ${message}` : message,
      });
      observe('failed');
      return;
    }
    log.info({ err, attempt }, 'dispatch failed; will retry with backoff');
    if (batch && !job.signal.aborted) {
      // The other runs of the job go on: this one is retried by a job of its own.
      await retryAlone(deps, job, runId, attempt, message);
      observe('retry');
      return;
    }
    await markForRetry(deps, runId, attempt, message);
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

export const dispatchWorker: WorkerDefinition<typeof Payload> = {
  queue: QUEUES.dispatch,
  payload: Payload,
  consumer: 'pool',
  unitsOf: (data) => runIdsOf(data).length,
  handle,
};
