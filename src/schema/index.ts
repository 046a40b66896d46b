/**
 * flowwarden's domain tables (drizzle). Migrations in drizzle/ are generated from this file with
 * `npm run db:generate`; never edit them by hand.
 *
 * Everything lives in the `flowwarden` schema; pg-boss keeps its queue tables in `flowwarden_queue`.
 */
import { orm, pgCore } from '../db/drizzle.ts';

const { sql } = orm;
const { bigserial, boolean, index, integer, jsonb, pgSchema, smallint, text, timestamp, uniqueIndex, uuid } = pgCore;

export const fw = pgSchema('flowwarden');

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** A named unit of work. `name` is the stable identity; everything else may change on redeploy. */
export const flows = fw.table('flows', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull().unique(),
  description: text('description'),
  /** Where runs execute: see src/targets/spec.ts (TargetSpec). */
  target: jsonb('target').notNull(),
  /** Health-rule overrides: see src/guard/policy.ts. Empty object = global defaults. */
  health: jsonb('health').notNull().default(sql`'{}'::jsonb`),
  /** Per-flow late threshold; null = global default. */
  lateAfterSeconds: integer('late_after_seconds'),
  /** Baseline for health rules: creation, or the last reactivation. */
  validSince: tz('valid_since').notNull().defaultNow(),
  /** Set while the guard (or an operator) holds the flow disabled; null otherwise. */
  disabledAt: tz('disabled_at'),
  disabledReason: text('disabled_reason'),
  createdAt: tz('created_at').notNull().defaultNow(),
  updatedAt: tz('updated_at').notNull().defaultNow(),
});

export const schedules = fw.table(
  'schedules',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    flowId: uuid('flow_id')
      .notNull()
      .references(() => flows.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    kind: text('kind', { enum: ['cron', 'interval'] }).notNull(),
    cron: text('cron'),
    intervalSeconds: integer('interval_seconds'),
    timezone: text('timezone').notNull().default('UTC'),
    /** Interval schedules fire at anchor + k * interval. */
    anchor: tz('anchor').notNull().defaultNow(),
    parameters: jsonb('parameters').notNull().default(sql`'{}'::jsonb`),
    enabled: boolean('enabled').notNull().default(true),
    note: text('note'),
    catchup: text('catchup', { enum: ['skip', 'latest', 'all'] }).notNull().default('latest'),
    catchupWindowSeconds: integer('catchup_window_seconds').notNull().default(3600),
    catchupMax: integer('catchup_max').notNull().default(100),
    overlap: text('overlap', { enum: ['allow', 'skip'] }).notNull().default('allow'),
    /** The next fire time not yet materialised as a run. Owned by the scheduler tick. */
    nextRunAt: tz('next_run_at'),
    lastRunAt: tz('last_run_at'),
    createdAt: tz('created_at').notNull().defaultNow(),
    updatedAt: tz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('schedules_flow_name_key').on(t.flowId, t.name),
    // The tick's claim: enabled AND next_run_at <= now + horizon ORDER BY next_run_at.
    index('schedules_due_idx').on(t.enabled, t.nextRunAt),
  ],
);

export const runs = fw.table(
  'runs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    flowId: uuid('flow_id')
      .notNull()
      .references(() => flows.id, { onDelete: 'cascade' }),
    scheduleId: uuid('schedule_id').references(() => schedules.id, { onDelete: 'set null' }),
    /** When the run should start (the schedule's fire time, or the trigger time). */
    scheduledFor: tz('scheduled_for').notNull(),
    stateType: text('state_type').notNull(),
    stateName: text('state_name').notNull(),
    stateMessage: text('state_message'),
    parameters: jsonb('parameters').notNull().default(sql`'{}'::jsonb`),
    idempotencyKey: text('idempotency_key'),
    /** A RunOrigin (./enums.ts). */
    origin: text('origin').notNull().default('schedule'),
    /** pg-boss retryCount of the dispatch attempt that owns the run (see docs/state-machine.md). */
    dispatchAttempt: integer('dispatch_attempt'),
    externalId: text('external_id'),
    /**
     * The pg-boss dispatch job carrying the run when its id is not the run's own: a multi-run job of
     * the tick, or a single-run retry/deferral job sent later. Null: the job id is the run id.
     */
    dispatchJobId: uuid('dispatch_job_id'),
    createdAt: tz('created_at').notNull().defaultNow(),
    startedAt: tz('started_at'),
    endedAt: tz('ended_at'),
    updatedAt: tz('updated_at').notNull().defaultNow(),
    /**
     * History entries recorded on this row instead of run_state_history (bits: 1 created, 2 claimed,
     * 4 started, 8 ended); the view flowwarden.run_history merges both (docs/state-machine.md).
     */
    implied: smallint('implied').notNull().default(0),
    /** When the fast claim moved the run to PENDING (with the `claimed` bit). */
    pendingAt: tz('pending_at'),
  },
  (t) => [
    // Exactly one run per (schedule, fire time), however many pods tick.
    // Both are partial: most runs have no idempotency key and manual runs no schedule, and a NULL
    // entry would be one more index write on every (non-HOT) state change for nothing.
    uniqueIndex('runs_schedule_fire_key').on(t.scheduleId, t.scheduledFor).where(sql`schedule_id is not null`),
    uniqueIndex('runs_idempotency_key').on(t.idempotencyKey).where(sql`idempotency_key is not null`),
    index('runs_flow_created_idx').on(t.flowId, t.createdAt),
    // Run lists (API, admin, CLI) order by (scheduled_for desc, id desc) and page by keyset: without
    // these a page at 10M runs sorted the whole table (or a flow's runs). docs/scaling.md.
    index('runs_scheduled_idx').on(t.scheduledFor, t.id),
    index('runs_flow_scheduled_idx').on(t.flowId, t.scheduledFor, t.id),
    // `?state=FAILED` lists without walking past the COMPLETED majority.
    index('runs_failed_scheduled_idx')
      .on(t.scheduledFor, t.id)
      .where(sql`state_type in ('FAILED', 'CRASHED')`),
    // The admin overview's recent failures; partial, so only failed runs pay for it. On ended_at,
    // not updated_at: an index on updated_at would make every Late rename a non-HOT update.
    index('runs_failed_ended_idx')
      .on(t.endedAt)
      .where(sql`state_type in ('FAILED', 'CRASHED')`),
    // Late sweep and overlap checks only ever look at unfinished runs.
    // id last: the overview's running/late lists (order by scheduled_for, id) read it in order.
    index('runs_open_idx')
      .on(t.stateType, t.scheduledFor, t.id)
      .where(sql`state_type in ('SCHEDULED', 'PENDING', 'RUNNING')`),
  ],
);

export const runStateHistory = fw.table(
  'run_state_history',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    fromType: text('from_type'),
    fromName: text('from_name'),
    toType: text('to_type').notNull(),
    toName: text('to_name').notNull(),
    message: text('message'),
    at: tz('at').notNull().defaultNow(),
  },
  (t) => [index('run_state_history_run_idx').on(t.runId, t.id)],
);

export const taskResults = fw.table(
  'task_results',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    stateType: text('state_type').notNull(),
    message: text('message'),
    createdAt: tz('created_at').notNull().defaultNow(),
  },
  (t) => [index('task_results_run_idx').on(t.runId)],
);

/**
 * The guard's record of disabled flows: one row per disable; `reactivatedAt` closes it. The open
 * row (reactivated_at is null) is what holds a flow disabled. Rows are never deleted: they are the
 * full history of disables and reactivations. `flowName` is the stable identity (ids may change
 * when a flow is re-created).
 */
export const disabledFlows = fw.table(
  'disabled_flows',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    flowId: uuid('flow_id').references(() => flows.id, { onDelete: 'set null' }),
    flowName: text('flow_name').notNull(),
    reason: text('reason').notNull(),
    /** A GuardRule (./enums.ts). */
    rule: text('rule').notNull(),
    /** e.g. { runIds: [...], task: '...', message: '...' } */
    evidence: jsonb('evidence').notNull().default(sql`'{}'::jsonb`),
    disabledBy: text('disabled_by').notNull().default('guard'),
    disabledAt: tz('disabled_at').notNull().defaultNow(),
    reactivatedAt: tz('reactivated_at'),
    reactivatedBy: text('reactivated_by'),
    /** How many times the enforce pass had to re-disable schedules re-enabled behind its back. */
    enforceCount: integer('enforce_count').notNull().default(0),
    lastEnforcedAt: tz('last_enforced_at'),
  },
  (t) => [
    uniqueIndex('disabled_flows_open_key').on(t.flowName).where(sql`reactivated_at is null`),
    index('disabled_flows_name_idx').on(t.flowName, t.disabledAt),
  ],
);

/** Chat channels (Discord, Slack, generic webhook) and which events they receive. */
export const notificationChannels = fw.table('notification_channels', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull().unique(),
  /** A StoredChannelKind (./enums.ts). */
  kind: text('kind').notNull(),
  /** A secret: never logged or returned by the API. */
  url: text('url'),
  /** Event names (run.failed, run.late, flow.disabled, flow.reactivated, ...); empty = all. */
  events: text('events').array().notNull().default(sql`'{}'::text[]`),
  /** Flow names; null = every flow. */
  flows: text('flows').array(),
  enabled: boolean('enabled').notNull().default(true),
  createdAt: tz('created_at').notNull().defaultNow(),
  updatedAt: tz('updated_at').notNull().defaultNow(),
});

/**
 * Events waiting to be posted to a channel. The notify worker takes every pending event of a
 * channel at once, so a burst becomes one digest message instead of hundreds of posts.
 */
export const notificationEvents = fw.table(
  'notification_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    channelId: uuid('channel_id')
      .notNull()
      .references(() => notificationChannels.id, { onDelete: 'cascade' }),
    event: text('event').notNull(),
    flowName: text('flow_name'),
    text: text('text').notNull(),
    createdAt: tz('created_at').notNull().defaultNow(),
    /** Set when the event was folded into a message. */
    messageId: uuid('message_id'),
  },
  (t) => [index('notification_events_pending_idx').on(t.channelId, t.id).where(sql`message_id is null`)],
);

/**
 * One rendered message to one channel, split into chunks. `chunksDelivered` advances after each
 * chunk is accepted, so a retry resumes at the first undelivered chunk and never re-sends one.
 */
export const notificationMessages = fw.table(
  'notification_messages',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    channelId: uuid('channel_id')
      .notNull()
      .references(() => notificationChannels.id, { onDelete: 'cascade' }),
    text: text('text').notNull(),
    chunks: jsonb('chunks').notNull(),
    chunksTotal: integer('chunks_total').notNull(),
    chunksDelivered: integer('chunks_delivered').notNull().default(0),
    /** A MessageStatus (./enums.ts). */
    status: text('status').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    createdAt: tz('created_at').notNull().defaultNow(),
    deliveredAt: tz('delivered_at'),
  },
  (t) => [index('notification_messages_channel_idx').on(t.channelId, t.createdAt)],
);

/**
 * Prefect watch mode: one cursor per watched flow. `cursor` is the expected_start_time high-water
 * mark of the Prefect runs already imported; the importer locks the row (FOR UPDATE SKIP LOCKED) for
 * each page, so pods running the importer at once take turns instead of importing twice.
 */
export const prefectWatchCursors = fw.table('prefect_watch_cursors', {
  flowId: uuid('flow_id')
    .primaryKey()
    .references(() => flows.id, { onDelete: 'cascade' }),
  deploymentId: text('deployment_id'),
  cursor: tz('cursor').notNull(),
  importedCount: integer('imported_count').notNull().default(0),
  lastPassAt: tz('last_pass_at'),
  updatedAt: tz('updated_at').notNull().defaultNow(),
});

/**
 * Prefect deployment schedules the guard switched off, so reactivation switches on exactly those
 * (not a schedule an operator had turned off on purpose). Rows are deleted on reactivation.
 */
export const prefectScheduleHolds = fw.table(
  'prefect_schedule_holds',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    flowId: uuid('flow_id')
      .notNull()
      .references(() => flows.id, { onDelete: 'cascade' }),
    deploymentId: text('deployment_id').notNull(),
    scheduleId: text('schedule_id').notNull(),
    heldAt: tz('held_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('prefect_schedule_holds_key').on(t.flowId, t.scheduleId)],
);

/**
 * Flows imported from django-celery-beat (src/celery-beat): one row per PeriodicTask of a source.
 * `imported` is the flow definition as last written, so a sync can tell "Django changed it" from
 * "someone changed it here" (docs/celery-beat.md, "What wins"). Deleting the flow deletes the row.
 */
export const celeryBeatTasks = fw.table(
  'celery_beat_tasks',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** Which Django database: a name the operator picks (--source), default 'default'. */
    source: text('source').notNull(),
    /** PeriodicTask.name (unique in Django). */
    taskName: text('task_name').notNull(),
    flowId: uuid('flow_id')
      .notNull()
      .references(() => flows.id, { onDelete: 'cascade' }),
    imported: jsonb('imported').notNull(),
    /** Idempotency key of the one run a clocked or one_off task was imported as, if any. */
    oneOffKey: text('one_off_key'),
    djangoChangedAt: tz('django_changed_at'),
    syncedAt: tz('synced_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('celery_beat_tasks_source_task_key').on(t.source, t.taskName)],
);

/**
 * Keys only flowwarden holds (never a target's signing secret): `report` signs run report tokens.
 * Generated on first use by the pod that needs it (insert … on conflict do nothing, then read back,
 * so every pod ends up with the same key).
 */
export const instanceKeys = fw.table('instance_keys', {
  name: text('name').primaryKey(),
  secret: text('secret').notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
});

/** Admin UI sign-ins: the cookie carries a random id; logout (or expiry) ends the session here. */
export const adminSessions = fw.table('admin_sessions', {
  /** sha256 of the cookie value (the value itself is never stored). */
  id: text('id').primaryKey(),
  scope: text('scope', { enum: ['read', 'operate'] }).notNull(),
  /** HMAC(token of that scope, id): rotating the token ends every session made with it. */
  tokenMac: text('token_mac').notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
  expiresAt: tz('expires_at').notNull(),
  revokedAt: tz('revoked_at'),
});

/**
 * The overview chart's settled minutes: runs per minute of scheduled_for by state (Late apart), for
 * minutes whose runs are all finished (terminal states never change, so the counts stay exact).
 * A run inserted into a settled minute deletes its row (trigger in migration 0012). See
 * src/queries/chart.ts.
 */
export const runMinutes = fw.table('run_minutes', {
  minute: tz('minute').primaryKey(),
  counts: jsonb('counts').$type<Record<string, number>>().notNull(),
  rolledAt: tz('rolled_at').notNull().defaultNow(),
});
