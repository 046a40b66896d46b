/**
 * Group commit for run outcomes. Dispatch handlers finish independently (no batch waits for its
 * slowest job), but the write that records each outcome is the hot path, so outcomes arriving
 * within the same moment are written together: one transaction locks the runs (in id order), and
 * the state changes, history rows, task results and events go out as a few set-based statements.
 * Each caller's promise settles when its own outcome is committed.
 *
 * Failure mode: if a batch fails (a deadlock, a broken connection), every item is retried alone, so
 * one bad item cannot fail the others and each caller sees its own error.
 */
import type pg from 'pg';
import { withTransaction, type Queryable } from '../db/client.ts';
import { runCompleteMany, runSetExternalId } from './store.ts';
import { getRunsForUpdate } from './read.ts';
import { applyLockedTransitions, completedIsWanted, type TransitionDeps } from './service.ts';
import { reportTransitions } from './observe.ts';
import { transitionAllowed, DEFAULT_NAMES, isTerminal } from './states.ts';
import { sendPoll } from './poll-jobs.ts';
import type { RunRow, State, TargetOutcome, TransitionInput } from '../types.ts';
import type { Logger } from '../log.ts';

interface Item {
  runId: string;
  outcome: TargetOutcome;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const MAX_BATCH = 200;

/** What an outcome means for a run in its current state (null: nothing to write). */
export function transitionFor(run: RunRow, outcome: TargetOutcome): Omit<TransitionInput, 'runId'> | null {
  if (outcome.kind === 'completed') return { to: 'COMPLETED', message: outcome.message ?? null, tasks: outcome.tasks };
  if (outcome.kind === 'failed') return { to: outcome.stateType ?? 'FAILED', name: outcome.name, message: outcome.message, tasks: outcome.tasks };
  // Accepted elsewhere: only move forward (an async endpoint may already have reported later).
  if (run.stateType === 'PENDING') return { to: 'RUNNING', name: outcome.name, message: outcome.message ?? null, externalId: outcome.externalId ?? null };
  return null;
}

export class OutcomeWriter {
  readonly #pool: pg.Pool;
  readonly #fx: TransitionDeps;
  readonly #log: Logger;
  #queue: Item[] = [];
  #flushing = false;

  constructor(pool: pg.Pool, fx: TransitionDeps, log: Logger) {
    this.#pool = pool;
    this.#fx = fx;
    this.#log = log;
  }

  record(runId: string, outcome: TargetOutcome): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ runId, outcome, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        setImmediate(() => void this.#flushLoop());
      }
    });
  }

  async #flushLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        // One item per run per batch; a second outcome for the same run waits for the next batch.
        const picked: Item[] = [];
        const seen = new Set<string>();
        const rest: Item[] = [];
        for (const item of this.#queue) {
          if (picked.length < MAX_BATCH && !seen.has(item.runId)) {
            picked.push(item);
            seen.add(item.runId);
          } else rest.push(item);
        }
        this.#queue = rest;
        // What the one-statement path did not record goes through the general, locked path.
        const batch = await this.#completeFast(picked);
        if (batch.length === 0) continue;
        try {
          await withTransaction(this.#pool, (tx) => this.#write(tx, batch));
          for (const i of batch) i.resolve();
        } catch (err) {
          if (batch.length === 1) {
            batch[0]!.reject(err);
            continue;
          }
          for (const i of batch) {
            try {
              await withTransaction(this.#pool, (tx) => this.#write(tx, [i]));
              i.resolve();
            } catch (e) {
              i.reject(e);
            }
          }
        }
      }
    } finally {
      this.#flushing = false;
      if (this.#queue.length > 0) {
        this.#flushing = true;
        setImmediate(() => void this.#flushLoop());
      }
    }
  }

  /**
   * The common case — a run completed, no task results, no channel listening for run.completed —
   * has no consequence beyond the row and its history: one autocommit statement records all of
   * them. Returns the items left for the general path (other outcomes, runs in another state, or
   * all of them if the statement failed).
   */
  async #completeFast(batch: Item[]): Promise<Item[]> {
    const fast = batch.filter((i) => i.outcome.kind === 'completed' && !i.outcome.tasks?.length);
    if (fast.length === 0) return batch;
    let done: Map<string, string>;
    try {
      if (await completedIsWanted(this.#pool)) return batch;
      const rows = await runCompleteMany(this.#pool, fast.map((i) => ({ runId: i.runId, message: i.outcome.message ?? null })));
      done = new Map(rows.map((r) => [r.id, r.flowName]));
    } catch {
      return batch;
    }
    reportTransitions(this.#pool, 'COMPLETED', done.size);
    const rest: Item[] = [];
    for (const item of batch) {
      const flow = done.get(item.runId);
      if (flow === undefined) {
        rest.push(item);
        continue;
      }
      this.#log.info({ runId: item.runId, flow, state: 'COMPLETED', message: item.outcome.message ?? null }, 'run completed');
      item.resolve();
    }
    return rest;
  }

  async #write(tx: Queryable, batch: Item[]): Promise<void> {
    const runs = new Map((await getRunsForUpdate(tx, batch.map((i) => i.runId))).map((r) => [r.id, r]));
    const items: Array<{ current: RunRow; input: Omit<TransitionInput, 'runId'> }> = [];
    for (const { runId, outcome } of batch) {
      const run = runs.get(runId);
      if (!run) continue;
      if (outcome.kind === 'running' && !isTerminal(run.stateType)) await this.#follow(tx, run, outcome);
      const input = transitionFor(run, outcome);
      if (!input) continue;
      const from: State = { type: run.stateType, name: run.stateName };
      const to: State = { type: input.to, name: input.name ?? DEFAULT_NAMES[input.to] };
      if (!transitionAllowed(from, to)) {
        // e.g. an async endpoint reported the final state before the dispatch response arrived.
        this.#log.info({ runId, from, to }, 'outcome not recorded: the run already moved on');
        continue;
      }
      if (outcome.kind !== 'running') {
        const level = outcome.kind === 'completed' ? 'info' : 'warn';
        this.#log[level]({ runId, flow: run.flowName, state: to.type, message: input.message }, `run ${to.type.toLowerCase()}`);
      }
      items.push({ current: run, input });
    }
    await applyLockedTransitions(this.#fx, tx, items);
  }

  /**
   * A run accepted elsewhere: keep its external id when it is already past PENDING (the RUNNING
   * transition records it otherwise), and send the first poll in the same transaction.
   */
  async #follow(tx: Queryable, run: RunRow, outcome: Extract<TargetOutcome, { kind: 'running' }>): Promise<void> {
    if (run.stateType !== 'PENDING' && outcome.externalId && run.externalId !== outcome.externalId) {
      await runSetExternalId(tx, run.id, outcome.externalId);
    }
    if (outcome.poll) await sendPoll(this.#fx.boss, tx, run.id, 0, outcome.poll.afterSeconds);
  }
}
