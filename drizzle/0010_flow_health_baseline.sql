-- Custom SQL migration: v_flow_health counts failures by when they ended (ended_at >= valid_since),
-- like src/queries/guard.ts.
-- Per flow: the last terminal run, the failure streak the guard counts (FAILED/CRASHED runs since
-- valid_since by when they ended (ended_at, as the guard counts them since issue 11), newer than the last COMPLETED one; CANCELLED neither counts nor resets, as in
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
       AND coalesce(r.ended_at, CASE WHEN r.origin = 'watch' THEN r.scheduled_for ELSE r.created_at END) >= f.valid_since
       AND r.created_at > coalesce((
             SELECT max(c.created_at) FROM flowwarden.runs c
              WHERE c.flow_id = f.id AND c.state_type = 'COMPLETED'
                AND coalesce(c.ended_at, CASE WHEN c.origin = 'watch' THEN c.scheduled_for ELSE c.created_at END) >= f.valid_since
           ), '-infinity')
  ) streak ON true;
