/**
 * Committed run transitions, counted for metrics (flowwarden_run_transitions_total).
 *
 * Runs change state in several places: every validated transition goes through src/runs/service.ts
 * (dispatch claims and outcomes, async API reports, cancels, the Prefect poller), and pausing a
 * schedule or disabling a flow cancels undispatched runs set-based (src/runs/store.ts). Each of
 * these calls `countTransitions` inside its transaction; the counts reach the listener of the pool
 * the transaction ran on once it commits, so a rolled-back transition is never counted and several
 * apps in one process (tests, an embedding service) each count only their own.
 */
import type pg from 'pg';
import { afterCommit, type Queryable } from '../db/client.ts';
import type { StateType } from '../types.ts';

export type TransitionListener = (stateType: StateType, count: number) => void;

const listeners = new WeakMap<object, TransitionListener>();

/** Count the transitions into `stateType` that `tx` commits (reported per pool, after commit). */
export function countTransitions(tx: Queryable, stateType: StateType, count = 1): void {
  if (count <= 0) return;
  afterCommit(tx, (owner) => listeners.get(owner)?.(stateType, count));
}

/** Report committed transitions of transactions opened on `pool` to `listener` (one per pool). */
export function watchTransitions(pool: pg.Pool, listener: TransitionListener): () => void {
  listeners.set(pool, listener);
  return () => {
    if (listeners.get(pool) === listener) listeners.delete(pool);
  };
}

/**
 * Count transitions already committed on `pool` by a single autocommit statement (the dispatch fast
 * paths in src/runs/store.ts): there is no transaction to wait for, so they are reported now.
 */
export function reportTransitions(pool: pg.Pool, stateType: StateType, count = 1): void {
  if (count > 0) listeners.get(pool)?.(stateType, count);
}
