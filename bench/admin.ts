/**
 * 6. Admin pages: RUNS runs over the last 7 days across FLOWS flows (states mixed as in a real
 *    estate: mostly completed, some failed, cancelled pre-created runs, a few running/late, one
 *    hot flow with a run every few seconds) → server time per page (fastify inject: routing, the
 *    reads, rendering; no network), p50/p95 over REPEAT requests each, target p95 < 500 ms. The
 *    query plans behind the figures are printed (BENCH_ADMIN_PLANS=1) and noted in bench/NOTES.md.
 */
import pg from 'pg';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { silentLogger } from '../src/log.ts';
import { HandlerRegistry, registerBuiltins } from '../src/targets/function.ts';
import { benchServer, fmt, freshDatabase, log, percentile, type BenchResult } from './support.ts';

const RUNS = Number(process.env.BENCH_ADMIN_RUNS ?? 1_000_000);
const FLOWS = Number(process.env.BENCH_ADMIN_FLOWS ?? 1_000);
const REPEAT = Number(process.env.BENCH_ADMIN_REPEAT ?? 30);
const TARGET_MS = 500;
const TOKEN = 'bench-admin-token-0123456789';

async function seed(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`insert into flowwarden.flows (name, target) select 'flow-' || lpad(g::text, 5, '0'), '{"type":"function"}' from generate_series(1, $1::int) g`, [FLOWS]);
  await c.query(`insert into flowwarden.flows (name, target) values ('hot-flow', '{"type":"function"}'), ('rare-flow', '{"type":"function"}')`);
  await c.query(
    `insert into flowwarden.schedules (flow_id, name, kind, interval_seconds, next_run_at)
     select id, 'every-5m', 'interval', 300, now() + make_interval(secs => (random() * 300)::int) from flowwarden.flows`,
  );
  // 85% of the runs over FLOWS flows, 15% on the hot flow (one every ~4 s), 20 on the rare flow;
  // spread over 7 days, newest inserted last (as a live system writes them).
  const hot = Math.floor(RUNS * 0.15);
  await c.query(
    `insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, state_message, origin, started_at, ended_at, created_at)
     select case when g % 100 < 15 then (select id from flowwarden.flows where name = 'hot-flow')
                 else (select id from flowwarden.flows where name = 'flow-' || lpad((1 + g % $2::int)::text, 5, '0')) end,
            t, st.type, st.name, case when st.type in ('FAILED', 'CRASHED') then 'upstream error #' || g end,
            case when g % 50 = 0 then 'manual' when g % 23 = 0 then 'api' else 'schedule' end,
            t + interval '1 second', case when st.type in ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED') then t + interval '3 seconds' end, t - interval '30 seconds'
       from generate_series(1, $1::int) g,
            lateral (select now() - make_interval(secs => (7 * 86400.0 * ($1::int - g) / $1::int)) as t) tt,
            lateral (select case when g % 97 = 0 then 'FAILED' when g % 991 = 0 then 'CRASHED' when g % 31 = 0 then 'CANCELLED' else 'COMPLETED' end as type) s0,
            lateral (select s0.type as type, initcap(s0.type) as name) st`,
    [RUNS - hot - 20, FLOWS],
  );
  await c.query(
    `insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, origin, started_at, ended_at, created_at)
     select (select id from flowwarden.flows where name = 'hot-flow'), t,
            case when g % 29 = 0 then 'CANCELLED' else 'COMPLETED' end, case when g % 29 = 0 then 'Skipped' else 'Completed' end, 'schedule',
            t + interval '1 second', t + interval '2 seconds', t - interval '30 seconds'
       from generate_series(1, $1::int) g, lateral (select now() - make_interval(secs => 4 * g) as t) tt`,
    [hot],
  );
  await c.query(
    `insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, origin)
     select (select id from flowwarden.flows where name = 'rare-flow'), now() - make_interval(days => g % 7, mins => g), 'FAILED', 'Failed', 'manual'
       from generate_series(1, 20) g`,
  );
  // The live edge: running, late and pre-created runs.
  await c.query(
    `insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, origin)
     select (select id from flowwarden.flows where name = 'flow-' || lpad((1 + g % $1::int)::text, 5, '0')),
            now() + make_interval(secs => g % 60 - 30), case when g % 3 = 0 then 'RUNNING' else 'SCHEDULED' end,
            case when g % 3 = 0 then 'Running' when g % 3 = 1 then 'Late' else 'Scheduled' end, 'schedule'
       from generate_series(1, 300) g`,
    [FLOWS],
  );
  await c.query('vacuum analyze');
  await c.query('checkpoint');
  await c.end();
}

export async function benchAdmin(): Promise<BenchResult> {
  const { machine } = await benchServer();
  const db = await freshDatabase();
  try {
    log(`admin: seeding ${RUNS} runs over ${FLOWS} flows`);
    const t0 = performance.now();
    await seed(db.url);
    log(`admin: seeded in ${fmt((performance.now() - t0) / 1000)} s`);
    const registry = new HandlerRegistry();
    registerBuiltins(registry);
    const app = await createApp({
      config: loadConfig({}, { port: 0, host: '127.0.0.1', adminToken: TOKEN }),
      log: silentLogger, databaseUrl: db.url, roles: ['api'], registry, migrate: false, autoStart: false,
    });
    try {
      const api = app.api!;
      const login = await api.inject({ method: 'POST', url: '/admin/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${TOKEN}` });
      const cookie = String(login.headers['set-cookie']).split(';')[0]!;
      const get = async (url: string) => {
        const res = await api.inject({ method: 'GET', url, headers: { cookie } });
        if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode}`);
        return res.body;
      };
      // A cursor 40 pages deep into the unfiltered walk (2,000 runs back).
      let deep = '/admin/runs?range=all';
      for (let i = 0; i < 40; i++) {
        const m = /<a id="older" href="([^"]+)">/.exec(await get(deep));
        if (!m) break;
        deep = m[1]!.replace(/&amp;/g, '&');
      }
      const pages: Array<[string, string]> = [
        ['overview (chart, due, running, late, failures)', '/admin'],
        ['flows list (500 per page)', '/admin/flows'],
        ['flow page, hot flow (strip, recent, cancelled)', '/admin/flows/hot-flow'],
        ['flow page, ordinary flow', '/admin/flows/flow-00042'],
        ['runs, default (last 24 h)', '/admin/runs'],
        ['runs, any time', '/admin/runs?range=all'],
        ['runs, 40 pages deep', deep],
        ['runs, failed + crashed, last 1 h', '/admin/runs?state=FAILED&state=CRASHED&range=1h'],
        ['runs, failed + crashed, last 24 h', '/admin/runs?state=FAILED&state=CRASHED&range=24h'],
        ['runs, late', '/admin/runs?state=LATE&range=24h'],
        ['runs, origin manual, last 24 h', '/admin/runs?origin=manual&range=24h'],
        ['runs, one flow, any time', '/admin/runs?flow=flow-00042&range=all'],
        ['runs, rare flow (20 runs), any time', '/admin/runs?flow=rare-flow&range=all'],
        ['runs, crashed, any time (rare state)', '/admin/runs?state=CRASHED&range=all'],
      ];
      const rows: BenchResult['rows'] = [];
      const raw: Record<string, unknown> = {};
      for (const [label, url] of pages) {
        await get(url); // warm
        const ms: number[] = [];
        for (let i = 0; i < REPEAT; i++) {
          const s = performance.now();
          await get(url);
          ms.push(performance.now() - s);
        }
        ms.sort((a, b) => a - b);
        const p50 = percentile(ms, 50), p95 = percentile(ms, 95);
        log(`admin: ${label}: p50 ${fmt(p50)} ms, p95 ${fmt(p95)} ms`);
        rows.push({ metric: `${label}: p95 (p50)`, ours: `${fmt(p95)} ms (${fmt(p50)} ms)`, target: `< ${TARGET_MS} ms`, met: p95 < TARGET_MS });
        raw[label] = { url, p50, p95, max: ms.at(-1) };
      }
      if (process.env.BENCH_ADMIN_PLANS === '1') await printPlans(db.url);
      return {
        name: 'admin-pages', title: 'Admin pages: server time per page over a large run history', machine,
        settings: { BENCH_ADMIN_RUNS: RUNS, BENCH_ADMIN_FLOWS: FLOWS, BENCH_ADMIN_REPEAT: REPEAT },
        rows, raw, at: new Date().toISOString(),
      };
    } finally {
      await app.stop({ timeoutMs: 1000 });
    }
  } finally {
    await db.drop();
  }
}

/** EXPLAIN ANALYZE of the reads that carry the heavy pages (for bench/NOTES.md). */
async function printPlans(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const plans: Array<[string, string]> = [
    ['chart (3 h window)', `select date_trunc('minute', scheduled_for), case when state_type = 'SCHEDULED' and state_name = 'Late' then 'LATE' else state_type end, count(*) from flowwarden.runs where scheduled_for >= now() - interval '3 hours' and scheduled_for < now() group by 1, 2`],
    ['runs, any time', `select r.id from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where r.scheduled_for < now() order by r.scheduled_for desc, r.id desc limit 51`],
    ['runs, failed 24 h', `select r.id from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where r.state_type = any('{FAILED,CRASHED}'::text[]) and r.scheduled_for >= now() - interval '24 hours' and r.scheduled_for < now() order by r.scheduled_for desc, r.id desc limit 51`],
    ['runs, one flow', `select r.id from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where r.flow_id = (select id from flowwarden.flows where name = 'flow-00042') and r.scheduled_for < now() order by r.scheduled_for desc, r.id desc limit 51`],
    ['runs, crashed any time', `select r.id from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where r.state_type = any('{CRASHED}'::text[]) and r.scheduled_for < now() order by r.scheduled_for desc, r.id desc limit 51`],
    ['strip, hot flow', `select id from flowwarden.runs r where r.flow_id = (select id from flowwarden.flows where name = 'hot-flow') and r.scheduled_for <= now() order by r.scheduled_for desc, r.id desc limit 40`],
    ['flow page recent (200), hot flow', `select r.id from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where r.flow_id = (select id from flowwarden.flows where name = 'hot-flow') and r.scheduled_for < now() order by r.scheduled_for desc, r.id desc limit 200`],
    ['health streak, hot flow', `select r.id from flowwarden.runs r where r.flow_id = (select id from flowwarden.flows where name = 'hot-flow') and r.state_type in ('COMPLETED', 'FAILED', 'CRASHED') and (r.scheduled_for >= now() - interval '30 days' or (r.origin <> 'watch' and r.created_at >= now() - interval '30 days')) order by r.created_at desc, r.scheduled_for desc, r.id desc limit 3`],
    ['recent failures (24 h)', `select r.id from flowwarden.runs r where r.state_type in ('FAILED', 'CRASHED') and coalesce(r.ended_at, r.updated_at) >= now() - interval '24 hours' order by coalesce(r.ended_at, r.updated_at) desc, r.id desc limit 20`],
  ];
  for (const [label, sql] of plans) {
    const { rows } = await c.query(`explain (analyze, buffers, costs off) ${sql}`);
    log(`plan: ${label}\n${rows.map((r) => `    ${r['QUERY PLAN']}`).join('\n')}`);
  }
  await c.end();
}

export const benches = { 'admin-pages': benchAdmin };
