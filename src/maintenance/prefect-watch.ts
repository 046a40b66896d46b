/**
 * The Prefect watch (worker role, when Prefect is configured): every `intervalMs`, import the runs
 * Prefect scheduled for each `{ type: prefect, watch: true }` flow, then re-read the open ones and
 * late task runs (src/prefect/watch.ts). A pass never throws: a failing flow is logged, returned in
 * `errors`, and retried next pass from its cursor.
 */
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { TransitionDeps } from '../runs/service.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../errors.ts';
import { DEFAULTS } from '../config.ts';
import type { FlowRow } from '../queries/flows.ts';
import { listWatchedFlows } from '../queries/prefect.ts';
import { PREFECT_PAGE_SIZE_MAX } from '../prefect/client/index.ts';
import type { PrefectConnector } from '../prefect/connector.ts';
import { importWatchedFlow, recordLateTaskRuns, refreshOpenWatchedRuns, type WatchContext, type WatchSettings } from '../prefect/watch.ts';
import { LoopService, resolveConfig } from './loop.ts';

export interface PrefectWatchConfig extends WatchSettings {
  intervalMs: number;
  /** Page size for /flow_runs/filter (Prefect's default cap is 200; a lower cap the server names is adopted). */
  pageSize: number;
  /** How far back a new watch starts importing. */
  lookbackSeconds: number;
  /** Re-read window before the cursor on each pass's first page (runs created late with a past expected start). */
  overlapSeconds: number;
  /** Pages per flow per pass, so one busy deployment cannot starve the others. */
  maxPagesPerPass: number;
  /** Open runs re-read per pass. */
  maxOpenPerPass: number;
  /**
   * How long after a Prefect run finished its task runs are read again: Prefect 3 records task runs
   * from events, asynchronously, so some appear after the flow run is terminal (and a first read may
   * have failed). A late failed critical task is still evaluated.
   */
  taskGraceSeconds: number;
}

export const WATCH_DEFAULTS: PrefectWatchConfig = {
  intervalMs: DEFAULTS.prefectWatchIntervalSeconds * 1000,
  pageSize: DEFAULTS.prefectPageSize,
  lookbackSeconds: DEFAULTS.prefectWatchLookbackSeconds,
  overlapSeconds: 120,
  maxPagesPerPass: 50,
  maxOpenPerPass: 2_000,
  taskGraceSeconds: DEFAULTS.prefectTaskGraceSeconds,
};

export function prefectWatchConfig(input: Partial<PrefectWatchConfig> = {}): PrefectWatchConfig {
  return resolveConfig('prefect watch', WATCH_DEFAULTS, input, {
    intervalMs: { min: 1 },
    pageSize: { min: 1, max: PREFECT_PAGE_SIZE_MAX },
    lookbackSeconds: { min: 0 },
    overlapSeconds: { min: 0 },
    maxPagesPerPass: { min: 1 },
    maxOpenPerPass: { min: 1 },
    taskGraceSeconds: { min: 0 },
  });
}

export interface PrefectWatchDeps {
  pool: pg.Pool;
  boss: PgBoss;
  /** What run transitions need (events, the guard's failure hook). */
  transitions: TransitionDeps;
  log: Logger;
  connector: PrefectConnector;
}

export interface WatchPassResult {
  flows: number;
  imported: number;
  updated: number;
  pages: number;
  /** Flows another pod was importing at that moment (left to it). */
  busy: number;
  /** Task results recorded after their run had finished. */
  lateTasks: number;
  errors: string[];
}

export class PrefectWatcher extends LoopService<PrefectWatchConfig> {
  readonly #ctx: WatchContext;

  constructor(deps: PrefectWatchDeps, config: Partial<PrefectWatchConfig> = {}) {
    const log = deps.log.child({ loop: 'prefect-watch' });
    super('prefect-watch', prefectWatchConfig(config), log);
    this.#ctx = { pool: deps.pool, boss: deps.boss, transitions: deps.transitions, log, connector: deps.connector, settings: this.config };
  }

  /** One import + refresh pass over every watched flow. Never throws: errors are logged and returned. */
  async runOnce(options: { maxPagesPerPass?: number; signal?: AbortSignal } = {}): Promise<WatchPassResult> {
    const ctx = this.#ctx;
    const { log } = ctx;
    const result: WatchPassResult = { flows: 0, imported: 0, updated: 0, pages: 0, busy: 0, lateTasks: 0, errors: [] };
    let flows: FlowRow[];
    try {
      flows = await listWatchedFlows(ctx.pool);
    } catch (err) {
      result.errors.push(errorMessage(err));
      log.error({ err }, 'cannot list watched flows');
      return result;
    }
    result.flows = flows.length;
    for (const flow of flows) {
      if (options.signal?.aborted) return result; // draining: the next pod's pass resumes from the cursors
      try {
        await importWatchedFlow(ctx, flow, result, options.maxPagesPerPass ?? this.config.maxPagesPerPass, options.signal);
      } catch (err) {
        result.errors.push(`${flow.name}: ${errorMessage(err)}`);
        log.warn({ flow: flow.name, err }, 'Prefect watch import failed; next pass resumes from the cursor');
      }
    }
    if (options.signal?.aborted) return result;
    try {
      result.updated += await refreshOpenWatchedRuns(ctx, options.signal);
    } catch (err) {
      result.errors.push(`refresh: ${errorMessage(err)}`);
      log.warn({ err }, 'Prefect watch refresh failed; retried next pass');
    }
    try {
      result.lateTasks = await recordLateTaskRuns(ctx);
    } catch (err) {
      result.errors.push(`tasks: ${errorMessage(err)}`);
      log.warn({ err }, 'reading late Prefect task runs failed; retried next pass');
    }
    if (result.imported || result.updated) log.info({ imported: result.imported, updated: result.updated }, 'Prefect watch pass');
    return result;
  }
}
