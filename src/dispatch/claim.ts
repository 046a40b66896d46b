/**
 * Claiming a run for a dispatch attempt. The rules (docs/architecture.md, "Path of a run"):
 * SCHEDULED → claim; PENDING from an older attempt → reclaim; RUNNING from an older attempt of a
 * function target → CRASHED; anything else is a duplicate delivery. Function runs are recorded
 * RUNNING in the claim's transaction (the handler starts right after it commits).
 */
import type pg from 'pg';
import { withTransaction, type Queryable } from '../db/client.ts';
import type { Logger } from '../log.ts';
import { getRun } from '../runs/read.ts';
import { CLAIMABLE_TYPES, runBusySibling, runClaimMany, runSetAttempt } from '../runs/store.ts';
import { reportTransitions } from '../runs/observe.ts';
import { applyLockedTransition, type TransitionDeps } from '../runs/service.ts';
import type { RunFlow, RunRow } from '../types.ts';

export type Claim =
  | { kind: 'dispatch'; run: RunRow; flow: RunFlow; /** First claim only: claim time - fire time (Postgres clock). */ lagSeconds?: number }
  | { kind: 'skip'; reason: string };

export interface ClaimDeps {
  pool: pg.Pool;
  log: Logger;
  transitions: TransitionDeps;
}

const isFunction = (flow: RunFlow) => flow.target.type === 'function';
const lagOf = (run: RunRow) => (run.updatedAt.getTime() - run.scheduledFor.getTime()) / 1000;

/** The claim of one run, under its row lock (`tx` must be a transaction). */
export async function claimRun(fx: TransitionDeps, tx: Queryable, runId: string, attempt: number): Promise<Claim> {
  const run = await getRun(tx, runId, { forUpdate: true, withFlow: true });
  if (!run?.flow) return { kind: 'skip', reason: 'run no longer exists' };
  const { flow } = run;
  const previous = run.dispatchAttempt ?? -1;
  const dispatchMessage = `dispatch attempt ${attempt + 1}`;

  if (CLAIMABLE_TYPES.includes(run.stateType)) {
    // Overlap `skip` and held flows are applied here, under the schedule row's lock, so two
    // concurrent dispatches of one schedule cannot both see "nothing running".
    if (flow.disabledAt && run.origin === 'schedule') {
      await applyLockedTransition(fx, tx, run, { to: 'CANCELLED', name: 'Skipped', message: `flow is disabled: ${flow.disabledReason ?? 'held by the guard'}` });
      return { kind: 'skip', reason: 'flow disabled' };
    }
    const busy = await runBusySibling(tx, run);
    if (busy) {
      await applyLockedTransition(fx, tx, run, {
        to: 'CANCELLED', name: 'Skipped', message: `previous run ${busy.id} is still ${busy.stateType} (overlap: skip)`,
      });
      return { kind: 'skip', reason: 'overlap' };
    }
    // A function run goes on to RUNNING in the same row version (both moves in its history).
    const { run: claimed } = await applyLockedTransition(fx, tx, run, isFunction(flow)
      ? { to: 'RUNNING', via: { to: 'PENDING', message: dispatchMessage }, dispatchAttempt: attempt }
      : { to: 'PENDING', dispatchAttempt: attempt, message: dispatchMessage });
    return { kind: 'dispatch', run: claimed, flow, lagSeconds: lagOf(claimed) };
  }
  if (run.stateType === 'PENDING' && previous < attempt) {
    // The previous attempt died or failed transiently: reclaim (http/prefect get the run id as idempotency key).
    let claimed: RunRow;
    if (run.stateName === 'AwaitingRetry') {
      const pending = { to: 'PENDING' as const, name: 'Pending', message: dispatchMessage };
      ({ run: claimed } = await applyLockedTransition(fx, tx, run, isFunction(flow)
        ? { to: 'RUNNING', via: pending, dispatchAttempt: attempt }
        : { ...pending, dispatchAttempt: attempt }));
      return { kind: 'dispatch', run: claimed, flow };
    }
    await runSetAttempt(tx, run.id, attempt);
    claimed = { ...run, dispatchAttempt: attempt };
    if (isFunction(flow)) ({ run: claimed } = await applyLockedTransition(fx, tx, claimed, { to: 'RUNNING' }));
    return { kind: 'dispatch', run: claimed, flow };
  }
  if (run.stateType === 'RUNNING' && previous < attempt && isFunction(flow)) {
    // The worker died mid-handler; a drained pod would have put it back to PENDING/AwaitingRetry.
    await applyLockedTransition(fx, tx, run, {
      to: 'CRASHED', message: 'the worker running this handler was lost (pod crash or job expiry); not re-run because function handlers are not idempotent',
    });
    return { kind: 'skip', reason: 'crashed' };
  }
  return { kind: 'skip', reason: `already ${run.stateType}/${run.stateName} (duplicate delivery)` };
}

interface ClaimItem {
  runId: string;
  attempt: number;
  resolve: (c: Claim) => void;
  reject: (err: unknown) => void;
}

/**
 * Group claim: the pool's handlers start together, so their claims are taken together. The plain
 * cases (SCHEDULED, flow not held, overlap not `skip`) are one statement for the batch
 * (runClaimMany); every other case goes through `claimRun`, each in its own transaction.
 * One per app (src/app.ts).
 */
export class ClaimBatcher {
  readonly #deps: ClaimDeps;
  #queue: ClaimItem[] = [];
  #scheduled = false;

  constructor(deps: ClaimDeps) {
    this.#deps = deps;
  }

  claim(runId: string, attempt: number): Promise<Claim> {
    return new Promise<Claim>((resolve, reject) => {
      this.#queue.push({ runId, attempt, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    const all = this.#queue;
    this.#queue = [];
    this.#scheduled = false;
    // One claim per run per batch: duplicates (the same job twice) go through the single path.
    const batch: ClaimItem[] = [];
    const singles: ClaimItem[] = [];
    const seen = new Set<string>();
    for (const i of all) {
      (seen.has(i.runId) ? singles : batch).push(i);
      seen.add(i.runId);
    }
    const { pool } = this.#deps;
    let claimed = new Map<string, RunRow & { flow: RunFlow }>();
    try {
      claimed = new Map((await runClaimMany(pool, batch)).map((r) => [r.id, r]));
    } catch (err) {
      this.#deps.log.warn({ err, runs: batch.length }, 'group claim failed; claiming each run alone');
    }
    let running = 0;
    for (const i of batch) {
      const row = claimed.get(i.runId);
      if (!row) {
        singles.push(i);
        continue;
      }
      const { flow, ...run } = row;
      if (run.stateType === 'RUNNING') running++;
      i.resolve({ kind: 'dispatch', run, flow, lagSeconds: lagOf(run) });
    }
    reportTransitions(pool, 'PENDING', claimed.size);
    reportTransitions(pool, 'RUNNING', running);
    for (const i of singles) {
      try {
        i.resolve(await withTransaction(pool, (tx) => claimRun(this.#deps.transitions, tx, i.runId, i.attempt)));
      } catch (err) {
        i.reject(err);
      }
    }
  }
}
