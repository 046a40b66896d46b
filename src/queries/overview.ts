/**
 * The operator overview (admin page): what fires next, what runs, what is late, what fails, what
 * the guard holds. Small bounded reads; each list is capped so the page stays cheap however big
 * the tables grow. Functions of (db, params).
 */
import type { Queryable } from '../db/client.ts';
import type { RunRow } from '../types.ts';
import { RUN_COLUMNS } from '../runs/read.ts';

// What fires next: dueFires in queries/admin.ts (the next fire, not the horizon-ahead next_run_at).


/** PENDING/RUNNING runs, oldest first. Index: runs_open_idx. */
export async function runningRuns(db: Queryable, limit = 20): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>(
    `select ${RUN_COLUMNS} from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id
      where r.state_type in ('PENDING', 'RUNNING') order by r.scheduled_for, r.id limit $1`,
    [limit],
  );
  return rows;
}

/** SCHEDULED runs the late sweep marked Late, oldest first. Index: runs_open_idx. */
export async function lateRuns(db: Queryable, limit = 20): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>(
    `select ${RUN_COLUMNS} from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id
      where r.state_type = 'SCHEDULED' and r.state_name = 'Late' order by r.scheduled_for, r.id limit $1`,
    [limit],
  );
  return rows;
}

/** FAILED/CRASHED runs that ended within the window, newest first (every terminal transition sets ended_at). Index: runs_failed_ended_idx. */
export async function recentFailures(db: Queryable, windowSeconds = 24 * 3600, limit = 20): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>(
    `select ${RUN_COLUMNS} from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id
      where r.state_type in ('FAILED', 'CRASHED')
        and r.ended_at >= now() - make_interval(secs => $1::int)
      order by r.ended_at desc, r.id desc limit $2`,
    [windowSeconds, limit],
  );
  return rows;
}

export interface DisabledFlowSummary {
  name: string;
  disabledAt: Date;
  reason: string | null;
  disabledBy: string | null;
  rule: string | null;
}

/** Flows held disabled, with the open guard record when there is one. */
export async function disabledFlowsNow(db: Queryable, limit = 100): Promise<DisabledFlowSummary[]> {
  const { rows } = await db.query<DisabledFlowSummary>(
    `select f.name, f.disabled_at as "disabledAt", coalesce(d.reason, f.disabled_reason) as reason,
            d.disabled_by as "disabledBy", d.rule
       from flowwarden.flows f
       left join flowwarden.disabled_flows d on d.flow_name = f.name and d.reactivated_at is null
      where f.disabled_at is not null
      order by f.disabled_at desc, f.name limit $1`,
    [limit],
  );
  return rows;
}
