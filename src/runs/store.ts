/**
 * Run queries: functions of (db, params); `db` may be a transaction. The state-changing ones lock
 * the run row (`FOR UPDATE`) so concurrent workers and API reports serialise per run.
 */
import { orm } from '../db/drizzle.ts';

const { eq } = orm;
import type { Queryable } from '../db/client.ts';
import type pg from 'pg';
import { dz, namedQuery } from '../db/client.ts';
import { runStateHistory, taskResults } from '../schema/index.ts';
import { countTransitions } from './observe.ts';
import { checkTransition, DEFAULT_NAMES, isTerminal, type State, type StateType } from './states.ts';
import { ConflictError, NotFoundError } from '../errors.ts';

export interface RunRow {
  id: string;
  flowId: string;
  flowName: string;
  scheduleId: string | null;
  scheduledFor: Date;
  stateType: StateType;
  stateName: string;
  stateMessage: string | null;
  parameters: Record<string, unknown>;
  idempotencyKey: string | null;
  origin: string;
  dispatchAttempt: number | null;
  externalId: string | null;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
  updatedAt: Date;
}

const RUN_COLUMNS = `r.id, r.flow_id as "flowId", f.name as "flowName", r.schedule_id as "scheduleId",
  r.scheduled_for as "scheduledFor", r.state_type as "stateType", r.state_name as "stateName",
  r.state_message as "stateMessage", r.parameters, r.idempotency_key as "idempotencyKey", r.origin,
  r.dispatch_attempt as "dispatchAttempt", r.external_id as "externalId", r.created_at as "createdAt",
  r.started_at as "startedAt", r.ended_at as "endedAt", r.updated_at as "updatedAt"`;

/** The run's flow as dispatch needs it (id, name, target, health, hold). */
export interface RunFlow {
  id: string;
  name: string;
  target: unknown;
  health: unknown;
  disabledAt: Date | null;
  disabledReason: string | null;
}

/** The `flow` column (a RunFlow) of a query joining flows as `f`; pass its rows to `withFlowDates`. */
const RUN_FLOW_COLUMN = `json_build_object('id', f.id, 'name', f.name, 'target', f.target, 'health', f.health,
  'disabledAt', f.disabled_at, 'disabledReason', f.disabled_reason) as flow`;

/** json_build_object returns timestamps as strings: make `flow.disabledAt` a Date again. */
function withFlowDates<T extends { flow?: RunFlow }>(rows: T[]): T[] {
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

export interface TaskInput {
  name: string;
  stateType: StateType;
  message?: string | null;
}

export interface TransitionInput {
  runId: string;
  to: StateType;
  name?: string;
  message?: string | null;
  tasks?: TaskInput[];
  externalId?: string | null;
  dispatchAttempt?: number | null;
  /**
   * A state the run passes through on the way to `to` in the same write (dispatch claims a
   * function run SCHEDULED → PENDING → RUNNING as one row version). Both moves are validated and
   * both are recorded in the history, in order.
   */
  via?: { to: StateType; name?: string; message?: string | null };
  /** Allow the one backward move, RUNNING → PENDING/AwaitingRetry (dispatch's drain hand-back only). */
  requeue?: boolean;
}

export interface TransitionResult {
  run: RunRow;
  from: State;
}

/**
 * Validate and apply one state transition, recording it in run_state_history (and task results).
 * Must run inside a transaction: the run row is locked first. Throws InvalidTransitionError.
 */
export async function transitionRun(tx: Queryable, input: TransitionInput): Promise<TransitionResult> {
  const current = await getRun(tx, input.runId, { forUpdate: true });
  if (!current) throw new NotFoundError(`run ${input.runId} not found: check the id (flowwarden runs list)`);
  return transitionLockedRun(tx, current, input);
}

/** As transitionRun, for a run the caller already holds locked. */
export async function transitionLockedRun(tx: Queryable, current: RunRow, input: TransitionInput): Promise<TransitionResult> {
  const from: State = { type: current.stateType, name: current.stateName };
  const to: State = { type: input.to, name: input.name ?? DEFAULT_NAMES[input.to] };
  checkTransition(current.id, from, to, { requeue: input.requeue });
  const { rows } = await tx.query<{ updatedAt: Date; startedAt: Date | null; endedAt: Date | null }>(
    `update flowwarden.runs set
       state_type = $2, state_name = $3, state_message = $4,
       external_id = coalesce($5, external_id),
       dispatch_attempt = coalesce($6, dispatch_attempt),
       started_at = case when $2 = 'RUNNING' and started_at is null then now() else started_at end,
       ended_at = case when $7 then now() else ended_at end,
       updated_at = now()
     where id = $1
     returning updated_at as "updatedAt", started_at as "startedAt", ended_at as "endedAt"`,
    [current.id, to.type, to.name, input.message ?? null, input.externalId ?? null, input.dispatchAttempt ?? null, isTerminal(to.type)],
  );
  await tx.query(
    `insert into flowwarden.run_state_history (run_id, from_type, from_name, to_type, to_name, message)
     values ($1, $2, $3, $4, $5, $6)`,
    [current.id, from.type, from.name, to.type, to.name, input.message ?? null],
  );
  if (input.tasks?.length) await insertTaskResults(tx, current.id, input.tasks);
  const row = rows[0]!;
  return {
    from,
    run: {
      ...current,
      stateType: to.type,
      stateName: to.name,
      stateMessage: input.message ?? null,
      externalId: input.externalId ?? current.externalId,
      dispatchAttempt: input.dispatchAttempt ?? current.dispatchAttempt,
      updatedAt: row.updatedAt,
      startedAt: row.startedAt,
      endedAt: row.endedAt,
    },
  };
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
 * Apply many validated transitions in one statement (runs and history; a second for task results)
 * instead of two per run. Each item's run must be locked by the caller; invalid transitions throw before
 * anything is written (filter them first with `transitionAllowed` when a batch may contain them).
 */
export async function transitionLockedRuns(tx: Queryable, items: Array<{ current: RunRow; input: Omit<TransitionInput, 'runId'> }>): Promise<TransitionResult[]> {
  if (items.length === 0) return [];
  const planned = items.map(({ current, input }) => {
    const from: State = { type: current.stateType, name: current.stateName };
    const to: State = { type: input.to, name: input.name ?? DEFAULT_NAMES[input.to] };
    const via: State | undefined = input.via ? { type: input.via.to, name: input.via.name ?? DEFAULT_NAMES[input.via.to] } : undefined;
    if (via) {
      checkTransition(current.id, from, via);
      checkTransition(current.id, via, to);
    } else checkTransition(current.id, from, to, { requeue: input.requeue });
    return { current, input, from, to, via };
  });
  const history = planned.flatMap((p) => p.via
    ? [{ id: p.current.id, from: p.from, to: p.via, message: p.input.via!.message ?? null }, { id: p.current.id, from: p.via, to: p.to, message: p.input.message ?? null }]
    : [{ id: p.current.id, from: p.from, to: p.to, message: p.input.message ?? null }]);
  // One statement writes the runs and their history rows (a round trip fewer on the hot path);
  // history rows keep their order (ordinality), so a run's moves get ascending history ids.
  const { rows } = await tx.query<{ id: string; updatedAt: Date; startedAt: Date | null; endedAt: Date | null }>(
    `with v as (
       select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::int[])
           as v(id, to_type, to_name, message, external_id, terminal, dispatch_attempt)
     ),
     u as (
       update flowwarden.runs r set
         state_type = v.to_type, state_name = v.to_name, state_message = v.message,
         external_id = coalesce(v.external_id, r.external_id),
         dispatch_attempt = coalesce(v.dispatch_attempt, r.dispatch_attempt),
         started_at = case when v.to_type = 'RUNNING' and r.started_at is null then now() else r.started_at end,
         ended_at = case when v.terminal then now() else r.ended_at end,
         updated_at = now()
        from v
       where r.id = v.id
       returning r.id, r.updated_at, r.started_at, r.ended_at
     ),
     h as (
       insert into flowwarden.run_state_history (run_id, from_type, from_name, to_type, to_name, message)
       select hv.run_id, hv.from_type, hv.from_name, hv.to_type, hv.to_name, hv.message
         from unnest($8::uuid[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
              with ordinality as hv(run_id, from_type, from_name, to_type, to_name, message, n)
        where hv.run_id in (select id from u)
        order by hv.n
     )
     select id, updated_at as "updatedAt", started_at as "startedAt", ended_at as "endedAt" from u`,
    [
      planned.map((p) => p.current.id),
      planned.map((p) => p.to.type),
      planned.map((p) => p.to.name),
      planned.map((p) => p.input.message ?? null),
      planned.map((p) => p.input.externalId ?? null),
      planned.map((p) => isTerminal(p.to.type)),
      planned.map((p) => p.input.dispatchAttempt ?? null),
      history.map((h) => h.id),
      history.map((h) => h.from.type),
      history.map((h) => h.from.name),
      history.map((h) => h.to.type),
      history.map((h) => h.to.name),
      history.map((h) => h.message),
    ],
  );
  const withTasks = planned.filter((p) => p.input.tasks?.length);
  if (withTasks.length) {
    const flat = withTasks.flatMap((p) => p.input.tasks!.map((t) => ({ runId: p.current.id, ...t })));
    await tx.query(
      `insert into flowwarden.task_results (run_id, name, state_type, message)
       select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[])`,
      [flat.map((t) => t.runId), flat.map((t) => t.name), flat.map((t) => t.stateType), flat.map((t) => t.message ?? null)],
    );
  }
  const byId = new Map(rows.map((r) => [r.id, r]));
  return planned.map((p) => {
    const row = byId.get(p.current.id)!;
    return {
      from: p.from,
      run: {
        ...p.current,
        stateType: p.to.type,
        stateName: p.to.name,
        stateMessage: p.input.message ?? null,
        externalId: p.input.externalId ?? p.current.externalId,
        dispatchAttempt: p.input.dispatchAttempt ?? p.current.dispatchAttempt,
        updatedAt: row.updatedAt,
        startedAt: row.startedAt,
        endedAt: row.endedAt,
      },
    };
  });
}

export async function insertTaskResults(tx: Queryable, runId: string, tasks: TaskInput[]): Promise<void> {
  await tx.query(
    `insert into flowwarden.task_results (run_id, name, state_type, message)
     select $1, t.name, t.state_type, t.message
     from unnest($2::text[], $3::text[], $4::text[]) as t(name, state_type, message)`,
    [runId, tasks.map((t) => t.name), tasks.map((t) => t.stateType), tasks.map((t) => t.message ?? null)],
  );
}

export interface NewRun {
  flowId: string;
  scheduleId?: string | null;
  scheduledFor: Date;
  parameters: Record<string, unknown>;
  idempotencyKey?: string | null;
  origin: 'schedule' | 'manual' | 'api' | 'watch';
}

/**
 * Insert a manually triggered run. With an idempotency key, a second insert for the same flow
 * returns the existing run (`created: false`) instead of creating another. The key is unique across
 * all runs (runs_idempotency_key), so a key another flow's run already holds is a ConflictError:
 * returning that run would hand the caller a run of a flow it did not ask for.
 */
export async function insertTriggeredRun(tx: Queryable, run: NewRun): Promise<{ id: string; created: boolean }> {
  const { rows } = await tx.query<{ id: string }>(
    `insert into flowwarden.runs (flow_id, schedule_id, scheduled_for, state_type, state_name, parameters, idempotency_key, origin)
     values ($1, $2, $3, 'SCHEDULED', 'Scheduled', $4, $5, $6)
     on conflict (idempotency_key) where idempotency_key is not null do nothing
     returning id`,
    [run.flowId, run.scheduleId ?? null, run.scheduledFor, run.parameters, run.idempotencyKey ?? null, run.origin],
  );
  if (rows[0]) {
    await tx.query(
      `insert into flowwarden.run_state_history (run_id, to_type, to_name, message) values ($1, 'SCHEDULED', 'Scheduled', $2)`,
      [rows[0].id, `created (${run.origin})`],
    );
    return { id: rows[0].id, created: true };
  }
  const existing = await tx.query<{ id: string; flowId: string; flowName: string; requested: string | null }>(
    `select r.id, r.flow_id as "flowId", f.name as "flowName", (select name from flowwarden.flows where id = $2) as requested
       from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id
      where r.idempotency_key = $1`,
    [run.idempotencyKey, run.flowId],
  );
  const found = existing.rows[0]!;
  if (found.flowId !== run.flowId) {
    const requested = found.requested ?? run.flowId;
    throw new ConflictError(
      `idempotency key '${run.idempotencyKey}' is already used by run ${found.id} of flow '${found.flowName}', not flow '${requested}': ` +
        `keys are unique across all flows, so use one that names the flow (e.g. '${requested}:${run.idempotencyKey}')`,
    );
  }
  return { id: found.id, created: false };
}

export async function runHistory(db: Queryable, runId: string) {
  return dz(db)
    .select({
      fromType: runStateHistory.fromType,
      fromName: runStateHistory.fromName,
      toType: runStateHistory.toType,
      toName: runStateHistory.toName,
      message: runStateHistory.message,
      at: runStateHistory.at,
    })
    .from(runStateHistory)
    .where(eq(runStateHistory.runId, runId))
    .orderBy(runStateHistory.id);
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

/**
 * Cancel (CANCELLED/Skipped) the schedule-made runs that have not been dispatched yet, of a whole
 * flow (the guard disabling it) or of one schedule (a pause; `futureOnly` keeps runs already due).
 * The cancelled runs are also detached (schedule_id cleared; they keep their flow): they must free
 * their (schedule_id, scheduled_for) slot (runs_schedule_fire_key), or the run for the same fire
 * time after a schedule change, a resume or a reactivation inside the horizon would be silently
 * dropped by the tick's insert (`on conflict do nothing`).
 * One statement: claim SKIP LOCKED (a run a dispatch is claiming right now is left to it), update,
 * history rows. Returns the cancelled run ids.
 */
export async function cancelUndispatchedRuns(
  tx: Queryable,
  scope: { flowId: string } | { scheduleId: string; futureOnly: boolean },
  message: string,
): Promise<string[]> {
  const byFlow = 'flowId' in scope;
  const { rows } = await tx.query<{ id: string }>(
    `with claim as (
       select r.id, r.state_name from flowwarden.runs r
        where ${byFlow ? 'r.flow_id = $1' : 'r.schedule_id = $1'}
          and r.state_type = 'SCHEDULED' and r.origin = 'schedule'
          ${!byFlow && scope.futureOnly ? 'and r.scheduled_for > now()' : ''}
        for update skip locked
     ),
     cancelled as (
       update flowwarden.runs r
          set state_type = 'CANCELLED', state_name = 'Skipped', state_message = $2, ended_at = now(), updated_at = now()
              , schedule_id = null
         from claim c where r.id = c.id
       returning r.id
     ),
     history as (
       insert into flowwarden.run_state_history (run_id, from_type, from_name, to_type, to_name, message)
       select c.id, 'SCHEDULED', c.state_name, 'CANCELLED', 'Skipped', $2 from claim c join cancelled x on x.id = c.id
     )
     select id from cancelled`,
    [byFlow ? scope.flowId : scope.scheduleId, message],
  );
  countTransitions(tx, 'CANCELLED', rows.length);
  return rows.map((r) => r.id);
}

/**
 * The dispatch hot path as single statements. Each runs on its own (autocommit: the statement is
 * its transaction) and is prepared once per connection, so a batch of runs costs one round trip and
 * no planning. Runs they do not handle (another state, a held flow, overlap `skip`) are left
 * untouched for the general, validated path.
 */
const CLAIM_SCHEDULED_SQL = `
with v as (
  select * from unnest($1::uuid[], $2::int[]) as v(id, attempt)
),
c as (
  select r.id, r.state_name as from_name, v.attempt, (f.target->>'type') = 'function' as fn
    from flowwarden.runs r
    join v on v.id = r.id
    join flowwarden.flows f on f.id = r.flow_id
    left join flowwarden.schedules s on s.id = r.schedule_id
   where r.state_type = 'SCHEDULED'
     and not (f.disabled_at is not null and r.origin = 'schedule')
     and s.overlap is distinct from 'skip'
   order by r.id
     for update of r
),
u as (
  update flowwarden.runs r set
    state_type = case when c.fn then 'RUNNING' else 'PENDING' end,
    state_name = case when c.fn then $4 else $3 end,
    state_message = case when c.fn then null else 'dispatch attempt ' || (c.attempt + 1) end,
    dispatch_attempt = c.attempt,
    started_at = case when c.fn and r.started_at is null then now() else r.started_at end,
    updated_at = now()
    from c
   where r.id = c.id
  returning r.id, r.flow_id, r.schedule_id, r.scheduled_for, r.state_type, r.state_name, r.state_message,
            r.parameters, r.idempotency_key, r.origin, r.dispatch_attempt, r.external_id, r.created_at,
            r.started_at, r.ended_at, r.updated_at
),
h as (
  insert into flowwarden.run_state_history (run_id, from_type, from_name, to_type, to_name, message)
  select c.id, x.from_type, x.from_name, x.to_type, x.to_name, x.message
    from c
    cross join lateral (values
      (1, 'SCHEDULED', c.from_name, 'PENDING', $3::text, 'dispatch attempt ' || (c.attempt + 1)),
      (2, 'PENDING', $3::text, 'RUNNING', $4::text, null)
    ) as x(n, from_type, from_name, to_type, to_name, message)
   where x.n = 1 or c.fn
   order by c.id, x.n
)
select ${RUN_COLUMNS}, ${RUN_FLOW_COLUMN}
  from u r join flowwarden.flows f on f.id = r.flow_id`;

/**
 * Claim SCHEDULED runs for dispatch attempts in one statement: plain cases only (flow not held for a
 * scheduled run, overlap not `skip`). A function run goes SCHEDULED → PENDING → RUNNING in one row
 * version (both moves in the history, in order), any other target stops at PENDING. Returns the
 * claimed runs with their flows; the rest were not touched.
 */
export async function claimScheduledRuns(pool: pg.Pool, items: Array<{ runId: string; attempt: number }>): Promise<Array<RunRow & { flow: RunFlow }>> {
  if (items.length === 0) return [];
  const { rows } = await namedQuery<RunRow & { flow: RunFlow }>(pool, 'flowwarden_claim_scheduled_v1', CLAIM_SCHEDULED_SQL, [
    items.map((i) => i.runId), items.map((i) => i.attempt), DEFAULT_NAMES.PENDING, DEFAULT_NAMES.RUNNING,
  ]);
  return withFlowDates(rows);
}

const COMPLETE_OPEN_SQL = `
with v as (
  select * from unnest($1::uuid[], $2::text[]) as v(id, message)
),
c as (
  select r.id, r.state_type as from_type, r.state_name as from_name, v.message
    from flowwarden.runs r
    join v on v.id = r.id
   where r.state_type in ('PENDING', 'RUNNING')
   order by r.id
     for update of r
),
u as (
  update flowwarden.runs r set
    state_type = 'COMPLETED', state_name = $3, state_message = c.message,
    ended_at = now(), updated_at = now()
    from c
   where r.id = c.id
  returning r.id, r.flow_id
),
h as (
  insert into flowwarden.run_state_history (run_id, from_type, from_name, to_type, to_name, message)
  select c.id, c.from_type, c.from_name, 'COMPLETED', $3, c.message from c order by c.id
)
select u.id, f.name as "flowName" from u join flowwarden.flows f on f.id = u.flow_id`;

/**
 * Record COMPLETED (no task results) for runs that are PENDING or RUNNING, in one statement, with
 * their history rows. Returns the runs it completed; a run in any other state was not touched.
 * The caller publishes nothing: use it only when no consequence (event, hook) is due.
 */
export async function completeOpenRuns(pool: pg.Pool, items: Array<{ runId: string; message: string | null }>): Promise<Array<{ id: string; flowName: string }>> {
  if (items.length === 0) return [];
  const { rows } = await namedQuery<{ id: string; flowName: string }>(pool, 'flowwarden_complete_open_v1', COMPLETE_OPEN_SQL, [
    items.map((i) => i.runId), items.map((i) => i.message), DEFAULT_NAMES.COMPLETED,
  ]);
  return rows;
}
