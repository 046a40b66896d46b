/**
 * The maintenance loops' one shape (src/maintenance/): validated configs with named defaults, the
 * one table of which loops run in which role, and the tick's hand-over to the pod's waker.
 */
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from './support/app.ts';
import { Maintainer } from '../src/maintenance/index.ts';
import type { Role } from '../src/config.ts';
import { Scheduler, TICK_DEFAULTS } from '../src/maintenance/tick.ts';
import { LATE_SWEEP_DEFAULTS, LateSweeper } from '../src/maintenance/late-sweep.ts';
import { HEALTH_SWEEP_DEFAULTS, HealthSweeper } from '../src/maintenance/health-sweep.ts';
import { RETENTION_DEFAULTS, RetentionSweeper } from '../src/maintenance/retention.ts';
import { PrefectWatcher, WATCH_DEFAULTS } from '../src/maintenance/prefect-watch.ts';
import { Waker } from '../src/scheduling/waker.ts';
import { createPrefectConnector, type PrefectConnector } from '../src/prefect/connector.ts';
import { createPrefectClient } from '../src/prefect/client/index.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { dbNow, withTransaction } from '../src/db/client.ts';
import { silentLogger } from '../src/log.ts';

let app: TestApp;
let connector: PrefectConnector;
before(async () => {
  app = await startTestApp();
  // Never called here: construction only.
  connector = createPrefectConnector({ client: createPrefectClient({ apiUrl: 'http://127.0.0.1:9/api' }), config: app.config, log: silentLogger });
});
after(async () => {
  await app.close();
});

const deps = () => ({ pool: app.pool, boss: app.boss, log: silentLogger, transitions: app.deps.transitions });

function maintainer(roles: Role[], waker: Waker, prefect?: PrefectConnector): Maintainer {
  return new Maintainer({ ...deps(), metrics: app.deps.metrics, waker, prefect }, app.config, roles);
}

describe('maintenance loops', () => {
  test('a bad setting fails at construction, naming the loop, the setting, its range and its default', () => {
    assert.throws(() => new Scheduler(deps(), { claimBatch: 0 }), {
      name: 'RangeError',
      message: 'tick config: claimBatch must be an integer in 1..∞, got 0; leave it out for the default (500)',
    });
    assert.throws(() => new LateSweeper(deps(), { intervalMs: Number.NaN }), /^RangeError: late sweep config: intervalMs must be an integer in 1\.\.∞, got NaN/);
    assert.throws(() => new HealthSweeper(deps(), { maxConsecutiveFailures: 1.5 }), /^RangeError: health sweep config: maxConsecutiveFailures must be an integer/);
    assert.throws(() => new RetentionSweeper(deps(), { runSeconds: -1 }), /^RangeError: retention sweep config: runSeconds must be an integer in 0\.\.∞, got -1/);
    assert.throws(() => new PrefectWatcher({ ...deps(), connector }, { pageSize: 1001 }), /^RangeError: prefect watch config: pageSize must be an integer in 1\.\.1000, got 1001; leave it out for the default \(200\)/);
  });

  test('settings left out (or undefined) take the named defaults', () => {
    assert.deepEqual(new Scheduler(deps()).config, TICK_DEFAULTS);
    assert.deepEqual(new LateSweeper(deps(), { batchSize: undefined }).config, LATE_SWEEP_DEFAULTS);
    assert.deepEqual(new HealthSweeper(deps()).config, HEALTH_SWEEP_DEFAULTS);
    assert.deepEqual(new RetentionSweeper(deps()).config, RETENTION_DEFAULTS);
    assert.deepEqual(new PrefectWatcher({ ...deps(), connector }, { pageSize: 50 }).config, { ...WATCH_DEFAULTS, pageSize: 50 });
  });

  test('the scheduler role runs the tick and the sweeps; the worker role runs the Prefect watch, only when Prefect is configured', () => {
    const waker = new Waker(() => {});
    const running = (roles: Role[], prefect?: PrefectConnector) => maintainer(roles, waker, prefect).running.map((l) => l.name);
    assert.deepEqual(running(['scheduler']), ['scheduler', 'late-sweep', 'health-sweep', 'retention', 'chart-rollup']);
    assert.deepEqual(running(['worker']), []);
    assert.deepEqual(running(['worker'], connector), ['prefect-watch']);
    assert.deepEqual(running(['api'], connector), []);
    assert.deepEqual(running(['all'], connector), ['scheduler', 'late-sweep', 'health-sweep', 'retention', 'chart-rollup', 'prefect-watch']);
    assert.deepEqual(running(['api', 'scheduler', 'worker'], connector), running(['all'], connector));
    // Every loop exists whatever the roles (tests drive runOnce on any of them).
    assert.equal(maintainer(['api'], waker).loops.prefectWatcher, undefined);
    assert.ok(maintainer(['api'], waker, connector).loops.prefectWatcher instanceof PrefectWatcher);
  });

  test("the tick hands the fire times it created to the pod's waker only when the pod also dispatches", async () => {
    const defineDueSoon = async (name: string) => {
      await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name, target: { type: 'function', handler: 'noop' }, schedules: [{ name: 's', every: '15s' }] }));
      const soon = new Date((await dbNow(app.pool)).getTime() + 12_000);
      await app.pool.query(`update flowwarden.schedules s set next_run_at = $2, anchor = $2 from flowwarden.flows f where f.id = s.flow_id and f.name = $1`, [name, soon]);
    };
    const schedulerOnly = new Waker(() => {});
    await defineDueSoon('m-scheduler-only');
    const a = await maintainer(['scheduler'], schedulerOnly).loops.scheduler.runOnce();
    assert.ok(a.created >= 1, 'the tick created runs');
    assert.equal(schedulerOnly.pending, 0, 'no dispatch workers here: nothing to wake');

    const dispatching = new Waker(() => {});
    await defineDueSoon('m-dispatching');
    const b = await maintainer(['scheduler', 'worker'], dispatching).loops.scheduler.runOnce();
    assert.ok(b.created >= 1, 'the tick created runs');
    assert.ok(dispatching.pending >= 1, 'one wake-up per distinct future fire time');
    schedulerOnly.stop();
    dispatching.stop();
  });
});
