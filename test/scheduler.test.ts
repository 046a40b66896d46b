import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from './support/app.ts';
import { Scheduler } from '../src/maintenance/tick.ts';
import { createPool } from '../src/db/client.ts';
import { silentLogger } from '../src/log.ts';
import { startBoss } from '../src/queue/boss.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { dbNow, withTransaction } from '../src/db/client.ts';
import { BOSS_SCHEMA, QUEUES } from '../src/queue/catalog.ts';
import type { FlowInputRaw } from '../src/flows/spec.ts';
import { setScheduleEnabled } from '../src/queries/flows.ts';

let app: TestApp;
before(async () => {
  app = await startTestApp();
});
after(async () => {
  await app.close();
});

const T0 = new Date('2026-11-22T10:00:00.000Z');
const at = (secondsAfterT0: number) => new Date(T0.getTime() + secondsAfterT0 * 1000);

async function defineFlow(def: FlowInputRaw): Promise<string> {
  const out = await withTransaction(app.pool, async (tx) => {
    // Pin next_run_at to the simulated clock: tests walk time with runOnce({ now }).
    const r = await upsertFlowTx(tx, def);
    return r;
  });
  return out.flow.id;
}

async function setNextRunAt(flowName: string, when: Date): Promise<void> {
  await app.pool.query(
    `update flowwarden.schedules s set next_run_at = $2, anchor = $2 from flowwarden.flows f where f.id = s.flow_id and f.name = $1`,
    [flowName, when],
  );
}

interface RunOf { id: string; scheduledFor: Date; stateType: string; stateName: string; message: string | null; scheduleId: string | null; parameters: Record<string, unknown> }

async function runsOf(flowName: string): Promise<RunOf[]> {
  const { rows } = await app.pool.query<RunOf>(
    `select r.id, r.scheduled_for as "scheduledFor", r.state_type as "stateType", r.state_name as "stateName",
            r.state_message as message, r.schedule_id as "scheduleId", r.parameters
       from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where f.name = $1 order by r.scheduled_for, r.created_at`,
    [flowName],
  );
  return rows;
}

async function dispatchJobsFor(runIds: string[]): Promise<number> {
  const { rows } = await app.pool.query<{ n: number }>(
    `select count(*)::int as n from ${BOSS_SCHEMA}.job where name = $1 and id = any($2::uuid[])`,
    [QUEUES.dispatch, runIds],
  );
  return rows[0]!.n;
}

describe('scheduler tick', () => {
  test('a schedule fires exactly once per fire time across three scheduler instances', async () => {
    await defineFlow({ name: 'three-pods', target: { type: 'function', handler: 'noop' }, schedules: [{ name: 's', every: '1s' }] });
    // A second flow with a 6-field cron so both kinds race.
    await defineFlow({ name: 'three-pods-cron', target: { type: 'function', handler: 'noop' }, schedules: [{ name: 's', cron: '*/2 * * * * *', timezone: 'America/New_York' }] });
    await setNextRunAt('three-pods', T0);
    await setNextRunAt('three-pods-cron', T0);

    // Three independent "pods": own pool, own pg-boss, own Scheduler.
    const pods = await Promise.all(
      [1, 2, 3].map(async () => {
        const pool = createPool(app.db.url, { max: 3 });
        const boss = await startBoss({ connectionString: app.db.url, role: 'producer' });
        const scheduler = new Scheduler({ pool, boss, log: silentLogger }, { intervalMs: 1000, horizonSeconds: 2, catchupGraceSeconds: 30, claimBatch: 1 });
        return { pool, boss, scheduler };
      }),
    );
    try {
      // Walk 60 simulated seconds in 250 ms steps; all three pods tick concurrently at every step.
      for (let ms = 0; ms <= 60_000; ms += 250) {
        const now = new Date(T0.getTime() + ms);
        await Promise.all(pods.map((p) => p.scheduler.runOnce({ now })));
      }
    } finally {
      for (const p of pods) {
        await p.boss.stop({ graceful: false });
        await p.pool.end();
      }
    }
    const every = await runsOf('three-pods');
    const cron = await runsOf('three-pods-cron');
    // Horizon 2 s past the last tick at T0+60 s: fires T0 .. T0+62 inclusive.
    assert.equal(every.length, 63);
    assert.deepEqual(every.map((r) => r.scheduledFor.getTime()), Array.from({ length: 63 }, (_, i) => at(i).getTime()));
    assert.equal(cron.length, 32); // every even second from T0 to T0+62
    assert.equal(new Set(cron.map((r) => r.scheduledFor.getTime())).size, 32);
    const ids = [...every, ...cron].map((r) => r.id);
    assert.equal(await dispatchJobsFor(ids), ids.length, 'one dispatch job per run');
  });

  test('catch-up skip, latest and all after a simulated outage', async () => {
    for (const policy of ['skip', 'latest', 'all'] as const) {
      await defineFlow({
        name: `outage-${policy}`,
        target: { type: 'function', handler: 'noop' },
        schedules: [{ name: 's', every: '1m', catchup: policy, catchupWindow: '10m', catchupMax: 5 }],
      });
      await setNextRunAt(`outage-${policy}`, T0);
    }
    // Nothing ran for an hour; the first tick after the outage happens at T0 + 60m + 10s.
    const now = at(3600 + 10);
    await app.scheduler.runOnce({ now });
    const onTime = (rs: Array<{ scheduledFor: Date }>) => rs.filter((r) => r.scheduledFor >= at(3600 - 30));
    const missed = (rs: Array<{ scheduledFor: Date }>) => rs.filter((r) => r.scheduledFor < at(3600 - 30));

    const skip = await runsOf('outage-skip');
    assert.equal(missed(skip).length, 0, 'skip: no missed fire runs');
    const latest = await runsOf('outage-latest');
    assert.deepEqual(missed(latest).map((r) => r.scheduledFor.toISOString()), [at(3540).toISOString()], 'latest: only the most recent missed fire');
    const all = await runsOf('outage-all');
    assert.deepEqual(
      missed(all).map((r) => r.scheduledFor.toISOString()),
      [3300, 3360, 3420, 3480, 3540].map((s) => at(s).toISOString()),
      'all: the most recent catchupMax fires within the window',
    );
    // The on-time fire at T0+60m (10 s ago, inside the grace period) runs under every policy.
    for (const rs of [skip, latest, all]) assert.deepEqual(onTime(rs).map((r) => r.scheduledFor.toISOString()), [at(3600).toISOString()]);
    // And the schedules resume after the horizon, not from the outage.
    const { rows } = await app.pool.query(`select next_run_at from flowwarden.schedules s join flowwarden.flows f on f.id = s.flow_id where f.name like 'outage-%'`);
    for (const r of rows) assert.equal(r.next_run_at.toISOString(), at(3660).toISOString());
  });

  describe('re-applying a changed schedule', () => {
    /**
     * A flow whose interval schedule (every 15 s) fires 12 s and 27 s from Postgres's now: both
     * inside the 30 s horizon, and far enough ahead to still be in the future when the test changes it.
     */
    async function flowWithPrecreatedRuns(name: string): Promise<{ fires: number[]; scheduleId: string }> {
      await defineFlow({ name, target: { type: 'function', handler: 'noop' }, schedules: [{ name: 's', every: '15s', parameters: { v: 1 } }] });
      const anchor = new Date((await dbNow(app.pool)).getTime() + 12_000);
      await setNextRunAt(name, anchor);
      await app.scheduler.runOnce();
      const runs = await runsOf(name);
      assert.deepEqual(runs.map((r) => r.scheduledFor.getTime()), [anchor.getTime(), anchor.getTime() + 15_000]);
      assert.ok(runs.every((r) => r.stateType === 'SCHEDULED' && r.parameters.v === 1));
      return { fires: runs.map((r) => r.scheduledFor.getTime()), scheduleId: runs[0]!.scheduleId! };
    }

    test('new parameters cancel the pre-created future runs; the same fire times run again with the new parameters', async () => {
      const { fires, scheduleId } = await flowWithPrecreatedRuns('reparam');
      const old = await runsOf('reparam');
      await defineFlow({ name: 'reparam', target: { type: 'function', handler: 'noop' }, schedules: [{ name: 's', every: '15s', parameters: { v: 2 } }] });

      const afterChange = await runsOf('reparam');
      assert.equal(afterChange.length, 2);
      for (const r of afterChange) {
        assert.equal(r.stateType, 'CANCELLED');
        assert.match(r.message ?? '', /superseded: the schedule was changed/);
        assert.equal(r.scheduleId, null, 'a superseded run frees its (schedule, fire time) slot');
      }
      const { rows: [sched] } = await app.pool.query(`select next_run_at from flowwarden.schedules where id = $1`, [scheduleId]);
      assert.equal(sched.next_run_at.getTime(), fires[0], 'next_run_at recomputed from now, on the stored anchor');

      await app.scheduler.runOnce();
      const fresh = (await runsOf('reparam')).filter((r) => r.stateType === 'SCHEDULED');
      assert.deepEqual(fresh.map((r) => r.scheduledFor.getTime()), fires);
      assert.ok(fresh.every((r) => r.parameters.v === 2 && r.scheduleId === scheduleId));
      assert.equal(await dispatchJobsFor(fresh.map((r) => r.id)), 2);
      assert.ok(old.every((o) => !fresh.some((f) => f.id === o.id)));

      // Re-applying the same definition changes nothing.
      await defineFlow({ name: 'reparam', target: { type: 'function', handler: 'noop' }, schedules: [{ name: 's', every: '15s', parameters: { v: 2 } }] });
      assert.deepEqual((await runsOf('reparam')).filter((r) => r.stateType === 'SCHEDULED').map((r) => r.id), fresh.map((r) => r.id));
    });

    test('pausing cancels the pre-created runs; resuming inside the horizon fires those times again', async () => {
      const { fires, scheduleId } = await flowWithPrecreatedRuns('pause-resume');
      await withTransaction(app.pool, async (tx) => setScheduleEnabled(tx, scheduleId, false, 'maintenance', await dbNow(tx)));
      const paused = await runsOf('pause-resume');
      assert.ok(paused.every((r) => r.stateType === 'CANCELLED' && r.scheduleId === null), 'cancelled and detached');
      await withTransaction(app.pool, async (tx) => setScheduleEnabled(tx, scheduleId, true, null, await dbNow(tx)));
      await app.scheduler.runOnce();
      const fresh = (await runsOf('pause-resume')).filter((r) => r.stateType === 'SCHEDULED');
      assert.deepEqual(fresh.map((r) => r.scheduledFor.getTime()), fires, 'both fire times still ahead run after the resume');
      assert.equal(await dispatchJobsFor(fresh.map((r) => r.id)), 2);
    });

    test('a new interval cancels the pre-created runs and fires on the new spec, including the fire times both share', async () => {
      const { fires } = await flowWithPrecreatedRuns('respec');
      await defineFlow({ name: 'respec', target: { type: 'function', handler: 'noop' }, schedules: [{ name: 's', every: '5s', parameters: { v: 1 } }] });
      assert.ok((await runsOf('respec')).every((r) => r.stateType === 'CANCELLED'));
      await app.scheduler.runOnce();
      const fresh = (await runsOf('respec')).filter((r) => r.stateType === 'SCHEDULED').map((r) => r.scheduledFor.getTime());
      for (const t of fires) assert.ok(fresh.includes(t), 'a fire time the old and new spec share still fires');
      assert.ok(fresh.every((t) => (t - fires[0]!) % 5000 === 0), 'aligned on the stored anchor, every 5 s');
      assert.ok(fresh.length >= 5, `every 5 s within the horizon: ${fresh.length}`);
    });
  });

  test('a paused schedule creates no runs; resuming starts from now without catch-up', async () => {
    await defineFlow({ name: 'pausable', target: { type: 'function', handler: 'noop' }, schedules: [{ name: 's', every: '10s', enabled: false, note: 'maintenance' }] });
    await setNextRunAt('pausable', T0);
    await app.scheduler.runOnce({ now: at(100) });
    assert.equal((await runsOf('pausable')).length, 0);
  });
});
