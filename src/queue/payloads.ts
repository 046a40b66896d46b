/**
 * Queue payload schemas, declared once (zod); their TypeScript types are inferred from them.
 * Producers are typed by them (src/queue/catalog.ts sendJob/insertJobs) and each worker parses
 * its jobs with them. A leaf module: it imports nothing from the project.
 */
import { z } from 'zod';

/** Events published with pg-boss pub/sub: a new consumer is one `subscribe`. */
export const EVENTS = {
  runCompleted: 'run.completed',
  runFailed: 'run.failed',
  runLate: 'run.late',
  flowDisabled: 'flow.disabled',
  flowReactivated: 'flow.reactivated',
} as const;

export type EventName = (typeof EVENTS)[keyof typeof EVENTS];
/** Every event name, in EVENTS order. */
export const EVENT_NAMES = Object.values(EVENTS) as [EventName, ...EventName[]];

/** Why a run asks for a health check: it failed, or a task of it did (whatever the run's own state). */
export const FAILURE_CAUSES = ['run.failed', 'task.failed'] as const;
export type FailureCause = (typeof FAILURE_CAUSES)[number];

/**
 * Why a health job runs (src/workers/health.ts): a failure or a sweep evaluates the rules (or
 * enforces a held flow); disabled/reactivated run the connectors' GuardActions for an operator's change.
 */
export const HEALTH_REASONS = [...FAILURE_CAUSES, 'sweep', 'disabled', 'reactivated'] as const;
export type HealthReason = (typeof HEALTH_REASONS)[number];

/** Most runs one dispatch job carries (runs of one fire time: src/queue/catalog.ts dispatchJobs). */
export const DISPATCH_BATCH_MAX = 100;

/**
 * One run (`runId`: manual triggers, retries, deferrals), or the runs due at one instant (`runIds`:
 * the tick's, claimed together; each run is a unit of the job in the pool).
 */
export const DispatchPayload = z
  .object({
    runId: z.string().uuid().optional(),
    runIds: z.array(z.string().uuid()).min(1).max(DISPATCH_BATCH_MAX).optional(),
    /** Set on a dispatch re-sent after a long 429 Retry-After or a retry of one run of a batch: attempts continue from here. */
    attemptOffset: z.number().int().min(0).optional(),
  })
  .refine((p) => (p.runId === undefined) !== (p.runIds === undefined), {
    message: 'a dispatch job carries either runId (one run) or runIds (a batch), not both and not neither',
  });

/** The run ids a dispatch job carries, in order (a unit's run is `runIdsOf(data)[unit]`). */
export function runIdsOf(data: z.infer<typeof DispatchPayload>): string[] {
  return data.runIds ?? [data.runId!];
}

export const PollPayload = z.object({
  runId: z.string().uuid(),
  polls: z.number().int().min(0),
  /** How many times this poll was put off for a long 429 Retry-After (0 or absent: never). */
  deferred: z.number().int().min(0).optional(),
});

export const HealthPayload = z.object({
  flowId: z.string().uuid(),
  reason: z.enum(HEALTH_REASONS),
});

/** Deliver a channel's undelivered messages and pending events (src/workers/notify.ts). */
export const NotifyPayload = z.object({ channelId: z.string().uuid() });

/** One published event, as pg-boss delivers it to the events queue. */
export const EventPayload = z.object({
  event: z.enum(EVENT_NAMES),
  flowId: z.string(),
  flowName: z.string(),
  runId: z.string().optional(),
  message: z.string().optional(),
  at: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** One event, or a batch of them (publishEvents sends a batch as one job: a late sweep of 2,000 runs is one job). */
export const EventsJobPayload = z.union([EventPayload, z.object({ batch: z.array(EventPayload).min(1) })]);

export type DispatchPayload = z.infer<typeof DispatchPayload>;
export type PollPayload = z.infer<typeof PollPayload>;
export type HealthPayload = z.infer<typeof HealthPayload>;
export type NotifyPayload = z.infer<typeof NotifyPayload>;
export type EventPayload = z.infer<typeof EventPayload>;
export type EventsJobPayload = z.infer<typeof EventsJobPayload>;
