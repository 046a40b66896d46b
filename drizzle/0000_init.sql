CREATE SCHEMA "flowwarden";
--> statement-breakpoint
CREATE TABLE "flowwarden"."flows" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"target" jsonb NOT NULL,
	"health" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"late_after_seconds" integer,
	"valid_since" timestamp with time zone DEFAULT now() NOT NULL,
	"disabled_at" timestamp with time zone,
	"disabled_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "flows_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "flowwarden"."run_state_history" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"run_id" uuid NOT NULL,
	"from_type" text,
	"from_name" text,
	"to_type" text NOT NULL,
	"to_name" text NOT NULL,
	"message" text,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "flowwarden"."runs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"flow_id" uuid NOT NULL,
	"schedule_id" uuid,
	"scheduled_for" timestamp with time zone NOT NULL,
	"state_type" text NOT NULL,
	"state_name" text NOT NULL,
	"state_message" text,
	"parameters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"idempotency_key" text,
	"origin" text DEFAULT 'schedule' NOT NULL,
	"dispatch_attempt" integer,
	"external_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"ended_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "flowwarden"."schedules" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"flow_id" uuid NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"cron" text,
	"interval_seconds" integer,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"anchor" timestamp with time zone DEFAULT now() NOT NULL,
	"parameters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"note" text,
	"catchup" text DEFAULT 'latest' NOT NULL,
	"catchup_window_seconds" integer DEFAULT 3600 NOT NULL,
	"catchup_max" integer DEFAULT 100 NOT NULL,
	"overlap" text DEFAULT 'allow' NOT NULL,
	"next_run_at" timestamp with time zone,
	"last_run_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "flowwarden"."task_results" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"run_id" uuid NOT NULL,
	"name" text NOT NULL,
	"state_type" text NOT NULL,
	"message" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "flowwarden"."run_state_history" ADD CONSTRAINT "run_state_history_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "flowwarden"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "flowwarden"."runs" ADD CONSTRAINT "runs_flow_id_flows_id_fk" FOREIGN KEY ("flow_id") REFERENCES "flowwarden"."flows"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "flowwarden"."runs" ADD CONSTRAINT "runs_schedule_id_schedules_id_fk" FOREIGN KEY ("schedule_id") REFERENCES "flowwarden"."schedules"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "flowwarden"."schedules" ADD CONSTRAINT "schedules_flow_id_flows_id_fk" FOREIGN KEY ("flow_id") REFERENCES "flowwarden"."flows"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "flowwarden"."task_results" ADD CONSTRAINT "task_results_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "flowwarden"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "run_state_history_run_idx" ON "flowwarden"."run_state_history" USING btree ("run_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "runs_schedule_fire_key" ON "flowwarden"."runs" USING btree ("schedule_id","scheduled_for");--> statement-breakpoint
CREATE UNIQUE INDEX "runs_idempotency_key" ON "flowwarden"."runs" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "runs_flow_created_idx" ON "flowwarden"."runs" USING btree ("flow_id","created_at");--> statement-breakpoint
CREATE INDEX "runs_open_idx" ON "flowwarden"."runs" USING btree ("state_type","scheduled_for") WHERE state_type in ('SCHEDULED', 'PENDING', 'RUNNING');--> statement-breakpoint
CREATE UNIQUE INDEX "schedules_flow_name_key" ON "flowwarden"."schedules" USING btree ("flow_id","name");--> statement-breakpoint
CREATE INDEX "schedules_due_idx" ON "flowwarden"."schedules" USING btree ("enabled","next_run_at");--> statement-breakpoint
CREATE INDEX "task_results_run_idx" ON "flowwarden"."task_results" USING btree ("run_id");