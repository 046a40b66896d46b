/**
 * Flow and schedule writes/reads. Functions of (db, params); `db` may be the caller's transaction.
 */
import { orm } from '../db/drizzle.ts';

const { and, asc, eq, inArray } = orm;
import type { Queryable } from '../db/client.ts';
import { dz } from '../db/client.ts';
import { flows, schedules } from '../schema/index.ts';
import type { FlowInput, ScheduleInput } from '../flows/spec.ts';
import { nextFireAfter, type ScheduleSpec } from '../scheduling/fire-times.ts';
import type { TargetSpec } from '../targets/spec.ts';
import type { HealthPolicy } from '../flows/spec.ts';
import { NotFoundError } from '../errors.ts';
import { runCancelMany } from '../runs/store.ts';

export type FlowRow = typeof flows.$inferSelect & { target: TargetSpec; health: HealthPolicy };
export type ScheduleRow = typeof schedules.$inferSelect;

export function scheduleSpecOf(s: Pick<ScheduleRow, 'kind' | 'cron' | 'intervalSeconds' | 'timezone' | 'anchor'>): ScheduleSpec {
  return s.kind === 'cron'
    ? { kind: 'cron', cron: s.cron!, timezone: s.timezone }
    : { kind: 'interval', everySeconds: s.intervalSeconds!, anchor: s.anchor };
}

export async function getFlowByName(db: Queryable, name: string): Promise<FlowRow | null> {
  const rows = await dz(db).select().from(flows).where(eq(flows.name, name));
  return (rows[0] as FlowRow | undefined) ?? null;
}

export async function requireFlow(db: Queryable, name: string): Promise<FlowRow> {
  const flow = await getFlowByName(db, name);
  if (!flow) throw new NotFoundError(`flow '${name}' not found: check the name (flowwarden flows list) or create it with flowwarden apply -f FILE`);
  return flow;
}

export async function listFlows(db: Queryable, options: { limit?: number; after?: string } = {}): Promise<FlowRow[]> {
  const q = dz(db).select().from(flows).orderBy(asc(flows.name)).limit(options.limit ?? 1000);
  return (await q) as FlowRow[];
}

export async function listSchedules(db: Queryable, flowId: string): Promise<ScheduleRow[]> {
  return dz(db).select().from(schedules).where(eq(schedules.flowId, flowId)).orderBy(asc(schedules.name));
}

export interface UpsertFlowResult {
  flow: FlowRow;
  created: boolean;
}

/**
 * Create or update a flow by name (the stable identity). Does not touch its schedules.
 * A flow created under a name the guard still holds (an open disabled_flows row: the flow was
 * deleted and re-created while disabled) is created held: disabled_at and the hold's reason are set
 * in the insert, and the hold is pointed at the new row, so its schedules are written disabled
 * (upsertScheduleRow) and nothing fires until `flows reactivate`. An update leaves the mark alone.
 * Index: disabled_flows_open_key (partial, open holds by name).
 */
export async function upsertFlowRow(tx: Queryable, input: Omit<FlowInput, 'schedules'>): Promise<UpsertFlowResult> {
  const { rows } = await tx.query<{ id: string; created: boolean; held: boolean }>(
    `with hold as (
       select reason from flowwarden.disabled_flows where flow_name = $1 and reactivated_at is null
     )
     insert into flowwarden.flows (name, description, target, health, late_after_seconds, disabled_at, disabled_reason)
     values ($1, $2, $3, $4, $5, (select now() from hold), (select reason from hold))
     on conflict (name) do update set
       description = excluded.description, target = excluded.target, health = excluded.health,
       late_after_seconds = excluded.late_after_seconds, updated_at = now()
     returning id, (xmax = 0) as created, disabled_at is not null as held`,
    [input.name, input.description ?? null, input.target, input.health ?? {}, input.lateAfter ?? null],
  );
  const { id, created, held } = rows[0]!;
  if (created && held) {
    await tx.query(`update flowwarden.disabled_flows set flow_id = $2 where flow_name = $1 and reactivated_at is null`, [input.name, id]);
  }
  const flow = (await dz(tx).select().from(flows).where(eq(flows.id, id)))[0] as FlowRow;
  return { flow, created };
}

export interface UpsertScheduleResult {
  schedule: ScheduleRow;
  created: boolean;
  /** The flow is held disabled by the guard: the schedule was written but kept disabled. */
  heldDisabled: boolean;
}

/**
 * Create or update a schedule by (flow, name). next_run_at is recomputed from Postgres's now when
 * the spec (kind, cron, interval, timezone, anchor) or the parameters changed, or the schedule is
 * being (re-)enabled; otherwise the tick keeps owning it. A change also cancels the runs the tick
 * already pre-created for fire times still ahead (inside the horizon), which carry the old spec's
 * times and the old parameters; the tick re-creates them from the new spec on its next pass.
 * A flow the guard holds disabled keeps its schedules disabled: re-applying a file never silently
 * re-enables it (reactivation does).
 */
export async function upsertScheduleRow(tx: Queryable, flow: FlowRow, input: ScheduleInput, now: Date): Promise<UpsertScheduleResult> {
  // The current row, locked (a tick materialising it finishes first, so its runs are visible to the
  // cancel below). Parameters are compared in SQL: jsonb equality ignores key order.
  const { rows: prevRows } = await tx.query<Pick<ScheduleRow, 'id' | 'kind' | 'cron' | 'intervalSeconds' | 'timezone' | 'anchor'> & { parametersChanged: boolean }>(
    `select id, kind, cron, interval_seconds as "intervalSeconds", timezone, anchor,
            parameters is distinct from $3::jsonb as "parametersChanged"
       from flowwarden.schedules where flow_id = $1 and name = $2 for update`,
    [flow.id, input.name, JSON.stringify(input.parameters)],
  );
  const prev = prevRows[0];
  // An interval keeps its stored anchor unless the input gives one, so its fire times stay aligned.
  const anchor = input.anchor ?? prev?.anchor ?? now;
  const spec: ScheduleSpec = input.cron !== undefined
    ? { kind: 'cron', cron: input.cron, timezone: input.timezone }
    : { kind: 'interval', everySeconds: input.every!, anchor };
  const next = nextFireAfter(spec, now);
  const changed = prev !== undefined && (
    prev.kind !== spec.kind || prev.cron !== (input.cron ?? null) || prev.intervalSeconds !== (input.every ?? null)
    || prev.timezone !== input.timezone || (spec.kind === 'interval' && prev.anchor.getTime() !== anchor.getTime())
    || prev.parametersChanged
  );
  const held = flow.disabledAt !== null;
  const { rows } = await tx.query<{ id: string; created: boolean }>(
    `insert into flowwarden.schedules as s (flow_id, name, kind, cron, interval_seconds, timezone, anchor, parameters,
        enabled, note, catchup, catchup_window_seconds, catchup_max, overlap, next_run_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
     on conflict (flow_id, name) do update set
       next_run_at = case when $16 or (not s.enabled and excluded.enabled) or s.next_run_at is null
         then excluded.next_run_at else s.next_run_at end,
       kind = excluded.kind, cron = excluded.cron, interval_seconds = excluded.interval_seconds,
       timezone = excluded.timezone, anchor = excluded.anchor,
       parameters = excluded.parameters, enabled = excluded.enabled, note = excluded.note,
       catchup = excluded.catchup, catchup_window_seconds = excluded.catchup_window_seconds,
       catchup_max = excluded.catchup_max, overlap = excluded.overlap, updated_at = now()
     returning id, (xmax = 0) as created`,
    [
      flow.id, input.name, spec.kind, input.cron ?? null, input.every ?? null, input.timezone, anchor, input.parameters,
      input.enabled && !held, held && input.enabled ? `held disabled by flowwarden guard: ${flow.disabledReason ?? 'flow disabled'}` : input.note ?? null,
      input.catchup, input.catchupWindow ?? 3600, input.catchupMax ?? 100, input.overlap, next,
      changed,
    ],
  );
  const schedule = (await dz(tx).select().from(schedules).where(eq(schedules.id, rows[0]!.id)))[0]!;
  if (changed) {
    await runCancelMany(tx, { scheduleId: schedule.id, futureOnly: true }, 'superseded: the schedule was changed (spec or parameters) before this run was due');
  } else if (!schedule.enabled && !rows[0]!.created) {
    await runCancelMany(tx, { scheduleId: schedule.id, futureOnly: true }, `schedule disabled${schedule.note ? `: ${schedule.note}` : ''}`);
  }
  return { schedule, created: rows[0]!.created, heldDisabled: held && input.enabled };
}

/** Pause or resume one schedule with a note. Resuming recomputes next_run_at from now (no catch-up for a pause). */
export async function setScheduleEnabled(tx: Queryable, scheduleId: string, enabled: boolean, note: string | null, now: Date): Promise<ScheduleRow> {
  const rows = await dz(tx).select().from(schedules).where(eq(schedules.id, scheduleId));
  const s = rows[0];
  if (!s) throw new NotFoundError(`schedule ${scheduleId} not found`);
  const next = enabled && !s.enabled ? nextFireAfter(scheduleSpecOf(s), now) : s.nextRunAt;
  if (!enabled && s.enabled) await runCancelMany(tx, { scheduleId, futureOnly: true }, `schedule paused${note ? `: ${note}` : ''}`);
  const updated = await dz(tx)
    .update(schedules)
    .set({ enabled, note, nextRunAt: next, updatedAt: now })
    .where(eq(schedules.id, scheduleId))
    .returning();
  return updated[0]!;
}

/**
 * A page of flows by name (byte order, `collate "C"`, so the keyset comparison and the sort agree
 * whatever the database collation). `after`: the last name of the previous page.
 */
export async function pageFlows(db: Queryable, options: { after?: string; disabled?: boolean; limit: number }): Promise<FlowRow[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  if (options.after !== undefined) {
    values.push(options.after);
    where.push(`name collate "C" > $${values.length}`);
  }
  if (options.disabled !== undefined) where.push(options.disabled ? 'disabled_at is not null' : 'disabled_at is null');
  values.push(options.limit);
  const { rows } = await db.query<{ id: string }>(
    `select id from flowwarden.flows ${where.length ? `where ${where.join(' and ')}` : ''}
      order by name collate "C" limit $${values.length}`,
    values,
  );
  if (rows.length === 0) return [];
  const found = (await dz(db).select().from(flows).where(inArray(flows.id, rows.map((r) => r.id)))) as FlowRow[];
  const byId = new Map(found.map((f) => [f.id, f]));
  return rows.map((r) => byId.get(r.id)!).filter(Boolean);
}

export async function getScheduleByName(db: Queryable, flowId: string, name: string): Promise<ScheduleRow | null> {
  const rows = await dz(db).select().from(schedules).where(and(eq(schedules.flowId, flowId), eq(schedules.name, name)));
  return rows[0] ?? null;
}

