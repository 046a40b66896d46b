/**
 * The late sweep: every `intervalMs`, mark the runs that did not start on time as
 * (SCHEDULED, Late), batch by batch (src/guard/late.ts), the way Prefect's MarkLateRuns does but
 * set-based. Late is a rename within SCHEDULED, so dispatch still picks the run up.
 */
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { DEFAULTS } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { markLateBatch } from '../guard/late.ts';
import type { LateRun } from '../runs/store.ts';
import { LoopService, resolveConfig } from './loop.ts';

export const LATE_BATCH_SIZE = 2000;
/** Batches per pass; a pass that hits it runs again at once (the loop yields to stop() in between). */
export const LATE_MAX_BATCHES = 20;

export interface LateSweepConfig {
  intervalMs: number;
  /** The threshold of flows without their own late_after_seconds. */
  lateAfterSeconds: number;
  /** Runs per transaction. */
  batchSize: number;
  maxBatches: number;
}

export const LATE_SWEEP_DEFAULTS: LateSweepConfig = {
  intervalMs: DEFAULTS.lateSweepIntervalMs,
  lateAfterSeconds: DEFAULTS.lateAfterSeconds,
  batchSize: LATE_BATCH_SIZE,
  maxBatches: LATE_MAX_BATCHES,
};

export function lateSweepConfig(input: Partial<LateSweepConfig> = {}): LateSweepConfig {
  return resolveConfig('late sweep', LATE_SWEEP_DEFAULTS, input, {
    intervalMs: { min: 1 },
    lateAfterSeconds: { min: 0 },
    batchSize: { min: 1 },
    maxBatches: { min: 1 },
  });
}

export interface LateSweepDeps {
  pool: pg.Pool;
  boss: PgBoss;
  log: Logger;
  metrics?: Pick<Metrics, 'runsMarkedLate'>;
  /** Test signal: after each batch commits, with the runs it marked. */
  onBatch?: (marked: LateRun[]) => void;
}

export interface LateSweepResult {
  marked: number;
  batches: number;
  /** The pass stopped early (drain, or its batch bound) with late runs possibly left unmarked. */
  more?: boolean;
}

export class LateSweeper extends LoopService<LateSweepConfig> {
  readonly #deps: LateSweepDeps;

  constructor(deps: LateSweepDeps, config: Partial<LateSweepConfig> = {}) {
    const log = deps.log.child({ component: 'late-sweep' });
    super('late-sweep', lateSweepConfig(config), log);
    this.#deps = { ...deps, log };
  }

  /** Mark every late run, batch by batch. `now` overrides Postgres time (tests). */
  async runOnce(options: { now?: Date; signal?: AbortSignal; maxBatches?: number } = {}): Promise<LateSweepResult> {
    const { batchSize: limit, lateAfterSeconds } = this.config;
    const { log, metrics, onBatch } = this.#deps;
    const result: LateSweepResult = { marked: 0, batches: 0 };
    let from: Date | undefined;
    for (;;) {
      const marked = await markLateBatch(this.#deps, { now: options.now, defaultAfterSeconds: lateAfterSeconds, limit, from });
      result.batches++;
      result.marked += marked.length;
      for (const r of marked) if (!from || r.scheduledFor > from) from = r.scheduledFor;
      metrics?.runsMarkedLate(marked.length);
      onBatch?.(marked);
      if (marked.length > 0) {
        const flows = [...new Set(marked.map((r) => r.flowName))];
        log.info({ count: marked.length, flows: flows.slice(0, 20) }, `marked ${marked.length} run${marked.length === 1 ? '' : 's'} late (${flows.slice(0, 5).join(', ')}${flows.length > 5 ? ', …' : ''})`);
      }
      if (marked.length < limit) return result;
      // Bounded pass; stop at once when the pod drains (the next pass, or pod, continues).
      if (options.signal?.aborted || result.batches >= (options.maxBatches ?? this.config.maxBatches)) return { ...result, more: true };
    }
  }
}
