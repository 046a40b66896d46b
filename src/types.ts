/**
 * Shared domain types: runs, their states and what targets return. The bottom of the import graph:
 * nothing here imports from the rooms above (runs, dispatch, targets, prefect, api…).
 */
import type { Logger } from './log.ts';
import type { TargetSpec } from './targets/spec.ts';

export const STATE_TYPES = ['SCHEDULED', 'PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED'] as const;
export type StateType = (typeof STATE_TYPES)[number];

/** A run state is a (type, name) pair, e.g. (SCHEDULED, Late) or (CANCELLED, Skipped). */
export interface State {
  type: StateType;
  name: string;
}

export interface RunRow {
  id: string;
  flowId: string;
  flowName: string;
  scheduleId: string | null;
  scheduledFor: Date;
  stateType: StateType;
  stateName: string;
  stateMessage: string | null;
  parameters: Record<string, unknown>;
  idempotencyKey: string | null;
  origin: string;
  dispatchAttempt: number | null;
  externalId: string | null;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
  updatedAt: Date;
}

/** The run's flow as dispatch needs it (id, name, target, health, hold). */
export interface RunFlow {
  id: string;
  name: string;
  target: TargetSpec;
  health: unknown;
  disabledAt: Date | null;
  disabledReason: string | null;
}

export interface TaskInput {
  name: string;
  stateType: StateType;
  message?: string | null;
}

export interface TransitionInput {
  runId: string;
  to: StateType;
  name?: string;
  message?: string | null;
  tasks?: TaskInput[];
  externalId?: string | null;
  dispatchAttempt?: number | null;
  /**
   * A state the run passes through on the way to `to` in the same write (dispatch claims a
   * function run SCHEDULED → PENDING → RUNNING as one row version). Both moves are validated and
   * both are recorded in the history, in order.
   */
  via?: { to: StateType; name?: string; message?: string | null };
  /** Allow the one backward move, RUNNING → PENDING/AwaitingRetry (dispatch's drain hand-back only). */
  requeue?: boolean;
}

export interface TransitionResult {
  run: RunRow;
  from: State;
}

/** What a target says about a run once it has been handed over. Targets never write run state. */
export type TargetOutcome =
  | { kind: 'completed'; message?: string; tasks?: TaskInput[] }
  | { kind: 'failed'; message: string; stateType?: Extract<StateType, 'FAILED' | 'CRASHED'>; name?: string; tasks?: TaskInput[] }
  /**
   * Accepted and running elsewhere: state arrives later (API report or poll). `name` is the RUNNING
   * sub-state to record; `poll` asks for the first poll job `afterSeconds` after the write.
   */
  | { kind: 'running'; externalId?: string; name?: string; message?: string; poll?: { afterSeconds: number } };

export interface RunContext {
  runId: string;
  flow: string;
  scheduledFor: Date;
  parameters: Record<string, unknown>;
  attempt: number;
  signal: AbortSignal;
  log: Logger;
}

export const TARGET_TYPES = ['function', 'http', 'prefect'] as const;
export type TargetType = (typeof TARGET_TYPES)[number];

/**
 * Where a flow's runs execute. Called with a claimed run (PENDING, or RUNNING for function targets)
 * and its flow; returns what happened. Throws PermanentError to fail the run at once,
 * RateLimitedError to defer, anything else to be retried.
 */
export interface Target {
  dispatch(run: RunRow, flow: RunFlow, ctx: RunContext): Promise<TargetOutcome>;
}
