/**
 * Delivering one stored message, chunk by chunk, in order, resumable from `chunks_delivered`.
 * 429 waits in the job (bounded) or defers the message; a PermanentError fails only this message;
 * anything else is transient and rethrown for pg-boss to retry (the last attempt marks it failed).
 * Design: docs/internals.md ("Notifications: delivering a message"); guarantees for users:
 * docs/notifications.md ("Delivery guarantees").
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { KyInstance } from 'ky';
import type { Queryable } from '../db/client.ts';
import type { Logger } from '../log.ts';
import { errorMessage, PermanentError, RateLimitedError } from '../errors.ts';
import { buildPayload, postChunk, type Channel } from './channels.ts';
import {
  advanceDelivered,
  failMessage,
  markAttempt,
  messageEventName,
  recordMessageError,
  type ChannelRow,
  type MessageRow,
} from '../queries/notifications.ts';

export const MAX_RATE_LIMIT_WAIT_MS = 60_000;
export const MAX_RATE_LIMIT_WAITS = 20;

export interface DeliverContext {
  db: Queryable;
  http: KyInstance;
  log: Logger;
  signal?: AbortSignal;
  /** The job's last attempt: a transient failure fails the message instead of throwing. */
  lastAttempt: boolean;
  attempt: number;
  /** Counters (deliveries, failures) for /metrics. */
  metrics?: { notificationDelivered(kind: string): void; notificationFailed(kind: string, permanent?: boolean): void };
}

export type DeliverOutcome =
  | { status: 'delivered' | 'failed' | 'gave-up' | 'superseded' }
  /** Rate limited for longer than we wait in-process: post again after `retryAfterMs`. */
  | { status: 'deferred'; retryAfterMs: number };

export async function deliverMessage(ctx: DeliverContext, channel: ChannelRow, message: MessageRow): Promise<DeliverOutcome> {
  const log = ctx.log.child({ channel: channel.name, messageId: message.id });
  const total = message.chunksTotal;
  let next = message.chunksDelivered;
  if (next >= total) return { status: 'delivered' };
  await markAttempt(ctx.db, message.id);
  const event = channel.kind === 'webhook' ? await messageEventName(ctx.db, message.id) : undefined;
  let waits = 0;
  if (next > 0) log.info({ resumeAt: next, total }, 'resuming a partly delivered message');

  while (next < total) {
    const chunk = message.chunks[next]!;
    try {
      if (channel.kind === 'console') {
        log.warn({ chunk: `${next + 1}/${total}` }, chunk);
      } else {
        const target: Channel = { kind: channel.kind, url: channel.url ?? '' };
        await postChunk(ctx.http, target, buildPayload(channel.kind, chunk, { index: next, total, event }), { signal: ctx.signal });
      }
    } catch (err) {
      if (err instanceof RateLimitedError && err.retryAfterMs <= MAX_RATE_LIMIT_WAIT_MS && waits < MAX_RATE_LIMIT_WAITS) {
        waits++;
        log.info({ waitMs: err.retryAfterMs, chunk: next, waits }, 'rate limited; waiting as asked');
        await sleep(err.retryAfterMs, undefined, { signal: ctx.signal });
        continue;
      }
      if (err instanceof RateLimitedError) {
        await recordMessageError(ctx.db, message.id, `chunk ${next + 1}/${total}: ${errorMessage(err)}; posting again then`);
        log.info({ waitMs: err.retryAfterMs, chunk: next, total, waits }, 'rate limited for longer than we wait in-process; deferring the channel');
        return { status: 'deferred', retryAfterMs: err.retryAfterMs };
      }
      const reason = errorMessage(err);
      // permanent="true" whenever this attempt gives the message up: a rejection, or the last retry.
      ctx.metrics?.notificationFailed(channel.kind, err instanceof PermanentError || ctx.lastAttempt);
      if (err instanceof PermanentError) {
        await failMessage(ctx.db, message.id, `chunk ${next + 1}/${total}: ${reason}`);
        log.warn({ err: reason, chunk: next, total }, 'message rejected by the channel; not retried');
        return { status: 'failed' };
      }
      if (ctx.lastAttempt) {
        await failMessage(ctx.db, message.id, `gave up after ${ctx.attempt + 1} attempts at chunk ${next + 1}/${total}: ${reason}`);
        log.error({ err: reason, chunk: next, total }, 'message delivery gave up after the last retry');
        return { status: 'gave-up' };
      }
      await recordMessageError(ctx.db, message.id, `chunk ${next + 1}/${total}: ${reason}`).catch(() => {});
      log.info({ err: reason, chunk: next, total }, 'chunk delivery failed; the job retries with backoff');
      throw err;
    }
    if (!(await advanceDelivered(ctx.db, message.id, next + 1))) {
      log.warn({ chunk: next }, 'message progress moved under us (another deliverer); stopping');
      return { status: 'superseded' };
    }
    next++;
  }
  // Counted once per message, by the job that delivered its last chunk (a resumed message too).
  ctx.metrics?.notificationDelivered(channel.kind);
  log.info({ chunks: total }, 'message delivered');
  return { status: 'delivered' };
}
