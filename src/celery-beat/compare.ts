/**
 * `flowwarden import celery-beat --compare`: the fires Beat would make against flowwarden's, per
 * task, over a window, and every difference with its reason. Beat's side is computed the way
 * Celery 5.2 / django-celery-beat 2.4 do it (checked against Celery in
 * test/system/celery-beat.test.ts); the rules are in docs/internals.md, "Celery Beat import".
 */
import type { Queryable } from '../db/client.ts';
import { fireTimesBetween, type ScheduleSpec } from '../scheduling/fire-times.ts';
import { expandCrontab, celeryDayMatches, type ExpandedCrontab } from './crontab.ts';
import { SCHEDULE_NAME, flowNameFor } from './import.ts';
import type { CeleryBeatMapping } from './mapping.ts';
import type { BeatTask } from './source.ts';
import type { ScheduleKind } from '../schema/enums.ts';

export interface BeatSettings {
  /** CELERY_TIMEZONE (Celery's app.timezone). */
  celeryTimezone: string;
  /** DJANGO_CELERY_BEAT_TZ_AWARE (default true). */
  tzAware: boolean;
}

const MINUTE = 60_000;
const MAX_FIRES = 100_000;

// ---- wall clock in a zone -------------------------------------------------------------------

const fmts = new Map<string, Intl.DateTimeFormat>();
function offsetMs(tz: string, t: number): number {
  let f = fmts.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    fmts.set(tz, f);
  }
  const p = Object.fromEntries(f.formatToParts(t).map((x) => [x.type, Number(x.value)]));
  return Date.UTC(p.year!, p.month! - 1, p.day, p.hour, p.minute, p.second) - Math.floor(t / 1000) * 1000;
}
/** Wall time as "local epoch" ms (the wall clock read as if it were UTC). */
export const wallOf = (tz: string, t: number): number => t + offsetMs(tz, t);

/** The first instant after `after` whose wall clock in `tz` reads `wall` or later. */
export function firstInstantAtWall(tz: string, wall: number, after: number): number {
  const candidates = [...new Set([offsetMs(tz, wall - 86_400_000), offsetMs(tz, wall + 86_400_000), offsetMs(tz, wall)])]
    .map((o) => wall - o)
    .filter((t) => t > after && wallOf(tz, t) === wall)
    .sort((a, b) => a - b);
  if (candidates.length > 0) return candidates[0]!;
  // In a gap: the wall clock jumps past `wall` at the transition; bisect it to the second.
  let lo = Math.max(after, wall - Math.max(offsetMs(tz, wall - 86_400_000), offsetMs(tz, wall + 86_400_000)));
  let hi = wall - Math.min(offsetMs(tz, wall - 86_400_000), offsetMs(tz, wall + 86_400_000));
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (wallOf(tz, mid) >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** Celery's next crontab wall time strictly after `wall` (minute resolution, all day fields must match). */
export function nextCeleryWall(e: ExpandedCrontab, wall: number): number {
  let t = Math.floor(wall / MINUTE) * MINUTE + MINUTE;
  for (let guard = 0; guard < 5 * 366 * 24 * 60; ) {
    const d = new Date(t);
    const y = d.getUTCFullYear(), m = d.getUTCMonth() + 1, day = d.getUTCDate();
    if (!celeryDayMatches(e, y, m, day)) {
      t = Date.UTC(y, m - 1, day + 1);
      guard += 1440;
      continue;
    }
    const h = d.getUTCHours();
    if (!e.hour.includes(h)) {
      t = Date.UTC(y, m - 1, day, h + 1);
      guard += 60;
      continue;
    }
    const mi = d.getUTCMinutes();
    const nm = e.minute.find((x) => x >= mi);
    if (nm === undefined) {
      t = Date.UTC(y, m - 1, day, h + 1);
      guard += 60;
      continue;
    }
    return Date.UTC(y, m - 1, day, h, nm);
  }
  return Number.POSITIVE_INFINITY;
}

/** Beat's fire times for a task in (from, until], the way Celery computes them. */
export function beatFireTimes(t: BeatTask, from: Date, until: Date, settings: BeatSettings, intervalAnchor?: Date): Date[] {
  if (!t.enabled || (t.oneOff && t.totalRunCount > 0)) return [];
  const out: number[] = [];
  const end = until.getTime();
  const last = Math.max(from.getTime(), t.lastRunAt?.getTime() ?? Number.NEGATIVE_INFINITY);
  if (t.clocked) {
    const c = t.clocked.clockedTime.getTime();
    out.push(Math.max(c, from.getTime() + 1));
  } else if (t.crontab) {
    const tz = settings.tzAware ? t.crontab.timezone || 'UTC' : settings.celeryTimezone;
    let e: ExpandedCrontab;
    try {
      e = expandCrontab(t.crontab);
    } catch {
      return [];
    }
    let at = last;
    while (out.length < MAX_FIRES) {
      const target = nextCeleryWall(e, wallOf(tz, at));
      if (!Number.isFinite(target)) break;
      at = firstInstantAtWall(tz, target, at);
      if (at > end) break;
      out.push(at);
      if (t.oneOff) break;
    }
  } else if (t.interval) {
    const period = t.interval.every * ({ days: 86400, hours: 3600, minutes: 60, seconds: 1, microseconds: 1e-6 }[t.interval.period] ?? Number.NaN) * 1000;
    if (!(period > 0)) return [];
    let at = t.lastRunAt?.getTime() ?? t.startTime?.getTime() ?? intervalAnchor?.getTime() ?? from.getTime();
    if (at < from.getTime()) at += Math.floor((from.getTime() - at) / period) * period;
    while (out.length < MAX_FIRES && (at += period) <= end) {
      if (at > from.getTime()) out.push(at);
      if (t.oneOff) break;
    }
  }
  return out
    .filter((x) => x <= end && (t.startTime === null || x >= t.startTime.getTime()) && (t.expires === null || x < t.expires.getTime()))
    .map((x) => new Date(x));
}

// ---- flowwarden's side ----------------------------------------------------------------------

async function flowwardenFireTimes(db: Queryable, flowName: string, from: Date, until: Date): Promise<{ fires: Date[]; anchor: Date | null } | null> {
  const { rows: flows } = await db.query<{ id: string }>(`select id from flowwarden.flows where name = $1`, [flowName]);
  if (!flows[0]) return null;
  const { rows } = await db.query<{ kind: ScheduleKind; cron: string | null; interval_seconds: number | null; timezone: string; anchor: Date; enabled: boolean }>(
    `select kind, cron, interval_seconds, timezone, anchor, enabled from flowwarden.schedules where flow_id = $1 and name = $2`,
    [flows[0].id, SCHEDULE_NAME],
  );
  const out: Date[] = [];
  const s = rows[0];
  if (s?.enabled) {
    const spec: ScheduleSpec = s.kind === 'cron' ? { kind: 'cron', cron: s.cron!, timezone: s.timezone } : { kind: 'interval', everySeconds: s.interval_seconds!, anchor: s.anchor };
    out.push(...fireTimesBetween(spec, from, until, MAX_FIRES));
  }
  // One-off runs (clocked / one_off tasks) are runs without a schedule.
  const { rows: runs } = await db.query<{ scheduled_for: Date }>(
    `select scheduled_for from flowwarden.runs where flow_id = $1 and schedule_id is null and origin <> 'schedule' and state_name <> 'Skipped'
        and scheduled_for > $2 and scheduled_for <= $3`,
    [flows[0].id, from, until],
  );
  out.push(...runs.map((r) => r.scheduled_for));
  return { fires: out.sort((a, b) => a.getTime() - b.getTime()), anchor: s?.kind === 'interval' ? s.anchor : null };
}

// ---- the comparison -------------------------------------------------------------------------

export interface FireDifference {
  at: string;
  side: 'beat-only' | 'flowwarden-only';
  reason: string;
}

export interface TaskComparison {
  task: string;
  flow: string;
  beatFires: number;
  flowwardenFires: number;
  matching: number;
  differences: FireDifference[];
  note?: string;
}

function isNearDstChange(tz: string, t: number): boolean {
  return offsetMs(tz, t - 3 * 3600_000) !== offsetMs(tz, t + 3 * 3600_000);
}

function reasonFor(t: BeatTask, at: Date, side: FireDifference['side'], settings: BeatSettings): string {
  const ms = at.getTime();
  if (t.crontab) {
    const own = t.crontab.timezone || 'UTC';
    if (!settings.tzAware && own !== settings.celeryTimezone) {
      return `DJANGO_CELERY_BEAT_TZ_AWARE=False: Beat reads the crontab in CELERY_TIMEZONE (${settings.celeryTimezone}); flowwarden in the crontab's timezone (${own})`;
    }
    if (isNearDstChange(own, ms)) {
      return side === 'flowwarden-only'
        ? `DST change in ${own}: after a fall-back Beat compares wall-clock times, so the repeated hour does not fire again; flowwarden fires an every-hour cron at each elapsed hour`
        : `DST change in ${own}: Beat and flowwarden place this wall time differently around the transition`;
    }
  }
  if (t.interval) return 'interval phase: Beat counts from its last actual run (last_run_at), flowwarden from the anchor set at import';
  if (t.startTime && ms < t.startTime.getTime() + 60_000) return `start_time ${t.startTime.toISOString()}: Beat holds the task until then; flowwarden enables it at the first sync after it`;
  if (t.expires && ms >= t.expires.getTime() - 3600_000) return `expires ${t.expires.toISOString()}: Beat's messages expire from then on; flowwarden disables the schedule at the first sync after it`;
  if (t.oneOff || t.clocked) return 'one-off: the one run was created at import; the task changed since (run the import again)';
  return side === 'flowwarden-only' ? 'flowwarden fires here and Beat does not: the import is out of date (run it again) or the flow was changed in flowwarden' : 'Beat fires here and flowwarden does not: the import is out of date (run it again), or the flow is disabled in flowwarden';
}

export async function compareCeleryBeat(
  db: Queryable,
  tasks: BeatTask[],
  mapping: CeleryBeatMapping,
  window: { from: Date; until: Date },
  settings: BeatSettings,
): Promise<TaskComparison[]> {
  const out: TaskComparison[] = [];
  for (const t of tasks) {
    const flow = flowNameFor(mapping.flowPrefix, t.name);
    const found = await flowwardenFireTimes(db, flow, window.from, window.until);
    // Beat counts an interval from its last run; before the first one, from when Beat loaded the
    // task (unknown here): the import's anchor stands in for it.
    const beat = beatFireTimes(t, window.from, window.until, settings, found?.anchor ?? undefined);
    if (found === null) {
      out.push({ task: t.name, flow, beatFires: beat.length, flowwardenFires: 0, matching: 0, differences: [], note: t.solar ? 'solar schedule: not imported' : 'not imported (run the import; see its report for why)' });
      continue;
    }
    const fw = found.fires;
    const fwSet = new Set(fw.map((d) => d.getTime()));
    const beatSet = new Set(beat.map((d) => d.getTime()));
    const differences: FireDifference[] = [
      ...beat.filter((d) => !fwSet.has(d.getTime())).map((d) => ({ at: d.toISOString(), side: 'beat-only' as const, reason: reasonFor(t, d, 'beat-only', settings) })),
      ...fw.filter((d) => !beatSet.has(d.getTime())).map((d) => ({ at: d.toISOString(), side: 'flowwarden-only' as const, reason: reasonFor(t, d, 'flowwarden-only', settings) })),
    ].sort((a, b) => a.at.localeCompare(b.at));
    out.push({ task: t.name, flow, beatFires: beat.length, flowwardenFires: fw.length, matching: beat.filter((d) => fwSet.has(d.getTime())).length, differences });
  }
  return out;
}
