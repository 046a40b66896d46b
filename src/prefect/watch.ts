/**
 * Watch mode's work (docs/prefect.md; design in docs/internals.md, "Prefect watch"): import the
 * runs Prefect schedules itself, page by page under each flow's cursor lock, mirror their states,
 * re-read the ones still open (closing those Prefect deleted), and record task runs Prefect wrote
 * after the run finished. Runs flowwarden created in Prefect ('flowwarden:' key) are skipped: the
 * dispatch/poll path owns them. The loop around it: src/maintenance/prefect-watch.ts.
 */
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { Logger } from '../log.ts';
import { dbNow, withTransaction, type Queryable } from '../db/client.ts';
import { getRun } from '../runs/read.ts';
import type { TaskInput } from '../types.ts';
import { runSetTimes } from '../runs/store.ts';
import { runInsertWatched } from '../runs/store-insert.ts';
import type { FlowRow } from '../queries/flows.ts';
import {
  advanceWatchCursor,
  ensureWatchCursor,
  listOpenWatchedRuns,
  lockWatchCursor,
  lockWatchedRuns,
  type WatchedRunRef,
} from '../queries/prefect.ts';
import { applyLockedTransition, recordLateTaskResults, type TransitionDeps } from '../runs/service.ts';
import type { PrefectTargetSpec } from '../targets/spec.ts';
import type { PrefectFlowRun } from './client/index.ts';
import { isTerminal } from '../runs/states.ts';
import { NotFoundError, errorMessage } from '../errors.ts';
import type { PrefectConnector } from './connector.ts';
import { fetchTaskResults, mappedStateOf, mirrorLockedRun, TASKS_UNREAD_MARKER, tasksUnreadNote } from './mirror.ts';

/** What the import and refresh read with (src/maintenance/prefect-watch.ts documents each). */
export interface WatchSettings {
  pageSize: number;
  lookbackSeconds: number;
  overlapSeconds: number;
  maxOpenPerPass: number;
  taskGraceSeconds: number;
}

export interface WatchContext {
  pool: pg.Pool;
  boss: PgBoss;
  /** What run transitions need (events, the guard's failure hook). */
  transitions: TransitionDeps;
  log: Logger;
  connector: PrefectConnector;
  settings: WatchSettings;
}

/** What the import did, added to page by page as each commits (so a failure keeps what committed). */
export interface ImportCounts {
  pages: number;
  imported: number;
  updated: number;
  /** Flows whose cursor another pod held: left to it. */
  busy: number;
}

const FLOWWARDEN_KEY_PREFIX = 'flowwarden:';

/**
 * Import one watched flow, page by page, each page one transaction under its cursor lock (a pod
 * that finds it locked leaves the flow to the pod holding it); see docs/internals.md for the
 * paging and why it leaves no gap and no duplicate.
 */
export async function importWatchedFlow(ctx: WatchContext, flow: FlowRow, total: ImportCounts, maxPages: number, signal?: AbortSignal): Promise<void> {
  const target = flow.target as PrefectTargetSpec;
  const connector = ctx.connector;
  const log = ctx.log.child({ flow: flow.name });
  const deployment = await connector.call('resolveDeployment', () => connector.deployments.resolve(target.deployment), { log });
  const pool = ctx.pool;
  const now = await dbNow(pool);
  const lookback = target.watchLookbackSeconds ?? ctx.settings.lookbackSeconds;
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
        from = committed - ctx.settings.overlapSeconds * 1000;
        skip = 0;
      } else if (seen !== committed) {
        from = committed; // another pod moved it: everything before it is imported
        skip = 0;
      }
      const upper = await dbNow(tx);
      const limit = Math.min(ctx.settings.pageSize, connector.client.pageLimit);
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
      const counts = await upsertPage(ctx, tx, flow, rows);
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
      total.busy += 1;
      return;
    }
    total.pages += 1;
    total.imported += outcome.imported;
    total.updated += outcome.updated;
    if (!outcome.more) return;
  }
}

/** Insert the page's new runs and mirror every run's state. Caller holds the cursor lock. */
async function upsertPage(ctx: WatchContext, tx: Queryable, flow: FlowRow, rows: PrefectFlowRun[]): Promise<{ imported: number; updated: number }> {
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
  const updated = await mirrorRuns(ctx, tx, ours, known);
  return { imported, updated };
}

/** Mirror Prefect's state onto our runs (ids by Prefect id), fetching task results for finished runs. */
async function mirrorRuns(ctx: WatchContext, tx: Queryable, flowRuns: PrefectFlowRun[], runIds: Map<string, string>): Promise<number> {
  const connector = ctx.connector;
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
  // A failed read does not hold the runs' own outcome back: they finish now, and recordLateTaskRuns
  // reads their task runs on a later pass.
  let tasks: Map<string, TaskInput[]> = new Map();
  let unread: string | undefined;
  if (needTasks.length) {
    try {
      tasks = await fetchTaskResults(connector.client, needTasks, (what, fn) => connector.call(what, fn, { log: ctx.log }));
    } catch (err) {
      unread = tasksUnreadNote(errorMessage(err));
      ctx.log.warn({ err, runs: needTasks.length }, 'cannot read task runs of finished Prefect runs; recording their states now, tasks on a later pass');
    }
  }
  let updated = 0;
  for (const { fr, runId } of pending) {
    const run = runs.get(runId);
    if (!run) continue;
    const moved = await mirrorLockedRun(ctx.transitions, tx, run, fr, { tasks: tasks.get(fr.id) ?? [], ...(unread && needTasks.includes(fr.id) ? { suffix: unread } : {}) });
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
export async function refreshOpenWatchedRuns(ctx: WatchContext, signal?: AbortSignal): Promise<number> {
  const connector = ctx.connector;
  const open = await listOpenWatchedRuns(ctx.pool, ctx.settings.maxOpenPerPass);
  let updated = 0;
  for (let i = 0; i < open.length && !signal?.aborted; ) {
    // One request per page-cap ids; if the server named a lower cap meanwhile, redo with it.
    const size = Math.min(ctx.settings.pageSize, connector.client.pageLimit);
    const batch = open.slice(i, i + size);
    const ids = batch.map((r) => r.externalId);
    const flowRuns = await connector.call(
      'filterFlowRuns',
      () => connector.client.filterFlowRuns({ flowRunIds: ids, limit: size }),
      { log: ctx.log },
    );
    if (connector.client.pageLimit < batch.length) continue;
    i += batch.length;
    const returned = new Set(flowRuns.map((fr) => fr.id));
    const deleted: WatchedRunRef[] = [];
    for (const ref of batch) {
      if (returned.has(ref.externalId)) continue;
      try {
        flowRuns.push(await connector.call('readFlowRun', () => connector.client.readFlowRun(ref.externalId), { log: ctx.log }));
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        deleted.push(ref);
      }
    }
    const byId = new Map(batch.map((r) => [r.externalId, r.id]));
    updated += await withTransaction(ctx.pool, (tx) => mirrorRuns(ctx, tx, flowRuns, byId));
    if (deleted.length) updated += await withTransaction(ctx.pool, (tx) => closeDeleted(ctx, tx, deleted));
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
export async function recordLateTaskRuns(ctx: WatchContext): Promise<number> {
  const pool = ctx.pool;
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
    [ctx.settings.taskGraceSeconds, ctx.settings.maxOpenPerPass, TASKS_UNREAD_MARKER],
  );
  if (rows.length === 0) return 0;
  const connector = ctx.connector;
  const fetched = await fetchTaskResults(connector.client, rows.map((r) => r.externalId), (what, fn) => connector.call(what, fn, { log: ctx.log }));
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
      await recordLateTaskResults(ctx.transitions, tx, run, fresh);
      if (fresh.length) ctx.log.info({ runId: id, flowRunId: externalId, tasks: fresh.length }, 'late Prefect task results recorded');
      return fresh.length;
    });
  }
  return recorded;
}

/** Close watched runs whose Prefect flow run no longer exists, through the validated transition path. */
async function closeDeleted(ctx: WatchContext, tx: Queryable, refs: WatchedRunRef[]): Promise<number> {
  let closed = 0;
  for (const ref of [...refs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const run = await getRun(tx, ref.id, { forUpdate: true });
    if (!run || isTerminal(run.stateType) || run.externalId !== ref.externalId) continue;
    await applyLockedTransition(ctx.transitions, tx, run, {
      to: 'CANCELLED',
      name: 'Deleted',
      message:
        `Prefect flow run ${ref.externalId} was deleted in Prefect while ${run.stateName} ` +
        `(Prefect deletes runs that have not started when their schedule is switched off or the deployment paused)`,
    });
    ctx.log.info({ runId: run.id, flowRunId: ref.externalId, was: `${run.stateType}/${run.stateName}` }, 'watched Prefect flow run deleted in Prefect: run cancelled');
    closed += 1;
  }
  return closed;
}

function toDate(iso: string | null): Date | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? new Date(t) : null;
}
