/**
 * New runs: inserted SCHEDULED by the tick, a trigger (API, CLI, producer) or the Prefect watch
 * import. The tick and triggers record their creation on the row (implied bit 1, shown by the view
 * flowwarden.run_history); an import writes a history row (through store.ts's HISTORY).
 */
import type { Queryable } from '../db/client.ts';
import { ConflictError } from '../errors.ts';
import { watchKey } from '../queries/prefect.ts';
import { HISTORY } from './store.ts';


export interface NewRun {
  flowId: string;
  scheduleId?: string | null;
  scheduledFor: Date;
  parameters: Record<string, unknown>;
  idempotencyKey?: string | null;
  /** Its creation entry reads 'created (<origin>)' (flowwarden.run_history). */
  origin: 'manual' | 'api';
}

/**
 * Insert a manually triggered run. With an idempotency key, a second insert for the same flow
 * returns the existing run (`created: false`). The key is unique across all runs, so a key another
 * flow's run holds is a ConflictError (returning that run would hand over another flow's run).
 */
export async function runInsertTriggered(tx: Queryable, run: NewRun): Promise<{ id: string; created: boolean }> {
  const { rows } = await tx.query<{ id: string }>(
    `insert into flowwarden.runs (flow_id, schedule_id, scheduled_for, state_type, state_name, parameters, idempotency_key, origin, implied)
     values ($1, $2, $3, 'SCHEDULED', 'Scheduled', $4, $5, $6, 1)
     on conflict (idempotency_key) where idempotency_key is not null do nothing
     returning id`,
    [run.flowId, run.scheduleId ?? null, run.scheduledFor, run.parameters, run.idempotencyKey ?? null, run.origin],
  );
  if (rows[0]) return { id: rows[0].id, created: true };
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

export interface PlannedRun {
  /** Chosen before the insert, so the run's dispatch job is known too (src/queue/catalog.ts planDispatchJobs). */
  id: string;
  flowId: string;
  scheduleId: string;
  scheduledFor: Date;
  parameters: Record<string, unknown>;
  /** A multi-run job's id; null when the job id is the run id. */
  dispatchJobId: string | null;
}

/**
 * Insert the planned runs of the tick (one statement), their creation recorded on the row ('created
 * by schedule' in flowwarden.run_history). The unique index
 * on (schedule_id, scheduled_for) makes a second insert of the same fire a no-op, so only rows this
 * transaction created come back — and only those get dispatch jobs.
 */
export async function runInsertScheduledMany(tx: Queryable, planned: PlannedRun[]): Promise<Array<{ id: string; scheduledFor: Date; dispatchJobId: string | null }>> {
  if (planned.length === 0) return [];
  const { rows } = await tx.query<{ id: string; scheduledFor: Date; dispatchJobId: string | null }>(
    `insert into flowwarden.runs (id, flow_id, schedule_id, scheduled_for, state_type, state_name, parameters, origin, implied, dispatch_job_id)
     select p.id, p.flow_id, p.schedule_id, p.scheduled_for, 'SCHEDULED', 'Scheduled', p.parameters, 'schedule', 1, p.dispatch_job_id
       from unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::jsonb[], $5::uuid[], $6::uuid[])
            as p(flow_id, schedule_id, scheduled_for, parameters, id, dispatch_job_id)
     on conflict (schedule_id, scheduled_for) where schedule_id is not null do nothing
     returning id, scheduled_for as "scheduledFor", dispatch_job_id as "dispatchJobId"`,
    [
      planned.map((p) => p.flowId),
      planned.map((p) => p.scheduleId),
      planned.map((p) => p.scheduledFor),
      planned.map((p) => JSON.stringify(p.parameters)),
      planned.map((p) => p.id),
      planned.map((p) => p.dispatchJobId),
    ],
  );
  return rows;
}

/**
 * Insert the run mirroring a Prefect flow run (idempotency key 'prefect:<id>'), as SCHEDULED; the
 * caller then mirrors Prefect's state through validated transitions. Null when it already exists.
 */
export async function runInsertWatched(
  tx: Queryable,
  input: { flowId: string; flowRunId: string; flowRunName: string; scheduledFor: Date; parameters: Record<string, unknown> },
): Promise<string | null> {
  const { rows } = await tx.query<{ id: string }>(
    `with ins as (
       insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, parameters, idempotency_key, origin, external_id)
       values ($1, $2, 'SCHEDULED', 'Scheduled', $3, $4, 'watch', $5)
       on conflict (idempotency_key) where idempotency_key is not null do nothing
       returning id
     ), h as (
       ${HISTORY} select id, null::text, null::text, 'SCHEDULED', 'Scheduled', $6::text from ins
     )
     select id from ins`,
    [input.flowId, input.scheduledFor, input.parameters, watchKey(input.flowRunId), input.flowRunId,
      `imported from Prefect flow run '${input.flowRunName}' (${input.flowRunId})`],
  );
  return rows[0]?.id ?? null;
}
