/**
 * The scheduler tick. Runs in every pod, every `tickIntervalMs`; no leader.
 *
 * One tick = repeated short transactions, each:
 *   1. claim up to `claimBatch` schedules due by Postgres now + horizon (FOR UPDATE SKIP LOCKED);
 *   2. plan their fire times (catch-up policy for missed ones);
 *   3. insert the runs (unique per schedule and fire time) and enqueue their dispatch jobs with
 *      startAfter = fire time and job id = run id, in the same transaction;
 *   4. advance next_run_at.
 * A pod that dies mid-transaction rolls everything back and another pod claims the schedule on its
 * next tick. Two pods can never both insert a fire: the claim serialises them and the unique index
 * would reject the second anyway, and only rows this transaction created get jobs.
 */
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { bossDb, dbNow, withTransaction } from '../db/client.ts';
import { advanceSchedules, claimDueSchedules } from '../queries/schedules.ts';
import { runInsertScheduledMany, type PlannedRun } from '../runs/store-insert.ts';
import { insertJobs, QUEUES } from '../queue/catalog.ts';
import { planFires } from './plan.ts';
import type { ScheduleSpec } from './fire-times.ts';
import type { Logger } from '../log.ts';
import { Loop } from '../util/loop.ts';

export interface TickConfig {
  tickIntervalMs: number;
  horizonSeconds: number;
  catchupGraceSeconds: number;
  claimBatch: number;
  /** Batches per tick (bounded work; default TICK_MAX_BATCHES). */
  tickMaxBatches?: number;
}

/** 20 × claimBatch (500) = 10,000 schedules per tick at most; a tick that hits it runs again at once. */
export const TICK_MAX_BATCHES = 20;

export interface TickResult {
  claimed: number;
  created: number;
  batches: number;
  /** The tick stopped early (drain, or its batch bound) with due schedules possibly left. */
  more: boolean;
}

export class Scheduler {
  readonly #pool: pg.Pool;
  readonly #boss: PgBoss;
  readonly #config: TickConfig;
  readonly #log: Logger;
  readonly #loop: Loop;
  /** Called after each batch commits, with the runs it created (metrics, tests). */
  onCreated: ((runs: Array<{ id: string; scheduledFor: Date }>) => void) | undefined;
  /** Called with Postgres time minus local time each time the tick reads Postgres's clock. */
  onClockOffset: ((offsetMs: number) => void) | undefined;

  constructor(pool: pg.Pool, boss: PgBoss, config: TickConfig, log: Logger) {
    this.#pool = pool;
    this.#boss = boss;
    this.#config = config;
    this.#log = log.child({ component: 'scheduler' });
    this.#loop = new Loop('scheduler', config.tickIntervalMs, (signal) => this.runOnce({ signal }).then((r) => (r.more && !signal.aborted ? 'again' : undefined)), this.#log);
  }

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /**
   * One tick: batches until nothing due is left, at most `maxBatches` (bounded work per tick), and
   * never another batch once `signal` is aborted (the pod is draining: each batch is one short
   * transaction, so stop() waits for one batch at most). `now` overrides Postgres time (tests).
   * A schedule left behind is not lost: its next_run_at stays due, and fires that fall further
   * behind than the catch-up grace are then handled by its catch-up policy (docs/operations.md).
   */
  async runOnce(options: { now?: Date; signal?: AbortSignal; maxBatches?: number } = {}): Promise<TickResult> {
    const result: TickResult = { claimed: 0, created: 0, batches: 0, more: false };
    const maxBatches = options.maxBatches ?? this.#config.tickMaxBatches ?? TICK_MAX_BATCHES;
    for (;;) {
      const batch = await this.#runBatch(options.now);
      result.batches++;
      result.claimed += batch.claimed;
      result.created += batch.created;
      if (batch.claimed < this.#config.claimBatch) return result;
      if (options.signal?.aborted || result.batches >= maxBatches) {
        result.more = true;
        return result;
      }
    }
  }

  async #runBatch(nowOverride: Date | undefined): Promise<{ claimed: number; created: number }> {
    const created = await withTransaction(this.#pool, async (tx) => {
      let now = nowOverride;
      if (!now) {
        now = await dbNow(tx);
        this.onClockOffset?.(now.getTime() - Date.now());
      }
      const until = new Date(now.getTime() + this.#config.horizonSeconds * 1000);
      const due = await claimDueSchedules(tx, until, this.#config.claimBatch);
      if (due.length === 0) return { claimed: 0, runs: [] };

      const planned: PlannedRun[] = [];
      const advances: Array<{ id: string; nextRunAt: Date; lastRunAt: Date | null }> = [];
      for (const s of due) {
        const spec: ScheduleSpec = s.kind === 'cron'
          ? { kind: 'cron', cron: s.cron!, timezone: s.timezone }
          : { kind: 'interval', everySeconds: s.intervalSeconds!, anchor: s.anchor };
        try {
          const plan = planFires(
            { spec, nextRunAt: s.nextRunAt, catchup: s.catchup, catchupWindowSeconds: s.catchupWindowSeconds, catchupMax: s.catchupMax },
            { now, horizonSeconds: this.#config.horizonSeconds, graceSeconds: this.#config.catchupGraceSeconds },
          );
          for (const t of plan.fireTimes) planned.push({ flowId: s.flowId, scheduleId: s.id, scheduledFor: t, parameters: s.parameters });
          advances.push({ id: s.id, nextRunAt: plan.nextRunAt, lastRunAt: plan.fireTimes.at(-1) ?? null });
        } catch (err) {
          // A schedule that cannot be planned (should be impossible after validation) must not block the others.
          this.#log.error({ err, scheduleId: s.id }, 'could not plan schedule; pushing it back one hour');
          advances.push({ id: s.id, nextRunAt: new Date(now.getTime() + 3_600_000), lastRunAt: null });
        }
      }
      const runs = await runInsertScheduledMany(tx, planned);
      if (runs.length > 0) {
        await insertJobs(
          this.#boss,
          QUEUES.dispatch,
          runs.map((r) => ({ id: r.id, data: { runId: r.id }, startAfter: r.scheduledFor })),
          { db: bossDb(tx) },
        );
      }
      await advanceSchedules(tx, advances);
      return { claimed: due.length, runs };
    });
    if (created.runs.length > 0) {
      this.#log.debug({ claimed: created.claimed, created: created.runs.length }, 'materialised runs');
      this.onCreated?.(created.runs);
    }
    return { claimed: created.claimed, created: created.runs.length };
  }
}
