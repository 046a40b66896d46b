/**
 * `flowwarden dev --prefect-fake`: an in-process fake Prefect server with one deployment whose runs
 * go Pending → Running → Completed over a few polls, and the demo flow that targets it.
 * The fake is test support (test/support/fake-prefect.ts), loaded lazily from the checkout: it is
 * not part of the published package, where `--prefect-fake` says so instead of failing obscurely.
 */
import type { FlowInputRaw } from '../flows/spec.ts';
import { UserInputError } from '../errors.ts';

export const DEMO_PREFECT_DEPLOYMENT = 'demo-etl/prod';

export const DEMO_PREFECT_FLOW: FlowInputRaw = {
  name: 'demo-prefect',
  description: `Creates a flow run of the fake Prefect deployment '${DEMO_PREFECT_DEPLOYMENT}' every 10 s and polls it to COMPLETED.`,
  target: { type: 'prefect', deployment: DEMO_PREFECT_DEPLOYMENT, tags: ['demo'], pollIntervalSeconds: 1, maxPolls: 30 },
  schedules: [{ name: 'every-10s', every: '10s', catchup: 'skip', parameters: { source: 'demo' } }],
};

/** What dev needs of the fake (its full interface lives with it, in test/support). */
export interface DemoPrefect {
  apiUrl: string;
  apiKey: string;
  close(): Promise<void>;
}

interface FakeModule {
  startFakePrefect(): Promise<DemoPrefect & { addDeployment(input: Record<string, unknown>): unknown }>;
}

export async function startDemoPrefect(): Promise<DemoPrefect> {
  // A computed specifier: the build (rootDir src) must not pull test support into dist/.
  const where = new URL('../../test/support/fake-prefect.ts', import.meta.url);
  let mod: FakeModule;
  try {
    mod = (await import(where.href)) as FakeModule;
  } catch (err) {
    throw new UserInputError(
      `--prefect-fake needs the fake Prefect server from a flowwarden checkout (${where.pathname}), ` +
        `which is not part of the installed package: run \`npm run dev -- --prefect-fake\` in the repository (${(err as Error).message})`,
    );
  }
  const fake = await mod.startFakePrefect();
  const [flowName, name] = DEMO_PREFECT_DEPLOYMENT.split('/') as [string, string];
  fake.addDeployment({
    flowName,
    name,
    schedules: [{ schedule: { interval: 3600 }, slug: 'hourly' }],
    runScript: [{ type: 'PENDING' }, { type: 'RUNNING' }, { type: 'RUNNING' }, { type: 'COMPLETED', message: 'All states completed.' }],
  });
  return fake;
}
