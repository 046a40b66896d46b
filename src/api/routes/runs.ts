/**
 * Runs: list (filters, cursor pages), show (state history, task results), trigger, cancel, and
 * the state reports of asynchronous targets.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApiContext } from '../context.ts';
import { readDb } from '../reads.ts';
import { reportTokenValid } from '../../security/keys.ts';
import { route, type ApiDocs } from '../openapi.ts';
import { badCursor, decodeCursor, pageOf } from '../validate.ts';
import { CancelBody, FlowParams, IsoTime, RunDetailJson, RunJson, RunListQuery, RunParams, page } from '../schemas.ts';
import { withTransaction, type Queryable } from '../../db/client.ts';
import { getRun, pageRuns, runHistory, runTasks } from '../../runs/read.ts';
import { IdempotencyKey, ReportInput, RunParameters, reportRunStateTx, triggerRunTx } from '../../runs/operations.ts';
import { applyLockedTransition } from '../../runs/service.ts';
import { runJson } from '../../runs/json.ts';
import { ConflictError, NotFoundError } from '../../errors.ts';

const TriggerBody = z
  .object({
    parameters: RunParameters.default({}),
    idempotencyKey: IdempotencyKey.optional(),
    scheduledFor: IsoTime.optional().describe('ISO 8601 time with a zone, e.g. 2026-01-01T09:00:00Z; default now'),
  })
  .strict();

/** scheduled_for with microseconds as pageRuns prints it (the runs cursor carries it verbatim). */
const PG_TIMESTAMPTZ = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** A run with its state history and task results (GET /api/runs/:id, admin run page). */
export async function runDetail(ctx: { pool: Queryable }, id: string) {
  const run = await getRun(ctx.pool, id);
  if (!run) throw new NotFoundError(`run ${id} not found`);
  const [history, tasks] = await Promise.all([runHistory(ctx.pool, run.id), runTasks(ctx.pool, run.id)]);
  return { ...runJson(run), history, tasks };
}

export function runRoutes(ctx: ApiContext, docs: ApiDocs) {
  const auth = { adminToken: ctx.config.adminToken, readToken: ctx.config.readToken };
  return async (app: FastifyInstance) => {
    route(app, docs, auth, {
      method: 'GET', url: '/runs', scope: 'read', tag: 'runs', summary: 'List runs, newest scheduled first, with filters',
      query: RunListQuery,
      responses: { 200: { description: 'a page of runs', schema: page(RunJson) } },
    }, async ({ query, req }) => {
      const after = decodeCursor(query.cursor, ['string', 'string'] as const);
      if (after && !(PG_TIMESTAMPTZ.test(after[0]) && z.uuid().safeParse(after[1]).success)) throw badCursor();
      const rows = await pageRuns(readDb(req, ctx.pool), { flowName: query.flow, stateTypes: query.state, since: query.since, until: query.until, upcoming: query.upcoming, after, limit: query.limit + 1 });
      return pageOf(rows, query.limit, (r) => [r.sortKey, r.id], runJson);
    });

    route(app, docs, auth, {
      method: 'GET', url: '/runs/:id', scope: 'read', tag: 'runs', summary: 'Show a run with its state history and task results',
      params: RunParams, errors: { 404: 'no such run' },
      responses: { 200: { description: 'the run', schema: RunDetailJson } },
    }, async ({ params, req }) => runDetail({ pool: readDb(req, ctx.pool) }, params.id));

    route(app, docs, auth, {
      method: 'POST', url: '/runs/:id/cancel', scope: 'operate', tag: 'runs', summary: 'Cancel a run that has not been dispatched yet (SCHEDULED → CANCELLED)',
      description: 'Only a SCHEDULED run (Scheduled or Late) can be cancelled; its queued dispatch job then finds it no longer SCHEDULED and does nothing.',
      params: RunParams, body: CancelBody, errors: { 404: 'no such run', 409: 'the run is already dispatched or finished' },
      responses: { 200: { description: 'cancelled', schema: RunJson } },
    }, async ({ params, body }) => {
      const run = await withTransaction(ctx.pool, async (tx) => {
        const current = await getRun(tx, params.id, { forUpdate: true });
        if (!current) throw new NotFoundError(`run ${params.id} not found`);
        if (current.stateType !== 'SCHEDULED') {
          throw new ConflictError(`run ${current.id} is ${current.stateType}/${current.stateName}: only a run not yet dispatched (SCHEDULED) can be cancelled`);
        }
        const { run } = await applyLockedTransition(ctx.transitions, tx, current, {
          to: 'CANCELLED',
          name: 'Cancelled',
          message: body.reason ? `cancelled via API: ${body.reason}` : 'cancelled via API',
        });
        return run;
      });
      return runJson(run);
    });

    // Asynchronous targets report state here: with the operate token, or the run-scoped token
    // they received in the run request (reportToken).
    route(app, docs, auth, {
      method: 'POST', url: '/runs/:id/state', scope: 'operate', tag: 'runs',
      // Checked in the auth hook, before the body is read (docs/api.md): a bad token is a 403 whatever the body.
      allowRunToken: async (req, token) => {
        const id = (req.params as { id?: string }).id ?? '';
        return z.uuid().safeParse(id).success && (await reportTokenValid(ctx.pool, id, token));
      },
      summary: "Report a run's state (async targets; operate token or the run's own report token)",
      params: RunParams, body: ReportInput, errors: { 404: 'no such run', 409: 'invalid state transition' },
      responses: { 200: { description: 'the run after the transition', schema: RunJson } },
    }, async ({ params, body }) => {
      const run = await withTransaction(ctx.pool, (tx) =>
        reportRunStateTx(ctx.transitions, tx, params.id, body.state, { name: body.name, message: body.message, tasks: body.tasks }),
      );
      return runJson(run);
    });

    route(app, docs, auth, {
      method: 'POST', url: '/flows/:name/runs', scope: 'operate', tag: 'runs', summary: 'Trigger a run of a flow (idempotent with idempotencyKey)',
      params: FlowParams, body: TriggerBody, errors: { 404: 'no such flow', 409: "the idempotencyKey is held by another flow's run" },
      responses: { 201: { description: 'created', schema: RunJson }, 200: { description: 'the existing run for this idempotencyKey', schema: RunJson } },
    }, async ({ params, body, reply }) => {
      const result = await withTransaction(ctx.pool, (tx) =>
        triggerRunTx(ctx.boss, tx, params.name, body.parameters, {
          idempotencyKey: body.idempotencyKey,
          scheduledFor: body.scheduledFor,
          origin: 'api',
          maxParametersBytes: ctx.config.maxParametersBytes,
        }),
      );
      const run = await getRun(ctx.pool, result.runId);
      return reply.code(result.created ? 201 : 200).send(runJson(run!));
    });
  };
}
