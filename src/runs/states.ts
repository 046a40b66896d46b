/**
 * The run state machine (see docs/state-machine.md). Types and names follow Prefect's vocabulary
 * so operators need no translation: a state is a (type, name) pair, e.g. (SCHEDULED, Late) or
 * (CANCELLED, Skipped). Every transition is checked here before it is written.
 */
import { UserInputError } from '../errors.ts';

export const STATE_TYPES = ['SCHEDULED', 'PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED'] as const;
export type StateType = (typeof STATE_TYPES)[number];

export const TERMINAL_TYPES: ReadonlySet<StateType> = new Set(['COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED']);
export const FAILURE_TYPES: ReadonlySet<StateType> = new Set(['FAILED', 'CRASHED']);

export const DEFAULT_NAMES: Record<StateType, string> = {
  SCHEDULED: 'Scheduled',
  PENDING: 'Pending',
  RUNNING: 'Running',
  COMPLETED: 'Completed',
  FAILED: 'Failed',
  CRASHED: 'Crashed',
  CANCELLED: 'Cancelled',
};

export interface State {
  type: StateType;
  name: string;
}

/** Which state types may follow which. Same-type moves are only renames (see `checkTransition`). */
const NEXT: Record<StateType, readonly StateType[]> = {
  SCHEDULED: ['SCHEDULED', 'PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED'],
  PENDING: ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED'],
  RUNNING: ['RUNNING', 'COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED'],
  COMPLETED: [],
  FAILED: [],
  CRASHED: [],
  CANCELLED: [],
};

/** Renames allowed within one type: Scheduled → Late, Pending ↔ AwaitingRetry, Running → named sub-states. */
const RENAMES: Partial<Record<StateType, ReadonlyArray<[string, string]>>> = {
  SCHEDULED: [['Scheduled', 'Late']],
  PENDING: [
    ['Pending', 'AwaitingRetry'],
    ['AwaitingRetry', 'AwaitingRetry'],
    ['AwaitingRetry', 'Pending'],
  ],
};

export function isStateType(value: string): value is StateType {
  return (STATE_TYPES as readonly string[]).includes(value);
}

export function isTerminal(type: StateType): boolean {
  return TERMINAL_TYPES.has(type);
}

export class InvalidTransitionError extends UserInputError {
  override name = 'InvalidTransitionError';
}

/**
 * The one move back: a function run interrupted by a pod's drain deadline goes RUNNING →
 * PENDING/AwaitingRetry so its handed-back job runs it again on another pod. Only dispatch asks for
 * it (`requeue`); reports from targets and Prefect never move a run backwards.
 */
export function isRequeue(from: State, to: State): boolean {
  return from.type === 'RUNNING' && to.type === 'PENDING' && to.name === 'AwaitingRetry';
}

export function transitionAllowed(from: State, to: State, options: { requeue?: boolean } = {}): boolean {
  if (options.requeue && isRequeue(from, to)) return true;
  if (!NEXT[from.type].includes(to.type)) return false;
  if (from.type !== to.type) return true;
  if (from.type === 'RUNNING') return from.name !== to.name;
  return (RENAMES[from.type] ?? []).some(([a, b]) => a === from.name && b === to.name);
}

export function checkTransition(runId: string, from: State, to: State, options: { requeue?: boolean } = {}): void {
  if (transitionAllowed(from, to, options)) return;
  const allowed = NEXT[from.type];
  const hint = allowed.length === 0
    ? `${from.type} is terminal: a finished run cannot change state (trigger a new run instead)`
    : `from ${from.type} a run may move to ${allowed.filter((t) => t !== from.type).join(', ')}`;
  throw new InvalidTransitionError(
    `run ${runId}: invalid state transition ${from.type}/${from.name} → ${to.type}/${to.name}; ${hint}`,
  );
}
