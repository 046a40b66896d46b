/**
 * The Prefect connector: a `Target` that creates a Prefect flow run for a run (idempotency key
 * prefectIdempotencyKey(deployment, run), so a retried dispatch finds the same flow run), and the
 * poller that follows it until it is terminal. It never writes the dispatch's state itself: it
 * returns `running` with the external id and the first poll, which the outcome writer records.
 * Failure modes and the poll protocol: docs/architecture.md ("Path of a run") and docs/prefect.md.
 */
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { WorkerDeps } from '../workers/types.ts';
import type { FlowRow } from '../queries/flows.ts';
import { getRun } from '../runs/read.ts';
import { type TaskInput } from '../types.ts';
import type { PrefectTargetSpec } from '../targets/spec.ts';
import { prefectIdempotencyKey, type PrefectClient, type PrefectFlowRun } from './client/index.ts';
import { withTransaction } from '../db/client.ts';
import type { Target } from '../types.ts';
import { applyLockedTransition } from '../runs/service.ts';
import { isTerminal } from '../runs/states.ts';
import { RateLimitedError, errorMessage, isPermanent } from '../errors.ts';
import { sendPoll } from '../runs/poll-jobs.ts';
import { DeploymentResolver } from './deployments.ts';
import { DEFAULT_MAX_INLINE_WAIT_MS, withRateLimit } from './retry.ts';
import { describeFlowRun, fetchTaskResults, mappedStateOf, mirrorLockedRun, tasksUnreadNote } from './mirror.ts';

/** Tag added to every flow run flowwarden creates, so they are easy to find in Prefect's UI. */
export const FLOWWARDEN_TAG = 'flowwarden';

export interface PrefectConnectorOptions {
  client: PrefectClient;
  config: Config;
  log: Logger;
  /** Longest 429 Retry-After waited out inside a job (default 10 s). */
  maxInlineWaitMs?: number;
  /** Deployment resolution cache TTL (default 60 s). */
  deploymentTtlMs?: number;
}

export interface PollInput {
  runId: string;
  polls: number;
}

export interface PollContext {
  signal?: AbortSignal;
  log: Logger;
  /** This delivery is the queue's last retry: a transient failure now fails the run. */
  lastAttempt?: boolean;
}

export type PollResult =
  | { kind: 'noop'; reason: string }
  | { kind: 'waiting'; nextPoll: number; state: string }
  | { kind: 'finished'; state: string }
  | { kind: 'timed-out' };

export interface PrefectConnector extends Target {
  readonly client: PrefectClient;
  readonly deployments: DeploymentResolver;
  readonly maxInlineWaitMs: number;
  /** Run one Prefect call with the rate-limit policy (short 429 waits inside the job). */
  call<T>(what: string, fn: () => Promise<T>, opts?: { signal?: AbortSignal; log?: Logger }): Promise<T>;
  poll(deps: WorkerDeps, input: PollInput, ctx: PollContext): Promise<PollResult>;
  /** Seconds between polls for a target: its own pollIntervalSeconds, else the configured default. */
  intervalFor(target: PrefectTargetSpec): number;
}

export function createPrefectConnector(options: PrefectConnectorOptions): PrefectConnector {
  const { client, config } = options;
  const deployments = new DeploymentResolver(client, options.deploymentTtlMs === undefined ? {} : { ttlMs: options.deploymentTtlMs });
  const maxInlineWaitMs = options.maxInlineWaitMs ?? DEFAULT_MAX_INLINE_WAIT_MS;

  const connector: PrefectConnector = {
    client,
    deployments,
    maxInlineWaitMs,

    call(what, fn, opts = {}) {
      return withRateLimit(fn, { what, maxInlineWaitMs, ...(opts.signal ? { signal: opts.signal } : {}), log: opts.log ?? options.log });
    },

    intervalFor(target) {
      return target.pollIntervalSeconds ?? config.prefect.pollIntervalSeconds;
    },

    async dispatch(run, flow, ctx) {
      const target = flow.target as PrefectTargetSpec;
      const opts = { signal: ctx.signal, log: ctx.log };
      const deployment = await connector.call('resolveDeployment', () => deployments.resolve(target.deployment, { signal: ctx.signal }), opts);
      const idempotencyKey = prefectIdempotencyKey(deployment.id, run.id);
      const tags = [...new Set([FLOWWARDEN_TAG, ...(target.tags ?? [])])];
      const { run: fr, created } = await connector.call(
        'createFlowRun',
        () =>
          client.createFlowRun(
            deployment.id,
            {
              idempotencyKey,
              parameters: run.parameters,
              tags,
              ...(target.jobVariables ? { jobVariables: target.jobVariables } : {}),
            },
            { signal: ctx.signal },
          ),
        opts,
      );
      const mapped = mappedStateOf(fr);
      const message =
        `${describeFlowRun(fr)} ${created ? 'created' : 'already existed for this run (same idempotency key)'} ` +
        `from deployment '${target.deployment}'; Prefect state ${mapped.stateName}`;
      ctx.log.info({ flowRunId: fr.id, created, prefectState: mapped.stateName }, created ? 'Prefect flow run created' : 'Prefect flow run already existed');
      // The outcome writer records RUNNING (Prefect's running sub-state), the id and the first poll.
      return {
        kind: 'running', externalId: fr.id, message,
        name: mapped.stateType === 'RUNNING' ? mapped.stateName : 'Running',
        poll: { afterSeconds: mapped.terminal ? 0 : connector.intervalFor(target) },
      };
    },

    async poll(deps, input, ctx) {
      const run = await getRun(deps.pool, input.runId);
      if (!run) return { kind: 'noop', reason: 'run no longer exists' };
      if (isTerminal(run.stateType)) return { kind: 'noop', reason: `already ${run.stateType}` };
      if (!run.externalId) return { kind: 'noop', reason: 'no Prefect flow run recorded for this run' };
      const flow = await flowOf(deps, run.flowId);
      const target = flow?.target;
      if (!target || target.type !== 'prefect') return { kind: 'noop', reason: 'the flow no longer targets Prefect' };
      const opts = { signal: ctx.signal, log: ctx.log };

      let fr: PrefectFlowRun;
      let tasks: TaskInput[] = [];
      let tasksUnread: string | undefined;
      try {
        fr = await connector.call('readFlowRun', () => client.readFlowRun(run.externalId!, { signal: ctx.signal }), opts);
      } catch (err) {
        // A long Retry-After: the poll worker re-sends this poll for later, using no retry.
        if (err instanceof RateLimitedError) throw err;
        if (!isPermanent(err) && !ctx.lastAttempt) throw err;
        const why = isPermanent(err) ? errorMessage(err) : `gave up following it after repeated errors: ${errorMessage(err)}`;
        ctx.log.warn({ err, flowRunId: run.externalId }, 'cannot follow the Prefect flow run; failing the run');
        await finish(deps, run.id, { to: 'FAILED', message: `Prefect flow run ${run.externalId}: ${why}` });
        return { kind: 'finished', state: 'FAILED' };
      }

      if (mappedStateOf(fr).terminal) {
        // Bookkeeping never decides the outcome: if the task runs cannot be read now, the run still
        // gets Prefect's state, and the watch pass reads them later (recordLateTaskResults).
        try {
          const byRun = await fetchTaskResults(client, [fr.id], (what, fn) => connector.call(what, fn, opts), { signal: ctx.signal });
          tasks = byRun.get(fr.id) ?? [];
        } catch (err) {
          if (ctx.signal?.aborted) throw err;
          tasksUnread = errorMessage(err);
          ctx.log.warn({ err, flowRunId: fr.id }, 'cannot read the task runs of a finished Prefect flow run; recording its state now, tasks later');
        }
      }

      const mapped = mappedStateOf(fr);
      const interval = connector.intervalFor(target);
      return withTransaction(deps.pool, async (tx): Promise<PollResult> => {
        const current = await getRun(tx, run.id, { forUpdate: true });
        if (!current || isTerminal(current.stateType)) return { kind: 'noop', reason: 'finished meanwhile' };
        if (mapped.terminal) {
          const note = tasksUnread ? tasksUnreadNote(tasksUnread) : '';
          await mirrorLockedRun(deps.transitions, tx, current, fr, { tasks, ...(note ? { suffix: note } : {}) });
          ctx.log.info({ flowRunId: fr.id, state: mapped.stateType, tasks: tasks.length }, `Prefect flow run ${mapped.stateName}`);
          return { kind: 'finished', state: mapped.stateType };
        }
        const latest = (await mirrorLockedRun(deps.transitions, tx, current, fr)) ?? current;
        const done = input.polls + 1;
        if (target.maxPolls !== undefined && done >= target.maxPolls) {
          await applyLockedTransition(deps.transitions, tx, latest, {
            to: 'FAILED',
            name: 'TimedOut',
            message:
              `${describeFlowRun(fr)} was still ${mapped.stateName} after ${done} polls ` +
              `(every ${interval}s, maxPolls ${target.maxPolls}); flowwarden stopped waiting and left the Prefect run alone`,
          });
          ctx.log.warn({ flowRunId: fr.id, polls: done }, 'poll limit reached: run TimedOut');
          return { kind: 'timed-out' };
        }
        await sendPoll(deps.boss, tx, run.id, done, interval);
        return { kind: 'waiting', nextPoll: done, state: mapped.stateName };
      });
    },
  };
  return connector;
}

async function flowOf(deps: WorkerDeps, flowId: string): Promise<Pick<FlowRow, 'id' | 'name' | 'target'> | undefined> {
  const { rows } = await deps.pool.query<Pick<FlowRow, 'id' | 'name' | 'target'>>(
    `select id, name, target from flowwarden.flows where id = $1`,
    [flowId],
  );
  return rows[0];
}

async function finish(deps: WorkerDeps, runId: string, input: { to: 'FAILED'; message: string }): Promise<void> {
  await withTransaction(deps.pool, async (tx) => {
    const current = await getRun(tx, runId, { forUpdate: true });
    if (!current || isTerminal(current.stateType)) return;
    await applyLockedTransition(deps.transitions, tx, current, input);
  });
}

