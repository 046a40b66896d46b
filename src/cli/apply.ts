/** `flowwarden apply -f FILE`: upsert flows and schedules from YAML/JSON. */
import { UserInputError } from '../errors.ts';
import { applyDefinitions, readDefinitions, validateDefinitions } from '../apply.ts';
import { withPool, type Base, type Values } from './context.ts';
import { printJson, printTable } from './output.ts';
import { cliCommand } from '../util/command.ts';

export async function run(base: Base, _args: string[], values: Values): Promise<void> {
  if (!values.file) throw new UserInputError('apply needs -f FILE (YAML or JSON with a flows: list)');
  const flows = validateDefinitions(readDefinitions(values.file), values.file, base.config.maxParametersBytes);
  await withPool(base, async (pool) => {
    const results = await applyDefinitions(pool, flows, base.config.maxParametersBytes);
    const rows = results.flatMap((r) => [
      { kind: 'flow', name: r.flow.name, action: r.created ? 'created' : 'updated', note: r.flow.disabledAt ? `held disabled: ${r.flow.disabledReason}` : '' },
      ...r.schedules.map((s) => ({
        kind: 'schedule', name: `${r.flow.name}/${s.schedule.name}`, action: s.created ? 'created' : 'updated',
        note: s.heldDisabled ? `kept disabled: the flow is held disabled by the guard (${cliCommand()} flows reactivate)` : s.schedule.enabled ? `next ${s.schedule.nextRunAt?.toISOString()}` : 'disabled',
      })),
    ]);
    if (values.json) printJson(rows);
    else printTable(rows, ['kind', 'name', 'action', 'note']);
  });
}
