/**
 * A fake Prefect 3 server (REST API, `/api` prefix) for tests and `flowwarden dev --prefect-fake`
 * (which loads this file lazily; it is test/dev support, not shipped). Real HTTP on 127.0.0.1,
 * random port. Built from Prefect's own server source (PrefectHQ/prefect, `src/prefect/server/`,
 * 3.8 line); where it is strict, the real server is:
 *
 * - Auth modes (`auth`): 'bearer' (Prefect Cloud: `Authorization: Bearer <key>`), 'basic' (a
 *   self-hosted server with PREFECT_SERVER_API_AUTH_STRING: `Basic base64(auth string)`, else 401
 *   `{"exception_message": "Unauthorized"}`, api/server.py), 'none' (open self-hosted server).
 *   // Prefect: src/prefect/server/api/server.py create_api_app token_validation (basic); bearer is
 *   // Prefect Cloud (not in the OSS server; client side: src/prefect/client/orchestration/__init__.py)
 * - CSRF mode (`csrf: true`, PREFECT_SERVER_CSRF_PROTECTION_ENABLED): every POST/PUT/PATCH/DELETE
 *   needs `Prefect-Csrf-Token` + `Prefect-Csrf-Client`, else 403 "Missing CSRF token." / "Missing
 *   client identifier." / "Invalid CSRF token or client identifier." (api/middleware.py); tokens come
 *   from `GET /csrf-token?client=<id>`, which answers 422 "CSRF protection is disabled." when off.
 *   // Prefect: src/prefect/server/api/middleware.py CsrfMiddleware.dispatch;
 *   // src/prefect/server/api/csrf_token.py create_csrf_token
 * - Request bodies validated as Prefect's pydantic models do (action models forbid extra fields):
 *   unknown fields and bad enums answer 422 `{ exception_message, exception_detail, request_body }`.
 *   // Prefect: src/prefect/server/schemas/actions.py ActionBaseModel (extra="forbid");
 *   // src/prefect/server/schemas/filters.py PrefectFilterBaseModel (extra="forbid");
 *   // src/prefect/server/api/server.py validation_exception_handler (422 body)
 *   Stricter than Prefect in one place: unknown *top-level* keys of a filter body are rejected too
 *   (FastAPI ignores them), so a typo in the client fails a test instead of silently not filtering.
 * - Page cap (`defaultLimit`, PREFECT_SERVER_API_DEFAULT_LIMIT, default 200): a larger `limit` is
 *   422 `{"detail": "Invalid limit: must be less than or equal to N."}` (api/dependencies.py).
 *   // Prefect: src/prefect/server/api/dependencies.py LimitBody.get_limit
 * - Path ids match Starlette's uuid convertor (lowercase, hyphenated); anything else is 404
 *   `{"detail": "Not Found"}`.
 *   // Prefect: routes declared `/{id:uuid}` in src/prefect/server/api/deployments.py, flow_runs.py
 *   // (convertor itself: starlette/convertors.py UUIDConvertor; 404 body: Starlette's default)
 * - `create_flow_run`: 201 new, 200 for an idempotency key already used for the same flow; a
 *   parameter-schema violation (deployment `enforceParameterSchema`) is 409.
 *   // Prefect: src/prefect/server/api/deployments.py create_flow_run_from_deployment;
 *   // src/prefect/server/models/flow_runs.py create_flow_run (on_conflict_do_nothing on idempotency_key)
 * - `PATCH /deployments/{id}/schedules/{schedule_id}`: DeploymentScheduleUpdate defaults
 *   `parameters` to {} and the update writes every non-None field, so a PATCH without `parameters`
 *   wipes the schedule's overrides (Prefect ≥ 3.2); then the deployment's *future* auto-scheduled
 *   runs (all its schedules) that have not run are deleted, past-due ones stay (Prefect ≥ 3.3.4).
 *   204, no body.
 *   // Prefect: src/prefect/server/schemas/actions.py DeploymentScheduleUpdate (parameters default {});
 *   // src/prefect/server/models/deployments.py update_deployment_schedule (model_dump(exclude_none=True));
 *   // src/prefect/server/api/deployments.py update_deployment_schedule (204, _delete_scheduled_runs future_only)
 * - pause/resume_deployment: 200 with body `null`; pausing deletes every auto-scheduled run still
 *   Scheduled that has not run.
 *   // Prefect: src/prefect/server/api/deployments.py pause_deployment / resume_deployment (-> None)
 * - `POST /flow_runs/{id}/set_state`: orchestration result `{status, state, details}`, 201 when a
 *   new state was set; a terminal run refuses (REJECT).
 *   // Prefect: src/prefect/server/api/flow_runs.py set_flow_run_state (201 if state.timestamp >= now);
 *   // terminal rule: src/prefect/server/orchestration/core_policy.py HandleFlowTerminalStateTransitions
 *   // (the real rule is narrower: see the comment at the set_state route)
 * - Task runs are named `<task>-<dynamic_key[:3]>` with a random uuid key; `addTaskRun(..., {
 *   delayed: true })` records one that only becomes visible on `flushTaskRuns()` (Prefect 3 writes
 *   task runs from events, possibly after the flow run is terminal).
 *   // Prefect: src/prefect/task_engine.py (task_run_name = f"{task.name}-{dynamic_key[:3]}",
 *   // dynamic_key_for_task_run(stable=False) in src/prefect/_internal/engine.py returns str(uuid4()))
 *
 * Test controls: `failNext` injects 429 / 500 / hung (timeout) / reset responses; `advance` moves a
 * run to a state now; `script` (or `runScript` on a deployment) makes each read of a run step it
 * through a list of states, so a poller can be driven without sleeps.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { FLOW_RUN_SORTS, PREFECT_STATE_TYPES, TASK_RUN_SORTS } from '../../src/prefect/client/index.ts';

export type FakeStateType =
  | 'SCHEDULED'
  | 'PENDING'
  | 'RUNNING'
  | 'COMPLETED'
  | 'FAILED'
  | 'CANCELLED'
  | 'CRASHED'
  | 'PAUSED'
  | 'CANCELLING';

const STATE_TYPES = PREFECT_STATE_TYPES;
const TERMINAL = new Set<string>(['COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED']);

export interface FakeStep {
  type: FakeStateType;
  name?: string;
  message?: string;
}

export interface FakeState {
  id: string;
  type: FakeStateType;
  name: string;
  message: string | null;
  timestamp: string;
  state_details: Record<string, unknown>;
}

export interface FakeSchedule {
  id: string;
  created: string;
  updated: string;
  deployment_id: string;
  schedule: Record<string, unknown>;
  active: boolean;
  max_scheduled_runs: number | null;
  parameters: Record<string, unknown>;
  slug: string | null;
}

export interface FakeDeployment {
  id: string;
  created: string;
  updated: string;
  name: string;
  flow_id: string;
  flow_name: string;
  paused: boolean;
  status: 'READY' | 'NOT_READY';
  tags: string[];
  parameters: Record<string, unknown>;
  work_pool_name: string | null;
  work_queue_name: string | null;
  schedules: FakeSchedule[];
  /** Test-only: script given to every run created from this deployment. */
  runScript?: FakeStep[];
}

export interface FakeFlowRun {
  id: string;
  created: string;
  updated: string;
  name: string;
  flow_id: string;
  deployment_id: string | null;
  state_type: FakeStateType;
  state_name: string;
  state: FakeState;
  parameters: Record<string, unknown>;
  context: Record<string, unknown>;
  job_variables: Record<string, unknown>;
  tags: string[];
  idempotency_key: string | null;
  /** Created by Prefect's scheduler from one of the deployment's schedules (addFlowRun `scheduleId`). */
  auto_scheduled: boolean;
  work_queue_name: string | null;
  expected_start_time: string;
  next_scheduled_start_time: string | null;
  start_time: string | null;
  end_time: string | null;
  run_count: number;
}

export interface FakeTaskRun {
  id: string;
  created: string;
  updated: string;
  name: string;
  flow_run_id: string;
  task_key: string;
  dynamic_key: string;
  state_type: FakeStateType;
  state_name: string;
  state: FakeState;
  tags: string[];
  expected_start_time: string;
  start_time: string | null;
  end_time: string | null;
}

export interface FakeRequest {
  method: string;
  path: string;
  body: unknown;
  status: number | 'timeout' | 'reset';
  /** Whether correct credentials were sent (never stored themselves). */
  authorized: boolean;
  /** The Authorization scheme sent ('Bearer', 'Basic') or null. */
  authScheme: string | null;
  /** Whether both CSRF headers were sent. */
  csrf: boolean;
}

export type FailKind = '429' | '500' | '503' | 'timeout' | 'reset';
/**
 * What `failNext` matches against `"<METHOD> <path without /api>"`:
 * - 'GET /flow_runs/:id' — a route template (`:x` matches one segment);
 * - any other string — a substring, e.g. 'create_flow_run';
 * - a RegExp or predicate.
 */
export type RouteMatcher = string | RegExp | ((method: string, path: string) => boolean);

export interface FakePrefect {
  apiUrl: string;
  /** Bearer mode: the key to send. */
  apiKey: string;
  /** Basic mode: the auth string to send (base64-encoded by the client). */
  authString: string;
  /** Invalidate every CSRF token issued so far (the next change request answers "Invalid CSRF token"). */
  expireCsrfTokens(): void;
  /** Make delayed task runs visible. */
  flushTaskRuns(): void;
  close(): Promise<void>;
  addDeployment(input: {
    flowName: string;
    name: string;
    id?: string;
    schedules?: Array<{ schedule?: Record<string, unknown>; active?: boolean; slug?: string; parameters?: Record<string, unknown>; maxScheduledRuns?: number }>;
    runScript?: FakeStep[];
    tags?: string[];
    /** enforce_parameter_schema with this JSON schema (required + properties types are checked). */
    parameterSchema?: { required?: string[]; properties?: Record<string, { type?: string }> };
  }): FakeDeployment;
  /**
   * Seed a run directly (not through the API), e.g. history for filter tests. `scheduleId`: the run
   * is one Prefect's scheduler created from that schedule of the deployment (auto_scheduled, with the
   * scheduler's idempotency key), so switching the schedule off or pausing the deployment deletes it
   * while it has not started.
   */
  addFlowRun(
    deploymentId: string,
    input?: { name?: string; expectedStartTime?: Date | string; state?: FakeStep; idempotencyKey?: string; scheduleId?: string },
  ): FakeFlowRun;
  /**
   * A task run named as Prefect 3 names it: `<name>-<dynamic_key[:3]>` (`runName` overrides, like a
   * custom task_run_name). `delayed`: not visible until `flushTaskRuns()`.
   */
  addTaskRun(flowRunId: string, input: { name: string; runName?: string; taskKey?: string; state?: FakeStep; delayed?: boolean }): FakeTaskRun;
  failNext(matcher: RouteMatcher, kind: FailKind, count?: number, opts?: { retryAfter?: string }): void;
  /** Drop scripted failures not yet used (a request that timed out client-side may never have arrived). */
  clearFailures(): void;
  advance(runId: string, type: FakeStateType, name?: string, message?: string): FakeFlowRun;
  /** Each later GET /flow_runs/{id} applies the next step before answering. */
  script(runId: string, steps: FakeStep[]): void;
  state: {
    flows: Map<string, { id: string; name: string }>;
    deployments: Map<string, FakeDeployment>;
    flowRuns: Map<string, FakeFlowRun>;
    taskRuns: Map<string, FakeTaskRun>;
    requests: FakeRequest[];
  };
  /** Requests matching a matcher (same rules as failNext). */
  requestsTo(matcher: RouteMatcher): FakeRequest[];
}

// ---------------------------------------------------------------------------------------------
// Request schemas (mirroring Prefect's pydantic models with extra="forbid")

const uuid = z.guid();
const dateTime = z.string().refine((s) => Number.isFinite(Date.parse(s)), 'Input should be a valid datetime');
const jsonObject = z.record(z.string(), z.unknown());
const stateType = z.enum(STATE_TYPES);
const operator = z.enum(['and_', 'or_']).optional();

// Prefect: src/prefect/server/schemas/actions.py StateCreate (ActionBaseModel, extra="forbid")
const stateCreate = z.strictObject({
  type: stateType,
  name: z.string().nullish(),
  message: z.string().nullish(),
  data: z.unknown().optional(),
  state_details: jsonObject.optional(),
});

// Prefect: src/prefect/server/schemas/actions.py DeploymentFlowRunCreate (ActionBaseModel, extra="forbid")
const deploymentFlowRunCreate = z.strictObject({
  state: stateCreate.nullish(),
  // Prefect: DeploymentFlowRunCreate.name is `str` with a generate_slug default: absent is fine, null is a 422.
  name: z.string().optional(),
  parameters: jsonObject.optional(),
  enforce_parameter_schema: z.boolean().nullish(),
  context: jsonObject.optional(),
  infrastructure_document_id: uuid.nullish(),
  empirical_policy: jsonObject.optional(),
  tags: z.array(z.string()).optional(),
  idempotency_key: z.string().nullish(),
  parent_task_run_id: uuid.nullish(),
  work_queue_name: z.string().nullish(),
  job_variables: jsonObject.nullish(),
  labels: jsonObject.nullish(),
});

const anyUuids = z.array(uuid).optional();
const timeRange = z.strictObject({ before_: dateTime.optional(), after_: dateTime.optional(), is_null_: z.boolean().optional() });

// Prefect: src/prefect/server/schemas/filters.py FlowRunFilter and its field filters (PrefectFilterBaseModel, extra="forbid")
const flowRunFilter = z.strictObject({
  operator,
  id: z.strictObject({ any_: anyUuids, not_any_: anyUuids }).optional(),
  name: z.strictObject({ any_: z.array(z.string()).optional(), like_: z.string().optional() }).optional(),
  tags: z
    .strictObject({ operator, all_: z.array(z.string()).optional(), any_: z.array(z.string()).optional(), is_null_: z.boolean().optional() })
    .optional(),
  deployment_id: z.strictObject({ operator, any_: anyUuids, is_null_: z.boolean().optional() }).optional(),
  state: z
    .strictObject({
      operator,
      type: z.strictObject({ any_: z.array(stateType).optional(), not_any_: z.array(stateType).optional() }).optional(),
      name: z.strictObject({ any_: z.array(z.string()).optional(), not_any_: z.array(z.string()).optional() }).optional(),
    })
    .optional(),
  start_time: timeRange.optional(),
  end_time: timeRange.optional(),
  expected_start_time: z.strictObject({ before_: dateTime.optional(), after_: dateTime.optional() }).optional(),
  idempotency_key: z
    .strictObject({ any_: z.array(z.string()).optional(), not_any_: z.array(z.string()).optional() })
    .optional(),
});

// Prefect: src/prefect/server/schemas/filters.py DeploymentFilter
const deploymentFilter = z.strictObject({
  operator,
  id: z.strictObject({ any_: anyUuids }).optional(),
  name: z.strictObject({ any_: z.array(z.string()).optional(), like_: z.string().optional() }).optional(),
});

// Prefect: src/prefect/server/schemas/filters.py FlowFilter
const flowFilter = z.strictObject({
  operator,
  id: z.strictObject({ any_: anyUuids }).optional(),
  name: z.strictObject({ any_: z.array(z.string()).optional(), like_: z.string().optional() }).optional(),
});

// Prefect: src/prefect/server/schemas/filters.py TaskRunFilter
const taskRunFilter = z.strictObject({
  operator,
  id: z.strictObject({ any_: anyUuids }).optional(),
  name: z.strictObject({ any_: z.array(z.string()).optional(), like_: z.string().optional() }).optional(),
  flow_run_id: z.strictObject({ operator, any_: anyUuids, is_null_: z.boolean().optional() }).optional(),
  state: z
    .strictObject({
      operator,
      type: z.strictObject({ any_: z.array(stateType).optional() }).optional(),
      name: z.strictObject({ any_: z.array(z.string()).optional() }).optional(),
    })
    .optional(),
});

// `limit` is checked against the server's cap separately (LimitBody), with its own 422 body.
const limit = z.number().int().nullish();
const offset = z.number().int().min(0).default(0); // Prefect: api/flow_runs.py read_flow_runs `offset: int = Body(0, ge=0)`

/**
 * Filter bodies for flow runs and task runs: the same filters, each with its own sort values.
 * Prefect: src/prefect/server/api/flow_runs.py read_flow_runs, src/prefect/server/api/task_runs.py
 * read_task_runs (sort default ID_DESC, src/prefect/server/schemas/sorting.py FlowRunSort/TaskRunSort).
 * Strict top level is the fake's own choice (FastAPI ignores unknown embedded body keys).
 */
const filterBody = (sorts: readonly [string, ...string[]]) =>
  z.strictObject({
    sort: z.enum(sorts).default('ID_DESC'),
    limit,
    offset,
    work_pools: jsonObject.nullish(),
    work_pool_queues: jsonObject.nullish(),
    flows: flowFilter.nullish(),
    flow_runs: flowRunFilter.nullish(),
    task_runs: taskRunFilter.nullish(),
    deployments: deploymentFilter.nullish(),
  });
const flowRunsFilterBody = filterBody(FLOW_RUN_SORTS);
const taskRunsFilterBody = filterBody(TASK_RUN_SORTS);

// Prefect: src/prefect/server/schemas/actions.py DeploymentScheduleUpdate (parameters default {});
// src/prefect/server/models/deployments.py update_deployment_schedule.
// DeploymentScheduleUpdate (schemas/actions.py): every field Optional = None except `parameters`,
// whose default_factory is dict — so a PATCH without it writes {} (model_dump(exclude_none=True)).
const scheduleUpdate = z.strictObject({
  active: z.boolean().nullish(),
  schedule: jsonObject.nullish(),
  // Prefect: DeploymentScheduleUpdate.validate_max_scheduled_runs → _internal/schemas/validators.py
  // validate_schedule_max_scheduled_runs, limit PREFECT_SERVER_DEPLOYMENT_SCHEDULE_MAX_SCHEDULED_RUNS (default 50).
  max_scheduled_runs: z.number().int().positive()
    .refine((v) => v <= 50, { message: 'Value error, `max_scheduled_runs` must be less than or equal to 50.' })
    .nullish(),
  parameters: jsonObject.default({}),
  slug: z.string().nullish(),
  replaces: z.string().nullish(),
});

// POST /flow_runs/{id}/set_state: Body(state: StateCreate, force: bool = False).
// Prefect: src/prefect/server/api/flow_runs.py set_flow_run_state
const setStateBody = z.strictObject({ state: stateCreate, force: z.boolean().default(false) });

// ---------------------------------------------------------------------------------------------

const ADJECTIVES = ['amber', 'brisk', 'calm', 'daring', 'eager', 'gentle', 'hidden', 'jolly', 'lucky', 'quiet'];
const ANIMALS = ['badger', 'crane', 'dingo', 'ferret', 'heron', 'ibex', 'lemur', 'otter', 'puffin', 'walrus'];
const slug = (): string => {
  const [a = 0, b = 0] = randomBytes(2);
  return `${ADJECTIVES[a % ADJECTIVES.length]}-${ANIMALS[b % ANIMALS.length]}`;
};

const titleCase = (t: string): string => t.charAt(0) + t.slice(1).toLowerCase();
const nowIso = (): string => new Date().toISOString();

/** A reply: routes return it, or throw it to answer early (404, 422, …), so it is an Error (keeps a stack). */
class HttpReply extends Error {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Record<string, string>;
  constructor(status: number, body: unknown, headers: Record<string, string> = {}) {
    super(`fake Prefect replies ${status}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

// Prefect: src/prefect/server/api/server.py validation_exception_handler (422, exception_message /
// exception_detail = exc.errors() / request_body); `extra_forbidden` entries come from pydantic.
function validationError(error: z.ZodError, requestBody: unknown): HttpReply {
  const detail = error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        type: 'extra_forbidden',
        loc: ['body', ...issue.path, key],
        msg: 'Extra inputs are not permitted',
        input: null,
      }));
    }
    if (issue.code === 'too_big') {
      return [{ type: 'less_than_equal', loc: ['body', ...issue.path], msg: `Input should be less than or equal to ${String(issue.maximum)}`, input: null }];
    }
    return [{ type: issue.code, loc: ['body', ...issue.path], msg: issue.message, input: null }];
  });
  return new HttpReply(422, {
    exception_message: 'Invalid request received.',
    exception_detail: detail,
    request_body: requestBody,
  });
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown, opts: { required?: boolean } = {}): T {
  // Prefect: a route whose model is `Body(default=...)` (update_deployment_schedule) or a required
  // body parameter answers a request without a body with FastAPI's 422 `missing` at loc ["body"]
  // (api/server.py validation_exception_handler); the fake must not read it as {} (that would wipe
  // the schedule's parameters on PATCH).
  if (opts.required && body === undefined) {
    throw new HttpReply(422, {
      exception_message: 'Invalid request received.',
      exception_detail: [{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }],
      request_body: null,
    });
  }
  const result = schema.safeParse(body ?? {});
  if (!result.success) throw validationError(result.error, body);
  return result.data;
}

function compileMatcher(matcher: RouteMatcher): (method: string, path: string) => boolean {
  if (typeof matcher === 'function') return matcher;
  if (matcher instanceof RegExp) return (method, path) => matcher.test(`${method} ${path}`);
  const m = /^(GET|POST|PATCH|PUT|DELETE)\s+(\/\S*)$/.exec(matcher);
  if (m) {
    const [, wantMethod, template = ''] = m;
    const parts = template.split('/');
    return (method, path) => {
      if (method !== wantMethod) return false;
      const got = path.split('/');
      return got.length === parts.length && parts.every((p, i) => p.startsWith(':') || p === got[i]);
    };
  }
  return (method, path) => `${method} ${path}`.includes(matcher);
}

export interface FakePrefectOptions {
  /** 'bearer' (default, like Prefect Cloud), 'basic' (PREFECT_SERVER_API_AUTH_STRING) or 'none'. */
  auth?: 'bearer' | 'basic' | 'none';
  apiKey?: string;
  authString?: string;
  /** PREFECT_SERVER_CSRF_PROTECTION_ENABLED. */
  csrf?: boolean;
  /** PREFECT_SERVER_API_DEFAULT_LIMIT (default 200). */
  defaultLimit?: number;
  /**
   * Simulate an older Prefect whose DeploymentFlowRunCreate lacks these fields (e.g. 'job_variables'
   * before 2.14, 'labels' before 3.1): sending them answers 422 extra_forbidden.
   */
  createFlowRunOmits?: string[];
}

export async function startFakePrefect(opts: FakePrefectOptions = {}): Promise<FakePrefect> {
  const apiKey = opts.apiKey ?? `pnu_fake_${randomBytes(12).toString('hex')}`;
  const authString = opts.authString ?? `admin:${randomBytes(8).toString('hex')}`;
  const authMode = opts.auth ?? 'bearer';
  const defaultLimit = opts.defaultLimit ?? 200;
  const csrfTokens = new Map<string, string>(); // client → token
  const delayedTaskRuns = new Map<string, FakeTaskRun>();
  const deploymentSchemas = new Map<string, { required?: string[]; properties?: Record<string, { type?: string }> }>();
  const flows = new Map<string, { id: string; name: string }>();
  const deployments = new Map<string, FakeDeployment>();
  const flowRuns = new Map<string, FakeFlowRun>();
  const taskRuns = new Map<string, FakeTaskRun>();
  const requests: FakeRequest[] = [];
  const idempotency = new Map<string, string>(); // `${flow_id}\0${key}` → run id
  const scripts = new Map<string, FakeStep[]>();
  const runSchedules = new Map<string, string>(); // flow run id → the schedule that created it
  const failures: Array<{ match: (m: string, p: string) => boolean; kind: FailKind; left: number; retryAfter: string }> = [];
  const sockets = new Set<Socket>();
  const createSchema = opts.createFlowRunOmits?.length
    ? deploymentFlowRunCreate.omit(Object.fromEntries(opts.createFlowRunOmits.map((k) => [k, true])) as never)
    : deploymentFlowRunCreate;

  function flowFor(name: string): { id: string; name: string } {
    for (const flow of flows.values()) if (flow.name === name) return flow;
    const flow = { id: randomUUID(), name };
    flows.set(flow.id, flow);
    return flow;
  }

  // Default state name = capitalised type. Prefect: src/prefect/server/schemas/actions.py StateCreate.default_name_from_type
  // (and src/prefect/server/schemas/states.py State.default_name_from_type)
  function makeState(step: FakeStep): FakeState {
    return {
      id: randomUUID(),
      type: step.type,
      name: step.name ?? titleCase(step.type),
      message: step.message ?? null,
      timestamp: nowIso(),
      state_details: {},
    };
  }

  function applyState(run: FakeFlowRun | FakeTaskRun, step: FakeStep): void {
    const state = makeState(step);
    run.state = state;
    run.state_type = state.type;
    run.state_name = state.name;
    run.updated = state.timestamp;
    if (state.type === 'RUNNING' && !run.start_time) run.start_time = state.timestamp;
    if (TERMINAL.has(state.type)) run.end_time = state.timestamp;
    // Prefect: src/prefect/server/orchestration/global_policy.py SetStartTime / SetEndTime / IncrementFlowRunCount
    // (Prefect counts every entry into RUNNING except a resume; the 'Retrying' exception is the fake's own)
    if ('run_count' in run && state.type === 'RUNNING' && state.name !== 'Retrying') run.run_count += 1;
  }

  function newFlowRun(deployment: FakeDeployment, input: {
    name?: string | null;
    state?: FakeStep | null;
    parameters?: Record<string, unknown>;
    context?: Record<string, unknown>;
    tags?: string[];
    jobVariables?: Record<string, unknown> | null;
    idempotencyKey?: string | null;
    expectedStartTime?: string;
    workQueueName?: string | null;
    scheduleId?: string;
  }): FakeFlowRun {
    const created = nowIso();
    // No state given: Scheduled. Prefect: src/prefect/server/api/deployments.py create_flow_run_from_deployment
    const step: FakeStep = input.state ?? { type: 'SCHEDULED', name: 'Scheduled' };
    const state = makeState(step);
    const expected = input.expectedStartTime ?? created;
    const run: FakeFlowRun = {
      id: randomUUID(),
      created,
      updated: created,
      name: input.name ?? slug(), // Prefect: src/prefect/server/schemas/actions.py DeploymentFlowRunCreate name default generate_slug(2)
      flow_id: deployment.flow_id,
      deployment_id: deployment.id,
      state_type: state.type,
      state_name: state.name,
      state,
      parameters: { ...deployment.parameters, ...(input.parameters ?? {}) }, // Prefect: api/deployments.py create_flow_run_from_deployment (dehydrated_params.update)
      context: input.context ?? {},
      job_variables: input.jobVariables ?? {},
      tags: [...new Set([...deployment.tags, ...(input.tags ?? [])])], // Prefect: api/deployments.py create_flow_run_from_deployment (set(deployment.tags).union)
      idempotency_key: input.idempotencyKey ?? null,
      auto_scheduled: input.scheduleId !== undefined,
      work_queue_name: input.workQueueName ?? deployment.work_queue_name,
      expected_start_time: expected,
      next_scheduled_start_time: state.type === 'SCHEDULED' ? expected : null,
      start_time: null,
      end_time: null,
      run_count: 0,
    };
    if (state.type === 'RUNNING') run.start_time = created;
    if (TERMINAL.has(state.type)) run.end_time = created;
    flowRuns.set(run.id, run);
    if (run.idempotency_key) idempotency.set(`${run.flow_id}\0${run.idempotency_key}`, run.id);
    if (deployment.runScript) scripts.set(run.id, [...deployment.runScript]);
    if (input.scheduleId !== undefined) runSchedules.set(run.id, input.scheduleId);
    return run;
  }

  /**
   * What Prefect does after any schedule PATCH (future runs only) or a deployment pause (all): delete
   * the runs its scheduler created, from any of the deployment's schedules, that have not run.
   */
  function deleteUnstartedScheduledRuns(deployment: FakeDeployment, options: { futureOnly: boolean }): void {
    const now = Date.now();
    for (const run of [...flowRuns.values()]) {
      // models/deployments.py _delete_scheduled_runs(auto_scheduled_only=True, future_only=…)
      if (run.deployment_id !== deployment.id || !run.auto_scheduled) continue;
      if (run.state_type !== 'SCHEDULED' || run.state_name === 'AwaitingConcurrencySlot' || run.run_count > 0) continue;
      if (options.futureOnly && !(run.next_scheduled_start_time && Date.parse(run.next_scheduled_start_time) > now)) continue;
      flowRuns.delete(run.id);
      scripts.delete(run.id);
      runSchedules.delete(run.id);
      if (run.idempotency_key) idempotency.delete(`${run.flow_id}\0${run.idempotency_key}`);
      for (const tr of [...taskRuns.values()]) if (tr.flow_run_id === run.id) taskRuns.delete(tr.id);
    }
  }

  // 404 `{detail}`: Prefect raises HTTPException(404, detail=…) in src/prefect/server/api/*.py; 'Not Found' is Starlette's no-route body.
  const notFound = (detail = 'Not Found'): HttpReply => new HttpReply(404, { detail });
  // Starlette's uuid path convertor: lowercase hex, hyphenated. Anything else matches no route.
  // Prefect: `{id:uuid}` routes in src/prefect/server/api/deployments.py, flow_runs.py (starlette/convertors.py UUIDConvertor)
  const isUuid = (s: string | undefined): s is string => typeof s === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s);

  function getDeployment(id: string | undefined): FakeDeployment {
    if (!isUuid(id)) throw notFound();
    const dep = deployments.get(id);
    if (!dep) throw notFound('Deployment not found'); // Prefect: src/prefect/server/api/deployments.py read_deployment / create_flow_run_from_deployment / pause_deployment
    return dep;
  }

  const deploymentJson = (d: FakeDeployment): unknown => {
    const { runScript: _runScript, flow_name: _flowName, ...rest } = d;
    return { ...rest, schedules: d.schedules.map((s) => ({ ...s })) };
  };

  const flowRunJson = (r: FakeFlowRun): unknown => ({ ...r, state: { ...r.state } });

  function matchesFlowRun(run: FakeFlowRun, body: z.infer<typeof flowRunsFilterBody>): boolean {
    const f = body.flow_runs;
    const t = (iso: string | null): number => (iso ? Date.parse(iso) : NaN);
    if (f) {
      if (f.operator === 'or_') throw new HttpReply(501, { detail: 'fake-prefect: the or_ operator is not supported by this fake' });
      if (f.id?.any_ && !f.id.any_.includes(run.id)) return false;
      if (f.id?.not_any_?.includes(run.id)) return false;
      if (f.name?.any_ && !f.name.any_.includes(run.name)) return false;
      if (f.name?.like_ && !run.name.toLowerCase().includes(f.name.like_.toLowerCase())) return false;
      if (f.tags?.all_ && !f.tags.all_.every((tag) => run.tags.includes(tag))) return false;
      if (f.tags?.any_ && !f.tags.any_.some((tag) => run.tags.includes(tag))) return false;
      if (f.deployment_id?.any_ && !f.deployment_id.any_.includes(run.deployment_id ?? '')) return false;
      if (f.deployment_id?.is_null_ !== undefined && (run.deployment_id === null) !== f.deployment_id.is_null_) return false;
      if (f.state?.type?.any_ && !f.state.type.any_.includes(run.state_type)) return false;
      if (f.state?.type?.not_any_?.includes(run.state_type)) return false;
      if (f.state?.name?.any_ && !f.state.name.any_.includes(run.state_name)) return false;
      if (f.state?.name?.not_any_?.includes(run.state_name)) return false;
      for (const [field, range] of [
        ['start_time', f.start_time],
        ['end_time', f.end_time],
        ['expected_start_time', f.expected_start_time],
      ] as const) {
        if (!range) continue;
        const value = t(run[field]);
        if ('is_null_' in range && range.is_null_ !== undefined && Number.isNaN(value) !== range.is_null_) return false;
        if (range.after_ !== undefined && !(value >= Date.parse(range.after_))) return false;
        if (range.before_ !== undefined && !(value <= Date.parse(range.before_))) return false;
      }
      if (f.idempotency_key?.any_ && !f.idempotency_key.any_.includes(run.idempotency_key ?? '')) return false;
      if (f.idempotency_key?.not_any_?.includes(run.idempotency_key ?? '')) return false;
    }
    const d = body.deployments;
    if (d) {
      const dep = run.deployment_id ? deployments.get(run.deployment_id) : undefined;
      if (!dep) return false;
      if (d.id?.any_ && !d.id.any_.includes(dep.id)) return false;
      if (d.name?.any_ && !d.name.any_.includes(dep.name)) return false;
      if (d.name?.like_ && !dep.name.toLowerCase().includes(d.name.like_.toLowerCase())) return false;
    }
    const fl = body.flows;
    if (fl) {
      const flow = flows.get(run.flow_id);
      if (!flow) return false;
      if (fl.id?.any_ && !fl.id.any_.includes(flow.id)) return false;
      if (fl.name?.any_ && !fl.name.any_.includes(flow.name)) return false;
    }
    if (body.task_runs) throw new HttpReply(501, { detail: 'fake-prefect: a task_runs filter on /flow_runs/filter is not supported by this fake' });
    return true;
  }

  type Sortable = { id: string; name: string; expected_start_time: string; start_time: string | null; end_time: string | null };
  function sortRows<T extends Sortable>(rows: T[], sort: string): T[] {
    const time = (v: string | null, missing: number): number => (v ? Date.parse(v) : missing);
    const cmp: Record<string, (a: T, b: T) => number> = {
      ID_DESC: (a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0),
      EXPECTED_START_TIME_ASC: (a, b) => time(a.expected_start_time, Infinity) - time(b.expected_start_time, Infinity),
      EXPECTED_START_TIME_DESC: (a, b) => time(b.expected_start_time, -Infinity) - time(a.expected_start_time, -Infinity),
      NEXT_SCHEDULED_START_TIME_ASC: (a, b) => time(a.expected_start_time, Infinity) - time(b.expected_start_time, Infinity),
      START_TIME_ASC: (a, b) => time(a.start_time, Infinity) - time(b.start_time, Infinity),
      START_TIME_DESC: (a, b) => time(b.start_time, -Infinity) - time(a.start_time, -Infinity),
      END_TIME_DESC: (a, b) => time(b.end_time, -Infinity) - time(a.end_time, -Infinity),
      NAME_ASC: (a, b) => a.name.localeCompare(b.name),
      NAME_DESC: (a, b) => b.name.localeCompare(a.name),
    };
    const by = cmp[sort] ?? cmp.ID_DESC!;
    // Tie-break on id so pagination is stable, as Postgres would be with the id in the ORDER BY.
    return [...rows].sort((a, b) => by(a, b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** dependencies.py LimitBody: default PREFECT_SERVER_API_DEFAULT_LIMIT, never above it. */
  // Prefect: src/prefect/server/api/dependencies.py LimitBody.get_limit (both 422 messages verbatim)
  function limitOf(limit: number | null | undefined): number {
    const n = limit ?? defaultLimit;
    if (!(n >= 0)) throw new HttpReply(422, { detail: 'Invalid limit: must be greater than or equal to 0.' });
    if (n > defaultLimit) throw new HttpReply(422, { detail: `Invalid limit: must be less than or equal to ${defaultLimit}.` });
    return n;
  }

  function route(method: string, path: string, body: unknown, query: URLSearchParams): HttpReply {
    if (path === '/csrf-token' && method === 'GET') {
      // Prefect: src/prefect/server/api/csrf_token.py create_csrf_token (422 when disabled; `client` Query required)
      if (!opts.csrf) return new HttpReply(422, { detail: 'CSRF protection is disabled.' });
      const client = query.get('client');
      if (!client) {
        return new HttpReply(422, {
          exception_message: 'Invalid request received.',
          exception_detail: [{ type: 'missing', loc: ['query', 'client'], msg: 'Field required', input: null }],
          request_body: null,
        });
      }
      const token = randomBytes(16).toString('hex');
      csrfTokens.set(client, token);
      const created = nowIso();
      return new HttpReply(200, { id: randomUUID(), created, updated: created, token, client, expiration: new Date(Date.now() + 3_600_000).toISOString() });
    }
    const parts = path.split('/').filter(Boolean);
    const [root, a, b, c] = parts;

    if (root === 'deployments') {
      // Prefect: src/prefect/server/api/deployments.py read_deployment_by_name (404 "Deployment not found")
      if (method === 'GET' && a === 'name' && parts.length === 4 && b && c) {
        const flowName = decodeURIComponent(b);
        const depName = decodeURIComponent(c);
        for (const dep of deployments.values()) {
          if (dep.flow_name === flowName && dep.name === depName) return new HttpReply(200, deploymentJson(dep));
        }
        return notFound('Deployment not found');
      }
      // Prefect: src/prefect/server/api/deployments.py read_deployment
      if (method === 'GET' && parts.length === 2) return new HttpReply(200, deploymentJson(getDeployment(a)));
      if (method === 'POST' && b === 'create_flow_run' && parts.length === 3) {
        const dep = getDeployment(a);
        const input = parseBody(createSchema, body, { required: true }) as z.infer<typeof deploymentFlowRunCreate>; // Prefect: `flow_run: DeploymentFlowRunCreate` has no default: a body is required
        const paramSchema = deploymentSchemas.get(dep.id);
        // 409 "Error creating flow run: …"; the run's enforce_parameter_schema overrides the deployment's.
        // Prefect: src/prefect/server/api/deployments.py create_flow_run_from_deployment (validate → HTTP_409_CONFLICT)
        if (paramSchema && input.enforce_parameter_schema !== false) {
          const params = { ...dep.parameters, ...(input.parameters ?? {}) };
          for (const key of paramSchema.required ?? []) {
            if (!(key in params)) return new HttpReply(409, { detail: `Error creating flow run: Validation failed for field '${key}'. Failure reason: '${key}' is a required property` });
          }
          for (const [key, prop] of Object.entries(paramSchema.properties ?? {})) {
            const v = params[key];
            const ok = v === undefined || !prop.type || (prop.type === 'integer' ? Number.isInteger(v) : prop.type === 'array' ? Array.isArray(v) : prop.type === 'object' ? typeof v === 'object' && v !== null && !Array.isArray(v) : typeof v === prop.type);
            if (!ok) return new HttpReply(409, { detail: `Error creating flow run: Validation failed for field '${key}'. Failure reason: ${JSON.stringify(v)} is not of type '${prop.type}'` });
          }
        }
        // Prefect: src/prefect/server/models/flow_runs.py create_flow_run (on_conflict_do_nothing, re-read by
        // flow_id + idempotency_key); api/deployments.py create_flow_run_from_deployment 201 only if model.created >= now
        if (input.idempotency_key) {
          const existing = idempotency.get(`${dep.flow_id}\0${input.idempotency_key}`);
          const run = existing ? flowRuns.get(existing) : undefined;
          if (run) return new HttpReply(200, flowRunJson(run));
        }
        const run = newFlowRun(dep, {
          name: input.name,
          state: input.state ? { type: input.state.type, name: input.state.name ?? undefined, message: input.state.message ?? undefined } : null,
          parameters: input.parameters,
          context: input.context,
          tags: input.tags,
          jobVariables: input.job_variables,
          idempotencyKey: input.idempotency_key,
          workQueueName: input.work_queue_name,
        });
        return new HttpReply(201, flowRunJson(run));
      }
      // Prefect: src/prefect/server/api/deployments.py read_deployment_schedules
      if (method === 'GET' && b === 'schedules' && parts.length === 3) {
        return new HttpReply(200, getDeployment(a).schedules.map((s) => ({ ...s })));
      }
      // Prefect: src/prefect/server/api/deployments.py update_deployment_schedule (`/{id:uuid}/schedules/{schedule_id:uuid}`,
      // 204; 404 "Deployment not found." / "Schedule not found."; then _delete_scheduled_runs(auto_scheduled_only=True, future_only=True))
      if (method === 'PATCH' && b === 'schedules' && parts.length === 4) {
        if (!isUuid(a) || !isUuid(c)) return notFound();
        const update = parseBody(scheduleUpdate, body, { required: true });
        const dep = deployments.get(a);
        if (!dep) return notFound('Deployment not found.');
        const sched = dep.schedules.find((s) => s.id === c);
        if (!sched) return notFound('Schedule not found.');
        // model_dump(exclude_none=True): None leaves a field alone; `parameters` is never None.
        // Prefect: src/prefect/server/models/deployments.py update_deployment_schedule (exclude={"replaces"})
        if (update.active != null) sched.active = update.active;
        if (update.schedule != null) sched.schedule = update.schedule;
        if (update.max_scheduled_runs != null) sched.max_scheduled_runs = update.max_scheduled_runs;
        sched.parameters = update.parameters;
        if (update.slug != null) sched.slug = update.slug;
        sched.updated = nowIso();
        deleteUnstartedScheduledRuns(dep, { futureOnly: true });
        return new HttpReply(204, undefined);
      }
      // Prefect: src/prefect/server/api/deployments.py pause_deployment / resume_deployment (return None → 200 `null`;
      // pause calls _delete_scheduled_runs(auto_scheduled_only=True), not future_only)
      if (method === 'POST' && (b === 'pause_deployment' || b === 'resume_deployment') && parts.length === 3) {
        const dep = getDeployment(a);
        dep.paused = b === 'pause_deployment';
        if (dep.paused) deleteUnstartedScheduledRuns(dep, { futureOnly: false });
        dep.updated = nowIso();
        return new HttpReply(200, null);
      }
      return notFound();
    }

    if (root === 'flow_runs') {
      // Prefect: src/prefect/server/api/flow_runs.py read_flow_runs
      if (method === 'POST' && a === 'filter' && parts.length === 2) {
        const input = parseBody(flowRunsFilterBody, body);
        const n = limitOf(input.limit);
        const rows = sortRows([...flowRuns.values()].filter((r) => matchesFlowRun(r, input)), input.sort);
        return new HttpReply(200, rows.slice(input.offset, input.offset + n).map(flowRunJson));
      }
      if (method === 'POST' && b === 'set_state' && parts.length === 3) {
        if (!isUuid(a)) return notFound();
        const run = flowRuns.get(a);
        const input = parseBody(setStateBody, body);
        if (!run) return notFound('Flow run not found');
        // Prefect: src/prefect/server/orchestration/core_policy.py HandleFlowTerminalStateTransitions. The real rule
        // only ABORTs terminal → CANCELLING/PAUSED/CRASHED and REJECTs leaving a COMPLETED state with a persisted
        // result; other departures (e.g. a retry to SCHEDULED/RUNNING) are allowed. This fake is stricter, and its reason text is its own.
        if (TERMINAL.has(run.state_type) && !input.force) {
          return new HttpReply(200, {
            status: 'REJECT',
            state: { ...run.state },
            details: { type: 'reject_details', reason: `This run is in terminal state ${run.state_type} and cannot transition.` },
          });
        }
        applyState(run, { type: input.state.type, ...(input.state.name ? { name: input.state.name } : {}), ...(input.state.message ? { message: input.state.message } : {}) });
        if (run.state_type !== 'SCHEDULED') run.next_scheduled_start_time = null;
        // Prefect: src/prefect/server/api/flow_runs.py set_flow_run_state (201 when the resulting state is new)
        return new HttpReply(201, { status: 'ACCEPT', state: { ...run.state }, details: { type: 'accept_details' } });
      }
      // Prefect: src/prefect/server/api/flow_runs.py read_flow_run (404 "Flow run not found")
      if (method === 'GET' && parts.length === 2) {
        if (!isUuid(a)) return notFound();
        const run = flowRuns.get(a);
        if (!run) return notFound('Flow run not found');
        const script = scripts.get(run.id);
        const next = script?.shift();
        if (next) applyState(run, next);
        return new HttpReply(200, flowRunJson(run));
      }
      return notFound();
    }

    if (root === 'task_runs') {
      // Prefect: src/prefect/server/api/task_runs.py read_task_runs
      if (method === 'POST' && a === 'filter' && parts.length === 2) {
        const input = parseBody(taskRunsFilterBody, body);
        if (input.flows || input.flow_runs || input.deployments) {
          throw new HttpReply(501, { detail: 'fake-prefect: only task_runs filters are implemented on /task_runs/filter' });
        }
        const f = input.task_runs;
        if (f?.operator === 'or_') throw new HttpReply(501, { detail: 'fake-prefect: the or_ operator is not supported by this fake' });
        const rows = [...taskRuns.values()].filter((tr) => {
          if (!f) return true;
          if (f.id?.any_ && !f.id.any_.includes(tr.id)) return false;
          if (f.name?.any_ && !f.name.any_.includes(tr.name)) return false;
          if (f.flow_run_id?.any_ && !f.flow_run_id.any_.includes(tr.flow_run_id)) return false;
          if (f.state?.type?.any_ && !f.state.type.any_.includes(tr.state_type)) return false;
          if (f.state?.name?.any_ && !f.state.name.any_.includes(tr.state_name)) return false;
          return true;
        });
        const n = limitOf(input.limit);
        const sorted = sortRows(rows, input.sort);
        return new HttpReply(200, sorted.slice(input.offset, input.offset + n).map((tr) => ({ ...tr, state: { ...tr.state } })));
      }
      return notFound();
    }

    return notFound();
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  function send(res: ServerResponse, reply: HttpReply): void {
    const headers: Record<string, string> = { ...reply.headers };
    let payload = '';
    if (reply.body !== undefined && reply.status !== 204) {
      payload = JSON.stringify(reply.body);
      headers['content-type'] = 'application/json';
    }
    res.writeHead(reply.status, headers);
    res.end(payload);
  }

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const method = req.method ?? 'GET';
      const fullPath = url.pathname;
      const raw = await readBody(req);
      let body: unknown;
      let bodyError = false;
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw);
        } catch {
          bodyError = true;
          body = raw;
        }
      }
      const header = req.headers.authorization;
      const authScheme = header ? (header.split(' ')[0] ?? null) : null;
      const authorized =
        authMode === 'none' ||
        (authMode === 'bearer' && header === `Bearer ${apiKey}`) ||
        (authMode === 'basic' && basicMatches(header, authString));
      const csrfToken = req.headers['prefect-csrf-token'];
      const csrfClient = req.headers['prefect-csrf-client'];
      const path = fullPath.startsWith('/api/') ? fullPath.slice(4) : fullPath;
      const entry: FakeRequest = { method, path, body, status: 0, authorized, authScheme, csrf: csrfToken !== undefined && csrfClient !== undefined };
      requests.push(entry);

      const reply = (r: HttpReply): void => {
        entry.status = r.status;
        send(res, r);
      };

      if (!fullPath.startsWith('/api/')) return reply(notFound());
      // Prefect: src/prefect/server/api/server.py token_validation (basic: 401 {"exception_message": "Unauthorized"});
      // the bearer 401 body is Prefect Cloud's (not in the OSS server source)
      if (!authorized) {
        return reply(
          authMode === 'basic'
            ? new HttpReply(401, { exception_message: 'Unauthorized' })
            : new HttpReply(401, { detail: 'Invalid authentication credentials' }),
        );
      }
      // Prefect: src/prefect/server/api/middleware.py CsrfMiddleware.dispatch (messages, 403, Access-Control-Allow-Origin on invalid)
      if (opts.csrf && ['POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) {
        if (typeof csrfToken !== 'string') return reply(new HttpReply(403, { detail: 'Missing CSRF token.' }));
        if (typeof csrfClient !== 'string') return reply(new HttpReply(403, { detail: 'Missing client identifier.' }));
        if (csrfTokens.get(csrfClient) !== csrfToken) {
          return reply(new HttpReply(403, { detail: 'Invalid CSRF token or client identifier.' }, { 'access-control-allow-origin': '*' }));
        }
      }

      const failure = failures.find((f) => f.left > 0 && f.match(method, path));
      if (failure) {
        failure.left -= 1;
        switch (failure.kind) {
          // Test-injected, not a server rule; the client's Retry-After handling: src/prefect/client/base.py
          case '429':
            return reply(new HttpReply(429, { detail: 'Rate limit exceeded' }, { 'retry-after': failure.retryAfter }));
          case '500':
            return reply(new HttpReply(500, { exception_message: 'Internal Server Error' }));
          case '503':
            return reply(new HttpReply(503, { detail: 'Service Unavailable' }));
          case 'timeout':
            entry.status = 'timeout'; // never answer; the client's timeout or close() ends it
            return;
          case 'reset':
            entry.status = 'reset';
            req.socket.destroy();
            return;
        }
      }

      // Invalid JSON: FastAPI's json_invalid error through src/prefect/server/api/server.py validation_exception_handler
      if (bodyError) {
        return reply(
          new HttpReply(422, {
            exception_message: 'Invalid request received.',
            exception_detail: [{ type: 'json_invalid', loc: ['body', 0], msg: 'JSON decode error', input: {} }],
            request_body: raw,
          }),
        );
      }
      try {
        reply(route(method, path, body, url.searchParams));
      } catch (err) {
        if (err instanceof HttpReply) return reply(err);
        reply(new HttpReply(500, { exception_message: 'Internal Server Error', fake_error: String(err) }));
      }
    })();
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const fake: FakePrefect = {
    apiUrl: `http://127.0.0.1:${port}/api`,
    apiKey,
    authString,
    state: { flows, deployments, flowRuns, taskRuns, requests },

    expireCsrfTokens() {
      csrfTokens.clear();
    },

    flushTaskRuns() {
      for (const [id, tr] of delayedTaskRuns) taskRuns.set(id, tr);
      delayedTaskRuns.clear();
    },

    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await closed;
    },

    addDeployment(input) {
      const flow = flowFor(input.flowName);
      const id = (input.id ?? randomUUID()).toLowerCase();
      const created = nowIso();
      const dep: FakeDeployment = {
        id,
        created,
        updated: created,
        name: input.name,
        flow_id: flow.id,
        flow_name: flow.name,
        paused: false,
        status: 'READY',
        tags: input.tags ?? [],
        parameters: {},
        work_pool_name: 'default',
        work_queue_name: 'default',
        schedules: [],
        ...(input.runScript ? { runScript: input.runScript } : {}),
      };
      dep.schedules = (input.schedules ?? [{}]).map((s) => ({
        id: randomUUID(),
        created,
        updated: created,
        deployment_id: id,
        schedule: s.schedule ?? { cron: '0 2 * * *', timezone: 'UTC', day_or: true },
        active: s.active ?? true,
        max_scheduled_runs: s.maxScheduledRuns ?? null,
        parameters: s.parameters ?? {},
        slug: s.slug ?? null,
      }));
      deployments.set(id, dep);
      if (input.parameterSchema) deploymentSchemas.set(id, input.parameterSchema);
      return dep;
    },

    addFlowRun(deploymentId, input = {}) {
      const dep = deployments.get(deploymentId);
      if (!dep) throw new Error(`fake-prefect: no deployment ${deploymentId}`);
      const expected = input.expectedStartTime;
      const expectedIso = expected === undefined ? undefined : typeof expected === 'string' ? new Date(expected).toISOString() : expected.toISOString();
      if (input.scheduleId !== undefined && !dep.schedules.some((s) => s.id === input.scheduleId)) {
        throw new Error(`fake-prefect: deployment ${deploymentId} has no schedule ${input.scheduleId}`);
      }
      return newFlowRun(dep, {
        name: input.name,
        state: input.state,
        // Prefect 3's scheduler keys its runs 'scheduled <deployment> <schedule> <time>'.
        // Prefect: src/prefect/server/models/deployments.py _generate_scheduled_flow_runs (auto_scheduled=True)
        idempotencyKey: input.idempotencyKey ?? (input.scheduleId !== undefined ? `scheduled ${dep.id} ${input.scheduleId} ${expectedIso ?? nowIso()}` : undefined),
        ...(input.scheduleId !== undefined ? { scheduleId: input.scheduleId } : {}),
        ...(expectedIso !== undefined ? { expectedStartTime: expectedIso } : {}),
      });
    },

    addTaskRun(flowRunId, input) {
      const run = flowRuns.get(flowRunId);
      if (!run) throw new Error(`fake-prefect: no flow run ${flowRunId}`);
      const created = nowIso();
      const state = makeState(input.state ?? { type: 'PENDING' });
      // tasks.py: task_run_name = f"{self.name}-{dynamic_key[:3]}", dynamic_key = str(uuid4()).
      // Prefect: src/prefect/task_engine.py + src/prefect/_internal/engine.py dynamic_key_for_task_run(stable=False)
      const dynamicKey = randomUUID();
      const tr: FakeTaskRun = {
        id: randomUUID(),
        created,
        updated: created,
        name: input.runName ?? `${input.name}-${dynamicKey.slice(0, 3)}`,
        flow_run_id: run.id,
        task_key: input.taskKey ?? `${input.name}-${randomBytes(4).toString('hex')}`,
        dynamic_key: dynamicKey,
        state_type: state.type,
        state_name: state.name,
        state,
        tags: [],
        expected_start_time: created,
        start_time: state.type === 'RUNNING' || TERMINAL.has(state.type) ? created : null,
        end_time: TERMINAL.has(state.type) ? created : null,
      };
      (input.delayed ? delayedTaskRuns : taskRuns).set(tr.id, tr);
      return tr;
    },

    failNext(matcher, kind, count = 1, failOpts = {}) {
      failures.push({ match: compileMatcher(matcher), kind, left: count, retryAfter: failOpts.retryAfter ?? '3' });
    },

    clearFailures() {
      failures.length = 0;
    },

    advance(runId, type, name, message) {
      const run = flowRuns.get(runId);
      if (!run) throw new Error(`fake-prefect: no flow run ${runId}`);
      applyState(run, { type, ...(name !== undefined ? { name } : {}), ...(message !== undefined ? { message } : {}) });
      return run;
    },

    script(runId, steps) {
      if (!flowRuns.has(runId)) throw new Error(`fake-prefect: no flow run ${runId}`);
      scripts.set(runId, [...steps]);
    },

    requestsTo(matcher) {
      const match = compileMatcher(matcher);
      return requests.filter((r) => match(r.method, r.path));
    },
  };
  return fake;
}

function basicMatches(header: string | undefined, authString: string): boolean {
  // api/server.py token_validation: split(), scheme must be Basic, base64-decoded must equal.
  if (!header) return false;
  const parts = header.split(/\s+/);
  if (parts.length !== 2 || parts[0] !== 'Basic') return false;
  try {
    return Buffer.from(parts[1] ?? '', 'base64').toString('utf8') === authString;
  } catch {
    return false;
  }
}
