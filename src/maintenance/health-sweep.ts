/**
 * The health sweep: every `intervalMs` on every pod, enforce holds in place (a held flow switched
 * back on is disabled again), then request a throttled health evaluation for each flow that fails
 * a rule or holds an open hold (src/guard/health.ts). The failure hook is the fast path; this is
 * the floor that catches what it missed.
 */
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { DEFAULTS } from '../config.ts';
import type { Logger } from '../log.ts';
import { enforceHolds, requestSweepEvaluations, type Enforcement } from '../guard/health.ts';
import { LoopService, resolveConfig } from './loop.ts';

/** How far back the sweep looks for failures (the failure hook is the fast path). */
export const HEALTH_SWEEP_WINDOW_SECONDS = 3600;

export interface HealthSweepConfig {
  intervalMs: number;
  /** The rule's threshold for flows without their own health.maxConsecutiveFailures. */
  maxConsecutiveFailures: number;
  windowSeconds: number;
}

export const HEALTH_SWEEP_DEFAULTS: HealthSweepConfig = {
  intervalMs: DEFAULTS.healthSweepIntervalMs,
  maxConsecutiveFailures: DEFAULTS.maxConsecutiveFailures,
  windowSeconds: HEALTH_SWEEP_WINDOW_SECONDS,
};

export function healthSweepConfig(input: Partial<HealthSweepConfig> = {}): HealthSweepConfig {
  return resolveConfig('health sweep', HEALTH_SWEEP_DEFAULTS, input, {
    intervalMs: { min: 1 },
    maxConsecutiveFailures: { min: 1 },
    windowSeconds: { min: 1 },
  });
}

export interface HealthSweepDeps {
  pool: pg.Pool;
  boss: PgBoss;
  log: Logger;
}

export interface SweepResult {
  enforced: Enforcement[];
  /** Flows a throttled health job was requested for (failing or held). */
  requested: number;
}

export class HealthSweeper extends LoopService<HealthSweepConfig> {
  readonly #deps: HealthSweepDeps;

  constructor(deps: HealthSweepDeps, config: Partial<HealthSweepConfig> = {}) {
    const log = deps.log.child({ component: 'health-sweep' });
    super('health-sweep', healthSweepConfig(config), log);
    this.#deps = { pool: deps.pool, boss: deps.boss, log };
  }

  /** One pass: enforce holds in place, then request evaluations (failing flows) and connector enforcement (held flows). */
  async runOnce(options: { now?: Date; signal?: AbortSignal } = {}): Promise<SweepResult> {
    const enforced = await enforceHolds(this.#deps);
    // Each step is one set-based statement; between them the pass yields to a drain.
    if (options.signal?.aborted) return { enforced, requested: 0 };
    const requested = await requestSweepEvaluations(this.#deps, {
      maxConsecutiveFailures: this.config.maxConsecutiveFailures,
      windowSeconds: this.config.windowSeconds,
      slotSeconds: Math.max(1, Math.round(this.config.intervalMs / 1000)),
      now: options.now,
    });
    return { enforced, requested };
  }
}
