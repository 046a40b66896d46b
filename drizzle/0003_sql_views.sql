-- Custom migration: SQL views for ad-hoc inspection (docs/operations.md has example queries).
--
-- Views over pg-boss's tables go through plpgsql functions rather than referencing
-- flowwarden_queue.* directly: Postgres does not record dependencies inside plpgsql bodies, so
-- (1) pg-boss's own migrations may alter or rebuild its job table without our views blocking them,
-- (2) this migration runs before pg-boss installs its schema on a fresh database.
-- A later migration that changes a flowwarden column one of these views uses must drop and
-- re-create the view (CREATE OR REPLACE VIEW cannot change a column's type).

-- The dispatch job of a run: job id = run id on queue 'fw.dispatch' (src/queue/catalog.ts).
-- Primary key lookup (name, id) on pg-boss's job table.
CREATE OR REPLACE FUNCTION flowwarden.dispatch_job(p_run_id uuid)
RETURNS TABLE (state text, retry_count integer, retry_limit integer, start_after timestamptz, started_on timestamptz, completed_on timestamptz)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY
    SELECT j.state::text, j.retry_count, j.retry_limit, j.start_after, j.started_on, j.completed_on
      FROM flowwarden_queue.job j
     WHERE j.name = 'fw.dispatch' AND j.id = p_run_id;
END
$$;
--> statement-breakpoint

-- Live job counts per pg-boss queue, from the job table itself (pg-boss's cached counters in
-- flowwarden_queue.queue lag by up to a monitor interval). Completed and cancelled jobs are not read.
CREATE OR REPLACE FUNCTION flowwarden.queue_depth()
RETURNS TABLE (queue text, ready bigint, deferred bigint, retry bigint, active bigint, failed bigint, oldest_ready_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY
    SELECT q.name::text,
           count(j.id) FILTER (WHERE j.state IN ('created', 'retry') AND j.start_after <= now()),
           count(j.id) FILTER (WHERE j.state IN ('created', 'retry') AND j.start_after > now()),
           count(j.id) FILTER (WHERE j.state = 'retry'),
           count(j.id) FILTER (WHERE j.state = 'active'),
           count(j.id) FILTER (WHERE j.state = 'failed'),
           min(j.start_after) FILTER (WHERE j.state IN ('created', 'retry') AND j.start_after <= now())
      FROM flowwarden_queue.queue q
      LEFT JOIN flowwarden_queue.job j
        ON j.name = q.name AND j.state IN ('created', 'retry', 'active', 'failed')
     GROUP BY q.name;
END
$$;
--> statement-breakpoint

CREATE OR REPLACE VIEW flowwarden.v_queue_depth AS
SELECT d.queue,
       d.ready + d.deferred AS queued,
       d.ready,
       d.deferred,
       d.retry,
       d.active,
       d.failed,
       d.oldest_ready_at,
       coalesce(extract(epoch FROM now() - d.oldest_ready_at), 0)::numeric(12, 3) AS oldest_ready_age_seconds
  FROM flowwarden.queue_depth() d;
--> statement-breakpoint

-- Enabled schedules and their next fire, soonest first. overdue: next_run_at has passed and no
-- tick has materialised it yet (no pod is ticking, or the tick is behind).
CREATE OR REPLACE VIEW flowwarden.v_due_schedules AS
SELECT f.name AS flow,
       s.name AS schedule,
       s.kind,
       coalesce(s.cron, s.interval_seconds::text || 's') AS spec,
       s.timezone,
       s.next_run_at,
       s.next_run_at - now() AS due_in,
       s.next_run_at <= now() AS overdue,
       s.last_run_at,
       s.catchup,
       s.overlap,
       f.disabled_at IS NOT NULL AS flow_disabled,
       s.id AS schedule_id,
       f.id AS flow_id
  FROM flowwarden.schedules s
  JOIN flowwarden.flows f ON f.id = s.flow_id
 WHERE s.enabled
 ORDER BY s.next_run_at NULLS LAST;
--> statement-breakpoint

-- Non-terminal runs with their age, lateness and dispatch job. lateness: how far past its fire
-- time the run started (or, not started yet, is now). job_state 'active' on a PENDING/RUNNING run
-- means a worker holds it; 'retry' means a retry is due at job_start_after; NULL means the job is
-- gone (archived/deleted) or the run never had one.
CREATE OR REPLACE VIEW flowwarden.v_open_runs AS
SELECT r.id AS run_id,
       f.name AS flow,
       s.name AS schedule,
       r.state_type,
       r.state_name,
       r.state_message,
       r.origin,
       r.scheduled_for,
       r.created_at,
       r.started_at,
       now() - r.created_at AS age,
       greatest(coalesce(r.started_at, now()) - r.scheduled_for, interval '0') AS lateness,
       r.dispatch_attempt,
       r.external_id,
       j.state AS job_state,
       j.retry_count AS job_retry_count,
       j.retry_limit AS job_retry_limit,
       j.start_after AS job_start_after,
       j.started_on AS job_started_on
  FROM flowwarden.runs r
  JOIN flowwarden.flows f ON f.id = r.flow_id
  LEFT JOIN flowwarden.schedules s ON s.id = r.schedule_id
  LEFT JOIN LATERAL flowwarden.dispatch_job(r.id) j ON true
 WHERE r.state_type IN ('SCHEDULED', 'PENDING', 'RUNNING');
--> statement-breakpoint

-- Per flow: the last terminal run, the failure streak the guard counts (FAILED/CRASHED runs since
-- valid_since, newer than the last COMPLETED one; CANCELLED neither counts nor resets, as in
-- src/queries/guard.ts), and whether the flow is held disabled.
CREATE OR REPLACE VIEW flowwarden.v_flow_health AS
SELECT f.name AS flow,
       f.target ->> 'type' AS target_type,
       f.disabled_at IS NOT NULL AS disabled,
       f.disabled_at,
       f.disabled_reason,
       f.valid_since,
       last.state_type AS last_state_type,
       last.state_name AS last_state_name,
       last.scheduled_for AS last_scheduled_for,
       last.ended_at AS last_ended_at,
       coalesce(streak.n, 0) AS consecutive_failures,
       (SELECT count(*) FROM flowwarden.runs o
         WHERE o.flow_id = f.id AND o.state_type IN ('SCHEDULED', 'PENDING', 'RUNNING')) AS open_runs,
       (SELECT count(*) FROM flowwarden.schedules s WHERE s.flow_id = f.id AND s.enabled) AS enabled_schedules,
       f.id AS flow_id
  FROM flowwarden.flows f
  LEFT JOIN LATERAL (
    SELECT r.state_type, r.state_name, r.scheduled_for, r.ended_at
      FROM flowwarden.runs r
     WHERE r.flow_id = f.id AND r.state_type IN ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED')
     ORDER BY r.created_at DESC, r.scheduled_for DESC, r.id DESC
     LIMIT 1
  ) last ON true
  LEFT JOIN LATERAL (
    SELECT count(*) AS n
      FROM flowwarden.runs r
     WHERE r.flow_id = f.id
       AND r.state_type IN ('FAILED', 'CRASHED')
       AND (r.created_at >= f.valid_since OR r.scheduled_for >= f.valid_since)
       AND r.created_at > coalesce((
             SELECT max(c.created_at) FROM flowwarden.runs c
              WHERE c.flow_id = f.id AND c.state_type = 'COMPLETED'
                AND (c.created_at >= f.valid_since OR c.scheduled_for >= f.valid_since)
           ), '-infinity')
  ) streak ON true;
