/**
 * Migrations: drizzle (domain tables, files in drizzle/) then pg-boss (queue tables).
 *
 * Several pods starting at once against an empty database must not trip over each other, so the
 * domain migration runs under a session advisory lock; pg-boss serialises its own migrations the
 * same way. A pod that waited on the lock finds the migrations already applied and moves on.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrator, nodePg } from './drizzle.ts';
import { PgBoss } from 'pg-boss';
import { BOSS_SCHEMA, ensureQueues } from '../queue/catalog.ts';
import { readFileSync } from 'node:fs';
import { CONNECT_TIMEOUT_MS } from './client.ts';

export const MIGRATIONS_FOLDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../drizzle');
const LOCK_KEY = 0x466c6f77; // 'Flow'

export async function migrateDomain(connectionString: string): Promise<void> {
  const client = new pg.Client({ connectionString, application_name: 'flowwarden-migrate', connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [LOCK_KEY]);
    try {
      await migrator.migrate(nodePg.drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER, migrationsSchema: 'flowwarden_migrations' });
    } finally {
      await client.query('select pg_advisory_unlock($1)', [LOCK_KEY]);
    }
  } finally {
    await client.end();
  }
}

/** What the queue migration writes into each queue's options (see ensureQueues). */
export interface QueueSettings {
  /** FLOWWARDEN_JOB_RETENTION_SECONDS; unset: each queue's own default. */
  jobRetentionSeconds?: number;
}

/**
 * Installs or upgrades pg-boss's schema and creates/updates flowwarden's queues with `settings`
 * (the configured retention: a `flowwarden migrate` must not put the defaults back under running pods).
 */
export async function migrateQueue(connectionString: string, settings: QueueSettings = {}): Promise<void> {
  const boss = new PgBoss({ connectionString, schema: BOSS_SCHEMA, supervise: false, schedule: false, max: 2, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  boss.on('error', () => {});
  await boss.start();
  try {
    await ensureQueues(boss, settings);
  } finally {
    await boss.stop({ graceful: false });
  }
}

export async function migrateAll(connectionString: string, settings: QueueSettings = {}): Promise<void> {
  await migrateDomain(connectionString);
  await migrateQueue(connectionString, settings);
}

/** The number of drizzle migrations shipped with this build (readiness compares it with the DB). */
export function shippedMigrationCount(): number {
  const journal = JSON.parse(readFileSync(path.join(MIGRATIONS_FOLDER, 'meta/_journal.json'), 'utf8')) as { entries: unknown[] };
  return journal.entries.length;
}

export async function appliedMigrationCount(db: { query: pg.Pool['query'] } | pg.Pool): Promise<number> {
  const { rows } = await (db as pg.Pool).query<{ n: number }>(
    `select count(*)::int as n from flowwarden_migrations.__drizzle_migrations`,
  );
  return rows[0]?.n ?? 0;
}
