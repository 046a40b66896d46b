CREATE TABLE "flowwarden"."disabled_flows" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"flow_id" uuid,
	"flow_name" text NOT NULL,
	"reason" text NOT NULL,
	"rule" text NOT NULL,
	"evidence" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"disabled_by" text DEFAULT 'guard' NOT NULL,
	"disabled_at" timestamp with time zone DEFAULT now() NOT NULL,
	"reactivated_at" timestamp with time zone,
	"reactivated_by" text,
	"enforce_count" integer DEFAULT 0 NOT NULL,
	"last_enforced_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "flowwarden"."notification_channels" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"url" text,
	"events" text[] DEFAULT '{}'::text[] NOT NULL,
	"flows" text[],
	"enabled" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "notification_channels_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "flowwarden"."notification_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"channel_id" uuid NOT NULL,
	"event" text NOT NULL,
	"flow_name" text,
	"text" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"message_id" uuid
);
--> statement-breakpoint
CREATE TABLE "flowwarden"."notification_messages" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"channel_id" uuid NOT NULL,
	"text" text NOT NULL,
	"chunks" jsonb NOT NULL,
	"chunks_total" integer NOT NULL,
	"chunks_delivered" integer DEFAULT 0 NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"delivered_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "flowwarden"."disabled_flows" ADD CONSTRAINT "disabled_flows_flow_id_flows_id_fk" FOREIGN KEY ("flow_id") REFERENCES "flowwarden"."flows"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "flowwarden"."notification_events" ADD CONSTRAINT "notification_events_channel_id_notification_channels_id_fk" FOREIGN KEY ("channel_id") REFERENCES "flowwarden"."notification_channels"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "flowwarden"."notification_messages" ADD CONSTRAINT "notification_messages_channel_id_notification_channels_id_fk" FOREIGN KEY ("channel_id") REFERENCES "flowwarden"."notification_channels"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "disabled_flows_open_key" ON "flowwarden"."disabled_flows" USING btree ("flow_name") WHERE reactivated_at is null;--> statement-breakpoint
CREATE INDEX "disabled_flows_name_idx" ON "flowwarden"."disabled_flows" USING btree ("flow_name","disabled_at");--> statement-breakpoint
CREATE INDEX "notification_events_pending_idx" ON "flowwarden"."notification_events" USING btree ("channel_id","id") WHERE message_id is null;--> statement-breakpoint
CREATE INDEX "notification_messages_channel_idx" ON "flowwarden"."notification_messages" USING btree ("channel_id","created_at");