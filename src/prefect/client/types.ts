/** The client's interface and inputs (the calls flowwarden makes; see ./index.ts). */
import type { KyInstance } from 'ky';
import type { PrefectStateType } from './states.ts';
import type { PrefectDeployment, PrefectDeploymentSchedule, PrefectFlowRun, PrefectState, PrefectTaskRun } from './schemas.ts';

/**
 * Prefect's default page cap: a `limit` above the server's PREFECT_SERVER_API_DEFAULT_LIMIT (default
 * 200) is answered 422 `{"detail": "Invalid limit: must be less than or equal to N."}`. The client
 * starts from its configured page size and adopts a lower N when the server names one.
 */
export const PREFECT_MAX_LIMIT = 200;
/** Largest page size flowwarden will ask for (a server may raise its cap above 200). */
export const PREFECT_PAGE_SIZE_MAX = 1000;

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

export type Instant = Date | string;

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
