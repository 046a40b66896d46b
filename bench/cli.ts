/**
 * CLI start-up: wall time of whole `flowwarden` processes (bin/flowwarden.mjs, the project's Node),
 * as an operator meets them: `--help`, a usage error, and the read commands `runs list`, `flows list`
 * and `flows show` against a running database (200 flows, 5,000 runs). Each command runs
 * BENCH_CLI_ROUNDS times (default 15) after one warm-up (which fills Node's compile cache); the
 * median and p90 are reported, next to a bare `node -e 0` as the floor no command can beat.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { benchServer, fmt, freshDatabase, log, percentile, type BenchResult } from './support.ts';

const ROUNDS = Number(process.env.BENCH_CLI_ROUNDS ?? 15);
const BIN = path.resolve(import.meta.dirname, '../bin/flowwarden.mjs');

function once(args: string[], env: Record<string, string>): Promise<{ ms: number; code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ ms: performance.now() - started, code: code ?? 1, out }));
  });
}

async function measure(label: string, args: string[], env: Record<string, string>, expectCode: number): Promise<number[]> {
  const warm = await once(args, env);
  if (warm.code !== expectCode) throw new Error(`${label}: exit ${warm.code}, expected ${expectCode}:\n${warm.out}`);
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) times.push((await once(args, env)).ms);
  times.sort((a, b) => a - b);
  log(`  ${label}: median ${fmt(percentile(times, 50), 0)} ms, p90 ${fmt(percentile(times, 90), 0)} ms`);
  return times;
}

async function benchCli(): Promise<BenchResult> {
  const { machine } = await benchServer();
  const db = await freshDatabase();
  try {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query(`insert into flowwarden.flows (name, target) select 'flow-' || g, '{"type":"function","handler":"noop"}' from generate_series(1, 200) g`);
    await c.query(
      `insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, origin)
       select (select id from flowwarden.flows where name = 'flow-' || (1 + g % 200)), now() - make_interval(secs => g), 'COMPLETED', 'Completed', 'manual'
         from generate_series(1, 5000) g`,
    );
    await c.end();
    const env = { DATABASE_URL: db.url };
    const load = os.loadavg()[0]!;
    const floor = await measure('node -e 0', ['-e', '0'], {}, 0);
    const cases: Array<{ metric: string; args: string[]; code: number; target: number }> = [
      { metric: '`flowwarden --help`', args: ['--help'], code: 0, target: 300 },
      { metric: 'usage error (`flowwarden runs list --bogus`)', args: ['runs', 'list', '--bogus'], code: 2, target: 300 },
      { metric: '`flowwarden runs list`', args: ['runs', 'list'], code: 0, target: 1000 },
      { metric: '`flowwarden flows list`', args: ['flows', 'list'], code: 0, target: 1000 },
      { metric: '`flowwarden flows show flow-7`', args: ['flows', 'show', 'flow-7'], code: 0, target: 1000 },
    ];
    const rows: BenchResult['rows'] = [{ metric: 'bare `node -e 0` (the floor)', ours: `${fmt(percentile(floor, 50), 0)} ms (p90 ${fmt(percentile(floor, 90), 0)})` }];
    const raw: Record<string, unknown> = { 'node -e 0': floor };
    for (const k of cases) {
      const times = await measure(k.metric, [BIN, ...k.args], env, k.code);
      raw[k.metric] = times;
      const median = percentile(times, 50);
      rows.push({ metric: `${k.metric} median wall`, ours: `${fmt(median, 0)} ms (p90 ${fmt(percentile(times, 90), 0)})`, target: `<= ${k.target} ms`, met: median <= k.target });
    }
    return {
      name: 'cli',
      title: 'CLI start-up (wall time per process, ms)',
      machine,
      settings: { rounds: ROUNDS, flows: 200, runs: 5000, loadAverage1m: Number(load.toFixed(2)), entry: 'bin/flowwarden.mjs (compile cache warm)' },
      rows,
      raw,
      at: new Date().toISOString(),
    };
  } finally {
    await db.drop();
  }
}

export const benches = { cli: benchCli };
