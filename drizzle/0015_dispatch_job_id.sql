ALTER TABLE "flowwarden"."runs" ADD COLUMN "dispatch_job_id" uuid;--> statement-breakpoint
-- A run's dispatch job is the job whose id is in dispatch_job_id (a multi-run job of the tick, a
-- single-run retry or deferral), or else the job whose id is the run id. Same columns as before.
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
  LEFT JOIN LATERAL flowwarden.dispatch_job(coalesce(r.dispatch_job_id, r.id)) j ON true
 WHERE r.state_type IN ('SCHEDULED', 'PENDING', 'RUNNING');
