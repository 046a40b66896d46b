/**
 * The overview chart (runs per minute of scheduled_for, by state, Late apart) at any volume: a
 * minute whose runs are all finished is counted once into `run_minutes` (terminal states never
 * change), so a chart read scans only the minutes still moving. Without it the read scanned every
 * run of the window: 180,000 at 1,000 runs a minute (bench/NOTES.md, "Queries at volume").
 */
import type { Queryable } from '../db/client.ts';
import { withTransaction } from '../db/client.ts';
import type pg from 'pg';
import type { StateType } from '../types.ts';

/** The chart's series: a run's state type, with SCHEDULED/Late apart as LATE. */
export type ChartState = StateType | 'LATE';

export interface ChartBucket {
  minute: Date;
  state: ChartState;
  count: number;
}

/** A minute is settled this long after it ends (a transaction still inserting into it has ended). */
export const SETTLE_SECONDS = 300;
/** Minutes counted per rollup pass: bounds how long the pass holds the run_minutes lock. */
export const ROLLUP_MINUTES_PER_PASS = 30;
/** How far back the rollup reaches, and how long its rows are kept. */
export const ROLLUP_LOOKBACK_HOURS = 24;

const STATE = `case when r.state_type = 'SCHEDULED' and r.state_name = 'Late' then 'LATE' else r.state_type end`;

/**
 * Count settled minutes that have no row yet: older than SETTLE_SECONDS, no open run in them.
 * SHARE ROW EXCLUSIVE waits for transactions that inserted runs into old minutes (their trigger
 * holds ROW EXCLUSIVE on run_minutes) and keeps new ones out until this commits: a run is either
 * seen here or deletes the row this writes. Returns the minutes written.
 */
export async function rollupRunMinutes(pool: pg.Pool, options: { now?: Date; maxMinutes?: number } = {}): Promise<number> {
  const run = async (tx: Queryable) => {
    await tx.query(`lock table flowwarden.run_minutes in share row exclusive mode`);
    const { rowCount } = await tx.query(
      `with bounds as (
         select date_trunc('minute', t - make_interval(hours => $2)) as lo,
                date_trunc('minute', t - make_interval(secs => $3)) as hi
           from (select coalesce($1::timestamptz, now()) as t) n),
       open_minutes as (
         select distinct date_trunc('minute', r.scheduled_for) as m
           from flowwarden.runs r, bounds b
          where r.state_type in ('SCHEDULED', 'PENDING', 'RUNNING') and r.scheduled_for >= b.lo and r.scheduled_for < b.hi),
       todo as (
         select g.m from bounds b, generate_series(b.lo, b.hi - interval '1 minute', interval '1 minute') g(m)
          where not exists (select 1 from flowwarden.run_minutes x where x.minute = g.m)
            and not exists (select 1 from open_minutes o where o.m = g.m)
          order by g.m desc limit $4)
       insert into flowwarden.run_minutes (minute, counts)
       select t.m, coalesce((select jsonb_object_agg(c.state, c.n)
                               from (select ${STATE} as state, count(*) as n from flowwarden.runs r
                                      where r.scheduled_for >= t.m and r.scheduled_for < t.m + interval '1 minute'
                                      group by 1) c), '{}'::jsonb)
         from todo t
       on conflict (minute) do nothing`,
      [options.now ?? null, ROLLUP_LOOKBACK_HOURS, SETTLE_SECONDS, options.maxMinutes ?? ROLLUP_MINUTES_PER_PASS],
    );
    await tx.query(`delete from flowwarden.run_minutes where minute < coalesce($1::timestamptz, now()) - make_interval(hours => $2)`, [options.now ?? null, ROLLUP_LOOKBACK_HOURS + 1]);
    return rowCount ?? 0;
  };
  return withTransaction(pool, run);
}

/**
 * Runs per minute of scheduled_for in [since, until), by current state (Late apart), as Prefect's
 * run chart buckets runs by their expected start: settled minutes from run_minutes, the others
 * counted live (runs_scheduled_idx range scans of just those minutes).
 */
export async function runsPerMinute(db: Queryable, window: { since: Date; until: Date }): Promise<ChartBucket[]> {
  const { rows: settled } = await db.query<{ minute: Date; counts: Record<string, number> }>(
    `select minute, counts from flowwarden.run_minutes where minute >= $1 and minute < $2`,
    [window.since, window.until],
  );
  const buckets: ChartBucket[] = [];
  const done = new Set<number>();
  for (const s of settled) {
    done.add(s.minute.getTime());
    for (const [state, count] of Object.entries(s.counts)) buckets.push({ minute: s.minute, state: state as ChartState, count });
  }
  // The unsettled minutes as [lo, hi) ranges: usually the last few minutes, plus any with open runs.
  const los: Date[] = [];
  const his: Date[] = [];
  const first = Math.floor(window.since.getTime() / 60_000) * 60_000;
  for (let m = first; m < window.until.getTime(); m += 60_000) {
    if (done.has(m)) continue;
    const lo = Math.max(m, window.since.getTime());
    const hi = Math.min(m + 60_000, window.until.getTime());
    if (his.length > 0 && his[his.length - 1]!.getTime() === lo) his[his.length - 1] = new Date(hi);
    else {
      los.push(new Date(lo));
      his.push(new Date(hi));
    }
  }
  if (los.length > 0) {
    // One range condition per run of unsettled minutes, with its bounds as parameters: the planner
    // sees the values and reads runs_scheduled_idx for just those ranges. (A join to unnest() of
    // the bounds was planned as a parallel sequential scan of every run at 10 M runs.)
    const ranges = los.map((_, i) => `(r.scheduled_for >= $${2 * i + 1} and r.scheduled_for < $${2 * i + 2})`).join(' or ');
    const { rows } = await db.query<{ minute: Date; state: ChartState; count: string }>(
      `select date_trunc('minute', r.scheduled_for) as minute, ${STATE} as state, count(*) as count
         from flowwarden.runs r
        where ${ranges}
        group by 1, 2`,
      los.flatMap((lo, i) => [lo, his[i]!]),
    );
    for (const r of rows) buckets.push({ minute: r.minute, state: r.state, count: Number(r.count) });
  }
  return buckets.sort((a, b) => a.minute.getTime() - b.minute.getTime() || a.state.localeCompare(b.state));
}
