/**
 * Database access. Query functions everywhere take a `Queryable` first: a pg Pool, a pooled
 * client, or a client inside the caller's own transaction. That is what lets a producer enqueue
 * atomically with its caller's writes, and what lets pg-boss ride in our transactions (`bossDb`).
 */
import pg from 'pg';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { nodePg } from './drizzle.ts';
import type { Db as IDatabase } from 'pg-boss';
import * as schema from '../schema/index.ts';

// timestamptz → Date (default), bigint counts → number (our counts fit comfortably).
pg.types.setTypeParser(20, (v) => Number(v));

/**
 * How long opening a connection may take. Without it a port that accepts TCP but never answers the
 * Postgres handshake (another program on FLOWWARDEN_EMBEDDED_PORT, a hung server) hangs a command.
 */
export const CONNECT_TIMEOUT_MS = 10_000;

export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export type Db = NodePgDatabase<typeof schema>;

/** Pools behind PgBouncer in transaction mode (set, or detected): their hot statements go unnamed (`namedQuery`). */
const unnamedOnly = new WeakSet<object>();

const detectedHooks = new WeakMap<object, () => void>();

/** Called once when `pool` turns out to run through a transaction pooler (see `namedQuery`). */
export function onTransactionPoolingDetected(pool: pg.Pool, hook: () => void): void {
  detectedHooks.set(pool, hook);
}

/**
 * A named statement met a server connection other than the one it was prepared on: "prepared
 * statement ... does not exist" (26000), or "... already exists" (42P05, another client prepared the
 * same name there). Both fail before anything executes.
 */
export function isMissingPreparedStatement(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === '26000' || code === '42P05';
}

/**
 * A hot statement, sent named (planned once per connection) unless `pool` runs through a
 * transaction pooler. Detection: a named statement that the server connection does not know
 * (or already knows from another client: PgBouncer handed this client another server connection) marks the pool unnamed-only
 * for good and is re-sent unnamed; nothing ran, since the error comes before execution. The
 * pool's hook (app.ts) logs that FLOWWARDEN_POOL_MODE=transaction should be set.
 */
export async function namedQuery<R extends pg.QueryResultRow>(pool: pg.Pool, name: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
  if (unnamedOnly.has(pool)) return pool.query<R>({ text, values });
  try {
    return await pool.query<R>({ name, text, values });
  } catch (err) {
    if (!isMissingPreparedStatement(err)) throw err;
    unnamedOnly.add(pool);
    const hook = detectedHooks.get(pool);
    detectedHooks.delete(pool);
    hook?.();
    return pool.query<R>({ text, values });
  }
}

export function createPool(connectionString: string, options: { max?: number; applicationName?: string; transactionPooling?: boolean } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'flowwarden',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  if (options.transactionPooling) unnamedOnly.add(pool);
  // An idle client erroring (server restart) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  // pg-pool drops its error listener while a client is checked out, so a server restart while a
  // client sits between two queries (inside withTransaction, holding an advisory lock) emitted an
  // unhandled 'error' and killed the pod (found by test/chaos/postgres-restart.chaos.ts). The
  // client's pending and later queries still fail, and the pool discards it on release.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/** A drizzle view over any Queryable (pool, client, or a client inside a transaction). */
export function dz(db: Queryable): Db {
  return nodePg.drizzle(db as pg.Pool, { schema });
}

/** pg-boss's `db` option over the same connection, so jobs commit or roll back with our rows. */
export function bossDb(db: Queryable): IDatabase {
  return { executeSql: (text, values) => db.query(text, values) };
}

/** Work to do once a transaction opened by `withTransaction` commits (see `afterCommit`). */
const commitHooks = new WeakMap<object, Array<(owner: Queryable | pg.Pool) => void>>();

/**
 * Run `hook` after the transaction `tx` commits, with the pool (or client) the transaction was
 * opened on; dropped if it rolls back. Only transactions opened by `withTransaction` run hooks: on a
 * caller-managed transaction (the producer client's `db` option) this does nothing.
 */
export function afterCommit(tx: Queryable, hook: (owner: Queryable | pg.Pool) => void): void {
  commitHooks.get(tx)?.push(hook);
}

function runCommitHooks(tx: object, owner: Queryable | pg.Pool): void {
  const hooks = commitHooks.get(tx) ?? [];
  commitHooks.delete(tx);
  for (const hook of hooks) {
    try {
      hook(owner);
    } catch {
      // Hooks only count things (metrics); they must never fail a committed transaction.
    }
  }
}

/**
 * Run `fn` in a transaction. With a Pool, checks out a client, BEGIN/COMMIT/ROLLBACK; with a
 * client that is already in the caller's transaction (`inTransaction: true`), just runs `fn` on it.
 */
export async function withTransaction<T>(
  db: Queryable | pg.Pool,
  fn: (tx: Queryable) => Promise<T>,
  options: { inTransaction?: boolean } = {},
): Promise<T> {
  if (options.inTransaction) return fn(db);
  if (db instanceof pg.Pool) {
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      commitHooks.set(client, []);
      const result = await fn(client);
      await client.query('COMMIT');
      runCommitHooks(client, db);
      return result;
    } catch (err) {
      commitHooks.delete(client);
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }
  await db.query('BEGIN');
  commitHooks.set(db, []);
  try {
    const result = await fn(db);
    await db.query('COMMIT');
    runCommitHooks(db, db);
    return result;
  } catch (err) {
    commitHooks.delete(db);
    await db.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** Postgres's clock: all scheduling decisions use it, never the pod's. */
export async function dbNow(db: Queryable): Promise<Date> {
  const { rows } = await db.query<{ now: Date }>('select now() as now');
  return rows[0]!.now;
}

/**
 * Errors that mean "the database is not reachable right now" (restart, failover, network), as
 * opposed to an error in the statement: worth retrying the same write after a pause.
 */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  const code = e?.code ?? '';
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code)) return true;
  // 'timeout expired': pg.Client's connectionTimeoutMillis; 'connection timeout': pg.Pool's.
  return /Connection terminated|connection timeout|timeout expired|Client has encountered a connection error/i.test(e?.message ?? '');
}
