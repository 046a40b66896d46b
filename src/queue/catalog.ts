/**
 * The queue catalog. Queue names are stored in the database, so they are constants here, once,
 * with a payload type per queue. Producers send through `sendJob`/`insertJobs`, which only accept a
 * payload of the queue's type. Queue *options* (retries, expiry, policy) live with each worker in
 * src/workers/<queue>.ts.
 */
import { createHash } from 'node:crypto';
import type { PgBoss, SendOptions, JobInsert } from 'pg-boss';

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

export interface QueuePayloads {
  /** attemptOffset: a dispatch re-sent after a long 429 Retry-After continues the attempt count. */
  'fw.dispatch': { runId: string; attemptOffset?: number };
  /** deferred: times this poll was re-sent after a long 429 Retry-After. */
  'fw.poll': { runId: string; polls: number; deferred?: number };
  /** run.failed/task.failed/sweep: evaluate rules (or enforce a held flow); disabled/reactivated: run connector GuardActions for an operator's change. */
  'fw.health': { flowId: string; reason: 'run.failed' | 'task.failed' | 'sweep' | 'disabled' | 'reactivated' };
  /** Deliver a channel's undelivered messages and pending events (src/workers/notify.ts). */
  'fw.notify': { channelId: string };
  'fw.events': EventPayload;
}

/** Events published with pg-boss pub/sub: a new consumer is one `subscribe`. */
export const EVENTS = {
  runCompleted: 'run.completed',
  runFailed: 'run.failed',
  runLate: 'run.late',
  flowDisabled: 'flow.disabled',
  flowReactivated: 'flow.reactivated',
} as const;

export type EventName = (typeof EVENTS)[keyof typeof EVENTS];

export interface EventPayload {
  event: EventName;
  flowId: string;
  flowName: string;
  runId?: string;
  message?: string;
  at: string;
  details?: Record<string, unknown>;
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
