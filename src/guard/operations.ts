/**
 * Disable and reactivate: the guard's writes, shared by the health worker, the CLI, the producer
 * client and the HTTP API. Each `*Tx` function does everything inside the caller's transaction.
 * Connector actions (GuardActions) talk to other systems, so they never run inside it: operator
 * changes enqueue a health job that runs them. Details: docs/internals.md, "Guard".
 */
import { runCancelMany } from '../runs/store.ts';
import type { PgBoss } from 'pg-boss';
import { bossDb, dbNow, type Queryable } from '../db/client.ts';
import {
  clearFlowDisabled,
  closeHold,
  disableFlowSchedules,
  getFlowById,
  guardDisabledScheduleIds,
  insertHold,
  lockFlowByName,
  openHold,
  setFlowDisabled,
  type DisabledFlowRow,
} from '../queries/guard.ts';
import { setScheduleEnabled, type FlowRow } from '../queries/flows.ts';
import { EVENTS, QUEUES, sendJob } from '../queue/catalog.ts';
import { publishEvent } from '../runs/service.ts';
import { ConflictError, NotFoundError, UserInputError, errorMessage } from '../errors.ts';
import type { GuardActionRegistry } from './actions.ts';
import type { Logger } from '../log.ts';
import { cliCommand } from '../util/command.ts';
import type { GuardRule } from '../schema/enums.ts';

export type { GuardRule } from '../schema/enums.ts';

export interface DisableInput {
  reason: string;
  rule: GuardRule;
  evidence?: Record<string, unknown>;
  /** 'guard' for rule-triggered disables, otherwise the operator. */
  by: string;
}

export interface DisableOutcome {
  flow: FlowRow;
  hold: DisabledFlowRow;
  schedulesDisabled: number;
  runsCancelled: number;
}

/**
 * The one operator-facing hint, used in logs, CLI output and event messages: a command that works
 * where flowwarden runs (`npm run flowwarden -- …` in a checkout, `npx flowwarden …` when installed).
 */
export function reactivateHint(flowName: string): string {
  return `reactivate with: ${cliCommand()} flows reactivate ${flowName} --by <you>`;
}

/**
 * Disable a flow whose row the caller holds locked (FOR NO KEY UPDATE) and which has no open hold.
 * Runs are cancelled before schedules are touched (lock order: flow → runs → schedules).
 */
export async function disableLockedFlow(boss: PgBoss, tx: Queryable, flow: FlowRow, input: DisableInput): Promise<DisableOutcome> {
  await setFlowDisabled(tx, flow.id, input.reason);
  const cancelled = await runCancelMany(tx, { flowId: flow.id }, `flow disabled by ${input.by === 'guard' ? 'the guard' : input.by}: ${input.reason}`);
  const schedulesDisabled = await disableFlowSchedules(tx, flow.id, input.reason);
  const hold = await insertHold(tx, {
    flowId: flow.id,
    flowName: flow.name,
    reason: input.reason,
    rule: input.rule,
    evidence: input.evidence ?? {},
    disabledBy: input.by,
  });
  await publishEvent(boss, tx, {
    event: EVENTS.flowDisabled,
    flowId: flow.id,
    flowName: flow.name,
    message: `${input.reason} — ${reactivateHint(flow.name)}`,
    at: hold.disabledAt.toISOString(),
    details: { rule: input.rule, by: input.by, evidence: input.evidence ?? {}, holdId: hold.id, schedulesDisabled, runsCancelled: cancelled.length, enforced: false },
  });
  return { flow: (await getFlowById(tx, flow.id))!, hold, schedulesDisabled, runsCancelled: cancelled.length };
}

function requireText(value: string | undefined, what: string): string {
  const v = value?.trim();
  if (!v) throw new UserInputError(what);
  if (v.length > 1000) throw new UserInputError(`${what.split(' ')[0]}: at most 1000 characters`);
  return v;
}

/** An operator disables a flow by name. Already held → ConflictError naming the open hold. */
export async function disableFlowTx(
  boss: PgBoss,
  tx: Queryable,
  flowName: string,
  options: { reason?: string; by?: string },
): Promise<DisableOutcome> {
  const reason = requireText(options.reason, `disabling flow '${flowName}' needs a reason (CLI: --reason TEXT), recorded in its guard history`);
  const by = options.by?.trim() || 'operator';
  const flow = await lockFlowByName(tx, flowName);
  if (!flow) throw new NotFoundError(`flow '${flowName}' not found: check the name (flowwarden flows list)`);
  const hold = await openHold(tx, flow.name);
  if (hold) {
    throw new ConflictError(
      `flow '${flowName}' is already disabled since ${hold.disabledAt.toISOString()} by ${hold.disabledBy} (${hold.reason}); nothing to do`,
    );
  }
  const out = await disableLockedFlow(boss, tx, flow, { reason, rule: 'manual', by, evidence: {} });
  await sendJob(boss, QUEUES.health, { flowId: flow.id, reason: 'disabled' }, { db: bossDb(tx) });
  return out;
}

/**
 * Retry budget of the `reactivated` health job: its connector actions (switching a Prefect
 * deployment's schedules back on) have no other retry path, so they outlast a Prefect outage of
 * about half an hour (backoff 5 s doubling, at most 5 min apart) instead of the queue's few seconds.
 */
export const REACTIVATED_JOB_RETRY = { retryLimit: 10, retryDelay: 5, retryBackoff: true, retryDelayMax: 300 } as const;

export interface ReactivateOutcome {
  flow: FlowRow;
  /** The closed hold; null when the flow was only marked disabled (e.g. by hand in SQL). */
  hold: DisabledFlowRow | null;
  schedulesEnabled: number;
}

/**
 * An operator reactivates a flow: the schedules the guard switched off are switched on with
 * next_run_at recomputed from now (no catch-up storm for the disabled period), the baseline
 * (valid_since) moves to now so old failures never count again, and the open hold is closed.
 * Not disabled → ConflictError.
 */
export async function reactivateFlowTx(boss: PgBoss, tx: Queryable, flowName: string, options: { by?: string }): Promise<ReactivateOutcome> {
  const by = requireText(options.by, `reactivating flow '${flowName}' needs to say who takes responsibility (CLI: --by WHO), recorded in its guard history`);
  const flow = await lockFlowByName(tx, flowName);
  if (!flow) throw new NotFoundError(`flow '${flowName}' not found: check the name (flowwarden flows list)`);
  const hold = await openHold(tx, flow.name);
  if (!hold && !flow.disabledAt) {
    throw new ConflictError(`flow '${flowName}' is not disabled: nothing to reactivate (see flowwarden flows show ${flowName})`);
  }
  const now = await dbNow(tx);
  const scheduleIds = await guardDisabledScheduleIds(tx, flow.id);
  for (const id of scheduleIds) await setScheduleEnabled(tx, id, true, null, now);
  await clearFlowDisabled(tx, flow.id);
  const closed = hold ? await closeHold(tx, hold.id, by) : null;
  await publishEvent(boss, tx, {
    event: EVENTS.flowReactivated,
    flowId: flow.id,
    flowName: flow.name,
    message: `reactivated by ${by}`,
    at: now.toISOString(),
    details: { by, holdId: closed?.id ?? null, schedulesEnabled: scheduleIds.length, previousReason: hold?.reason ?? flow.disabledReason },
  });
  await sendJob(boss, QUEUES.health, { flowId: flow.id, reason: 'reactivated' }, { ...REACTIVATED_JOB_RETRY, db: bossDb(tx) });
  return { flow: (await getFlowById(tx, flow.id))!, hold: closed, schedulesEnabled: scheduleIds.length };
}

// ---------------------------------------------------------------------------------------------
// Connector actions: outside any transaction. A failed onDisable or enforce is logged, not thrown:
// the enforce pass (GuardActions.enforce) retries it for as long as the flow is held. A failed
// onReactivate throws, so its health job is retried by pg-boss.

export async function runDisableActions(actions: GuardActionRegistry, log: Logger, flow: FlowRow, reason: string): Promise<void> {
  for (const a of actions.actions) {
    if (!a.onDisable) continue;
    try {
      await a.onDisable(flow, reason);
    } catch (err) {
      log.error({ err, action: a.name, flow: flow.name }, `guard action ${a.name}.onDisable failed; the enforce pass will retry`);
    }
  }
}

/**
 * Unlike a failed onDisable (which the enforce pass retries while the flow is held), nothing else
 * would ever retry a failed onReactivate: after trying every action this throws, so the health job
 * fails and pg-boss retries it with backoff (REACTIVATED_JOB_RETRY). onReactivate is idempotent.
 */
export async function runReactivateActions(actions: GuardActionRegistry, log: Logger, flow: FlowRow, by: string): Promise<void> {
  const failed: string[] = [];
  for (const a of actions.actions) {
    if (!a.onReactivate) continue;
    try {
      await a.onReactivate(flow, by);
    } catch (err) {
      failed.push(`${a.name}: ${errorMessage(err)}`);
      log.error({ err, action: a.name, flow: flow.name }, `guard action ${a.name}.onReactivate failed; the job is retried with backoff`);
    }
  }
  if (failed.length) throw new Error(`reactivating flow '${flow.name}' in connectors failed (retried): ${failed.join('; ')}`);
}

/** Returns the names of the actions that had to undo something. */
export async function runEnforceActions(actions: GuardActionRegistry, log: Logger, flow: FlowRow): Promise<string[]> {
  const acted: string[] = [];
  for (const a of actions.actions) {
    if (!a.enforce) continue;
    try {
      if (await a.enforce(flow)) acted.push(a.name);
    } catch (err) {
      log.error({ err, action: a.name, flow: flow.name }, `guard action ${a.name}.enforce failed; will retry on the next pass`);
    }
  }
  return acted;
}
