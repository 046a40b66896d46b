/**
 * Celery's crontab, read the way Celery reads it (celery/schedules.py 5.2: crontab_parser,
 * crontab.remaining_delta), and written as a flowwarden cron expression. Where Celery and cron
 * differ (day-of-week 0-6 only, month AND day-of-month AND day-of-week): docs/internals.md
 * ("Celery Beat: crontab").
 */
import { UserInputError } from '../errors.ts';

export interface BeatCrontab {
  minute: string;
  hour: string;
  day_of_week: string;
  day_of_month: string;
  month_of_year: string;
}

export interface ExpandedCrontab {
  minute: number[];
  hour: number[];
  dayOfWeek: number[];
  dayOfMonth: number[];
  monthOfYear: number[];
}

const DAYNAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

function expandNumber(s: string, min: number, max: number, field: string): number {
  if (s.startsWith('-')) throw new UserInputError(`${field} '${s}': negative numbers are not supported`);
  const i = /^\d+$/.test(s) ? Number(s) : DAYNAMES.indexOf(s.slice(0, 3).toLowerCase());
  if (i < 0) throw new UserInputError(`${field}: '${s}' is not a number or a weekday name`);
  if (i > min + max - 1) throw new UserInputError(`${field}: ${i} is above ${min + max - 1}`);
  if (i < min) throw new UserInputError(`${field}: ${i} is below ${min}`);
  return i;
}

function expandRange(from: string, to: string | undefined, min: number, max: number, field: string): number[] {
  const fr = expandNumber(from, min, max, field);
  if (to === undefined) return [fr];
  const t = expandNumber(to, min, max, field);
  const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, k) => a + k);
  return t < fr ? [...range(fr, min + max), ...range(min, t + 1)] : range(fr, t + 1);
}

const step = (values: number[], s: string | undefined, field: string): number[] => {
  if (!s) throw new UserInputError(`${field}: empty step after '/'`);
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new UserInputError(`${field}: step '${s}' is not a positive whole number`);
  return values.filter((_, k) => k % n === 0);
};

/** crontab_parser(max, min).parse(spec), as a sorted list. */
export function expandCeleryField(spec: string, max: number, min: number, field: string): number[] {
  const acc = new Set<number>();
  for (const part of String(spec).split(',')) {
    if (!part) throw new UserInputError(`${field} '${spec}': empty part`);
    let m: RegExpExecArray | null;
    let values: number[];
    if ((m = /^(\w+?)-(\w+)\/(\w+)?/.exec(part))) values = step(expandRange(m[1]!, m[2], min, max, field), m[3], field);
    else if ((m = /^(\w+?)-(\w+)/.exec(part))) values = expandRange(m[1]!, m[2], min, max, field);
    else if ((m = /^\*\/(\w+)?/.exec(part))) values = step(expandRange(String(min), String(min + max - 1), min, max, field), m[1], field);
    else if (part === '*') values = expandRange(String(min), String(min + max - 1), min, max, field);
    else values = [expandNumber(part, min, max, field)];
    for (const v of values) acc.add(v);
  }
  return [...acc].sort((a, b) => a - b);
}

export function expandCrontab(c: BeatCrontab): ExpandedCrontab {
  return {
    minute: expandCeleryField(c.minute, 60, 0, 'minute'),
    hour: expandCeleryField(c.hour, 24, 0, 'hour'),
    dayOfWeek: expandCeleryField(c.day_of_week, 7, 0, 'day_of_week'),
    dayOfMonth: expandCeleryField(c.day_of_month, 31, 1, 'day_of_month'),
    monthOfYear: expandCeleryField(c.month_of_year, 12, 1, 'month_of_year'),
  };
}

/** A value set as a cron field: `*` when full, else runs of 3+ as ranges. */
function cronField(values: number[], size: number): string {
  if (values.length === size) return '*';
  const parts: string[] = [];
  for (let i = 0; i < values.length; ) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[j]! + 1) j++;
    if (j - i >= 2) parts.push(`${values[i]}-${values[j]}`);
    else for (let k = i; k <= j; k++) parts.push(String(values[k]));
    i = j + 1;
  }
  return parts.join(',');
}

/** The 5-field cron expression flowwarden fires the same days and times with, or the reason there is none. */
export function crontabToCron(c: BeatCrontab): { cron: string } | { unsupported: string } {
  let e: ExpandedCrontab;
  try {
    e = expandCrontab(c);
  } catch (err) {
    return { unsupported: `crontab is invalid in Celery too: ${(err as Error).message}` };
  }
  const minute = cronField(e.minute, 60);
  const hour = cronField(e.hour, 24);
  const month = cronField(e.monthOfYear, 12);
  let dom = cronField(e.dayOfMonth, 31);
  let dow = cronField(e.dayOfWeek, 7);
  if (dom !== '*' && dow !== '*') {
    // Celery: day-of-month AND day-of-week. Cron: OR. Only "n-th weekday" translates.
    const first = e.dayOfMonth[0]!;
    const week = (first - 1) / 7 + 1;
    const isWeek = e.dayOfMonth.length === 7 && Number.isInteger(week) && week <= 4 && e.dayOfMonth.every((d, k) => d === first + k);
    if (isWeek && e.dayOfWeek.length === 1) {
      dow = `${e.dayOfWeek[0]}#${week}`;
      dom = '*';
    } else {
      return {
        unsupported:
          `crontab restricts both day_of_month ('${c.day_of_month}') and day_of_week ('${c.day_of_week}'): Celery fires on days matching both, ` +
          `cron on days matching either; only "n-th weekday" (days 1-7, 8-14, 15-21 or 22-28 with one weekday) translates. Split the task or use one day field`,
      };
    }
  }
  return { cron: `${minute} ${hour} ${dom} ${month} ${dow}` };
}

/** Celery's day test (remaining_delta's execute_this_date): all three day fields match. */
export function celeryDayMatches(e: ExpandedCrontab, y: number, m: number, d: number): boolean {
  const dow = new Date(Date.UTC(y, m - 1, d)).getUTCDay();
  return e.monthOfYear.includes(m) && e.dayOfMonth.includes(d) && e.dayOfWeek.includes(dow);
}
