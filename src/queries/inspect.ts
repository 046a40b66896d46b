/**
 * Read-only inspection queries for operators: queue depth, open runs, disabled flows, schema
 * versions (`flowwarden queues`, GET /api/queues, /readyz, /metrics). Queue numbers come from the
 * SQL views of migration `sql_views`, one definition for CLI, API, Prometheus and psql; why those
 * views reach pg-boss through plpgsql: docs/internals.md ("Inspection views").
 */
import { createRequire } from 'node:module';
import type { Queryable } from '../db/client.ts';
import { BOSS_SCHEMA } from '../queue/catalog.ts';

export interface QueueDepth {
  queue: string;
  /** Waiting jobs (created or retry), ready now plus deferred. */
  queued: number;
  /** Waiting jobs whose start time has come: what a free worker would take next. */
  ready: number;
  /** Waiting jobs whose start time is still ahead (fire times within the horizon, retry backoff). */
  deferred: number;
  /** Waiting jobs that failed before and wait for their next attempt (a subset of queued). */
  retry: number;
  active: number;
  /** Failed for good, still retained by pg-boss (a rolling window, not an all-time total). */
  failed: number;
  /** When the oldest ready job became ready; null when nothing is ready. */
  oldestReadyAt: Date | null;
  /** Seconds the oldest ready job has been waiting (0 when nothing is ready). */
  oldestReadyAgeSeconds: number;
}

/**
 * Live counts per pg-boss queue (view flowwarden.v_queue_depth), by queue name. `after` and `limit`
 * page through them (keyset on the name, for GET /api/queues); without them every queue is listed.
 */
export async function queueDepth(db: Queryable, page: { after?: string | undefined; limit?: number } = {}): Promise<QueueDepth[]> {
  const { rows } = await db.query<QueueDepth>(
    `select queue, queued::int, ready::int, deferred::int, retry::int, active::int, failed::int,
            oldest_ready_at as "oldestReadyAt", oldest_ready_age_seconds::float8 as "oldestReadyAgeSeconds"
       from flowwarden.v_queue_depth
      where $1::text is null or queue > $1::text
      order by queue
      limit $2`,
    [page.after ?? null, page.limit ?? null],
  );
  return rows;
}

/** The JSON shape of one queue, shared by GET /api/queues and `flowwarden queues --json`. */
export function queueJson(q: QueueDepth) {
  return {
    queue: q.queue,
    queued: q.queued,
    ready: q.ready,
    deferred: q.deferred,
    retry: q.retry,
    active: q.active,
    failed: q.failed,
    oldestReadyAt: q.oldestReadyAt ? q.oldestReadyAt.toISOString() : null,
    oldestReadyAgeSeconds: q.oldestReadyAgeSeconds,
  };
}

export interface OpenRunCount {
  stateType: string;
  stateName: string;
  count: number;
}

/** Non-terminal runs by state. Index: runs_open_idx (partial, open states only), so it stays cheap as history grows. */
export async function openRunCounts(db: Queryable): Promise<OpenRunCount[]> {
  const { rows } = await db.query<OpenRunCount>(
    `select state_type as "stateType", state_name as "stateName", count(*)::int as count
       from flowwarden.runs
      where state_type in ('SCHEDULED', 'PENDING', 'RUNNING')
      group by 1, 2`,
  );
  return rows;
}

export async function disabledFlowCount(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from flowwarden.flows where disabled_at is not null`);
  return rows[0]?.n ?? 0;
}

const require = createRequire(import.meta.url);

/** The pg-boss schema version this build expects (pg-boss's package.json `pgboss.schema`). */
export function expectedBossSchemaVersion(): number {
  return (require('pg-boss/package.json') as { pgboss: { schema: number } }).pgboss.schema;
}

/** The pg-boss schema version installed in the database; null when pg-boss is not installed. */
export async function installedBossSchemaVersion(db: Queryable): Promise<number | null> {
  const exists = await db.query<{ t: string | null }>(`select to_regclass($1)::text as t`, [`${BOSS_SCHEMA}.version`]);
  if (!exists.rows[0]?.t) return null;
  const { rows } = await db.query<{ version: string }>(`select version::text as version from ${BOSS_SCHEMA}.version`);
  return rows[0] ? Number.parseInt(rows[0].version, 10) : null;
}
