import type pg from 'pg';
import type { PgBoss, WorkOptions } from 'pg-boss';
import type { KyInstance } from 'ky';
import type { z } from 'zod';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { QueueName } from '../queue/catalog.ts';
import type { GuardActionRegistry } from '../guard/actions.ts';
import type { PoolJob } from '../queue/pool.ts';
import type { Metrics } from '../metrics.ts';
import type { Target, TargetType } from '../types.ts';
import type { TransitionDeps } from '../runs/service.ts';
import type { OutcomeWriter } from '../runs/outcomes.ts';
import type { ClaimBatcher } from '../dispatch/claim.ts';

/** Follows runs executing elsewhere (the Prefect connector's poll; src/workers/poll.ts). */
export interface RunPoller {
  poll(deps: WorkerDeps, input: { runId: string; polls: number }, ctx: { signal?: AbortSignal; log: Logger; lastAttempt?: boolean }): Promise<unknown>;
}

/** What every worker handler gets: built once in src/app.ts. */
export interface WorkerDeps {
  pool: pg.Pool;
  boss: PgBoss;
  config: Config;
  log: Logger;
  http: KyInstance;
  /** Actions connectors add to disable/enforce/reactivate (src/guard/actions.ts). */
  guardActions: GuardActionRegistry;
  /** What run transitions need for their consequences (events, the guard's failure hook). */
  transitions: TransitionDeps;
  /** Where runs execute, by target type (src/app.ts wires them). */
  targets: Record<TargetType, Target>;
  /** The Prefect connector's poller, when Prefect is configured. */
  poller: RunPoller | undefined;
  /** This app's group claim (one per app). */
  claims: ClaimBatcher;
  /** This app's group-committed outcome writer (one per app). */
  outcomes: OutcomeWriter;
  /** This app's Prometheus metrics (src/metrics.ts): e.g. deps.metrics.notificationDelivered('discord'). */
  metrics: Metrics;
  /** Aborted when the pod starts draining: long loops stop early, /readyz answers 503. */
  stopping: AbortSignal;
}

/**
 * One queue's consumer (its options are in src/queue/catalog.ts): payload schema and a plain handler,
 * run by boss.work() with its `workOptions`, or (`consumer: 'pool'`) by the capacity-driven JobPool
 * (src/queue/pool.ts), for the hot dispatch queue, where throughput and no head-of-line blocking
 * matter. Wired by src/workers/index.ts.
 */
export type WorkerDefinition<S extends z.ZodType = z.ZodType> = {
  queue: QueueName;
  payload: S;
  // Method syntax: a list of definitions of different payloads is a WorkerDefinition[].
  handle(this: void, deps: WorkerDeps, job: PoolJob<z.infer<S>>, log: Logger): Promise<void>;
} & (
  | { consumer?: 'work'; workOptions: (config: Config) => WorkOptions & { includeMetadata: true }; unitsOf?: never }
  | {
    consumer: 'pool';
    /** How many units (each takes a slot, one handler call) a job carries; default 1. */
    unitsOf?(this: void, data: z.infer<S>): number;
  }
);

/** One job per handler call, `concurrency` at once, polled every 0.5 s (and woken by NOTIFY). */
export function singleJobWorkOptions(config: Config): WorkOptions & { includeMetadata: true } {
  return { includeMetadata: true, localConcurrency: config.concurrency, batchSize: 1, pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 0.5 };
}
