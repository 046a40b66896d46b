/**
 * Timezones as per-year tables of UTC-offset transitions, built once per (zone, year) by sampling
 * Intl.DateTimeFormat every 12 hours and bisecting each change to the second; after that an offset
 * lookup scans a few numbers. Assumes a zone never changes offset twice within 12 hours (true for
 * every zone in the tz database since 1970).
 */
import { UserInputError } from '../errors.ts';

const SECOND = 1000;

// ---------------------------------------------------------------------------------------------
// Timezones: per-year offset transition tables

type ZoneYear = {
  startOffset: number; // offset (ms, local - UTC) at the first instant of the UTC year
  at: number[]; // transition instants inside the year, ascending
  offsets: number[]; // offset in effect from at[i]
};

export type Zone = {
  fmt: Intl.DateTimeFormat;
  years: Map<number, ZoneYear>;
};

const zones = new Map<string, Zone>();

export function zoneFor(timezone: string): Zone {
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

export type Segment = { start: number; end: number; offset: number; prevOffset: number };

/** The constant-offset stretch of time containing `t`; year boundaries also cut segments. */
export function segmentAt(zone: Zone, t: number): Segment {
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
