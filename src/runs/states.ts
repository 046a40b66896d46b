/**
 * The run state machine (see docs/state-machine.md). Types and names follow Prefect's vocabulary
 * so operators need no translation: a state is a (type, name) pair, e.g. (SCHEDULED, Late) or
 * (CANCELLED, Skipped). Every transition is checked here before it is written.
 */
import { UserInputError } from '../errors.ts';
import { STATE_TYPES, type State, type StateType } from '../types.ts';

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

/**
 * The states a run may come from to enter `to` in one set-based write: other types NEXT allows
 * into `to.type`, and the names RENAMES allows within it. Set-based writers (claim, completion,
 * cancel, late marking) take their WHERE clause from this, restricted to the types they handle
 * (`among`), so the SQL and the machine cannot disagree. Throws if `among` leaves nothing.
 */
export function sourcesOf(to: State, among: readonly StateType[] = STATE_TYPES): { types: StateType[]; names: string[] } {
  const types = STATE_TYPES.filter((t) => t !== to.type && among.includes(t) && NEXT[t].includes(to.type));
  const names = among.includes(to.type) ? (RENAMES[to.type] ?? []).filter(([, b]) => b === to.name).map(([a]) => a) : [];
  if (types.length === 0 && names.length === 0) throw new Error(`no state among ${among.join(', ')} may move to ${to.type}/${to.name}`);
  return { types, names };
}

/**
 * `sourcesOf(to, among)` as a SQL condition on `alias.state_type`/`state_name`, with the values as
 * literals (closed enums, so plans stay as before: the partial index runs_open_idx still matches).
 */
export function sqlFromStates(alias: string, to: State, among?: readonly StateType[]): string {
  const { types, names } = sourcesOf(to, among);
  const lit = (v: string) => `'${v.replace(/'/g, "''")}'`;
  const parts: string[] = [];
  if (types.length) parts.push(types.length === 1 ? `${alias}.state_type = ${lit(types[0]!)}` : `${alias}.state_type in (${types.map(lit).join(', ')})`);
  if (names.length) parts.push(`(${alias}.state_type = ${lit(to.type)} and ${alias}.state_name in (${names.map(lit).join(', ')}))`);
  return parts.length === 1 ? parts[0]! : `(${parts.join(' or ')})`;
}
