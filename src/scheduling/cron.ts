/**
 * Cron expressions: parsed and validated once (cron-parser gives the value sets; the compiled form
 * is cached and does not depend on the timezone), then matched against wall-clock times on
 * "local epoch" milliseconds (the wall time read as if it were UTC: pure calendar math).
 */
import { CronExpressionParser } from 'cron-parser';
import { UserInputError } from '../errors.ts';

const CRON_SYNTAX_HINT = 'use 5 fields (m h dom mon dow) or 6 with leading seconds (s m h dom mon dow)';
const SECOND = 1000;
/** How far ahead a cron search looks before concluding the expression never fires again. */
export const SEARCH_HORIZON_YEARS = 50;
const COMPILED_CACHE_MAX = 10_000;
const NEVER_FIRES_PROBE_FROM = Date.UTC(2024, 0, 1);

// ---------------------------------------------------------------------------------------------
// Cron compilation (cached; the compiled form does not depend on the timezone)

export type CompiledCron = {
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

export function compileCron(cron: string): CompiledCron {
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
export function nextWallMatch(c: CompiledCron, from: number): number {
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
