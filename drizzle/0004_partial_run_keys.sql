-- Partial unique keys on runs: most runs have no idempotency key and manual runs no schedule, so
-- their NULL entries only cost an index write on every state change. Rebuilding the two indexes
-- holds a write lock on runs for the time it takes (seconds for millions of rows).
DROP INDEX "flowwarden"."runs_schedule_fire_key";--> statement-breakpoint
DROP INDEX "flowwarden"."runs_idempotency_key";--> statement-breakpoint
CREATE UNIQUE INDEX "runs_schedule_fire_key" ON "flowwarden"."runs" USING btree ("schedule_id","scheduled_for") WHERE schedule_id is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "runs_idempotency_key" ON "flowwarden"."runs" USING btree ("idempotency_key") WHERE idempotency_key is not null;