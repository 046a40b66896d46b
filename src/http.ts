/**
 * The one outbound HTTP client. Retries are the queue's job (pg-boss retry with backoff), so ky's
 * own retry is off; every call has a timeout and should pass the job's abort signal.
 */
import ky, { type KyInstance } from 'ky';

export interface HttpOptions {
  timeoutMs?: number;
  userAgent?: string;
}

export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;

export function createHttp(options: HttpOptions = {}): KyInstance {
  return ky.create({
    timeout: options.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS,
    retry: 0,
    throwHttpErrors: false,
    headers: { 'user-agent': options.userAgent ?? 'flowwarden/0.1' },
  });
}

/**
 * The error fetch itself raised. ky 2 wraps network failures (refused, reset, DNS) in a NetworkError
 * whose message quotes the request URL (a webhook URL is a secret) and whose `cause` is fetch's
 * TypeError('fetch failed', { cause: { code } }); report from that instead.
 */
export function transportCause(err: unknown): unknown {
  if (err instanceof Error && err.name === 'NetworkError' && err.cause !== undefined) return err.cause;
  return err;
}

/** Parse a Retry-After header (seconds or HTTP date) into milliseconds; undefined if absent/invalid. */
export function parseRetryAfter(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds * 1000));
  const date = Date.parse(value);
  if (Number.isFinite(date)) return Math.max(0, date - nowMs);
  return undefined;
}
