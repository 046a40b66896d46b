/**
 * Poll jobs: one per poll of a run executing elsewhere, id derived from (runId, polls, deferred) so
 * a redelivered or duplicated poll inserts nothing. Sent by the outcome writer (the first poll) and
 * by the Prefect connector's poll (the next one), in the transaction that recorded the state.
 */
import type { PgBoss } from 'pg-boss';
import { QUEUES, sendJob, stableJobId } from '../queue/catalog.ts';
import { bossDb, type Queryable } from '../db/client.ts';

/** A stable UUID for (runId, polls, deferred): the dedup key of a poll job. */
export function pollJobId(runId: string, polls: number, deferred = 0): string {
  return stableJobId(`flowwarden:poll:${runId}:${polls}${deferred > 0 ? `:deferred:${deferred}` : ''}`);
}

/**
 * Enqueue poll number `polls` for a run, `afterSeconds` from Postgres's now, inside `tx`. A poll
 * re-sent after a long 429 passes `deferred` (its own job id) and the retries it keeps.
 */
export async function sendPoll(
  boss: PgBoss, tx: Queryable, runId: string, polls: number, afterSeconds: number,
  options: { deferred?: number; retryLimit?: number } = {},
): Promise<void> {
  const deferred = options.deferred ?? 0;
  await sendJob(boss, QUEUES.poll, { runId, polls, ...(deferred > 0 ? { deferred } : {}) }, {
    id: pollJobId(runId, polls, deferred),
    ...(afterSeconds > 0 ? { startAfter: afterSeconds } : {}),
    ...(options.retryLimit !== undefined ? { retryLimit: options.retryLimit } : {}),
    db: bossDb(tx),
  });
}
