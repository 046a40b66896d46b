/**
 * Rate limits from Prefect (Cloud answers 429 with Retry-After when a workspace's request budget is
 * spent). A short wait is honoured inside the job: sleep exactly as long as Prefect asked, then try
 * again. A long one is rethrown instead of pinning a worker slot: the dispatch and poll workers
 * re-send their job with startAfter = Retry-After, using no retry (src/dispatch/settle.ts
 * deferForRateLimit, src/workers/poll.ts), and the watch loop tries again on its next pass.
 * 5xx, timeouts and resets are not retried here: they are plain errors the queue retries with
 * exponential backoff (dispatch and poll queue options), and the watch loop's next pass resumes
 * from its cursor.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RateLimitedError } from '../errors.ts';
import type { Logger } from '../log.ts';

/** Longest Retry-After waited out inside a job; longer ones re-send the job for later. */
export const DEFAULT_MAX_INLINE_WAIT_MS = 10_000;
/** Attempts per call (the first one included) while Prefect keeps answering 429. */
export const DEFAULT_RATE_LIMIT_ATTEMPTS = 4;

export interface RateLimitOptions {
  signal?: AbortSignal;
  maxInlineWaitMs?: number;
  maxAttempts?: number;
  log?: Logger;
  what?: string;
}

export async function withRateLimit<T>(fn: () => Promise<T>, options: RateLimitOptions = {}): Promise<T> {
  const maxWait = options.maxInlineWaitMs ?? DEFAULT_MAX_INLINE_WAIT_MS;
  const maxAttempts = options.maxAttempts ?? DEFAULT_RATE_LIMIT_ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof RateLimitedError) || err.retryAfterMs > maxWait || attempt >= maxAttempts) throw err;
      options.log?.info(
        { waitMs: err.retryAfterMs, attempt, call: options.what },
        'Prefect rate limited (429): waiting as Retry-After asks, then retrying',
      );
      await sleep(err.retryAfterMs, undefined, options.signal ? { signal: options.signal } : {});
    }
  }
}
