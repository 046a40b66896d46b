/**
 * The overview chart's rollup (src/queries/chart.ts, migration 0012): settled minutes are counted
 * once into run_minutes, the chart stays equal to the database's counts whatever is settled, and a
 * run inserted into a settled minute (catch-up, import) is never lost from it.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { rollupRunMinutes, runsPerMinute, SETTLE_SECONDS } from '../src/queries/chart.ts';
import { ChartRollup } from '../src/maintenance/chart-rollup.ts';
import { silentLogger } from '../src/log.ts';

let db: TestDatabase;
let pool: pg.Pool;
let flowId: string;
let now: Date;
const minute = (m: number) => new Date(now.getTime() - m * 60_000);

async function insertRuns(q: pg.Pool | pg.PoolClient, at: Date, states: Array<[string, string]>): Promise<void> {
  for (const [type, name] of states) {
    await q.query(`insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, origin) values ($1, $2, $3, $4, 'manual')`, [flowId, at, type, name]);
  }
}

/** What the chart must show: the runs table itself, grouped as the chart groups. */
async function countsFromRuns(since: Date, until: Date): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ minute: Date; state: string; n: number }>(
    `select date_trunc('minute', scheduled_for) as minute,
            case when state_type = 'SCHEDULED' and state_name = 'Late' then 'LATE' else state_type end as state, count(*)::int as n
       from flowwarden.runs where scheduled_for >= $1 and scheduled_for < $2 group by 1, 2`,
    [since, until],
  );
  return new Map(rows.map((r) => [`${r.minute.toISOString()} ${r.state}`, r.n]));
}

async function chart(since: Date, until: Date): Promise<Map<string, number>> {
  return new Map((await runsPerMinute(pool, { since, until })).map((b) => [`${b.minute.toISOString()} ${b.state}`, b.count]));
}

async function settled(): Promise<string[]> {
  const { rows } = await pool.query<{ minute: Date }>(`select minute from flowwarden.run_minutes order by minute`);
  return rows.map((r) => r.minute.toISOString());
}

before(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  flowId = (await pool.query<{ id: string }>(`insert into flowwarden.flows (name, target) values ('chart', '{"type":"function","handler":"noop"}') returning id`)).rows[0]!.id;
  // Minute-aligned "now" from Postgres's clock; the rollup is given it explicitly.
  now = (await pool.query<{ t: Date }>(`select date_trunc('minute', now()) as t`)).rows[0]!.t;
  await insertRuns(pool, minute(30), [['COMPLETED', 'Completed'], ['COMPLETED', 'Completed'], ['FAILED', 'Failed']]);
  await insertRuns(pool, minute(20), [['COMPLETED', 'Completed'], ['RUNNING', 'Running']]);
  await insertRuns(pool, minute(10), [['CANCELLED', 'Cancelled'], ['CRASHED', 'Crashed']]);
  await insertRuns(pool, minute(2), [['COMPLETED', 'Completed'], ['SCHEDULED', 'Late']]);
});

after(async () => {
  await pool.end();
  await db.drop();
});

describe('the runs-per-minute rollup', () => {
  test('settles finished minutes older than the settle delay, never a minute with an open run', async () => {
    await rollupRunMinutes(pool, { now, maxMinutes: 24 * 60 });
    const rows = await settled();
    assert.ok(rows.includes(minute(30).toISOString()), 'a finished minute is settled');
    assert.ok(rows.includes(minute(10).toISOString()));
    assert.ok(!rows.includes(minute(20).toISOString()), 'a minute with a RUNNING run is not');
    assert.ok(!rows.includes(minute(2).toISOString()), `a minute younger than ${SETTLE_SECONDS} s is not`);
    const { rows: [m30] } = await pool.query(`select counts from flowwarden.run_minutes where minute = $1`, [minute(30)]);
    assert.deepEqual(m30.counts, { COMPLETED: 2, FAILED: 1 });
  });

  test("the chart is the runs table's counts, settled minutes or not", async () => {
    const since = minute(180), until = new Date(now.getTime() + 60_000);
    assert.deepEqual(await chart(since, until), await countsFromRuns(since, until));
    // The RUNNING run finishes: its minute settles on the next pass, and the chart still agrees.
    await pool.query(`update flowwarden.runs set state_type = 'COMPLETED', state_name = 'Completed' where scheduled_for = $1 and state_type = 'RUNNING'`, [minute(20)]);
    await rollupRunMinutes(pool, { now, maxMinutes: 24 * 60 });
    assert.ok((await settled()).includes(minute(20).toISOString()));
    assert.deepEqual(await chart(since, until), await countsFromRuns(since, until));
  });

  test('a run inserted into a settled minute (a catch-up, an import) unsettles it and is counted', async () => {
    const since = minute(180), until = new Date(now.getTime() + 60_000);
    await insertRuns(pool, minute(30), [['FAILED', 'Failed']]);
    assert.ok(!(await settled()).includes(minute(30).toISOString()), 'the trigger deleted the stale row');
    assert.deepEqual(await chart(since, until), await countsFromRuns(since, until));
    await rollupRunMinutes(pool, { now, maxMinutes: 24 * 60 });
    const { rows: [m30] } = await pool.query(`select counts from flowwarden.run_minutes where minute = $1`, [minute(30)]);
    assert.deepEqual(m30.counts, { COMPLETED: 2, FAILED: 2 });
  });

  test('a rollup waits for a transaction still inserting into an old minute, then counts its run', async () => {
    const writer = await pool.connect();
    try {
      await writer.query('begin');
      await insertRuns(writer, minute(40), [['COMPLETED', 'Completed']]);
      // The insert's trigger holds run_minutes; the rollup's lock waits for it.
      const rollup = rollupRunMinutes(pool, { now, maxMinutes: 24 * 60 });
      for (;;) {
        const { rows } = await pool.query(`select count(*)::int as n from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'run_minutes' and not l.granted`);
        if (rows[0].n > 0) break;
        await new Promise((r) => setImmediate(r));
      }
      await writer.query('commit');
      await rollup;
    } finally {
      writer.release();
    }
    const { rows: [m40] } = await pool.query(`select counts from flowwarden.run_minutes where minute = $1`, [minute(40)]);
    assert.deepEqual(m40.counts, { COMPLETED: 1 });
  });

  test('runs created for now or later (the tick) leave settled minutes alone', async () => {
    const before = await settled();
    await insertRuns(pool, new Date(now.getTime() + 30_000), [['SCHEDULED', 'Scheduled']]);
    assert.deepEqual(await settled(), before);
  });

  test('the loop counts every settled minute of its lookback in bounded batches', async () => {
    await pool.query(`delete from flowwarden.run_minutes`);
    const loop = new ChartRollup({ pool, log: silentLogger }, { minutesPerBatch: 100, maxBatches: 3 });
    const first = await loop.runOnce({ now });
    assert.deepEqual(first, { minutes: 300, batches: 3, more: true }, 'a bounded pass says there is more');
    let total = first.minutes;
    for (let r: { minutes: number; more?: boolean } = first; r.more; total += r.minutes) r = await loop.runOnce({ now });
    // 24 hours of minutes up to the settle delay, less the one minute with an open run (minute 2 is too young).
    const { rows: [{ n }] } = await pool.query(`select count(*)::int as n from flowwarden.run_minutes`);
    assert.equal(n, total);
    assert.equal(n, 24 * 60 - SETTLE_SECONDS / 60);
    assert.deepEqual(await loop.runOnce({ now }), { minutes: 0, batches: 1 });
  });
});
