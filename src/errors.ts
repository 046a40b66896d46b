/**
 * Error classification used across workers, targets and the CLI: `PermanentError` (retrying cannot
 * help: fail at once), `RateLimitedError` (a 429 with its wait), anything else transient (rethrown,
 * pg-boss retries with backoff). `UserInputError` is a PermanentError for humans (what, where, how
 * to fix); the API maps `NotFoundError` / `ConflictError` to 404 / 409.
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
