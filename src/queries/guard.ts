/**
 * Run-guard queries: health-rule inputs, disable / enforce / reactivate writes (late marking and
 * cancels are run writes: src/runs/store.ts). Functions of (db, params).
 * Lock order (to stay deadlock-free against the scheduler tick and the dispatch worker):
 *   flow row FOR NO KEY UPDATE → runs (SKIP LOCKED) → schedules.
 * NO KEY UPDATE rather than UPDATE so inserting runs (FK → FOR KEY SHARE on the flow) never waits
 * on the guard. Runs are taken with SKIP LOCKED: a run locked by a dispatch is being dispatched, and
 * dispatch itself re-checks `flows.disabled_at` under its own lock.
 */
import { orm } from '../db/drizzle.ts';

const { desc, eq, inArray, sql } = orm;
import type { Queryable } from '../db/client.ts';
import { dz } from '../db/client.ts';
import { disabledFlows, flows } from '../schema/index.ts';
import type { FlowRow } from './flows.ts';

/**
 * The note every schedule the guard switched off carries. `upsertScheduleRow` (src/queries/flows.ts)
 * writes the same prefix when `apply` keeps a schedule of a held flow disabled; reactivation
 * re-enables exactly the schedules with this note, so a schedule an operator paused stays paused.
 */
export const GUARD_NOTE_PREFIX = 'held disabled by flowwarden guard';

export type DisabledFlowRow = typeof disabledFlows.$inferSelect;

// ---------------------------------------------------------------------------------------------
// Health-rule inputs

export async function getFlowById(db: Queryable, flowId: string, options: { lock?: boolean } = {}): Promise<FlowRow | null> {
  if (options.lock) {
    // NO KEY UPDATE: serialises guard writers per flow without blocking run inserts (FK KEY SHARE).
    await db.query(`select 1 from flowwarden.flows where id = $1 for no key update`, [flowId]);
  }
  const rows = await dz(db).select().from(flows).where(eq(flows.id, flowId));
  return (rows[0] as FlowRow | undefined) ?? null;
}

export async function lockFlowByName(db: Queryable, name: string): Promise<FlowRow | null> {
  const { rows } = await db.query<{ id: string }>(`select id from flowwarden.flows where name = $1 for no key update`, [name]);
  return rows[0] ? getFlowById(db, rows[0].id) : null;
}

export interface TerminalRun {
  id: string;
  stateType: string;
  message: string | null;
}

/**
 * The most recent terminal runs since the baseline, newest first, CANCELLED excluded (it neither
 * counts nor resets a streak). A run belongs to the baseline window when it ended at/after it — when
 * the failure happened, not when it was scheduled for (a run triggered for a future time that fails
 * early must not count after every reactivation). Imported Prefect runs (origin 'watch') carry
 * Prefect's end time, so a day of history imported when a flow is first watched never counts. Index: runs_flow_created_idx (flow_id, created_at), scanned backwards and
 * stopped at `limit`.
 */
export async function recentTerminalRuns(db: Queryable, flowId: string, since: Date, limit: number): Promise<TerminalRun[]> {
  const { rows } = await db.query<TerminalRun>(
    `select r.id, r.state_type as "stateType", r.state_message as message
       from flowwarden.runs r
      where r.flow_id = $1
        and r.state_type in ('COMPLETED', 'FAILED', 'CRASHED')
        and coalesce(r.ended_at, case when r.origin = 'watch' then r.scheduled_for else r.created_at end) >= $2
      order by r.created_at desc, r.scheduled_for desc, r.id desc
      limit $3`,
    [flowId, since, limit],
  );
  return rows;
}

export interface FailedTask {
  runId: string;
  name: string;
  stateType: string;
  message: string | null;
}

/** Failed/crashed results of the named tasks in runs since the baseline, newest first. */
export async function failedCriticalTasks(db: Queryable, flowId: string, since: Date, names: string[], limit = 500): Promise<FailedTask[]> {
  if (names.length === 0) return [];
  const { rows } = await db.query<FailedTask>(
    `select t.run_id as "runId", t.name, t.state_type as "stateType", t.message
       from flowwarden.task_results t
       join flowwarden.runs r on r.id = t.run_id
      where r.flow_id = $1
        and coalesce(r.ended_at, case when r.origin = 'watch' then r.scheduled_for else r.created_at end) >= $2
        and t.name = any($3::text[])
        and t.state_type in ('FAILED', 'CRASHED')
      order by t.id desc
      limit $4`,
    [flowId, since, names, limit],
  );
  return rows;
}

/**
 * The periodic sweep's set-based pre-filter, one statement for every flow: enabled flows whose
 * newest N terminal runs since the baseline are all FAILED/CRASHED (N = the flow's
 * maxConsecutiveFailures or the default), plus flows with critical tasks configured and, in a run
 * created since max(baseline, now - window), a FAILED/CRASHED result of one of those tasks —
 * whatever the run's own state (a COMPLETED run can carry a failed critical task). The task rule's
 * ignorePatterns are RE2 regular expressions run in the process, so they are left to the per-flow evaluation.
 * Only these get a health job, so a sweep over 10,000 healthy flows is one query, not 10,000
 * evaluations.
 * Index: runs_flow_created_idx (flow_id, created_at), scanned backwards per flow, at most N rows;
 * for the task rule the same index bounds the runs and task_results_run_idx finds their tasks.
 */
export async function flowsNeedingEvaluation(db: Queryable, params: { defaultMaxFailures: number; windowSeconds: number; now?: Date }): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `select f.id
       from flowwarden.flows f
       cross join lateral (
         select count(*) filter (where x.state_type <> 'COMPLETED') as failed, count(*) as seen,
                coalesce((f.health->>'maxConsecutiveFailures')::int, $1::int) as threshold
           from (select r.state_type
                   from flowwarden.runs r
                  where r.flow_id = f.id
                    and r.state_type in ('COMPLETED', 'FAILED', 'CRASHED')
                    and coalesce(r.ended_at, case when r.origin = 'watch' then r.scheduled_for else r.created_at end) >= f.valid_since
                  order by r.created_at desc, r.scheduled_for desc, r.id desc
                  limit coalesce((f.health->>'maxConsecutiveFailures')::int, $1::int)) x
       ) streak
      where f.disabled_at is null
        and coalesce((f.health->>'autoDisable')::boolean, true)
        and ((streak.seen >= streak.threshold and streak.failed = streak.seen)
          or (jsonb_array_length(coalesce(f.health->'criticalTasks', '[]'::jsonb)) > 0
              and exists (select 1 from flowwarden.runs r
                            join flowwarden.task_results t on t.run_id = r.id
                           where r.flow_id = f.id
                             and r.created_at >= coalesce($3::timestamptz, now()) - make_interval(secs => $2::int)
                             and coalesce(r.ended_at, case when r.origin = 'watch' then r.scheduled_for else r.created_at end) >= f.valid_since
                             and t.state_type in ('FAILED', 'CRASHED')
                             and t.name in (select jsonb_array_elements_text(f.health->'criticalTasks')))))`,
    [params.defaultMaxFailures, params.windowSeconds, params.now ?? null],
  );
  return rows.map((r) => r.id);
}

// ---------------------------------------------------------------------------------------------
// Disable / enforce / reactivate

/**
 * The flow's open hold, locked FOR UPDATE for the guard's operations in their transaction; readers
 * (the API, the admin page: possibly on a read-only replica) pass `{ lock: false }`.
 */
export async function openHold(db: Queryable, flowName: string, options: { lock?: boolean } = {}): Promise<DisabledFlowRow | null> {
  const { rows } = await db.query<{ id: number }>(
    `select id from flowwarden.disabled_flows where flow_name = $1 and reactivated_at is null${options.lock === false ? '' : ' for update'}`,
    [flowName],
  );
  if (!rows[0]) return null;
  return (await dz(db).select().from(disabledFlows).where(eq(disabledFlows.id, rows[0].id)))[0] ?? null;
}

export async function guardHistory(db: Queryable, flowName: string): Promise<DisabledFlowRow[]> {
  return dz(db)
    .select()
    .from(disabledFlows)
    .where(eq(disabledFlows.flowName, flowName))
    .orderBy(desc(disabledFlows.disabledAt), desc(disabledFlows.id));
}

/** Mark the flow held disabled (caller holds the flow lock). */
export async function setFlowDisabled(tx: Queryable, flowId: string, reason: string): Promise<void> {
  await tx.query(
    `update flowwarden.flows set disabled_at = coalesce(disabled_at, now()), disabled_reason = $2, updated_at = now() where id = $1`,
    [flowId, reason],
  );
}

/** Switch off every enabled schedule of the flow with the guard's note. Returns how many changed. */
export async function disableFlowSchedules(tx: Queryable, flowId: string, reason: string): Promise<number> {
  const { rowCount } = await tx.query(
    `update flowwarden.schedules set enabled = false, note = $2, updated_at = now()
      where flow_id = $1 and enabled`,
    [flowId, `${GUARD_NOTE_PREFIX}: ${reason}`],
  );
  return rowCount ?? 0;
}


export async function insertHold(
  tx: Queryable,
  hold: { flowId: string; flowName: string; reason: string; rule: string; evidence: Record<string, unknown>; disabledBy: string },
): Promise<DisabledFlowRow> {
  const rows = await dz(tx)
    .insert(disabledFlows)
    .values({
      flowId: hold.flowId,
      flowName: hold.flowName,
      reason: hold.reason,
      rule: hold.rule,
      evidence: hold.evidence,
      disabledBy: hold.disabledBy,
    })
    .returning();
  return rows[0]!;
}

/**
 * Held flows whose hold is being violated: the flow row is not marked disabled (manual SQL, or the
 * flow was re-created under the same name) or one of its schedules is enabled again. Joined by
 * flow_name, the stable identity. Index: disabled_flows_open_key (partial, open holds only).
 */
export async function violatedHolds(db: Queryable): Promise<Array<{ holdId: number; flowId: string; flowName: string }>> {
  const { rows } = await db.query<{ holdId: number; flowId: string; flowName: string }>(
    `select d.id as "holdId", f.id as "flowId", f.name as "flowName"
       from flowwarden.disabled_flows d
       join flowwarden.flows f on f.name = d.flow_name
      where d.reactivated_at is null
        and (f.disabled_at is null
             or exists (select 1 from flowwarden.schedules s where s.flow_id = f.id and s.enabled))`,
  );
  return rows;
}

/** Open holds whose flow still exists (the enforce pass hands these to connector GuardActions). */
export async function heldFlowIds(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `select f.id from flowwarden.disabled_flows d join flowwarden.flows f on f.name = d.flow_name where d.reactivated_at is null`,
  );
  return rows.map((r) => r.id);
}

export async function recordEnforcement(tx: Queryable, holdId: number, flowId: string): Promise<DisabledFlowRow> {
  const { rows } = await tx.query<{ id: number }>(
    `update flowwarden.disabled_flows
        set enforce_count = enforce_count + 1, last_enforced_at = now(), flow_id = $2
      where id = $1 returning id`,
    [holdId, flowId],
  );
  return (await dz(tx).select().from(disabledFlows).where(eq(disabledFlows.id, rows[0]!.id)))[0]!;
}

/** Reactivation: clear the disabled mark and move the baseline to now. */
export async function clearFlowDisabled(tx: Queryable, flowId: string): Promise<void> {
  await tx.query(
    `update flowwarden.flows set disabled_at = null, disabled_reason = null, valid_since = now(), updated_at = now() where id = $1`,
    [flowId],
  );
}

/** Schedules the guard switched off (its note), to switch back on at reactivation. */
export async function guardDisabledScheduleIds(tx: Queryable, flowId: string): Promise<string[]> {
  const { rows } = await tx.query<{ id: string }>(
    `select id from flowwarden.schedules where flow_id = $1 and not enabled and note like $2 order by name for update`,
    [flowId, `${GUARD_NOTE_PREFIX}%`],
  );
  return rows.map((r) => r.id);
}

export async function closeHold(tx: Queryable, holdId: number, by: string): Promise<DisabledFlowRow> {
  const rows = await dz(tx)
    .update(disabledFlows)
    .set({ reactivatedBy: by, reactivatedAt: sql`now()` })
    .where(eq(disabledFlows.id, holdId))
    .returning();
  return rows[0]!;
}

/**
 * A page of guard history (every disable, open or closed), newest first, optionally for one flow.
 * Keyset on the id (bigserial, so newer rows have larger ids). `after`: last id of the previous page.
 * Index: disabled_flows_name_idx for the per-flow case; the primary key otherwise.
 */
export async function pageGuardHistory(db: Queryable, options: { flowName?: string; open?: boolean; after?: number; limit: number }): Promise<DisabledFlowRow[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  if (options.flowName !== undefined) {
    values.push(options.flowName);
    where.push(`flow_name = $${values.length}`);
  }
  if (options.open !== undefined) where.push(options.open ? 'reactivated_at is null' : 'reactivated_at is not null');
  if (options.after !== undefined) {
    values.push(options.after);
    where.push(`id < $${values.length}`);
  }
  values.push(options.limit);
  const { rows } = await db.query<{ id: number }>(
    `select id from flowwarden.disabled_flows ${where.length ? `where ${where.join(' and ')}` : ''} order by id desc limit $${values.length}`,
    values,
  );
  if (rows.length === 0) return [];
  const found = await dz(db).select().from(disabledFlows).where(inArray(disabledFlows.id, rows.map((r) => r.id)));
  return found.sort((a, b) => b.id - a.id);
}
