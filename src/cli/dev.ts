/**
 * `flowwarden dev`: the zero-setup demo. Embedded Postgres (unless DATABASE_URL is set), all
 * roles in one process, pretty logs, and demo flows that fire every few seconds so a newcomer sees
 * runs complete within 10 s (and, with the guard, a failing flow get disabled).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Base, Values } from './context.ts';
import { runPod } from './pod.ts';
import { print } from './output.ts';
import { applyDefinitions, validateDefinitions } from '../apply.ts';
import { loadHandlersModule } from '../targets/function.ts';
import type { FlowInputRaw } from '../flows/spec.ts';
import { DEMO_PREFECT_FLOW, startDemoPrefect } from '../dev/prefect-demo.ts';
import { reactivateHint } from '../guard/operations.ts';

export const DEMO_FLOWS: FlowInputRaw[] = [
  {
    name: 'demo-hello',
    description: 'Completes instantly, every 3 seconds (built-in noop handler).',
    target: { type: 'function', handler: 'noop' },
    schedules: [{ name: 'every-3s', every: '3s', catchup: 'skip' }],
  },
  {
    name: 'demo-sleepy',
    description: 'Sleeps 4 s, fired every 2 s with overlap: skip, so some runs are Skipped.',
    target: { type: 'function', handler: 'sleep' },
    schedules: [{ name: 'every-2s', every: '2s', overlap: 'skip', catchup: 'skip', parameters: { ms: 4000 } }],
  },
  {
    name: 'demo-cron',
    description: 'A 6-field cron (seconds) in a non-UTC timezone: every 5 seconds.',
    target: { type: 'function', handler: 'noop' },
    schedules: [{ name: 'every-5s', cron: '*/5 * * * * *', timezone: 'Europe/Berlin', catchup: 'skip' }],
  },
  {
    name: 'demo-flaky',
    description: 'Fails on purpose every 4 s: the guard disables it after 3 failures in a row.',
    target: { type: 'function', handler: 'fail' },
    schedules: [{ name: 'every-4s', every: '4s', catchup: 'skip', parameters: { message: 'demo failure: upstream table missing' } }],
  },
];

/** The file in the data folder that keeps dev's generated admin token across restarts. */
export const DEV_TOKEN_FILE = 'dev-admin-token';

/**
 * The dev admin token: made up once per data folder and kept in `<dataDir>/dev-admin-token`
 * (mode 0600), so restarting `npm run dev` keeps the admin page's sessions. A file that is not a
 * token (hand-edited, truncated) is replaced.
 */
export function devAdminToken(dataDir: string): { token: string; created: boolean; file: string } {
  const file = path.join(dataDir, DEV_TOKEN_FILE);
  try {
    const kept = fs.readFileSync(file, 'utf8').trim();
    if (/^dev-[0-9a-f]{24}$/.test(kept)) return { token: kept, created: false, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = `dev-${randomBytes(12).toString('hex')}`;
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, created: true, file };
}

export async function run(base: Base, _args: string[], values: Values): Promise<void> {
  const handlers = values.handlers ?? base.config.handlersModule;
  if (handlers) await loadHandlersModule(handlers);
  // --prefect-fake: a fake Prefect in-process and a demo flow targeting it (docs/prefect.md).
  const prefect = values['prefect-fake'] ? await startDemoPrefect() : undefined;
  if (prefect) base = { ...base, config: { ...base.config, prefect: { ...base.config.prefect, apiUrl: prefect.apiUrl, apiKey: prefect.apiKey } } };
  // The admin page and API need a token; unless one is configured, dev makes one up once per data
  // folder and keeps it there, so a restart does not end the admin page's sessions.
  const generatedToken = base.config.adminToken ? undefined : devAdminToken(base.config.dataDir).token;
  if (generatedToken) base = { ...base, config: { ...base.config, adminToken: generatedToken } };
  const flows = validateDefinitions({ flows: prefect ? [...DEMO_FLOWS, DEMO_PREFECT_FLOW] : DEMO_FLOWS }, 'demo flows', base.config.maxParametersBytes);
  await runPod(base, ['all'], async (app) => {
    const applied = await applyDefinitions(app.pool, flows, base.config.maxParametersBytes);
    // A data folder reused from an earlier session may hold a demo flow disabled: say so up front.
    for (const { flow } of applied) {
      if (flow.disabledAt) base.log.warn({ flow: flow.name }, `flow ${flow.name} is held disabled by the guard since an earlier session (${flow.disabledReason}) — ${reactivateHint(flow.name)}`);
    }
    const page = app.address ? `${app.address.replace('0.0.0.0', 'localhost')}/admin` : undefined;
    if (page) {
      // Printed, not logged: the logger redacts every configured token, and this one is meant to be read.
      print(`\n  admin page: ${page}\n  sign in with: ${generatedToken ?? 'your FLOWWARDEN_ADMIN_TOKEN'}\n\n`);
    }
    base.log.info(
      { flows: flows.map((f) => f.name), api: app.address },
      'dev: demo flows applied — watch runs complete below, or run `npm run flowwarden -- runs list` in another terminal; Ctrl-C to stop',
    );
  });
  await prefect?.close();
}
