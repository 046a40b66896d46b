/**
 * Overload (issue 11, point 4): with more due schedules than a tick can materialise, every
 * maintenance loop still stops when asked, the tick does bounded work, and the lag is visible.
 */
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, TEST_ADMIN_TOKEN, type TestApp } from './support/app.ts';
import { Scheduler } from '../src/maintenance/tick.ts';
import { LateSweeper } from '../src/maintenance/late-sweep.ts';
import { HealthSweeper } from '../src/maintenance/health-sweep.ts';
import { silentLogger } from '../src/log.ts';

let app: TestApp;
const FLOWS = 600;
const BATCH = 50;

before(async () => {
  app = await startTestApp({ config: { claimBatch: BATCH, horizonSeconds: 0 } });
  // FLOWS flows on '* * * * * *', all due a minute ago: far more than one batch.
  await app.pool.query(
    `with f as (insert into flowwarden.flows (name, target) select 'o-' || g, '{"type":"function","handler":"noop"}' from generate_series(1, $1::int) g returning id)
     insert into flowwarden.schedules (flow_id, name, kind, cron, timezone, next_run_at, catchup)
     select id, 'every-second', 'cron', '* * * * * *', 'UTC', now() - interval '1 minute', 'skip' from f`,
    [FLOWS],
  );
});
after(async () => {
  await app.close();
});

async function dueSchedules(): Promise<number> {
  return (await app.pool.query<{ n: number }>(`select count(*)::int as n from flowwarden.schedules where enabled and next_run_at <= now()`)).rows[0]!.n;
}

describe('scheduler under overload', () => {
  test('the lag is a metric and /readyz detail while schedules are behind', async () => {
    const ready = await app.api!.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 200, ready.body);
    assert.ok(ready.json().schedulerLagSeconds >= 30, ready.body);
    const metrics = await app.api!.inject({ url: '/metrics', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
    const m = /^flowwarden_scheduler_lag_seconds (\S+)$/m.exec(metrics.body);
    assert.ok(m && Number(m[1]) >= 30, 'flowwarden_scheduler_lag_seconds');
  });

  test('a tick stops after the batch in flight once its signal is aborted', async () => {
    const stop = new AbortController();
    const scheduler = new Scheduler({ pool: app.pool, boss: app.boss, log: silentLogger, onBatch: () => stop.abort() }, { ...app.scheduler.config, claimBatch: BATCH });
    const result = await scheduler.runOnce({ signal: stop.signal });
    assert.equal(result.batches, 1);
    assert.equal(result.more, true);
    assert.ok((await dueSchedules()) >= FLOWS - BATCH, 'the rest is left for the next tick (or pod)');
  });

  test('a tick does bounded work: at most maxBatches batches, and says there is more', async () => {
    const scheduler = new Scheduler({ pool: app.pool, boss: app.boss, log: silentLogger }, { ...app.scheduler.config, claimBatch: BATCH });
    const result = await scheduler.runOnce({ maxBatches: 2 });
    assert.equal(result.batches, 2);
    assert.equal(result.more, true);
  });

  test('stop() of a running scheduler loop returns without materialising the whole backlog', async () => {
    let stopping: Promise<void> | undefined;
    let onFirstBatch!: () => void;
    const firstBatch = new Promise<void>((resolve) => (onFirstBatch = resolve));
    const scheduler: Scheduler = new Scheduler(
      {
        pool: app.pool,
        boss: app.boss,
        log: silentLogger,
        onBatch: () => {
          stopping ??= scheduler.stop();
          onFirstBatch();
        },
      },
      { ...app.scheduler.config, claimBatch: BATCH, intervalMs: 60_000 },
    );
    const before = await dueSchedules();
    assert.ok(before > 3 * BATCH);
    scheduler.start();
    await firstBatch;
    await stopping;
    const left = await dueSchedules();
    assert.ok(left >= before - 2 * BATCH, `stopped within a batch or two (${before} due before, ${left} after)`);
  });
});

describe('the other maintenance loops yield to stop too', () => {
  test('late sweep: one batch after the signal, then it says there is more', async () => {
    // Runs due long ago, never dispatched: all Late candidates.
    await app.pool.query(
      `insert into flowwarden.runs (flow_id, schedule_id, scheduled_for, state_type, state_name, origin)
       select s.flow_id, s.id, now() - interval '1 hour' - make_interval(secs => g), 'SCHEDULED', 'Scheduled', 'schedule'
         from flowwarden.schedules s cross join generate_series(1, 3) g`,
    );
    const stop = new AbortController();
    const sweeper = new LateSweeper({ pool: app.pool, boss: app.boss, log: silentLogger, onBatch: () => stop.abort() }, { ...app.lateSweeper.config, batchSize: 100 });
    const result = await sweeper.runOnce({ signal: stop.signal });
    assert.equal(result.batches, 1);
    assert.equal(result.more, true);
    const bounded = await sweeper.runOnce({ maxBatches: 2 });
    assert.equal(bounded.batches, 2);
    assert.equal(bounded.more, true);
  });

  test('health sweep: an aborted pass requests nothing', async () => {
    // A failing flow the sweep would request an evaluation for.
    await app.pool.query(
      `with f as (insert into flowwarden.flows (name, target) values ('o-failing', '{"type":"function","handler":"noop"}') returning id)
       insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, origin, ended_at)
       select f.id, now(), 'FAILED', 'Failed', 'manual', now() from f, generate_series(1, 5)`,
    );
    const sweeper = new HealthSweeper(app.deps, app.healthSweeper.config);
    assert.ok((await sweeper.runOnce()).requested >= 1, 'a normal pass requests the failing flow');
    const stop = new AbortController();
    stop.abort();
    const result = await sweeper.runOnce({ signal: stop.signal });
    assert.equal(result.requested, 0);
  });
});
