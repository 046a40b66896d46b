import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, waitFor, type TestApp } from './support/app.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { applyTransition } from '../src/runs/service.ts';
import { evaluateFlowHealth, HEALTH_DEBOUNCE_SECONDS } from '../src/guard/health.ts';
import { reactivateFlowTx } from '../src/guard/operations.ts';
import { startWorkers } from '../src/workers/index.ts';
import { healthWorker } from '../src/workers/health.ts';
import { BOSS_SCHEMA, EVENTS, QUEUES } from '../src/queue/catalog.ts';
import type { FlowInputRaw } from '../src/flows/spec.ts';
import type { StateType } from '../src/types.ts';
import type { TaskInput } from '../src/types.ts';

let app: TestApp;
const DISABLED_QUEUE = 'test.flow-disabled';

before(async () => {
  app = await startTestApp({ config: { maxConsecutiveFailures: 3 } });
  await app.boss.createQueue(DISABLED_QUEUE);
  await app.boss.subscribe(EVENTS.flowDisabled, DISABLED_QUEUE);
});
after(async () => {
  await app.close();
});

async function defineFlow(def: Partial<FlowInputRaw> & { name: string }): Promise<string> {
  const out = await withTransaction(app.pool, (tx) =>
    upsertFlowTx(tx, { target: { type: 'function', handler: 'noop' }, schedules: [{ name: 'hourly', cron: '0 * * * *' }], ...def }),
  );
  return out.flow.id;
}

/** One run, created and finished in its own transactions (so runs are ordered by creation). */
async function finishRun(flow: string, to: StateType, options: { message?: string; tasks?: TaskInput[] } = {}): Promise<string> {
  const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, flow, {}, { origin: 'manual' }));
  await withTransaction(app.pool, (tx) => applyTransition(app.deps.transitions, tx, { runId, to, message: options.message ?? `${to.toLowerCase()} on purpose`, tasks: options.tasks }));
  return runId;
}

async function flowState(name: string) {
  const { rows } = await app.pool.query(
    `select f.disabled_at as "disabledAt", f.disabled_reason as "disabledReason",
            (select count(*)::int from flowwarden.schedules s where s.flow_id = f.id and s.enabled) as "enabledSchedules",
            (select count(*)::int from flowwarden.disabled_flows d where d.flow_name = f.name) as holds
       from flowwarden.flows f where f.name = $1`,
    [name],
  );
  return rows[0] as { disabledAt: Date | null; disabledReason: string | null; enabledSchedules: number; holds: number };
}

async function openHoldOf(name: string) {
  const { rows } = await app.pool.query(`select * from flowwarden.disabled_flows where flow_name = $1 and reactivated_at is null`, [name]);
  return rows[0];
}

describe('health rules', () => {
  test('three consecutive failures disable the flow; CANCELLED runs in between neither count nor reset', async () => {
    const flowId = await defineFlow({ name: 'h-streak' });
    const f1 = await finishRun('h-streak', 'FAILED');
    await finishRun('h-streak', 'CANCELLED');
    const f2 = await finishRun('h-streak', 'CRASHED');
    await finishRun('h-streak', 'CANCELLED');
    assert.equal((await evaluateFlowHealth(app.deps, flowId)).action, 'none', 'two failures are not enough');
    assert.equal((await flowState('h-streak')).disabledAt, null);

    const f3 = await finishRun('h-streak', 'FAILED', { message: 'upstream table missing' });
    const outcome = await evaluateFlowHealth(app.deps, flowId);
    assert.equal(outcome.action, 'disabled');
    const state = await flowState('h-streak');
    assert.ok(state.disabledAt);
    assert.match(state.disabledReason!, /^3 consecutive failures \(last: upstream table missing\)/);
    assert.equal(state.enabledSchedules, 0);
    const { rows: schedules } = await app.pool.query(`select note from flowwarden.schedules where flow_id = $1`, [flowId]);
    assert.match(schedules[0].note, /^held disabled by flowwarden guard: 3 consecutive failures/);
    const hold = await openHoldOf('h-streak');
    assert.equal(hold.rule, 'consecutive_failures');
    assert.equal(hold.disabled_by, 'guard');
    assert.deepEqual(hold.evidence.runIds, [f3, f2, f1]);
    const { rows: events } = await app.pool.query(`select data from ${BOSS_SCHEMA}.job where name = $1 and data->>'flowName' = 'h-streak'`, [DISABLED_QUEUE]);
    assert.equal(events.length, 1);
    assert.equal(events[0].data.details.rule, 'consecutive_failures');
    assert.match(events[0].data.message, /reactivate with: npm run flowwarden -- flows reactivate h-streak --by <you>/);

    // Evaluating again (or concurrently) changes nothing: one hold.
    const again = await Promise.all([1, 2, 3].map(() => evaluateFlowHealth(app.deps, flowId)));
    assert.deepEqual(again.map((o) => o.action), ['none', 'none', 'none']);
    assert.equal((await flowState('h-streak')).holds, 1);
  });

  test('a success resets the streak', async () => {
    const flowId = await defineFlow({ name: 'h-reset' });
    await finishRun('h-reset', 'FAILED');
    await finishRun('h-reset', 'FAILED');
    await finishRun('h-reset', 'COMPLETED');
    await finishRun('h-reset', 'FAILED');
    await finishRun('h-reset', 'FAILED');
    assert.equal((await evaluateFlowHealth(app.deps, flowId)).action, 'none');
    await finishRun('h-reset', 'FAILED');
    assert.equal((await evaluateFlowHealth(app.deps, flowId)).action, 'disabled');
  });

  test('concurrent evaluations of one flow disable it once', async () => {
    const flowId = await defineFlow({ name: 'h-concurrent' });
    for (let i = 0; i < 3; i++) await finishRun('h-concurrent', 'FAILED');
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => evaluateFlowHealth(app.deps, flowId)));
    assert.equal(outcomes.filter((o) => o.action === 'disabled').length, 1);
    assert.equal((await flowState('h-concurrent')).holds, 1);
  });

  test('a critical task failure with an ignored message does not disable; with any other message it does', async () => {
    const flowId = await defineFlow({
      name: 'h-critical',
      health: { criticalTasks: ['load'], ignorePatterns: ['^timeout', 'retrying'], maxConsecutiveFailures: 100 },
    });
    await finishRun('h-critical', 'FAILED', { tasks: [{ name: 'load', stateType: 'FAILED', message: 'timeout after 30 s' }] });
    await finishRun('h-critical', 'COMPLETED', { tasks: [{ name: 'load', stateType: 'FAILED', message: 'warehouse busy, retrying' }] });
    await finishRun('h-critical', 'COMPLETED', { tasks: [{ name: 'extract', stateType: 'FAILED', message: 'not critical' }] });
    assert.equal((await evaluateFlowHealth(app.deps, flowId)).action, 'none');

    const runId = await finishRun('h-critical', 'COMPLETED', { tasks: [{ name: 'load', stateType: 'CRASHED', message: 'table orders is missing' }] });
    const outcome = await evaluateFlowHealth(app.deps, flowId);
    assert.equal(outcome.action, 'disabled');
    const hold = await openHoldOf('h-critical');
    assert.equal(hold.rule, 'critical_task');
    assert.deepEqual(hold.evidence, { runIds: [runId], task: 'load', message: 'table orders is missing' });
    assert.match(hold.reason, /critical task 'load' crashed: table orders is missing/);
  });

  test('autoDisable false reports an unhealthy flow but leaves it enabled', async () => {
    const flowId = await defineFlow({ name: 'h-exempt', health: { autoDisable: false } });
    for (let i = 0; i < 3; i++) await finishRun('h-exempt', 'FAILED');
    assert.equal((await evaluateFlowHealth(app.deps, flowId)).action, 'reported');
    assert.equal((await flowState('h-exempt')).disabledAt, null);
  });

  test('after reactivation old failures do not re-disable the flow; new ones do', async () => {
    const flowId = await defineFlow({ name: 'h-baseline' });
    for (let i = 0; i < 3; i++) await finishRun('h-baseline', 'FAILED');
    assert.equal((await evaluateFlowHealth(app.deps, flowId)).action, 'disabled');
    await withTransaction(app.pool, (tx) => reactivateFlowTx(app.boss, tx, 'h-baseline', { by: 'alice' }));
    assert.equal((await flowState('h-baseline')).enabledSchedules, 1);

    assert.equal((await evaluateFlowHealth(app.deps, flowId)).action, 'none', 'the three old failures are before the baseline');
    await finishRun('h-baseline', 'FAILED');
    await finishRun('h-baseline', 'FAILED');
    assert.equal((await evaluateFlowHealth(app.deps, flowId)).action, 'none', 'two new failures are not enough');
    await finishRun('h-baseline', 'FAILED');
    assert.equal((await evaluateFlowHealth(app.deps, flowId)).action, 'disabled');
    const { rows } = await app.pool.query(
      `select reactivated_by from flowwarden.disabled_flows where flow_name = 'h-baseline' order by id`,
    );
    assert.deepEqual(rows.map((r) => r.reactivated_by), ['alice', null], 'full history kept: the closed hold and the new one');
  });
});

/** The health queue's worker, started once for the tests that need the whole path. */
let healthWorkerStarted: Promise<unknown> | undefined;
function startHealthWorker(): Promise<unknown> {
  healthWorkerStarted ??= startWorkers(app.deps, [healthWorker]);
  return healthWorkerStarted;
}

describe('health trigger', () => {
  test('a burst of 500 failures produces only a handful of health jobs', async () => {
    const flowId = await defineFlow({ name: 'h-burst', health: { maxConsecutiveFailures: 1000 } });
    const { rows } = await app.pool.query<{ id: string }>(
      `insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, origin)
       select $1, now(), 'RUNNING', 'Running', 'manual' from generate_series(1, 500) returning id`,
      [flowId],
    );
    // Debounce slots are HEALTH_DEBOUNCE_SECONDS slices of the database clock: read it around the burst.
    const dbEpoch = async () => (await app.pool.query<{ t: number }>('select extract(epoch from clock_timestamp())::float8 as t')).rows[0]!.t;
    const started = await dbEpoch();
    const queue = rows.map((r) => r.id);
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let id = queue.pop(); id; id = queue.pop()) {
          const runId = id;
          await withTransaction(app.pool, (tx) => applyTransition(app.deps.transitions, tx, { runId, to: 'FAILED', message: 'burst' }));
        }
      }),
    );
    const ended = await dbEpoch();
    const { rows: jobs } = await app.pool.query<{ n: number }>(
      `select count(*)::int as n from ${BOSS_SCHEMA}.job where name = $1 and data->>'flowId' = $2`,
      [QUEUES.health, flowId],
    );
    const n = jobs[0]!.n;
    // At most one job per debounce slot the burst touched, plus the trailing one in the next slot:
    // the bound follows the burst's length on this machine, never a speed.
    const slot = (epoch: number) => Math.floor(epoch / HEALTH_DEBOUNCE_SECONDS);
    const slotsSpanned = slot(ended) - slot(started) + 1;
    assert.ok(n >= 1, 'the burst requested a health check');
    assert.ok(n <= slotsSpanned + 1, `500 failures over ${slotsSpanned} debounce slot(s) (${(ended - started).toFixed(1)} s) gave ${n} health jobs`);
  });

  test('the health worker disables a flow after its third failure, end to end', async () => {
    await defineFlow({ name: 'h-worker' });
    await startHealthWorker();
    for (let i = 0; i < 3; i++) await finishRun('h-worker', 'FAILED');
    const state = await waitFor(async () => {
      const s = await flowState('h-worker');
      return s.disabledAt ? s : null;
    }, { what: 'the health worker to disable h-worker', timeoutMs: 20_000 });
    assert.equal(state.enabledSchedules, 0);
    assert.match(state.disabledReason!, /^3 consecutive failures/);
  });

  test('a critical task failing inside a COMPLETED run disables the flow through the health job', async () => {
    const flowId = await defineFlow({ name: 'h-critical-e2e', health: { criticalTasks: ['load'], maxConsecutiveFailures: 100 } });
    await startHealthWorker();
    const runId = await finishRun('h-critical-e2e', 'COMPLETED', { message: 'done', tasks: [{ name: 'load', stateType: 'FAILED', message: 'table orders is missing' }] });
    const { rows: jobs } = await app.pool.query(`select data from ${BOSS_SCHEMA}.job where name = $1 and data->>'flowId' = $2`, [QUEUES.health, flowId]);
    assert.ok(jobs.length >= 1, 'the transition requested a health evaluation');
    const state = await waitFor(async () => {
      const s = await flowState('h-critical-e2e');
      return s.disabledAt ? s : null;
    }, { what: 'the health worker to disable h-critical-e2e', timeoutMs: 20_000 });
    assert.equal(state.enabledSchedules, 0);
    assert.match(state.disabledReason!, /^critical task 'load' failed: table orders is missing/);
    const hold = await openHoldOf('h-critical-e2e');
    assert.equal(hold.rule, 'critical_task');
    assert.deepEqual(hold.evidence.runIds, [runId]);
  });

  test('a COMPLETED run with only non-critical failed tasks leaves the flow enabled', async () => {
    const flowId = await defineFlow({ name: 'h-noncritical-e2e', health: { criticalTasks: ['load'], maxConsecutiveFailures: 100 } });
    await startHealthWorker();
    await finishRun('h-noncritical-e2e', 'COMPLETED', { tasks: [{ name: 'extract', stateType: 'FAILED', message: 'not critical' }] });
    // Wait for the requested evaluation to finish, then check it left the flow alone.
    await waitFor(async () => {
      const { rows } = await app.pool.query(`select state from ${BOSS_SCHEMA}.job where name = $1 and data->>'flowId' = $2`, [QUEUES.health, flowId]);
      return rows.length > 0 && rows.every((r) => r.state === 'completed');
    }, { what: 'the health job of h-noncritical-e2e to complete', timeoutMs: 20_000 });
    assert.equal((await flowState('h-noncritical-e2e')).disabledAt, null);
  });

  test('the periodic sweep picks up a failed critical task in a COMPLETED run recorded without the hook', async () => {
    const flowId = await defineFlow({ name: 'h-critical-sweep', health: { criticalTasks: ['load'], maxConsecutiveFailures: 100 } });
    const quiet = await defineFlow({ name: 'h-critical-sweep-quiet', health: { criticalTasks: ['load'], maxConsecutiveFailures: 100 } });
    // Another process (no guard hooks installed) recorded the run: no health job was sent.
    for (const [id, task] of [[flowId, 'load'], [quiet, 'extract']] as const) {
      await app.pool.query(
        `with r as (insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, origin)
                    values ($1, now(), 'COMPLETED', 'Completed', 'manual') returning id)
         insert into flowwarden.task_results (run_id, name, state_type, message) select r.id, $2, 'FAILED', 'boom' from r`,
        [id, task],
      );
    }
    await app.healthSweeper.runOnce();
    const { rows } = await app.pool.query(
      `select data->>'flowId' as "flowId" from ${BOSS_SCHEMA}.job where name = $1 and singleton_key like 'sweep:%'`,
      [QUEUES.health],
    );
    const swept = rows.map((r) => r.flowId);
    assert.ok(swept.includes(flowId), 'the flow with a failed critical task is evaluated');
    assert.ok(!swept.includes(quiet), 'a failed task that is not critical does not need an evaluation');
  });
});
