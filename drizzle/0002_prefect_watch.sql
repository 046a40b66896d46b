CREATE TABLE "flowwarden"."prefect_schedule_holds" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"flow_id" uuid NOT NULL,
	"deployment_id" text NOT NULL,
	"schedule_id" text NOT NULL,
	"held_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "flowwarden"."prefect_watch_cursors" (
	"flow_id" uuid PRIMARY KEY NOT NULL,
	"deployment_id" text,
	"cursor" timestamp with time zone NOT NULL,
	"imported_count" integer DEFAULT 0 NOT NULL,
	"last_pass_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "flowwarden"."prefect_schedule_holds" ADD CONSTRAINT "prefect_schedule_holds_flow_id_flows_id_fk" FOREIGN KEY ("flow_id") REFERENCES "flowwarden"."flows"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "flowwarden"."prefect_watch_cursors" ADD CONSTRAINT "prefect_watch_cursors_flow_id_flows_id_fk" FOREIGN KEY ("flow_id") REFERENCES "flowwarden"."flows"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "prefect_schedule_holds_key" ON "flowwarden"."prefect_schedule_holds" USING btree ("flow_id","schedule_id");