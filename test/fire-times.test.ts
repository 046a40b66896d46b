import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  fireTimesBetween,
  nextFireAfter,
  nextFireTimes,
  validateScheduleSpec,
} from '../src/scheduling/fire-times.ts';
import type { ScheduleSpec } from '../src/scheduling/fire-times.ts';
import { UserInputError } from '../src/errors.ts';
import { CronExpressionParser } from 'cron-parser';

const NY = 'America/New_York';
const BERLIN = 'Europe/Berlin';

function cron(expr: string, timezone: string): ScheduleSpec {
  return { kind: 'cron', cron: expr, timezone };
}

function iso(dates: Date[]): string[] {
  return dates.map((d) => d.toISOString());
}

/** Fires between two instants given as ISO strings, (after, until]. */
function between(spec: ScheduleSpec, after: string, until: string, max = 10_000): string[] {
  return iso(fireTimesBetween(spec, new Date(after), new Date(until), max));
}

const localFormats = new Map<string, Intl.DateTimeFormat>();
/** 'YYYY-MM-DD HH:MM:SS Www' in the given zone. */
function local(d: Date, timeZone: string): string {
  let f = localFormats.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      weekday: 'short',
    });
    localFormats.set(timeZone, f);
  }
  const p = Object.fromEntries(f.formatToParts(d).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${p.weekday}`;
}

function userError(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof UserInputError, `expected UserInputError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('cron with a seconds field', () => {
  test('*/15 * * * * * fires every 15 seconds', () => {
    const spec = cron('*/15 * * * * *', NY);
    assert.deepEqual(iso(nextFireTimes(spec, new Date('2026-01-15T12:00:07.500Z'), 4)), [
      '2026-01-15T12:00:15.000Z',
      '2026-01-15T12:00:30.000Z',
      '2026-01-15T12:00:45.000Z',
      '2026-01-15T12:01:00.000Z',
    ]);
  });

  test('a fire time exactly at `after` is excluded, one exactly at `until` included', () => {
    const spec = cron('*/15 * * * * *', NY);
    assert.deepEqual(between(spec, '2026-01-15T12:00:15Z', '2026-01-15T12:01:00Z'), [
      '2026-01-15T12:00:30.000Z',
      '2026-01-15T12:00:45.000Z',
      '2026-01-15T12:01:00.000Z',
    ]);
  });

  test('keeps its 15 s rhythm through the New York fall-back', () => {
    const spec = cron('*/15 * * * * *', NY);
    // 01:59:45 EDT -> 01:00:00 EST is 15 real seconds later.
    assert.deepEqual(between(spec, '2026-11-01T05:59:30Z', '2026-11-01T06:00:15Z'), [
      '2026-11-01T05:59:45.000Z',
      '2026-11-01T06:00:00.000Z',
      '2026-11-01T06:00:15.000Z',
    ]);
  });

  test('keeps its 15 s rhythm through the New York spring-forward', () => {
    const spec = cron('*/15 * * * * *', NY);
    // 01:59:45 EST -> 03:00:00 EDT is 15 real seconds later.
    assert.deepEqual(between(spec, '2026-03-08T06:59:30Z', '2026-03-08T07:00:15Z'), [
      '2026-03-08T06:59:45.000Z',
      '2026-03-08T07:00:00.000Z',
      '2026-03-08T07:00:15.000Z',
    ]);
  });
});

describe('daily jobs at specific hours across New York DST (2026)', () => {
  test('02:30 falls in the spring-forward gap and fires once at 03:00 EDT', () => {
    const fires = between(cron('30 2 * * *', NY), '2026-03-06T00:00:00Z', '2026-03-11T00:00:00Z');
    assert.deepEqual(fires, [
      '2026-03-06T07:30:00.000Z', // 02:30 EST
      '2026-03-07T07:30:00.000Z', // 02:30 EST
      '2026-03-08T07:00:00.000Z', // 02:30 does not exist: 03:00 EDT
      '2026-03-09T06:30:00.000Z', // 02:30 EDT
      '2026-03-10T06:30:00.000Z',
    ]);
  });

  test('02:30 fires once on the fall-back day (02:30 is not repeated)', () => {
    const fires = between(cron('30 2 * * *', NY), '2026-10-30T00:00:00Z', '2026-11-03T00:00:00Z');
    assert.deepEqual(fires, [
      '2026-10-30T06:30:00.000Z', // 02:30 EDT
      '2026-10-31T06:30:00.000Z',
      '2026-11-01T07:30:00.000Z', // 02:30 EST
      '2026-11-02T07:30:00.000Z',
    ]);
  });

  test('01:30 is unaffected by spring-forward', () => {
    const fires = between(cron('30 1 * * *', NY), '2026-03-07T00:00:00Z', '2026-03-10T00:00:00Z');
    assert.deepEqual(fires, [
      '2026-03-07T06:30:00.000Z', // 01:30 EST
      '2026-03-08T06:30:00.000Z', // 01:30 EST, just before the gap
      '2026-03-09T05:30:00.000Z', // 01:30 EDT
    ]);
  });

  test('01:30 fires once, on the first pass, in the repeated fall-back hour', () => {
    const fires = between(cron('30 1 * * *', NY), '2026-10-31T00:00:00Z', '2026-11-03T00:00:00Z');
    assert.deepEqual(fires, [
      '2026-10-31T05:30:00.000Z', // 01:30 EDT
      '2026-11-01T05:30:00.000Z', // 01:30 EDT (first pass); 01:30 EST (06:30Z) does not fire
      '2026-11-02T06:30:00.000Z', // 01:30 EST
    ]);
  });

  test('asking from inside the second pass of the repeated hour does not fire 01:30 again', () => {
    const next = nextFireAfter(cron('30 1 * * *', NY), new Date('2026-11-01T06:10:00Z')); // 01:10 EST
    assert.equal(next.toISOString(), '2026-11-02T06:30:00.000Z');
  });

  for (const expr of ['30 2 * * *', '30 1 * * *', '0 0 * * *', '59 23 * * *']) {
    test(`'${expr}' fires exactly once on every local day of 2026`, () => {
      const fires = fireTimesBetween(cron(expr, NY), new Date('2026-01-01T05:00:00Z'), new Date('2027-01-01T05:00:00Z'), 1000);
      const days = fires.map((d) => local(d, NY).slice(0, 10));
      assert.equal(fires.length, 365);
      assert.equal(new Set(days).size, 365);
      for (let i = 1; i < fires.length; i++) assert.ok(fires[i]! > fires[i - 1]!);
    });
  }

  test('several gap times on the same day collapse into one fire at the end of the gap', () => {
    assert.deepEqual(between(cron('*/15 2 * * *', NY), '2026-03-08T00:00:00Z', '2026-03-09T00:00:00Z'), [
      '2026-03-08T07:00:00.000Z',
    ]);
    // 02:00 and 02:30 (gap) and 03:00 EDT are all the same instant: one fire; then 03:30 EDT.
    assert.deepEqual(between(cron('0,30 2,3 * * *', NY), '2026-03-08T00:00:00Z', '2026-03-09T00:00:00Z'), [
      '2026-03-08T07:00:00.000Z',
      '2026-03-08T07:30:00.000Z',
    ]);
  });

  test('*/15 1 * * * fires four times, not eight, on the fall-back day', () => {
    assert.deepEqual(between(cron('*/15 1 * * *', NY), '2026-11-01T04:00:00Z', '2026-11-02T04:00:00Z'), [
      '2026-11-01T05:00:00.000Z',
      '2026-11-01T05:15:00.000Z',
      '2026-11-01T05:30:00.000Z',
      '2026-11-01T05:45:00.000Z',
    ]);
  });
});

describe('hourly jobs follow elapsed time', () => {
  test('0 * * * * fires 25 times on the New York fall-back day, 01:00 twice', () => {
    // Local day 2026-11-01 runs from 00:00 EDT (04:00Z) to 24:00 EST (05:00Z next day).
    const fires = between(cron('0 * * * *', NY), '2026-11-01T03:59:59Z', '2026-11-02T04:59:59Z');
    assert.equal(fires.length, 25);
    assert.deepEqual(fires.slice(0, 4), [
      '2026-11-01T04:00:00.000Z', // 00:00 EDT
      '2026-11-01T05:00:00.000Z', // 01:00 EDT
      '2026-11-01T06:00:00.000Z', // 01:00 EST
      '2026-11-01T07:00:00.000Z', // 02:00 EST
    ]);
    assert.equal(fires.at(-1), '2026-11-02T04:00:00.000Z'); // 23:00 EST
    for (let i = 1; i < fires.length; i++) {
      assert.equal(Date.parse(fires[i]!) - Date.parse(fires[i - 1]!), 3_600_000);
    }
  });

  test('0 * * * * fires 23 times on the New York spring-forward day, never at 02:xx', () => {
    // Local day 2026-03-08 runs from 00:00 EST (05:00Z) to 24:00 EDT (04:00Z next day).
    const fires = between(cron('0 * * * *', NY), '2026-03-08T04:59:59Z', '2026-03-09T03:59:59Z');
    assert.equal(fires.length, 23);
    assert.deepEqual(fires.slice(0, 3), [
      '2026-03-08T05:00:00.000Z', // 00:00 EST
      '2026-03-08T06:00:00.000Z', // 01:00 EST
      '2026-03-08T07:00:00.000Z', // 03:00 EDT
    ]);
    for (let i = 1; i < fires.length; i++) {
      assert.equal(Date.parse(fires[i]!) - Date.parse(fires[i - 1]!), 3_600_000);
    }
    assert.ok(fires.every((f) => local(new Date(f), NY).slice(11, 13) !== '02'));
  });

  test('an hour range covering the whole day (0-23) behaves like *', () => {
    const a = between(cron('0 0-23 * * *', NY), '2026-11-01T03:59:59Z', '2026-11-02T04:59:59Z');
    const b = between(cron('0 * * * *', NY), '2026-11-01T03:59:59Z', '2026-11-02T04:59:59Z');
    assert.deepEqual(a, b);
  });
});

describe('*/30 * * * * across the Berlin transitions (2026)', () => {
  test('spring-forward on 2026-03-29: 01:30 CET is followed by 03:00 CEST', () => {
    const spec = cron('*/30 * * * *', BERLIN);
    assert.deepEqual(between(spec, '2026-03-28T23:59:00Z', '2026-03-29T01:30:00Z'), [
      '2026-03-29T00:00:00.000Z', // 01:00 CET
      '2026-03-29T00:30:00.000Z', // 01:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST
      '2026-03-29T01:30:00.000Z', // 03:30 CEST
    ]);
    // 23-hour local day: 46 fires.
    assert.equal(between(spec, '2026-03-28T22:59:59Z', '2026-03-29T21:59:59Z').length, 46);
  });

  test('fall-back on 2026-10-25: 02:00 and 02:30 fire in both passes', () => {
    const spec = cron('*/30 * * * *', BERLIN);
    assert.deepEqual(between(spec, '2026-10-24T23:59:00Z', '2026-10-25T02:00:00Z'), [
      '2026-10-25T00:00:00.000Z', // 02:00 CEST
      '2026-10-25T00:30:00.000Z', // 02:30 CEST
      '2026-10-25T01:00:00.000Z', // 02:00 CET
      '2026-10-25T01:30:00.000Z', // 02:30 CET
      '2026-10-25T02:00:00.000Z', // 03:00 CET
    ]);
    // 25-hour local day: 50 fires.
    assert.equal(between(spec, '2026-10-24T21:59:59Z', '2026-10-25T22:59:59Z').length, 50);
  });

  test('a daily 02:30 job in Berlin fires once on both transition days', () => {
    const spring = between(cron('30 2 * * *', BERLIN), '2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z');
    assert.deepEqual(spring, ['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']); // 03:00 CEST, 02:30 CEST
    const fall = between(cron('30 2 * * *', BERLIN), '2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z');
    assert.deepEqual(fall, ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']); // 02:30 CEST, 02:30 CET
  });
});

describe('day-of-month and day-of-week fields', () => {
  test('L, nth weekday and last weekday of the month', () => {
    const from = new Date('2026-01-01T00:00:00Z');
    assert.deepEqual(iso(nextFireTimes(cron('0 12 L * *', 'UTC'), from, 3)), [
      '2026-01-31T12:00:00.000Z',
      '2026-02-28T12:00:00.000Z',
      '2026-03-31T12:00:00.000Z',
    ]);
    assert.deepEqual(iso(nextFireTimes(cron('0 12 * * 1#2', 'UTC'), from, 2)), [
      '2026-01-12T12:00:00.000Z',
      '2026-02-09T12:00:00.000Z',
    ]);
    assert.deepEqual(iso(nextFireTimes(cron('0 12 * * 5L', 'UTC'), from, 2)), [
      '2026-01-30T12:00:00.000Z',
      '2026-02-27T12:00:00.000Z',
    ]);
  });

  test('restricted day-of-month and day-of-week match either (Vixie cron)', () => {
    // The 13th, or any Friday.
    assert.deepEqual(iso(nextFireTimes(cron('0 0 13 * 5', 'UTC'), new Date('2026-02-01T00:00:00Z'), 4)), [
      '2026-02-06T00:00:00.000Z',
      '2026-02-13T00:00:00.000Z',
      '2026-02-20T00:00:00.000Z',
      '2026-02-27T00:00:00.000Z',
    ]);
  });

  test('a leap-day schedule skips to the next leap year', () => {
    assert.equal(
      nextFireAfter(cron('0 0 29 2 *', 'UTC'), new Date('2026-01-01T00:00:00Z')).toISOString(),
      '2028-02-29T00:00:00.000Z',
    );
  });
});

describe('intervals', () => {
  const spec: ScheduleSpec = { kind: 'interval', everySeconds: 60, anchor: new Date('2026-01-01T00:00:10Z') };

  test('fire times are aligned to the anchor, before and after it', () => {
    assert.equal(nextFireAfter(spec, new Date('2026-01-01T00:00:10Z')).toISOString(), '2026-01-01T00:01:10.000Z');
    assert.equal(nextFireAfter(spec, new Date('2026-01-01T00:00:09.999Z')).toISOString(), '2026-01-01T00:00:10.000Z');
    assert.equal(nextFireAfter(spec, new Date('2026-01-01T05:07:00Z')).toISOString(), '2026-01-01T05:07:10.000Z');
    assert.equal(nextFireAfter(spec, new Date('2025-12-31T23:58:30Z')).toISOString(), '2025-12-31T23:59:10.000Z');
  });

  test('fireTimesBetween excludes `after`, includes `until`, and stops at `max`', () => {
    assert.deepEqual(between(spec, '2026-01-01T00:01:10Z', '2026-01-01T00:04:10Z'), [
      '2026-01-01T00:02:10.000Z',
      '2026-01-01T00:03:10.000Z',
      '2026-01-01T00:04:10.000Z',
    ]);
    assert.deepEqual(between(spec, '2026-01-01T00:01:10Z', '2026-01-01T00:04:10Z', 2), [
      '2026-01-01T00:02:10.000Z',
      '2026-01-01T00:03:10.000Z',
    ]);
    assert.deepEqual(between(spec, '2026-01-01T00:01:10Z', '2026-01-01T00:02:09.999Z'), []);
  });

  test('keep millisecond anchors and ignore DST entirely', () => {
    const daily: ScheduleSpec = { kind: 'interval', everySeconds: 86_400, anchor: new Date('2026-03-07T07:30:00.250Z') };
    assert.deepEqual(iso(nextFireTimes(daily, new Date('2026-03-07T07:30:00.250Z'), 2)), [
      '2026-03-08T07:30:00.250Z',
      '2026-03-09T07:30:00.250Z',
    ]);
  });

  test('nextFireTimes matches repeated nextFireAfter', () => {
    const after = new Date('2026-06-01T12:34:56Z');
    const three = nextFireTimes(spec, after, 3);
    assert.deepEqual(iso(three), ['2026-06-01T12:35:10.000Z', '2026-06-01T12:36:10.000Z', '2026-06-01T12:37:10.000Z']);
  });
});

describe('cron max cap and exclusivity', () => {
  test('fireTimesBetween honours max and the (after, until] bounds for cron', () => {
    const spec = cron('*/10 * * * *', 'UTC');
    assert.deepEqual(between(spec, '2026-05-01T10:00:00Z', '2026-05-01T10:30:00Z'), [
      '2026-05-01T10:10:00.000Z',
      '2026-05-01T10:20:00.000Z',
      '2026-05-01T10:30:00.000Z',
    ]);
    assert.deepEqual(between(spec, '2026-05-01T10:00:00Z', '2026-05-01T12:00:00Z', 2), [
      '2026-05-01T10:10:00.000Z',
      '2026-05-01T10:20:00.000Z',
    ]);
    assert.deepEqual(between(spec, '2026-05-01T10:00:00Z', '2026-05-01T10:00:00Z'), []);
  });
});

describe('invalid input', () => {
  test('an out-of-range field names the field, the value and the syntax', () => {
    assert.throws(
      () => validateScheduleSpec(cron('61 * * * *', 'UTC')),
      userError(/cron '61 \* \* \* \*': minute field '61' is invalid \(value 61 out of range 0-59\); use 5 fields \(m h dom mon dow\) or 6 with leading seconds/),
    );
    assert.throws(() => validateScheduleSpec(cron('0 25 * * *', 'UTC')), userError(/hour field '25'.*out of range 0-23/));
  });

  test('garbage and wrong field counts are rejected', () => {
    assert.throws(() => validateScheduleSpec(cron('every day', 'UTC')), userError(/has 2 fields; use 5 fields/));
    assert.throws(() => validateScheduleSpec(cron('* * * * * * *', 'UTC')), userError(/has 7 fields; use 5 fields .* or 6 with leading seconds/));
    assert.throws(() => validateScheduleSpec(cron('* * *', 'UTC')), userError(/has 3 fields/));
    assert.throws(() => validateScheduleSpec(cron('', 'UTC')), userError(/cron is empty/));
    assert.throws(() => validateScheduleSpec(cron('0 x * * *', 'UTC')), userError(/hour field 'x' is invalid/));
    assert.throws(() => validateScheduleSpec(cron('@daily', 'UTC')), userError(/not supported.*'0 0 \* \* \*'/));
    assert.throws(() => validateScheduleSpec(cron('H * * * *', 'UTC')), userError(/hashed/));
    assert.throws(() => validateScheduleSpec(cron('0 0 31 4 *', 'UTC')), userError(/never occurs/));
  });

  test('an unknown timezone suggests an IANA name', () => {
    assert.throws(
      () => validateScheduleSpec(cron('0 * * * *', 'Mars/Base')),
      userError(/timezone 'Mars\/Base' is not a known IANA timezone; use a name like 'Europe\/Berlin'/),
    );
    assert.throws(() => nextFireAfter(cron('0 * * * *', 'Mars/Base'), new Date()), userError(/Mars\/Base/));
    assert.throws(() => validateScheduleSpec(cron('0 * * * *', '+02:00')), userError(/fixed UTC offset.*'Europe\/Berlin'/));
  });

  test('intervals must be a positive whole number of seconds up to 366 days', () => {
    const anchor = new Date('2026-01-01T00:00:00Z');
    for (const everySeconds of [0, -5, 1.5, Number.NaN]) {
      assert.throws(
        () => validateScheduleSpec({ kind: 'interval', everySeconds, anchor }),
        userError(/everySeconds .* is not a positive whole number of seconds; use an integer >= 1/),
      );
    }
    assert.throws(
      () => validateScheduleSpec({ kind: 'interval', everySeconds: 366 * 86_400 + 1, anchor }),
      userError(/longer than 366 days/),
    );
    assert.throws(() => nextFireAfter({ kind: 'interval', everySeconds: 0, anchor }, anchor), userError(/everySeconds 0/));
    validateScheduleSpec({ kind: 'interval', everySeconds: 366 * 86_400, anchor });
  });

  test('valid specs pass', () => {
    validateScheduleSpec(cron('*/15 * * * * *', NY));
    validateScheduleSpec(cron('0 9 * * mon-fri', BERLIN));
    validateScheduleSpec(cron('0 0 L * *', 'UTC'));
  });
});

test('walking 400 days of 0 9 * * 1-5 in Berlin hits 09:00 local on every weekday', () => {
  const spec = cron('0 9 * * 1-5', BERLIN);
  const start = new Date('2026-01-01T00:00:00Z');
  const end = start.getTime() + 400 * 86_400_000;
  const seen: string[] = [];
  let prev = start;
  for (;;) {
    const next = nextFireAfter(spec, prev);
    if (next.getTime() > end) break;
    assert.ok(next > prev, `${next.toISOString()} not after ${prev.toISOString()}`);
    const l = local(next, BERLIN);
    assert.match(l, /^\d{4}-\d{2}-\d{2} 09:00:00 (Mon|Tue|Wed|Thu|Fri)$/, `${next.toISOString()} is ${l}`);
    seen.push(l.slice(0, 10));
    prev = next;
  }
  // Every weekday in the window, none twice: count them at local noon (no DST edge at noon).
  let weekdays = 0;
  for (let t = Date.UTC(2026, 0, 1, 11); t <= end; t += 86_400_000) {
    if (!/Sat|Sun/.test(local(new Date(t), BERLIN))) weekdays++;
  }
  assert.equal(seen.length, weekdays);
  assert.equal(new Set(seen).size, seen.length);
});

// Speed (cached parse and zone tables) is measured by `npm run bench -- scheduler-scale`, not here.
test('100,000 next-fire computations with the cached parse and zone tables are each strictly after their input', () => {
  const specs = [cron('0 9 * * 1-5', BERLIN), cron('*/15 * * * *', NY), cron('30 2 * * *', NY), cron('*/10 * * * * *', 'UTC')];
  const base = Date.UTC(2026, 0, 1);
  for (let i = 0; i < 100_000; i++) {
    const after = new Date(base + i * 60_000);
    const next = nextFireAfter(specs[i % specs.length]!, after);
    if (!(next.getTime() > after.getTime())) assert.fail(`${JSON.stringify(specs[i % specs.length])} after ${after.toISOString()} gave ${next.toISOString()}`);
  }
});

describe('agrees with a brute-force minute-by-minute oracle', () => {
  // Independent model of the DST rule: walk real time minute by minute, read the wall clock with
  // Intl, match it with cron-parser; elapsed mode fires on every matching instant, wall mode fires
  // each wall time once (first pass) and gap wall times at the first instant after the gap.
  const wallFormats = new Map<string, Intl.DateTimeFormat>();
  function wallMs(t: number, timeZone: string): number {
    let f = wallFormats.get(timeZone);
    if (f === undefined) {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric',
      });
      wallFormats.set(timeZone, f);
    }
    const p = Object.fromEntries(f.formatToParts(t).map((x) => [x.type, Number(x.value)]));
    return Date.UTC(p.year!, p.month! - 1, p.day, p.hour, p.minute);
  }
  function oracle(expr: string, timeZone: string, from: number, to: number): string[] {
    const parsed = CronExpressionParser.parse(expr, { tz: 'UTC' });
    const matches = (w: number) => parsed.includesDate(new Date(w));
    const elapsed = parsed.fields.hour.values.length === 24;
    const out: string[] = [];
    let prevWall = wallMs(from, timeZone);
    let maxWall = prevWall;
    for (let t = from + 60_000; t <= to; t += 60_000) {
      const w = wallMs(t, timeZone);
      let fire = elapsed && matches(w);
      if (!elapsed) {
        for (let g = prevWall + 60_000; g < w && !fire; g += 60_000) fire = matches(g); // gap
        if (w > maxWall && matches(w)) fire = true; // not a repeat
      }
      if (fire) out.push(new Date(t).toISOString());
      prevWall = w;
      maxWall = Math.max(maxWall, w);
    }
    return out;
  }
  const windows: [string, string][] = [
    ['America/New_York', '2026-03-07'],
    ['America/New_York', '2026-10-31'],
    ['Europe/Berlin', '2026-03-28'],
    ['Europe/Berlin', '2026-10-24'],
    ['Australia/Lord_Howe', '2026-10-03'], // 30-minute DST shift
    ['Australia/Lord_Howe', '2026-04-04'],
    ['America/Santiago', '2026-09-05'], // transitions at midnight
    ['America/Santiago', '2026-04-04'],
  ];
  const exprs = ['*/20 * * * *', '30 2 * * *', '0,30 0,1,2,3 * * *', '45 23 * * *', '*/15 2 * * *'];
  for (const [timeZone, day] of windows) {
    test(`${timeZone} around ${day}`, () => {
      const from = Date.parse(`${day}T00:00:00Z`);
      const to = from + 3 * 86_400_000;
      for (const expr of exprs) {
        const got = iso(fireTimesBetween(cron(expr, timeZone), new Date(from), new Date(to), 10_000));
        assert.deepEqual(got, oracle(expr, timeZone, from, to), `${expr} in ${timeZone}`);
      }
    });
  }
});
