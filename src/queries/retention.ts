/**
 * Retention: the set-based deletes of the retention sweep (src/maintenance/retention.ts) and the table
 * sizes `flowwarden status` and the admin overview show. See docs/operations.md "Retention".
 *
 * What is never deleted: open runs (SCHEDULED, PENDING, RUNNING); per flow, the newest `keepRuns`
 * terminal runs the guard's streak rule reads (at least the flow's maxConsecutiveFailures); the
 * evidence runs of open holds; disabled_flows (the guard's audit log); pending notification events
 * and messages. Each statement deletes at most `limit` rows and skips rows another transaction has
 * locked, so pods sweeping at once take different rows and a run being written is left alone.
 */
import type { Queryable } from '../db/client.ts';

export interface RunRetentionParams {
  /** Global window in seconds; a flow's health.retention overrides; 0 = keep forever. */
  retentionSeconds: number;
  keepRuns: number;
  /** The guard's default maxConsecutiveFailures (a flow's own overrides). */
  defaultMaxFailures: number;
  limit: number;
  /** Postgres time unless given (tests). */
  now?: Date;
}

/**
 * Delete up to `limit` expired finished runs in ONE statement; run_state_history and task_results
 * go with them (on delete cascade, found through their run_id indexes). Returns rows deleted per
 * table.
 *
 * Per flow (lateral): `kth` is the created_at of the keepRuns-th newest COMPLETED/FAILED/CRASHED run
 * (runs_flow_created_idx backwards, keepRuns entries); runs at or after it are kept, which covers
 * the guard's newest-N read even with ties (a tick creates a batch with one created_at). CANCELLED
 * runs never count for the guard, so only the age window keeps them. The victims are read from the
 * same index forwards (oldest first) and locked FOR UPDATE SKIP LOCKED.
 */
export async function deleteExpiredRuns(db: Queryable, p: RunRetentionParams): Promise<{ runs: number; history: number; tasks: number }> {
  const { rows } = await db.query<{ runs: number; history: number; tasks: number }>(
    `with held as (
       select coalesce(array_agg(x.id::uuid), '{}') as ids
         from flowwarden.disabled_flows d
        cross join lateral jsonb_array_elements_text(coalesce(d.evidence->'runIds', '[]'::jsonb)) x(id)
        where d.reactivated_at is null
     ),
     victims as (
       select v.id
         from flowwarden.flows f
        cross join lateral (
          select coalesce($5::timestamptz, now()) - make_interval(secs => coalesce((f.health->>'retention')::int, $1::int)) as cutoff,
                 coalesce((select k.created_at from flowwarden.runs k
                            where k.flow_id = f.id and k.state_type in ('COMPLETED', 'FAILED', 'CRASHED')
                            order by k.created_at desc
                           offset greatest($2::int, coalesce((f.health->>'maxConsecutiveFailures')::int, $3::int)) - 1
                            limit 1), '-infinity') as kth
        ) p
        cross join held
        cross join lateral (
          select r.id
            from flowwarden.runs r
           where r.flow_id = f.id
             and r.created_at < p.cutoff
             and r.state_type in ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED')
             and (r.state_type = 'CANCELLED' or r.created_at < p.kth)
             and r.id <> all(held.ids)
           order by r.created_at
           limit $4
           for update of r skip locked
        ) v
        where coalesce((f.health->>'retention')::int, $1::int) > 0
        limit $4
     ),
     gone as (
       delete from flowwarden.runs r using victims v where r.id = v.id returning r.id
     )
     select (select count(*)::int from gone) as runs,
            (select count(*)::int from flowwarden.run_state_history h where h.run_id in (select id from victims)) as history,
            (select count(*)::int from flowwarden.task_results t where t.run_id in (select id from victims)) as tasks`,
    [p.retentionSeconds, p.keepRuns, p.defaultMaxFailures, p.limit, p.now ?? null],
  );
  return rows[0] ?? { runs: 0, history: 0, tasks: 0 };
}

/**
 * Delete up to `limit` delivered or failed notification messages older than the window, then up to
 * `limit` events already folded into a message that is no longer pending. Pending events (not yet
 * folded) and pending messages are kept whatever their age: they are still to be delivered.
 */
export async function deleteExpiredNotifications(db: Queryable, p: { retentionSeconds: number; limit: number; now?: Date }): Promise<{ messages: number; events: number }> {
  if (p.retentionSeconds <= 0) return { messages: 0, events: 0 };
  const cutoff = `coalesce($3::timestamptz, now()) - make_interval(secs => $1::int)`;
  const messages = await db.query(
    `delete from flowwarden.notification_messages where id in (
       select id from flowwarden.notification_messages
        where status in ('delivered', 'failed') and created_at < ${cutoff}
        limit $2 for update skip locked)`,
    [p.retentionSeconds, p.limit, p.now ?? null],
  );
  const events = await db.query(
    `delete from flowwarden.notification_events where id in (
       select e.id from flowwarden.notification_events e
        where e.message_id is not null and e.created_at < ${cutoff}
          and not exists (select 1 from flowwarden.notification_messages m where m.id = e.message_id and m.status = 'pending')
        limit $2 for update of e skip locked)`,
    [p.retentionSeconds, p.limit, p.now ?? null],
  );
  return { messages: messages.rowCount ?? 0, events: events.rowCount ?? 0 };
}

export interface TableSize {
  table: string;
  /** Planner estimate (pg_class.reltuples): cheap at any size; -1 before the first analyze. */
  rowsEstimate: number;
  /** Table + indexes + TOAST. */
  totalBytes: number;
}

/** Sizes of flowwarden's tables and pg-boss's, largest first, plus the whole database. */
export async function tableSizes(db: Queryable): Promise<{ databaseBytes: number; tables: TableSize[] }> {
  const { rows } = await db.query<{ table: string; rowsEstimate: string; totalBytes: string }>(
    `select n.nspname || '.' || c.relname as table, s.rows as "rowsEstimate", s.bytes as "totalBytes"
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       -- A partitioned table (pg-boss's job table) is the sum of its partitions.
       cross join lateral (
         select coalesce(sum(greatest(p.reltuples, 0)), 0)::bigint as rows, coalesce(sum(pg_total_relation_size(p.oid)), 0)::bigint as bytes
           from pg_class p
          where p.oid = c.oid and c.relkind = 'r'
             or p.oid in (select t.relid from pg_partition_tree(c.oid) t where t.isleaf and c.relkind = 'p')) s
      where n.nspname in ('flowwarden', 'flowwarden_queue') and c.relkind in ('r', 'p') and not c.relispartition
      order by s.bytes desc`,
  );
  const db_ = await db.query<{ bytes: string }>(`select pg_database_size(current_database()) as bytes`);
  return {
    databaseBytes: Number(db_.rows[0]?.bytes ?? 0),
    tables: rows.map((r) => ({ table: r.table, rowsEstimate: Number(r.rowsEstimate), totalBytes: Number(r.totalBytes) })),
  };
}
