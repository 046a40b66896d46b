/**
 * poll — follow a run executing elsewhere (a Prefect flow run) until it is terminal.
 *
 * One job per poll: `{ runId, polls }` where `polls` counts the polls already done. The job id is
 * derived from (runId, polls), so re-sending the same poll (a redelivery that already sent its
 * successor, two dispatch attempts racing) inserts nothing; and a run that is already terminal makes
 * any poll a no-op. Each poll either finishes the run or sends the next one with `startAfter`
 * (evaluated by Postgres), in the same transaction as the state it recorded.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { PgBoss } from 'pg-boss';
import type { JobWithMetadata } from 'pg-boss';
import { QUEUES, sendJob } from '../queue/catalog.ts';
import { bossDb, type Queryable } from '../db/client.ts';
import type { WorkerDefinition, WorkerDeps } from './types.ts';
import type { Logger } from '../log.ts';
import type { PrefectConnector } from '../prefect/connector.ts';

const Payload = z.object({ runId: z.string().uuid(), polls: z.number().int().min(0) });

/** A stable UUID for (runId, polls): the dedup key of a poll job. */
export function pollJobId(runId: string, polls: number): string {
  const h = createHash('sha1').update(`flowwarden:poll:${runId}:${polls}`).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Enqueue poll number `polls` for a run, `afterSeconds` from Postgres's now, inside `tx`. */
export async function sendPoll(boss: PgBoss, tx: Queryable, runId: string, polls: number, afterSeconds: number): Promise<void> {
  await sendJob(boss, QUEUES.poll, { runId, polls }, {
    id: pollJobId(runId, polls),
    ...(afterSeconds > 0 ? { startAfter: afterSeconds } : {}),
    db: bossDb(tx),
  });
}

async function handle(deps: WorkerDeps, job: JobWithMetadata<z.infer<typeof Payload>>, log: Logger): Promise<void> {
  const connector = deps.extensions.get('prefect') as PrefectConnector | undefined;
  if (!connector) throw new Error('cannot poll: the Prefect connector is not configured in this worker (set PREFECT_API_URL)');
  const result = await connector.poll(deps, job.data, { signal: job.signal, log, lastAttempt: job.retryCount >= job.retryLimit });
  log.debug({ result }, 'poll done');
}

export const pollWorker: WorkerDefinition<typeof Payload> = {
  queue: QUEUES.poll,
  queueOptions: {
    retryLimit: 10,
    retryDelay: 2,
    retryBackoff: true,
    retryDelayMax: 300,
    expireInSeconds: 300,
    deleteAfterSeconds: 86400,
    notify: true,
  },
  workOptions: (config) => ({
    includeMetadata: true,
    localConcurrency: config.concurrency,
    batchSize: 1,
    pollingIntervalSeconds: 0.5,
    notifyPollingIntervalSeconds: 0.5,
  }),
  payload: Payload,
  handle,
};
