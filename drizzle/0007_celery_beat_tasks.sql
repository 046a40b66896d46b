CREATE TABLE "flowwarden"."celery_beat_tasks" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"source" text NOT NULL,
	"task_name" text NOT NULL,
	"flow_id" uuid NOT NULL,
	"imported" jsonb NOT NULL,
	"one_off_key" text,
	"django_changed_at" timestamp with time zone,
	"synced_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "flowwarden"."celery_beat_tasks" ADD CONSTRAINT "celery_beat_tasks_flow_id_flows_id_fk" FOREIGN KEY ("flow_id") REFERENCES "flowwarden"."flows"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "celery_beat_tasks_source_task_key" ON "flowwarden"."celery_beat_tasks" USING btree ("source","task_name");