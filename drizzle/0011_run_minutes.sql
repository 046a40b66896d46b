CREATE TABLE "flowwarden"."run_minutes" (
	"minute" timestamp with time zone PRIMARY KEY NOT NULL,
	"counts" jsonb NOT NULL,
	"rolled_at" timestamp with time zone DEFAULT now() NOT NULL
);
