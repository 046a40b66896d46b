/**
 * A service that embeds a flowwarden worker and publishes work with the producer client.
 *
 *   npm run dev                        # terminal 1: embedded Postgres + a pod (or set DATABASE_URL)
 *   node examples/service.ts           # terminal 2 (npx node ... on a machine whose node is < 22.18)
 *
 * Without DATABASE_URL it connects to the embedded Postgres `flowwarden dev` runs.
 */
import pg from 'pg';
import { createApp, defineFlow, FlowwardenClient, loadConfig } from '../src/index.ts';
import { embeddedUrl } from '../src/db/embedded.ts';
import { createLogger } from '../src/log.ts';

const config = loadConfig();
const url = config.databaseUrl ?? embeddedUrl(config.embeddedPort);

// 1. Handlers this process runs for `function` targets.
defineFlow('build-report', async (ctx) => {
  ctx.log.info({ params: ctx.parameters }, 'building the report');
  return { message: 'report built', tasks: [{ name: 'load-warehouse', stateType: 'COMPLETED' }] };
});

// 2. A worker pod inside this service (scheduler tick + queue workers, no HTTP API).
const app = await createApp({ config: { ...config, port: 0 }, log: createLogger({ pretty: true }), databaseUrl: url, roles: ['scheduler', 'worker'] });

// 3. The producer: declare the flow, then trigger a run in the same transaction as our own write.
const fw = await FlowwardenClient.connect({ connectionString: url });
await fw.upsertFlow({
  name: 'build-report-adhoc',
  target: { type: 'function', handler: 'build-report' },
});
const db = new pg.Client({ connectionString: url });
await db.connect();
await db.query('begin');
await db.query('create table if not exists report_requests (id serial primary key, at timestamptz default now())');
await db.query('insert into report_requests default values');
const { runId } = await fw.triggerRun('build-report-adhoc', { format: 'csv' }, { db, idempotencyKey: `report:${Date.now()}` });
await db.query('commit'); // the run exists only if our own insert committed
await db.end();
console.log(`triggered run ${runId}; watch it with: npm run flowwarden -- runs show ${runId}`);

// Give the run a moment, then stop cleanly.
setTimeout(async () => {
  await fw.close();
  await app.stop();
}, 3000);
