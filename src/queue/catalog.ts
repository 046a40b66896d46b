/**
 * The queue catalog. Queue names and options are stored in the database, so they are declared
 * here, once, with a payload type per queue (schemas in src/queue/payloads.ts). Producers send
 * through `sendJob`/`insertJobs`, which only accept a payload of the queue's type. How a queue is
 * *consumed* (batch size, concurrency, handler) lives with its worker in src/workers/<queue>.ts.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { PgBoss, Queue, SendOptions, JobInsert } from 'pg-boss';
import type { DispatchPayload, EventsJobPayload, HealthPayload, NotifyPayload, PollPayload } from './payloads.ts';
import { DISPATCH_BATCH_MAX } from './payloads.ts';

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

/** Each queue's options (retries, expiry, retention), written by ensureQueues. */
export const QUEUE_OPTIONS: Record<QueueName, Omit<Queue, 'name'>> = {
  'fw.dispatch': {
    retryLimit: 5,
    retryDelay: 2,
    retryBackoff: true,
    retryDelayMax: 300,
    expireInSeconds: 3600,
    // The pool heartbeats in-flight jobs every 10 s; a job of a pod that died (SIGKILL, OOM) goes
    // stale after 30 s and is failed for retry by pg-boss's supervisor, not after the 1 h expiry.
    heartbeatSeconds: 30,
    deleteAfterSeconds: 7 * 86400,
    // The dispatch pool (src/queue/pool.ts) is not a pg-boss worker: it wakes on flowwarden's own
    // channel (DISPATCH_CHANNEL), so pg-boss's pg_notify on every insert would wake nobody. False,
    // not absent: updateQueue keeps a stored value that is left out.
    notify: false,
  },
  'fw.poll': {
    retryLimit: 10,
    retryDelay: 2,
    retryBackoff: true,
    retryDelayMax: 300,
    expireInSeconds: 300,
    deleteAfterSeconds: 86400,
    notify: true,
  },
  'fw.health': {
    retryLimit: 3,
    retryDelay: 2,
    retryBackoff: true,
    retryDelayMax: 60,
    expireInSeconds: 300,
    deleteAfterSeconds: 86400,
    notify: true,
  },
  'fw.notify': {
    // Backoff 2, 4, 8, ... s capped at 5 min: a webhook down for ~20 min before a message gives up.
    retryLimit: 8,
    retryDelay: 2,
    retryBackoff: true,
    retryDelayMax: 300,
    // Long enough for a many-chunk message under in-process 429 waits (each ≤ 60 s, at most 20 per
    // message); longer rate limits re-queue the job instead of waiting.
    expireInSeconds: 1800,
    deleteAfterSeconds: 7 * 86400,
  },
  'fw.events': {
    retryLimit: 5,
    retryDelay: 1,
    retryBackoff: true,
    retryDelayMax: 60,
    expireInSeconds: 300,
    deleteAfterSeconds: 86400,
    notify: true,
  },
};

/**
 * Create (or update) every queue with its options. Idempotent; safe from many pods at once.
 * `jobRetentionSeconds` (FLOWWARDEN_JOB_RETENTION_SECONDS) replaces each queue's deleteAfterSeconds:
 * how long pg-boss keeps a finished job before its maintenance deletes it.
 */
export async function ensureQueues(boss: PgBoss, options: { jobRetentionSeconds?: number } = {}): Promise<void> {
  const existing = new Set((await boss.getQueues()).map((q) => q.name));
  for (const [queue, own] of Object.entries(QUEUE_OPTIONS) as Array<[QueueName, Omit<Queue, 'name'>]>) {
    const queueOptions = options.jobRetentionSeconds === undefined ? own : { ...own, deleteAfterSeconds: options.jobRetentionSeconds };
    if (existing.has(queue)) {
      await boss.updateQueue(queue, queueOptions);
    } else {
      await boss.createQueue(queue, queueOptions).catch(async (err: unknown) => {
        // Another pod created it between our read and our create.
        if (!(await boss.getQueue(queue))) throw err;
      });
    }
  }
}

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
  return boss.send(queue, data, options);
}

export function insertJobs<Q extends QueueName>(
  boss: PgBoss,
  queue: Q,
  jobs: Array<Omit<JobInsert<QueuePayloads[Q]>, 'data'> & { data: QueuePayloads[Q] }>,
  options: SendOptions = {},
): Promise<string[] | null> {
  return boss.insert(queue, jobs, options);
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

type DispatchJob = Omit<JobInsert<DispatchPayload>, 'data'> & { data: DispatchPayload };

/**
 * Give runs about to be inserted their ids and dispatch jobs: runs due at the same instant share a
 * job (up to DISPATCH_BATCH_MAX, in the order given) whose id goes on each run row
 * (dispatch_job_id: the job a run is in can be found from the run); a run alone gets null, its job
 * id being its own.
 */
export function planDispatchJobs<T extends { scheduledFor: Date }>(runs: readonly T[]): Array<T & { id: string; dispatchJobId: string | null }> {
  const byInstant = new Map<number, T[]>();
  for (const r of runs) {
    const at = r.scheduledFor.getTime();
    const same = byInstant.get(at);
    if (same) same.push(r);
    else byInstant.set(at, [r]);
  }
  const planned: Array<T & { id: string; dispatchJobId: string | null }> = [];
  for (const same of byInstant.values()) {
    for (let i = 0; i < same.length; i += DISPATCH_BATCH_MAX) {
      const chunk = same.slice(i, i + DISPATCH_BATCH_MAX);
      const jobId = chunk.length > 1 ? randomUUID() : null;
      for (const r of chunk) planned.push({ ...r, id: randomUUID(), dispatchJobId: jobId });
    }
  }
  return planned;
}

/**
 * The dispatch jobs of the runs an insert created (planned by planDispatchJobs): one per
 * dispatch_job_id with the created runs of it, due at their instant; a run with no job id of its
 * own gets a single-run job whose id is the run id.
 */
export function dispatchJobs(runs: ReadonlyArray<{ id: string; scheduledFor: Date; dispatchJobId: string | null }>): DispatchJob[] {
  const jobs: DispatchJob[] = [];
  const batches = new Map<string, { runIds: string[]; startAfter: Date }>();
  for (const r of runs) {
    if (!r.dispatchJobId) {
      jobs.push({ id: r.id, data: { runId: r.id }, startAfter: r.scheduledFor });
      continue;
    }
    const batch = batches.get(r.dispatchJobId);
    if (batch) batch.runIds.push(r.id);
    else batches.set(r.dispatchJobId, { runIds: [r.id], startAfter: r.scheduledFor });
  }
  for (const [id, b] of batches) jobs.push({ id, data: { runIds: b.runIds }, startAfter: b.startAfter });
  return jobs;
}
