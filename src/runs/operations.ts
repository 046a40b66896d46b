/**
 * Run write operations the API, CLI and producer client share: trigger a run, report its state.
 * Each takes a Queryable already inside a transaction (the caller's own, or one opened for it), so
 * a run row and its dispatch job are created together or not at all. Flows: src/flows/operations.ts.
 */
import type { PgBoss } from 'pg-boss';
import { bossDb, dbNow, type Queryable } from '../db/client.ts';
import { runInsertTriggered } from './store-insert.ts';
import type { RunRow, TaskInput } from '../types.ts';
import { STATE_TYPES } from '../types.ts';
import { requireFlow } from '../queries/flows.ts';
import { checkParametersSize } from '../flows/spec.ts';
import { QUEUES, sendJob } from '../queue/catalog.ts';
import { applyTransition, type TransitionDeps } from './service.ts';
import { isStateType } from './states.ts';
import { UserInputError } from '../errors.ts';
import { DISPATCH_CHANNEL } from '../db/listen.ts';
import { DEFAULTS } from '../config.ts';

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
  if (parameters === null || typeof parameters !== 'object' || Array.isArray(parameters)) {
    throw new UserInputError('parameters must be a JSON object, e.g. {"date": "2026-01-01"}');
  }
  checkParametersSize(parameters, options.maxParametersBytes ?? DEFAULTS.maxParametersBytes, `trigger of flow '${flowName}'`);
  if (options.idempotencyKey !== undefined && (options.idempotencyKey.length === 0 || options.idempotencyKey.length > 200)) {
    throw new UserInputError('idempotencyKey must be 1 to 200 characters');
  }
  if (options.scheduledFor && Number.isNaN(options.scheduledFor.getTime())) {
    throw new UserInputError('scheduledFor is not a valid date; use ISO 8601, e.g. 2026-11-22T10:00:00Z');
  }
  const flow = await requireFlow(tx, flowName);
  const scheduledFor = options.scheduledFor ?? (await dbNow(tx));
  const { id, created } = await runInsertTriggered(tx, {
    flowId: flow.id,
    scheduledFor,
    parameters,
    idempotencyKey: options.idempotencyKey ?? null,
    origin: options.origin ?? 'api',
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
  if (!isStateType(state)) {
    throw new UserInputError(`unknown state '${state}': use one of ${STATE_TYPES.join(', ')}`);
  }
  for (const [i, t] of (options.tasks ?? []).entries()) {
    if (!t || typeof t.name !== 'string' || !t.name || !isStateType(String(t.stateType))) {
      throw new UserInputError(`tasks[${i}]: each task needs a name and a stateType (${STATE_TYPES.join(', ')})`);
    }
  }
  const { run } = await applyTransition(fx, tx, {
    runId,
    to: state,
    name: options.name,
    message: options.message ?? null,
    tasks: options.tasks,
  });
  return run;
}
