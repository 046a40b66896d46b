/**
 * A small typed client for the Prefect 2/3 REST API: the calls flowwarden needs to launch a flow run
 * from a deployment, watch it, and switch deployment schedules off and on.
 *
 * Design notes
 * - `apiUrl` is the API root: `<server>/api` self-hosted, or
 *   `https://api.prefect.cloud/api/accounts/{account}/workspaces/{workspace}` on Cloud.
 * - No retries here: the queue owns retries. Every response is classified instead:
 *   429 → RateLimitedError (Retry-After), 5xx / network / timeout → plain Error (transient),
 *   404 → NotFoundError, 422 → PermanentError with Prefect's validation summary, other 4xx → PermanentError.
 * - Launching is idempotent: `create_flow_run` with an idempotency key that already exists for the
 *   flow returns the existing run with 200 instead of 201. Prefect scopes keys per *flow*, so
 *   `prefectIdempotencyKey` puts the deployment id in the key.
 * - Secrets: the API key only ever travels in the Authorization header. Error messages show the API
 *   URL without userinfo or query string, every message is scrubbed for the key, and ky's own errors
 *   (which hold the Request, headers included) are never attached as `cause`.
 * - Responses we rely on are parsed with zod; a shape we do not understand is a PermanentError
 *   (a contract mismatch does not heal on retry).
 */
import type { KyInstance } from 'ky';
import { z } from 'zod';
import { randomUUID } from 'node:crypto';
import { createHttp, DEFAULT_HTTP_TIMEOUT_MS, parseRetryAfter, transportCause } from '../../http.ts';
import { NotFoundError, PermanentError, RateLimitedError, UserInputError } from '../../errors.ts';

/**
 * Prefect's default page cap: a `limit` above the server's PREFECT_SERVER_API_DEFAULT_LIMIT (default
 * 200) is answered 422 `{"detail": "Invalid limit: must be less than or equal to N."}`. The client
 * starts from its configured page size and adopts a lower N when the server names one.
 */
export const PREFECT_MAX_LIMIT = 200;
/** Largest page size flowwarden will ask for (a server may raise its cap above 200). */
export const PREFECT_PAGE_SIZE_MAX = 1000;

/** When a 429 carries no usable Retry-After. */
export const DEFAULT_RATE_LIMIT_WAIT_MS = 5_000;

// ---------------------------------------------------------------------------------------------
// States

export const PREFECT_STATE_TYPES = [
  'SCHEDULED',
  'PENDING',
  'RUNNING',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'CRASHED',
  'PAUSED',
  'CANCELLING',
] as const;
export type PrefectStateType = (typeof PREFECT_STATE_TYPES)[number];

/** flowwarden's run-state vocabulary (Prefect-style, without PAUSED/CANCELLING). */
export type RunStateType = 'SCHEDULED' | 'PENDING' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'CRASHED';

export interface MappedState {
  stateType: RunStateType;
  stateName: string;
  terminal: boolean;
}

const TERMINAL: ReadonlySet<string> = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED']);
const DEFAULT_NAMES: Record<RunStateType, string> = {
  SCHEDULED: 'Scheduled',
  PENDING: 'Pending',
  RUNNING: 'Running',
  COMPLETED: 'Completed',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
  CRASHED: 'Crashed',
};

/**
 * Map a Prefect (state_type, state_name) onto flowwarden's vocabulary.
 * - PAUSED (names Paused/Suspended) → RUNNING, non-terminal: the run is alive and will resume or time out.
 * - CANCELLING → RUNNING named 'Cancelling', non-terminal: wait for CANCELLED.
 * - SCHEDULED named AwaitingRetry/Late stays SCHEDULED, non-terminal.
 * - No state yet (null) → PENDING; an unknown future type → RUNNING, non-terminal (keep watching
 *   rather than declare an outcome we do not understand).
 */
export function mapPrefectState(stateType: string | null | undefined, stateName?: string | null): MappedState {
  const name = stateName && stateName.trim() !== '' ? stateName : undefined;
  switch (stateType) {
    case 'SCHEDULED':
    case 'PENDING':
    case 'RUNNING':
      return { stateType, stateName: name ?? DEFAULT_NAMES[stateType], terminal: false };
    case 'COMPLETED':
    case 'FAILED':
    case 'CANCELLED':
    case 'CRASHED':
      // AwaitingRetry is a SCHEDULED state in Prefect; guard anyway so a retry is never read as final.
      return { stateType, stateName: name ?? DEFAULT_NAMES[stateType], terminal: name !== 'AwaitingRetry' };
    case 'PAUSED':
      return { stateType: 'RUNNING', stateName: name ?? 'Paused', terminal: false };
    case 'CANCELLING':
      return { stateType: 'RUNNING', stateName: 'Cancelling', terminal: false };
    case null:
    case undefined:
      return { stateType: 'PENDING', stateName: name ?? 'Pending', terminal: false };
    default:
      return { stateType: 'RUNNING', stateName: name ?? stateType, terminal: false };
  }
}

export function isTerminalPrefectState(stateType: string | null | undefined, stateName?: string | null): boolean {
  return mapPrefectState(stateType, stateName).terminal;
}

/** Prefect idempotency keys are unique per flow, not per deployment: put the deployment in the key. */
export function prefectIdempotencyKey(deploymentId: string, runId: string): string {
  return `flowwarden:${deploymentId}:${runId}`;
}

// ---------------------------------------------------------------------------------------------
// Response schemas (only the fields flowwarden relies on; unknown fields are stripped)

const nullableString = z.string().nullish().transform((v) => v ?? null);

export const prefectStateSchema = z.object({
  type: z.string(),
  name: nullableString,
  message: nullableString,
  timestamp: nullableString,
});

export const prefectDeploymentScheduleSchema = z.object({
  id: z.string(),
  active: z.boolean(),
  schedule: z.record(z.string(), z.unknown()),
  deployment_id: nullableString,
  /** Per-schedule parameter overrides (Prefect ≥ 3.1); absent on older servers. */
  parameters: z.record(z.string(), z.unknown()).nullish(),
  slug: z.string().nullish(),
  max_scheduled_runs: z.number().nullish(),
});

export const prefectDeploymentSchema = z.object({
  id: z.string(),
  name: z.string(),
  flow_id: z.string(),
  paused: z.boolean().nullish().transform((v) => v ?? false),
  tags: z.array(z.string()).nullish().transform((v) => v ?? []),
  parameters: z.record(z.string(), z.unknown()).nullish().transform((v) => v ?? {}),
  work_pool_name: nullableString,
  work_queue_name: nullableString,
  schedules: z.array(prefectDeploymentScheduleSchema).nullish().transform((v) => v ?? []),
});

export const prefectFlowRunSchema = z.object({
  id: z.string(),
  name: z.string(),
  flow_id: z.string(),
  deployment_id: nullableString,
  state_type: nullableString,
  state_name: nullableString,
  state: prefectStateSchema.nullish().transform((v) => v ?? null),
  idempotency_key: nullableString,
  /** Created by Prefect's scheduler from a deployment schedule. */
  auto_scheduled: z.boolean().nullish().transform((v) => v ?? false),
  tags: z.array(z.string()).nullish().transform((v) => v ?? []),
  parameters: z.record(z.string(), z.unknown()).nullish().transform((v) => v ?? {}),
  expected_start_time: nullableString,
  start_time: nullableString,
  end_time: nullableString,
  created: nullableString,
  updated: nullableString,
});

export const prefectTaskRunSchema = z.object({
  id: z.string(),
  name: z.string(),
  flow_run_id: nullableString,
  task_key: nullableString,
  /** Prefect 3 names a task run `<task name>-<dynamic_key[:3]>` (tasks.py). */
  dynamic_key: nullableString,
  state_type: nullableString,
  state_name: nullableString,
  state: prefectStateSchema.nullish().transform((v) => v ?? null),
  expected_start_time: nullableString,
  start_time: nullableString,
  end_time: nullableString,
  created: nullableString,
  updated: nullableString,
});

export type PrefectState = z.infer<typeof prefectStateSchema>;
export type PrefectDeployment = z.infer<typeof prefectDeploymentSchema>;
export type PrefectDeploymentSchedule = z.infer<typeof prefectDeploymentScheduleSchema>;
export type PrefectFlowRun = z.infer<typeof prefectFlowRunSchema>;
export type PrefectTaskRun = z.infer<typeof prefectTaskRunSchema>;

// ---------------------------------------------------------------------------------------------
// Client

export interface PrefectClientOptions {
  /** API root, e.g. `http://prefect:4200/api` or the Cloud workspace URL. */
  apiUrl: string;
  /** PREFECT_API_KEY: sent as `Authorization: Bearer <key>` (Prefect Cloud). */
  apiKey?: string;
  /**
   * PREFECT_API_AUTH_STRING: sent as `Authorization: Basic base64(<auth string>)`, what a
   * self-hosted server with PREFECT_SERVER_API_AUTH_STRING expects. Wins over apiKey, as in
   * Prefect's own client.
   */
  authString?: string;
  /**
   * PREFECT_CLIENT_CSRF_SUPPORT_ENABLED (default true): fetch a CSRF token from `/csrf-token` before
   * the first POST/PATCH/DELETE and send it with each; a server with CSRF protection off answers
   * 422 "CSRF protection is disabled." and the client stops asking, as Prefect's client does.
   */
  csrf?: boolean;
  /** First page size asked for (default 200); lowered to the server's cap when it names one. */
  pageSize?: number;
  /** Shared ky instance (see `createHttp`); one is created when absent. */
  http?: KyInstance;
  /** Per-request timeout; defaults to the http instance's (DEFAULT_HTTP_TIMEOUT_MS for createHttp). */
  timeoutMs?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface CreateFlowRunInput {
  idempotencyKey: string;
  name?: string;
  parameters?: Record<string, unknown>;
  context?: Record<string, unknown>;
  tags?: string[];
  jobVariables?: Record<string, unknown>;
}

export const FLOW_RUN_SORTS = [
  'ID_DESC',
  'START_TIME_ASC',
  'START_TIME_DESC',
  'EXPECTED_START_TIME_ASC',
  'EXPECTED_START_TIME_DESC',
  'NAME_ASC',
  'NAME_DESC',
  'NEXT_SCHEDULED_START_TIME_ASC',
  'END_TIME_DESC',
] as const;
export type FlowRunSort = (typeof FLOW_RUN_SORTS)[number];

export const TASK_RUN_SORTS = [
  'ID_DESC',
  'EXPECTED_START_TIME_ASC',
  'EXPECTED_START_TIME_DESC',
  'NAME_ASC',
  'NAME_DESC',
  'NEXT_SCHEDULED_START_TIME_ASC',
  'END_TIME_DESC',
] as const;
export type TaskRunSort = (typeof TASK_RUN_SORTS)[number];

type Instant = Date | string;

/**
 * Prefect's FlowRunFilter has no `updated` criterion (it would be rejected with a 422), so "what
 * changed since" is asked with `endTimeAfter` (finished runs) or `startTimeAfter`.
 */
export interface FilterFlowRunsInput {
  /** Re-read known runs by id (at most PREFECT_MAX_LIMIT per call). */
  flowRunIds?: string[];
  deploymentIds?: string[];
  stateTypes?: PrefectStateType[];
  expectedStartAfter?: Instant;
  expectedStartBefore?: Instant;
  startTimeAfter?: Instant;
  endTimeAfter?: Instant;
  sort?: FlowRunSort;
  /** 0..PREFECT_MAX_LIMIT; anything else is rejected before a request is made. */
  limit: number;
  offset?: number;
}

export interface SetStateResult {
  /** ACCEPT, REJECT, ABORT or WAIT (Prefect's orchestration result). */
  status: string;
  state: PrefectState | null;
  reason: string | null;
}

export interface ScheduleUpdate {
  active?: boolean;
  /** Always send the schedule's current overrides: Prefect ≥ 3.2 resets them to {} otherwise. */
  parameters?: Record<string, unknown>;
}

export interface FilterTaskRunsInput {
  flowRunIds: string[];
  stateTypes?: PrefectStateType[];
  sort?: TaskRunSort;
  limit: number;
  offset?: number;
}

export interface PrefectClient {
  readonly apiUrl: string;
  /** Current page cap: the configured page size, or the lower cap the server announced. */
  readonly pageLimit: number;
  readDeployment(id: string, opts?: CallOptions): Promise<PrefectDeployment>;
  readDeploymentByName(flowName: string, deploymentName: string, opts?: CallOptions): Promise<PrefectDeployment>;
  /** `ref` is a deployment id (UUID) or 'flow-name/deployment-name'. Cached per client instance. */
  resolveDeployment(ref: string, opts?: CallOptions): Promise<PrefectDeployment>;
  createFlowRun(
    deploymentId: string,
    input: CreateFlowRunInput,
    opts?: CallOptions,
  ): Promise<{ run: PrefectFlowRun; created: boolean }>;
  readFlowRun(id: string, opts?: CallOptions): Promise<PrefectFlowRun>;
  filterFlowRuns(input: FilterFlowRunsInput, opts?: CallOptions): Promise<PrefectFlowRun[]>;
  filterTaskRuns(input: FilterTaskRunsInput, opts?: CallOptions): Promise<PrefectTaskRun[]>;
  listDeploymentSchedules(deploymentId: string, opts?: CallOptions): Promise<PrefectDeploymentSchedule[]>;
  /**
   * Switch one schedule on or off. `schedule` is the schedule as just read: its parameter overrides
   * are sent along, because Prefect's DeploymentScheduleUpdate defaults `parameters` to {} and
   * writes it (a bare {"active": false} wipes them).
   */
  setDeploymentScheduleActive(
    deploymentId: string,
    schedule: Pick<PrefectDeploymentSchedule, 'id' | 'parameters'>,
    active: boolean,
    opts?: CallOptions,
  ): Promise<void>;
  /** POST /flow_runs/{id}/set_state (orchestrated, force false). */
  setFlowRunState(
    id: string,
    state: { type: PrefectStateType; name?: string; message?: string },
    opts?: CallOptions,
  ): Promise<SetStateResult>;
  pauseDeployment(id: string, opts?: CallOptions): Promise<void>;
  resumeDeployment(id: string, opts?: CallOptions): Promise<void>;
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

/** A UUID as Prefect's `{id:uuid}` routes match it: lowercase, hyphenated (8-4-4-4-12). */
export function normalizeUuid(value: string): string {
  const hex = value.trim().replace(/-/g, '').toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

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

interface RequestSpec<T> {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  json?: unknown;
  schema?: z.ZodType<T>;
  /** Message for a 404, when the caller can say more than the route. */
  notFound?: string;
  signal?: AbortSignal;
}

export function createPrefectClient(opts: PrefectClientOptions): PrefectClient {
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
  const deploymentCache = new Map<string, PrefectDeployment>();

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
    let res = await send(spec as RequestSpec<unknown>, what);
    // An expired or unknown token: fetch a new one and try once more (as Prefect's client does).
    if (res.status === 403 && csrfEnabled && res.text.includes('Invalid CSRF token')) {
      csrfToken = undefined;
      res = await send(spec as RequestSpec<unknown>, what);
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

  function seg(value: string): string {
    return encodeURIComponent(value);
  }

  /** A path id for Prefect's `{id:uuid}` routes: normalised, or a clear error before any request. */
  function idSeg(value: string, what: string): string {
    return idOf(value, what);
  }

  /** POST a filter; a 422 naming a lower page cap is adopted and the request sent again with it. */
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

  const idOf = (value: string, what: string): string => {
    if (!isUuid(value.trim())) throw new UserInputError(`invalid Prefect ${what} id '${value}': expected a UUID`);
    return normalizeUuid(value);
  };

  const iso = (v: Instant): string => (typeof v === 'string' ? new Date(v).toISOString() : v.toISOString());

  function cacheDeployment(ref: string, deployment: PrefectDeployment): PrefectDeployment {
    deploymentCache.set(ref, deployment);
    deploymentCache.set(deployment.id, deployment);
    return deployment;
  }

  const client: PrefectClient = {
    apiUrl: shownUrl,
    get pageLimit() {
      return pageCap;
    },

    async readDeployment(id, callOpts = {}) {
      const { data } = await request({
        method: 'GET',
        path: `/deployments/${idSeg(id, 'deployment')}`,
        schema: prefectDeploymentSchema,
        notFound: `Prefect deployment '${id}' not found at ${shownUrl}: check the deployment id (prefect deployment ls)`,
        signal: callOpts.signal,
      });
      return data;
    },

    async readDeploymentByName(flowName, deploymentName, callOpts = {}) {
      const { data } = await request({
        method: 'GET',
        path: `/deployments/name/${seg(flowName)}/${seg(deploymentName)}`,
        schema: prefectDeploymentSchema,
        notFound:
          `Prefect deployment '${flowName}/${deploymentName}' not found at ${shownUrl}: ` +
          `check the flow and deployment names (prefect deployment ls)`,
        signal: callOpts.signal,
      });
      return data;
    },

    async resolveDeployment(ref, callOpts = {}) {
      const trimmed = ref.trim();
      const cached = deploymentCache.get(trimmed);
      if (cached) return cached;
      if (isUuid(trimmed)) return cacheDeployment(trimmed, await client.readDeployment(trimmed, callOpts));
      const parts = trimmed.split('/');
      if (parts.length !== 2 || !parts[0] || !parts[1]) {
        throw new UserInputError(
          `Invalid Prefect deployment reference '${ref}': use a deployment id (UUID) or 'flow-name/deployment-name'`,
        );
      }
      return cacheDeployment(trimmed, await client.readDeploymentByName(parts[0], parts[1], callOpts));
    },

    async createFlowRun(deploymentId, input, callOpts = {}) {
      if (!input.idempotencyKey) {
        throw new UserInputError('createFlowRun needs an idempotencyKey (see prefectIdempotencyKey)');
      }
      const body: Record<string, unknown> = { idempotency_key: input.idempotencyKey };
      if (input.name !== undefined) body.name = input.name;
      if (input.parameters !== undefined) body.parameters = input.parameters;
      if (input.context !== undefined) body.context = input.context;
      if (input.tags !== undefined) body.tags = input.tags;
      if (input.jobVariables !== undefined) body.job_variables = input.jobVariables;
      const { status, data } = await request({
        method: 'POST',
        path: `/deployments/${idSeg(deploymentId, 'deployment')}/create_flow_run`,
        json: body,
        schema: prefectFlowRunSchema,
        notFound: `Prefect deployment '${deploymentId}' not found at ${shownUrl}: it may have been deleted; check the deployment id (prefect deployment ls)`,
        signal: callOpts.signal,
      });
      return { run: data, created: status === 201 };
    },

    async readFlowRun(id, callOpts = {}) {
      const { data } = await request({
        method: 'GET',
        path: `/flow_runs/${idSeg(id, 'flow run')}`,
        schema: prefectFlowRunSchema,
        notFound: `Prefect flow run '${id}' not found at ${shownUrl}`,
        signal: callOpts.signal,
      });
      return data;
    },

    async filterFlowRuns(input, callOpts = {}) {
      const page = limitOf(input.limit, input.offset);
      const flowRuns: Record<string, unknown> = {};
      if (input.flowRunIds) flowRuns.id = { any_: input.flowRunIds.map((id) => idOf(id, 'flow run')) };
      if (input.deploymentIds) flowRuns.deployment_id = { any_: input.deploymentIds.map((id) => idOf(id, 'deployment')) };
      if (input.stateTypes) flowRuns.state = { type: { any_: input.stateTypes } };
      if (input.expectedStartAfter !== undefined || input.expectedStartBefore !== undefined) {
        const range: Record<string, string> = {};
        if (input.expectedStartAfter !== undefined) range.after_ = iso(input.expectedStartAfter);
        if (input.expectedStartBefore !== undefined) range.before_ = iso(input.expectedStartBefore);
        flowRuns.expected_start_time = range;
      }
      if (input.startTimeAfter !== undefined) flowRuns.start_time = { after_: iso(input.startTimeAfter) };
      if (input.endTimeAfter !== undefined) flowRuns.end_time = { after_: iso(input.endTimeAfter) };
      const body: Record<string, unknown> = { ...page, sort: input.sort ?? 'ID_DESC' };
      if (Object.keys(flowRuns).length) body.flow_runs = flowRuns;
      return filter('/flow_runs/filter', body, z.array(prefectFlowRunSchema), callOpts.signal);
    },

    async filterTaskRuns(input, callOpts = {}) {
      const page = limitOf(input.limit, input.offset);
      const taskRuns: Record<string, unknown> = { flow_run_id: { any_: input.flowRunIds.map((id) => idOf(id, 'flow run')) } };
      if (input.stateTypes) taskRuns.state = { type: { any_: input.stateTypes } };
      return filter(
        '/task_runs/filter',
        { ...page, sort: input.sort ?? 'EXPECTED_START_TIME_ASC', task_runs: taskRuns },
        z.array(prefectTaskRunSchema),
        callOpts.signal,
      );
    },

    async listDeploymentSchedules(deploymentId, callOpts = {}) {
      const { data } = await request({
        method: 'GET',
        path: `/deployments/${idSeg(deploymentId, 'deployment')}/schedules`,
        schema: z.array(prefectDeploymentScheduleSchema),
        notFound: `Prefect deployment '${deploymentId}' not found at ${shownUrl}: check the deployment id (prefect deployment ls)`,
        signal: callOpts.signal,
      });
      return data;
    },

    async setDeploymentScheduleActive(deploymentId, schedule, active, callOpts = {}) {
      // Only the fields Prefect's DeploymentScheduleUpdate would otherwise reset: `parameters`
      // (default {}); every other field defaults to None, which the server leaves alone. An older
      // server whose schedules have no parameters also has no such field: send none.
      const json: Record<string, unknown> = { active };
      if (schedule.parameters !== undefined && schedule.parameters !== null) json.parameters = schedule.parameters;
      await request({
        method: 'PATCH',
        path: `/deployments/${idSeg(deploymentId, 'deployment')}/schedules/${idSeg(schedule.id, 'schedule')}`,
        json,
        notFound: `Prefect schedule '${schedule.id}' of deployment '${deploymentId}' not found at ${shownUrl}`,
        signal: callOpts.signal,
      });
    },

    async setFlowRunState(id, state, callOpts = {}) {
      const stateBody: Record<string, unknown> = { type: state.type };
      if (state.name !== undefined) stateBody.name = state.name;
      if (state.message !== undefined) stateBody.message = state.message;
      const { data } = await request({
        method: 'POST',
        path: `/flow_runs/${idSeg(id, 'flow run')}/set_state`,
        json: { state: stateBody, force: false },
        schema: z.object({
          status: z.string(),
          state: prefectStateSchema.nullish().transform((v) => v ?? null),
          details: z.object({ reason: z.string().nullish() }).passthrough().nullish(),
        }),
        notFound: `Prefect flow run '${id}' not found at ${shownUrl}`,
        signal: callOpts.signal,
      });
      return { status: data.status, state: data.state, reason: data.details?.reason ?? null };
    },

    async pauseDeployment(id, callOpts = {}) {
      await request({
        method: 'POST',
        path: `/deployments/${idSeg(id, 'deployment')}/pause_deployment`,
        notFound: `Prefect deployment '${id}' not found at ${shownUrl}: check the deployment id (prefect deployment ls)`,
        signal: callOpts.signal,
      });
    },

    async resumeDeployment(id, callOpts = {}) {
      await request({
        method: 'POST',
        path: `/deployments/${idSeg(id, 'deployment')}/resume_deployment`,
        notFound: `Prefect deployment '${id}' not found at ${shownUrl}: check the deployment id (prefect deployment ls)`,
        signal: callOpts.signal,
      });
    },
  };
  return client;
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
