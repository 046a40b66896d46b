/**
 * Shared CLI plumbing: option table, database resolution. Light on purpose: every command loads it,
 * so it imports neither pg-boss nor fastify (the pod lifecycle is in pod.ts, migrations load lazily).
 */
import type { Values } from './options.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { UserInputError } from '../errors.ts';
import { resolveDatabase, type ResolvedDatabase } from '../db/resolve.ts';
import { CONNECT_TIMEOUT_MS, createPool, isConnectionError } from '../db/client.ts';

export interface Ctx {
  config: Config;
  log: Logger;
  db: ResolvedDatabase;
}

export { OPTIONS, type Values } from './options.ts';


export function parseLimit(v: string | undefined, fallback = 50): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new UserInputError(`--limit must be a whole number from 1 to 10000, got '${v}'`);
  return n;
}

/**
 * A connection error as the CLI reports it: "cannot connect to Postgres at HOST:PORT (...): what to
 * check" when it could not connect (refused, timed out), "lost the connection to Postgres at
 * HOST:PORT" when the server went away mid-command. Any other error is returned unchanged.
 */
export function connectionFailure(err: unknown, db: Pick<ResolvedDatabase, 'url' | 'embedded'>): unknown {
  if (!isConnectionError(err)) return err;
  let where = 'the database';
  try {
    const u = new URL(db.url);
    where = `${u.hostname}:${u.port || '5432'}`;
  } catch {
    // Not a URL: keep the generic name (the URL may hold a password, so it is never printed).
  }
  const message = (err as Error).message;
  const code = (err as { code?: string }).code ?? '';
  if (/^57P0/.test(code) || /Connection terminated unexpectedly/i.test(message)) {
    return new Error(`lost the connection to Postgres at ${where} during the command (${message}): the server stopped or restarted; run the command again once it is up`, { cause: err });
  }
  const fix = db.embedded
    ? 'the embedded server did not answer: another program may be listening on FLOWWARDEN_EMBEDDED_PORT; stop it or set FLOWWARDEN_EMBEDDED_PORT to a free port'
    : 'check DATABASE_URL and that the server is up and accepting connections';
  return new Error(`cannot connect to Postgres at ${where} (${message}; timeout ${CONNECT_TIMEOUT_MS / 1000} s): ${fix}`, { cause: err });
}

export async function withDb<T>(ctx: Omit<Ctx, 'db'>, fn: (ctx: Ctx) => Promise<T>): Promise<T> {
  const db = await resolveDatabase(ctx.config, ctx.log);
  try {
    if (db.embedded) await (await import('../db/migrate.ts')).migrateAll(db.url, { jobRetentionSeconds: ctx.config.retention.jobSeconds });
    return await fn({ ...ctx, db });
  } catch (err) {
    throw connectionFailure(err, db);
  } finally {
    await db.release();
  }
}

export async function withPool<T>(ctx: Omit<Ctx, 'db'>, fn: (pool: ReturnType<typeof createPool>, ctx: Ctx) => Promise<T>): Promise<T> {
  return withDb(ctx, async (c) => {
    const pool = createPool(c.db.url, { max: 3, applicationName: 'flowwarden-cli', transactionPooling: c.config.poolMode === 'transaction' });
    try {
      return await fn(pool, c);
    } finally {
      await pool.end();
    }
  });
}

/**
 * Like withPool, for the list commands: on FLOWWARDEN_READ_URL (a replica) when it is set, so
 * reporting never loads the primary. A replica may lag: a list shows what the replica has replayed.
 */
export async function withReadPool<T>(ctx: Omit<Ctx, 'db'>, fn: (pool: ReturnType<typeof createPool>, ctx: Ctx) => Promise<T>): Promise<T> {
  const readUrl = ctx.config.readUrl;
  if (!readUrl) return withPool(ctx, fn);
  return withDb(ctx, async (c) => {
    const pool = createPool(readUrl, { max: 3, applicationName: 'flowwarden-cli-read' });
    try {
      return await fn(pool, c);
    } finally {
      await pool.end();
    }
  });
}

/** What every command gets: the validated configuration and a logger (no database yet). */
export type Base = Omit<Ctx, 'db'>;

/**
 * A command module (src/cli/<command>.ts), loaded by main.ts only when its command runs. `args` are
 * the positionals after the command's name (`flows show x` → ['show', 'x']).
 */
export interface CommandModule {
  run(base: Base, args: string[], values: Values): Promise<void>;
  /** The command's own `--help` text, when it has more options than the main usage lists. */
  usage?: string;
}
