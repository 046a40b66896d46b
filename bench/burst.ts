/**
 * Burst: BENCH_BURST_FIRES schedules (default 100,000) whose next fire is the same second T, on one
 * pod (scheduler + worker roles, one process) at the default concurrency and at 50. The tick
 * pre-creates the runs inside its horizon; from T on the workers dispatch them (noop function).
 * Measured on the Postgres clock from the run rows: T → the last handler start (started_at) and
 * T → the last run COMPLETED (ended_at).
 */
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { silentLogger } from '../src/log.ts';
import { HandlerRegistry, registerBuiltins } from '../src/targets/function.ts';
import { benchServer, fmt, freshDatabase, log, percentile, waitUntil, type BenchResult } from './support.ts';

const FIRES = Number(process.env.BENCH_BURST_FIRES ?? 100_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 10);
/** Seconds from the start until T: time for the tick to pre-create the burst (it needs ~15 s for 100,000). */
const LEAD_SECONDS = Number(process.env.BENCH_BURST_LEAD_SECONDS ?? 45);

interface Burst {
  concurrency: number;
  createdBeforeT: number;
  lastStartSeconds: number;
  lastEndSeconds: number;
  startP50Seconds: number;
  startP99Seconds: number;
}

async function burst(concurrency: number): Promise<Burst> {
  const db = await freshDatabase();
  const registry = new HandlerRegistry();
  registerBuiltins(registry);
  const config = loadConfig({}, { concurrency, port: 0, host: '127.0.0.1', horizonSeconds: 30 });
  const app = await createApp({ config, log: silentLogger, databaseUrl: db.url, roles: ['scheduler', 'worker'], registry, migrate: false, autoStart: false });
  try {
    const t = (await app.pool.query<{ t: Date }>(`select date_trunc('second', now()) + make_interval(secs => $1) as t`, [LEAD_SECONDS])).rows[0]!.t;
    await app.pool.query(`insert into flowwarden.flows (name, target) select 'burst' || g, '{"type":"function","handler":"noop"}' from generate_series(1, 100) g`);
    // Interval schedules anchored at T, every hour: each fires once at T within the benchmark.
    await app.pool.query(
      `insert into flowwarden.schedules (flow_id, name, kind, interval_seconds, anchor, timezone, next_run_at, catchup)
       select f.id, 's' || g, 'interval', 3600, $2, 'UTC', $2, 'skip'
         from generate_series(1, $1) g join flowwarden.flows f on f.name = 'burst' || (1 + g % 100)`,
      [FIRES, t],
    );
    await app.pool.query('analyze');
    log(`burst: ${FIRES} fires at ${t.toISOString()}, concurrency ${concurrency}`);
    await app.start();
    const count = async (sql: string) => (await app.pool.query<{ n: number }>(sql)).rows[0]!.n;
    await waitUntil(async () => (await count(`select count(*)::int as n from flowwarden.runs where state_type in ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED')`)) >= FIRES, 600_000, 200);
    const { rows: [r] } = await app.pool.query<{ createdBeforeT: number; lastStart: number; lastEnd: number; failed: number }>(
      `select count(*) filter (where created_at < scheduled_for)::int as "createdBeforeT",
              extract(epoch from max(started_at) - $1)::float8 as "lastStart",
              extract(epoch from max(ended_at) - $1)::float8 as "lastEnd",
              count(*) filter (where state_type <> 'COMPLETED')::int as failed
         from flowwarden.runs`,
      [t],
    );
    if (r!.failed > 0) throw new Error(`burst: ${r!.failed} runs did not complete`);
    const { rows: starts } = await app.pool.query<{ s: number }>(`select extract(epoch from started_at - scheduled_for)::float8 as s from flowwarden.runs order by 1`);
    const lags = starts.map((x) => x.s);
    return {
      concurrency,
      createdBeforeT: r!.createdBeforeT,
      lastStartSeconds: r!.lastStart,
      lastEndSeconds: r!.lastEnd,
      startP50Seconds: percentile(lags, 50),
      startP99Seconds: percentile(lags, 99),
    };
  } finally {
    await app.stop({ timeoutMs: 1000 });
    await db.drop();
  }
}

export async function benchBurst(): Promise<BenchResult> {
  const { machine } = await benchServer();
  const results: Burst[] = [];
  for (const c of [...new Set([CONCURRENCY, 50])]) {
    results.push(await burst(c));
    log(`  concurrency ${c}: last handler start ${fmt(results.at(-1)!.lastStartSeconds, 1)} s after T`);
  }
  return {
    name: 'dispatch-burst',
    title: `Burst: ${FIRES.toLocaleString('en')} fires in the same second, one pod`,
    machine,
    settings: { fires: FIRES, pods: 1, roles: 'scheduler + worker in one process', horizonSeconds: 30, target: 'function noop', reproduce: 'npm run bench -- dispatch-burst (BENCH_BURST_FIRES, BENCH_CONCURRENCY)' },
    rows: results.flatMap((b) => [
      { metric: `fire time → last handler start, concurrency ${b.concurrency}`, ours: `${fmt(b.lastStartSeconds, 1)} s`, target: '<= 20 s', met: b.lastStartSeconds <= 20 },
      { metric: `fire time → last run COMPLETED, concurrency ${b.concurrency}`, ours: `${fmt(b.lastEndSeconds, 1)} s` },
      { metric: `fire time → handler start p50 / p99, concurrency ${b.concurrency}`, ours: `${fmt(b.startP50Seconds, 1)} s / ${fmt(b.startP99Seconds, 1)} s` },
      { metric: `runs pre-created before their fire time, concurrency ${b.concurrency}`, ours: `${b.createdBeforeT} of ${FIRES}` },
    ]),
    raw: { bursts: results },
    at: new Date().toISOString(),
  };
}

export const benches = { 'dispatch-burst': benchBurst };
