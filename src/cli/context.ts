/** Shared CLI plumbing: option table, database resolution, the pod lifecycle. */
import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { UserInputError } from '../errors.ts';
import { resolveDatabase, type ResolvedDatabase } from '../db/resolve.ts';
import { createPool } from '../db/client.ts';
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

export async function withDb<T>(ctx: Omit<Ctx, 'db'>, fn: (ctx: Ctx) => Promise<T>): Promise<T> {
  const db = await resolveDatabase(ctx.config, ctx.log);
  try {
    if (db.embedded) await migrateAll(db.url);
    return await fn({ ...ctx, db });
  } finally {
    await db.release();
  }
}

export async function withPool<T>(ctx: Omit<Ctx, 'db'>, fn: (pool: ReturnType<typeof createPool>, ctx: Ctx) => Promise<T>): Promise<T> {
  return withDb(ctx, async (c) => {
    const pool = createPool(c.db.url, { max: 3, applicationName: 'flowwarden-cli' });
    try {
      return await fn(pool, c);
    } finally {
      await pool.end();
    }
  });
}

/** Run a pod until SIGTERM/SIGINT: the first signal drains, a second one forces exit. */
export async function runPod(base: Omit<Ctx, 'db'>, roles: Role[], afterStart?: (app: App) => Promise<void>): Promise<void> {
  const db = await resolveDatabase(base.config, base.log);
  let app: App;
  try {
    app = await createApp({ config: base.config, log: base.log, databaseUrl: db.url, roles });
  } catch (err) {
    await db.release();
    throw err;
  }
  if (afterStart) {
    try {
      await afterStart(app);
    } catch (err) {
      await app.stop({ timeoutMs: 1000 });
      await db.release();
      throw err;
    }
  }
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (sig: string) => {
      signals++;
      if (signals > 1) {
        base.log.warn({ sig }, 'second signal: exiting now');
        process.exit(130);
      }
      base.log.info({ sig }, 'signal received: draining (send again to force)');
      app.stop().then(() => db.release()).then(resolve, (err: unknown) => {
        base.log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
  });
}

