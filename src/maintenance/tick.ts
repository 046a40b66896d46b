/**
 * The scheduler tick: every pod, every `intervalMs`, no leader. A pass runs batches
 * (src/scheduling/materialise.ts) until nothing due is left, at most `maxBatches`, and never another
 * once the pod drains; a schedule left behind stays due for the next pass or pod.
 */
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { DEFAULTS } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { materialiseBatch, type MaterialisedBatch } from '../scheduling/materialise.ts';
import type { Waker } from '../scheduling/waker.ts';
import { LoopService, resolveConfig } from './loop.ts';

/** 20 × claimBatch (500) = 10,000 schedules per tick at most; a tick that hits it runs again at once. */
export const TICK_MAX_BATCHES = 20;

export interface TickConfig {
  intervalMs: number;
  /** Runs are created this far ahead of their fire time. */
  horizonSeconds: number;
  /** Fires missed by more than this follow the schedule's catch-up policy. */
  catchupGraceSeconds: number;
  /** Schedules claimed per batch (one transaction). */
  claimBatch: number;
  maxBatches: number;
}

export const TICK_DEFAULTS: TickConfig = {
  intervalMs: DEFAULTS.tickIntervalMs,
  horizonSeconds: DEFAULTS.horizonSeconds,
  catchupGraceSeconds: DEFAULTS.catchupGraceSeconds,
  claimBatch: DEFAULTS.claimBatch,
  maxBatches: TICK_MAX_BATCHES,
};

export function tickConfig(input: Partial<TickConfig> = {}): TickConfig {
  return resolveConfig('tick', TICK_DEFAULTS, input, {
    intervalMs: { min: 1 },
    horizonSeconds: { min: 0 },
    catchupGraceSeconds: { min: 0 },
    claimBatch: { min: 1 },
    maxBatches: { min: 1 },
  });
}

export interface TickDeps {
  pool: pg.Pool;
  boss: PgBoss;
  log: Logger;
  metrics?: Pick<Metrics, 'runsCreated'>;
  /** This pod's exact-time dispatch wake-ups (worker role): fed the runs created and the clock offset. */
  waker?: Pick<Waker, 'schedule' | 'offsetMs'>;
  /** Test signal: after each batch commits. */
  onBatch?: (batch: MaterialisedBatch) => void;
}

export interface TickResult {
  claimed: number;
  created: number;
  batches: number;
  /** The tick stopped early (drain, or its batch bound) with due schedules possibly left. */
  more: boolean;
}

export interface TickRunOptions {
  /** Overrides Postgres time (tests). */
  now?: Date;
  signal?: AbortSignal;
  maxBatches?: number;
}

export class Scheduler extends LoopService<TickConfig> {
  readonly #deps: TickDeps;

  constructor(deps: TickDeps, config: Partial<TickConfig> = {}) {
    const log = deps.log.child({ component: 'scheduler' });
    super('scheduler', tickConfig(config), log);
    this.#deps = { ...deps, log };
  }

  async runOnce(options: TickRunOptions = {}): Promise<TickResult> {
    const { claimBatch, horizonSeconds, catchupGraceSeconds } = this.config;
    const { metrics, waker, onBatch } = this.#deps;
    const result: TickResult = { claimed: 0, created: 0, batches: 0, more: false };
    const maxBatches = options.maxBatches ?? this.config.maxBatches;
    for (;;) {
      const batch = await materialiseBatch(this.#deps, { claimBatch, horizonSeconds, catchupGraceSeconds, ...(options.now ? { now: options.now } : {}) });
      if (waker && batch.clockOffsetMs !== undefined) waker.offsetMs = batch.clockOffsetMs;
      if (batch.runs.length > 0) {
        metrics?.runsCreated(batch.runs.length);
        waker?.schedule(batch.runs.map((r) => r.scheduledFor));
      }
      onBatch?.(batch);
      result.batches++;
      result.claimed += batch.claimed;
      result.created += batch.runs.length;
      if (batch.claimed < claimBatch) return result;
      if (options.signal?.aborted || result.batches >= maxBatches) {
        result.more = true;
        return result;
      }
    }
  }
}
