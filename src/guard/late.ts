/**
 * The late sweep: marks runs that did not start on time as (SCHEDULED, Late), the way Prefect's
 * MarkLateRuns service does, but set-based and safe on every pod at once.
 *
 * A run is Late when its state is still (SCHEDULED, Scheduled) and its scheduled_for is older than
 * the threshold: flows.late_after_seconds, or config.lateAfterSeconds (default 15 s). Each batch is
 * one transaction: one statement claims, renames and records history for up to `batchSize` runs
 * (src/runs/store.ts runMarkLateMany), then one `run.late` event per run is published with one
 * insert per subscribed queue. Concurrent sweepers skip each other's rows, and a run is marked at
 * most once: after the rename it no longer matches; once dispatched its type is no longer
 * SCHEDULED. Late is a rename within SCHEDULED, so dispatch still picks the run up normally.
 *
 * Failure modes: a failing pass is logged by the Loop and retried next interval; a transaction that
 * dies rolls back its batch (marks, history and events together).
 */
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { withTransaction } from '../db/client.ts';
import { runMarkLateMany } from '../runs/store.ts';
import { EVENTS } from '../queue/catalog.ts';
import { publishEvents } from '../runs/service.ts';
import type { Logger } from '../log.ts';
import { Loop } from '../util/loop.ts';

export const LATE_BATCH_SIZE = 2000;
/** Batches per pass; a pass that hits it runs again at once (the loop yields to stop() in between). */
export const LATE_MAX_BATCHES = 20;

export interface LateConfig {
  lateAfterSeconds: number;
  lateSweepIntervalMs: number;
  /** Runs per transaction (default LATE_BATCH_SIZE). */
  lateBatchSize?: number;
  lateMaxBatches?: number;
}

export interface LateSweepResult {
  marked: number;
  batches: number;
  /** The pass stopped early (drain, or its batch bound) with late runs possibly left unmarked. */
  more?: boolean;
}

export class LateSweeper {
  readonly #pool: pg.Pool;
  readonly #boss: PgBoss;
  readonly #config: LateConfig;
  readonly #log: Logger;
  readonly #loop: Loop;
  /** Called with the number of runs each batch marked (metrics). */
  onMarked: ((count: number) => void) | undefined;

  constructor(pool: pg.Pool, boss: PgBoss, config: LateConfig, log: Logger) {
    this.#pool = pool;
    this.#boss = boss;
    this.#config = config;
    this.#log = log.child({ component: 'late-sweep' });
    this.#loop = new Loop('late-sweep', config.lateSweepIntervalMs, (signal) => this.runOnce({ signal }).then((r) => (r.more ? 'again' : undefined)), this.#log);
  }

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** Mark every late run, batch by batch. `now` overrides Postgres time (tests). */
  async runOnce(options: { now?: Date; signal?: AbortSignal; maxBatches?: number } = {}): Promise<LateSweepResult> {
    const limit = this.#config.lateBatchSize ?? LATE_BATCH_SIZE;
    const result: LateSweepResult = { marked: 0, batches: 0 };
    // Each batch starts where the previous one ended (see runMarkLateMany: keeps a sweep linear).
    let from: Date | undefined;
    for (;;) {
      const marked = await withTransaction(this.#pool, async (tx) => {
        const runs = await runMarkLateMany(tx, { now: options.now, defaultAfterSeconds: this.#config.lateAfterSeconds, limit, from });
        await publishEvents(
          this.#boss,
          tx,
          runs.map((r) => ({
            event: EVENTS.runLate,
            flowId: r.flowId,
            flowName: r.flowName,
            runId: r.id,
            message: `not started within ${r.lateAfterSeconds} s of its scheduled time`,
            at: r.at.toISOString(),
            details: { scheduledFor: r.scheduledFor.toISOString(), lateAfterSeconds: r.lateAfterSeconds },
          })),
        );
        return runs;
      });
      result.batches++;
      result.marked += marked.length;
      for (const r of marked) if (!from || r.scheduledFor > from) from = r.scheduledFor;
      this.onMarked?.(marked.length);
      if (marked.length > 0) {
        const flows = [...new Set(marked.map((r) => r.flowName))];
        this.#log.info({ count: marked.length, flows: flows.slice(0, 20) }, `marked ${marked.length} run${marked.length === 1 ? '' : 's'} late (${flows.slice(0, 5).join(', ')}${flows.length > 5 ? ', …' : ''})`);
      }
      if (marked.length < limit) return result;
      // Bounded pass; stop at once when the pod drains (the next pass, or pod, continues).
      if (options.signal?.aborted || result.batches >= (options.maxBatches ?? this.#config.lateMaxBatches ?? LATE_MAX_BATCHES)) return { ...result, more: true };
    }
  }
}
