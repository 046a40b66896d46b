/**
 * `http` targets: POST a signed JSON run request.
 *
 * Signature: `x-flowwarden-signature: t=<unix seconds>,sha256=<hex HMAC-SHA256 of "<t>.<exact body
 * bytes>">` with the flow's secret (verifySignature rejects requests older than 5 minutes); the body
 * carries the run id (also sent as `idempotency-key`). Results:
 * - sync: 2xx → COMPLETED (an optional JSON body `{ state: 'FAILED', message, tasks }` may report
 *   a failure), 4xx → FAILED at once (permanent), 408/429/5xx/timeouts/resets → retried.
 * - async: 2xx (usually 202) → RUNNING; the endpoint reports the final state via the API later.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { KyInstance } from 'ky';
import { RESERVED_HEADERS, type HttpTargetSpec } from './spec.ts';
import type { RunContext, Target, TargetOutcome } from '../types.ts';
import { PermanentError, RateLimitedError } from '../errors.ts';
import { parseRetryAfter } from '../http.ts';
import type { TaskInput } from '../types.ts';
import { registerSecrets } from '../log.ts';
import { safeUrl, secretUrlParts } from './safe-url.ts';

export const SIGNATURE_HEADER = 'x-flowwarden-signature';

/**
 * `t=<unix seconds>,sha256=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp is signed together with
 * the exact body bytes, so a receiver can reject a captured request replayed later (verifySignature).
 */
export function signBody(body: string, secret: string, nowMs = Date.now()): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},sha256=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

/**
 * For endpoint authors: true when `signature` (the x-flowwarden-signature header) signs `body` (the
 * raw request bytes, before any JSON parsing) with `secret`, and its timestamp is within
 * `toleranceSeconds` (default 300) of `nowMs` — older (or far-future) requests are rejected so a
 * captured request cannot be replayed. Compared in constant time.
 */
export function verifySignature(
  body: string,
  signature: string | undefined,
  secret: string,
  options: { toleranceSeconds?: number; nowMs?: number } = {},
): boolean {
  if (!signature) return false;
  const m = /^t=(\d{1,12}),sha256=([0-9a-f]{64})$/.exec(signature.trim());
  if (!m) return false;
  const t = Number(m[1]);
  const tolerance = options.toleranceSeconds ?? DEFAULT_SIGNATURE_TOLERANCE_SECONDS;
  if (Math.abs((options.nowMs ?? Date.now()) / 1000 - t) > tolerance) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  const given = Buffer.from(m[2]!);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Headers whose values are credentials (redacted from logs by value once a target is loaded). */
const SECRET_HEADER = /auth|token|key|secret|cookie|signature|password|session/i;


export async function runHttpTarget(
  http: KyInstance,
  target: HttpTargetSpec,
  ctx: RunContext,
  defaults: { secret: string | undefined; timeoutMs: number; /** async mode: this run's report token (src/security/keys.ts). */ reportToken?: string },
): Promise<TargetOutcome> {
  const secret = target.secret ?? defaults.secret;
  // Loaded from the database at runtime: redact the URL's secret-bearing parts, the per-flow secret
  // and credential header values (e.g. an authorization header) from every log line by value too.
  registerSecrets([
    ...secretUrlParts(target.url),
    target.secret,
    ...Object.entries(target.headers ?? {}).filter(([name]) => SECRET_HEADER.test(name)).map(([, value]) => value),
  ]);
  if (!secret) {
    throw new PermanentError(
      `flow ${ctx.flow}: http target has no signing secret; set target.secret or FLOWWARDEN_HTTP_SECRET`,
    );
  }
  const body = JSON.stringify({
    runId: ctx.runId,
    flow: ctx.flow,
    scheduledFor: ctx.scheduledFor.toISOString(),
    parameters: ctx.parameters,
    attempt: ctx.attempt,
    mode: target.mode,
    ...(target.mode === 'async' ? { reportToken: defaults.reportToken, reportPath: `/api/runs/${ctx.runId}/state` } : {}),
    sentAt: new Date().toISOString(),
  });
  let res: Response;
  try {
    res = await http.post(target.url, {
      body,
      timeout: target.timeoutMs ?? defaults.timeoutMs,
      signal: ctx.signal,
      headers: {
        // Validated at save time; filtered here too (any letter case) for rows stored before that.
        ...Object.fromEntries(Object.entries(target.headers ?? {}).filter(([name, value]) => !RESERVED_HEADERS.has(name.toLowerCase()) && !/[\r\n\0]/.test(value))),
        'content-type': 'application/json',
        'idempotency-key': ctx.runId,
        [SIGNATURE_HEADER]: signBody(body, secret),
      },
    });
  } catch (err) {
    // Timeouts, resets, DNS: transient, the queue retries with backoff. ky's messages quote the full
    // URL, whose query or path may carry a token: only the scrubbed form goes into logs and run state.
    let detail = (err as Error).message;
    for (const form of [target.url, URL.canParse(target.url) ? new URL(target.url).href : target.url]) detail = detail.split(form).join(safeUrl(target.url));
    // No `cause`: ky's error quotes the URL, which may carry a secret (the scrubbed detail is above).
    // eslint-disable-next-line preserve-caught-error
    throw new Error(`POST ${safeUrl(target.url)} failed: ${(err as Error).name}: ${detail}`);
  }
  const text = await res.text().catch(() => '');
  const where = `POST ${safeUrl(target.url)} → ${res.status}`;
  if (res.status === 429) {
    throw new RateLimitedError(`${where}: rate limited`, parseRetryAfter(res.headers.get('retry-after')) ?? 1000);
  }
  if (res.status === 408 || res.status >= 500) throw new Error(`${where}: ${text.slice(0, 200)}`);
  if (res.status >= 400) throw new PermanentError(`${where}: ${text.slice(0, 500)}`);
  if (res.status < 200 || res.status >= 300) throw new PermanentError(`${where}: unexpected status`);

  let reported: { state?: string; message?: string; tasks?: TaskInput[]; externalId?: string } = {};
  if (text) {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed && typeof parsed === 'object') reported = parsed;
    } catch {
      // A non-JSON 2xx body is fine: the status code is the result.
    }
  }
  if (target.mode === 'async') {
    return { kind: 'running', externalId: reported.externalId, message: reported.message ?? `accepted (${res.status})` };
  }
  if (reported.state === 'FAILED' || reported.state === 'CRASHED') {
    return { kind: 'failed', stateType: reported.state, message: reported.message ?? `${where}: reported ${reported.state}`, tasks: reported.tasks };
  }
  return { kind: 'completed', message: reported.message ?? `${res.status}`, tasks: reported.tasks };
}

/** The `http` Target: signs with the flow's secret (or FLOWWARDEN_HTTP_SECRET); async runs get a report token. */
export function httpTarget(deps: {
  http: KyInstance;
  config: { httpSecret: string | undefined; httpTimeoutMs: number };
  /** Issues the async run's report token (src/security/keys.ts: a key only flowwarden holds). */
  reportToken: (runId: string) => Promise<string>;
}): Target {
  return {
    async dispatch(run, flow, ctx) {
      const target = flow.target as HttpTargetSpec;
      return runHttpTarget(deps.http, target, ctx, {
        secret: deps.config.httpSecret,
        timeoutMs: deps.config.httpTimeoutMs,
        reportToken: target.mode === 'async' ? await deps.reportToken(run.id) : undefined,
      });
    },
  };
}
