CREATE TABLE "flowwarden"."admin_sessions" (
	"id" text PRIMARY KEY NOT NULL,
	"scope" text NOT NULL,
	"token_mac" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "flowwarden"."instance_keys" (
	"name" text PRIMARY KEY NOT NULL,
	"secret" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
