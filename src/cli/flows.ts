/**
 * `flowwarden flows list|show|disable|reactivate`. list and show read with pg + drizzle only;
 * disable and reactivate load pg-boss (they publish events and cancel jobs) when they run.
 */
import { UserInputError } from '../errors.ts';
import { listFlows, listSchedules, requireFlow } from '../queries/flows.ts';
import { pageRuns } from '../runs/read.ts';
import { guardHistory } from '../queries/guard.ts';
import { flowJson, runJson, scheduleJson } from '../runs/json.ts';
import { holdJson } from '../guard/json.ts';
import { parseLimit, withPool, withReadPool, type Base, type Values } from './context.ts';
import { print, printJson, printTable } from './output.ts';
import { cliCommand } from '../util/command.ts';

export async function run(base: Base, [sub, ...args]: string[], values: Values): Promise<void> {
  if (sub === 'list' || sub === undefined) {
    await withReadPool(base, async (pool) => {
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
      // One after another on one connection: opening more costs a short command more than it saves.
      const schedules = await listSchedules(pool, flow.id);
      const recent = await pageRuns(pool, { flowName: name, limit: parseLimit(values.limit, 10) });
      const holds = await guardHistory(pool, flow.name);
      const history = holds.map(holdJson);
      if (values.json) return printJson({ ...flowJson(flow, schedules), recentRuns: recent.map(runJson), guardHistory: history });
      const f = flowJson(flow);
      print(`flow ${f.name}\n  target: ${JSON.stringify(f.target)}\n  disabled: ${f.disabled ? `yes (${f.disabledReason})` : 'no'}\n  valid since: ${f.validSince}\n\nschedules:\n`);
      printTable(schedules.map(scheduleJson).map((s) => ({ ...s, when: s.cron ?? `every ${s.everySeconds}s` })), ['name', 'when', 'timezone', 'enabled', 'nextRunAt', 'note']);
      print('\nrecent runs:\n');
      printTable(recent.map(runJson), ['id', 'scheduledFor', 'stateType', 'stateName', 'message']);
      print('\nguard history:\n');
      printTable(
        history.map((h) => ({ ...h, reactivated: h.reactivatedAt ? `${h.reactivatedAt} by ${h.reactivatedBy}` : 'no (held)', enforced: h.enforceCount })),
        ['disabledAt', 'disabledBy', 'rule', 'reason', 'reactivated', 'enforced'],
      );
    });
    return;
  }
  if (sub === 'disable' || sub === 'reactivate') {
    const name = args[0];
    if (!name) throw new UserInputError(`flows ${sub} needs a flow NAME (${cliCommand()} flows list)`);
    if (sub === 'disable' && !values.reason?.trim()) throw new UserInputError(`flows disable needs --reason TEXT (recorded in the flow's guard history)`);
    if (sub === 'reactivate' && !values.by?.trim()) throw new UserInputError(`flows reactivate needs --by WHO (who takes responsibility; recorded in the flow's guard history)`);
    const [{ startBoss }, { withTransaction }, { disableFlowTx, reactivateFlowTx, reactivateHint }] = await Promise.all([
      import('../queue/boss.ts'),
      import('../db/client.ts'),
      import('../guard/operations.ts'),
    ]);
    await withPool(base, async (pool, c) => {
      const boss = await startBoss({ connectionString: c.db.url, role: 'producer' });
      try {
        if (sub === 'disable') {
          const out = await withTransaction(pool, (tx) => disableFlowTx(boss, tx, name, { reason: values.reason, by: values.by }));
          if (values.json) return printJson({ flow: flowJson(out.flow), hold: holdJson(out.hold), schedulesDisabled: out.schedulesDisabled, runsCancelled: out.runsCancelled });
          print(`disabled ${name}: ${out.schedulesDisabled} schedule(s) off, ${out.runsCancelled} scheduled run(s) cancelled; held until reactivated (${reactivateHint(name)})\n`);
        } else {
          const out = await withTransaction(pool, (tx) => reactivateFlowTx(boss, tx, name, { by: values.by }));
          if (values.json) return printJson({ flow: flowJson(out.flow), hold: out.hold ? holdJson(out.hold) : null, schedulesEnabled: out.schedulesEnabled });
          print(`reactivated ${name} by ${values.by}: ${out.schedulesEnabled} schedule(s) on from now (no catch-up); health rules count from ${out.flow.validSince.toISOString()}\n`);
        }
      } finally {
        await boss.stop({ graceful: false });
      }
    });
    return;
  }
  throw new UserInputError(`unknown flows command '${sub}'; use list, show, disable or reactivate`);
}
