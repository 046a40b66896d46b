/**
 * poll — follow a run executing elsewhere (a Prefect flow run) until it is terminal: one job per
 * poll, `{ runId, polls }`, id from (runId, polls) so a re-sent poll inserts nothing. A long 429
 * re-sends the poll for when Retry-After ends, using no retry and not counting as a poll.
 * The protocol: docs/architecture.md ("Path of a run", step 6).
 */
import type { JobWithMetadata } from 'pg-boss';
import { QUEUES } from '../queue/catalog.ts';
import { sendPoll } from '../runs/poll-jobs.ts';
import { PollPayload as Payload } from '../queue/payloads.ts';
import { singleJobWorkOptions, type WorkerDefinition, type WorkerDeps } from './types.ts';
import type { Logger } from '../log.ts';
import { RateLimitedError, resendAfterRateLimit } from '../errors.ts';


async function handle(deps: WorkerDeps, job: JobWithMetadata<Payload>, log: Logger): Promise<void> {
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
  workOptions: singleJobWorkOptions,
  payload: Payload,
  handle,
};
