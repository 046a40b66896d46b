/**
 * Run write operations the API, CLI and producer client share: trigger a run, report its state.
 * Each takes a Queryable already inside a transaction (the caller's own, or one opened for it), so
 * a run row and its dispatch job are created together or not at all. Flows: src/flows/operations.ts.
 */
import type { PgBoss } from 'pg-boss';
import { z } from 'zod';
import { bossDb, dbNow, type Queryable } from '../db/client.ts';
import { runInsertTriggered } from './store-insert.ts';
import type { RunRow, TaskInput } from '../types.ts';
import { STATE_TYPES } from '../types.ts';
import { requireFlow } from '../queries/flows.ts';
import { checkParametersSize, formatIssues } from '../flows/spec.ts';
import { QUEUES, sendJob } from '../queue/catalog.ts';
import { applyTransition, type TransitionDeps } from './service.ts';
import { UserInputError } from '../errors.ts';
import { DISPATCH_CHANNEL } from '../db/listen.ts';
import { DEFAULTS } from '../config.ts';

/** What a trigger takes (the API's body and the producer client's arguments are checked by it). */
const TriggerInput = z.object({
  flowName: z.string({ error: 'the flow name must be a string' }).min(1, 'the flow name is empty'),
  parameters: z.record(z.string(), z.unknown(), { error: 'parameters must be a JSON object, e.g. {"date": "2026-01-01"}' }),
  idempotencyKey: z.string({ error: 'idempotencyKey must be a string' }).min(1, 'idempotencyKey must be 1 to 200 characters').max(200, 'idempotencyKey must be 1 to 200 characters').optional(),
  scheduledFor: z.date({ error: 'scheduledFor must be a valid Date, e.g. new Date("2026-11-22T10:00:00Z")' }).optional(),
  origin: z.enum(['manual', 'api']).optional(),
});

/** A state report: POST /api/runs/:id/state's body, and the producer client's reportRunState. */
export const ReportInput = z
  .object({
    state: z.enum(STATE_TYPES, { error: `state must be one of ${STATE_TYPES.join(', ')}` }),
    name: z.string().min(1).max(64).optional(),
    message: z.string().max(10_000).optional(),
    tasks: z
      .array(z.object({
        name: z.string({ error: 'each task needs a name' }).min(1, 'each task needs a name'),
        stateType: z.enum(STATE_TYPES, { error: `each task needs a stateType: one of ${STATE_TYPES.join(', ')}` }),
        message: z.string().max(10_000).optional(),
      }).strict(), { error: 'tasks must be a list of {name, stateType, message?}' })
      .max(1000)
      .optional(),
  })
  .strict();

function parseInput<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const details = formatIssues(r.error.issues);
  throw new UserInputError(`invalid ${what}: ${details.join('; ')}`, details);
}

export interface TriggerOptions {
  idempotencyKey?: string;
  /** When the run should start; default now. */
  scheduledFor?: Date;
  origin?: 'manual' | 'api';
  maxParametersBytes?: number;
}

export async function triggerRunTx(
  boss: PgBoss,
  tx: Queryable,
  flowName: string,
  parameters: Record<string, unknown> = {},
  options: TriggerOptions = {},
): Promise<{ runId: string; created: boolean }> {
  const input = parseInput(TriggerInput, { flowName, parameters, idempotencyKey: options.idempotencyKey, scheduledFor: options.scheduledFor, origin: options.origin }, 'trigger');
  checkParametersSize(input.parameters, options.maxParametersBytes ?? DEFAULTS.maxParametersBytes, `trigger of flow '${flowName}'`);
  const flow = await requireFlow(tx, flowName);
  const scheduledFor = input.scheduledFor ?? (await dbNow(tx));
  const { id, created } = await runInsertTriggered(tx, {
    flowId: flow.id,
    scheduledFor,
    parameters: input.parameters,
    idempotencyKey: input.idempotencyKey ?? null,
    origin: input.origin ?? 'api',
  });
  if (created) {
    await sendJob(boss, QUEUES.dispatch, { runId: id }, { id, startAfter: scheduledFor, db: bossDb(tx) });
    // Wake dispatch pools in every pod when this commits (a latency hint; polling is the floor).
    await tx.query(`select pg_notify($1, '')`, [DISPATCH_CHANNEL]);
  }
  return { runId: id, created };
}

export interface ReportOptions {
  name?: string;
  message?: string;
  tasks?: TaskInput[];
}

export async function reportRunStateTx(
  fx: TransitionDeps,
  tx: Queryable,
  runId: string,
  state: string,
  options: ReportOptions = {},
): Promise<RunRow> {
  const input = parseInput(ReportInput.extend({ runId: z.uuid({ error: 'not a run id (runs are named by a UUID)' }) }), { runId, state, name: options.name, message: options.message, tasks: options.tasks }, 'state report');
  const { run } = await applyTransition(fx, tx, {
    runId,
    to: input.state,
    name: input.name,
    message: input.message ?? null,
    tasks: input.tasks,
  });
  return run;
}
