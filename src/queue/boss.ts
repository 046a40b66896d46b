import { createHash } from 'node:crypto';
import type pg from 'pg';
import { PgBoss } from 'pg-boss';
import { BOSS_SCHEMA } from './catalog.ts';
import type { Logger } from '../log.ts';
import { CONNECT_TIMEOUT_MS, isMissingPreparedStatement } from '../db/client.ts';

/** Logged when a named statement meets another server connection: the mode setting is wrong. */
export const POOLER_DETECTED =
  'a prepared statement was unknown on the next query: DATABASE_URL goes through a transaction pooler (PgBouncer pool_mode = transaction). ' +
  'flowwarden now sends its statements unnamed, but session locks and LISTEN still misbehave: set FLOWWARDEN_POOL_MODE=transaction (docs/scaling.md)';

/** How often pg-boss's maintenance (deleting finished jobs past their queue's deleteAfterSeconds) runs. */
export const BOSS_MAINTENANCE_SECONDS = 300;

export interface BossOptions {
  connectionString: string;
  /** Workers and the scheduler: LISTEN/NOTIFY wake-ups and maintenance. Producers: neither. */
  role: 'worker' | 'producer';
  max?: number;
  log?: Logger;
  /**
   * PgBouncer in transaction mode (FLOWWARDEN_POOL_MODE=transaction): no named prepared statements
   * and no LISTEN (pg-boss would LISTEN on the same URL; its workers poll instead). pg-boss itself
   * sends its statements unnamed and takes only transaction-scoped advisory locks.
   */
  transactionPooling?: boolean;
}

/** A started pg-boss over flowwarden's queue schema. Its errors are logged, never thrown at us. */
export async function startBoss(options: BossOptions): Promise<PgBoss> {
  const worker = options.role === 'worker';
  const boss = new PgBoss({
    connectionString: options.connectionString,
    schema: BOSS_SCHEMA,
    application_name: `flowwarden-${options.role}`,
    max: options.max ?? (worker ? 10 : 3),
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    schedule: false,
    supervise: worker,
    migrate: true,
    useListenNotify: worker && !options.transactionPooling,
    // The supervisor fails jobs with stale heartbeats (a dead pod's dispatches): check every 10 s.
    ...(worker ? { monitorIntervalSeconds: 10 } : {}),
    // pg-boss deletes finished jobs (deleteAfterSeconds, FLOWWARDEN_JOB_RETENTION_SECONDS) only in
    // its maintenance, every 24 h by default: the job table then held a day of jobs whatever the
    // retention (found by bench/soak.ts). One pod per interval runs it (pg-boss locks the queue).
    ...(worker ? { maintenanceIntervalSeconds: BOSS_MAINTENANCE_SECONDS } : {}),
  });
  if (worker && !options.transactionPooling) prepareRepeatedStatements(boss, () => options.log?.error(POOLER_DETECTED));
  boss.on('error', (err) => options.log?.error({ err }, 'pg-boss error'));
  boss.on('warning', (w) => options.log?.warn({ warning: w }, 'pg-boss warning'));
  await boss.start();
  return boss;
}

/**
 * pg-boss sends every statement unnamed, most with their values written into the text, so Postgres
 * plans its hot statements (fetch, complete, touch) on every call, which costs about as much as
 * running them (measured: fetch 0.3 ms to plan, 0.3 ms to run). A single statement pg-boss has sent
 * a few times is sent as a named prepared statement from then on, planned once per connection.
 * Multi-statement texts, calls with a signal or retire option (pg-boss's own cancellation paths)
 * and anything Postgres refuses to prepare go through unchanged. Applied only when pg-boss's
 * built-in adapter is recognised (its pool and executeSql), so a pg-boss upgrade that changes them
 * just loses the optimisation.
 */
const PREPARE_AFTER = 3;
const MAX_PREPARED = 64;

type Execute = (text: string, values?: unknown[], options?: { signal?: AbortSignal; retire?: AbortSignal }) => Promise<unknown>;

/** One statement: no `;` before the end (pg-boss's multi-statement texts are BEGIN; ...; COMMIT). */
function singleStatement(text: string): boolean {
  const i = text.indexOf(';');
  return i === -1 || text.slice(i + 1).trim() === '';
}

export function prepareRepeatedStatements(boss: PgBoss, onPoolerDetected?: () => void): boolean {
  let onPooler = onPoolerDetected;
  const db = boss.getDb() as unknown as { _pgbdb?: boolean; pool?: pg.Pool; executeSql?: Execute };
  if (!db?._pgbdb || typeof db.executeSql !== 'function') return false;
  const original = db.executeSql.bind(db);
  const seen = new Map<string, number>();
  const names = new Map<string, string>();
  const refused = new Set<string>();
  let disabled = false;
  db.executeSql = async (text, values, options) => {
    if (disabled || options?.signal || options?.retire || !db.pool || refused.has(text)) return original(text, values, options);
    let name = names.get(text);
    if (!name) {
      const count = (seen.get(text) ?? 0) + 1;
      if (count < PREPARE_AFTER || names.size >= MAX_PREPARED || !singleStatement(text)) {
        if (seen.size > 1000) seen.clear();
        seen.set(text, count);
        return original(text, values, options);
      }
      seen.delete(text);
      name = `flowwarden_boss_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
      names.set(text, name);
    }
    try {
      return await db.pool.query({ name, text, values: values ?? [] });
    } catch (err) {
      // 26000: prepared on another server connection — a transaction pooler (PgBouncer) is in
      // between. Prepare nothing from now on; nothing ran, so the statement is re-sent unnamed.
      if (isMissingPreparedStatement(err)) {
        disabled = true;
        onPooler?.();
        onPooler = undefined;
        return original(text, values, options);
      }
      // 42601: Postgres would not prepare it (e.g. several commands); nothing ran. Never again.
      if ((err as { code?: string }).code !== '42601') throw err;
      refused.add(text);
      names.delete(text);
      return original(text, values, options);
    }
  };
  return true;
}
