/**
 * Reads behind the admin page's pictures and its runs page (the overview chart is chart.ts): a
 * flow's last runs (the run strip), a flow's recent runs with the cancelled ones apart. Bounded
 * reads, functions of (db, params); plans and timings in bench/NOTES.md.
 */
import type { Queryable } from '../db/client.ts';
import type { RunRow } from '../types.ts';
import { nextFireAfter } from '../scheduling/fire-times.ts';
import { scheduleSpecOf } from './flows.ts';
import type { ScheduleKind } from '../schema/enums.ts';

export interface StripRun {
  id: string;
  scheduledFor: Date;
  stateType: string;
  stateName: string;
  stateMessage: string | null;
}

/**
 * The flow's last `limit` runs due by `now` (pre-created future runs are not history yet), oldest
 * first so the newest is drawn at the right. Index: runs_flow_scheduled_idx (flow_id, scheduled_for)
 * scanned backwards.
 */
export async function runStrip(db: Queryable, flowId: string, now: Date, limit = 40): Promise<StripRun[]> {
  const { rows } = await db.query<StripRun>(
    `select * from (
       select r.id, r.scheduled_for as "scheduledFor", r.state_type as "stateType", r.state_name as "stateName", r.state_message as "stateMessage"
         from flowwarden.runs r
        where r.flow_id = $1 and r.scheduled_for <= $2
        order by r.scheduled_for desc, r.id desc limit $3) last
      order by "scheduledFor", id`,
    [flowId, now, limit],
  );
  return rows;
}

export interface DueFire {
  flowName: string;
  scheduleName: string;
  cron: string | null;
  everySeconds: number | null;
  timezone: string;
  /** The schedule's next fire after now (not next_run_at, which runs a horizon ahead). */
  nextFire: Date;
}

/**
 * Enabled schedules by their next fire time. next_run_at is the first fire time the tick has not
 * materialised yet, up to a horizon (30 s) ahead, so a schedule firing every 3 s shows "in 30s"
 * there; the next fire is computed from the schedule itself. Candidates are the `scan` earliest by
 * next_run_at (index schedules_due_idx): a schedule's next fire is never after its next_run_at.
 */
export async function dueFires(db: Queryable, now: Date, limit = 10, scan = 100): Promise<DueFire[]> {
  const { rows } = await db.query<{
    flowName: string; scheduleName: string; kind: ScheduleKind; cron: string | null; intervalSeconds: number | null;
    timezone: string; anchor: Date; nextRunAt: Date;
  }>(
    `select f.name as "flowName", s.name as "scheduleName", s.kind, s.cron, s.interval_seconds as "intervalSeconds",
            s.timezone, s.anchor, s.next_run_at as "nextRunAt"
       from flowwarden.schedules s join flowwarden.flows f on f.id = s.flow_id
      where s.enabled and s.next_run_at is not null
      order by s.next_run_at, f.name, s.name limit $1`,
    [scan],
  );
  const fires = rows.map((s) => {
    let next = s.nextRunAt;
    try {
      const computed = nextFireAfter(scheduleSpecOf(s), now);
      if (computed < next) next = computed;
    } catch {
      // A schedule the fire-time code refuses keeps its stored next_run_at.
    }
    return { flowName: s.flowName, scheduleName: s.scheduleName, cron: s.cron, everySeconds: s.intervalSeconds, timezone: s.timezone, nextFire: next };
  });
  fires.sort((a, b) => a.nextFire.getTime() - b.nextFire.getTime() || a.flowName.localeCompare(b.flowName) || a.scheduleName.localeCompare(b.scheduleName));
  return fires.slice(0, limit);
}

export type { RunRow };
