/**
 * Reading runs: the one column list (`RUN_COLUMNS`), a run by id (optionally locked), pages for the
 * API and admin page, history and task results. Writes are in src/runs/store.ts.
 */
import { orm } from '../db/drizzle.ts';
import type { Queryable } from '../db/client.ts';
import { dz } from '../db/client.ts';
import { taskResults } from '../schema/index.ts';
import type { RunFlow, RunRow, StateType } from '../types.ts';

const { eq } = orm;

/** The RunRow columns of a query over `flowwarden.runs r join flowwarden.flows f`. */
export const RUN_COLUMNS = `r.id, r.flow_id as "flowId", f.name as "flowName", r.schedule_id as "scheduleId",
  r.scheduled_for as "scheduledFor", r.state_type as "stateType", r.state_name as "stateName",
  r.state_message as "stateMessage", r.parameters, r.idempotency_key as "idempotencyKey", r.origin,
  r.dispatch_attempt as "dispatchAttempt", r.external_id as "externalId", r.created_at as "createdAt",
  r.started_at as "startedAt", r.ended_at as "endedAt", r.updated_at as "updatedAt"`;

/** The `flow` column (a RunFlow) of a query joining flows as `f`; pass its rows to `withFlowDates`. */
export const RUN_FLOW_COLUMN = `json_build_object('id', f.id, 'name', f.name, 'target', f.target, 'health', f.health,
  'disabledAt', f.disabled_at, 'disabledReason', f.disabled_reason) as flow`;

/** json_build_object returns timestamps as strings: make `flow.disabledAt` a Date again. */
export function withFlowDates<T extends { flow?: RunFlow }>(rows: T[]): T[] {
  for (const row of rows) if (row.flow?.disabledAt) row.flow.disabledAt = new Date(row.flow.disabledAt);
  return rows;
}

export async function getRun(db: Queryable, runId: string, options: { forUpdate?: boolean; withFlow?: boolean } = {}): Promise<(RunRow & { flow?: RunFlow }) | null> {
  const { rows } = await db.query<RunRow & { flow?: RunFlow }>(
    `select ${RUN_COLUMNS}${options.withFlow ? `, ${RUN_FLOW_COLUMN}` : ''} from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id
     where r.id = $1 ${options.forUpdate ? 'for update of r' : ''}`,
    [runId],
  );
  return withFlowDates(rows)[0] ?? null;
}

/** Lock several runs at once, in id order (a fixed order keeps concurrent batches deadlock-free). */
export async function getRunsForUpdate(tx: Queryable, runIds: string[]): Promise<RunRow[]> {
  const { rows } = await tx.query<RunRow>(
    `select ${RUN_COLUMNS} from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id
      where r.id = any($1::uuid[]) order by r.id for update of r`,
    [runIds],
  );
  return rows;
}

/**
 * A run's history, oldest first: run_state_history rows merged with the moves recorded on the run
 * row (the view flowwarden.run_history, migration 0014; docs/state-machine.md "How history is stored").
 */
export async function runHistory(db: Queryable, runId: string): Promise<RunHistoryEntry[]> {
  const { rows } = await db.query<RunHistoryEntry>(
    `select from_type as "fromType", from_name as "fromName", to_type as "toType", to_name as "toName", message, at
       from flowwarden.run_history where run_id = $1 order by seq`,
    [runId],
  );
  return rows;
}

export interface RunHistoryEntry {
  fromType: string | null;
  fromName: string | null;
  toType: string;
  toName: string;
  message: string | null;
  at: Date;
}

export async function runTasks(db: Queryable, runId: string) {
  return dz(db)
    .select({ name: taskResults.name, stateType: taskResults.stateType, message: taskResults.message, at: taskResults.createdAt })
    .from(taskResults)
    .where(eq(taskResults.runId, runId))
    .orderBy(taskResults.id);
}

export interface RunPageFilter {
  flowName?: string;
  stateTypes?: StateType[];
  /** origin in (…): 'schedule' | 'manual' | 'api' | 'watch' */
  origins?: string[];
  /** state_type = 'SCHEDULED' and state_name = 'Late' (with stateTypes: either matches) */
  late?: boolean;
  /** scheduled_for >= since */
  since?: Date;
  /** scheduled_for < until */
  until?: Date;
  /** Keyset cursor: the last row of the previous page (scheduled_for as `sortKey` text, id). */
  after?: readonly [scheduledFor: string, id: string];
  /** Rows to fetch (the API asks for its page size + 1). */
  limit: number;
  /**
   * Also list upcoming runs: SCHEDULED runs whose time has not come (the horizon pre-creates them).
   * Off by default: an operator first wants what ran, runs and is due (late included).
   */
  upcoming?: boolean;
}

/**
 * A page of runs, newest scheduled first, for the API and admin page. Keyset pagination on
 * (scheduled_for desc, id desc); the cursor carries scheduled_for as text with microseconds
 * (`sortKey`, UTC ISO 8601) so they survive the round trip (a JS Date would truncate them and skip
 * or repeat rows). Index: runs_scheduled_idx (scheduled_for, id), walked backwards from the cursor;
 * the other filters are checked on the rows it visits (bench/NOTES.md has the plans).
 */
export async function pageRuns(db: Queryable, filter: RunPageFilter): Promise<Array<RunRow & { sortKey: string }>> {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: (p: string) => string, value: unknown) => {
    values.push(value);
    where.push(sql(`$${values.length}`));
  };
  // flow_id = (subquery), not f.name = …: a one-row InitPlan lets the planner walk
  // runs_flow_scheduled_idx backwards in page order instead of sorting all the flow's runs.
  if (filter.flowName) add((p) => `r.flow_id = (select id from flowwarden.flows where name = ${p})`, filter.flowName);
  if (filter.stateTypes?.length || filter.late) {
    const late = `(r.state_type = 'SCHEDULED' and r.state_name = 'Late')`;
    if (filter.stateTypes?.length) add((p) => (filter.late ? `(r.state_type = any(${p}::text[]) or ${late})` : `r.state_type = any(${p}::text[])`), filter.stateTypes);
    else where.push(late);
  }
  if (filter.origins?.length) add((p) => `r.origin = any(${p}::text[])`, filter.origins);
  if (filter.since) add((p) => `r.scheduled_for >= ${p}`, filter.since);
  if (filter.until) add((p) => `r.scheduled_for < ${p}`, filter.until);
  if (!filter.upcoming) where.push(`not (r.state_type = 'SCHEDULED' and r.scheduled_for > now())`);
  if (filter.after) {
    values.push(filter.after[0], filter.after[1]);
    where.push(`(r.scheduled_for, r.id) < ($${values.length - 1}::timestamptz, $${values.length}::uuid)`);
  }
  values.push(filter.limit);
  const { rows } = await db.query<RunRow & { sortKey: string }>(
    `select ${RUN_COLUMNS}, to_char(r.scheduled_for at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "sortKey"
       from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id
     ${where.length ? `where ${where.join(' and ')}` : ''}
     order by r.scheduled_for desc, r.id desc limit $${values.length}`,
    values,
  );
  return rows;
}
