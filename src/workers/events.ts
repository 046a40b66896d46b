/**
 * events — fan every published event into notification_events, one row per subscribed channel,
 * and send each channel's debounced notify job. Exactly once: the job is completed in the same
 * transaction as the inserts. With no channel configured, events go to the console sink (logged at
 * warn). Details: docs/internals.md, "Notifications".
 */
import type { JobWithMetadata } from 'pg-boss';
import { QUEUES } from '../queue/catalog.ts';
import { EventsJobPayload, type EventPayload } from '../queue/payloads.ts';
import type { WorkerDefinition, WorkerDeps } from './types.ts';
import { bossDb, withTransaction, type Queryable } from '../db/client.ts';
import type { Logger } from '../log.ts';
import { countChannels, insertEvent, matchingChannels } from '../queries/notifications.ts';
import { enqueueNotify } from '../notify/operations.ts';
import { eventText } from '../notify/render.ts';


export type FanInResult = { kind: 'channels'; channels: string[] } | { kind: 'console' } | { kind: 'duplicate' };

/**
 * Insert the event for every matching channel and enqueue their notify jobs, in `tx`. When `job`
 * is given, it is completed in the same transaction first (see the module comment).
 */
export async function fanIn(
  deps: Pick<WorkerDeps, 'boss'>,
  tx: Queryable,
  payload: EventPayload,
  log: Logger,
  job?: { id: string; retryCount: number },
): Promise<FanInResult> {
  if (job) {
    const done = await deps.boss.complete(QUEUES.events, { id: job.id, retryCount: job.retryCount }, null, { db: bossDb(tx) });
    // pg-boss types CommandResponse as {}; at runtime it carries `affected` (rows settled).
    if ((done as { affected?: number }).affected === 0) return { kind: 'duplicate' };
  }
  const text = eventText(payload);
  const channels = await matchingChannels(tx, payload.event, payload.flowName);
  if (channels.length === 0) {
    if ((await countChannels(tx)) === 0) {
      log.warn({ event: payload.event, flow: payload.flowName, runId: payload.runId }, `notification (no channel configured): ${text}`);
      return { kind: 'console' };
    }
    return { kind: 'channels', channels: [] };
  }
  for (const channel of channels) {
    await insertEvent(tx, { channelId: channel.id, event: payload.event, flowName: payload.flowName, text });
    await enqueueNotify(deps.boss, tx, channel.id);
  }
  return { kind: 'channels', channels: channels.map((c) => c.name) };
}

async function handle(deps: WorkerDeps, job: JobWithMetadata<EventsJobPayload>, log: Logger): Promise<void> {
  const events = 'batch' in job.data ? job.data.batch : [job.data];
  const results = await withTransaction(deps.pool, async (tx) => {
    // The job is settled once, with the first event; the rest of a batch rides in the same transaction.
    const first = await fanIn(deps, tx, events[0]!, log, job);
    if (first.kind === 'duplicate') return [first];
    const rest: FanInResult[] = [];
    for (const e of events.slice(1)) rest.push(await fanIn(deps, tx, e, log));
    return [first, ...rest];
  });
  if (results[0]!.kind === 'duplicate') log.debug('event already fanned in by an earlier attempt');
  else log.debug({ events: events.length }, 'events fanned in');
}

export const eventsWorker: WorkerDefinition<typeof EventsJobPayload> = {
  queue: QUEUES.events,
  // Batches: a late sweep publishes hundreds of events at once, and they should all be fanned in
  // within one debounce window so they become one digest. Each job settles in its own transaction,
  // so a failure in a batch only retries the jobs not yet fanned in.
  workOptions: (config) => ({
    includeMetadata: true,
    localConcurrency: Math.min(config.concurrency, 4),
    batchSize: 20,
    burstWhenBatchFull: true,
    pollingIntervalSeconds: 0.5,
    notifyPollingIntervalSeconds: 0.5,
  }),
  payload: EventsJobPayload,
  handle,
};
