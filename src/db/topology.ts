/**
 * Where a pod's connections go and how many it opens (docs/scaling.md): DATABASE_URL (direct or
 * through PgBouncer), FLOWWARDEN_DIRECT_URL (migrations, dispatch LISTEN), FLOWWARDEN_READ_URL (a
 * replica, with read-your-writes) and the FLOWWARDEN_MAX_CONNECTIONS budget split across roles.
 * Details: docs/internals.md, "Database".
 */
import pg from 'pg';
import { hasRole, type Config, type Role } from '../config.ts';
import { UserInputError } from '../errors.ts';
import { CONNECT_TIMEOUT_MS, createPool, type Queryable } from './client.ts';


/** The notify worker's local concurrency: in transaction mode each delivery pins one pool connection for its lock. */
export const NOTIFY_LOCK_HOLDERS = 4;

export interface ConnectionBudget {
  /** flowwarden's own pool on DATABASE_URL (scheduler tick, dispatch claims/outcomes, API writes). */
  main: number;
  /** pg-boss's pool on DATABASE_URL (fetch, complete, supervise). */
  boss: number;
  /** The dispatch LISTEN connection (DIRECT_URL in transaction mode), 0 when not listening. */
  listen: number;
  /** pg-boss's own LISTEN connection (session mode only). */
  bossListen: number;
  /** The replica pool (FLOWWARDEN_READ_URL, api role). */
  read: number;
  total: number;
}


/** Whether the dispatch LISTEN runs, and on which URL. */
export function listenUrl(config: Pick<Config, 'poolMode' | 'directUrl'>, databaseUrl: string): string | undefined {
  if (config.directUrl) return config.directUrl;
  return config.poolMode === 'transaction' ? undefined : databaseUrl;
}

/**
 * The connections a pod opens, by role. Without FLOWWARDEN_MAX_CONNECTIONS: the sizes flowwarden
 * always used (main: concurrency + 5 within 10..30; boss: concurrency + 2 within 10..20; read: 5).
 * With it: the fixed connections (LISTENs) first, then a fifth for reads, two fifths of the rest
 * for pg-boss, the remainder for the main pool. Throws when the budget cannot run the roles.
 */
export function connectionBudget(config: Pick<Config, 'poolMode' | 'directUrl' | 'readUrl' | 'maxConnections' | 'concurrency'>, roles: Role[] = ['all']): ConnectionBudget {
  const worker = hasRole(roles, 'worker');
  const listen = worker && (config.directUrl || config.poolMode === 'session') ? 1 : 0;
  const bossListen = worker && config.poolMode === 'session' ? 1 : 0;
  const wantsRead = Boolean(config.readUrl) && hasRole(roles, 'api');
  // In transaction mode a notify delivery holds its lock's transaction on one main connection and
  // queries on another: the main pool needs a free connection beyond the lock holders.
  const minMain = worker ? Math.min(config.concurrency, NOTIFY_LOCK_HOLDERS) + 2 : 2;
  const minBoss = 2;
  if (config.maxConnections === undefined) {
    const main = Math.max(minMain, Math.min(30, Math.max(10, config.concurrency + 5)));
    const boss = Math.min(20, Math.max(10, config.concurrency + 2));
    const read = wantsRead ? 5 : 0;
    return { main, boss, listen, bossListen, read, total: main + boss + listen + bossListen + read };
  }
  const fixed = listen + bossListen;
  const needed = fixed + minMain + minBoss + (wantsRead ? 1 : 0);
  if (config.maxConnections < needed) {
    throw new UserInputError(
      `FLOWWARDEN_MAX_CONNECTIONS=${config.maxConnections} is too small for roles ${roles.join(',')}: they need at least ${needed} ` +
        `(main pool ${minMain}, pg-boss ${minBoss}, LISTEN ${fixed}${wantsRead ? ', replica 1' : ''}); raise it or lower FLOWWARDEN_CONCURRENCY (docs/scaling.md)`,
    );
  }
  let rest = config.maxConnections - fixed;
  const read = wantsRead ? Math.max(1, Math.floor(rest / 5)) : 0;
  rest -= read;
  const boss = Math.max(minBoss, Math.min(rest - minMain, Math.floor((rest * 2) / 5)));
  const main = rest - boss;
  return { main, boss, listen, bossListen, read, total: main + boss + listen + bossListen + read };
}

const NEEDS_DIRECT =
  'FLOWWARDEN_POOL_MODE=transaction: the domain migrations hold a session advisory lock, which PgBouncer in transaction mode cannot keep; ' +
  'set FLOWWARDEN_DIRECT_URL to a direct connection to the primary (not through PgBouncer), or run `flowwarden migrate` once with DATABASE_URL pointing at the primary';

/** The URL migrations run on: FLOWWARDEN_DIRECT_URL when set (they take a session advisory lock). */
export function migrationUrl(config: Pick<Config, 'poolMode' | 'directUrl'>, databaseUrl: string): string {
  if (config.directUrl) return config.directUrl;
  if (config.poolMode === 'transaction') throw new UserInputError(NEEDS_DIRECT);
  return databaseUrl;
}

/**
 * A pod's start-up migrations. On FLOWWARDEN_DIRECT_URL (or DATABASE_URL in session mode) as
 * usual. In transaction mode without a direct URL: the domain schema must already be current
 * (`flowwarden migrate` ran on the primary); pg-boss's own migration and queue set-up take only
 * transaction-scoped locks and run through PgBouncer.
 */
export async function migrateForPod(config: Pick<Config, 'poolMode' | 'directUrl' | 'retention'>, databaseUrl: string): Promise<void> {
  const { migrateAll, migrateQueue, appliedMigrationCount, shippedMigrationCount } = await import('./migrate.ts');
  const settings = { jobRetentionSeconds: config.retention.jobSeconds };
  if (config.directUrl || config.poolMode === 'session') return migrateAll(migrationUrl(config, databaseUrl), settings);
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  await client.connect();
  let applied: number;
  try {
    applied = await appliedMigrationCount(client).catch(() => 0);
  } finally {
    await client.end();
  }
  if (applied < shippedMigrationCount()) throw new UserInputError(`${NEEDS_DIRECT} (${applied} of ${shippedMigrationCount()} domain migrations applied)`);
  await migrateQueue(databaseUrl, settings);
}

/**
 * Read-your-writes position: after a write, the primary's current WAL position (an LSN, e.g.
 * '0/3000148'). With synchronous_commit on (the default) the write's commit record is at or before it.
 */
export async function primaryLsn(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
  return rows[0]!.lsn;
}

const LSN_RE = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i;

/** A client-supplied LSN, or undefined when it is absent or not an LSN (then the replica serves). */
export function parseLsn(value: unknown): string | undefined {
  return typeof value === 'string' && LSN_RE.test(value.trim()) ? value.trim().toUpperCase() : undefined;
}

/**
 * Chooses the pool for a read. Without a replica: the primary. With one: the replica, unless the
 * request carries an LSN (its client wrote) that the replica has not replayed yet; then the primary.
 * The replica is asked once (one short query), never waited on, so a lagging replica costs the
 * writing client a primary read, not a delay.
 */
export class ReadRouter {
  readonly primary: pg.Pool;
  readonly replica: pg.Pool | undefined;
  /** Reads served by each side since start (tests and the docs' example). */
  readonly served = { replica: 0, primary: 0 };

  constructor(primary: pg.Pool, replica: pg.Pool | undefined) {
    this.primary = primary;
    this.replica = replica;
  }

  async pick(minLsn: string | undefined): Promise<Queryable> {
    if (!this.replica) return this.primary;
    if (minLsn) {
      const caughtUp = await this.replica
        .query<{ ok: boolean }>('select coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, true) as ok', [minLsn])
        .then((r) => r.rows[0]?.ok === true)
        .catch(() => false);
      if (!caughtUp) {
        this.served.primary++;
        return this.primary;
      }
    }
    this.served.replica++;
    return this.replica;
  }
}

/** The replica pool, when FLOWWARDEN_READ_URL is set. */
export function createReadPool(config: Pick<Config, 'readUrl'>, max: number, applicationName = 'flowwarden-read'): pg.Pool | undefined {
  return config.readUrl && max > 0 ? createPool(config.readUrl, { max, applicationName }) : undefined;
}
