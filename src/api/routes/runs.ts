import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApiContext } from '../server.ts';
import { requireScope, bearer, scopeOf, runReportToken } from '../auth.ts';
import { withTransaction } from '../../db/client.ts';
import { getRun, runHistory, runTasks } from '../../queries/runs.ts';
import { reportRunStateTx, triggerRunTx } from '../../producers/operations.ts';
import { runJson } from '../../runs/json.ts';
import { NotFoundError, UserInputError } from '../../errors.ts';
import { formatIssues } from '../../flows/spec.ts';
import { STATE_TYPES } from '../../runs/states.ts';

const ReportBody = z
  .object({
    state: z.enum(STATE_TYPES),
    name: z.string().min(1).max(64).optional(),
    message: z.string().max(10_000).optional(),
    tasks: z
      .array(z.object({ name: z.string().min(1), stateType: z.enum(STATE_TYPES), message: z.string().max(10_000).optional() }).strict())
      .max(1000)
      .optional(),
  })
  .strict();

const TriggerBody = z
  .object({
    parameters: z.record(z.string(), z.unknown()).default({}),
    idempotencyKey: z.string().min(1).max(200).optional(),
    scheduledFor: z.coerce.date().optional(),
  })
  .strict();

function parse<T>(schema: z.ZodType<T>, body: unknown, where: string): T {
  const r = schema.safeParse(body ?? {});
  if (!r.success) {
    const details = formatIssues(r.error.issues, where);
    throw new UserInputError(`invalid ${where}: ${details.join('; ')}`, details);
  }
  return r.data;
}

const uuid = z.string().uuid();

export function runRoutes(ctx: ApiContext) {
  const auth = { adminToken: ctx.config.adminToken, readToken: ctx.config.readToken };
  return async (app: FastifyInstance) => {
    app.get<{ Params: { id: string } }>('/runs/:id', { preHandler: requireScope(auth, 'read') }, async (req) => {
      if (!uuid.safeParse(req.params.id).success) throw new UserInputError(`'${req.params.id}' is not a run id (a UUID)`);
      const run = await getRun(ctx.pool, req.params.id);
      if (!run) throw new NotFoundError(`run ${req.params.id} not found`);
      return { ...runJson(run), history: await runHistory(ctx.pool, run.id), tasks: await runTasks(ctx.pool, run.id) };
    });

    // Asynchronous targets report state here: with the operate token, or the run-scoped token
    // they received in the run request (reportToken).
    app.post<{ Params: { id: string } }>('/runs/:id/state', { preHandler: requireScope(auth, 'operate') }, async (req, reply) => {
      const token = bearer(req);
      if (!scopeOf(token, auth)) {
        // A run-scoped token: signed with the flow's http secret (or the global one).
        const owner = uuid.safeParse(req.params.id).success
          ? await ctx.pool.query<{ secret: string | null }>(
              `select f.target->>'secret' as secret from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where r.id = $1`,
              [req.params.id],
            )
          : { rows: [] };
        const secret = owner.rows[0]?.secret ?? ctx.config.httpSecret;
        if (!secret || token !== runReportToken(req.params.id, secret)) {
          return reply.code(403).send({ error: 'forbidden', message: 'this token may not report state for this run' });
        }
      }
      if (!uuid.safeParse(req.params.id).success) throw new UserInputError(`'${req.params.id}' is not a run id (a UUID)`);
      const body = parse(ReportBody, req.body, 'state report');
      const run = await withTransaction(ctx.pool, (tx) =>
        reportRunStateTx(ctx.boss, tx, req.params.id, body.state, { name: body.name, message: body.message, tasks: body.tasks }),
      );
      return runJson(run);
    });

    app.post<{ Params: { name: string } }>('/flows/:name/runs', { preHandler: requireScope(auth, 'operate') }, async (req, reply) => {
      const body = parse(TriggerBody, req.body, 'trigger request');
      const result = await withTransaction(ctx.pool, (tx) =>
        triggerRunTx(ctx.boss, tx, req.params.name, body.parameters, {
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
