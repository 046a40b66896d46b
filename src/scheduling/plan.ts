/**
 * Which fire times a claimed schedule materialises on this tick — pure, `now` injected. Fire times
 * older than `now - grace` were missed, and the catch-up policy (skip, latest, all) decides what
 * happens to them; the rest always run. Details: docs/internals.md, "Scheduling".
 */
import { fireTimesBetween, nextFireAfter, type ScheduleSpec } from './fire-times.ts';
import type { CatchupMode } from '../schema/enums.ts';

export interface PlanInput {
  spec: ScheduleSpec;
  nextRunAt: Date;
  catchup: CatchupMode;
  catchupWindowSeconds: number;
  catchupMax: number;
}

export interface PlanOptions {
  now: Date;
  horizonSeconds: number;
  graceSeconds: number;
  /** Hard cap of fires materialised for one schedule in one tick. */
  maxPerTick?: number;
}

export interface Plan {
  fireTimes: Date[];
  missedDropped: number;
  nextRunAt: Date;
}

const HARD_CAP = 1000;

/**
 * The latest fire time in (after, until], exactly, however many fires the range holds. Bisection on
 * `x ↦ nextFireAfter(x) <= until`, which holds exactly for x before the latest fire L: about 40
 * nextFireAfter calls for a range of years, instead of enumerating (and capping) every fire.
 */
export function latestFireIn(spec: ScheduleSpec, after: Date, until: Date): Date | null {
  const untilMs = until.getTime();
  let lo = after.getTime();
  if (lo >= untilMs || nextFireAfter(spec, new Date(lo)).getTime() > untilMs) return null;
  let hi = untilMs; // nextFireAfter(until) > until, always
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (nextFireAfter(spec, new Date(mid)).getTime() <= untilMs) lo = mid;
    else hi = mid;
  }
  return nextFireAfter(spec, new Date(lo));
}

export function planFires(input: PlanInput, options: PlanOptions): Plan {
  const { spec } = input;
  const nowMs = options.now.getTime();
  const horizonEnd = new Date(nowMs + options.horizonSeconds * 1000);
  const missedBefore = new Date(nowMs - options.graceSeconds * 1000); // fires < this were missed
  const cap = Math.min(options.maxPerTick ?? HARD_CAP, HARD_CAP);
  const start = new Date(input.nextRunAt.getTime() - 1); // nextRunAt itself is a candidate

  const fireTimes: Date[] = [];
  let missedDropped = 0;

  if (input.nextRunAt < missedBefore) {
    const missedUntil = new Date(missedBefore.getTime() - 1);
    if (input.catchup === 'latest') {
      const latest = latestFireIn(spec, start, missedUntil);
      if (latest) fireTimes.push(latest);
    } else if (input.catchup === 'all') {
      const windowStart = new Date(Math.max(start.getTime(), nowMs - input.catchupWindowSeconds * 1000 - 1));
      const keep = Math.min(input.catchupMax, cap);
      // Walk the window in pages and keep the most recent `keep` fires.
      let cursor = windowStart;
      for (;;) {
        const page = fireTimesBetween(spec, cursor, missedUntil, 1000);
        fireTimes.push(...page);
        if (fireTimes.length > keep) fireTimes.splice(0, fireTimes.length - keep);
        if (page.length < 1000) break;
        cursor = page[page.length - 1]!;
      }
    }
    // skip: nothing from the missed range.
  }
  const onTimeFrom = new Date(Math.max(start.getTime(), missedBefore.getTime() - 1));
  const onTime = fireTimesBetween(spec, onTimeFrom, horizonEnd, cap);
  fireTimes.push(...onTime);
  if (fireTimes.length > cap) {
    missedDropped += fireTimes.length - cap;
    fireTimes.splice(0, fireTimes.length - cap);
  }
  // Resume after the last materialised fire if the cap cut the on-time range short, else after the horizon.
  const last = onTime[onTime.length - 1];
  const nextRunAt = onTime.length >= cap && last ? nextFireAfter(spec, last) : nextFireAfter(spec, horizonEnd);
  return { fireTimes, missedDropped, nextRunAt };
}
