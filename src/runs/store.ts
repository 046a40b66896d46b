/**
 * The one owner of run state: every write of a run's state and its history is a statement here.
 * Single runs go through `runTransition` (validated by src/runs/states.ts); set-based writers
 * (claim, completion, cancel, late marking) take their allowed from-states from the same machine
 * (`sqlFromStates`) and append history through the one `HISTORY` insert, except the plain moves of
 * the fast claim and completion, recorded on the row (`runs.implied`; read through the view
 * flowwarden.run_history). Statement names are entity-first (run…, run…Many); new runs are inserted
 * by store-insert.ts. Consequences (events, guard, metrics): src/runs/service.ts.
 */
import type pg from 'pg';
import type { Queryable } from '../db/client.ts';
import { namedQuery } from '../db/client.ts';
import { countTransitions } from './observe.ts';
import { checkTransition, DEFAULT_NAMES, isTerminal, sourcesOf, sqlFromStates } from './states.ts';
import { getRun, RUN_COLUMNS, RUN_FLOW_COLUMN, withFlowDates } from './read.ts';
import { NotFoundError } from '../errors.ts';
import type { RunFlow, RunRow, State, StateType, TaskInput, TransitionInput, TransitionResult } from '../types.ts';

/** The one history insert; every writer appends (run_id, from_type, from_name, to_type, to_name, message). */
export const HISTORY = `insert into flowwarden.run_state_history (run_id, from_type, from_name, to_type, to_name, message)`;

/** Validate and apply one transition of a run the caller holds locked (`FOR UPDATE`), with its history. */
export async function runTransition(tx: Queryable, current: RunRow, input: TransitionInput): Promise<TransitionResult> {
  const [result] = await runTransitionMany(tx, [{ current, input }]);
  return result!;
}

/** As runTransition, locking the run first. Must run inside a transaction. */
export async function runTransitionById(tx: Queryable, input: TransitionInput): Promise<TransitionResult> {
  const current = await getRun(tx, input.runId, { forUpdate: true });
  if (!current) throw new NotFoundError(`run ${input.runId} not found: check the id (flowwarden runs list)`);
  return runTransition(tx, current, input);
}

/**
 * Apply many validated transitions of locked runs in one statement (runs and history; a second for
 * task results). Invalid transitions throw before anything is written (filter them first with
 * `transitionAllowed` when a batch may contain them).
 */
export async function runTransitionMany(tx: Queryable, items: Array<{ current: RunRow; input: Omit<TransitionInput, 'runId'> }>): Promise<TransitionResult[]> {
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
  // History rows keep their order (ordinality), so a run's moves get ascending history ids.
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
       ${HISTORY}
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
  const tasks = planned.flatMap((p) => (p.input.tasks ?? []).map((t) => ({ runId: p.current.id, ...t })));
  if (tasks.length) await insertTasks(tx, tasks);
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

async function insertTasks(tx: Queryable, tasks: Array<TaskInput & { runId: string }>): Promise<void> {
  await tx.query(
    `insert into flowwarden.task_results (run_id, name, state_type, message)
     select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[])`,
    [tasks.map((t) => t.runId), tasks.map((t) => t.name), tasks.map((t) => t.stateType), tasks.map((t) => t.message ?? null)],
  );
}

/** Task results recorded outside a transition (they arrived after the run finished). */
export async function runInsertTasks(tx: Queryable, runId: string, tasks: TaskInput[]): Promise<void> {
  if (tasks.length) await insertTasks(tx, tasks.map((t) => ({ runId, ...t })));
}

/** A new dispatch attempt takes over a PENDING run without changing its state (claim rule 2). */
export async function runSetAttempt(tx: Queryable, runId: string, attempt: number): Promise<void> {
  await tx.query(`update flowwarden.runs set dispatch_attempt = $2, updated_at = now() where id = $1`, [runId, attempt]);
}

/** The run is carried by another dispatch job from now on (a single-run retry or deferral; runs.dispatch_job_id). */
export async function runSetDispatchJob(tx: Queryable, runId: string, jobId: string): Promise<void> {
  await tx.query(`update flowwarden.runs set dispatch_job_id = $2 where id = $1`, [runId, jobId]);
}

/** Record the external (Prefect) id of a run that is already past PENDING. */
export async function runSetExternalId(tx: Queryable, runId: string, externalId: string): Promise<void> {
  await tx.query(`update flowwarden.runs set external_id = $2, updated_at = now() where id = $1`, [runId, externalId]);
}

/** Keep Prefect's own start and end times on a mirrored run (transitions stamp our clock). */
export async function runSetTimes(tx: Queryable, runId: string, startedAt: Date | null, endedAt: Date | null): Promise<void> {
  if (!startedAt && !endedAt) return;
  await tx.query(
    `update flowwarden.runs set started_at = coalesce($2, started_at),
            ended_at = case when ended_at is not null then coalesce($3, ended_at) else ended_at end
      where id = $1`,
    [runId, startedAt, endedAt],
  );
}

// ---------------------------------------------------------------------------------------------
// Set-based writers: from-states come from the state machine (sqlFromStates), history via HISTORY.

/** Undispatched = still SCHEDULED: the only runs a pause or a hold cancels. */
const CANCEL_FROM = sqlFromStates('r', { type: 'CANCELLED', name: 'Skipped' }, ['SCHEDULED']);

/**
 * Cancel (CANCELLED/Skipped) the schedule-made runs not dispatched yet, of a whole flow (a guard
 * hold, a disable) or of one schedule (a pause or change: `futureOnly` keeps runs already due).
 * They are detached (schedule_id cleared) to free their (schedule_id, scheduled_for) slot for a
 * later fire (docs/state-machine.md). SKIP LOCKED: a run being claimed now is left to dispatch.
 * Manual/API runs are left alone (an operator asked for them). Index: runs_open_idx.
 * Returns the cancelled run ids.
 */
export async function runCancelMany(
  tx: Queryable,
  scope: { flowId: string } | { scheduleId: string; futureOnly: boolean },
  message: string,
): Promise<string[]> {
  const byFlow = 'flowId' in scope;
  const { rows } = await tx.query<{ id: string }>(
    `with claim as (
       select r.id, r.state_type, r.state_name from flowwarden.runs r
        where ${byFlow ? 'r.flow_id = $1' : 'r.schedule_id = $1'}
          and ${CANCEL_FROM} and r.origin = 'schedule'
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
       ${HISTORY}
       select c.id, c.state_type, c.state_name, 'CANCELLED', 'Skipped', $2 from claim c join cancelled x on x.id = c.id
     )
     select id from cancelled`,
    [byFlow ? scope.flowId : scope.scheduleId, message],
  );
  countTransitions(tx, 'CANCELLED', rows.length);
  return rows.map((r) => r.id);
}

export interface LateRun {
  id: string;
  flowId: string;
  flowName: string;
  scheduledFor: Date;
  lateAfterSeconds: number;
  at: Date;
}

const LATE_FROM = sqlFromStates('r', { type: 'SCHEDULED', name: 'Late' }, ['SCHEDULED']);

/**
 * Mark up to `limit` runs Late in one statement: claim (FOR UPDATE SKIP LOCKED) → rename
 * Scheduled → Late → history rows. Safe on every pod at once and each run is marked at most once;
 * why, the index it walks and the `from` cursor that keeps a sweep linear: docs/state-machine.md.
 */
export async function runMarkLateMany(
  tx: Queryable,
  params: { now?: Date; defaultAfterSeconds: number; limit: number; from?: Date },
): Promise<LateRun[]> {
  const { rows } = await tx.query<LateRun>(
    `with clock as (
       select coalesce($1::timestamptz, now()) as now
     ),
     claim as (
       select r.id, r.flow_id, r.scheduled_for, r.state_type, r.state_name
         from flowwarden.runs r
        where ${LATE_FROM}
          and r.scheduled_for <= (select now from clock)
                - make_interval(secs => (select least($2::int, coalesce(min(late_after_seconds), $2::int)) from flowwarden.flows))
          and r.scheduled_for >= coalesce($4::timestamptz, '-infinity')
          -- the exact per-flow threshold as a per-row subquery, not a join: keeps the index order
          and r.scheduled_for <= (select now from clock)
                - make_interval(secs => coalesce((select f.late_after_seconds from flowwarden.flows f where f.id = r.flow_id), $2::int))
        order by r.scheduled_for
        limit $3
        for update of r skip locked
     ),
     marked as (
       update flowwarden.runs r
          set state_name = 'Late', updated_at = now()
         from claim c
        where r.id = c.id
       returning r.id
     ),
     info as (
       select c.id, c.flow_id, f.name as flow_name, c.scheduled_for, c.state_type, c.state_name,
              coalesce(f.late_after_seconds, $2::int) as after_seconds
         from claim c
         join marked m on m.id = c.id
         join flowwarden.flows f on f.id = c.flow_id
     ),
     history as (
       ${HISTORY}
       select id, state_type, state_name, 'SCHEDULED', 'Late',
              'not started within ' || after_seconds || ' s of its scheduled time'
         from info
     )
     select id, flow_id as "flowId", flow_name as "flowName", scheduled_for as "scheduledFor",
            after_seconds as "lateAfterSeconds", now() as at
       from info`,
    [params.now ?? null, params.defaultAfterSeconds, params.limit, params.from ?? null],
  );
  return rows;
}

/**
 * The overlap check of a SCHEDULED run's claim: locks its schedule row and, when overlap is `skip`,
 * returns another PENDING/RUNNING run of the schedule (null: the run may go).
 */
export async function runBusySibling(tx: Queryable, run: Pick<RunRow, 'id' | 'scheduleId'>): Promise<{ id: string; stateType: string } | null> {
  if (!run.scheduleId) return null;
  const s = await tx.query<{ overlap: string }>(`select overlap from flowwarden.schedules where id = $1 for update`, [run.scheduleId]);
  if (s.rows[0]?.overlap !== 'skip') return null;
  const busy = await tx.query<{ id: string; stateType: string }>(
    `select id, state_type as "stateType" from flowwarden.runs
      where schedule_id = $1 and id <> $2 and state_type in ('PENDING', 'RUNNING') limit 1`,
    [run.scheduleId, run.id],
  );
  return busy.rows[0] ?? null;
}

// The dispatch hot path as single autocommit statements, prepared once per connection: a batch
// of runs costs one round trip and no planning. Runs they do not handle are left untouched for
// the validated path (runTransition).

/** A first claim takes only undispatched runs; the per-run claim (src/dispatch/claim.ts) tests the same list. */
const CLAIM_TO: State = { type: 'PENDING', name: DEFAULT_NAMES.PENDING };
export const CLAIMABLE_TYPES: readonly StateType[] = sourcesOf(CLAIM_TO, ['SCHEDULED']).types;
const CLAIM_FROM = sqlFromStates('r', CLAIM_TO, CLAIMABLE_TYPES);

const CLAIM_SCHEDULED_SQL = `
with v as (
  select * from unnest($1::uuid[], $2::int[]) as v(id, attempt)
),
c as (
  select r.id, r.state_type as from_type, r.state_name as from_name, v.attempt, (f.target->>'type') = 'function' as fn,
         v.attempt = 0 as first, v.attempt = 0 and r.started_at is null as starts
    from flowwarden.runs r
    join v on v.id = r.id
    join flowwarden.flows f on f.id = r.flow_id
    left join flowwarden.schedules s on s.id = r.schedule_id
   where ${CLAIM_FROM}
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
    pending_at = case when c.first then now() else r.pending_at end,
    implied = r.implied | case when c.first then 2 else 0 end | case when c.fn and c.starts then 4 else 0 end,
    updated_at = now()
    from c
   where r.id = c.id
  returning r.id, r.flow_id, r.schedule_id, r.scheduled_for, r.state_type, r.state_name, r.state_message,
            r.parameters, r.idempotency_key, r.origin, r.dispatch_attempt, r.external_id, r.created_at,
            r.started_at, r.ended_at, r.updated_at
),
h as (
  ${HISTORY}
  select c.id, x.from_type, x.from_name, x.to_type, x.to_name, x.message
    from c
    cross join lateral (values
      (1, c.from_type, c.from_name, 'PENDING', $3::text, 'dispatch attempt ' || (c.attempt + 1)),
      (2, 'PENDING', $3::text, 'RUNNING', $4::text, null)
    ) as x(n, from_type, from_name, to_type, to_name, message)
   where (x.n = 1 and not c.first) or (x.n = 2 and c.fn and not c.starts)
   order by c.id, x.n
)
select ${RUN_COLUMNS}, ${RUN_FLOW_COLUMN}
  from u r join flowwarden.flows f on f.id = r.flow_id`;

/**
 * Claim SCHEDULED runs in one statement, plain cases only (flow not held, overlap not `skip`): a
 * function run goes SCHEDULED → PENDING → RUNNING in one row version (both moves in the history),
 * any other target stops at PENDING. A first attempt records the moves on the row (implied bits 2
 * and 4, pending_at); a retried one writes history rows. Returns the claimed runs with their flows.
 */
export async function runClaimMany(pool: pg.Pool, items: Array<{ runId: string; attempt: number }>): Promise<Array<RunRow & { flow: RunFlow }>> {
  if (items.length === 0) return [];
  const { rows } = await namedQuery<RunRow & { flow: RunFlow }>(pool, 'flowwarden_claim_scheduled_v3', CLAIM_SCHEDULED_SQL, [
    items.map((i) => i.runId), items.map((i) => i.attempt), DEFAULT_NAMES.PENDING, DEFAULT_NAMES.RUNNING,
  ]);
  return withFlowDates(rows);
}

/** A run completes after its claim: only PENDING/RUNNING runs take the fast path. */
const COMPLETE_FROM = sqlFromStates('r', { type: 'COMPLETED', name: DEFAULT_NAMES.COMPLETED }, ['PENDING', 'RUNNING']);

const COMPLETE_OPEN_SQL = `
with v as (
  select * from unnest($1::uuid[], $2::text[]) as v(id, message)
),
c as (
  select r.id, v.message
    from flowwarden.runs r
    join v on v.id = r.id
   where ${COMPLETE_FROM}
   order by r.id
     for update of r
),
u as (
  update flowwarden.runs r set
    state_type = 'COMPLETED', state_name = $3, state_message = c.message,
    ended_at = now(), updated_at = now(), implied = r.implied | 8
    from c
   where r.id = c.id
  returning r.id, r.flow_id
)
select u.id, f.name as "flowName" from u join flowwarden.flows f on f.id = u.flow_id`;

/**
 * Record COMPLETED (no task results) for runs that are PENDING or RUNNING, in one statement; the
 * move is recorded on the row (implied bit 8: ended_at, state_message). Returns the runs it completed. Publishes nothing: use it only when no consequence
 * (event, hook) is due.
 */
export async function runCompleteMany(pool: pg.Pool, items: Array<{ runId: string; message: string | null }>): Promise<Array<{ id: string; flowName: string }>> {
  if (items.length === 0) return [];
  const { rows } = await namedQuery<{ id: string; flowName: string }>(pool, 'flowwarden_complete_open_v2', COMPLETE_OPEN_SQL, [
    items.map((i) => i.runId), items.map((i) => i.message), DEFAULT_NAMES.COMPLETED,
  ]);
  return rows;
}
