/**
 * What one measured window costs Postgres, read from Postgres itself: statements (pg_stat_statements
 * when the server loads it, else committed transactions), row versions written (pg_stat_user_tables),
 * WAL bytes (pg_current_wal_lsn) and the CPU of the server's processes (/proc, same host only).
 * Table statistics reach the shared counters when a backend ends, so the caller closes every pool of
 * the contender before `after()`; statements the harness itself sends select HARNESS and are left out.
 */
import fs from 'node:fs';
import pg from 'pg';

/**
 * A column alias every harness query on a contender's database (polls, counts) selects, so it is not
 * counted (pg_stat_statements keeps identifiers but drops comments and normalises constants).
 */
export const HARNESS = '0 as bench_harness';

export interface Statement { query: string; calls: number; rows: number; ms: number }
export interface Cost {
  /** Jobs/runs the window moved; per-job figures divide by it. */
  jobs: number;
  /** Statements executed (incl. BEGIN/COMMIT) — null without pg_stat_statements. */
  statements: number | null;
  /** Execution time of those statements, ms (planning not included). */
  execMs: number | null;
  /** Committed transactions on the database (pg_stat_database.xact_commit). */
  commits: number;
  /** Inserted + updated + deleted row versions over all tables of the database. */
  rowVersions: number;
  /** Of those, per table (schema.table: ins/upd(hot)/del). */
  tables: Record<string, string>;
  walBytes: number;
  /** CPU seconds of all Postgres processes (backends, walwriter, checkpointer, autovacuum...). */
  cpuSeconds: number | null;
  /**
   * That CPU by kind of process, from sampling /proc every 100 ms during the window: the
   * contender's backends, autovacuum workers, background processes (walwriter, checkpointer...),
   * other sessions (harness, probe), and what no sample saw (the last moments of exited processes).
   */
  cpuByKind: Record<string, number> | null;
  /** The statements that took the most execution time, per job. */
  top: Array<{ query: string; callsPerJob: number; rowsPerCall: number; msPerCall: number; usPerJob: number }>;
}

interface Snapshot {
  statements: Map<string, Statement> | null;
  tables: Map<string, { ins: number; upd: number; hot: number; del: number }>;
  commits: number;
  lsn: string;
  cpuTicks: number | null;
}

const TICKS = 100; // USER_HZ on Linux (getconf CLK_TCK)

function ticksOf(pid: number | string): { own: number; children: number; ppid: number } | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ": state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based from pid.
    return { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
  } catch {
    return null;
  }
}

/** The postmaster's own and reaped children's CPU plus every live child's: exited backends count too. */
function serverTicks(postmaster: number): number | null {
  const pm = ticksOf(postmaster);
  if (!pm) return null;
  let sum = pm.own + pm.children;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const t = ticksOf(entry);
    if (t && t.ppid === postmaster) sum += t.own;
  }
  return sum;
}

/** What a server process is, from its title (postgres: <user> <db> <host> <state> / postgres: autovacuum worker ...). */
function kindOf(pid: string, dbName: string): string {
  let title: string;
  try {
    title = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return 'unseen';
  }
  if (/autovacuum (worker|launcher)/.test(title)) return 'autovacuum';
  if (/walwriter|wal writer|checkpointer|background writer|io worker|archiver|logical replication|walsummarizer/.test(title)) return 'background';
  return title.includes(` ${dbName} `) && !title.includes('pg_stat_statements') ? 'contender' : 'other sessions';
}

/** Samples the server's children every 100 ms: CPU ticks each was seen to use during the window, by kind. */
function cpuSampler(postmaster: number, dbName: string): { stop(): Record<string, number> } {
  const seen = new Map<string, { kind: string; first: number; last: number }>();
  let initial = true;
  const sample = () => {
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const t = ticksOf(entry);
      if (!t || t.ppid !== postmaster) continue;
      const known = seen.get(entry);
      if (known) known.last = t.own;
      else seen.set(entry, { kind: kindOf(entry, dbName), first: initial ? t.own : 0, last: t.own });
    }
    initial = false;
  };
  sample();
  const timer = setInterval(sample, 100);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const byKind: Record<string, number> = {};
      for (const v of seen.values()) byKind[v.kind] = (byKind[v.kind] ?? 0) + (v.last - v.first) / TICKS;
      return byKind;
    },
  };
}

let statementsAvailable: boolean | undefined;

/** Call once per server: loads pg_stat_statements' view into the admin database if the server has it. */
async function ensureStatements(admin: pg.Client): Promise<boolean> {
  if (statementsAvailable !== undefined) return statementsAvailable;
  try {
    const { rows } = await admin.query<{ on: boolean }>(`select current_setting('shared_preload_libraries') ~ 'pg_stat_statements' as on`);
    if (rows[0]!.on) await admin.query('create extension if not exists pg_stat_statements');
    statementsAvailable = rows[0]!.on;
  } catch {
    statementsAvailable = false;
  }
  return statementsAvailable;
}

export async function costProbe(adminUrl: string, dbUrl: string): Promise<{ before(): Promise<void>; after(jobs: number): Promise<Cost> }> {
  const dbName = new URL(dbUrl).pathname.slice(1);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const withStatements = await ensureStatements(admin);
  const backend = (await admin.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  // Only a server on this host: the backend's /proc entry must be a process running in the server's
  // data directory (a remote DATABASE_URL's pid would name some local process).
  const dataDir = await admin.query<{ data_directory: string }>('show data_directory').then((r) => r.rows[0]!.data_directory, () => null);
  const local = dataDir !== null && (() => { try { return fs.realpathSync(`/proc/${backend}/cwd`) === fs.realpathSync(dataDir); } catch { return false; } })();
  const postmaster = local ? (ticksOf(backend)?.ppid ?? null) : null;

  async function snapshot(): Promise<Snapshot> {
    let statements: Map<string, Statement> | null = null;
    if (withStatements) {
      const { rows } = await admin.query<{ id: string; query: string; calls: string; rows: string; ms: number }>(
        `select queryid::text || ':' || toplevel::text as id, query, calls::text, rows::text, total_exec_time as ms
           from pg_stat_statements where dbid = (select oid from pg_database where datname = $1)
            and query not like '%bench_harness%'`,
        [dbName],
      );
      statements = new Map(rows.map((r) => [r.id, { query: r.query, calls: Number(r.calls), rows: Number(r.rows), ms: r.ms }]));
    }
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    let tables: Snapshot['tables'];
    try {
      const { rows } = await db.query<{ t: string; ins: string; upd: string; hot: string; del: string }>(
        `select ${HARNESS}, schemaname || '.' || relname as t, n_tup_ins::text as ins, n_tup_upd::text as upd, n_tup_hot_upd::text as hot, n_tup_del::text as del from pg_stat_user_tables`,
      );
      tables = new Map(rows.map((r) => [r.t, { ins: Number(r.ins), upd: Number(r.upd), hot: Number(r.hot), del: Number(r.del) }]));
    } finally {
      await db.end();
    }
    await admin.query('select pg_stat_clear_snapshot()');
    const commits = Number((await admin.query<{ n: string }>('select xact_commit::text as n from pg_stat_database where datname = $1', [dbName])).rows[0]?.n ?? 0);
    const lsn = (await admin.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
    return { statements, tables, commits, lsn, cpuTicks: postmaster ? serverTicks(postmaster) : null };
  }

  /** Backends report their table counters when they end: wait until the contender's are gone. */
  async function contenderGone(): Promise<void> {
    let n = 0;
    for (let i = 0; i < 200; i++) {
      n = (await admin.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where datname = $1`, [dbName])).rows[0]!.n;
      if (n === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    process.stdout.write(`[bench] warning: ${n} sessions still on ${dbName} after 10 s; their row counts may be missing\n`);
  }

  let start: Snapshot | undefined;
  let sampler: ReturnType<typeof cpuSampler> | undefined;
  return {
    before: async () => {
      start = await snapshot();
      if (postmaster) sampler = cpuSampler(postmaster, dbName);
    },
    after: async (jobs) => {
      await contenderGone();
      const end = await snapshot();
      const byKind = sampler?.stop() ?? null;
      const s = start!;
      const walBytes = Number((await admin.query<{ b: string }>('select pg_wal_lsn_diff($1, $2)::text as b', [end.lsn, s.lsn])).rows[0]!.b);
      await admin.end();
      let statements: number | null = null;
      let execMs: number | null = null;
      const top: Cost['top'] = [];
      if (end.statements && s.statements) {
        const deltas: Statement[] = [];
        for (const [id, e] of end.statements) {
          const b = s.statements.get(id);
          const calls = e.calls - (b?.calls ?? 0);
          if (calls > 0) deltas.push({ query: e.query, calls, rows: e.rows - (b?.rows ?? 0), ms: e.ms - (b?.ms ?? 0) });
        }
        statements = deltas.reduce((a, d) => a + d.calls, 0);
        execMs = deltas.reduce((a, d) => a + d.ms, 0);
        for (const d of deltas.sort((a, b) => b.ms - a.ms).slice(0, 8)) {
          top.push({ query: d.query.replace(/\s+/g, ' ').slice(0, 160), callsPerJob: d.calls / jobs, rowsPerCall: d.rows / d.calls, msPerCall: d.ms / d.calls, usPerJob: (d.ms * 1000) / jobs });
        }
      }
      let rowVersions = 0;
      const tables: Record<string, string> = {};
      for (const [t, e] of end.tables) {
        const b = s.tables.get(t) ?? { ins: 0, upd: 0, hot: 0, del: 0 };
        const d = { ins: e.ins - b.ins, upd: e.upd - b.upd, hot: e.hot - b.hot, del: e.del - b.del };
        const sum = d.ins + d.upd + d.del;
        if (sum > 0) tables[t] = `ins ${d.ins} / upd ${d.upd} (hot ${d.hot}) / del ${d.del}`;
        rowVersions += sum;
      }
      return {
        jobs,
        statements,
        execMs,
        commits: end.commits - s.commits,
        rowVersions,
        tables,
        walBytes,
        cpuSeconds: end.cpuTicks !== null && s.cpuTicks !== null ? (end.cpuTicks - s.cpuTicks) / TICKS : null,
        cpuByKind: byKind && end.cpuTicks !== null && s.cpuTicks !== null
          ? { ...byKind, unseen: (end.cpuTicks - s.cpuTicks) / TICKS - Object.values(byKind).reduce((a, b) => a + b, 0) }
          : null,
        top,
      };
    },
  };
}
