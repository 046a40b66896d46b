/**
 * poll — follow a run executing elsewhere (a Prefect flow run) until it is terminal.
 *
 * One job per poll: `{ runId, polls }` where `polls` counts the polls already done. The job id is
 * derived from (runId, polls), so re-sending the same poll (a redelivery that already sent its
 * successor, two dispatch attempts racing) inserts nothing; and a run that is already terminal makes
 * any poll a no-op. Each poll either finishes the run or sends the next one with `startAfter`
 * (evaluated by Postgres), in the same transaction as the state it recorded.
 *
 * Rate limits: a 429 whose Retry-After is longer than the connector waits inline (RateLimitedError)
 * does not fail the job — pg-boss's own backoff (2 s doubling) would ignore the wait and burn the
 * retries. The poll is re-sent instead, `startAfter` = Retry-After, as the same poll with `deferred`
 * + 1 (its own job id, so a redelivery re-sends nothing) and the retries this job had left; then
 * this job completes. A deferral neither counts as a poll (maxPolls) nor consumes a retry.
 */
import { z } from 'zod';
import type { JobWithMetadata } from 'pg-boss';
import { QUEUES } from '../queue/catalog.ts';
import { sendPoll } from '../runs/poll-jobs.ts';
import type { WorkerDefinition, WorkerDeps } from './types.ts';
import type { Logger } from '../log.ts';
import { RateLimitedError, resendAfterRateLimit } from '../errors.ts';

const Payload = z.object({
  runId: z.string().uuid(),
  polls: z.number().int().min(0),
  /** How many times this poll was put off for a long 429 Retry-After (0 or absent: never). */
  deferred: z.number().int().min(0).optional(),
});

async function handle(deps: WorkerDeps, job: JobWithMetadata<z.infer<typeof Payload>>, log: Logger): Promise<void> {
  const connector = deps.poller;
  if (!connector) throw new Error('cannot poll: the Prefect connector is not configured in this worker (set PREFECT_API_URL)');
  const { runId, polls } = job.data;
  try {
    const result = await connector.poll(deps, { runId, polls }, { signal: job.signal, log, lastAttempt: job.retryCount >= job.retryLimit });
    log.debug({ result }, 'poll done');
  } catch (err) {
    if (!(err instanceof RateLimitedError) || job.signal.aborted) throw err;
    const deferred = (job.data.deferred ?? 0) + 1;
    const { startAfter, retryLimit } = resendAfterRateLimit(job, err);
    await sendPoll(deps.boss, deps.pool, runId, polls, startAfter, { deferred, retryLimit });
    log.info({ afterSeconds: startAfter, deferred }, 'Prefect rate limited (429): poll re-sent for when Retry-After ends (no retry used)');
  }
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
