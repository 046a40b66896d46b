/**
 * notify — post a channel's notifications. Payload `{ channelId }`, debounced per channel. Under a
 * per-channel lock: resume undelivered messages, take and render pending events into chunked
 * messages, deliver them; repeat while events keep arriving. A long 429 re-queues the job without
 * spending an attempt. Details: docs/internals.md, "Notifications".
 */
import type { JobWithMetadata, PgBoss } from 'pg-boss';
import type pg from 'pg';
import { QUEUES, sendJob } from '../queue/catalog.ts';
import { NotifyPayload } from '../queue/payloads.ts';
import type { WorkerDefinition, WorkerDeps } from './types.ts';
import { bossDb, withTransaction, type Queryable } from '../db/client.ts';
import { registerSecrets, type Logger } from '../log.ts';
import { channelLimit } from '../notify/channels.ts';
import { chunkMessage } from '../notify/chunk.ts';
import { renderMessages } from '../notify/render.ts';
import { deliverMessage, type DeliverContext } from '../notify/deliver.ts';
import { enqueueNotify } from '../notify/operations.ts';
import {
  channelHasPendingEvents,
  getChannelById,
  insertMessage,
  pendingMessages,
  takePendingEvents,
  type ChannelRow,
} from '../queries/notifications.ts';


/** First key of the two-int advisory lock: "notify" locks never collide with other lock users. */
export const NOTIFY_LOCK_CLASS = 0x6e6f7466; // 'notf'
/** Events taken per round; rounds per job. More than that waits for the next job. */
export const TAKE_LIMIT = 1000;
export const MAX_ROUNDS = 10;
/** Console channels have no limit of their own; keep log lines readable. */
const CONSOLE_LIMIT = 4000;

export function limitFor(channel: Pick<ChannelRow, 'kind'>): number {
  return channel.kind === 'console' ? CONSOLE_LIMIT : channelLimit(channel.kind);
}

/** Take the channel's pending events and store them as rendered, chunked messages. Returns how many messages. */
export async function foldPendingEvents(tx: Queryable, channel: ChannelRow): Promise<number> {
  const events = await takePendingEvents(tx, channel.id, TAKE_LIMIT);
  if (events.length === 0) return 0;
  const limit = limitFor(channel);
  const messages = renderMessages(channel.name, events);
  for (const m of messages) {
    await insertMessage(tx, { channelId: channel.id, text: m.text, chunks: chunkMessage(m.text, { limit }), eventIds: m.eventIds });
  }
  return messages.length;
}

type PendingOutcome = { status: 'done' | 'gave-up' } | { status: 'deferred'; retryAfterMs: number };

/** Deliver every undelivered message of the channel, in order; stops at one that gave up (last attempt) or was deferred (429). */
async function deliverPending(ctx: DeliverContext, channel: ChannelRow): Promise<PendingOutcome> {
  for (const message of await pendingMessages(ctx.db, channel.id)) {
    const outcome = await deliverMessage(ctx, channel, message);
    if (outcome.status === 'gave-up') return { status: 'gave-up' };
    if (outcome.status === 'deferred') return outcome;
  }
  return { status: 'done' };
}

/**
 * Re-queue the channel's notify job to start once the peer's rate limit is over. A plain job, not
 * the debounced one: its start is the peer's, and a debounced job already queued keeps its own.
 */
export async function deferNotify(boss: PgBoss, db: Queryable, channelId: string, retryAfterMs: number): Promise<string | null> {
  return sendJob(boss, QUEUES.notify, { channelId }, { db: bossDb(db), startAfter: Math.ceil(retryAfterMs / 1000), singletonKey: channelId });
}

interface ChannelLock {
  /** Where the delivery's queries go: the lock's own connection (session lock), or the pool. */
  db: Queryable | pg.Pool;
  release(): Promise<void>;
}

async function tryLockChannel(pool: pg.Pool, channelId: string, transactionPooling: boolean): Promise<ChannelLock | null> {
  const client = await pool.connect();
  try {
    // Behind PgBouncer in transaction mode a session lock would stay on whichever server connection
    // took it: hold a transaction-scoped lock in an open transaction instead (it pins one server
    // connection for the delivery, and ends with the transaction or a dead pod's connection). The
    // delivery's own transactions then run on other pool connections.
    if (transactionPooling) await client.query('BEGIN');
    const lockFn = transactionPooling ? 'pg_try_advisory_xact_lock' : 'pg_try_advisory_lock';
    const { rows } = await client.query<{ ok: boolean }>(`select ${lockFn}($1, hashtext($2)) as ok`, [NOTIFY_LOCK_CLASS, channelId]);
    if (!rows[0]?.ok) {
      if (transactionPooling) await client.query('ROLLBACK');
      client.release();
      return null;
    }
  } catch (err) {
    client.release(err as Error);
    throw err;
  }
  return {
    db: transactionPooling ? pool : client,
    async release() {
      try {
        if (transactionPooling) await client.query('COMMIT');
        else await client.query(`select pg_advisory_unlock($1, hashtext($2))`, [NOTIFY_LOCK_CLASS, channelId]);
        client.release();
      } catch (err) {
        // Destroy the connection: closing it drops the lock.
        client.release(err as Error);
      }
    },
  };
}

export async function handleNotify(deps: WorkerDeps, job: Pick<JobWithMetadata<{ channelId: string }>, 'data' | 'retryCount' | 'retryLimit' | 'signal'>, log: Logger): Promise<void> {
  const { channelId } = job.data;
  const lock = await tryLockChannel(deps.pool, channelId, deps.config.poolMode === 'transaction');
  if (!lock) {
    log.debug('another worker is posting to this channel; re-queued');
    await enqueueNotify(deps.boss, deps.pool, channelId);
    return;
  }
  try {
    const db = lock.db;
    const channel = await getChannelById(db, channelId);
    if (!channel || !channel.enabled) {
      log.debug('channel deleted or disabled; nothing to post');
      return;
    }
    // A URL added with `channels add` or the API lives only in the database: redact it by value too.
    registerSecrets([channel.url]);
    const ctx: DeliverContext = {
      db,
      http: deps.http,
      log: log.child({ channel: channel.name }),
      signal: job.signal,
      lastAttempt: job.retryCount >= job.retryLimit,
      attempt: job.retryCount,
      metrics: deps.metrics,
    };
    let outcome = await deliverPending(ctx, channel);
    // Rounds stop when the job is aborted (drain deadline): the follow-up job below picks the rest up.
    for (let round = 0; round < MAX_ROUNDS && outcome.status === 'done' && !job.signal.aborted; round++) {
      const made = await withTransaction(db, (tx) => foldPendingEvents(tx, channel));
      if (made === 0) break;
      outcome = await deliverPending(ctx, channel);
    }
    if (outcome.status === 'gave-up') return;
    if (outcome.status === 'deferred') {
      await deferNotify(deps.boss, db, channel.id, outcome.retryAfterMs);
      log.info({ channel: channel.name, retryAfterMs: outcome.retryAfterMs }, 'channel rate limited; notify job re-queued for when the limit is over');
      return;
    }
    // Events that committed while we were posting, or beyond MAX_ROUNDS: make sure a job follows.
    if (await channelHasPendingEvents(db, channel.id)) await enqueueNotify(deps.boss, db, channel.id);
  } finally {
    await lock.release();
  }
}

export const notifyWorker: WorkerDefinition<typeof NotifyPayload> = {
  queue: QUEUES.notify,
  workOptions: (config) => ({
    includeMetadata: true,
    localConcurrency: Math.min(config.concurrency, 4),
    batchSize: 1,
    pollingIntervalSeconds: 0.5,
    notifyPollingIntervalSeconds: 0.5,
  }),
  payload: NotifyPayload,
  handle: handleNotify,
};
