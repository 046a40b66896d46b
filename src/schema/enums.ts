/**
 * The closed vocabularies stored in text columns, declared once. Row types, zod schemas (API,
 * flow specs) and validators derive from these lists; the column comments in ./index.ts point here.
 * A leaf module: it imports nothing from the project. Run states: src/runs/states.ts STATE_TYPES.
 */

/** runs.origin: what created the run. */
export const RUN_ORIGINS = ['schedule', 'manual', 'api', 'watch'] as const;
export type RunOrigin = (typeof RUN_ORIGINS)[number];

/** schedules.kind */
export const SCHEDULE_KINDS = ['cron', 'interval'] as const;
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

/** schedules.catchup: what a schedule does with fire times missed while nothing ran. */
export const CATCHUP_MODES = ['skip', 'latest', 'all'] as const;
export type CatchupMode = (typeof CATCHUP_MODES)[number];

/** schedules.overlap: whether a fire time may start a run while the previous one is still going. */
export const OVERLAP_MODES = ['allow', 'skip'] as const;
export type OverlapMode = (typeof OVERLAP_MODES)[number];

/** guard_history.rule: what disabled the flow (a health rule, or an operator). */
export const GUARD_RULES = ['consecutive_failures', 'critical_task', 'manual'] as const;
export type GuardRule = (typeof GUARD_RULES)[number];

/** notification_channels.kind: the chat kinds a channel can be created with, plus the stored console sink. */
export const CHANNEL_KINDS = ['discord', 'slack', 'webhook'] as const;
export type ChannelKind = (typeof CHANNEL_KINDS)[number];
export const STORED_CHANNEL_KINDS = [...CHANNEL_KINDS, 'console'] as const;
export type StoredChannelKind = (typeof STORED_CHANNEL_KINDS)[number];

/** notification_messages.status */
export const MESSAGE_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];
