/**
 * The retention sweep: keeps flowwarden's tables bounded by deleting what has outlived its window —
 * finished runs (with their history and task results) and delivered notifications. pg-boss deletes
 * its own finished jobs (each queue's deleteAfterSeconds, FLOWWARDEN_JOB_RETENTION_SECONDS).
 *
 * Runs on every scheduler pod, like the late sweep. Each batch is one short transaction deleting
 * at most `batchSize` rows with FOR UPDATE SKIP LOCKED (src/queries/retention.ts), so pods sweep
 * side by side, and the tick and dispatch never wait on it: they write new and open runs, which a
 * sweep never touches. A pass stops after `maxBatches` so a first sweep over a year of history
 * cannot monopolise a connection; the next pass continues.
 *
 * What is kept whatever its age: see src/queries/retention.ts. Failure modes: a failing pass is
 * logged by the Loop and retried next interval; a batch that dies rolls back alone.
 */
import type pg from 'pg';
import { withTransaction } from '../db/client.ts';
import type { RetentionConfig } from '../config.ts';
import { deleteExpiredNotifications, deleteExpiredRuns } from '../queries/retention.ts';
import type { Logger } from '../log.ts';
import { Loop } from './loop.ts';

/** Batches per table per pass (a pass deletes at most maxBatches × batchSize runs). */
export const RETENTION_MAX_BATCHES = 100;

export interface RetentionSweepConfig {
  retention: RetentionConfig;
  maxConsecutiveFailures: number;
}

/** Rows deleted by one pass, per table. */
export interface RetentionResult {
  runs: number;
  run_state_history: number;
  task_results: number;
  notification_messages: number;
  notification_events: number;
  batches: number;
}

export class RetentionSweeper {
  readonly #pool: pg.Pool;
  readonly #config: RetentionSweepConfig;
  readonly #log: Logger;
  readonly #loop: Loop;
  /** Called after each batch with the rows it deleted per table (metrics). */
  onDeleted: ((table: string, count: number) => void) | undefined;

  constructor(pool: pg.Pool, config: RetentionSweepConfig, log: Logger) {
    this.#pool = pool;
    this.#config = config;
    this.#log = log.child({ component: 'retention' });
    this.#loop = new Loop('retention', config.retention.intervalSeconds * 1000, () => this.runOnce().then(() => undefined), this.#log);
  }

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** Delete expired rows batch by batch until a batch comes back short. `now` overrides Postgres time (tests). */
  async runOnce(options: { now?: Date; maxBatches?: number } = {}): Promise<RetentionResult> {
    const r = this.#config.retention;
    const maxBatches = options.maxBatches ?? RETENTION_MAX_BATCHES;
    const result: RetentionResult = { runs: 0, run_state_history: 0, task_results: 0, notification_messages: 0, notification_events: 0, batches: 0 };
    const count = (table: keyof Omit<RetentionResult, 'batches'>, n: number) => {
      result[table] += n;
      if (n > 0) this.onDeleted?.(table, n);
    };
    // Runs: a flow's health.retention may keep runs even when the global window is 0 (forever), and vice versa.
    for (let i = 0; i < maxBatches; i++) {
      const out = await withTransaction(this.#pool, (tx) =>
        deleteExpiredRuns(tx, { retentionSeconds: r.runSeconds, keepRuns: r.keepRuns, defaultMaxFailures: this.#config.maxConsecutiveFailures, limit: r.batchSize, now: options.now }),
      );
      result.batches++;
      count('runs', out.runs);
      count('run_state_history', out.history);
      count('task_results', out.tasks);
      if (out.runs < r.batchSize) break;
    }
    for (let i = 0; i < maxBatches && r.notifySeconds > 0; i++) {
      const out = await withTransaction(this.#pool, (tx) => deleteExpiredNotifications(tx, { retentionSeconds: r.notifySeconds, limit: r.batchSize, now: options.now }));
      result.batches++;
      count('notification_messages', out.messages);
      count('notification_events', out.events);
      if (out.messages < r.batchSize && out.events < r.batchSize) break;
    }
    if (result.runs + result.notification_messages + result.notification_events > 0) this.#log.info({ ...result }, 'retention sweep deleted expired rows');
    return result;
  }
}
