/**
 * `flowwarden runs list|show|trigger`. list and show read with pg + drizzle only; trigger loads
 * pg-boss (it queues the dispatch job) when it runs.
 */
import { UserInputError, errorMessage } from '../errors.ts';
import { requireFlow } from '../queries/flows.ts';
import { getRun, pageRuns, runHistory, runTasks } from '../runs/read.ts';
import { runJson } from '../runs/json.ts';
import { isStateType } from '../runs/states.ts';
import { STATE_TYPES, type StateType } from '../types.ts';
import { parseLimit, withPool, withReadPool, type Base, type Values } from './context.ts';
import { print, printJson, printTable } from './output.ts';
import { cliCommand } from '../util/command.ts';

/** `--state FAILED,CRASHED` (any case, as the API's ?state=). */
export function parseStates(v: string | undefined): StateType[] | undefined {
  if (v === undefined) return undefined;
  const states = v.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
  const bad = states.filter((s) => !isStateType(s));
  if (states.length === 0 || bad.length > 0) {
    throw new UserInputError(`--state '${bad.join(',') || v}' is not a state type; use one or several comma-separated of ${STATE_TYPES.join(', ')}`);
  }
  return states as StateType[];
}

export async function run(base: Base, [sub, ...args]: string[], values: Values): Promise<void> {
  if (sub === 'list' || sub === undefined) {
    const stateTypes = parseStates(values.state);
    const limit = parseLimit(values.limit);
    await withReadPool(base, async (pool) => {
      // An unknown flow is an error, not an empty list (a typo would otherwise look like "no runs").
      if (values.flow !== undefined) await requireFlow(pool, values.flow);
      const runs = await pageRuns(pool, { flowName: values.flow, stateTypes, upcoming: values.upcoming, limit });
      if (values.json) return printJson(runs.map(runJson));
      printTable(runs.map(runJson), ['id', 'flow', 'scheduledFor', 'stateType', 'stateName', 'message']);
      if (!values.upcoming) print(`\nrecent, running and due runs; --upcoming also lists the runs scheduled ahead\n`);
    });
    return;
  }
  if (sub === 'show') {
    const id = args[0];
    if (!id || !/^[0-9a-f-]{36}$/i.test(id)) throw new UserInputError(`runs show needs a run ID (a UUID from ${cliCommand()} runs list)${id ? `, got '${id}'` : ''}`);
    await withPool(base, async (pool) => {
      const run = await getRun(pool, id);
      if (!run) throw new UserInputError(`run ${id} not found`);
      const history = await runHistory(pool, id);
      const tasks = await runTasks(pool, id);
      if (values.json) return printJson({ ...runJson(run), history, tasks });
      const r = runJson(run);
      print(`run ${r.id}\n  flow: ${r.flow}\n  state: ${r.stateType}/${r.stateName}${r.message ? ` — ${r.message}` : ''}\n  scheduled for: ${r.scheduledFor}\n  parameters: ${JSON.stringify(r.parameters)}\n\nhistory:\n`);
      printTable(history.map((h) => ({ at: h.at, from: h.fromType ? `${h.fromType}/${h.fromName}` : '-', to: `${h.toType}/${h.toName}`, message: h.message })), ['at', 'from', 'to', 'message']);
      if (tasks.length) {
        print('\ntasks:\n');
        printTable(tasks, ['name', 'stateType', 'message']);
      }
    });
    return;
  }
  if (sub === 'trigger') {
    const flow = args[0];
    if (!flow) throw new UserInputError('runs trigger needs a FLOW name');
    let params: Record<string, unknown> = {};
    if (values.params) {
      try {
        params = JSON.parse(values.params) as Record<string, unknown>;
      } catch (err) {
        throw new UserInputError(`--params is not valid JSON (${errorMessage(err)}); e.g. --params '{"date":"2026-11-22"}'`);
      }
    }
    const [{ IsoTime }, { startBoss }, { withTransaction }, { triggerRunTx }] = await Promise.all([
      import('../api/schemas.ts'),
      import('../queue/boss.ts'),
      import('../db/client.ts'),
      import('../runs/operations.ts'),
    ]);
    // The API's rule (IsoTime): a time without a zone would be read in this machine's zone.
    const parsedAt = values.at === undefined ? undefined : IsoTime.safeParse(values.at);
    if (parsedAt && !parsedAt.success) throw new UserInputError(`--at '${values.at}' must be an ISO 8601 time with a zone, e.g. 2026-11-22T10:00:00Z`);
    const at = parsedAt?.data;
    await withPool(base, async (pool, c) => {
      const boss = await startBoss({ connectionString: c.db.url, role: 'producer' });
      try {
        const result = await withTransaction(pool, (tx) =>
          triggerRunTx(boss, tx, flow, params, { idempotencyKey: values['idempotency-key'], scheduledFor: at, origin: 'manual', maxParametersBytes: base.config.maxParametersBytes }),
        );
        const run = await getRun(pool, result.runId);
        if (values.json) return printJson({ ...runJson(run!), created: result.created });
        print(`${result.created ? 'triggered' : 'already exists (idempotency key)'}: run ${result.runId} of ${flow}\n`);
      } finally {
        await boss.stop({ graceful: false });
      }
    });
    return;
  }
  throw new UserInputError(`unknown runs command '${sub}'; use list, show or trigger`);
}
