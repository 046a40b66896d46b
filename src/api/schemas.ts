/**
 * Zod schemas of the API's request inputs and response shapes. Requests are parsed with them;
 * responses are built by src/runs/json.ts, src/guard/json.ts and src/notify/operations.ts
 * (channelView) and described here for the OpenAPI document (keep the two in step when a
 * field is added).
 */
import { z } from 'zod';
import { STATE_TYPES } from '../types.ts';
import { NAME_RE } from '../flows/spec.ts';
import { PageQuery } from './validate.ts';
import { CATCHUP_MODES, OVERLAP_MODES, SCHEDULE_KINDS, STORED_CHANNEL_KINDS } from '../schema/enums.ts';

const iso = z.string().describe('ISO 8601 time');
const isoOrNull = iso.nullable();

export const FlowName = z.string().regex(NAME_RE, 'not a flow name (letters, digits, _ . : -, max 128)');
export const ScheduleName = z.string().regex(NAME_RE, 'not a schedule name (letters, digits, _ . : -, max 128)');
export const RunId = z.uuid({ error: 'not a run id (a UUID)' });
const By = z.string().trim().min(1, 'say who (e.g. your name or handle)').max(200);

export const FlowParams = z.object({ name: FlowName });
export const ScheduleParams = z.object({ name: FlowName, schedule: ScheduleName });
export const RunParams = z.object({ id: RunId });
export const ChannelParams = z.object({ name: z.string().min(1).max(64) });

const boolString = z.enum(['true', 'false']).transform((v) => v === 'true');

export const FlowListQuery = PageQuery.extend({
  disabled: boolString.optional().describe('true: only flows the guard holds disabled; false: only active flows'),
});

const stateList = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim().toUpperCase()).filter(Boolean))
  .pipe(z.array(z.enum(STATE_TYPES, { error: `each state must be one of ${STATE_TYPES.join(', ')}` })).min(1).max(STATE_TYPES.length));

/** An ISO 8601 time with a zone, parsed to a Date: the API's filters and scheduledFor, and the CLI's --at. */
export const IsoTime = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time with a zone, e.g. 2026-01-01T00:00:00Z' }).transform((s) => new Date(s));

export const RunListQuery = PageQuery.extend({
  flow: FlowName.optional().describe('only runs of this flow'),
  state: stateList.optional().describe(`state type, or several comma-separated: ${STATE_TYPES.join(', ')}`),
  since: IsoTime.optional().describe('scheduledFor at or after this time'),
  until: IsoTime.optional().describe('scheduledFor before this time'),
  upcoming: boolString.optional().describe('true: also list upcoming runs (SCHEDULED, time not yet come; pre-created by the horizon). Default: recent, running and due runs only'),
});

export const GuardHistoryQuery = PageQuery.extend({
  flow: FlowName.optional().describe('only this flow'),
  open: boolString.optional().describe('true: only holds not yet reactivated; false: only closed ones'),
});

export const NextQuery = z.object({
  count: z.coerce.number({ error: 'must be a whole number' }).int('must be a whole number').min(1, 'must be at least 1').max(100, 'must be at most 100').default(5).describe('how many fire times (1 to 100, default 5)'),
  after: IsoTime.optional().describe('start after this time (default: the database clock now)'),
});

export const DisableBody = z.object({ reason: z.string().trim().min(1, 'say why').max(1000), by: By.optional() }).strict();
export const ReactivateBody = z.object({ by: By }).strict();
export const PauseBody = z.object({ note: z.string().trim().min(1, 'say why the schedule is paused').max(1000) }).strict();
export const ResumeBody = z.object({ note: z.string().trim().max(1000).optional() }).strict();
export const CancelBody = z.object({ reason: z.string().trim().max(1000).optional() }).strict();
export const ChannelBody = z
  .object({
    url: z.string().min(1).max(2000).describe("a Discord/Slack/webhook URL, or 'console'"),
    events: z.array(z.string().min(1)).max(20).optional().describe("event names or ['all']; default run.failed, run.late, flow.disabled, flow.reactivated"),
    flows: z.array(FlowName).max(1000).nullable().optional().describe('only these flows; default all'),
  })
  .strict();

// ---------------------------------------------------------------------------------------------
// Response shapes (documentation)

export const RunJson = z.object({
  id: z.string(),
  flow: z.string(),
  scheduleId: z.string().nullable(),
  scheduledFor: iso,
  stateType: z.enum(STATE_TYPES),
  stateName: z.string(),
  message: z.string().nullable(),
  parameters: z.record(z.string(), z.unknown()),
  origin: z.string(),
  idempotencyKey: z.string().nullable(),
  externalId: z.string().nullable(),
  createdAt: iso,
  startedAt: isoOrNull,
  endedAt: isoOrNull,
});

export const RunDetailJson = RunJson.extend({
  history: z.array(z.object({ fromType: z.string().nullable(), fromName: z.string().nullable(), toType: z.string(), toName: z.string(), message: z.string().nullable(), at: iso })),
  tasks: z.array(z.object({ name: z.string(), stateType: z.string(), message: z.string().nullable(), at: iso })),
});

export const ScheduleJson = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(SCHEDULE_KINDS),
  cron: z.string().nullable(),
  everySeconds: z.number().nullable(),
  timezone: z.string(),
  parameters: z.record(z.string(), z.unknown()),
  enabled: z.boolean(),
  note: z.string().nullable(),
  catchup: z.enum(CATCHUP_MODES),
  catchupWindowSeconds: z.number(),
  catchupMax: z.number(),
  overlap: z.enum(OVERLAP_MODES),
  nextRunAt: isoOrNull,
  lastRunAt: isoOrNull,
});

export const FlowJson = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  target: z.record(z.string(), z.unknown()).describe('secrets redacted'),
  health: z.record(z.string(), z.unknown()),
  lateAfterSeconds: z.number().nullable(),
  validSince: iso,
  disabled: z.boolean(),
  disabledAt: isoOrNull,
  disabledReason: z.string().nullable(),
  createdAt: iso,
  schedules: z.array(ScheduleJson).optional(),
});

export const HoldJson = z.object({
  id: z.number(),
  flow: z.string(),
  rule: z.string(),
  reason: z.string(),
  evidence: z.record(z.string(), z.unknown()),
  disabledBy: z.string(),
  disabledAt: iso,
  reactivatedAt: isoOrNull,
  reactivatedBy: z.string().nullable(),
  enforceCount: z.number(),
  lastEnforcedAt: isoOrNull,
});

export const HealthJson = z.object({
  maxConsecutiveFailures: z.number(),
  consecutiveFailures: z.number().describe('current streak of FAILED/CRASHED runs since the baseline (capped at the threshold)'),
  baseline: iso,
  autoDisable: z.boolean(),
  criticalTasks: z.array(z.string()),
});

export const FlowDetailJson = FlowJson.extend({ healthStatus: HealthJson, openHold: HoldJson.nullable() });

export const ChannelJson = z.object({
  name: z.string(),
  kind: z.enum(STORED_CHANNEL_KINDS),
  url: z.string().describe('redacted to the origin, e.g. https://discord.com/…'),
  events: z.array(z.string()),
  flows: z.array(z.string()).nullable(),
  enabled: z.boolean(),
});

export const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });
