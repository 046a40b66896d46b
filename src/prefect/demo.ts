/**
 * `flowwarden dev --prefect-fake`: an in-process fake Prefect server with one deployment whose runs
 * go Pending → Running → Completed over a few polls, and the demo flow that targets it.
 */
import { startFakePrefect, type FakePrefect } from './fake-server.ts';
import type { FlowInputRaw } from '../flows/spec.ts';

export const DEMO_PREFECT_DEPLOYMENT = 'demo-etl/prod';

export const DEMO_PREFECT_FLOW: FlowInputRaw = {
  name: 'demo-prefect',
  description: `Creates a flow run of the fake Prefect deployment '${DEMO_PREFECT_DEPLOYMENT}' every 10 s and polls it to COMPLETED.`,
  target: { type: 'prefect', deployment: DEMO_PREFECT_DEPLOYMENT, tags: ['demo'], pollIntervalSeconds: 1, maxPolls: 30 },
  schedules: [{ name: 'every-10s', every: '10s', catchup: 'skip', parameters: { source: 'demo' } }],
};

export async function startDemoPrefect(): Promise<FakePrefect> {
  const fake = await startFakePrefect();
  const [flowName, name] = DEMO_PREFECT_DEPLOYMENT.split('/') as [string, string];
  fake.addDeployment({
    flowName,
    name,
    schedules: [{ schedule: { interval: 3600 }, slug: 'hourly' }],
    runScript: [{ type: 'PENDING' }, { type: 'RUNNING' }, { type: 'RUNNING' }, { type: 'COMPLETED', message: 'All states completed.' }],
  });
  return fake;
}
