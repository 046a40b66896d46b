/**
 * Error classification used across workers, targets and the CLI.
 *
 * - `PermanentError`: retrying cannot help (bad input, a 4xx from a peer, a validation failure).
 *   Workers fail the run/job at once.
 * - `RateLimitedError`: the peer asked us to wait (HTTP 429). Carries the wait in milliseconds.
 * - anything else is treated as transient: the worker rethrows and pg-boss retries with backoff.
 *
 * `UserInputError` is a PermanentError meant for humans (CLI, API): its message says what was
 * wrong, where, and how to fix it. `details` lists every problem when there are several.
 * `NotFoundError` and `ConflictError` are UserInputErrors the API maps to 404 and 409.
 */
export class PermanentError extends Error {
  override name = 'PermanentError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class UserInputError extends PermanentError {
  override name = 'UserInputError';
  readonly details: string[];
  constructor(message: string, details: string[] = []) {
    super(message);
    this.details = details;
  }
}

export class NotFoundError extends UserInputError {
  override name = 'NotFoundError';
}

/**
 * The request is valid but conflicts with the current state (reactivating a flow that is not
 * disabled; an idempotency key another flow's run already holds). The API answers 409.
 */
export class ConflictError extends UserInputError {
  override name = 'ConflictError';
}

export class RateLimitedError extends Error {
  override name = 'RateLimitedError';
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Send options of a job re-sent for when a long Retry-After ends: it starts then and keeps the
 * retries the 429'd job had left, so the wait uses none (dispatch's deferForRateLimit, the poll worker).
 */
export function resendAfterRateLimit(job: { retryCount: number; retryLimit: number }, err: RateLimitedError): { startAfter: number; retryLimit: number } {
  return { startAfter: Math.ceil(err.retryAfterMs / 1000), retryLimit: Math.max(0, job.retryLimit - job.retryCount) };
}

export function isPermanent(err: unknown): err is PermanentError {
  return err instanceof PermanentError;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
