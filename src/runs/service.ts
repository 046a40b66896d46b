/**
 * Applying a run transition together with its consequences, in one transaction:
 * the state change and history row, the events other workers subscribe to (run.completed,
 * run.failed), and the debounced health evaluation of the flow on failure — a FAILED/CRASHED run,
 * or a failed task result recorded by any transition (the critical-task rule holds whatever the
 * run's own state, e.g. a COMPLETED run whose critical task failed).
 */
import type { PgBoss } from 'pg-boss';
import type { Queryable } from '../db/client.ts';
import { bossDb } from '../db/client.ts';
import { runInsertTasks, runTransition, runTransitionById, runTransitionMany } from './store.ts';
import { type RunRow, type TaskInput, type TransitionInput, type TransitionResult } from '../types.ts';
import { BOSS_SCHEMA, EVENTS, type EventPayload, type EventName } from '../queue/catalog.ts';
import { FAILURE_TYPES } from './states.ts';
import { type StateType } from '../types.ts';
import { countTransitions } from './observe.ts';

/** What made a transition a failure for the guard: the run itself, or only a task result in it. */
import type { FailureCause } from '../queue/payloads.ts';
export type { FailureCause };

/**
 * The guard's failure trigger, called inside the failing transition's transaction once per run;
 * `boss` is the caller's (send with `db: bossDb(tx)`). `cause` is `run.failed` when the run became
 * FAILED/CRASHED, else `task.failed` (the transition recorded a FAILED/CRASHED task result).
 */
export type FailureHook = (tx: Queryable, run: RunRow, boss: PgBoss, cause: FailureCause) => Promise<void>;

/**
 * What the consequences of a transition need: pg-boss (events) and the guard's failure hook. Built
 * in createApp (deps.transitions) and by the producer client; the core has no guard dependency.
 */
export interface TransitionDeps {
  boss: PgBoss;
  onFailure?: FailureHook;
}

export async function publishEvent(boss: PgBoss, tx: Queryable, payload: EventPayload): Promise<void> {
  await boss.publish(payload.event, payload, { db: bossDb(tx) });
}

/**
 * Publish many events in the caller's transaction with one insert per subscribed queue (instead
 * of one insert per event and queue, as `publish` does): the late sweep marks runs in batches of
 * hundreds. Subscribers are read from pg-boss's subscription table, as `publish` itself does.
 */
export async function publishEvents(boss: PgBoss, tx: Queryable, payloads: EventPayload[]): Promise<void> {
  const byEvent = new Map<EventName, EventPayload[]>();
  for (const p of payloads) byEvent.set(p.event, [...(byEvent.get(p.event) ?? []), p]);
  for (const [event, list] of byEvent) {
    const { rows } = await tx.query<{ name: string }>(`select name from ${BOSS_SCHEMA}.subscription where event = $1`, [event]);
    // A burst (e.g. a late sweep) goes out as batch jobs of up to 500 events, not a job per event.
    const jobs: object[] = [];
    for (let i = 0; i < list.length; i += 500) {
      const slice = list.slice(i, i + 500);
      jobs.push(slice.length === 1 ? (slice[0] as unknown as object) : { batch: slice });
    }
    for (const { name } of rows) {
      await boss.insert(name, jobs.map((data) => ({ data })), { db: bossDb(tx) });
    }
  }
}

/**
 * run.completed fires on every successful run; fanning it out costs a job per run, so it is only
 * published while some channel actually listens for it (checked at most every 5 s per process).
 */
let completedWanted: { value: boolean; until: number } = { value: false, until: 0 };
export async function completedIsWanted(tx: Queryable): Promise<boolean> {
  if (Date.now() < completedWanted.until) return completedWanted.value;
  const { rows } = await tx.query<{ wanted: boolean }>(
    `select exists (select 1 from flowwarden.notification_channels
                     where enabled and (events = '{}' or 'run.completed' = any(events))) as wanted`,
  );
  completedWanted = { value: rows[0]?.wanted ?? false, until: Date.now() + 5000 };
  return completedWanted.value;
}

function eventFor(run: RunRow): EventName | null {
  if (run.stateType === 'COMPLETED') return EVENTS.runCompleted;
  if (FAILURE_TYPES.has(run.stateType)) return EVENTS.runFailed;
  return null;
}

function eventPayload(event: EventName, run: RunRow): EventPayload {
  return {
    event,
    flowId: run.flowId,
    flowName: run.flowName,
    runId: run.id,
    message: run.stateMessage ?? undefined,
    at: run.updatedAt.toISOString(),
    details: { stateType: run.stateType, stateName: run.stateName, scheduledFor: run.scheduledFor.toISOString() },
  };
}

/** Why a transition counts as a failure for the guard, if it does. */
function failureCause(run: RunRow, input: Pick<TransitionInput, 'tasks'>): FailureCause | null {
  if (FAILURE_TYPES.has(run.stateType)) return 'run.failed';
  if (input.tasks?.some((t) => FAILURE_TYPES.has(t.stateType))) return 'task.failed';
  return null;
}

/**
 * The consequences of applied transitions: events (one insert per subscriber), failure hooks,
 * metrics (after commit). `inputs[i]` is the input that produced `results[i]`.
 */
async function afterAll(fx: TransitionDeps, tx: Queryable, results: TransitionResult[], inputs: Array<Pick<TransitionInput, 'tasks' | 'via'>>): Promise<void> {
  const counts = new Map<StateType, number>();
  const count = (type: StateType) => counts.set(type, (counts.get(type) ?? 0) + 1);
  for (const [i, { run }] of results.entries()) {
    const via = inputs[i]?.via;
    if (via) count(via.to);
    count(run.stateType);
  }
  for (const [type, n] of counts) countTransitions(tx, type, n);
  const publishCompleted = results.some((r) => r.run.stateType === 'COMPLETED') && (await completedIsWanted(tx));
  const events: EventPayload[] = [];
  for (const { run } of results) {
    const event = eventFor(run);
    if (event && (event !== EVENTS.runCompleted || publishCompleted)) events.push(eventPayload(event, run));
  }
  if (events.length) await publishEvents(fx.boss, tx, events);
  for (const [i, { run }] of results.entries()) {
    const cause = failureCause(run, inputs[i] ?? {});
    if (cause) await fx.onFailure?.(tx, run, fx.boss, cause);
  }
}

async function after(fx: TransitionDeps, tx: Queryable, result: TransitionResult, input: Pick<TransitionInput, 'tasks' | 'via'>): Promise<TransitionResult> {
  await afterAll(fx, tx, [result], [input]);
  return result;
}

/** Lock, validate, write, publish. `tx` must be a transaction. */
export async function applyTransition(fx: TransitionDeps, tx: Queryable, input: TransitionInput): Promise<TransitionResult> {
  return after(fx, tx, await runTransitionById(tx, input), input);
}

export async function applyLockedTransition(fx: TransitionDeps, tx: Queryable, run: RunRow, input: Omit<TransitionInput, 'runId'>): Promise<TransitionResult> {
  return after(fx, tx, await runTransition(tx, run, { ...input, runId: run.id }), input);
}

/** Many transitions of locked runs in one go: set-based writes, one event insert per subscriber. */
export async function applyLockedTransitions(
  fx: TransitionDeps,
  tx: Queryable,
  items: Array<{ current: RunRow; input: Omit<TransitionInput, 'runId'> }>,
): Promise<TransitionResult[]> {
  const results = await runTransitionMany(tx, items);
  await afterAll(fx, tx, results, items.map((i) => i.input));
  return results;
}

/**
 * Task results that arrive after the run finished (Prefect 3 records task runs asynchronously from
 * events, so they can appear after the flow run is terminal; or the first read failed). Stores them
 * and, when one failed, asks the guard for a health check as a failing transition would.
 */
export async function recordLateTaskResults(fx: TransitionDeps, tx: Queryable, run: RunRow, tasks: TaskInput[]): Promise<void> {
  if (tasks.length === 0) return;
  await runInsertTasks(tx, run.id, tasks);
  if (tasks.some((t) => FAILURE_TYPES.has(t.stateType))) await fx.onFailure?.(tx, run, fx.boss, 'task.failed');
}
