/**
 * The write operations other services, the CLI and the API share. Each takes pg-boss and a
 * Queryable that is already inside a transaction (the caller's own, or one opened for it), so a
 * run row and its dispatch job are created together or not at all.
 */
import type { PgBoss } from 'pg-boss';
import { bossDb, dbNow, type Queryable } from '../db/client.ts';
import { insertTriggeredRun, getRun, type RunRow, type TaskInput } from './store.ts';
import { getFlowByName, listSchedules, requireFlow, upsertFlowRow, upsertScheduleRow, type FlowRow, type UpsertScheduleResult } from '../queries/flows.ts';
import { GUARD_NOTE_PREFIX } from '../queries/guard.ts';
import { isWatchedTarget } from '../targets/spec.ts';
import { checkParametersSize, parseFlowInput, parseScheduleInput, type FlowInputRaw, type ScheduleInputRaw } from '../flows/spec.ts';
import { QUEUES, sendJob } from '../queue/catalog.ts';
import { applyTransition } from './service.ts';
import { isStateType, type StateType, STATE_TYPES } from './states.ts';
import { UserInputError } from '../errors.ts';
import { DISPATCH_CHANNEL } from '../db/listen.ts';

export const DEFAULT_MAX_PARAMETERS_BYTES = 64 * 1024;

export interface TriggerOptions {
  idempotencyKey?: string;
  /** When the run should start; default now. */
  scheduledFor?: Date;
  origin?: 'manual' | 'api';
  maxParametersBytes?: number;
}

export async function triggerRunTx(
  boss: PgBoss,
  tx: Queryable,
  flowName: string,
  parameters: Record<string, unknown> = {},
  options: TriggerOptions = {},
): Promise<{ runId: string; created: boolean }> {
  if (parameters === null || typeof parameters !== 'object' || Array.isArray(parameters)) {
    throw new UserInputError('parameters must be a JSON object, e.g. {"date": "2026-01-01"}');
  }
  checkParametersSize(parameters, options.maxParametersBytes ?? DEFAULT_MAX_PARAMETERS_BYTES, `trigger of flow '${flowName}'`);
  if (options.idempotencyKey !== undefined && (options.idempotencyKey.length === 0 || options.idempotencyKey.length > 200)) {
    throw new UserInputError('idempotencyKey must be 1 to 200 characters');
  }
  if (options.scheduledFor && Number.isNaN(options.scheduledFor.getTime())) {
    throw new UserInputError('scheduledFor is not a valid date; use ISO 8601, e.g. 2026-11-22T10:00:00Z');
  }
  const flow = await requireFlow(tx, flowName);
  const scheduledFor = options.scheduledFor ?? (await dbNow(tx));
  const { id, created } = await insertTriggeredRun(tx, {
    flowId: flow.id,
    scheduledFor,
    parameters,
    idempotencyKey: options.idempotencyKey ?? null,
    origin: options.origin ?? 'api',
  });
  if (created) {
    await sendJob(boss, QUEUES.dispatch, { runId: id }, { id, startAfter: scheduledFor, db: bossDb(tx) });
    // Wake dispatch pools in every pod when this commits (a latency hint; polling is the floor).
    await tx.query(`select pg_notify($1, '')`, [DISPATCH_CHANNEL]);
  }
  return { runId: id, created };
}

export interface ReportOptions {
  name?: string;
  message?: string;
  tasks?: TaskInput[];
}

export async function reportRunStateTx(
  boss: PgBoss,
  tx: Queryable,
  runId: string,
  state: string,
  options: ReportOptions = {},
): Promise<RunRow> {
  if (!isStateType(state)) {
    throw new UserInputError(`unknown state '${state}': use one of ${STATE_TYPES.join(', ')}`);
  }
  for (const [i, t] of (options.tasks ?? []).entries()) {
    if (!t || typeof t.name !== 'string' || !t.name || !isStateType(String(t.stateType))) {
      throw new UserInputError(`tasks[${i}]: each task needs a name and a stateType (${STATE_TYPES.join(', ')})`);
    }
  }
  const { run } = await applyTransition(boss, tx, {
    runId,
    to: state as StateType,
    name: options.name,
    message: options.message ?? null,
    tasks: options.tasks,
  });
  return run;
}

export interface UpsertFlowOutcome {
  flow: FlowRow;
  created: boolean;
  schedules: UpsertScheduleResult[];
}

/**
 * Refuse to turn on a flowwarden schedule of a watched flow (Prefect schedules it itself, so both
 * would run it). Every path that enables a schedule calls this: upsertSchedule, the API's resume.
 */
export function refuseScheduleOnWatchedFlow(flow: Pick<FlowRow, 'name' | 'target'>, scheduleName: string): void {
  if (!isWatchedTarget(flow.target)) return;
  throw new UserInputError(
    `flow '${flow.name}' is watched (target.watch: true): Prefect schedules it itself, so a flowwarden schedule '${scheduleName}' would run it twice; ` +
      `set watch: false on the flow (flowwarden apply) to have flowwarden schedule and dispatch it instead`,
  );
}

/** Create or update a flow and the schedules it lists (schedules not listed are left alone). */
export async function upsertFlowTx(tx: Queryable, raw: FlowInputRaw | unknown, options: { maxParametersBytes?: number } = {}): Promise<UpsertFlowOutcome> {
  const input = parseFlowInput(raw, `flow${raw && typeof raw === 'object' && 'name' in raw ? ` '${String((raw as { name: unknown }).name)}'` : ''}`);
  input.schedules.forEach((s, i) =>
    checkParametersSize(s.parameters, options.maxParametersBytes ?? DEFAULT_MAX_PARAMETERS_BYTES, `flow '${input.name}' schedules[${i}]`),
  );
  const existing = isWatchedTarget(input.target) ? await getFlowByName(tx, input.name) : null;
  if (existing) {
    // Schedules not listed are left alone: ones the flow already has would keep firing beside
    // Prefect — enabled ones now, guard-held ones once the flow is reactivated.
    const live = (await listSchedules(tx, existing.id)).filter((s) => s.enabled || s.note?.startsWith(GUARD_NOTE_PREFIX));
    if (live.length > 0) {
      throw new UserInputError(
        `flow '${input.name}': cannot set target.watch: true while it has enabled flowwarden schedules (${live.map((s) => s.name).join(', ')}) (counting any the guard holds, which reactivation turns back on): ` +
          `Prefect schedules a watched flow itself, so both would run it; pause them first (upsertSchedule with enabled: false), then set watch: true`,
      );
    }
  }
  const { flow, created } = await upsertFlowRow(tx, input);
  const now = await dbNow(tx);
  const schedules: UpsertScheduleResult[] = [];
  for (const s of input.schedules) schedules.push(await upsertScheduleRow(tx, flow, s, now));
  return { flow, created, schedules };
}

export async function upsertScheduleTx(tx: Queryable, flowName: string, raw: ScheduleInputRaw | unknown, options: { maxParametersBytes?: number } = {}): Promise<UpsertScheduleResult> {
  const input = parseScheduleInput(raw, `schedule of flow '${flowName}'`);
  checkParametersSize(input.parameters, options.maxParametersBytes ?? DEFAULT_MAX_PARAMETERS_BYTES, `flow '${flowName}' schedule '${input.name}'`);
  const flow = await requireFlow(tx, flowName);
  if (input.enabled) refuseScheduleOnWatchedFlow(flow, input.name);
  return upsertScheduleRow(tx, flow, input, await dbNow(tx));
}

export { getRun };
