/**
 * Applying a run transition together with its consequences, in one transaction:
 * the state change and history row, the events other workers subscribe to (run.completed,
 * run.failed), and the debounced health evaluation of the flow on failure.
 */
import type { PgBoss } from 'pg-boss';
import type { Queryable } from '../db/client.ts';
import { bossDb } from '../db/client.ts';
import { transitionLockedRun, transitionRun, type RunRow, type TransitionInput, type TransitionResult } from '../queries/runs.ts';
import { EVENTS, type EventPayload, type EventName } from '../queue/catalog.ts';
import { FAILURE_TYPES } from './states.ts';

/** Hooks the guard installs (health trigger); kept as a seam so the core has no guard dependency. */
export interface TransitionHooks {
  onFailure?: (tx: Queryable, run: RunRow) => Promise<void>;
}

const hooks: TransitionHooks = {};
export function setTransitionHooks(h: TransitionHooks): void {
  Object.assign(hooks, h);
}

export async function publishEvent(boss: PgBoss, tx: Queryable, payload: EventPayload): Promise<void> {
  await boss.publish(payload.event, payload as unknown as object, { db: bossDb(tx) });
}

function eventFor(run: RunRow): EventName | null {
  if (run.stateType === 'COMPLETED') return EVENTS.runCompleted;
  if (FAILURE_TYPES.has(run.stateType)) return EVENTS.runFailed;
  return null;
}

async function after(boss: PgBoss, tx: Queryable, result: TransitionResult): Promise<TransitionResult> {
  const { run } = result;
  const event = eventFor(run);
  if (event) {
    await publishEvent(boss, tx, {
      event,
      flowId: run.flowId,
      flowName: run.flowName,
      runId: run.id,
      message: run.stateMessage ?? undefined,
      at: run.updatedAt.toISOString(),
      details: { stateType: run.stateType, stateName: run.stateName, scheduledFor: run.scheduledFor.toISOString() },
    });
  }
  if (FAILURE_TYPES.has(run.stateType)) await hooks.onFailure?.(tx, run);
  return result;
}

/** Lock, validate, write, publish. `tx` must be a transaction. */
export async function applyTransition(boss: PgBoss, tx: Queryable, input: TransitionInput): Promise<TransitionResult> {
  return after(boss, tx, await transitionRun(tx, input));
}

export async function applyLockedTransition(boss: PgBoss, tx: Queryable, run: RunRow, input: Omit<TransitionInput, 'runId'>): Promise<TransitionResult> {
  return after(boss, tx, await transitionLockedRun(tx, run, { ...input, runId: run.id }));
}
