/**
 * Queries at volume (issue 14): every query an operator or a loop runs, timed on a database with
 * SMALL runs and on one with LARGE runs (default 10,000 and 10,000,000), side by side. The data is
 * the same shape in both: 1,000 flows with one every-minute schedule each, SMALL/1000 minutes of
 * history ending now (95% COMPLETED, 4% FAILED, 1% CANCELLED, never three failures in a row), the
 * last 2 minutes still SCHEDULED. The large database is seeded with generate_series (uuidv7 keys,
 * the secondary indexes rebuilt after the insert), about a minute per million runs here.
 *
 * Each query: 2 warm-up calls, then the median of BENCH_VOLUME_REPS. For each, the statement that
 * took longest in one traced call is EXPLAINed (ANALYZE, in a rolled-back transaction) and its plan
 * shape (the node types) is kept in the result; bench/NOTES.md discusses them.
 *
 * BENCH_VOLUME_SMALL, BENCH_VOLUME_LARGE (runs), BENCH_VOLUME_REPS.
 */
import pg from 'pg';
import { createApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { silentLogger } from '../src/log.ts';
import { pageRuns } from '../src/runs/read.ts';
import { rollupRunMinutes } from '../src/queries/chart.ts';
import { benchServer, fmt, freshDatabase, log, type BenchResult } from './support.ts';

const SMALL = Number(process.env.BENCH_VOLUME_SMALL ?? 10_000);
const LARGE = Number(process.env.BENCH_VOLUME_LARGE ?? 10_000_000);
const REPS = Number(process.env.BENCH_VOLUME_REPS ?? 9);
const FLOWS = 1000;
const OPEN_MINUTES = 2;
const TOKEN = 'bench-admin-token-0123456789';

/** Seed `runs` runs (FLOWS per minute) ending at the current minute. Returns that minute. */
export async function seedVolume(url: string, runs: number): Promise<Date> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`set maintenance_work_mem = '512MB'; set synchronous_commit = off`);
    const t0 = (await c.query<{ t: Date }>(`select date_trunc('minute', now()) as t`)).rows[0]!.t;
    const minutes = Math.max(OPEN_MINUTES + 1, Math.round(runs / FLOWS));
    await c.query(`insert into flowwarden.flows (name, target) select 'vol-' || lpad(g::text, 4, '0'), '{"type":"function","handler":"noop"}' from generate_series(1, $1) g`, [FLOWS]);
    // The flows have existed for the whole history (their health baseline is its start).
    await c.query(`update flowwarden.flows set valid_since = $1::timestamptz - make_interval(mins => $2), created_at = $1::timestamptz - make_interval(mins => $2)`, [t0, minutes]);
    await c.query(
      `insert into flowwarden.schedules (flow_id, name, kind, cron, timezone, next_run_at, last_run_at, catchup)
       select id, 'every-minute', 'cron', '* * * * *', 'UTC', $1::timestamptz + interval '1 minute', $1, 'skip' from flowwarden.flows`,
      [t0],
    );
    const defs = (await c.query<{ name: string; def: string }>(
      `select indexname as name, indexdef as def from pg_indexes where schemaname = 'flowwarden' and tablename = 'runs' and indexname <> 'runs_pkey'`,
    )).rows;
    for (const d of defs) await c.query(`drop index flowwarden.${d.name}`);
    // One statement per day of minutes keeps each transaction's WAL and memory modest.
    const perStatement = 1440;
    for (let from = minutes; from > 0; from -= perStatement) {
      const to = Math.max(1, from - perStatement + 1);
      await c.query(
        `insert into flowwarden.runs (id, flow_id, schedule_id, scheduled_for, created_at, started_at, ended_at, updated_at,
                                      state_type, state_name, origin, dispatch_attempt)
         select uuidv7(), s.flow_id, s.id, t, t - interval '30 seconds',
                case when open then null else t end, case when open then null else t + interval '1 second' end,
                case when open then t - interval '30 seconds' else t + interval '1 second' end,
                case when open then 'SCHEDULED' when k < 95 then 'COMPLETED' when k < 99 then 'FAILED' else 'CANCELLED' end,
                case when open then 'Scheduled' when k < 95 then 'Completed' when k < 99 then 'Failed' else 'Skipped' end,
                'schedule', case when open then null else 0 end
           from generate_series($2::int, $3::int, -1) m
           cross join lateral (select $1::timestamptz - make_interval(mins => m - 1) as t, m <= $4 as open) tm
           cross join (select id, flow_id, row_number() over (order by id) as n from flowwarden.schedules) s
           cross join lateral (select ((m * 7919 + s.n * 104729) % 100)::int as k) kk
          order by m desc, s.n`,
        [t0, from, to, OPEN_MINUTES],
      );
      if (minutes > 20_000 / FLOWS) log(`volume: seeded ${((minutes - to + 1) * FLOWS).toLocaleString('en')} runs`);
    }
    for (const d of defs) await c.query(d.def);
    await c.query('vacuum analyze flowwarden.runs');
    await c.query('analyze');
    // The chart's rollup as the scheduler's loop leaves it: every settled minute counted.
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    try {
      while ((await rollupRunMinutes(pool, { maxMinutes: 24 * 60 })) > 0);
    } finally {
      await pool.end();
    }
    return t0;
  } finally {
    await c.end();
  }
}

interface Traced {
  text: string;
  values: unknown[] | undefined;
  ms: number;
}

let tracing: Traced[] | undefined;
/** Time every statement any pg.Client sends while `tracing` is set (pg-boss's included). */
function installTracer(): void {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown; __fwTraced?: boolean };
  if (proto.__fwTraced) return;
  proto.__fwTraced = true;
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const sink = tracing;
    if (!sink) return original.apply(this, args);
    const first = args[0] as string | { text: string; values?: unknown[] };
    const text = typeof first === 'string' ? first : first?.text;
    const values = (typeof first === 'string' ? args[1] : first?.values) as unknown[] | undefined;
    const started = performance.now();
    const record = () => {
      if (typeof text === 'string') sink.push({ text, values: Array.isArray(values) ? values : undefined, ms: performance.now() - started });
    };
    // pg.Pool calls client.query with a callback; everything else awaits the promise.
    const cbAt = args.findIndex((a) => typeof a === 'function');
    if (cbAt >= 0) {
      const cb = args[cbAt] as (...a: unknown[]) => void;
      args[cbAt] = (...a: unknown[]) => {
        record();
        cb(...a);
      };
      return original.apply(this, args);
    }
    const out = original.apply(this, args);
    if (out instanceof Promise) return out.then((r) => (record(), r));
    return out;
  };
}

/** Pool-level queries too (pg-pool's own checkout path is not always seen by the client wrapper). */
function tracePool(pool: pg.Pool): void {
  const original = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = (...args: unknown[]) => {
    const sink = tracing;
    const out = original(...args);
    if (!sink) return out;
    const first = args[0] as string | { text: string; values?: unknown[] };
    const text = typeof first === 'string' ? first : first?.text;
    const values = (typeof first === 'string' ? args[1] : first?.values) as unknown[] | undefined;
    const started = performance.now();
    return out.then((r) => {
      if (typeof text === 'string') sink.push({ text, values: Array.isArray(values) ? values : undefined, ms: performance.now() - started });
      return r;
    });
  };
}

/** The plan of the slowest traced statement: node types, indented, from EXPLAIN ANALYZE in a rolled-back transaction. */
async function planOf(url: string, traced: Traced[]): Promise<{ statement: string; ms: number; plan: string }> {
  const candidates = traced.filter((t) => /^\s*(with|select|insert|update|delete)\b/i.test(t.text) && !t.text.includes(';')).sort((a, b) => b.ms - a.ms);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // The slowest statement that EXPLAIN accepts with the values it was sent with.
    for (const top of candidates.slice(0, 5)) {
      try {
        await c.query('begin');
        const { rows } = await c.query<{ 'QUERY PLAN': string }>(`explain (analyze, costs off, timing off, summary off) ${top.text}`, top.values ?? []);
        const plan = rows
          .map((r) => r['QUERY PLAN'])
          .filter((l) => /->|^\S/.test(l) && !/^\s*(Filter|Index Cond|Recheck|Sort Key|Join Filter|Rows Removed|Heap Blocks|Hash Cond|Output|Buffers)/.test(l.trim()))
          .map((l) => l.replace(/\s*\(actual rows=.*$/, ''))
          .join('\n');
        return { statement: top.text.replace(/\s+/g, ' ').slice(0, 160), ms: top.ms, plan };
      } catch {
        // e.g. a statement traced without its values: try the next one.
      } finally {
        await c.query('rollback').catch(() => undefined);
      }
    }
    return { statement: '', ms: 0, plan: '' };
  } finally {
    await c.end();
  }
}

interface Named {
  name: string;
  run: () => Promise<unknown>;
  /** Put the data back after a call that changed it (outside the timing). */
  reset?: () => Promise<unknown>;
}

async function measure(app: App, url: string, queries: Named[]): Promise<Map<string, { ms: number; plan: Awaited<ReturnType<typeof planOf>> }>> {
  const out = new Map<string, { ms: number; plan: Awaited<ReturnType<typeof planOf>> }>();
  for (const q of queries) {
    const times: number[] = [];
    for (let i = 0; i < REPS + 2; i++) {
      await q.reset?.();
      const started = performance.now();
      await q.run();
      if (i >= 2) times.push(performance.now() - started);
    }
    await q.reset?.();
    tracing = [];
    await q.run();
    const traced = tracing;
    tracing = undefined;
    times.sort((a, b) => a - b);
    out.set(q.name, { ms: times[Math.floor(times.length / 2)]!, plan: await planOf(url, traced) });
    void app;
  }
  return out;
}

async function volumeAt(size: number): Promise<{ results: Awaited<ReturnType<typeof measure>>; runs: number; seedMs: number; bytes: number }> {
  const db = await freshDatabase();
  const seedStart = performance.now();
  log(`volume: seeding ${size.toLocaleString('en')} runs`);
  const t0 = await seedVolume(db.url, size);
  const seedMs = performance.now() - seedStart;
  const config = loadConfig({}, { adminToken: TOKEN, port: 0, host: '127.0.0.1', concurrency: 4 });
  const app = await createApp({ config, log: silentLogger, databaseUrl: db.url, roles: ['all'], migrate: false, autoStart: false });
  try {
    const pool = app.pool;
    const api = app.api!;
    const login = await api.inject({ method: 'POST', url: '/admin/login', payload: `token=${TOKEN}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const get = async (url: string, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) => {
      const res = await api.inject({ url, headers });
      if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      return res;
    };
    // A deep page: the cursor of the page that starts ~3 days back (keyset, so the depth is one seek).
    const deep = (await pool.query<{ s: string; id: string }>(
      `select to_char(scheduled_for at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as s, id::text from flowwarden.runs
        order by scheduled_for, id limit 1 offset $1`,
      [Math.floor(size / 2)],
    )).rows[0]!;
    const cursor = Buffer.from(JSON.stringify([deep.s, deep.id])).toString('base64url');
    let tickMinute = 1;
    const queries: Named[] = [
      {
        name: 'tick (1,000 due schedules → 1,000 runs + dispatch jobs)',
        reset: () => pool.query(`update flowwarden.schedules set next_run_at = $1`, [new Date(t0.getTime() + tickMinute * 60_000)]),
        run: async () => {
          const at = new Date(t0.getTime() + tickMinute++ * 60_000);
          const r = await app.scheduler.runOnce({ now: at });
          if (r.created < FLOWS) throw new Error(`tick created ${r.created}`);
        },
      },
      {
        name: 'late sweep (2,000 open runs to mark)',
        reset: () => pool.query(`update flowwarden.runs set state_name = 'Scheduled' where state_type = 'SCHEDULED' and state_name = 'Late' and scheduled_for <= $1`, [t0]),
        run: () => app.lateSweeper.runOnce({ now: new Date(t0.getTime() + 30_000) }),
      },
      { name: 'health sweep', run: () => app.healthSweeper.runOnce({ now: t0 }) },
      { name: 'GET /api/runs (default page)', run: () => get('/api/runs') },
      { name: 'GET /api/runs?flow=… (one flow)', run: () => get('/api/runs?flow=vol-0500') },
      { name: 'GET /api/runs?state=FAILED', run: () => get('/api/runs?state=FAILED') },
      { name: 'GET /api/runs?state=RUNNING (none)', run: () => get('/api/runs?state=RUNNING') },
      { name: 'GET /api/runs?cursor=… (a page half-way down)', run: () => get(`/api/runs?cursor=${cursor}`) },
      { name: "admin: a flow's page", run: () => get('/admin/flows/vol-0500', { cookie }) },
      { name: 'admin: overview', run: () => get('/admin', { cookie }) },
      { name: 'flowwarden runs list (pageRuns, 50)', run: () => pageRuns(pool, { limit: 50 }) },
      { name: 'flowwarden runs list --flow', run: () => pageRuns(pool, { flowName: 'vol-0500', limit: 50 }) },
    ];
    const runs = Number((await pool.query(`select count(*) as n from flowwarden.runs`)).rows[0].n);
    installTracer();
    tracePool(pool);
    const results = await measure(app, db.url, queries);
    const bytes = Number((await pool.query(`select pg_database_size(current_database()) as b`)).rows[0].b);
    return { results, runs, seedMs, bytes };
  } finally {
    await app.stop({ timeoutMs: 1000 });
    await db.drop();
  }
}

export async function benchVolume(): Promise<BenchResult> {
  const { machine } = await benchServer();
  const small = await volumeAt(SMALL);
  const large = await volumeAt(LARGE);
  const rows: BenchResult['rows'] = [];
  const plans: Record<string, unknown> = {};
  for (const [name, s] of small.results) {
    const l = large.results.get(name)!;
    const ratio = l.ms / s.ms;
    rows.push({ metric: name, ours: `${fmt(l.ms, 1)} ms`, peer: `${fmt(s.ms, 1)} ms`, ratio: `${fmt(ratio, 2)}x`, target: '<= 2x', met: ratio <= 2 });
    plans[name] = { small: s.plan, large: l.plan };
  }
  return {
    name: 'volume',
    title: `Queries at volume (${LARGE.toLocaleString('en')} runs vs ${SMALL.toLocaleString('en')}; "flowwarden" = large, "peer" = small)`,
    machine,
    settings: { small: SMALL, large: LARGE, flows: FLOWS, reps: REPS, openRuns: FLOWS * OPEN_MINUTES },
    rows: [
      ...rows,
      { metric: 'seeding (runs, s)', ours: `${large.runs.toLocaleString('en')} in ${fmt(large.seedMs / 1000, 0)} s`, peer: `${small.runs.toLocaleString('en')} in ${fmt(small.seedMs / 1000, 1)} s` },
      { metric: 'database size', ours: `${fmt(large.bytes / 2 ** 20, 0)} MiB`, peer: `${fmt(small.bytes / 2 ** 20, 0)} MiB` },
    ],
    raw: { plans, small: Object.fromEntries([...small.results].map(([k, v]) => [k, v.ms])), large: Object.fromEntries([...large.results].map(([k, v]) => [k, v.ms])) },
    at: new Date().toISOString(),
  };
}


/**
 * Retention delete rate: RATE_RUNS expired runs (seeded as above), one sweeper with the default
 * batch size deleting until nothing is left; runs per second of sweep time. This is the figure
 * that decides whether deleting rows keeps up or partitions must be dropped (docs/scaling.md).
 */
export async function benchRetentionRate(): Promise<BenchResult> {
  const RATE_RUNS = Number(process.env.BENCH_RETENTION_RUNS ?? 1_000_000);
  const { machine } = await benchServer();
  const db = await freshDatabase();
  try {
    await seedVolume(db.url, RATE_RUNS);
    // Every run has a history row too (the common path keeps it on the run row; failures and retries add rows).
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query(`insert into flowwarden.run_state_history (run_id, to_type, to_name, at) select id, state_type, state_name, ended_at from flowwarden.runs where ended_at is not null`);
    await c.query('analyze');
    await c.end();
    const config = loadConfig({ FLOWWARDEN_RUN_RETENTION_SECONDS: '60' }, { port: 0, host: '127.0.0.1' });
    const app = await createApp({ config, log: silentLogger, databaseUrl: db.url, roles: ['scheduler'], migrate: false, autoStart: false });
    try {
      const started = performance.now();
      let runs = 0;
      let history = 0;
      let passes = 0;
      for (;;) {
        const r = await app.retentionSweeper.runOnce({ now: new Date(Date.now() + 300_000) });
        runs += r.runs;
        history += r.run_state_history;
        passes++;
        if (r.runs === 0) break;
      }
      const seconds = (performance.now() - started) / 1000;
      const left = Number((await app.pool.query(`select count(*) as n from flowwarden.runs`)).rows[0].n);
      return {
        name: 'retention-rate',
        title: `Retention delete rate (${RATE_RUNS.toLocaleString('en')} expired runs, one sweeper, batch ${config.retention.batchSize})`,
        machine,
        settings: { runs: RATE_RUNS, batchSize: config.retention.batchSize, keepRuns: config.retention.keepRuns, flows: FLOWS },
        rows: [
          { metric: 'runs deleted per second of sweep (with their history rows)', ours: `${fmt(runs / seconds, 0)} runs/s` },
          { metric: 'runs deleted / history rows deleted', ours: `${runs.toLocaleString('en')} / ${history.toLocaleString('en')}` },
          { metric: 'runs left (newest per flow + open)', ours: left.toLocaleString('en'), target: `${(FLOWS * (config.retention.keepRuns + OPEN_MINUTES)).toLocaleString('en')}`, met: left === FLOWS * (config.retention.keepRuns + OPEN_MINUTES) },
          { metric: 'sweep time (passes)', ours: `${fmt(seconds, 1)} s (${passes})` },
        ],
        raw: { runs, history, seconds, passes, left },
        at: new Date().toISOString(),
      };
    } finally {
      await app.stop({ timeoutMs: 1000 });
    }
  } finally {
    await db.drop();
  }
}

export const benches = { volume: benchVolume, 'retention-rate': benchRetentionRate };
