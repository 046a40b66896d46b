/**
 * Flow and schedule write operations shared by `apply`, the API and the producer client. Each
 * takes a Queryable already inside a transaction (the caller's own, or one opened for it).
 */
import { dbNow, type Queryable } from '../db/client.ts';
import { getFlowByName, listSchedules, requireFlow, upsertFlowRow, upsertScheduleRow, type FlowRow, type UpsertScheduleResult } from '../queries/flows.ts';
import { GUARD_NOTE_PREFIX } from '../queries/guard.ts';
import { isWatchedTarget } from '../targets/spec.ts';
import { checkParametersSize, parseFlowInput, parseScheduleInput } from './spec.ts';
import { DEFAULTS } from '../config.ts';
import { UserInputError } from '../errors.ts';

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

/** Create or update a flow (`raw`: a FlowInputRaw, validated here) and the schedules it lists (schedules not listed are left alone). */
export async function upsertFlowTx(tx: Queryable, raw: unknown, options: { maxParametersBytes?: number } = {}): Promise<UpsertFlowOutcome> {
  const input = parseFlowInput(raw, `flow${raw && typeof raw === 'object' && 'name' in raw ? ` '${String((raw).name)}'` : ''}`);
  input.schedules.forEach((s, i) =>
    checkParametersSize(s.parameters, options.maxParametersBytes ?? DEFAULTS.maxParametersBytes, `flow '${input.name}' schedules[${i}]`),
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

export async function upsertScheduleTx(tx: Queryable, flowName: string, raw: unknown /* a ScheduleInputRaw, validated here */, options: { maxParametersBytes?: number } = {}): Promise<UpsertScheduleResult> {
  const input = parseScheduleInput(raw, `schedule of flow '${flowName}'`);
  checkParametersSize(input.parameters, options.maxParametersBytes ?? DEFAULTS.maxParametersBytes, `flow '${flowName}' schedule '${input.name}'`);
  const flow = await requireFlow(tx, flowName);
  if (input.enabled) refuseScheduleOnWatchedFlow(flow, input.name);
  return upsertScheduleRow(tx, flow, input, await dbNow(tx));
}
