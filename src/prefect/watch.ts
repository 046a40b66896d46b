/**
 * Watch mode: import the runs Prefect schedules itself, so late detection, health rules and
 * notifications work over an existing Prefect without moving its schedules.
 *
 * Each pass, for every flow whose target is `{ type: prefect, watch: true }`:
 *   1. Import, page by page. Each page is one transaction that locks the flow's cursor row
 *      (FOR UPDATE SKIP LOCKED: a pod that finds it locked leaves that flow to the pod holding it),
 *      asks Prefect for the deployment's flow runs with expected_start_time in
 *      [cursor - overlap, now], sorted EXPECTED_START_TIME_ASC, limit ≤ 200, inserts the ones we do
 *      not have (idempotency key 'prefect:<flow run id>', origin 'watch', external_id), mirrors their
 *      state, and moves the cursor to the last expected start seen — then commits. The next page (on
 *      this pod or another) starts from the committed cursor: no gap. The unique idempotency key
 *      makes any overlap re-read harmless: no duplicate.
 *      Paging is keyset-like: the next page asks `after_` = the previous page's newest expected
 *      start (inclusive) with `offset` = the rows at exactly that time already read (so a block of
 *      runs sharing one timestamp, larger than a page, is stepped through). The offset is only ever
 *      sent with the `after_` it was counted against; when another pod moved the cursor between our
 *      pages, reading restarts from the committed cursor with no offset. This assumes Prefect returns
 *      runs with equal expected starts in the same order on every request: its EXPECTED_START_TIME_ASC
 *      sorts by expected start alone, so that order is Postgres's, not a guarantee (the fake server
 *      breaks ties by id). A run can be skipped only if such a tie straddles a page boundary and the
 *      order changes between two requests; excluding the ids already read (`flow_runs.id.not_any_`)
 *      instead of an offset would remove the assumption.
 *      The first page of a pass re-reads `overlap` before the cursor to pick up runs created late
 *      with a past expected start (a "run now" from Prefect's UI racing the import).
 *      Runs in the future are not imported until due (Prefect pre-creates up to ~100 of them).
 *   2. Refresh: every watched run still SCHEDULED/PENDING/RUNNING is re-read by id, 200 per request,
 *      (one the filter no longer returns is read alone: a 404 means Prefect deleted it — it does so
 *      for unstarted scheduled runs when a schedule is switched off or the deployment paused — and
 *      ours is closed as CANCELLED/Deleted) and moved forward (valid transitions only, recorded in history; runs that finish get their
 *      task results for the critical-task rule, whatever the terminal state: a critical task can
 *      fail inside a COMPLETED flow run).
 * Runs flowwarden itself created in Prefect (idempotency key 'flowwarden:…') are skipped: the
 * dispatch/poll path already owns them.
 *
 * The loop never throws: a failing flow is logged and retried on the next pass from its cursor.
 */
import { runSetTimes } from '../runs/store.ts';
import { runInsertWatched } from '../runs/store-insert.ts';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { Logger } from '../log.ts';
import { dbNow, withTransaction, type Queryable } from '../db/client.ts';
import { Loop } from '../util/loop.ts';
import { getRun } from '../runs/read.ts';
import { type TaskInput } from '../types.ts';
import type { FlowRow } from '../queries/flows.ts';
import {
  advanceWatchCursor,
  ensureWatchCursor,
  listOpenWatchedRuns,
  listWatchedFlows,
  lockWatchCursor,
  lockWatchedRuns,
  type WatchedRunRef,
} from '../queries/prefect.ts';
import { applyLockedTransition, recordLateTaskResults, type TransitionDeps } from '../runs/service.ts';
import type { PrefectTargetSpec } from '../targets/spec.ts';
import { PREFECT_MAX_LIMIT, PREFECT_PAGE_SIZE_MAX, type PrefectFlowRun } from '../targets/prefect-client.ts';
import { isTerminal } from '../runs/states.ts';
import { NotFoundError, errorMessage } from '../errors.ts';
import type { PrefectConnector } from './connector.ts';
import { fetchTaskResults, mappedStateOf, mirrorLockedRun, TASKS_UNREAD_MARKER } from './mirror.ts';

export const WATCH_DEFAULTS = {
  intervalMs: 15_000,
  /** Page size for /flow_runs/filter (Prefect's default cap is 200; a lower cap is adopted). */
  pageSize: PREFECT_MAX_LIMIT,
  /** How far back a new watch starts importing. */
  lookbackSeconds: 86_400,
  /** Re-read window before the cursor on each pass's first page. */
  overlapSeconds: 120,
  /** Pages per flow per pass, so one busy deployment cannot starve the others. */
  maxPagesPerPass: 50,
  /** Open runs re-read per pass. */
  maxOpenPerPass: 2_000,
  /**
   * How long after a Prefect run finished its task runs are read again: Prefect 3 records task runs
   * from events, asynchronously, so some appear after the flow run is terminal (and a first read may
   * have failed). A late failed critical task is still evaluated.
   */
  taskGraceSeconds: 900,
} as const;

export interface WatchOptions {
  intervalMs?: number;
  pageSize?: number;
  lookbackSeconds?: number;
  overlapSeconds?: number;
  maxPagesPerPass?: number;
  maxOpenPerPass?: number;
  taskGraceSeconds?: number;
}

export interface WatchDeps {
  pool: pg.Pool;
  boss: PgBoss;
  /** What run transitions need (events, the guard's failure hook). */
  transitions: TransitionDeps;
  log: Logger;
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

const FLOWWARDEN_KEY_PREFIX = 'flowwarden:';

export class PrefectWatcher {
  readonly #deps: WatchDeps;
  readonly #connector: PrefectConnector;
  readonly #opts: Required<WatchOptions>;
  readonly #loop: Loop;
  readonly #log: Logger;

  constructor(deps: WatchDeps, connector: PrefectConnector, options: WatchOptions = {}) {
    this.#deps = deps;
    this.#connector = connector;
    this.#opts = { ...WATCH_DEFAULTS, ...stripUndefined(options) };
    if (!Number.isInteger(this.#opts.pageSize) || this.#opts.pageSize < 1 || this.#opts.pageSize > PREFECT_PAGE_SIZE_MAX) {
      throw new RangeError(`watch pageSize must be 1..${PREFECT_PAGE_SIZE_MAX}, got ${this.#opts.pageSize}`);
    }
    this.#log = deps.log.child({ loop: 'prefect-watch' });
    this.#loop = new Loop('prefect-watch', this.#opts.intervalMs, async (signal) => {
      await this.runOnce({ signal });
    }, this.#log);
  }

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** One import + refresh pass over every watched flow. Never throws: errors are logged and returned. */
  async runOnce(options: { maxPagesPerPass?: number; signal?: AbortSignal } = {}): Promise<WatchPassResult> {
    const result: WatchPassResult = { flows: 0, imported: 0, updated: 0, pages: 0, busy: 0, lateTasks: 0, errors: [] };
    let flows: FlowRow[];
    try {
      flows = await listWatchedFlows(this.#deps.pool);
    } catch (err) {
      result.errors.push(errorMessage(err));
      this.#log.error({ err: errorMessage(err) }, 'cannot list watched flows');
      return result;
    }
    result.flows = flows.length;
    for (const flow of flows) {
      if (options.signal?.aborted) return result; // draining: the next pod's pass resumes from the cursors
      try {
        await this.#importFlow(flow, result, options.maxPagesPerPass ?? this.#opts.maxPagesPerPass, options.signal);
      } catch (err) {
        result.errors.push(`${flow.name}: ${errorMessage(err)}`);
        this.#log.warn({ flow: flow.name, err: errorMessage(err) }, 'Prefect watch import failed; next pass resumes from the cursor');
      }
    }
    if (options.signal?.aborted) return result;
    try {
      result.updated += await this.#refreshOpen(options.signal);
    } catch (err) {
      result.errors.push(`refresh: ${errorMessage(err)}`);
      this.#log.warn({ err: errorMessage(err) }, 'Prefect watch refresh failed; retried next pass');
    }
    try {
      result.lateTasks = await this.#refreshTasks();
    } catch (err) {
      result.errors.push(`tasks: ${errorMessage(err)}`);
      this.#log.warn({ err: errorMessage(err) }, 'reading late Prefect task runs failed; retried next pass');
    }
    if (result.imported || result.updated) this.#log.info({ imported: result.imported, updated: result.updated }, 'Prefect watch pass');
    return result;
  }

  async #importFlow(flow: FlowRow, result: WatchPassResult, maxPages: number, signal?: AbortSignal): Promise<void> {
    const target = flow.target as PrefectTargetSpec;
    const connector = this.#connector;
    const log = this.#log.child({ flow: flow.name });
    const deployment = await connector.call('resolveDeployment', () => connector.deployments.resolve(target.deployment), { log });
    const pool = this.#deps.pool;
    const now = await dbNow(pool);
    const lookback = target.watchLookbackSeconds ?? this.#opts.lookbackSeconds;
    await ensureWatchCursor(pool, flow.id, deployment.id, new Date(now.getTime() - lookback * 1000));

    // This pass's read position: `from` (inclusive `after_`) and how many rows at exactly `from` it
    // has consumed (`skip`, sent as the offset). Both are relative to the query they were measured
    // on, so the offset always goes with the `after_` it was counted against. `seen` is the committed
    // cursor after our last page: if another pod has moved it since, start again from it.
    let from = 0;
    let skip = 0;
    let seen: number | undefined;
    for (let page = 0; page < maxPages && !signal?.aborted; page++) {
      const outcome = await withTransaction(pool, async (tx) => {
        const cursor = await lockWatchCursor(tx, flow.id);
        if (!cursor) return { kind: 'busy' as const };
        const committed = cursor.cursor.getTime();
        if (page === 0) {
          from = committed - this.#opts.overlapSeconds * 1000;
          skip = 0;
        } else if (seen !== committed) {
          from = committed; // another pod moved it: everything before it is imported
          skip = 0;
        }
        const upper = await dbNow(tx);
        const limit = Math.min(this.#opts.pageSize, connector.client.pageLimit);
        const rows = await connector.call(
          'filterFlowRuns',
          () =>
            connector.client.filterFlowRuns({
              deploymentIds: [deployment.id],
              expectedStartAfter: new Date(from),
              expectedStartBefore: upper,
              sort: 'EXPECTED_START_TIME_ASC',
              limit,
              offset: skip,
            }),
          { log },
        );
        const counts = await this.#upsertPage(tx, flow, rows);
        const times = rows.map((r) => Date.parse(r.expected_start_time ?? '')).filter(Number.isFinite);
        const newest = times.length ? Math.max(...times) : committed;
        if (times.length) {
          // Rows come sorted by expected start: the next page starts at this page's newest time,
          // skipping the rows at that time we have just read (all of the page if it is one timestamp).
          const atNewest = times.filter((t) => t === newest).length;
          if (newest === from) skip += atNewest;
          else {
            from = newest;
            skip = atNewest;
          }
        }
        await advanceWatchCursor(tx, flow.id, { cursor: new Date(newest), deploymentId: deployment.id, imported: counts.imported });
        seen = Math.max(newest, committed);
        // A full page (at the cap in force after the call: the server may have named a lower one).
        return { kind: 'page' as const, ...counts, more: rows.length > 0 && rows.length >= Math.min(limit, connector.client.pageLimit) };
      });
      if (outcome.kind === 'busy') {
        result.busy += 1;
        return;
      }
      result.pages += 1;
      result.imported += outcome.imported;
      result.updated += outcome.updated;
      if (!outcome.more) return;
    }
  }

  /** Insert the page's new runs and mirror every run's state. Caller holds the cursor lock. */
  async #upsertPage(tx: Queryable, flow: FlowRow, rows: PrefectFlowRun[]): Promise<{ imported: number; updated: number }> {
    const ours = rows.filter((r) => !(r.idempotency_key ?? '').startsWith(FLOWWARDEN_KEY_PREFIX));
    let imported = 0;
    const known = await lockWatchedRuns(tx, ours.map((r) => r.id));
    for (const fr of ours) {
      if (known.has(fr.id)) continue;
      const id = await runInsertWatched(tx, {
        flowId: flow.id,
        flowRunId: fr.id,
        flowRunName: fr.name,
        scheduledFor: new Date(fr.expected_start_time ?? fr.created ?? Date.now()),
        parameters: fr.parameters,
      });
      if (id) {
        known.set(fr.id, id);
        imported += 1;
      }
    }
    const updated = await this.#mirror(tx, ours, known);
    return { imported, updated };
  }

  /** Mirror Prefect's state onto our runs (ids by Prefect id), fetching task results for finished runs. */
  async #mirror(tx: Queryable, flowRuns: PrefectFlowRun[], runIds: Map<string, string>): Promise<number> {
    const connector = this.#connector;
    const pending: Array<{ fr: PrefectFlowRun; runId: string }> = [];
    for (const fr of flowRuns) {
      const runId = runIds.get(fr.id);
      if (runId) pending.push({ fr, runId });
    }
    // Lock in id order, as lockWatchedRuns does: two pods mirroring overlapping sets cannot deadlock.
    pending.sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
    const runs = new Map<string, Awaited<ReturnType<typeof getRun>>>();
    for (const p of pending) runs.set(p.runId, await getRun(tx, p.runId, { forUpdate: true }));
    // Task results for every run about to finish (any terminal state, as target mode does): a
    // critical task can fail inside a COMPLETED flow run. One batched request per 200 runs.
    const needTasks = pending
      .filter(({ fr, runId }) => {
        const m = mappedStateOf(fr);
        const run = runs.get(runId);
        return m.terminal && run && !isTerminal(run.stateType);
      })
      .map(({ fr }) => fr.id);
    // A failed read does not hold the runs' own outcome back: they finish now, and #refreshTasks
    // reads their task runs on a later pass.
    let tasks: Map<string, TaskInput[]> = new Map();
    let unread: string | undefined;
    if (needTasks.length) {
      try {
        tasks = await fetchTaskResults(connector.client, needTasks, (what, fn) => connector.call(what, fn, { log: this.#log }));
      } catch (err) {
        unread = ` ${TASKS_UNREAD_MARKER} ${errorMessage(err)}; read again by the next Prefect watch pass)`;
        this.#log.warn({ err: errorMessage(err), runs: needTasks.length }, 'cannot read task runs of finished Prefect runs; recording their states now, tasks on a later pass');
      }
    }
    let updated = 0;
    for (const { fr, runId } of pending) {
      const run = runs.get(runId);
      if (!run) continue;
      const moved = await mirrorLockedRun(this.#deps.transitions, tx, run, fr, { tasks: tasks.get(fr.id) ?? [], ...(unread && needTasks.includes(fr.id) ? { suffix: unread } : {}) });
      if (moved) {
        updated += 1;
        await runSetTimes(tx, runId, toDate(fr.start_time), toDate(fr.end_time));
      }
    }
    return updated;
  }

  /**
   * Re-read watched runs that are not finished yet and move them forward. A run the filter no longer
   * returns is read by id: Prefect deletes scheduled runs that have not started when their schedule
   * is switched off or the deployment paused (the guard does both), and a 404 closes ours as
   * CANCELLED/Deleted — otherwise it would stay open, re-read on every pass, forever.
   */
  async #refreshOpen(signal?: AbortSignal): Promise<number> {
    const connector = this.#connector;
    const open = await listOpenWatchedRuns(this.#deps.pool, this.#opts.maxOpenPerPass);
    let updated = 0;
    for (let i = 0; i < open.length && !signal?.aborted; ) {
      // One request per page-cap ids; if the server named a lower cap meanwhile, redo with it.
      const size = Math.min(this.#opts.pageSize, connector.client.pageLimit);
      const batch = open.slice(i, i + size);
      const ids = batch.map((r) => r.externalId);
      const flowRuns = await connector.call(
        'filterFlowRuns',
        () => connector.client.filterFlowRuns({ flowRunIds: ids, limit: size }),
        { log: this.#log },
      );
      if (connector.client.pageLimit < batch.length) continue;
      i += batch.length;
      const returned = new Set(flowRuns.map((fr) => fr.id));
      const deleted: WatchedRunRef[] = [];
      for (const ref of batch) {
        if (returned.has(ref.externalId)) continue;
        try {
          flowRuns.push(await connector.call('readFlowRun', () => connector.client.readFlowRun(ref.externalId), { log: this.#log }));
        } catch (err) {
          if (!(err instanceof NotFoundError)) throw err;
          deleted.push(ref);
        }
      }
      const byId = new Map(batch.map((r) => [r.externalId, r.id]));
      updated += await withTransaction(this.#deps.pool, (tx) => this.#mirror(tx, flowRuns, byId));
      if (deleted.length) updated += await withTransaction(this.#deps.pool, (tx) => this.#closeDeleted(tx, deleted));
    }
    return updated;
  }

  /**
   * Read again the task runs of Prefect runs (watched or dispatched) that finished within
   * taskGraceSeconds — of flows with critical tasks, or whose first task read failed — and record
   * the ones we do not have yet: Prefect 3 writes task runs from
   * events, so they may land after the flow run is terminal, and a first read may have failed.
   * A late failed task asks for a health check like a failing transition does.
   */
  async #refreshTasks(): Promise<number> {
    const pool = this.#deps.pool;
    const { rows } = await pool.query<{ id: string; externalId: string }>(
      `select r.id, r.external_id as "externalId"
         from flowwarden.runs r
         join flowwarden.flows f on f.id = r.flow_id
        where f.target->>'type' = 'prefect'
          and r.external_id is not null
          and r.state_type in ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED')
          and r.ended_at >= now() - make_interval(secs => $1)
          -- Only where it can matter, to spare Prefect's request budget: flows with critical tasks,
          -- and runs whose first task read failed.
          and (jsonb_array_length(coalesce(f.health->'criticalTasks', '[]'::jsonb)) > 0
               or r.state_message like '%' || $3 || '%')
        order by r.ended_at, r.id
        limit $2`,
      [this.#opts.taskGraceSeconds, this.#opts.maxOpenPerPass, TASKS_UNREAD_MARKER],
    );
    if (rows.length === 0) return 0;
    const connector = this.#connector;
    const fetched = await fetchTaskResults(connector.client, rows.map((r) => r.externalId), (what, fn) => connector.call(what, fn, { log: this.#log }));
    let recorded = 0;
    for (const { id, externalId } of rows) {
      const seen = fetched.get(externalId) ?? [];
      if (seen.length === 0) continue;
      recorded += await withTransaction(pool, async (tx) => {
        const run = await getRun(tx, id, { forUpdate: true });
        if (!run) return 0;
        const { rows: have } = await tx.query<{ name: string; stateType: string }>(
          `select name, state_type as "stateType" from flowwarden.task_results where run_id = $1`,
          [id],
        );
        // Multiset difference on (name, state): a task that ran twice counts twice.
        const left = new Map<string, number>();
        for (const t of have) left.set(`${t.name}\0${t.stateType}`, (left.get(`${t.name}\0${t.stateType}`) ?? 0) + 1);
        const fresh = seen.filter((t) => {
          const key = `${t.name}\0${t.stateType}`;
          const n = left.get(key) ?? 0;
          if (n > 0) {
            left.set(key, n - 1);
            return false;
          }
          return true;
        });
        await recordLateTaskResults(this.#deps.transitions, tx, run, fresh);
        if (fresh.length) this.#log.info({ runId: id, flowRunId: externalId, tasks: fresh.length }, 'late Prefect task results recorded');
        return fresh.length;
      });
    }
    return recorded;
  }

  /** Close watched runs whose Prefect flow run no longer exists, through the validated transition path. */
  async #closeDeleted(tx: Queryable, refs: WatchedRunRef[]): Promise<number> {
    let closed = 0;
    for (const ref of [...refs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
      const run = await getRun(tx, ref.id, { forUpdate: true });
      if (!run || isTerminal(run.stateType) || run.externalId !== ref.externalId) continue;
      await applyLockedTransition(this.#deps.transitions, tx, run, {
        to: 'CANCELLED',
        name: 'Deleted',
        message:
          `Prefect flow run ${ref.externalId} was deleted in Prefect while ${run.stateName} ` +
          `(Prefect deletes runs that have not started when their schedule is switched off or the deployment paused)`,
      });
      this.#log.info({ runId: run.id, flowRunId: ref.externalId, was: `${run.stateType}/${run.stateName}` }, 'watched Prefect flow run deleted in Prefect: run cancelled');
      closed += 1;
    }
    return closed;
  }
}

function toDate(iso: string | null): Date | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? new Date(t) : null;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
