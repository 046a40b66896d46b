/**
 * The `flowwarden` command line. Every command exits non-zero with a one-line reason on failure
 * (`flowwarden: error: ...`), followed by detail lines when there are several problems.
 */
import { parseArgs } from 'node:util';
import { configSecrets, loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { UserInputError, errorMessage } from '../errors.ts';
import { withTransaction } from '../db/client.ts';
import { migrateAll } from '../db/migrate.ts';
import { startBoss } from '../queue/boss.ts';
import type { Role } from '../app.ts';
import { OPTIONS, parseLimit, runPod, withDb, withPool, type Ctx, type Values } from './context.ts';
import { IsoTime } from '../api/schemas.ts';
import { loadHandlersModule } from '../targets/function.ts';
import { listFlows, listSchedules, requireFlow } from '../queries/flows.ts';
import { getRun, listRuns, runHistory, runTasks } from '../queries/runs.ts';
import { triggerRunTx } from '../producers/operations.ts';
import { applyDefinitions, readDefinitions, validateDefinitions } from '../apply.ts';
import { flowJson, runJson, scheduleJson } from '../runs/json.ts';
import { printJson, printTable } from './output.ts';
import { isStateType, STATE_TYPES } from '../runs/states.ts';
import { runDev } from './dev.ts';
import { cmdQueues } from './queues.ts';
import { cmdStatus, STATUS_USAGE } from './status.ts';
import { cmdChannels, CHANNELS_USAGE } from './channels.ts';
import { guardHistory } from '../queries/guard.ts';
import { disableFlowTx, reactivateFlowTx, reactivateHint } from '../guard/operations.ts';
import { holdJson } from '../guard/json.ts';

const USAGE = `usage: flowwarden <command> [options]

  start [--role all|scheduler|worker|api] [--handlers FILE]   run a pod (roles may repeat)
  dev [--handlers FILE]                                        embedded Postgres + demo flows
  migrate                                                      apply domain and queue migrations
  apply -f FILE                                                upsert flows and schedules (YAML/JSON)
  flows list|show NAME [--json] [--limit N]
  flows disable NAME --reason TEXT [--by WHO] | reactivate NAME --by WHO [--json]
  runs list [--flow NAME] [--state TYPE] [--limit N] [--json]
  runs show ID [--json]
  runs trigger FLOW [--params JSON] [--idempotency-key KEY] [--at ISO] [--json]
  queues [--json]
${STATUS_USAGE}
${CHANNELS_USAGE}

Without DATABASE_URL every command uses the embedded Postgres under FLOWWARDEN_DATA_DIR.`;

async function cmdStart(base: Omit<Ctx, 'db'>, values: Values): Promise<void> {
  const roles = (values.role ?? ['all']) as Role[];
  for (const r of roles) {
    if (!['all', 'scheduler', 'worker', 'api'].includes(r)) throw new UserInputError(`--role '${r}' is not a role; use all, scheduler, worker or api`);
  }
  const handlers = values.handlers ?? base.config.handlersModule;
  if (handlers) await loadHandlersModule(handlers);
  await runPod(base, roles);
}

async function cmdApply(base: Omit<Ctx, 'db'>, values: Values): Promise<void> {
  if (!values.file) throw new UserInputError('apply needs -f FILE (YAML or JSON with a flows: list)');
  const flows = validateDefinitions(readDefinitions(values.file), values.file, base.config.maxParametersBytes);
  await withPool(base, async (pool) => {
    const results = await applyDefinitions(pool, flows, base.config.maxParametersBytes);
    const rows = results.flatMap((r) => [
      { kind: 'flow', name: r.flow.name, action: r.created ? 'created' : 'updated', note: r.flow.disabledAt ? `held disabled: ${r.flow.disabledReason}` : '' },
      ...r.schedules.map((s) => ({
        kind: 'schedule', name: `${r.flow.name}/${s.schedule.name}`, action: s.created ? 'created' : 'updated',
        note: s.heldDisabled ? 'kept disabled: the flow is held disabled by the guard (flowwarden flows reactivate)' : s.schedule.enabled ? `next ${s.schedule.nextRunAt?.toISOString()}` : 'disabled',
      })),
    ]);
    if (values.json) printJson(rows);
    else printTable(rows, ['kind', 'name', 'action', 'note']);
  });
}

async function cmdFlows(base: Omit<Ctx, 'db'>, sub: string | undefined, args: string[], values: Values): Promise<void> {
  if (sub === 'list' || sub === undefined) {
    await withPool(base, async (pool) => {
      const flows = await listFlows(pool, { limit: parseLimit(values.limit, 1000) });
      if (values.json) return printJson(flows.map((f) => flowJson(f)));
      printTable(flows.map((f) => ({ name: f.name, target: (f.target as { type: string }).type, disabled: f.disabledAt ? `yes: ${f.disabledReason}` : 'no', since: f.validSince })), ['name', 'target', 'disabled', 'since']);
    });
    return;
  }
  if (sub === 'show') {
    const name = args[0];
    if (!name) throw new UserInputError('flows show needs a flow NAME');
    await withPool(base, async (pool) => {
      const flow = await requireFlow(pool, name);
      const schedules = await listSchedules(pool, flow.id);
      const recent = await listRuns(pool, { flowName: name, limit: parseLimit(values.limit, 10) });
      const history = (await guardHistory(pool, flow.name)).map(holdJson);
      if (values.json) return printJson({ ...flowJson(flow, schedules), recentRuns: recent.map(runJson), guardHistory: history });
      const f = flowJson(flow);
      process.stdout.write(`flow ${f.name}\n  target: ${JSON.stringify(f.target)}\n  disabled: ${f.disabled ? `yes (${f.disabledReason})` : 'no'}\n  valid since: ${f.validSince}\n\nschedules:\n`);
      printTable(schedules.map(scheduleJson).map((s) => ({ ...s, when: s.cron ?? `every ${s.everySeconds}s` })), ['name', 'when', 'timezone', 'enabled', 'nextRunAt', 'note']);
      process.stdout.write('\nrecent runs:\n');
      printTable(recent.map(runJson), ['id', 'scheduledFor', 'stateType', 'stateName', 'message']);
      process.stdout.write('\nguard history:\n');
      printTable(
        history.map((h) => ({ ...h, reactivated: h.reactivatedAt ? `${h.reactivatedAt} by ${h.reactivatedBy}` : 'no (held)', enforced: h.enforceCount })),
        ['disabledAt', 'disabledBy', 'rule', 'reason', 'reactivated', 'enforced'],
      );
    });
    return;
  }
  if (sub === 'disable' || sub === 'reactivate') {
    const name = args[0];
    if (!name) throw new UserInputError(`flows ${sub} needs a flow NAME (flowwarden flows list)`);
    if (sub === 'disable' && !values.reason?.trim()) throw new UserInputError(`flows disable needs --reason TEXT (recorded in the flow's guard history)`);
    if (sub === 'reactivate' && !values.by?.trim()) throw new UserInputError(`flows reactivate needs --by WHO (who takes responsibility; recorded in the flow's guard history)`);
    await withPool(base, async (pool, c) => {
      const boss = await startBoss({ connectionString: c.db.url, role: 'producer' });
      try {
        if (sub === 'disable') {
          const out = await withTransaction(pool, (tx) => disableFlowTx(boss, tx, name, { reason: values.reason, by: values.by }));
          if (values.json) return printJson({ flow: flowJson(out.flow), hold: holdJson(out.hold), schedulesDisabled: out.schedulesDisabled, runsCancelled: out.runsCancelled });
          process.stdout.write(`disabled ${name}: ${out.schedulesDisabled} schedule(s) off, ${out.runsCancelled} scheduled run(s) cancelled; held until reactivated (${reactivateHint(name)})\n`);
        } else {
          const out = await withTransaction(pool, (tx) => reactivateFlowTx(boss, tx, name, { by: values.by }));
          if (values.json) return printJson({ flow: flowJson(out.flow), hold: out.hold ? holdJson(out.hold) : null, schedulesEnabled: out.schedulesEnabled });
          process.stdout.write(`reactivated ${name} by ${values.by}: ${out.schedulesEnabled} schedule(s) on from now (no catch-up); health rules count from ${out.flow.validSince.toISOString()}\n`);
        }
      } finally {
        await boss.stop({ graceful: false });
      }
    });
    return;
  }
  throw new UserInputError(`unknown flows command '${sub}'; use list, show, disable or reactivate`);
}

async function cmdRuns(base: Omit<Ctx, 'db'>, sub: string | undefined, args: string[], values: Values): Promise<void> {
  if (sub === 'list' || sub === undefined) {
    if (values.state && !isStateType(values.state)) throw new UserInputError(`--state '${values.state}' is not a state type; use one of ${STATE_TYPES.join(', ')}`);
    await withPool(base, async (pool) => {
      // An unknown flow is an error, not an empty list (a typo would otherwise look like "no runs").
      if (values.flow !== undefined) await requireFlow(pool, values.flow);
      const runs = await listRuns(pool, { flowName: values.flow, stateType: values.state as never, limit: parseLimit(values.limit) });
      if (values.json) return printJson(runs.map(runJson));
      printTable(runs.map(runJson), ['id', 'flow', 'scheduledFor', 'stateType', 'stateName', 'message']);
    });
    return;
  }
  if (sub === 'show') {
    const id = args[0];
    if (!id || !/^[0-9a-f-]{36}$/i.test(id)) throw new UserInputError(`runs show needs a run ID (a UUID from flowwarden runs list)${id ? `, got '${id}'` : ''}`);
    await withPool(base, async (pool) => {
      const run = await getRun(pool, id);
      if (!run) throw new UserInputError(`run ${id} not found`);
      const history = await runHistory(pool, id);
      const tasks = await runTasks(pool, id);
      if (values.json) return printJson({ ...runJson(run), history, tasks });
      const r = runJson(run);
      process.stdout.write(`run ${r.id}\n  flow: ${r.flow}\n  state: ${r.stateType}/${r.stateName}${r.message ? ` — ${r.message}` : ''}\n  scheduled for: ${r.scheduledFor}\n  parameters: ${JSON.stringify(r.parameters)}\n\nhistory:\n`);
      printTable(history.map((h) => ({ at: h.at, from: h.fromType ? `${h.fromType}/${h.fromName}` : '-', to: `${h.toType}/${h.toName}`, message: h.message })), ['at', 'from', 'to', 'message']);
      if (tasks.length) {
        process.stdout.write('\ntasks:\n');
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
        process.stdout.write(`${result.created ? 'triggered' : 'already exists (idempotency key)'}: run ${result.runId} of ${flow}\n`);
      } finally {
        await boss.stop({ graceful: false });
      }
    });
    return;
  }
  throw new UserInputError(`unknown runs command '${sub}'; use list, show or trigger`);
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`flowwarden: error: ${errorMessage(err)}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, sub, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return command || values.help ? 0 : 2;
  }
  try {
    const config = loadConfig();
    const pretty = command === 'dev' || config.logPretty;
    const quiet = !['start', 'dev'].includes(command);
    const log = createLogger({ level: quiet ? 'warn' : config.logLevel, pretty, secrets: configSecrets(config) });
    const base = { config, log };
    switch (command) {
      case 'start':
        await cmdStart(base, values);
        break;
      case 'dev':
        await runDev(base, values);
        break;
      case 'migrate':
        await withDb(base, async (c) => {
          await migrateAll(c.db.url);
          process.stdout.write('migrations applied\n');
        });
        break;
      case 'apply':
        await cmdApply(base, values);
        break;
      case 'flows':
        await cmdFlows(base, sub, rest, values);
        break;
      case 'channels':
        await cmdChannels(base, sub, rest, values);
        break;
      case 'queues':
        await cmdQueues(base, values);
        break;
      case 'status': await cmdStatus(base, values); break;
      case 'runs':
        await cmdRuns(base, sub, rest, values);
        break;
      default:
        throw new UserInputError(`unknown command '${command}'; run flowwarden --help`);
    }
    return 0;
  } catch (err) {
    const details = err instanceof UserInputError ? err.details : [];
    process.stderr.write(`flowwarden: error: ${errorMessage(err)}\n`);
    for (const d of details) process.stderr.write(`  - ${d}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
// start/dev return after a drained shutdown; everything else is done.
process.exit(code);
