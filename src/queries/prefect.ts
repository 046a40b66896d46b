/**
 * Prefect connector queries: watch cursors, imported (watched) runs, and the schedule holds the
 * guard keeps. Functions of (db, params); `db` may be a transaction.
 */
import type { Queryable } from '../db/client.ts';
import type { FlowRow } from './flows.ts';
import type { StateType } from '../types.ts';

/** Flows whose target is a Prefect deployment in watch mode. */
export async function listWatchedFlows(db: Queryable): Promise<FlowRow[]> {
  const { rows } = await db.query<FlowRow>(
    `select id, name, description, target, health, late_after_seconds as "lateAfterSeconds", valid_since as "validSince",
            disabled_at as "disabledAt", disabled_reason as "disabledReason", created_at as "createdAt", updated_at as "updatedAt"
       from flowwarden.flows
      where target->>'type' = 'prefect' and (target->>'watch')::boolean is true
      order by name`,
  );
  return rows;
}

export interface WatchCursor {
  flowId: string;
  deploymentId: string | null;
  cursor: Date;
  importedCount: number;
}

/** Create the flow's cursor at `start` unless it exists. */
export async function ensureWatchCursor(db: Queryable, flowId: string, deploymentId: string, start: Date): Promise<void> {
  await db.query(
    `insert into flowwarden.prefect_watch_cursors (flow_id, deployment_id, cursor) values ($1, $2, $3)
     on conflict (flow_id) do nothing`,
    [flowId, deploymentId, start],
  );
}

/**
 * Lock the flow's cursor for one page of import, or null when another pod holds it right now
 * (SKIP LOCKED: that pod is importing this flow; this one moves on instead of waiting). Primary-key
 * lookup; the lock lasts until the caller's transaction ends.
 */
export async function lockWatchCursor(tx: Queryable, flowId: string): Promise<WatchCursor | null> {
  const { rows } = await tx.query<WatchCursor>(
    `select flow_id as "flowId", deployment_id as "deploymentId", cursor, imported_count as "importedCount"
       from flowwarden.prefect_watch_cursors where flow_id = $1
        for update skip locked`,
    [flowId],
  );
  return rows[0] ?? null;
}

export async function advanceWatchCursor(tx: Queryable, flowId: string, input: { cursor: Date; deploymentId: string; imported: number }): Promise<void> {
  await tx.query(
    `update flowwarden.prefect_watch_cursors
        set cursor = greatest(cursor, $2), deployment_id = $3, imported_count = imported_count + $4,
            last_pass_at = now(), updated_at = now()
      where flow_id = $1`,
    [flowId, input.cursor, input.deploymentId, input.imported],
  );
}

export interface WatchedRunRef {
  id: string;
  flowId: string;
  externalId: string;
  stateType: StateType;
  stateName: string;
}

/** Our runs mirroring the given Prefect flow runs, locked for update (idempotency keys 'prefect:<id>'). */
export async function lockWatchedRuns(tx: Queryable, flowRunIds: string[]): Promise<Map<string, string>> {
  if (flowRunIds.length === 0) return new Map();
  const { rows } = await tx.query<{ id: string; externalId: string }>(
    `select id, external_id as "externalId" from flowwarden.runs
      where idempotency_key = any($1::text[]) order by id for update`,
    [flowRunIds.map(watchKey)],
  );
  return new Map(rows.map((r) => [r.externalId, r.id]));
}

export function watchKey(flowRunId: string): string {
  return `prefect:${flowRunId}`;
}



/**
 * Watched runs not finished yet, oldest first: the importer re-reads them from Prefect on every
 * pass. Served by runs_open_idx (state_type in the open states).
 */
export async function listOpenWatchedRuns(db: Queryable, limit: number): Promise<WatchedRunRef[]> {
  const { rows } = await db.query<WatchedRunRef>(
    `select id, flow_id as "flowId", external_id as "externalId", state_type as "stateType", state_name as "stateName"
       from flowwarden.runs
      where state_type in ('SCHEDULED', 'PENDING', 'RUNNING') and origin = 'watch' and external_id is not null
      order by scheduled_for, id limit $1`,
    [limit],
  );
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Schedule holds (guard)

export async function recordScheduleHold(db: Queryable, flowId: string, deploymentId: string, scheduleId: string): Promise<void> {
  await db.query(
    `insert into flowwarden.prefect_schedule_holds (flow_id, deployment_id, schedule_id) values ($1, $2, $3)
     on conflict (flow_id, schedule_id) do nothing`,
    [flowId, deploymentId, scheduleId],
  );
}

export async function listScheduleHolds(db: Queryable, flowId: string): Promise<Array<{ deploymentId: string; scheduleId: string }>> {
  const { rows } = await db.query<{ deploymentId: string; scheduleId: string }>(
    `select deployment_id as "deploymentId", schedule_id as "scheduleId" from flowwarden.prefect_schedule_holds
      where flow_id = $1 order by id`,
    [flowId],
  );
  return rows;
}

export async function releaseScheduleHold(db: Queryable, flowId: string, scheduleId: string): Promise<void> {
  await db.query(`delete from flowwarden.prefect_schedule_holds where flow_id = $1 and schedule_id = $2`, [flowId, scheduleId]);
}
