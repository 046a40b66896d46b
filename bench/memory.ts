/**
 * 6. Memory: a worker pod's RSS (a real `flowwarden start --role worker` process), idle and while
 *    it dispatches MEMORY_RUNS due runs as fast as it can (the throughput benchmark's load).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { benchServer, fmt, freshDatabase, log, waitUntil, type BenchResult } from './support.ts';

const RUNS = Number(process.env.BENCH_MEMORY_RUNS ?? 20_000);
const MAIN = path.resolve(import.meta.dirname, '../src/cli/main.ts');
/**
 * The pod is started the way `npm start` (and the Dockerfile) start one: with the Node heap flags of
 * package.json's start script (BENCH_POD_FLAGS overrides them, e.g. '' to measure Node's defaults).
 */
const startScript = (JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
const POD_FLAGS = process.env.BENCH_POD_FLAGS !== undefined
  ? process.env.BENCH_POD_FLAGS.split(' ').filter(Boolean)
  : startScript.split(/\s+/).filter((a) => a.startsWith('--'));

function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

interface PodMemory {
  idle: number;
  peak: number;
  runsPerSecond: number;
  idleSamples: number[];
  loadSamples: number[];
}

/** Start a worker pod with `flags`, sample its RSS idle, then while it dispatches RUNS due runs. */
async function measurePod(flags: string[]): Promise<PodMemory> {
  const db = await freshDatabase();
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  const child = spawn(process.execPath, [...flags, MAIN, 'start', '--role', 'worker'], {
    env: { ...process.env, DATABASE_URL: db.url, FLOWWARDEN_PORT: '0', FLOWWARDEN_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    // Let it settle: started, queues polled, JIT warm.
    await new Promise((r) => setTimeout(r, 5000));
    const idleSamples: number[] = [];
    for (let i = 0; i < 10; i++) {
      idleSamples.push(rssMb(child.pid!));
      await new Promise((r) => setTimeout(r, 300));
    }
    const idle = Math.max(...idleSamples);
    log(`memory (${flags.join(' ') || 'Node defaults'}): idle RSS ${fmt(idle)} MB; loading ${RUNS} runs`);
    await pool.query(`insert into flowwarden.flows (name, target) values ('mem-noop', '{"type":"function","handler":"noop"}')`);
    const { PgBoss } = await import('pg-boss');
    const boss = new PgBoss({ connectionString: db.url, schema: 'flowwarden_queue', supervise: false, schedule: false });
    await boss.start();
    const { rows } = await pool.query<{ id: string }>(
      `insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, origin)
       select f.id, now(), 'SCHEDULED', 'Scheduled', 'manual' from flowwarden.flows f, generate_series(1, $1::int) where f.name = 'mem-noop' returning id`,
      [RUNS],
    );
    for (let i = 0; i < rows.length; i += 1000) await boss.insert('fw.dispatch', rows.slice(i, i + 1000).map((r) => ({ id: r.id, data: { runId: r.id } })));
    await boss.stop({ graceful: false });
    const loadSamples: number[] = [];
    const sampler = setInterval(() => loadSamples.push(rssMb(child.pid!)), 200);
    const t0 = performance.now();
    await waitUntil(async () => (await pool.query<{ n: number }>(`select count(*)::int as n from flowwarden.runs where state_type = 'COMPLETED'`)).rows[0]!.n >= RUNS, 900_000, 250);
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    return { idle, peak: Math.max(...loadSamples), runsPerSecond: RUNS / seconds, idleSamples, loadSamples };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await pool.end();
    await db.drop();
  }
}

export async function benchMemory(): Promise<BenchResult> {
  const { machine } = await benchServer();
  const pod = await measurePod(POD_FLAGS);
  // The same pod on Node's default heap sizing, for comparison (not a target).
  const defaults = await measurePod([]);
  return {
    name: 'memory',
    title: 'Memory of a worker pod (RSS)',
    machine,
    settings: { runs: RUNS, concurrency: 10, process: `node ${POD_FLAGS.join(' ')} src/cli/main.ts start --role worker`, node: process.version },
    rows: [
      { metric: 'idle RSS', ours: `${fmt(pod.idle)} MB`, target: '<= 150 MB', met: pod.idle <= 150 },
      { metric: `peak RSS while dispatching ${RUNS} runs (${fmt(pod.runsPerSecond)} runs/s)`, ours: `${fmt(pod.peak)} MB`, target: '<= 150 MB', met: pod.peak <= 150 },
      { metric: `for comparison, Node's default heap sizing: idle / peak (${fmt(defaults.runsPerSecond)} runs/s)`, ours: `${fmt(defaults.idle)} MB / ${fmt(defaults.peak)} MB` },
    ],
    raw: { pod, nodeDefaults: defaults },
    at: new Date().toISOString(),
  };
}

export const benches = { memory: benchMemory };
