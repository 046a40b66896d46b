/**
 * The scheduler's statements. Raw SQL: SKIP LOCKED claims and set-based writes are what the
 * builder cannot say.
 */
import type { Queryable } from '../db/client.ts';
import type { CatchupMode, ScheduleKind } from '../schema/enums.ts';

export interface DueSchedule {
  id: string;
  flowId: string;
  kind: ScheduleKind;
  cron: string | null;
  intervalSeconds: number | null;
  timezone: string;
  anchor: Date;
  parameters: Record<string, unknown>;
  catchup: CatchupMode;
  catchupWindowSeconds: number;
  catchupMax: number;
  nextRunAt: Date;
}

/**
 * Claim schedules due up to `until` (Postgres now + horizon). Each pod runs this every tick; SKIP
 * LOCKED hands every due schedule to exactly one of them for the rest of the transaction, and the
 * others move on to other rows instead of queueing behind the lock.
 * Index: schedules_due_idx (enabled, next_run_at).
 */
export async function claimDueSchedules(tx: Queryable, until: Date, limit: number): Promise<DueSchedule[]> {
  const { rows } = await tx.query<DueSchedule>(
    `select s.id, s.flow_id as "flowId", s.kind, s.cron, s.interval_seconds as "intervalSeconds", s.timezone,
            s.anchor, s.parameters, s.catchup, s.catchup_window_seconds as "catchupWindowSeconds",
            s.catchup_max as "catchupMax", s.next_run_at as "nextRunAt"
       from flowwarden.schedules s
      where s.enabled and s.next_run_at <= $1
      order by s.next_run_at
      limit $2
      for update skip locked`,
    [until, limit],
  );
  return rows;
}

export async function advanceSchedules(
  tx: Queryable,
  updates: Array<{ id: string; nextRunAt: Date; lastRunAt: Date | null }>,
): Promise<void> {
  if (updates.length === 0) return;
  await tx.query(
    `update flowwarden.schedules s
        set next_run_at = v.next_run_at, last_run_at = coalesce(v.last_run_at, s.last_run_at), updated_at = now()
       from unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) as v(id, next_run_at, last_run_at)
      where s.id = v.id`,
    [updates.map((u) => u.id), updates.map((u) => u.nextRunAt), updates.map((u) => u.lastRunAt)],
  );
}

/**
 * How far the scheduler is behind, cluster-wide: seconds since the oldest next_run_at of an enabled
 * schedule that is already due (0 when every due fire is materialised). The tick keeps next_run_at
 * ahead of now by the horizon, so anything above a tick interval or two means it cannot keep up.
 * Index: schedules_due_idx (enabled, next_run_at) — min() reads one entry.
 */
export async function schedulerLagSeconds(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ lag: number }>(
    `select coalesce(extract(epoch from now() - min(next_run_at)), 0)::float8 as lag
       from flowwarden.schedules where enabled and next_run_at < now()`,
  );
  return Math.max(0, rows[0]?.lag ?? 0);
}
