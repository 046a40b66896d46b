/**
 * Real servers from Debian's packages for the system tests, started and stopped by the test like
 * the embedded Postgres of `npm test`:
 *
 * - `startPrimary()`: a PostgreSQL cluster from Debian's `postgresql` package (15 on bookworm) (initdb, trust auth on 127.0.0.1, wal_level replica);
 * - `startReplica(primary)`: a streaming replica of it (pg_basebackup -R), with `pauseReplay()` /
 *   `resumeReplay()` to make lag on demand;
 * - `startPgBouncer(primary)`: PgBouncer in front of it (transaction pooling, a small pool).
 *
 * As root, the servers run as the `postgres` user (neither Postgres nor PgBouncer runs as root).
 * Every process is a child of the test and is stopped by its PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../support/server.ts';
import { requireProgram } from './requires.ts';

/**
 * Debian's PostgreSQL server binaries: the newest /usr/lib/postgresql/<major>/bin that has initdb
 * (bookworm's `postgresql` package is 15; FW_SYSTEM_PG_BIN picks another).
 */
function pgBin(): string {
  if (process.env.FW_SYSTEM_PG_BIN) return process.env.FW_SYSTEM_PG_BIN;
  const root = '/usr/lib/postgresql';
  const majors = fs.existsSync(root) ? fs.readdirSync(root).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a)) : [];
  const found = majors.map((m) => path.join(root, m, 'bin')).find((bin) => fs.existsSync(path.join(bin, 'initdb')));
  return found ?? path.join(root, '15', 'bin');
}
const PG_BIN = pgBin();
const PGBOUNCER = '/usr/sbin/pgbouncer';

function runAs(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  return { uid: id('-u'), gid: id('-g') };
}

function tempDir(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fw-${name}-`));
  fs.chmodSync(dir, 0o700);
  const ids = runAs();
  if (ids.uid !== undefined) fs.chownSync(dir, ids.uid, ids.gid!);
  return dir;
}

function run(file: string, args: string[]): void {
  const r = spawnSync(file, args, { ...runAs(), encoding: 'utf8', cwd: os.tmpdir() });
  if (r.status !== 0) throw new Error(`${path.basename(file)} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
}

/** A child process that logs into `log` and is stopped by its PID. */
class Child {
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  constructor(file: string, args: string[], log: string) {
    const fd = fs.openSync(log, 'a');
    this.#child = spawn(file, args, { ...runAs(), stdio: ['ignore', fd, fd], cwd: os.tmpdir() });
    fs.closeSync(fd);
    this.#exited = new Promise((resolve) => this.#child.on('exit', () => resolve()));
  }
  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }
  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<void> {
    if (this.alive) this.#child.kill(signal);
    await this.#exited;
  }
}

async function waitConnectable(url: string, what: string, log: string): Promise<void> {
  for (let i = 0; ; i++) {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    try {
      await c.connect();
      await c.query('select 1');
      await c.end();
      return;
    } catch (err) {
      await c.end().catch(() => {});
      if (i > 300) throw new Error(`${what} did not accept connections: ${String(err)}\n${fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-2000) : ''}`, { cause: err });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export interface PgServer {
  port: number;
  dir: string;
  /** postgres://postgres@127.0.0.1:port/<db> */
  url(db?: string): string;
  stop(): Promise<void>;
}

function pgUrl(port: number, db = 'postgres'): string {
  return `postgres://postgres@127.0.0.1:${port}/${db}`;
}

const SERVER_FLAGS = (port: number, dir: string) => [
  '-D', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`,
  '-c', 'fsync=off', '-c', 'synchronous_commit=on', '-c', 'full_page_writes=off', '-c', 'max_connections=200',
];

export async function startPrimary(): Promise<PgServer> {
  requireProgram(path.join(PG_BIN, 'initdb'), 'postgresql');
  const dir = tempDir('primary');
  const data = path.join(dir, 'data');
  run(path.join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '--locale=C', '--encoding=UTF8']);
  // initdb's pg_hba.conf already trusts replication connections from 127.0.0.1.
  fs.appendFileSync(path.join(data, 'postgresql.conf'), '\nwal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n');
  const port = await freePort();
  const log = path.join(dir, 'postgres.log');
  const child = new Child(path.join(PG_BIN, 'postgres'), SERVER_FLAGS(port, data), log);
  await waitConnectable(pgUrl(port), 'PostgreSQL primary', log);
  return {
    port, dir, url: (db) => pgUrl(port, db),
    async stop() {
      await child.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Replica extends PgServer {
  /** Stop applying WAL (the replica keeps receiving it): reads see the state as of now. */
  pauseReplay(): Promise<void>;
  resumeReplay(): Promise<void>;
  /** Wait until the replica has replayed everything the primary had written when called. */
  catchUp(primary: PgServer, db?: string): Promise<void>;
}

export async function startReplica(primary: PgServer): Promise<Replica> {
  requireProgram(path.join(PG_BIN, 'pg_basebackup'), 'postgresql');
  const dir = tempDir('replica');
  const data = path.join(dir, 'data');
  // -R writes standby.signal and primary_conninfo: the copy starts as a streaming replica.
  run(path.join(PG_BIN, 'pg_basebackup'), ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', data, '-R', '-X', 'stream', '--no-sync']);
  const port = await freePort();
  const log = path.join(dir, 'postgres.log');
  const child = new Child(path.join(PG_BIN, 'postgres'), SERVER_FLAGS(port, data), log);
  await waitConnectable(pgUrl(port), 'PostgreSQL replica', log);
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: pgUrl(port) });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  return {
    port, dir, url: (db) => pgUrl(port, db),
    pauseReplay: () => admin('select pg_wal_replay_pause()'),
    resumeReplay: () => admin('select pg_wal_replay_resume()'),
    async catchUp(p, db = 'postgres') {
      const pc = new pg.Client({ connectionString: p.url(db) });
      await pc.connect();
      const lsn = (await pc.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
      await pc.end();
      const rc = new pg.Client({ connectionString: pgUrl(port, db) });
      await rc.connect();
      try {
        for (;;) {
          const { rows } = await rc.query<{ ok: boolean }>('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [lsn]);
          if (rows[0]?.ok) return;
          await new Promise((r) => setTimeout(r, 20));
        }
      } finally {
        await rc.end();
      }
    },
    async stop() {
      await child.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PgBouncer {
  port: number;
  url(db: string): string;
  /** SHOW POOLS etc. on PgBouncer's admin console. */
  admin<R extends pg.QueryResultRow>(command: string): Promise<R[]>;
  stop(): Promise<void>;
}

/**
 * PgBouncer (Debian's, 1.18: no prepared-statement support) in front of `server`, every database,
 * `pool_mode = transaction`, `poolSize` server connections per database/user pair.
 */
export async function startPgBouncer(server: PgServer, options: { poolSize?: number } = {}): Promise<PgBouncer> {
  requireProgram(PGBOUNCER, 'pgbouncer');
  const dir = tempDir('pgbouncer');
  const port = await freePort();
  const ini = path.join(dir, 'pgbouncer.ini');
  fs.writeFileSync(path.join(dir, 'userlist.txt'), '"postgres" ""\n');
  fs.writeFileSync(ini, [
    '[databases]',
    `* = host=127.0.0.1 port=${server.port}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    `unix_socket_dir = ${dir}`,
    'auth_type = trust',
    `auth_file = ${path.join(dir, 'userlist.txt')}`,
    'admin_users = postgres',
    'pool_mode = transaction',
    `default_pool_size = ${options.poolSize ?? 8}`,
    'max_client_conn = 1000',
    // node-postgres sends none of these by default; other drivers do.
    'ignore_startup_parameters = extra_float_digits,options',
    `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
    '',
  ].join('\n'));
  const ids = runAs();
  if (ids.uid !== undefined) for (const f of fs.readdirSync(dir)) fs.chownSync(path.join(dir, f), ids.uid, ids.gid!);
  const log = path.join(dir, 'pgbouncer.log');
  const child = new Child(PGBOUNCER, [ini], log);
  const url = (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;
  await waitConnectable(url('postgres'), 'PgBouncer', log);
  return {
    port,
    url,
    async admin<R extends pg.QueryResultRow>(command: string) {
      // The admin console speaks the simple protocol only: no parameters.
      const c = new pg.Client({ connectionString: url('pgbouncer') });
      await c.connect();
      try {
        return (await c.query<R>(command)).rows;
      } finally {
        await c.end();
      }
    },
    async stop() {
      await child.stop('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Create `db` on the primary and run flowwarden's migrations on it (directly, not through PgBouncer). */
export async function createDatabase(server: PgServer, db: string): Promise<string> {
  const c = new pg.Client({ connectionString: server.url() });
  await c.connect();
  await c.query(`create database ${db}`);
  await c.end();
  const { migrateAll } = await import('../../src/db/migrate.ts');
  await migrateAll(server.url(db));
  return server.url(db);
}
