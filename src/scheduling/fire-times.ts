/**
 * Fire-time math for schedules: pure functions, no database, no clock (callers pass `after`).
 *
 * Design
 * - cron-parser is used only to parse and validate an expression into value sets. The iteration is
 *   our own: cron-parser's `next()` handles the spring-forward gap by firing at the gap time plus
 *   the shift (02:30 -> 03:30 in New York), not at the end of the gap, and it re-parses per tz.
 * - Wall-clock matching is done on "local epoch" milliseconds (the wall time read as if it were
 *   UTC), so calendar steps are plain Date.UTC arithmetic with no timezone calls.
 * - A timezone is a table of UTC-offset transitions per year, built once per (zone, year) by
 *   sampling Intl.DateTimeFormat every 12 hours and bisecting each change to the second. After
 *   that an offset lookup is a scan of at most a few numbers. Assumes a zone never changes offset
 *   twice within 12 hours (true for every zone in the tz database since 1970).
 * - The timeline is walked as constant-offset segments; inside a segment, instant = wall - offset.
 *
 * DST rule (see docs/scheduling.md)
 * - Hour field covering all 24 hours ("elapsed" mode): fires at every instant whose wall time
 *   matches; the repeated fall-back hour fires twice, spring-forward gap times do not exist.
 * - Specific hours ("wall" mode): each matching wall time fires once; in the repeated hour on the
 *   first pass; wall times inside a gap fire once at the first instant after the gap, and several
 *   gap times of the same transition collapse into that one fire.
 */
import { CronExpressionParser } from 'cron-parser';
import { UserInputError } from '../errors.ts';

export type ScheduleSpec =
  | { kind: 'cron'; cron: string; timezone: string } // 5 fields (minute precision) or 6 fields (leading seconds field)
  | { kind: 'interval'; everySeconds: number; anchor: Date }; // fires at anchor + k*everySeconds (k integer, may be negative)

export const MAX_INTERVAL_SECONDS = 366 * 24 * 3600;

const CRON_SYNTAX_HINT = 'use 5 fields (m h dom mon dow) or 6 with leading seconds (s m h dom mon dow)';
const SECOND = 1000;
const DAY = 86_400_000;
/** How far ahead a cron search looks before concluding the expression never fires again. */
const SEARCH_HORIZON_YEARS = 50;
const COMPILED_CACHE_MAX = 10_000;
const NEVER_FIRES_PROBE_FROM = Date.UTC(2024, 0, 1);

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
// Cron compilation (cached; the compiled form does not depend on the timezone)

type CompiledCron = {
  /** true when the hour field covers all 24 hours: the schedule follows elapsed time. */
  elapsed: boolean;
  // next*[v] = smallest allowed value >= v, or -1; arrays have one extra -1 slot at the end.
  nextSecond: Int8Array;
  nextMinute: Int8Array;
  nextHour: Int8Array;
  firstSecond: number;
  firstMinute: number;
  months: boolean[]; // index 1..12
  dom: boolean[]; // index 1..31
  domLast: boolean; // 'L': last day of month
  domRestricted: boolean;
  dow: boolean[]; // index 0..6 (Sunday = 0)
  dowLast: boolean[]; // '5L': last Friday of the month
  dowNth: number; // '1#2': second Monday; 0 = none
  dowRestricted: boolean;
};

const compiledCache = new Map<string, CompiledCron>();

function compileCron(cron: string): CompiledCron {
  const hit = compiledCache.get(cron);
  if (hit !== undefined) return hit;
  const compiled = parseCron(cron);
  if (compiledCache.size >= COMPILED_CACHE_MAX) {
    // FIFO eviction: cheap, and a scheduler's working set normally fits the cache anyway.
    const oldest = compiledCache.keys().next().value;
    if (oldest !== undefined) compiledCache.delete(oldest);
  }
  compiledCache.set(cron, compiled);
  return compiled;
}

const FIELD_NAMES = ['second', 'minute', 'hour', 'day-of-month', 'month', 'day-of-week'] as const;

function parseCron(cron: string): CompiledCron {
  if (typeof cron !== 'string' || cron.trim() === '') {
    throw new UserInputError(`cron is empty; ${CRON_SYNTAX_HINT}, e.g. '*/15 * * * *'`);
  }
  const fields = cron.trim().split(/\s+/);
  if (fields[0]?.startsWith('@')) {
    throw new UserInputError(
      `cron '${cron}': shortcuts like ${fields[0]} are not supported; ${CRON_SYNTAX_HINT}, e.g. '0 0 * * *' for daily`,
    );
  }
  if (fields.length !== 5 && fields.length !== 6) {
    throw new UserInputError(`cron '${cron}': has ${fields.length} fields; ${CRON_SYNTAX_HINT}`);
  }
  const six = fields.length === 6 ? fields : ['0', ...fields];
  six.forEach((field, i) => {
    if (/(^|[,/-])h/i.test(field)) {
      throw new UserInputError(
        `cron '${cron}': ${FIELD_NAMES[i]} field '${field}' uses H (hashed) values, which are not supported; write explicit values`,
      );
    }
  });

  let parsed;
  try {
    parsed = CronExpressionParser.parse(six.join(' '), { tz: 'UTC' });
  } catch (err) {
    throw new UserInputError(describeCronError(cron, six, err));
  }
  const f = parsed.fields;
  const hours = f.hour.values as number[];
  const months = boolTable(13, f.month.values);
  const dom = boolTable(32, f.dayOfMonth.values);
  const dow = boolTable(7, (f.dayOfWeek.values as (number | string)[]).map((v) => (v === 7 ? 0 : v)));
  const dowLast = new Array<boolean>(7).fill(false);
  for (const v of f.dayOfWeek.values as (number | string)[]) {
    if (typeof v === 'string' && v.endsWith('L')) dowLast[Number.parseInt(v, 10) % 7] = true;
  }
  const seconds = f.second.values as number[];
  const minutes = f.minute.values as number[];
  const compiled: CompiledCron = {
    elapsed: hours.length === 24,
    nextSecond: nextTable(60, seconds),
    nextMinute: nextTable(60, minutes),
    nextHour: nextTable(24, hours),
    firstSecond: Math.min(...seconds),
    firstMinute: Math.min(...minutes),
    months,
    dom,
    domLast: f.dayOfMonth.hasLastChar,
    domRestricted: !f.dayOfMonth.isWildcard,
    dow,
    dowLast,
    dowNth: f.dayOfWeek.nthDay,
    dowRestricted: !f.dayOfWeek.isWildcard,
  };
  // e.g. '0 0 31 4,6 *' parses but names no real date.
  if (nextWallMatch(compiled, NEVER_FIRES_PROBE_FROM) === Number.POSITIVE_INFINITY) {
    throw new UserInputError(
      `cron '${cron}': never fires (no calendar date matches its day-of-month, month and day-of-week fields); check the day and month fields`,
    );
  }
  return compiled;
}

function boolTable(size: number, values: readonly (number | string)[]): boolean[] {
  const t = new Array<boolean>(size).fill(false);
  for (const v of values) if (typeof v === 'number' && v >= 0 && v < size) t[v] = true;
  return t;
}

function nextTable(size: number, values: readonly number[]): Int8Array {
  const t = new Int8Array(size + 1).fill(-1);
  const allowed = new Set(values);
  for (let v = size - 1, next = -1; v >= 0; v--) {
    if (allowed.has(v)) next = v;
    t[v] = next;
  }
  return t;
}

/** Names the failing field by re-parsing each field alone, and rewords cron-parser's message. */
function describeCronError(cron: string, six: string[], err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  if (raw.includes('Invalid explicit day of month')) {
    return `cron '${cron}': day-of-month '${six[3]}' never occurs in month(s) '${six[4]}'; pick days that exist in those months (use L for the last day)`;
  }
  for (let i = 0; i < 6; i++) {
    const probe = ['0', '*', '*', '*', '*', '*'];
    probe[i] = six[i] ?? '*';
    try {
      CronExpressionParser.parse(probe.join(' '), { tz: 'UTC' });
    } catch (fieldErr) {
      const msg = fieldErr instanceof Error ? fieldErr.message : String(fieldErr);
      return `cron '${cron}': ${FIELD_NAMES[i]} field '${six[i]}' is invalid (${reword(msg)}); ${CRON_SYNTAX_HINT}`;
    }
  }
  return `cron '${cron}': ${reword(raw)}; ${CRON_SYNTAX_HINT}`;
}

function reword(msg: string): string {
  let m = /got value (-?\d+) expected range (\d+)-(\d+)/.exec(msg);
  if (m) return `value ${m[1]} out of range ${m[2]}-${m[3]}`;
  m = /got range (\S+) expected range (\d+)-(\d+)/.exec(msg);
  if (m) return `range ${m[1]} outside ${m[2]}-${m[3]}`;
  m = /Invalid characters, got value: (.*)$/.exec(msg);
  if (m) return `unexpected characters in '${m[1]}'`;
  return msg.replace(/^(Constraint error|\w+ Validation error), /, '');
}

// ---------------------------------------------------------------------------------------------
// Wall-clock matching on local-epoch milliseconds (pure calendar math, no timezone)

function dayMatches(c: CompiledCron, d: number, dim: number, wd: number): boolean {
  const domHit = c.dom[d] === true || (c.domLast && d === dim);
  const dowHit =
    (c.dow[wd] === true && (c.dowNth === 0 || Math.ceil(d / 7) === c.dowNth)) || (c.dowLast[wd] === true && d + 7 > dim);
  // Vixie-cron semantics (same as cron-parser): if both day fields are restricted, either may match.
  if (c.domRestricted && c.dowRestricted) return domHit || dowHit;
  if (c.domRestricted) return domHit;
  if (c.dowRestricted) return dowHit;
  return true;
}

function daysInMonth(y: number, m: number): number {
  return new Date(Date.UTC(y, m, 0)).getUTCDate(); // m is 1-based: day 0 of next month
}

/** First second-aligned local-epoch time >= `from` that matches the cron, or Infinity within the horizon. */
function nextWallMatch(c: CompiledCron, from: number): number {
  const start = new Date(Math.ceil(from / SECOND) * SECOND);
  let y = start.getUTCFullYear();
  let m = start.getUTCMonth() + 1;
  let d = start.getUTCDate();
  let h = start.getUTCHours();
  let mi = start.getUTCMinutes();
  let s = start.getUTCSeconds();
  const lastYear = y + SEARCH_HORIZON_YEARS;
  while (y <= lastYear) {
    if (!c.months[m]) {
      d = 1;
      h = mi = s = 0;
      if (++m > 12) {
        m = 1;
        y++;
      }
      continue;
    }
    const dim = daysInMonth(y, m);
    let wd = new Date(Date.UTC(y, m - 1, d)).getUTCDay();
    for (; d <= dim; d++, wd = (wd + 1) % 7, h = mi = s = 0) {
      if (!dayMatches(c, d, dim, wd)) continue;
      const tod = nextTimeOfDay(c, h, mi, s);
      if (tod >= 0) return Date.UTC(y, m - 1, d) + tod * SECOND;
    }
    d = 1;
    h = mi = s = 0;
    if (++m > 12) {
      m = 1;
      y++;
    }
  }
  return Number.POSITIVE_INFINITY;
}

/** Smallest allowed second-of-day >= h:mi:s, or -1 when none is left in the day. */
function nextTimeOfDay(c: CompiledCron, h0: number, m0: number, s0: number): number {
  let h = c.nextHour[h0] ?? -1;
  if (h < 0) return -1;
  if (h === h0) {
    let m = c.nextMinute[m0] ?? -1;
    if (m === m0) {
      const s = c.nextSecond[s0] ?? -1;
      if (s >= 0) return h * 3600 + m * 60 + s;
      m = c.nextMinute[m0 + 1] ?? -1;
    }
    if (m >= 0) return h * 3600 + m * 60 + c.firstSecond;
    h = c.nextHour[h0 + 1] ?? -1;
    if (h < 0) return -1;
  }
  return h * 3600 + c.firstMinute * 60 + c.firstSecond;
}

// ---------------------------------------------------------------------------------------------
// Timezones: per-year offset transition tables

type ZoneYear = {
  startOffset: number; // offset (ms, local - UTC) at the first instant of the UTC year
  at: number[]; // transition instants inside the year, ascending
  offsets: number[]; // offset in effect from at[i]
};

type Zone = {
  fmt: Intl.DateTimeFormat;
  years: Map<number, ZoneYear>;
};

const zones = new Map<string, Zone>();

function zoneFor(timezone: string): Zone {
  const hit = zones.get(timezone);
  if (hit !== undefined) return hit;
  if (typeof timezone === 'string' && /^[+-]\d/.test(timezone.trim())) {
    // Intl accepts '+02:00', but a fixed offset is almost always a mistake for a local schedule.
    throw new UserInputError(
      `timezone '${timezone}' is a fixed UTC offset, not an IANA timezone; use a name like 'Europe/Berlin' (follows DST), or 'UTC'`,
    );
  }
  let fmt: Intl.DateTimeFormat;
  try {
    if (typeof timezone !== 'string' || timezone.trim() === '') throw new RangeError('empty');
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch {
    throw new UserInputError(
      `timezone '${String(timezone)}' is not a known IANA timezone; use a name like 'Europe/Berlin', 'America/New_York' or 'UTC'`,
    );
  }
  const zone: Zone = { fmt, years: new Map() };
  zones.set(timezone, zone);
  return zone;
}

/** Offset (local - UTC, ms) at a whole-second instant, straight from Intl. Slow: tables only. */
function intlOffset(zone: Zone, t: number): number {
  let y = 0;
  let mo = 0;
  let d = 0;
  let h = 0;
  let mi = 0;
  let s = 0;
  for (const p of zone.fmt.formatToParts(t)) {
    switch (p.type) {
      case 'year': y = Number(p.value); break;
      case 'month': mo = Number(p.value); break;
      case 'day': d = Number(p.value); break;
      case 'hour': h = Number(p.value); break;
      case 'minute': mi = Number(p.value); break;
      case 'second': s = Number(p.value); break;
    }
  }
  return Date.UTC(y, mo - 1, d, h, mi, s) - t;
}

const SAMPLE_MS = 12 * 3600 * 1000;

function zoneYear(zone: Zone, year: number): ZoneYear {
  const hit = zone.years.get(year);
  if (hit !== undefined) return hit;
  const start = Date.UTC(year, 0, 1);
  const end = Date.UTC(year + 1, 0, 1);
  const startOffset = intlOffset(zone, start);
  const at: number[] = [];
  const offsets: number[] = [];
  let prevT = start;
  let prevOffset = startOffset;
  for (let t = start + SAMPLE_MS; prevT < end; t = Math.min(t + SAMPLE_MS, end)) {
    const o = t === end ? intlOffset(zone, end - SECOND) : intlOffset(zone, t);
    if (o !== prevOffset) {
      // Bisect to the first whole second with the new offset.
      let lo = prevT; // old offset
      let hi = t === end ? end - SECOND : t; // new offset
      while (hi - lo > SECOND) {
        const mid = lo + Math.floor((hi - lo) / 2 / SECOND) * SECOND;
        if (intlOffset(zone, mid) === prevOffset) lo = mid;
        else hi = mid;
      }
      at.push(hi);
      offsets.push(o);
      prevOffset = o;
    }
    prevT = t;
  }
  const zy: ZoneYear = { startOffset, at, offsets };
  zone.years.set(year, zy);
  return zy;
}

type Segment = { start: number; end: number; offset: number; prevOffset: number };

/** The constant-offset stretch of time containing `t`; year boundaries also cut segments. */
function segmentAt(zone: Zone, t: number): Segment {
  const year = new Date(t).getUTCFullYear();
  const zy = zoneYear(zone, year);
  let i = zy.at.length - 1;
  while (i >= 0 && (zy.at[i] as number) > t) i--;
  const yearStart = Date.UTC(year, 0, 1);
  const start = i >= 0 ? (zy.at[i] as number) : yearStart;
  const offset = i >= 0 ? (zy.offsets[i] as number) : zy.startOffset;
  const end = i + 1 < zy.at.length ? (zy.at[i + 1] as number) : Date.UTC(year + 1, 0, 1);
  let prevOffset: number;
  if (i >= 1) prevOffset = zy.offsets[i - 1] as number;
  else if (i === 0) prevOffset = zy.startOffset;
  else prevOffset = offsetAt(zone, yearStart - SECOND);
  return { start, end, offset, prevOffset };
}

function offsetAt(zone: Zone, t: number): number {
  const zy = zoneYear(zone, new Date(t).getUTCFullYear());
  let i = zy.at.length - 1;
  while (i >= 0 && (zy.at[i] as number) > t) i--;
  return i >= 0 ? (zy.offsets[i] as number) : zy.startOffset;
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
