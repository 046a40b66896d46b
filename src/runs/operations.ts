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
import { checkParametersSize } from '../flows/spec.ts';
import { parseInput } from '../util/input.ts';
import { QUEUES, sendJob } from '../queue/catalog.ts';
import { applyTransition, type TransitionDeps } from './service.ts';
import { DISPATCH_CHANNEL } from '../db/listen.ts';
import { DEFAULTS } from '../config.ts';
import { RUN_ORIGINS } from '../schema/enums.ts';

/** A trigger's parameters: the API's body and the producer client's arguments share the rule. */
export const RunParameters = z.record(z.string(), z.unknown(), { error: 'must be a JSON object, e.g. {"date": "2026-01-01"}' });
/** A trigger's idempotency key (API and producer client). */
export const IdempotencyKey = z.string({ error: 'must be a string' }).min(1, 'must be 1 to 200 characters').max(200, 'must be 1 to 200 characters');

/** triggerRunTx's arguments, checked whoever calls it (the API checks its body first, with the same rules). */
const TriggerInput = z.object({
  flowName: z.string({ error: 'must be a string (the name of the flow)' }).min(1, 'must not be empty'),
  parameters: RunParameters,
  idempotencyKey: IdempotencyKey.optional(),
  scheduledFor: z.date({ error: 'must be a valid Date, e.g. new Date("2026-11-22T10:00:00Z")' }).optional(),
  origin: z.enum(RUN_ORIGINS).extract(['manual', 'api'], { error: "must be 'manual' or 'api'" }).optional(),
});

const STATE_LIST = `one of ${STATE_TYPES.join(', ')}`;
const TEXT_MAX = 10_000;

/** A state report: POST /api/runs/:id/state's body, and the producer client's reportRunState. */
export const ReportInput = z
  .object({
    state: z.enum(STATE_TYPES, { error: `must be ${STATE_LIST}` }),
    name: z.string({ error: 'must be a string (a state name, e.g. Retrying)' }).min(1, 'must not be empty').max(64, 'must be at most 64 characters').optional(),
    message: z.string({ error: 'must be a string' }).max(TEXT_MAX, `must be at most ${TEXT_MAX} characters`).optional(),
    tasks: z
      .array(z.object({
        name: z.string({ error: 'must be a string (every task needs a name)' }).min(1, 'must not be empty'),
        stateType: z.enum(STATE_TYPES, { error: `must be ${STATE_LIST}` }),
        message: z.string({ error: 'must be a string or null' }).max(TEXT_MAX, `must be at most ${TEXT_MAX} characters`).nullish(),
      }).strict(), { error: 'must be a list of {name, stateType, message?}' })
      .max(1000, 'at most 1000 tasks per report; send the rest in another report')
      .optional(),
  })
  .strict();

/** reportRunStateTx's arguments: the report and the run it is for. */
const ReportArgs = ReportInput.extend({ runId: z.uuid({ error: 'not a run id (runs are named by a UUID)' }) });

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
  const input = parseInput(TriggerInput, { flowName, parameters, idempotencyKey: options.idempotencyKey, scheduledFor: options.scheduledFor, origin: options.origin }, '', 'trigger');
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
  const input = parseInput(ReportArgs, { runId, state, name: options.name, message: options.message, tasks: options.tasks }, '', 'state report');
  const { run } = await applyTransition(fx, tx, {
    runId,
    to: input.state,
    name: input.name,
    message: input.message ?? null,
    tasks: input.tasks,
  });
  return run;
}
