/**
 * 1. Dispatch throughput: N due runs → dispatch job → `function` target (noop) → COMPLETED with
 *    state history, against raw pg-boss and graphile-worker noop jobs, each at its best settings,
 *    on the same Postgres at the same concurrency (10 and 50), in one run; with what each costs
 *    Postgres per run/job (bench/pgcost.ts).
 * 2. Dispatch latency: fire time → handler start at light load, and manual trigger → handler start.
 */
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { run as runGraphile, Logger as GraphileLogger } from 'graphile-worker';

const quiet = new GraphileLogger(() => () => {});
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { silentLogger } from '../src/log.ts';
import { HandlerRegistry, registerBuiltins } from '../src/targets/function.ts';
import { bossDb, withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { dispatchJobs, insertJobs, planDispatchJobs, QUEUES } from '../src/queue/catalog.ts';
import { benchServer, fmt, freshDatabase, log, percentile, waitUntil, writeResult, type BenchResult } from './support.ts';
import { costProbe, HARNESS, type Cost } from './pgcost.ts';

const N = Number(process.env.BENCH_DISPATCH_N ?? 20000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 10);

async function count(pool: pg.Pool, sql: string): Promise<number> {
  return (await pool.query<{ n: number }>(sql)).rows[0]!.n;
}

/**
 * graphile-worker's documented best settings ("Quick stats", https://worker.graphile.org/docs/performance:
 * `localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0`, `maxPoolSize` =
 * concurrentJobs + 1); the concurrency is the shared one instead of their 24.
 */
export const GRAPHILE_BEST = { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } as const;

/** pg-boss work() settings tried at each concurrency; the best one counts (see pgBossThroughput). */
function bossVariants(concurrency: number, n: number): Array<{ label: string; batchSize: number; localConcurrency: number; burst: boolean; n?: number }> {
  return [
    // batchSize=1 is bound by pg-boss's poll interval (a worker sleeps after every batch that is not
    // full; burstWhenBatchFull is ignored at 1): ~20 jobs/s at any size, so it runs a small sample.
    ...(concurrency === CONCURRENCY ? [{ label: `batchSize=1 localConcurrency=${concurrency}`, batchSize: 1, localConcurrency: concurrency, burst: false, n: Math.min(n, 200) }] : []),
    { label: `batchSize=50 localConcurrency=${concurrency} burstWhenBatchFull`, batchSize: 50, localConcurrency: concurrency, burst: true },
    { label: `batchSize=${concurrency * 10} localConcurrency=1 burstWhenBatchFull`, batchSize: concurrency * 10, localConcurrency: 1, burst: true },
    { label: `batchSize=500 localConcurrency=${Math.min(concurrency, 4)} burstWhenBatchFull`, batchSize: 500, localConcurrency: Math.min(concurrency, 4), burst: true },
  ];
}

/** clientCpuUs: this process's CPU per run/job in the window (µs; every contender's client runs here). */
type Throughput = { seconds: number; perSecond: number; cost: Cost; clientCpuUs: number };
const cpuUs = () => { const u = process.cpuUsage(); return u.user + u.system; };

/**
 * Ours: runs pre-inserted (due now) with their dispatch jobs; time until all are COMPLETED.
 * `jobs: 'batched'` (the default): the runs of one instant in shared jobs of up to 100, as the tick
 * makes them (planDispatchJobs); `'single'`: one job per run, as triggers make them.
 */
export async function oursThroughput(n = N, concurrency = CONCURRENCY, jobs: 'batched' | 'single' = 'batched'): Promise<Throughput & { rssPeakMb: number }> {
  const { server } = await benchServer();
  const db = await freshDatabase();
  const registry = new HandlerRegistry();
  registerBuiltins(registry);
  const config = loadConfig({}, { concurrency, port: 0, host: '127.0.0.1' });
  const app = await createApp({ config, log: silentLogger, databaseUrl: db.url, roles: ['worker'], registry, migrate: false, autoStart: false });
  // Seeded through a pool of its own, closed before the window opens (its row counts are reported
  // when its sessions end, and must not land in the window).
  const setup = new pg.Pool({ connectionString: db.url, max: 1 });
  const harness = new pg.Pool({ connectionString: db.url, max: 1 });
  let stopped = false;
  try {
    await withTransaction(setup, (tx) => upsertFlowTx(tx, { name: 'bench-noop', target: { type: 'function', handler: 'noop' } }));
    const due = (await setup.query<{ t: Date }>(`select now() - interval '1 second' as t`)).rows[0]!.t;
    for (let done = 0; done < n; done += 1000) {
      const size = Math.min(1000, n - done);
      const planned = jobs === 'batched'
        ? planDispatchJobs(Array.from({ length: size }, () => ({ scheduledFor: due })))
        : Array.from({ length: size }, () => ({ scheduledFor: due, id: randomUUID(), dispatchJobId: null }));
      await withTransaction(setup, async (tx) => {
        await tx.query(
          `insert into flowwarden.runs (id, flow_id, scheduled_for, state_type, state_name, origin, implied, dispatch_job_id)
           select p.id, f.id, $3, 'SCHEDULED', 'Scheduled', $4, 1, p.job
             from unnest($1::uuid[], $2::uuid[]) as p(id, job), flowwarden.flows f where f.name = 'bench-noop'`,
          [planned.map((p) => p.id), planned.map((p) => p.dispatchJobId), due, jobs === 'batched' ? 'schedule' : 'manual'],
        );
        await insertJobs(app.boss, QUEUES.dispatch, dispatchJobs(planned), { db: bossDb(tx) });
      });
    }
    await setup.query('analyze');
    await setup.end();
    const probe = await costProbe(server.adminUrl, db.url);
    await probe.before();
    let rssPeak = process.memoryUsage().rss;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 100);
    const t0 = performance.now();
    const c0 = cpuUs();
    await app.start();
    // Done when no run is open (an index-only count that shrinks as runs finish, like the peers'
    // waits), then check that every run completed.
    await waitUntil(async () => (await count(harness, `select ${HARNESS}, count(*)::int as n from flowwarden.runs where state_type in ('SCHEDULED', 'PENDING', 'RUNNING')`)) === 0, 600_000, 50);
    const seconds = (performance.now() - t0) / 1000;
    const clientCpuUs = (cpuUs() - c0) / n;
    clearInterval(sampler);
    const completed = await count(harness, `select ${HARNESS}, count(*)::int as n from flowwarden.runs where state_type = 'COMPLETED'`);
    if (completed !== n) throw new Error(`dispatch benchmark: ${completed} of ${n} runs COMPLETED`);
    stopped = true;
    await app.stop({ timeoutMs: 1000 });
    await harness.end();
    const cost = await probe.after(n);
    return { seconds, perSecond: n / seconds, rssPeakMb: rssPeak / 2 ** 20, cost, clientCpuUs };
  } finally {
    if (!stopped) {
      await app.stop({ timeoutMs: 1000 });
      await harness.end();
    }
    await setup.end().catch(() => {});
    await db.drop();
  }
}

/** Raw pg-boss: noop jobs, same concurrency; best of a few worker settings. */
export async function pgBossThroughput(n = N, concurrency = CONCURRENCY): Promise<Throughput & { settings: string; all: Record<string, number> }> {
  const { server } = await benchServer();
  const all: Record<string, number> = {};
  let best: (Throughput & { settings: string }) | undefined;
  for (const v of bossVariants(concurrency, n)) {
    const total = v.n ?? n;
    const db = await freshDatabase(false);
    const options = { connectionString: db.url, schema: 'bench_boss', max: concurrency + 2, schedule: false, supervise: false };
    // Seeded by an instance of its own, stopped before the window opens (see oursThroughput).
    const seeder = new PgBoss(options);
    seeder.on('error', () => {});
    await seeder.start();
    await seeder.createQueue('noop');
    for (let i = 0; i < total; i += 1000) await seeder.insert('noop', Array.from({ length: Math.min(1000, total - i) }, () => ({ data: {} })));
    await seeder.stop({ graceful: false });
    const boss = new PgBoss(options);
    boss.on('error', () => {});
    const harness = new pg.Pool({ connectionString: db.url, max: 1 });
    let stopped = false;
    try {
      await boss.start();
      const probe = await costProbe(server.adminUrl, db.url);
      await probe.before();
      let done = 0;
      const t0 = performance.now();
      const c0 = cpuUs();
      const finished = new Promise<void>((resolve) => {
        void boss.work('noop', { batchSize: v.batchSize, localConcurrency: v.localConcurrency, pollingIntervalSeconds: 0.5, burstWhenBatchFull: v.burst }, (jobs) => {
          done += jobs.length;
          if (done >= total) resolve();
          return Promise.resolve(); // pg-boss's handler returns a promise; this one has nothing to wait for
        });
      });
      await finished;
      // Completion is written after the handler returns: wait until pg-boss recorded every one.
      await waitUntil(async () => (await count(harness, `select ${HARNESS}, count(*)::int as n from bench_boss.job where state = 'completed'`)) >= total, 120_000, 20);
      const seconds = (performance.now() - t0) / 1000;
      const clientCpuUs = (cpuUs() - c0) / total;
      stopped = true;
      await boss.stop({ graceful: false });
      await harness.end();
      const cost = await probe.after(total);
      all[v.label] = total / seconds;
      if (!best || total / seconds > best.perSecond) best = { seconds, perSecond: total / seconds, settings: v.label, cost, clientCpuUs };
    } finally {
      if (!stopped) {
        await boss.stop({ graceful: false });
        await harness.end();
      }
      await db.drop();
    }
  }
  return { ...best!, all };
}

/** graphile-worker checks that a pool it is given handles errors (https://err.red/wpeh). */
function quietPool(pool: pg.Pool): void {
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
}

/** graphile-worker at its documented best settings (GRAPHILE_BEST), noop tasks, same concurrency. */
export async function graphileThroughput(n = N, concurrency = CONCURRENCY): Promise<Throughput> {
  const { server } = await benchServer();
  const db = await freshDatabase(false);
  const harness = new pg.Pool({ connectionString: db.url, max: 1 });
  try {
    // Install graphile-worker's schema and queue the jobs through a pool of its own, closed before
    // the window opens (see oursThroughput).
    const setup = new pg.Pool({ connectionString: db.url, max: 2 });
    quietPool(setup);
    const installer = await runGraphile({ logger: quiet, pgPool: setup, concurrency: 1, noHandleSignals: true, taskList: { noop: async () => {} }, pollInterval: 60_000 });
    await installer.stop();
    await setup.query(`select graphile_worker.add_job('noop', '{}'::json) from generate_series(1, $1)`, [n]);
    await setup.query('analyze');
    await setup.end();
    const probe = await costProbe(server.adminUrl, db.url);
    await probe.before();
    const pool = new pg.Pool({ connectionString: db.url, max: concurrency + 1 });
    quietPool(pool);
    const t0 = performance.now();
    const c0 = cpuUs();
    const runner = await runGraphile({
      logger: quiet,
      pgPool: pool,
      concurrency,
      noHandleSignals: true,
      pollInterval: 200,
      taskList: { noop: async () => {} },
      preset: { worker: { ...GRAPHILE_BEST, localQueue: { ...GRAPHILE_BEST.localQueue } } },
    });
    await waitUntil(async () => (await count(harness, `select ${HARNESS}, count(*)::int as n from graphile_worker._private_jobs`)) === 0, 600_000, 20);
    const seconds = (performance.now() - t0) / 1000;
    const clientCpuUs = (cpuUs() - c0) / n;
    await runner.stop();
    await pool.end();
    await harness.end();
    const cost = await probe.after(n);
    return { seconds, perSecond: n / seconds, cost, clientCpuUs };
  } finally {
    await harness.end().catch(() => {});
    await db.drop();
  }
}

function versionOf(pkg: string): string {
  return (JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCIES = [...new Set([CONCURRENCY, 50])];

/** The run with the best rate. */
function best<T extends { perSecond: number }>(runs: T[]): T {
  return runs.reduce((a, b) => (b.perSecond > a.perSecond ? b : a));
}

const perJob = (x: number | null, c: Cost) => (x === null ? NaN : x / c.jobs);

/** ours ÷ peer, or a dash when the peer's figure is 0 or missing. */
const ratioOf = (ours: number, peer: number) => (Number.isFinite(ours / peer) ? `${fmt(ours / peer, 1)}x` : '—');

/** One docs row per cost figure: flowwarden's per run, the peers' per job, and ours ÷ each peer. */
function costRows(concurrency: number, ours: Cost, boss: Cost, gw: Cost): BenchResult['rows'] {
  const figures: Array<[string, (c: Cost) => number, number]> = [
    ['statements per run/job (pg_stat_statements, incl. BEGIN/COMMIT)', (c) => perJob(c.statements, c), 3],
    ['statement execution time per run/job (pg_stat_statements, µs)', (c) => perJob(c.execMs, c) * 1000, 0],
    ['committed transactions per run/job', (c) => perJob(c.commits, c), 3],
    ['row versions written per run/job (ins + upd + del, all tables)', (c) => perJob(c.rowVersions, c), 2],
    ['WAL bytes per run/job', (c) => perJob(c.walBytes, c), 0],
    ['Postgres CPU per run/job (all server processes, µs)', (c) => perJob(c.cpuSeconds, c) * 1e6, 0],
    ['  of which in the contender\'s own sessions (µs)', (c) => perJob(c.cpuByKind?.contender ?? null, c) * 1e6, 0],
    ['  of which in autovacuum workers (µs)', (c) => perJob(c.cpuByKind?.autovacuum ?? 0, c) * 1e6, 0],
    ['  of which elsewhere: background processes, harness and probe sessions, unsampled exits (µs)', (c) => perJob(c.cpuByKind ? (c.cpuByKind.background ?? 0) + (c.cpuByKind['other sessions'] ?? 0) + (c.cpuByKind.unseen ?? 0) : null, c) * 1e6, 0],
  ];
  return figures.map(([what, f, digits]) => ({
    metric: `${what}, concurrency ${concurrency}: flowwarden vs raw pg-boss / graphile-worker`,
    ours: fmt(f(ours), digits),
    peer: `${fmt(f(boss), digits)} / ${fmt(f(gw), digits)}`,
    ratio: `${ratioOf(f(ours), f(boss))} / ${ratioOf(f(ours), f(gw))}`,
  }));
}

export async function benchThroughput(): Promise<BenchResult> {
  const { machine } = await benchServer();
  log(`dispatch throughput: ${N} runs, concurrency ${CONCURRENCIES.join(' and ')}, ${ROUNDS} rounds (each contender once per round, best round counts)`);
  // Rounds interleave the contenders, so a cold start (JIT, caches) or a noisy moment on the machine
  // does not land on one contender only; every contender gets its best round.
  type Runs = { ours: Awaited<ReturnType<typeof oursThroughput>>[]; single: Awaited<ReturnType<typeof oursThroughput>>[]; boss: Awaited<ReturnType<typeof pgBossThroughput>>[]; gw: Awaited<ReturnType<typeof graphileThroughput>>[] };
  const runs = new Map<number, Runs>(CONCURRENCIES.map((c) => [c, { ours: [], single: [], boss: [], gw: [] }]));
  const loads: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of CONCURRENCIES) {
      const r = runs.get(c)!;
      loads.push(os.loadavg()[0]!);
      r.ours.push(await oursThroughput(N, c));
      log(`  round ${round}, concurrency ${c}: flowwarden ${fmt(r.ours.at(-1)!.perSecond)} runs/s`);
      r.single.push(await oursThroughput(N, c, 'single'));
      log(`  round ${round}, concurrency ${c}: flowwarden, single-run jobs ${fmt(r.single.at(-1)!.perSecond)} runs/s`);
      r.boss.push(await pgBossThroughput(N, c));
      log(`  round ${round}, concurrency ${c}: pg-boss best ${fmt(r.boss.at(-1)!.perSecond)} jobs/s (${r.boss.at(-1)!.settings})`);
      r.gw.push(await graphileThroughput(N, c));
      log(`  round ${round}, concurrency ${c}: graphile-worker ${fmt(r.gw.at(-1)!.perSecond)} jobs/s`);
    }
  }
  const rows: BenchResult['rows'] = [];
  const costs: BenchResult['rows'] = [];
  for (const c of CONCURRENCIES) {
    const r = runs.get(c)!;
    const ours = best(r.ours);
    const single = best(r.single);
    const boss = best(r.boss);
    const gw = best(r.gw);
    const at = c === CONCURRENCY ? `FLOWWARDEN_CONCURRENCY=${c} (default)` : `FLOWWARDEN_CONCURRENCY=${c}`;
    rows.push(
      { metric: `flowwarden at ${at} vs raw pg-boss at its best settings (${boss.settings})`, ours: `${fmt(ours.perSecond)} runs/s`, peer: `${fmt(boss.perSecond)} jobs/s`, ratio: `${fmt(ours.perSecond / boss.perSecond, 2)}x`, target: '>= 1.0x', met: ours.perSecond >= boss.perSecond },
      { metric: `flowwarden at ${at} vs graphile-worker 0.18 at its best settings (concurrency ${c})`, ours: `${fmt(ours.perSecond)} runs/s`, peer: `${fmt(gw.perSecond)} jobs/s`, ratio: `${fmt(ours.perSecond / gw.perSecond, 2)}x`, target: '>= 1.0x', met: ours.perSecond >= gw.perSecond },
      { metric: `flowwarden at ${at}, one job per run (as triggers send them) vs graphile-worker 0.18`, ours: `${fmt(single.perSecond)} runs/s`, peer: `${fmt(gw.perSecond)} jobs/s`, ratio: `${fmt(single.perSecond / gw.perSecond, 2)}x` },
    );
    if (c === CONCURRENCY) {
      const one = best(r.boss.map((b) => ({ perSecond: b.all[`batchSize=1 localConcurrency=${c}`] ?? NaN })));
      rows.push({ metric: `flowwarden vs raw pg-boss at the same per-handler settings (batchSize=1 localConcurrency=${c})`, ours: `${fmt(ours.perSecond)} runs/s`, peer: `${fmt(one.perSecond)} jobs/s`, ratio: `${fmt(ours.perSecond / one.perSecond, 1)}x` });
    }
    costs.push(...costRows(c, ours.cost, boss.cost, gw.cost));
    costs.push({
      metric: `client CPU per run/job (the Node process the contender runs in, µs), concurrency ${c}: flowwarden vs raw pg-boss / graphile-worker`,
      ours: fmt(ours.clientCpuUs, 0),
      peer: `${fmt(boss.clientCpuUs, 0)} / ${fmt(gw.clientCpuUs, 0)}`,
      ratio: `${fmt(ours.clientCpuUs / boss.clientCpuUs, 1)}x / ${fmt(ours.clientCpuUs / gw.clientCpuUs, 1)}x`,
    });
  }
  return {
    name: 'dispatch-throughput',
    title: 'Dispatch throughput (end to end, runs/s) and its cost in Postgres',
    machine,
    settings: {
      runs: N,
      concurrency: CONCURRENCIES.join(' and '),
      rounds: ROUNDS,
      target: 'function noop',
      flowwarden: 'the runs due at one instant in shared dispatch jobs of up to 100 (as the tick makes them); the single-run row: one job per run (as triggers make them)',
      graphileWorker: `${versionOf('graphile-worker')}, run({ concurrency, pgPool max concurrency+1, preset: { worker: ${JSON.stringify(GRAPHILE_BEST)} } }) per https://worker.graphile.org/docs/performance`,
      pgBoss: `${versionOf('pg-boss')}, work() best of: ${CONCURRENCIES.map((c) => `at ${c}: ${bossVariants(c, N).map((v) => v.label).join('; ')}`).join('; ')}; pollingIntervalSeconds=0.5, pool max concurrency+2`,
      costs: 'measured around every round, shown for each contender\'s best round: pg_stat_statements calls and execution time, pg_stat_user_tables n_tup_ins+upd+del, pg_current_wal_lsn diff, /proc CPU of the postmaster and its children; pg_stat_statements was loaded for every contender',
      reproduce: 'npm run bench -- dispatch-throughput (BENCH_DISPATCH_N, BENCH_CONCURRENCY, BENCH_ROUNDS; BENCH_PG_STAT_STATEMENTS=0 runs without pg_stat_statements)',
      loadAverage1m: loads.map((l) => fmt(l, 1)).join(' '),
    },
    rows: [...rows, ...costs],
    raw: Object.fromEntries(CONCURRENCIES.map((c) => [`concurrency${c}`, runs.get(c)])),
    at: new Date().toISOString(),
  };
}

export async function benchLatency(): Promise<BenchResult> {
  const { machine } = await benchServer();
  const db = await freshDatabase();
  const registry = new HandlerRegistry();
  registerBuiltins(registry);
  const starts = new Map<string, number>();
  registry.define('stamp', (ctx) => {
    starts.set(ctx.runId, Date.now());
  });
  const config = loadConfig({}, { concurrency: CONCURRENCY, port: 0, host: '127.0.0.1', tickIntervalMs: 1000, horizonSeconds: 10 });
  const app = await createApp({ config, log: silentLogger, databaseUrl: db.url, roles: ['scheduler', 'worker'], registry, migrate: false, autoStart: false });
  const FIRES = Number(process.env.BENCH_LATENCY_FIRES ?? 40);
  try {
    await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'lat', target: { type: 'function', handler: 'stamp' }, schedules: [{ name: 's', every: '1s', catchup: 'skip' }] }));
    await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'manual', target: { type: 'function', handler: 'stamp' } }));
    await app.start();
    log(`latency: ${FIRES} scheduled fires (every 1 s) and ${FIRES} manual triggers`);
    await waitUntil(() => starts.size >= FIRES + 3, 120_000, 100);
    const { rows } = await app.pool.query<{ id: string; scheduledFor: Date }>(
      `select r.id, r.scheduled_for as "scheduledFor" from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where f.name = 'lat' and r.state_type = 'COMPLETED' order by r.scheduled_for`,
    );
    // Skip the first fires (warm-up: the first tick may find them already due).
    const scheduled = rows.slice(3).filter((r) => starts.has(r.id)).map((r) => starts.get(r.id)! - r.scheduledFor.getTime()).sort((a, b) => a - b);
    const manual: number[] = [];
    for (let i = 0; i < FIRES; i++) {
      const t0 = Date.now();
      const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, 'manual', {}));
      await waitUntil(() => starts.has(runId), 10_000, 1);
      manual.push(starts.get(runId)! - t0);
      await new Promise((r) => setTimeout(r, 50));
    }
    manual.sort((a, b) => a - b);
    const p = (xs: number[], q: number) => percentile(xs, q);
    return {
      name: 'dispatch-latency',
      title: 'Dispatch latency at light load (ms)',
      machine,
      settings: { scheduledFires: scheduled.length, manualTriggers: manual.length, tickIntervalMs: 1000, horizonSeconds: 10, pollingIntervalSeconds: 0.5 },
      rows: [
        { metric: 'fire time → handler start p50', ours: `${fmt(p(scheduled, 50))} ms`, target: '<= 20 ms', met: p(scheduled, 50) <= 20 },
        { metric: 'fire time → handler start p99', ours: `${fmt(p(scheduled, 99))} ms`, target: '<= 200 ms', met: p(scheduled, 99) <= 200 },
        { metric: 'manual trigger → handler start p50', ours: `${fmt(p(manual, 50))} ms` },
        { metric: 'manual trigger → handler start p99', ours: `${fmt(p(manual, 99))} ms` },
      ],
      raw: { scheduled, manual },
      at: new Date().toISOString(),
    };
  } finally {
    await app.stop({ timeoutMs: 1000 });
    await db.drop();
  }
}

export { writeResult };
