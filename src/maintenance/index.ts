/**
 * The one place that says which maintenance loops run in which role (LOOPS_BY_ROLE), builds every
 * loop from the pod's config, and starts and stops the ones its roles run, in order. Every pod may
 * run every role: no loop assumes a leader. Design: docs/architecture.md, "Maintenance loops".
 */
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { hasRole, type Config, type Role } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Waker } from '../scheduling/waker.ts';
import type { PrefectConnector } from '../prefect/connector.ts';
import type { MaintenanceService } from './loop.ts';
import type { TransitionDeps } from '../runs/service.ts';
import { Scheduler, type TickConfig } from './tick.ts';
import { LateSweeper, type LateSweepConfig } from './late-sweep.ts';
import { HealthSweeper, type HealthSweepConfig } from './health-sweep.ts';
import { RetentionSweeper, type RetentionSweepConfig } from './retention.ts';
import { PrefectWatcher, type PrefectWatchConfig } from './prefect-watch.ts';
import { ChartRollup, type ChartRollupConfig } from './chart-rollup.ts';

export interface MaintenanceLoops {
  scheduler: Scheduler;
  lateSweeper: LateSweeper;
  healthSweeper: HealthSweeper;
  retentionSweeper: RetentionSweeper;
  chartRollup: ChartRollup;
  /** Only when Prefect is configured. */
  prefectWatcher: PrefectWatcher | undefined;
}

/** Which loops each role runs, in start (and stop) order; a pod with several roles runs the union. */
export const LOOPS_BY_ROLE = {
  scheduler: ['scheduler', 'lateSweeper', 'healthSweeper', 'retentionSweeper', 'chartRollup'],
  worker: ['prefectWatcher'],
  api: [],
} as const satisfies Record<Exclude<Role, 'all'>, ReadonlyArray<keyof MaintenanceLoops>>;

export interface MaintenanceDeps {
  pool: pg.Pool;
  boss: PgBoss;
  log: Logger;
  metrics: Metrics;
  /** This pod's exact-time dispatch wake-ups: fed by the tick when the pod also runs the worker role. */
  waker: Waker;
  /** What run transitions need (events, the guard's failure hook): the Prefect watch writes runs. */
  transitions: TransitionDeps;
  /** The Prefect connector, when Prefect is configured: then the worker role runs the watch. */
  prefect?: PrefectConnector | undefined;
}

export interface MaintenanceConfigs {
  tick: Partial<TickConfig>;
  lateSweep: Partial<LateSweepConfig>;
  healthSweep: Partial<HealthSweepConfig>;
  retention: Partial<RetentionSweepConfig>;
  prefectWatch: Partial<PrefectWatchConfig>;
  chartRollup: Partial<ChartRollupConfig>;
}

/** Each loop's config from the pod's environment config (src/config.ts); the rest are the loops' defaults. */
export function maintenanceConfigs(config: Config): MaintenanceConfigs {
  const p = config.prefect;
  const r = config.retention;
  return {
    tick: { intervalMs: config.tickIntervalMs, horizonSeconds: config.horizonSeconds, catchupGraceSeconds: config.catchupGraceSeconds, claimBatch: config.claimBatch },
    lateSweep: { intervalMs: config.lateSweepIntervalMs, lateAfterSeconds: config.lateAfterSeconds },
    healthSweep: { intervalMs: config.healthSweepIntervalMs, maxConsecutiveFailures: config.maxConsecutiveFailures },
    retention: {
      intervalMs: r.intervalSeconds * 1000,
      runSeconds: r.runSeconds,
      notifySeconds: r.notifySeconds,
      keepRuns: r.keepRuns,
      batchSize: r.batchSize,
      maxConsecutiveFailures: config.maxConsecutiveFailures,
    },
    chartRollup: {},
    // An absent value takes the loop's default (resolveConfig); only the interval needs converting.
    prefectWatch: {
      pageSize: p.pageSize,
      intervalMs: p.watchIntervalSeconds === undefined ? undefined : Math.round(p.watchIntervalSeconds * 1000),
      lookbackSeconds: p.watchLookbackSeconds,
      taskGraceSeconds: p.taskGraceSeconds,
    },
  };
}

/**
 * Every loop is built whatever the roles (tests drive `runOnce()` on any of them); `start()` and
 * `stop()` touch only the ones this pod's roles run, one after the other.
 */
export class Maintainer {
  readonly loops: MaintenanceLoops;
  /** The loops this pod runs, in start order. */
  readonly running: readonly MaintenanceService[];

  constructor(deps: MaintenanceDeps, config: Config, roles: readonly Role[]) {
    const { pool, boss, log, metrics } = deps;
    const configs = maintenanceConfigs(config);
    this.loops = {
      // Only a pod that dispatches wakes its own dispatch workers at the fire times its tick created.
      scheduler: new Scheduler({ pool, boss, log, metrics, ...(hasRole(roles, 'worker') ? { waker: deps.waker } : {}) }, configs.tick),
      lateSweeper: new LateSweeper({ pool, boss, log, metrics }, configs.lateSweep),
      healthSweeper: new HealthSweeper({ pool, boss, log }, configs.healthSweep),
      retentionSweeper: new RetentionSweeper({ pool, log, metrics }, configs.retention),
      chartRollup: new ChartRollup({ pool, log }, configs.chartRollup),
      prefectWatcher: deps.prefect
        ? new PrefectWatcher({ pool, boss, transitions: deps.transitions, log: log.child({ component: 'prefect' }), connector: deps.prefect }, configs.prefectWatch)
        : undefined,
    };
    const names = new Set<keyof MaintenanceLoops>();
    for (const [role, loops] of Object.entries(LOOPS_BY_ROLE) as Array<[keyof typeof LOOPS_BY_ROLE, ReadonlyArray<keyof MaintenanceLoops>]>) {
      if (hasRole(roles, role)) for (const name of loops) names.add(name);
    }
    this.running = [...names].flatMap((name) => this.loops[name] ?? []);
  }

  start(): void {
    for (const loop of this.running) loop.start();
  }

  /** Stop each loop in turn: its pass in flight yields at its next batch boundary. */
  async stop(): Promise<void> {
    for (const loop of this.running) await loop.stop();
  }
}
