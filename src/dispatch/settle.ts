/**
 * Settling a dispatch attempt that did not simply finish: the outcome write with its retries on a
 * database outage, the retry mark (PENDING/AwaitingRetry), the 429 deferral and the drain hand-back.
 * Every state write goes through src/runs/ (service.ts → store.ts).
 */
import type { JobWithMetadata, SendOptions } from 'pg-boss';
import { QUEUES, sendJob, stableJobId } from '../queue/catalog.ts';
import { bossDb, isConnectionError, withTransaction, type Queryable } from '../db/client.ts';
import { getRun } from '../runs/read.ts';
import { applyLockedTransition } from '../runs/service.ts';
import { runSetDispatchJob } from '../runs/store.ts';
import type { RateLimitedError} from '../errors.ts';
import { errorMessage, resendAfterRateLimit } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { TargetOutcome } from '../types.ts';
import type { WorkerDeps } from '../workers/types.ts';

/**
 * The id of the dispatch re-sent after a long 429 Retry-After, for the attempt it continues with:
 * derived from (run, attempt), so a redelivery of the deferring job re-sends nothing.
 */
export function deferredDispatchJobId(runId: string, attempt: number): string {
  return stableJobId(`flowwarden:dispatch:${runId}:deferred:${attempt}`);
}

/**
 * Record a target's outcome (group-committed by the app's OutcomeWriter). The target has already
 * done the work, so a database outage must not turn a finished run into a CRASHED one: connection
 * errors are retried with backoff for up to ~45 s before giving up.
 */
export async function recordOutcome(deps: WorkerDeps, runId: string, outcome: TargetOutcome): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await deps.outcomes.record(runId, outcome);
    } catch (err) {
      if (!isConnectionError(err) || attempt >= 8) throw err;
      const waitMs = Math.min(500 * 2 ** attempt, 10_000);
      deps.log.warn({ runId, err, waitMs }, 'database unreachable while recording an outcome; retrying');
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}

/** A transient failure: the run waits as PENDING/AwaitingRetry for pg-boss's retry. */
export async function markForRetry(deps: WorkerDeps, runId: string, attempt: number, message: string): Promise<void> {
  await withTransaction(deps.pool, (tx) => awaitRetryTx(deps, tx, runId, `attempt ${attempt + 1} failed: ${message}`));
}

/** A PENDING run → PENDING/AwaitingRetry with `message`, under its lock; false when it is not PENDING (it moved on). */
async function awaitRetryTx(deps: WorkerDeps, tx: Queryable, runId: string, message: string): Promise<boolean> {
  const current = await getRun(tx, runId, { forUpdate: true });
  if (current?.stateType !== 'PENDING') return false;
  await applyLockedTransition(deps.transitions, tx, current, { to: 'PENDING', name: 'AwaitingRetry', message });
  return true;
}

/**
 * Carry a PENDING/AwaitingRetry run on a single-run job of its own from now on (`runs.dispatch_job_id`),
 * continuing its attempt numbers: the 429 deferral and the retry of one run of a multi-run job.
 */
async function resendAlone(deps: WorkerDeps, tx: Queryable, runId: string, nextAttempt: number, id: string, options: Pick<SendOptions, 'startAfter' | 'retryLimit' | 'retryDelay'>): Promise<void> {
  await runSetDispatchJob(tx, runId, id);
  await sendJob(deps.boss, QUEUES.dispatch, { runId, attemptOffset: nextAttempt }, { ...options, id, db: bossDb(tx) });
}

/** The id of the single-run dispatch that retries one run of a multi-run job (see retryAlone). */
export function retryDispatchJobId(runId: string, attempt: number): string {
  return stableJobId(`flowwarden:dispatch:${runId}:retry:${attempt}`);
}

/**
 * A transient failure of one run of a multi-run job: the job cannot be retried for one run, so in
 * one transaction the run waits as PENDING/AwaitingRetry and a single-run dispatch is sent for its
 * next attempt, after pg-boss's own backoff, with
 * the retries the job had left. The job's other runs go on; this unit settles normally.
 */
export async function retryAlone(deps: WorkerDeps, job: JobWithMetadata<unknown>, runId: string, attempt: number, message: string): Promise<void> {
  // pg-boss's own backoff, copied from pg-boss 12's plans.js (failJobsBody, its start_after
  // statement): retryDelay × 2^retryCount × (1 + random), at most retryDelayMax. Re-check on upgrade.
  const base = Math.max(job.retryDelay, 1) * 2 ** Math.min(16, job.retryCount);
  const delay = job.retryBackoff ? base * (1 + Math.random()) : job.retryDelay;
  const afterSeconds = Math.max(1, Math.ceil(job.retryDelayMax ? Math.min(job.retryDelayMax, delay) : delay));
  await withTransaction(deps.pool, async (tx) => {
    if (!(await awaitRetryTx(deps, tx, runId, `attempt ${attempt + 1} failed: ${message}`))) return;
    await resendAlone(deps, tx, runId, attempt + 1, retryDispatchJobId(runId, attempt + 1), {
      startAfter: afterSeconds,
      retryLimit: Math.max(0, job.retryLimit - job.retryCount - 1),
      // pg-boss counts this job's retries from 0: a base delay that far along the backoff keeps the
      // run's later retries spaced as they would have been in one job.
      ...(job.retryBackoff ? { retryDelay: Math.min(job.retryDelayMax ?? Infinity, base * 2) } : {}),
    });
  });
}

/**
 * Put a function run whose job was handed back at the drain deadline back to PENDING/AwaitingRetry,
 * only if this attempt still owns it (RUNNING, dispatch_attempt = attempt).
 */
export async function requeueHandedBack(deps: WorkerDeps, runId: string, attempt: number, reason: string, log: Logger): Promise<void> {
  await withTransaction(deps.pool, async (tx) => {
    const current = await getRun(tx, runId, { forUpdate: true });
    if (current?.stateType !== 'RUNNING' || current.dispatchAttempt !== attempt) {
      log.info({ state: current && `${current.stateType}/${current.stateName}` }, 'handed-back run already moved on; not requeued');
      return;
    }
    await applyLockedTransition(deps.transitions, tx, current, {
      to: 'PENDING', name: 'AwaitingRetry', requeue: true,
      message: `interrupted by pod shutdown (attempt ${attempt + 1}: ${reason}); will be retried`,
    });
  });
  log.warn({ attempt }, 'run interrupted by pod shutdown; requeued for retry');
}

/**
 * A 429 with a Retry-After longer than a job should sleep: pg-boss's backoff would ignore it and
 * burn the retries. So, in one transaction, the run stays PENDING/AwaitingRetry saying why and the
 * dispatch is re-sent for when Retry-After ends, with the retries left and the next attempt number
 * (the claim rules still apply). This job then completes: no retry is used.
 */
export async function deferForRateLimit(
  deps: WorkerDeps,
  job: JobWithMetadata<unknown>,
  runId: string,
  attempt: number,
  err: RateLimitedError,
  log: Logger,
): Promise<void> {
  const { startAfter: afterSeconds, retryLimit } = resendAfterRateLimit(job, err);
  await withTransaction(deps.pool, async (tx) => {
    const message = `attempt ${attempt + 1}: rate limited (429); dispatch deferred ${afterSeconds}s as Retry-After asks: ${errorMessage(err)}`;
    if (!(await awaitRetryTx(deps, tx, runId, message))) return;
    await resendAlone(deps, tx, runId, attempt + 1, deferredDispatchJobId(runId, attempt + 1), { startAfter: afterSeconds, retryLimit });
  });
  log.info({ attempt, afterSeconds }, 'dispatch rate limited (429): re-sent for when Retry-After ends (no retry used)');
}
