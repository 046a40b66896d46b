-- Custom SQL migration: a run inserted into a minute the chart rollup already settled (a catch-up
-- after downtime, a Prefect import, a backfill) deletes that minute's row, so the next rollup pass
-- counts it again (src/queries/chart.ts). Runs created for now or ahead (the tick, triggers) take
-- the IF's false branch: no lock, no delete. The rollup only settles minutes more than 5 minutes
-- old; the 4 minutes here leave a minute of margin.
CREATE OR REPLACE FUNCTION flowwarden.run_minutes_invalidate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_runs n WHERE n.scheduled_for < clock_timestamp() - interval '4 minutes') THEN
    DELETE FROM flowwarden.run_minutes m
     WHERE m.minute IN (SELECT date_trunc('minute', n.scheduled_for) FROM new_runs n
                         WHERE n.scheduled_for < clock_timestamp() - interval '4 minutes');
  END IF;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER runs_invalidate_run_minutes AFTER INSERT ON flowwarden.runs
  REFERENCING NEW TABLE AS new_runs FOR EACH STATEMENT EXECUTE FUNCTION flowwarden.run_minutes_invalidate();
