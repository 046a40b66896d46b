-- Custom SQL migration: a run's history as one list. The plain path records its moves on the run
-- row (runs.implied bits: 1 created, 2 claimed, 4 started, 8 ended, with created_at, pending_at,
-- started_at, ended_at); run_state_history keeps every other transition. This view merges both.
-- Order is structural, not by time (transaction start times can invert): (phase, id) with
-- 0 implied created, 1 table rows that create or rename a SCHEDULED run, 2 implied claimed,
-- 3 implied started, 4 every other table row, 5 implied ended. A run never returns to SCHEDULED,
-- so everything before its claim is phase 0/1 and everything after it phase 4. An implied entry
-- comes from the state of the entry before it (lag); table rows keep their stored from-state.
-- Read it with `where run_id = $1 order by seq`: run_id is the window's partition key, so the
-- condition reaches both branches (run_state_history_run_idx, the runs primary key).
CREATE VIEW flowwarden.run_history AS
SELECT e.run_id,
       row_number() OVER w AS seq,
       CASE WHEN e.implied THEN lag(e.to_type) OVER w ELSE e.from_type END AS from_type,
       CASE WHEN e.implied THEN lag(e.to_name) OVER w ELSE e.from_name END AS from_name,
       e.to_type,
       e.to_name,
       e.message,
       e.at
  FROM (
    SELECT h.run_id,
           CASE WHEN h.from_type IS NULL OR h.to_type = 'SCHEDULED' THEN 1 ELSE 4 END AS phase,
           h.id,
           false AS implied,
           h.from_type, h.from_name, h.to_type, h.to_name, h.message, h.at
      FROM flowwarden.run_state_history h
    UNION ALL
    SELECT r.id, x.phase, 0::bigint, true, NULL::text, NULL::text, x.to_type, x.to_name, x.message, x.at
      FROM flowwarden.runs r
     CROSS JOIN LATERAL (VALUES
       (0, 1, 'SCHEDULED'::text, 'Scheduled'::text,
        CASE WHEN r.origin = 'schedule' THEN 'created by schedule' ELSE 'created (' || r.origin || ')' END, r.created_at),
       (2, 2, 'PENDING', 'Pending', 'dispatch attempt 1', r.pending_at),
       (3, 4, 'RUNNING', 'Running', NULL, r.started_at),
       (5, 8, r.state_type, r.state_name, r.state_message, r.ended_at)
     ) AS x(phase, bit, to_type, to_name, message, at)
     WHERE r.implied & x.bit <> 0
  ) e
WINDOW w AS (PARTITION BY e.run_id ORDER BY e.phase, e.id);
