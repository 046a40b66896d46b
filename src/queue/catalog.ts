/**
 * The queue catalog. Queue names are stored in the database, so they are constants here, once,
 * with a payload type per queue (schemas in src/queue/payloads.ts). Producers send through `sendJob`/`insertJobs`, which only accept a
 * payload of the queue's type. Queue *options* (retries, expiry, policy) live with each worker in
 * src/workers/<queue>.ts.
 */
import { createHash } from 'node:crypto';
import type { PgBoss, SendOptions, JobInsert } from 'pg-boss';
import type { DispatchPayload, EventsJobPayload, HealthPayload, NotifyPayload, PollPayload } from './payloads.ts';

export { EVENTS, type EventName, type EventPayload } from './payloads.ts';

export const BOSS_SCHEMA = 'flowwarden_queue';

export const QUEUES = {
  dispatch: 'fw.dispatch',
  poll: 'fw.poll',
  health: 'fw.health',
  notify: 'fw.notify',
  /** Fan-in of every pg-boss event (subscribed in src/notify/setup.ts) into notification_events. */
  events: 'fw.events',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** The payload of each queue (schemas in src/queue/payloads.ts). */
export interface QueuePayloads {
  'fw.dispatch': DispatchPayload;
  'fw.poll': PollPayload;
  'fw.health': HealthPayload;
  'fw.notify': NotifyPayload;
  'fw.events': EventsJobPayload;
}

export function sendJob<Q extends QueueName>(
  boss: PgBoss,
  queue: Q,
  data: QueuePayloads[Q],
  options: SendOptions = {},
): Promise<string | null> {
  return boss.send(queue, data as object, options);
}

export function insertJobs<Q extends QueueName>(
  boss: PgBoss,
  queue: Q,
  jobs: Array<Omit<JobInsert<QueuePayloads[Q]>, 'data'> & { data: QueuePayloads[Q] }>,
  options: SendOptions = {},
): Promise<string[] | null> {
  return boss.insert(queue, jobs as JobInsert[], options);
}

/**
 * A stable job id (a name-based UUID, version 5 layout over SHA-1) for `key`: the dedup key of a job
 * that must be sent at most once, e.g. 'flowwarden:poll:<run>:<n>'. pg-boss rejects a second
 * insert of the same id, so a redelivered handler that sends it again sends nothing.
 */
export function stableJobId(key: string): string {
  const h = createHash('sha1').update(key).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
