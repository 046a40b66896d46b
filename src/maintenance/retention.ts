/**
 * The retention sweep: every `intervalMs` on every scheduler pod, delete finished runs (with their
 * history and task results) and delivered notifications past their window, one short transaction
 * of at most `batchSize` rows at a time (src/queries/retention.ts says what is kept whatever its
 * age). A pass stops after `maxBatches` per table; the next pass continues. pg-boss deletes its own
 * finished jobs.
 */
import type pg from 'pg';
import { DEFAULTS } from '../config.ts';
import { withTransaction } from '../db/client.ts';
import { deleteExpiredNotifications, deleteExpiredRuns } from '../queries/retention.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { LoopService, resolveConfig } from './loop.ts';

/** Batches per table per pass (a pass deletes at most maxBatches × batchSize runs). */
export const RETENTION_MAX_BATCHES = 100;

export interface RetentionSweepConfig {
  intervalMs: number;
  /** Finished runs older than this go (0: kept forever); a flow's health.retention overrides. */
  runSeconds: number;
  /** Delivered/failed notifications older than this go (0: kept forever). */
  notifySeconds: number;
  /** Newest finished runs kept per flow whatever their age. */
  keepRuns: number;
  batchSize: number;
  maxBatches: number;
  /** The guard's failure streak, which keepRuns never cuts into. */
  maxConsecutiveFailures: number;
}

export const RETENTION_DEFAULTS: RetentionSweepConfig = {
  intervalMs: DEFAULTS.retentionIntervalSeconds * 1000,
  runSeconds: DEFAULTS.runRetentionSeconds,
  notifySeconds: DEFAULTS.notifyRetentionSeconds,
  keepRuns: DEFAULTS.retentionKeepRuns,
  batchSize: DEFAULTS.retentionBatchSize,
  maxBatches: RETENTION_MAX_BATCHES,
  maxConsecutiveFailures: DEFAULTS.maxConsecutiveFailures,
};

export function retentionSweepConfig(input: Partial<RetentionSweepConfig> = {}): RetentionSweepConfig {
  return resolveConfig('retention sweep', RETENTION_DEFAULTS, input, {
    intervalMs: { min: 1 },
    runSeconds: { min: 0 },
    notifySeconds: { min: 0 },
    keepRuns: { min: 0 },
    batchSize: { min: 1 },
    maxBatches: { min: 1 },
    maxConsecutiveFailures: { min: 1 },
  });
}

/** Rows deleted, per table. */
export type RetentionTable = 'runs' | 'run_state_history' | 'task_results' | 'notification_messages' | 'notification_events';

export interface RetentionDeps {
  pool: pg.Pool;
  log: Logger;
  metrics?: Pick<Metrics, 'retentionDeleted'>;
}

/** Rows deleted by one pass, per table. */
export type RetentionResult = Record<RetentionTable, number> & { batches: number };

export class RetentionSweeper extends LoopService<RetentionSweepConfig> {
  readonly #deps: RetentionDeps;

  constructor(deps: RetentionDeps, config: Partial<RetentionSweepConfig> = {}) {
    const log = deps.log.child({ component: 'retention' });
    super('retention', retentionSweepConfig(config), log);
    this.#deps = { ...deps, log };
  }

  /**
   * Delete expired rows batch by batch until a batch comes back short; none after `signal` aborts
   * (the drain). `now` overrides Postgres time (tests).
   */
  async runOnce(options: { now?: Date; maxBatches?: number; signal?: AbortSignal } = {}): Promise<RetentionResult> {
    const c = this.config;
    const { pool, log, metrics } = this.#deps;
    const maxBatches = options.maxBatches ?? c.maxBatches;
    const result: RetentionResult = { runs: 0, run_state_history: 0, task_results: 0, notification_messages: 0, notification_events: 0, batches: 0 };
    const count = (table: RetentionTable, n: number) => {
      result[table] += n;
      if (n > 0) metrics?.retentionDeleted(table, n);
    };
    // Runs: a flow's health.retention may keep runs even when the global window is 0 (forever), and vice versa.
    for (let i = 0; i < maxBatches && !options.signal?.aborted; i++) {
      const out = await withTransaction(pool, (tx) =>
        deleteExpiredRuns(tx, { retentionSeconds: c.runSeconds, keepRuns: c.keepRuns, defaultMaxFailures: c.maxConsecutiveFailures, limit: c.batchSize, now: options.now }),
      );
      result.batches++;
      count('runs', out.runs);
      count('run_state_history', out.history);
      count('task_results', out.tasks);
      if (out.runs < c.batchSize) break;
    }
    for (let i = 0; i < maxBatches && c.notifySeconds > 0 && !options.signal?.aborted; i++) {
      const out = await withTransaction(pool, (tx) => deleteExpiredNotifications(tx, { retentionSeconds: c.notifySeconds, limit: c.batchSize, now: options.now }));
      result.batches++;
      count('notification_messages', out.messages);
      count('notification_events', out.events);
      if (out.messages < c.batchSize && out.events < c.batchSize) break;
    }
    if (result.runs + result.notification_messages + result.notification_events > 0) log.info({ ...result }, 'retention sweep deleted expired rows');
    return result;
  }
}
