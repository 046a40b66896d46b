/**
 * The client's transport: URL and credential checks, auth and CSRF headers, and the classification
 * of every response (no retries here: the queue owns them). 429 → RateLimitedError (Retry-After);
 * 5xx, network, timeout → plain Error (transient); 404 → NotFoundError; 422 and other 4xx →
 * PermanentError. The key travels only in the Authorization header; every message is scrubbed of
 * it and ky's errors (which hold the Request) are never attached as `cause`.
 */
import { z } from 'zod';
import { randomUUID } from 'node:crypto';
import { createHttp, DEFAULT_HTTP_TIMEOUT_MS, parseRetryAfter, transportCause } from '../../http.ts';
import { NotFoundError, PermanentError, RateLimitedError, UserInputError } from '../../errors.ts';
import { PREFECT_MAX_LIMIT, PREFECT_PAGE_SIZE_MAX, type PrefectClientOptions } from './types.ts';

/** When a 429 carries no usable Retry-After. */
export const DEFAULT_RATE_LIMIT_WAIT_MS = 5_000;

/** The 422 Prefect answers for a `limit` above its cap; returns the cap. */
export function parseLimitCap(text: string): number | undefined {
  const m = /Invalid limit: must be less than or equal to (\d+)\./.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** The API URL as it may appear in logs and errors: no userinfo, query or fragment. */
export function displayApiUrl(apiUrl: string): string {
  try {
    const url = new URL(apiUrl);
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    return url.toString().replace(/\/+$/, '');
  } catch {
    return '<invalid Prefect API URL>';
  }
}

export interface RequestSpec<T> {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  json?: unknown;
  schema?: z.ZodType<T>;
  /** Message for a 404, when the caller can say more than the route. */
  notFound?: string;
  signal?: AbortSignal;
}

export interface Transport {
  /** The API URL as shown in messages (no userinfo, query or fragment). */
  readonly shownUrl: string;
  /** Current page cap: the configured page size, or the lower cap the server announced. */
  readonly pageLimit: number;
  request<T>(spec: RequestSpec<T>): Promise<{ status: number; data: T }>;
  /** POST a filter; a 422 naming a lower page cap is adopted and the request sent again with it. */
  filter<T>(path: string, body: Record<string, unknown>, schema: z.ZodType<T>, signal: AbortSignal | undefined): Promise<T>;
  /** A checked page: limit clamped to the page cap, offset ≥ 0. */
  page(limit: number, offset: number | undefined): { limit: number; offset: number };
}

export function createTransport(opts: PrefectClientOptions): Transport {
  let parsed: URL;
  try {
    parsed = new URL(opts.apiUrl);
  } catch {
    throw new UserInputError(`Invalid Prefect API URL: expected e.g. http://prefect:4200/api`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UserInputError(`Invalid Prefect API URL: protocol must be http or https`);
  }
  // Never echo the URL here: whatever it carries is probably a secret.
  if (parsed.username || parsed.password) {
    throw new UserInputError('Invalid Prefect API URL: credentials in the URL are not supported; pass the API key separately');
  }
  if (parsed.search || parsed.hash) {
    throw new UserInputError('Invalid Prefect API URL: it must not have a query string or fragment');
  }
  const base = `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
  const shownUrl = displayApiUrl(base);
  const apiKey = opts.apiKey && opts.apiKey !== '' ? opts.apiKey : undefined;
  const authString = opts.authString && opts.authString !== '' ? opts.authString : undefined;
  const basic = authString ? Buffer.from(authString, 'utf8').toString('base64') : undefined;
  const authHeader = basic ? `Basic ${basic}` : apiKey ? `Bearer ${apiKey}` : undefined;
  const authName = authString ? 'PREFECT_API_AUTH_STRING' : apiKey ? 'PREFECT_API_KEY' : undefined;
  let csrfEnabled = opts.csrf ?? true;
  let csrfToken: { token: string; expires: number } | undefined;
  const csrfClient = randomUUID();
  const initialPage = opts.pageSize ?? PREFECT_MAX_LIMIT;
  if (!Number.isInteger(initialPage) || initialPage < 1 || initialPage > PREFECT_PAGE_SIZE_MAX) {
    throw new UserInputError(`Prefect page size must be an integer from 1 to ${PREFECT_PAGE_SIZE_MAX}, got ${initialPage}`);
  }
  let pageCap = initialPage;
  const http = opts.http ?? createHttp(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs });
  const timeoutLabel =
    opts.timeoutMs !== undefined ? `${opts.timeoutMs}ms` : opts.http ? 'the client timeout' : `${DEFAULT_HTTP_TIMEOUT_MS}ms`;

  const secrets = [apiKey, authString, basic].filter((v): v is string => !!v);
  const redact = (text: string): string => secrets.reduce((t, secret) => t.split(secret).join('[redacted]'), text);

  async function send(spec: RequestSpec<unknown>, what: string): Promise<{ status: number; text: string; headers: Headers }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (authHeader) headers.authorization = authHeader;
    if (spec.method !== 'GET' && csrfEnabled) {
      const token = await csrf(spec.signal);
      if (token) {
        headers['prefect-csrf-token'] = token;
        headers['prefect-csrf-client'] = csrfClient;
      }
    }
    let response: Response;
    try {
      response = await http(base + spec.path, {
        method: spec.method,
        headers,
        ...(spec.json === undefined ? {} : { json: spec.json }),
        ...(spec.signal ? { signal: spec.signal } : {}),
        ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
      });
    } catch (err) {
      // The caller's own abort is not a peer failure: hand it back untouched.
      if (spec.signal?.aborted) throw spec.signal.reason ?? err;
      throw transportError(what, err);
    }
    const text = await response.text().catch((err: unknown) => {
      if (spec.signal?.aborted) throw spec.signal.reason ?? err;
      throw transportError(what, err);
    });
    return { status: response.status, text, headers: response.headers };
  }

  /**
   * The CSRF token for state-changing requests (Prefect client/base.py _add_csrf_headers): fetched
   * from GET /csrf-token?client=<this client's id> when missing or expired. A server with CSRF
   * protection off answers 422 "CSRF protection is disabled." (an older one 404): stop asking.
   */
  async function csrf(signal: AbortSignal | undefined): Promise<string | undefined> {
    if (csrfToken && Date.now() < csrfToken.expires) return csrfToken.token;
    const what = 'Prefect GET /csrf-token';
    const res = await send({ method: 'GET', path: `/csrf-token?client=${csrfClient}`, ...(signal ? { signal } : {}) }, what);
    if ((res.status === 422 && res.text.includes('CSRF protection is disabled.')) || res.status === 404) {
      csrfEnabled = false;
      return undefined;
    }
    if (res.status < 200 || res.status >= 300) throwFor(what, res.status, res.text, res.headers, undefined);
    const parsed = z.object({ token: z.string(), expiration: z.string().nullish() }).safeParse(safeJson(res.text));
    if (!parsed.success) throw new PermanentError(`${what} at ${shownUrl}: unexpected response shape`);
    const expires = parsed.data.expiration ? Date.parse(parsed.data.expiration) : NaN;
    csrfToken = { token: parsed.data.token, expires: Number.isFinite(expires) ? expires : Date.now() + 3_600_000 };
    return csrfToken.token;
  }

  async function request<T>(spec: RequestSpec<T>): Promise<{ status: number; data: T }> {
    const what = `Prefect ${spec.method} ${spec.path}`;
    let res = await send(spec, what);
    // An expired or unknown token: fetch a new one and try once more (as Prefect's client does).
    if (res.status === 403 && csrfEnabled && res.text.includes('Invalid CSRF token')) {
      csrfToken = undefined;
      res = await send(spec, what);
    }
    const { status, text } = res;

    if (status >= 200 && status < 300) {
      if (!spec.schema) return { status, data: undefined as T };
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        // A 2xx that is not JSON is usually a proxy or gateway page: treat it as transient.
        throw new Error(redact(`${what} at ${shownUrl}: ${status} response is not JSON`));
      }
      const result = spec.schema.safeParse(body);
      if (!result.success) {
        const issues = result.error.issues
          .slice(0, 5)
          .map((i) => `${i.path.join('.') || '<root>'}: ${i.message}`)
          .join('; ');
        throw new PermanentError(redact(`${what} at ${shownUrl}: unexpected response shape (${issues})`));
      }
      return { status, data: result.data };
    }

    return throwFor(what, status, text, res.headers, spec.notFound);
  }

  function throwFor(what: string, status: number, text: string, headers: Headers, notFound: string | undefined): never {
    const detail = errorDetail(text);
    if (status === 429) {
      const waitMs = parseRetryAfter(headers.get('retry-after')) ?? DEFAULT_RATE_LIMIT_WAIT_MS;
      throw new RateLimitedError(redact(`${what} at ${shownUrl}: rate limited (429), retry after ${waitMs}ms`), waitMs);
    }
    if (status >= 500 || status === 408) {
      throw new Error(redact(`${what} at ${shownUrl}: ${status}${detail ? ` ${detail}` : ''}`));
    }
    if (status === 404) {
      throw new NotFoundError(redact(notFound ?? `${what} at ${shownUrl}: not found (404)${detail ? ` ${detail}` : ''}`));
    }
    if (status === 403 && /CSRF|client identifier/i.test(detail)) {
      throw new PermanentError(
        redact(
          `${what} at ${shownUrl}: 403 ${detail} The server has CSRF protection on (PREFECT_SERVER_CSRF_PROTECTION_ENABLED)` +
            `${csrfEnabled ? '' : ' and CSRF support is off here: unset PREFECT_CLIENT_CSRF_SUPPORT_ENABLED=false'}`,
        ),
      );
    }
    if (status === 401 || status === 403) {
      const fix = authName
        ? `the ${authName} was rejected`
        : 'no credentials were sent: set PREFECT_API_KEY (Prefect Cloud) or PREFECT_API_AUTH_STRING (self-hosted server with PREFECT_SERVER_API_AUTH_STRING)';
      throw new PermanentError(
        redact(`${what} at ${shownUrl}: ${status} ${fix}${detail ? ` (${detail})` : ''}: check the credentials and the API URL`),
      );
    }
    if (status === 409) {
      throw new PermanentError(redact(`${what} at ${shownUrl}: conflict (409)${detail ? `: ${detail}` : ''}`));
    }
    if (status === 422) {
      throw new PermanentError(redact(`${what} at ${shownUrl}: request rejected (422)${detail ? `: ${detail}` : ''}`));
    }
    throw new PermanentError(redact(`${what} at ${shownUrl}: ${status}${detail ? ` ${detail}` : ''}`));
  }

  function transportError(what: string, error: unknown): Error {
    const err = error instanceof Error && error.name === 'TimeoutError' ? error : transportCause(error);
    const name = err instanceof Error ? err.name : 'Error';
    if (name === 'TimeoutError') {
      return new Error(redact(`${what} at ${shownUrl}: timed out after ${timeoutLabel}`));
    }
    // fetch wraps the socket error: TypeError('fetch failed', { cause: { code: 'ECONNRESET' } }).
    const inner = err instanceof Error && err.cause instanceof Error ? err.cause : undefined;
    const code = (inner as { code?: unknown } | undefined)?.code;
    const reason = [err instanceof Error ? err.message : String(err), typeof code === 'string' ? code : inner?.message]
      .filter(Boolean)
      .join(': ');
    // Deliberately no `cause`: ky/undici errors carry the Request, Authorization header included.
    return new Error(redact(`${what} at ${shownUrl}: network error (${reason})`));
  }

  function summarize422(body: Record<string, unknown>): string {
    const items = Array.isArray(body.exception_detail) ? body.exception_detail : [];
    const parts = items.slice(0, 5).map((item: unknown) => {
      const rec = (item ?? {}) as { loc?: unknown; msg?: unknown };
      const loc = Array.isArray(rec.loc) ? rec.loc.filter((p) => p !== 'body').join('.') : '';
      const msg = typeof rec.msg === 'string' ? rec.msg : JSON.stringify(item);
      return loc ? `${loc}: ${msg}` : msg;
    });
    if (items.length > 5) parts.push(`and ${items.length - 5} more`);
    const head = typeof body.exception_message === 'string' ? body.exception_message : 'Invalid request';
    return parts.length ? `${head} ${parts.join('; ')}` : head;
  }

  function errorDetail(text: string): string {
    if (!text) return '';
    try {
      const body = JSON.parse(text) as unknown;
      if (body && typeof body === 'object' && !Array.isArray(body)) {
        const rec = body as Record<string, unknown>;
        if ('exception_detail' in rec) return truncate(summarize422(rec));
        if (typeof rec.detail === 'string') return truncate(rec.detail);
        if (rec.detail !== undefined) return truncate(JSON.stringify(rec.detail));
        if (typeof rec.exception_message === 'string') return truncate(rec.exception_message);
      }
      return truncate(JSON.stringify(body));
    } catch {
      return truncate(text.replace(/\s+/g, ' '));
    }
  }

  async function filter<T>(path: string, body: Record<string, unknown>, schema: z.ZodType<T>, signal: AbortSignal | undefined): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const { data } = await request({ method: 'POST', path, json: body, schema, signal });
        return data;
      } catch (err) {
        const cap = err instanceof PermanentError ? parseLimitCap(err.message) : undefined;
        if (cap === undefined || attempt > 0 || cap < 1 || cap >= (body.limit as number)) throw err;
        pageCap = Math.min(pageCap, cap);
        body = { ...body, limit: Math.min(body.limit as number, cap) };
      }
    }
  }

  function limitOf(limit: number, offset: number | undefined): { limit: number; offset: number } {
    if (!Number.isInteger(limit) || limit < 0 || limit > PREFECT_PAGE_SIZE_MAX) {
      throw new UserInputError(`Prefect page size must be an integer from 0 to ${PREFECT_PAGE_SIZE_MAX}, got ${limit}`);
    }
    limit = Math.min(limit, pageCap);
    const off = offset ?? 0;
    if (!Number.isInteger(off) || off < 0) {
      throw new UserInputError(`Prefect offset must be a non-negative integer, got ${off}`);
    }
    return { limit, offset: off };
  }

  return {
    shownUrl,
    get pageLimit() {
      return pageCap;
    },
    request,
    filter,
    page: limitOf,
  };
}

function truncate(text: string, max = 500): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
