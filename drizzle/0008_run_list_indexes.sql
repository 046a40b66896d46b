DROP INDEX "flowwarden"."runs_failed_idx";--> statement-breakpoint
DROP INDEX "flowwarden"."runs_open_idx";--> statement-breakpoint
CREATE INDEX "runs_failed_scheduled_idx" ON "flowwarden"."runs" USING btree ("scheduled_for","id") WHERE state_type in ('FAILED', 'CRASHED');--> statement-breakpoint
CREATE INDEX "runs_failed_ended_idx" ON "flowwarden"."runs" USING btree ("ended_at") WHERE state_type in ('FAILED', 'CRASHED');--> statement-breakpoint
CREATE INDEX "runs_open_idx" ON "flowwarden"."runs" USING btree ("state_type","scheduled_for","id") WHERE state_type in ('SCHEDULED', 'PENDING', 'RUNNING');