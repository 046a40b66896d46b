ALTER TABLE "flowwarden"."runs" ADD COLUMN "implied" smallint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "flowwarden"."runs" ADD COLUMN "pending_at" timestamp with time zone;