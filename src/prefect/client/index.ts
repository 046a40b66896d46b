/**
 * A small typed client for the Prefect 2/3 REST API: the calls flowwarden needs to launch a flow run
 * from a deployment, watch it, and switch deployment schedules off and on. `apiUrl` is the API
 * root: `<server>/api` self-hosted, or `https://api.prefect.cloud/api/accounts/{a}/workspaces/{w}`.
 * Transport and error classification: ./transport.ts; design notes: docs/internals.md, "Prefect".
 */
import { z } from 'zod';
import { UserInputError } from '../../errors.ts';
import { isUuid, normalizeUuid, prefectDeploymentScheduleSchema, prefectDeploymentSchema, prefectFlowRunSchema, prefectStateSchema, prefectTaskRunSchema, type PrefectDeployment } from './schemas.ts';
import { createTransport } from './transport.ts';
import type { Instant, PrefectClient, PrefectClientOptions } from './types.ts';

export * from './states.ts';
export * from './schemas.ts';
export * from './types.ts';
export { DEFAULT_RATE_LIMIT_WAIT_MS, displayApiUrl, parseLimitCap } from './transport.ts';

export function createPrefectClient(opts: PrefectClientOptions): PrefectClient {
  const transport = createTransport(opts);
  const { shownUrl } = transport;
  const deploymentCache = new Map<string, PrefectDeployment>();

  function seg(value: string): string {
    return encodeURIComponent(value);
  }

  /** A path id for Prefect's `{id:uuid}` routes: normalised, or a clear error before any request. */
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

  /** POST /deployments/{id}/pause_deployment or /resume_deployment (Prefect: api/deployments.py). */
  async function deploymentAction(id: string, action: 'pause_deployment' | 'resume_deployment', signal?: AbortSignal): Promise<void> {
    await transport.request({
      method: 'POST',
      path: `/deployments/${idOf(id, 'deployment')}/${action}`,
      notFound: `Prefect deployment '${id}' not found at ${shownUrl}: check the deployment id (prefect deployment ls)`,
      signal,
    });
  }

  const client: PrefectClient = {
    apiUrl: shownUrl,
    get pageLimit() {
      return transport.pageLimit;
    },

    async readDeployment(id, callOpts = {}) {
      const { data } = await transport.request({
        method: 'GET',
        path: `/deployments/${idOf(id, 'deployment')}`,
        schema: prefectDeploymentSchema,
        notFound: `Prefect deployment '${id}' not found at ${shownUrl}: check the deployment id (prefect deployment ls)`,
        signal: callOpts.signal,
      });
      return data;
    },

    async readDeploymentByName(flowName, deploymentName, callOpts = {}) {
      const { data } = await transport.request({
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
      const { status, data } = await transport.request({
        method: 'POST',
        path: `/deployments/${idOf(deploymentId, 'deployment')}/create_flow_run`,
        json: body,
        schema: prefectFlowRunSchema,
        notFound: `Prefect deployment '${deploymentId}' not found at ${shownUrl}: it may have been deleted; check the deployment id (prefect deployment ls)`,
        signal: callOpts.signal,
      });
      return { run: data, created: status === 201 };
    },

    async readFlowRun(id, callOpts = {}) {
      const { data } = await transport.request({
        method: 'GET',
        path: `/flow_runs/${idOf(id, 'flow run')}`,
        schema: prefectFlowRunSchema,
        notFound: `Prefect flow run '${id}' not found at ${shownUrl}`,
        signal: callOpts.signal,
      });
      return data;
    },

    async filterFlowRuns(input, callOpts = {}) {
      const page = transport.page(input.limit, input.offset);
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
      return transport.filter('/flow_runs/filter', body, z.array(prefectFlowRunSchema), callOpts.signal);
    },

    async filterTaskRuns(input, callOpts = {}) {
      const page = transport.page(input.limit, input.offset);
      const taskRuns: Record<string, unknown> = { flow_run_id: { any_: input.flowRunIds.map((id) => idOf(id, 'flow run')) } };
      if (input.stateTypes) taskRuns.state = { type: { any_: input.stateTypes } };
      return transport.filter(
        '/task_runs/filter',
        { ...page, sort: input.sort ?? 'EXPECTED_START_TIME_ASC', task_runs: taskRuns },
        z.array(prefectTaskRunSchema),
        callOpts.signal,
      );
    },

    async listDeploymentSchedules(deploymentId, callOpts = {}) {
      const { data } = await transport.request({
        method: 'GET',
        path: `/deployments/${idOf(deploymentId, 'deployment')}/schedules`,
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
      await transport.request({
        method: 'PATCH',
        path: `/deployments/${idOf(deploymentId, 'deployment')}/schedules/${idOf(schedule.id, 'schedule')}`,
        json,
        notFound: `Prefect schedule '${schedule.id}' of deployment '${deploymentId}' not found at ${shownUrl}`,
        signal: callOpts.signal,
      });
    },

    async setFlowRunState(id, state, callOpts = {}) {
      const stateBody: Record<string, unknown> = { type: state.type };
      if (state.name !== undefined) stateBody.name = state.name;
      if (state.message !== undefined) stateBody.message = state.message;
      const { data } = await transport.request({
        method: 'POST',
        path: `/flow_runs/${idOf(id, 'flow run')}/set_state`,
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

    pauseDeployment: (id, callOpts = {}) => deploymentAction(id, 'pause_deployment', callOpts.signal),
    resumeDeployment: (id, callOpts = {}) => deploymentAction(id, 'resume_deployment', callOpts.signal),
  };
  return client;
}
