/**
 * The stable JSON shapes for runs and flows (CLI --json, HTTP API). camelCase, ISO 8601 times.
 * Adding fields is fine; renaming or removing one is a breaking change.
 */
import type { RunRow } from '../types.ts';
import type { FlowRow, ScheduleRow } from '../queries/flows.ts';
import { redactTarget } from '../targets/spec.ts';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export function runJson(r: RunRow) {
  return {
    id: r.id,
    flow: r.flowName,
    scheduleId: r.scheduleId,
    scheduledFor: iso(r.scheduledFor),
    stateType: r.stateType,
    stateName: r.stateName,
    message: r.stateMessage,
    parameters: r.parameters,
    origin: r.origin,
    idempotencyKey: r.idempotencyKey,
    externalId: r.externalId,
    createdAt: iso(r.createdAt),
    startedAt: iso(r.startedAt),
    endedAt: iso(r.endedAt),
  };
}

export function scheduleJson(s: ScheduleRow) {
  return {
    id: s.id,
    name: s.name,
    kind: s.kind,
    cron: s.cron,
    everySeconds: s.intervalSeconds,
    timezone: s.timezone,
    parameters: s.parameters,
    enabled: s.enabled,
    note: s.note,
    catchup: s.catchup,
    catchupWindowSeconds: s.catchupWindowSeconds,
    catchupMax: s.catchupMax,
    overlap: s.overlap,
    nextRunAt: iso(s.nextRunAt),
    lastRunAt: iso(s.lastRunAt),
  };
}

export function flowJson(f: FlowRow, schedules?: ScheduleRow[]) {
  return {
    id: f.id,
    name: f.name,
    description: f.description,
    target: redactTarget(f.target),
    health: f.health,
    lateAfterSeconds: f.lateAfterSeconds,
    validSince: iso(f.validSince),
    disabled: f.disabledAt !== null,
    disabledAt: iso(f.disabledAt),
    disabledReason: f.disabledReason,
    createdAt: iso(f.createdAt),
    ...(schedules ? { schedules: schedules.map(scheduleJson) } : {}),
  };
}
