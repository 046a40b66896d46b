/**
 * Dispatch throughput through PgBouncer (transaction pooling, FLOWWARDEN_POOL_MODE=transaction)
 * against the same pod talking to the same PostgreSQL (Debian's) directly (session mode: named prepared
 * statements, LISTEN). Needs Debian's pgbouncer and postgresql (the system-test servers,
 * test/system/servers.ts). BENCH_PGBOUNCER_N runs (default 10,000), BENCH_CONCURRENCY (10),
 * BENCH_PGBOUNCER_POOL server connections (default 10), best of BENCH_PGBOUNCER_ROUNDS (2).
 */
import os from 'node:os';
import pg from 'pg';
import { createApp } from '../src/app.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { silentLogger } from '../src/log.ts';
import { HandlerRegistry, registerBuiltins } from '../src/targets/function.ts';
import { bossDb, withTransaction } from '../src/db/client.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { insertJobs, QUEUES } from '../src/queue/catalog.ts';
import { createDatabase, startPgBouncer, startPrimary, type PgBouncer, type PgServer } from '../test/system/servers.ts';
import { fmt, log, waitUntil, type BenchResult } from './support.ts';

const N = Number(process.env.BENCH_PGBOUNCER_N ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 10);
const POOL = Number(process.env.BENCH_PGBOUNCER_POOL ?? 10);
const ROUNDS = Number(process.env.BENCH_PGBOUNCER_ROUNDS ?? 2);

let dbNo = 0;

async function throughput(primary: PgServer, url: (db: string) => string, overrides: Partial<Config>): Promise<number> {
  const name = `fw_pgb_${dbNo++}`;
  await createDatabase(primary, name);
  const registry = new HandlerRegistry();
  registerBuiltins(registry);
  const config = loadConfig({}, { concurrency: CONCURRENCY, port: 0, host: '127.0.0.1', ...overrides });
  const app = await createApp({ config, log: silentLogger, databaseUrl: url(name), roles: ['worker'], registry, migrate: false, autoStart: false });
  const direct = new pg.Pool({ connectionString: primary.url(name), max: 2 });
  try {
    await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'bench-noop', target: { type: 'function', handler: 'noop' } }));
    for (let done = 0; done < N; done += 1000) {
      const size = Math.min(1000, N - done);
      await withTransaction(direct, async (tx) => {
        const { rows } = await tx.query<{ id: string }>(
          `with ins as (
             insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, origin, implied)
             select f.id, now() - interval '1 second', 'SCHEDULED', 'Scheduled', 'manual', 1
               from flowwarden.flows f, generate_series(1, $1) where f.name = 'bench-noop'
             returning id)
           select id from ins`,
          [size],
        );
        await insertJobs(app.boss, QUEUES.dispatch, rows.map((r) => ({ id: r.id, data: { runId: r.id } })), { db: bossDb(tx) });
      });
    }
    await direct.query('analyze');
    const open = async () => (await direct.query<{ n: number }>(`select count(*)::int as n from flowwarden.runs where state_type in ('SCHEDULED', 'PENDING', 'RUNNING')`)).rows[0]!.n;
    const t0 = performance.now();
    await app.start();
    await waitUntil(async () => (await open()) === 0, 600_000, 50);
    const seconds = (performance.now() - t0) / 1000;
    const completed = (await direct.query<{ n: number }>(`select count(*)::int as n from flowwarden.runs where state_type = 'COMPLETED'`)).rows[0]!.n;
    if (completed !== N) throw new Error(`pgbouncer benchmark: ${completed} of ${N} runs COMPLETED`);
    return N / seconds;
  } finally {
    await app.stop({ timeoutMs: 1000 });
    await direct.end();
  }
}

export async function benchPgBouncer(): Promise<BenchResult> {
  const primary = await startPrimary();
  let bouncer: PgBouncer | undefined;
  try {
    bouncer = await startPgBouncer(primary, { poolSize: POOL });
    const c = new pg.Client({ connectionString: primary.url() });
    await c.connect();
    const version = (await c.query<{ server_version: string }>('show server_version')).rows[0]!.server_version;
    await c.end();
    log(`pgbouncer: ${N} runs, concurrency ${CONCURRENCY}, PgBouncer pool ${POOL}, ${ROUNDS} rounds`);
    // The machine's load when the measurement started: on a shared machine both figures move with it.
    const loadAverage1m = Number(os.loadavg()[0]!.toFixed(1));
    const direct: number[] = [];
    const through: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      direct.push(await throughput(primary, (db) => primary.url(db), {}));
      log(`  round ${round}: direct (session mode) ${fmt(direct.at(-1)!)} runs/s`);
      through.push(await throughput(primary, (db) => bouncer!.url(db), { poolMode: 'transaction' }));
      log(`  round ${round}: through PgBouncer (transaction mode) ${fmt(through.at(-1)!)} runs/s`);
    }
    const best = (xs: number[]) => Math.max(...xs);
    return {
      name: 'pgbouncer',
      title: 'Dispatch throughput through PgBouncer (transaction pooling) vs direct',
      machine: {
        cores: os.availableParallelism(),
        cpu: os.cpus()[0]?.model ?? 'unknown',
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
        postgres: version,
        postgresVia: 'Debian postgresql + pgbouncer',
      },
      settings: { runs: N, concurrency: CONCURRENCY, pgbouncerPoolSize: POOL, rounds: ROUNDS, target: 'function noop', pods: 1, loadAverage1m },
      rows: [
        {
          metric: 'through PgBouncer, FLOWWARDEN_POOL_MODE=transaction (no prepared statements, no LISTEN) vs direct',
          ours: `${fmt(best(through))} runs/s`, peer: `${fmt(best(direct))} runs/s (direct)`, ratio: `${fmt(best(through) / best(direct), 2)}x`,
        },
      ],
      raw: { direct, throughPgBouncer: through },
      at: new Date().toISOString(),
    };
  } finally {
    await bouncer?.stop();
    await primary.stop();
  }
}

export const benches = { pgbouncer: benchPgBouncer };
