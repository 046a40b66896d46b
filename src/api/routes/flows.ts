/**
 * Flows, their schedules and their guard history: /api/flows..., /api/guard/history.
 * Writes go through the shared operations (flows/operations.ts, runs/operations.ts, guard/operations.ts), each in
 * one transaction, so the API does exactly what the CLI and the producer client do.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApiContext } from '../context.ts';
import { readDb } from '../reads.ts';
import { route, type ApiDocs } from '../openapi.ts';
import { decodeCursor, pageByName, pageOf } from '../validate.ts';
import {
  DisableBody,
  FlowDetailJson,
  FlowJson,
  FlowListQuery,
  FlowParams,
  GuardHistoryQuery,
  HoldJson,
  NextQuery,
  PauseBody,
  ReactivateBody,
  ResumeBody,
  ScheduleJson,
  ScheduleParams,
  page,
} from '../schemas.ts';
import { dbNow, withTransaction, type Queryable } from '../../db/client.ts';
import { getScheduleByName, listSchedules, pageFlows, requireFlow, scheduleSpecOf, setScheduleEnabled, type FlowRow } from '../../queries/flows.ts';
import { openHold, pageGuardHistory, recentTerminalRuns } from '../../queries/guard.ts';
import { refuseScheduleOnWatchedFlow, upsertFlowTx } from '../../flows/operations.ts';
import { disableFlowTx, reactivateFlowTx } from '../../guard/operations.ts';
import { resolvePolicy } from '../../guard/health.ts';
import { holdJson } from '../../guard/json.ts';
import { flowJson, scheduleJson } from '../../runs/json.ts';
import { FlowInput } from '../../flows/spec.ts';
import { nextFireTimes } from '../../scheduling/fire-times.ts';
import { FAILURE_TYPES } from '../../runs/states.ts';
import { type StateType } from '../../types.ts';
import { ConflictError, NotFoundError, UserInputError } from '../../errors.ts';
import type { Config } from '../../config.ts';

/**
 * The consecutive-failures rule as it stands now: the current streak of FAILED/CRASHED runs since
 * the baseline (valid_since), counted the way the guard counts it (CANCELLED ignored), capped at
 * the threshold.
 */
export async function healthStatus(db: Queryable, flow: FlowRow, config: Pick<Config, 'maxConsecutiveFailures'>) {
  const policy = resolvePolicy(flow.health, config);
  const runs = await recentTerminalRuns(db, flow.id, flow.validSince, policy.maxConsecutiveFailures);
  let streak = 0;
  for (const r of runs) {
    if (!FAILURE_TYPES.has(r.stateType as StateType)) break;
    streak++;
  }
  return {
    maxConsecutiveFailures: policy.maxConsecutiveFailures,
    consecutiveFailures: streak,
    baseline: flow.validSince.toISOString(),
    autoDisable: policy.autoDisable,
    criticalTasks: policy.criticalTasks,
  };
}

/** A state conflict from a guard operation (already disabled, not disabled) is a 409, not a 400. */
async function requireSchedule(db: Queryable, flowName: string, scheduleName: string) {
  const flow = await requireFlow(db, flowName);
  const schedule = await getScheduleByName(db, flow.id, scheduleName);
  if (!schedule) throw new NotFoundError(`flow '${flowName}' has no schedule '${scheduleName}' (GET /api/flows/${flowName}/schedules lists them)`);
  return { flow, schedule };
}

const FlowWriteResult = z.object({ flow: FlowJson, created: z.boolean(), heldDisabled: z.array(z.string()).describe('schedules kept disabled because the guard holds the flow') });

export function flowRoutes(ctx: ApiContext, docs: ApiDocs) {
  const auth = { adminToken: ctx.config.adminToken, readToken: ctx.config.readToken };
  return async (app: FastifyInstance) => {
    route(app, docs, auth, {
      method: 'GET', url: '/flows', scope: 'read', tag: 'flows', summary: 'List flows by name',
      query: FlowListQuery,
      responses: { 200: { description: 'a page of flows', schema: page(FlowJson) } },
    }, async ({ query, req }) => {
      const after = decodeCursor(query.cursor, ['string'] as const)?.[0];
      const rows = await pageFlows(readDb(req, ctx.pool), { after, disabled: query.disabled, limit: query.limit + 1 });
      return pageOf(rows, query.limit, (f) => [f.name], (f) => flowJson(f));
    });

    route(app, docs, auth, {
      method: 'GET', url: '/flows/:name', scope: 'read', tag: 'flows', summary: 'Show a flow with its schedules, health-rule status and open guard hold',
      params: FlowParams, errors: { 404: 'no such flow' },
      responses: { 200: { description: 'the flow', schema: FlowDetailJson } },
    }, async ({ params, req }) => {
      const flow = await requireFlow(readDb(req, ctx.pool), params.name);
      const [schedules, hold, health] = await Promise.all([listSchedules(readDb(req, ctx.pool), flow.id), openHold(readDb(req, ctx.pool), flow.name, { lock: false }), healthStatus(readDb(req, ctx.pool), flow, ctx.config)]);
      return { ...flowJson(flow, schedules), healthStatus: health, openHold: hold ? holdJson(hold) : null };
    });

    route(app, docs, auth, {
      method: 'PUT', url: '/flows/:name', scope: 'operate', tag: 'flows', summary: 'Create or update a flow (and the schedules it lists) from a flow definition',
      description: 'Same shape as a flow in an apply file. `name` may be omitted; if given it must equal the path. Schedules not listed are left alone. A flow the guard holds disabled keeps its schedules disabled.',
      params: FlowParams, body: z.looseObject({}), bodyDoc: FlowInput,
      responses: { 200: { description: 'updated', schema: FlowWriteResult }, 201: { description: 'created', schema: FlowWriteResult } },
    }, async ({ params, body, reply }) => {
      if (body.name !== undefined && body.name !== params.name) {
        throw new UserInputError(`body.name ${JSON.stringify(body.name).slice(0, 130)} differs from the path's flow name '${params.name}': drop it or make them equal`);
      }
      const out = await withTransaction(ctx.pool, (tx) => upsertFlowTx(tx, { ...body, name: params.name }, { maxParametersBytes: ctx.config.maxParametersBytes }));
      const schedules = await listSchedules(ctx.pool, out.flow.id);
      return reply.code(out.created ? 201 : 200).send({
        flow: flowJson(out.flow, schedules),
        created: out.created,
        heldDisabled: out.schedules.filter((s) => s.heldDisabled).map((s) => s.schedule.name),
      });
    });

    route(app, docs, auth, {
      method: 'POST', url: '/flows/:name/disable', scope: 'operate', tag: 'flows', summary: 'Disable a flow (as the guard does): schedules off, not-yet-started scheduled runs cancelled, recorded in its guard history',
      params: FlowParams, body: DisableBody, errors: { 404: 'no such flow', 409: 'already disabled' },
      responses: { 200: { description: 'disabled', schema: z.object({ flow: FlowJson, hold: HoldJson, schedulesDisabled: z.number(), runsCancelled: z.number() }) } },
    }, async ({ params, body }) => {
      const out = await withTransaction(ctx.pool, (tx) => disableFlowTx(ctx.boss, tx, params.name, { reason: body.reason, by: body.by ?? 'api' }));
      return { flow: flowJson(out.flow), hold: holdJson(out.hold), schedulesDisabled: out.schedulesDisabled, runsCancelled: out.runsCancelled };
    });

    route(app, docs, auth, {
      method: 'POST', url: '/flows/:name/reactivate', scope: 'operate', tag: 'flows', summary: 'Reactivate a disabled flow; records who, moves the health baseline to now and re-enables the schedules the guard switched off',
      params: FlowParams, body: ReactivateBody, errors: { 404: 'no such flow', 409: 'not disabled' },
      responses: { 200: { description: 'reactivated', schema: z.object({ flow: FlowJson, hold: HoldJson.nullable(), schedulesEnabled: z.number() }) } },
    }, async ({ params, body }) => {
      const out = await withTransaction(ctx.pool, (tx) => reactivateFlowTx(ctx.boss, tx, params.name, { by: body.by }));
      return { flow: flowJson(out.flow), hold: out.hold ? holdJson(out.hold) : null, schedulesEnabled: out.schedulesEnabled };
    });

    route(app, docs, auth, {
      method: 'GET', url: '/flows/:name/guard-history', scope: 'read', tag: 'guard', summary: "A flow's disables and reactivations, newest first",
      params: FlowParams, query: GuardHistoryQuery.omit({ flow: true }), errors: { 404: 'no such flow' },
      responses: { 200: { description: 'a page of guard records', schema: page(HoldJson) } },
    }, async ({ params, query, req }) => {
      await requireFlow(readDb(req, ctx.pool), params.name); // an unknown flow is a 404, not an empty history
      const after = decodeCursor(query.cursor, ['number'] as const)?.[0];
      const rows = await pageGuardHistory(readDb(req, ctx.pool), { flowName: params.name, open: query.open, after, limit: query.limit + 1 });
      return pageOf(rows, query.limit, (h) => [h.id], holdJson);
    });

    route(app, docs, auth, {
      method: 'GET', url: '/guard/history', scope: 'read', tag: 'guard', summary: 'Every disable and reactivation, newest first',
      query: GuardHistoryQuery,
      responses: { 200: { description: 'a page of guard records', schema: page(HoldJson) } },
    }, async ({ query, req }) => {
      const after = decodeCursor(query.cursor, ['number'] as const)?.[0];
      const rows = await pageGuardHistory(readDb(req, ctx.pool), { flowName: query.flow, open: query.open, after, limit: query.limit + 1 });
      return pageOf(rows, query.limit, (h) => [h.id], holdJson);
    });

    // ------------------------------------------------------------------------------------------
    // Schedules

    route(app, docs, auth, {
      method: 'GET', url: '/flows/:name/schedules', scope: 'read', tag: 'schedules', summary: "A flow's schedules by name",
      params: FlowParams, query: FlowListQuery.omit({ disabled: true }), errors: { 404: 'no such flow' },
      responses: { 200: { description: 'a page of schedules', schema: page(ScheduleJson) } },
    }, async ({ params, query, req }) => {
      const flow = await requireFlow(readDb(req, ctx.pool), params.name);
      return pageByName(await listSchedules(readDb(req, ctx.pool), flow.id), query, scheduleJson);
    });

    route(app, docs, auth, {
      method: 'POST', url: '/flows/:name/schedules/:schedule/pause', scope: 'operate', tag: 'schedules', summary: 'Pause a schedule with a note (pausing a paused schedule updates the note)',
      params: ScheduleParams, body: PauseBody, errors: { 404: 'no such flow or schedule' },
      responses: { 200: { description: 'paused', schema: ScheduleJson } },
    }, async ({ params, body }) => {
      const s = await withTransaction(ctx.pool, async (tx) => {
        const { schedule } = await requireSchedule(tx, params.name, params.schedule);
        return setScheduleEnabled(tx, schedule.id, false, body.note, await dbNow(tx));
      });
      return scheduleJson(s);
    });

    route(app, docs, auth, {
      method: 'POST', url: '/flows/:name/schedules/:schedule/resume', scope: 'operate', tag: 'schedules', summary: 'Resume a paused schedule; the next fire time is computed from now (no catch-up for the pause)',
      params: ScheduleParams, body: ResumeBody, errors: { 400: 'the flow is watched (target.watch: true): Prefect schedules it', 404: 'no such flow or schedule', 409: 'the flow is held disabled by the guard (reactivate it instead)' },
      responses: { 200: { description: 'resumed', schema: ScheduleJson } },
    }, async ({ params, body }) => {
      const s = await withTransaction(ctx.pool, async (tx) => {
        const { flow, schedule } = await requireSchedule(tx, params.name, params.schedule);
        if (flow.disabledAt) {
          throw new ConflictError(`flow '${flow.name}' is disabled (${flow.disabledReason ?? 'no reason recorded'}): its schedules stay off until the flow is reactivated (POST /api/flows/${flow.name}/reactivate)`);
        }
        refuseScheduleOnWatchedFlow(flow, schedule.name);
        return setScheduleEnabled(tx, schedule.id, true, body.note || null, await dbNow(tx));
      });
      return scheduleJson(s);
    });

    route(app, docs, auth, {
      method: 'GET', url: '/flows/:name/schedules/:schedule/next', scope: 'read', tag: 'schedules', summary: 'The next N fire times of a schedule (whether or not it is enabled)',
      params: ScheduleParams, query: NextQuery, errors: { 404: 'no such flow or schedule' },
      responses: { 200: { description: 'fire times', schema: z.object({ flow: z.string(), schedule: z.string(), enabled: z.boolean(), timezone: z.string(), times: z.array(z.string()) }) } },
    }, async ({ params, query, req }) => {
      const { flow, schedule } = await requireSchedule(readDb(req, ctx.pool), params.name, params.schedule);
      const after = query.after ?? (await dbNow(readDb(req, ctx.pool)));
      const times = nextFireTimes(scheduleSpecOf(schedule), after, query.count);
      return { flow: flow.name, schedule: schedule.name, enabled: schedule.enabled, timezone: schedule.timezone, times: times.map((t) => t.toISOString()) };
    });
  };
}
