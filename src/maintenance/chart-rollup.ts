/**
 * The chart rollup: every `intervalMs`, count the runs of settled minutes (finished, ended more
 * than SETTLE_SECONDS ago) into run_minutes, so the admin overview's chart reads a row per minute
 * instead of every run of its window (src/queries/chart.ts; docs/scaling.md).
 */
import type pg from 'pg';
import type { Logger } from '../log.ts';
import { rollupRunMinutes, ROLLUP_MINUTES_PER_PASS } from '../queries/chart.ts';
import { LoopService, resolveConfig } from './loop.ts';

export interface ChartRollupConfig {
  intervalMs: number;
  /** Minutes counted per transaction (it holds run_minutes' lock while it counts). */
  minutesPerBatch: number;
  maxBatches: number;
}

export const CHART_ROLLUP_DEFAULTS: ChartRollupConfig = {
  intervalMs: 30_000,
  minutesPerBatch: ROLLUP_MINUTES_PER_PASS,
  maxBatches: 10,
};

export function chartRollupConfig(input: Partial<ChartRollupConfig> = {}): ChartRollupConfig {
  return resolveConfig('chart rollup', CHART_ROLLUP_DEFAULTS, input, {
    intervalMs: { min: 1 },
    minutesPerBatch: { min: 1 },
    maxBatches: { min: 1 },
  });
}

export interface ChartRollupDeps {
  pool: pg.Pool;
  log: Logger;
}

export interface ChartRollupResult {
  minutes: number;
  batches: number;
  /** The pass hit its batch bound (a first pass after an upgrade): the loop runs again at once. */
  more?: boolean;
}

export class ChartRollup extends LoopService<ChartRollupConfig> {
  readonly #deps: ChartRollupDeps;

  constructor(deps: ChartRollupDeps, config: Partial<ChartRollupConfig> = {}) {
    const log = deps.log.child({ component: 'chart-rollup' });
    super('chart-rollup', chartRollupConfig(config), log);
    this.#deps = { ...deps, log };
  }

  /** Count every settled minute not counted yet, batch by batch. `now` overrides Postgres time (tests). */
  async runOnce(options: { now?: Date; signal?: AbortSignal } = {}): Promise<ChartRollupResult> {
    const result: ChartRollupResult = { minutes: 0, batches: 0 };
    for (;;) {
      const n = await rollupRunMinutes(this.#deps.pool, { now: options.now, maxMinutes: this.config.minutesPerBatch });
      result.batches++;
      result.minutes += n;
      if (n < this.config.minutesPerBatch) return result;
      if (options.signal?.aborted || result.batches >= this.config.maxBatches) return { ...result, more: true };
    }
  }
}
