/**
 * Fire-time math for schedules: pure functions, no database, no clock (callers pass `after`).
 * Cron expressions are compiled in ./cron.ts, timezones tabled in ./timezone.ts; this file walks
 * the timeline as constant-offset segments (inside one, instant = wall - offset) and applies the
 * DST rule (docs/scheduling.md; the design is in docs/internals.md, "Scheduling").
 */
import { UserInputError } from '../errors.ts';
import { compileCron, nextWallMatch, SEARCH_HORIZON_YEARS, type CompiledCron } from './cron.ts';
import { segmentAt, zoneFor, type Zone } from './timezone.ts';

export type ScheduleSpec =
  | { kind: 'cron'; cron: string; timezone: string } // 5 fields (minute precision) or 6 fields (leading seconds field)
  | { kind: 'interval'; everySeconds: number; anchor: Date }; // fires at anchor + k*everySeconds (k integer, may be negative)

export const MAX_INTERVAL_SECONDS = 366 * 24 * 3600;

const SECOND = 1000;

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Throws UserInputError with a clear message (what was wrong, and how to fix it) for an invalid
 * cron, wrong field count, unknown IANA timezone, or an interval that is not a positive integer
 * number of seconds up to 366 days.
 */
export function validateScheduleSpec(spec: ScheduleSpec): void {
  if (spec.kind === 'cron') {
    compileCron(spec.cron);
    zoneFor(spec.timezone);
  } else if (spec.kind === 'interval') {
    checkInterval(spec);
  } else {
    throw new UserInputError(
      `schedule kind '${String((spec as { kind?: unknown }).kind)}' is not supported; use 'cron' or 'interval'`,
    );
  }
}

/** The first fire time strictly after `after`. */
export function nextFireAfter(spec: ScheduleSpec, after: Date): Date {
  const afterMs = instantMs(after, 'after');
  return new Date(nextMs(spec, afterMs));
}

/** All fire times t with afterExclusive < t <= untilInclusive, ascending, at most `max` (stop early). */
export function fireTimesBetween(
  spec: ScheduleSpec,
  afterExclusive: Date,
  untilInclusive: Date,
  max: number,
): Date[] {
  let t = instantMs(afterExclusive, 'afterExclusive');
  const until = instantMs(untilInclusive, 'untilInclusive');
  const out: Date[] = [];
  if (spec.kind === 'interval') {
    // Closed form, no stepping through the per-call validation.
    const { periodMs, anchorMs } = checkInterval(spec);
    for (let k = Math.floor((t - anchorMs) / periodMs) + 1; out.length < max; k++) {
      const next = anchorMs + k * periodMs;
      if (next > until) break;
      out.push(new Date(next));
    }
    return out;
  }
  const cron = compileCron(spec.cron);
  const zone = zoneFor(spec.timezone);
  while (out.length < max && t < until) {
    t = nextCronMs(cron, zone, t);
    if (t > until) break;
    out.push(new Date(t));
  }
  return out;
}

/** Convenience for "next N fire times" displays. */
export function nextFireTimes(spec: ScheduleSpec, after: Date, count: number): Date[] {
  let t = instantMs(after, 'after');
  const out: Date[] = [];
  while (out.length < count) {
    t = nextMs(spec, t);
    out.push(new Date(t));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Dispatch and intervals

function nextMs(spec: ScheduleSpec, afterMs: number): number {
  if (spec.kind === 'interval') {
    const { periodMs, anchorMs } = checkInterval(spec);
    return anchorMs + (Math.floor((afterMs - anchorMs) / periodMs) + 1) * periodMs;
  }
  if (spec.kind === 'cron') return nextCronMs(compileCron(spec.cron), zoneFor(spec.timezone), afterMs);
  validateScheduleSpec(spec); // throws the "unsupported kind" error
  throw new Error('unreachable');
}

function checkInterval(spec: { everySeconds: number; anchor: Date }): { periodMs: number; anchorMs: number } {
  const s = spec.everySeconds;
  if (typeof s !== 'number' || !Number.isInteger(s) || s <= 0) {
    throw new UserInputError(
      `interval everySeconds ${String(s)} is not a positive whole number of seconds; use an integer >= 1 (e.g. 300 for every 5 minutes)`,
    );
  }
  if (s > MAX_INTERVAL_SECONDS) {
    throw new UserInputError(
      `interval everySeconds ${s} is longer than 366 days (${MAX_INTERVAL_SECONDS} s); use a cron expression for yearly or rarer schedules`,
    );
  }
  if (!(spec.anchor instanceof Date) || Number.isNaN(spec.anchor.getTime())) {
    throw new UserInputError('interval anchor is not a valid date; pass a Date such as the schedule creation time');
  }
  return { periodMs: s * SECOND, anchorMs: spec.anchor.getTime() };
}

function instantMs(d: Date, name: string): number {
  const ms = d instanceof Date ? d.getTime() : Number.NaN;
  if (Number.isNaN(ms)) throw new RangeError(`${name} is not a valid Date`);
  return ms;
}

// ---------------------------------------------------------------------------------------------
// The walk

function nextCronMs(c: CompiledCron, zone: Zone, afterMs: number): number {
  let seg = segmentAt(zone, afterMs);
  // Wall times <= after's wall time are done; walls are whole seconds.
  let floor = Math.floor((afterMs + seg.offset) / SECOND) * SECOND + SECOND;
  if (!c.elapsed && seg.prevOffset > seg.offset) {
    // We are just after a fall-back: repeated wall times already fired on the first pass.
    floor = Math.max(floor, seg.start + seg.prevOffset);
  }
  let wall = nextWallMatch(c, floor);
  for (;;) {
    if (wall === Number.POSITIVE_INFINITY) {
      throw new Error(`cron schedule has no fire time within ${SEARCH_HORIZON_YEARS} years`);
    }
    if (wall - seg.offset < seg.end) return wall - seg.offset;
    const next = segmentAt(zone, seg.end);
    let nextFloor: number;
    if (c.elapsed) {
      // Every instant of the next segment counts, including repeated wall times.
      nextFloor = seg.end + next.offset;
    } else {
      // Spring-forward: `wall` is the first match at or after the gap start. If it lies inside
      // the gap it (and any other gap time) fires once, at the first instant after the gap.
      if (next.offset > seg.offset && wall < seg.end + next.offset) return seg.end;
      // Fall-back: skip the repeated wall times, they fired on the first pass.
      nextFloor = seg.end + Math.max(seg.offset, next.offset);
    }
    if (nextFloor > wall || nextFloor < floor) wall = nextWallMatch(c, nextFloor);
    floor = nextFloor;
    seg = next;
  }
}
