/**
 * dispatch — hand a run to its target.
 *
 * Idempotent: the job id is the run id, and the run row decides what a delivery may do:
 *   SCHEDULED                       → claim (PENDING, dispatch_attempt = job.retryCount) and call the target;
 *   PENDING from an older attempt   → the previous attempt died or failed transiently: reclaim and call again
 *                                     (http/prefect targets get the run id as idempotency key);
 *   RUNNING from an older attempt   → function targets: the worker died mid-handler → CRASHED;
 *   anything else                   → a duplicate delivery: do nothing.
 * Overlap `skip` and disabled flows are applied at claim time, under the schedule row's lock, so two
 * concurrent dispatches of one schedule cannot both see "nothing running".
 * Errors: PermanentError (4xx, validation, unknown handler) fails the run at once; anything else
 * leaves it PENDING/AwaitingRetry and rethrows so pg-boss retries with exponential backoff; the last
 * attempt fails the run.
 */
import { z } from 'zod';
import type { JobWithMetadata } from 'pg-boss';
import { QUEUES } from '../queue/catalog.ts';
import type { WorkerDefinition, WorkerDeps } from './types.ts';
import { withTransaction, type Queryable } from '../db/client.ts';
import { getRun, type RunRow } from '../queries/runs.ts';
import { applyLockedTransition, applyTransition } from '../runs/service.ts';
import type { FlowRow } from '../queries/flows.ts';
import { runFunctionTarget } from '../targets/function.ts';
import { runHttpTarget } from '../targets/http.ts';
import type { RunContext, TargetOutcome } from '../targets/types.ts';
import { errorMessage, isPermanent } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { TargetSpec } from '../targets/spec.ts';
import type { DispatchOutcome } from '../metrics.ts';

const Payload = z.object({ runId: z.string().uuid() });

/** Prefect (and other connectors) plug in here: see src/prefect/. */
export interface DispatchConnector {
  dispatch(deps: WorkerDeps, run: RunRow, flow: FlowRow, ctx: RunContext): Promise<TargetOutcome>;
}

type Claim =
  | { kind: 'dispatch'; run: RunRow; flow: FlowRow; /** First claim only: claim time - fire time (Postgres clock). */ lagSeconds?: number }
  | { kind: 'skip'; reason: string };

async function claim(deps: WorkerDeps, tx: Queryable, runId: string, attempt: number): Promise<Claim> {
  const run = await getRun(tx, runId, { forUpdate: true });
  if (!run) return { kind: 'skip', reason: 'run no longer exists' };
  const { rows } = await tx.query<FlowRow>(
    `select id, name, target, health, disabled_at as "disabledAt", disabled_reason as "disabledReason" from flowwarden.flows where id = $1`,
    [run.flowId],
  );
  const flow = rows[0]!;
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
    const { run: claimed } = await applyLockedTransition(deps.boss, tx, run, { to: 'PENDING', dispatchAttempt: attempt, message: `dispatch attempt ${attempt + 1}` });
    return { kind: 'dispatch', run: claimed, flow, lagSeconds: (claimed.updatedAt.getTime() - run.scheduledFor.getTime()) / 1000 };
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
      await withTransaction(deps.pool, (tx) => applyTransition(deps.boss, tx, { runId: run.id, to: 'RUNNING' }));
      return runFunctionTarget(deps.registry, target.handler ?? flow.name, ctx);
    }
    case 'http':
      return runHttpTarget(deps.http, target, ctx, { secret: deps.config.httpSecret, timeoutMs: deps.config.httpTimeoutMs });
    case 'prefect': {
      const connector = deps.extensions.get('prefect') as DispatchConnector | undefined;
      if (!connector) throw new Error('the Prefect connector is not configured in this worker (set PREFECT_API_URL)');
      return connector.dispatch(deps, run, flow, ctx);
    }
  }
}

export async function recordOutcome(deps: WorkerDeps, runId: string, outcome: TargetOutcome): Promise<void> {
  const log = deps.log.child({ queue: QUEUES.dispatch, runId });
  await withTransaction(deps.pool, async (tx) => {
    const run = await getRun(tx, runId, { forUpdate: true });
    if (!run) return;
    if (outcome.kind !== 'running') {
      const state = outcome.kind === 'completed' ? 'COMPLETED' : outcome.stateType ?? 'FAILED';
      log[outcome.kind === 'completed' ? 'info' : 'warn']({ flow: run.flowName, state, message: outcome.message }, `run ${state.toLowerCase()}`);
    }
    if (outcome.kind === 'completed') {
      await applyLockedTransition(deps.boss, tx, run, { to: 'COMPLETED', message: outcome.message ?? null, tasks: outcome.tasks });
    } else if (outcome.kind === 'failed') {
      await applyLockedTransition(deps.boss, tx, run, {
        to: outcome.stateType ?? 'FAILED', name: outcome.name, message: outcome.message, tasks: outcome.tasks,
      });
    } else if (run.stateType !== 'RUNNING') {
      // An async endpoint may already have reported a later state; only move forward.
      if (run.stateType === 'PENDING') {
        await applyLockedTransition(deps.boss, tx, run, { to: 'RUNNING', message: outcome.message ?? null, externalId: outcome.externalId ?? null });
      }
    }
  });
}

async function handle(deps: WorkerDeps, job: JobWithMetadata<z.infer<typeof Payload>>, log: Logger): Promise<void> {
  const runId = job.data.runId;
  const attempt = job.retryCount;
  const lastAttempt = job.retryCount >= job.retryLimit;
  const claimed = await withTransaction(deps.pool, (tx) => claim(deps, tx, runId, attempt));
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
    const message = errorMessage(err);
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
  if (job.signal.aborted && outcome.kind === 'failed' && targetType === 'function') {
    // pg-boss gave the job up while the handler ran (drain deadline at shutdown, or expiry): it has
    // already failed the job for retry and aborted the signal, and the handler failed on the abort.
    // Function handlers are not re-run, so settle the run now as CRASHED; the retry is a no-op.
    await recordOutcome(deps, runId, {
      kind: 'failed', stateType: 'CRASHED',
      message: `the worker gave the run up before the handler finished (pod shutdown past the drain deadline, or job expiry): ${outcome.message}`,
    });
    observe('crashed');
    return;
  }
  await recordOutcome(deps, runId, outcome);
  observe(outcome.kind === 'completed' ? 'completed' : outcome.kind === 'running' ? 'accepted' : outcome.stateType === 'CRASHED' ? 'crashed' : 'failed');
}

export const dispatchWorker: WorkerDefinition<typeof Payload> = {
  queue: QUEUES.dispatch,
  queueOptions: {
    retryLimit: 5,
    retryDelay: 2,
    retryBackoff: true,
    retryDelayMax: 300,
    expireInSeconds: 3600,
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
