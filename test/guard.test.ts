import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestApp, type TestApp } from './support/app.ts';
import { runCli } from './support/cli.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { applyTransition } from '../src/runs/service.ts';
import { evaluateFlowHealth } from '../src/guard/health.ts';
import { disableFlowTx, reactivateFlowTx } from '../src/guard/operations.ts';
import { healthWorker } from '../src/workers/health.ts';
import { BOSS_SCHEMA, EVENTS } from '../src/queue/catalog.ts';
import type { FlowInputRaw } from '../src/flows/spec.ts';
import type { FlowRow } from '../src/queries/flows.ts';
import type { JobWithMetadata } from 'pg-boss';

let app: TestApp;
let dir: string;
const DISABLED_QUEUE = 'test.guard-disabled';
const actionCalls: string[] = [];

before(async () => {
  app = await startTestApp();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-guard-'));
  await app.boss.createQueue(DISABLED_QUEUE);
  await app.boss.subscribe(EVENTS.flowDisabled, DISABLED_QUEUE);
  app.deps.guardActions.register({
    name: 'fake-connector',
    onDisable: (flow: FlowRow, reason: string) => Promise.resolve(void actionCalls.push(`disable ${flow.name}: ${reason}`)),
    enforce: (flow: FlowRow) => Promise.resolve((actionCalls.push(`enforce ${flow.name}`), true)),
    onReactivate: (flow: FlowRow, by: string) => Promise.resolve(void actionCalls.push(`reactivate ${flow.name} by ${by}`)),
  });
});
after(async () => {
  await app.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const flowDef = (name: string, extra: Partial<FlowInputRaw> = {}): FlowInputRaw => ({
  name,
  target: { type: 'function', handler: 'noop' },
  schedules: [{ name: 'every-minute', cron: '* * * * *' }],
  ...extra,
});

async function defineFlow(def: FlowInputRaw): Promise<string> {
  return (await withTransaction(app.pool, (tx) => upsertFlowTx(tx, def))).flow.id;
}

async function schedulesOf(name: string) {
  const { rows } = await app.pool.query(
    `select s.name, s.enabled, s.note, s.next_run_at as "nextRunAt" from flowwarden.schedules s
       join flowwarden.flows f on f.id = s.flow_id where f.name = $1 order by s.name`,
    [name],
  );
  return rows as Array<{ name: string; enabled: boolean; note: string | null; nextRunAt: Date | null }>;
}

async function holdsOf(name: string) {
  const { rows } = await app.pool.query(`select * from flowwarden.disabled_flows where flow_name = $1 order by id`, [name]);
  return rows;
}

async function runHealthJob(flowId: string, reason: 'sweep' | 'disabled' | 'reactivated'): Promise<void> {
  const job = { id: 'test', data: { flowId, reason } } as unknown as JobWithMetadata<{ flowId: string; reason: typeof reason }>;
  await healthWorker.handle(app.deps, job, app.log);
}

const cli = (...args: string[]) => runCli(args, { DATABASE_URL: app.db.url });

describe('enforce pass', () => {
  test("re-enabling a held flow's schedule behind the guard's back is undone on the next pass", async () => {
    await defineFlow(flowDef('g-enforce'));
    await withTransaction(app.pool, (tx) => disableFlowTx(app.boss, tx, 'g-enforce', { reason: 'warehouse migration', by: 'ops' }));
    // Something (a script, a DBA) switches the schedule back on with plain SQL.
    await app.pool.query(`update flowwarden.schedules s set enabled = true, note = null from flowwarden.flows f where f.id = s.flow_id and f.name = 'g-enforce'`);

    const pass = await app.healthSweeper.runOnce();
    assert.deepEqual(pass.enforced.map((e) => [e.flowName, e.enforceCount]), [['g-enforce', 1]]);
    const [schedule] = await schedulesOf('g-enforce');
    assert.equal(schedule!.enabled, false);
    assert.match(schedule!.note!, /^held disabled by flowwarden guard: warehouse migration/);
    let [hold] = await holdsOf('g-enforce');
    assert.equal(hold.enforce_count, 1);
    assert.ok(hold.last_enforced_at);
    const { rows: events } = await app.pool.query(
      `select data from ${BOSS_SCHEMA}.job where name = $1 and data->>'flowName' = 'g-enforce' order by created_on`,
      [DISABLED_QUEUE],
    );
    assert.deepEqual(events.map((e) => e.data.details.enforced), [false, true], 'the disable, then the enforcement, are both reported');

    // A pass with nothing to undo changes nothing.
    assert.equal((await app.healthSweeper.runOnce()).enforced.length, 0);

    // Clearing the flow's disabled mark by hand is undone too.
    await app.pool.query(`update flowwarden.flows set disabled_at = null, disabled_reason = null where name = 'g-enforce'`);
    assert.deepEqual((await app.healthSweeper.runOnce()).enforced.map((e) => e.flowWasUnmarked), [true]);
    [hold] = await holdsOf('g-enforce');
    assert.equal(hold.enforce_count, 2);
    const { rows } = await app.pool.query(`select disabled_at from flowwarden.flows where name = 'g-enforce'`);
    assert.ok(rows[0].disabled_at);
  });

  test('two sweepers enforcing at once count one enforcement', async () => {
    await defineFlow(flowDef('g-enforce-race'));
    await withTransaction(app.pool, (tx) => disableFlowTx(app.boss, tx, 'g-enforce-race', { reason: 'r' }));
    await app.pool.query(`update flowwarden.schedules s set enabled = true from flowwarden.flows f where f.id = s.flow_id and f.name = 'g-enforce-race'`);
    await Promise.all([app.healthSweeper.runOnce(), app.healthSweeper.runOnce(), app.healthSweeper.runOnce()]);
    assert.equal((await holdsOf('g-enforce-race'))[0].enforce_count, 1);
  });

  test('re-applying the definition of a held flow keeps it disabled and says so', async () => {
    await defineFlow(flowDef('g-apply'));
    await withTransaction(app.pool, (tx) => disableFlowTx(app.boss, tx, 'g-apply', { reason: 'bad credentials' }));
    const file = path.join(dir, 'g-apply.json');
    fs.writeFileSync(file, JSON.stringify({ flows: [flowDef('g-apply', { schedules: [{ name: 'every-minute', cron: '* * * * *' }, { name: 'nightly', cron: '0 2 * * *' }] })] }));
    const out = await cli('apply', '-f', file);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /g-apply\s+updated\s+held disabled: bad credentials/);
    assert.match(out.stdout, /g-apply\/nightly\s+created\s+kept disabled: the flow is held disabled/);
    assert.deepEqual((await schedulesOf('g-apply')).map((s) => s.enabled), [false, false]);
    assert.equal((await app.healthSweeper.runOnce()).enforced.filter((e) => e.flowName === 'g-apply').length, 0, 'nothing to enforce');

    // Reactivation switches on both: the one the guard disabled and the one apply kept disabled.
    await withTransaction(app.pool, (tx) => reactivateFlowTx(app.boss, tx, 'g-apply', { by: 'carol' }));
    assert.deepEqual((await schedulesOf('g-apply')).map((s) => s.enabled), [true, true]);
  });

  test('a held flow deleted and re-created under the same name comes back held disabled', async () => {
    await defineFlow(flowDef('g-recreate'));
    await withTransaction(app.pool, (tx) => disableFlowTx(app.boss, tx, 'g-recreate', { reason: 'leaks credentials' }));
    await app.pool.query(`delete from flowwarden.flows where name = 'g-recreate'`);
    assert.equal((await holdsOf('g-recreate'))[0].flow_id, null, 'the hold outlives the flow row');

    const file = path.join(dir, 'g-recreate.json');
    fs.writeFileSync(file, JSON.stringify({ flows: [flowDef('g-recreate')] }));
    const out = await cli('apply', '-f', file);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /g-recreate\s+created\s+held disabled: leaks credentials/);
    assert.match(out.stdout, /g-recreate\/every-minute\s+created\s+kept disabled: the flow is held disabled/);
    const { rows: [flow] } = await app.pool.query(`select id, disabled_at, disabled_reason from flowwarden.flows where name = 'g-recreate'`);
    assert.ok(flow.disabled_at);
    assert.equal(flow.disabled_reason, 'leaks credentials');
    const [schedule] = await schedulesOf('g-recreate');
    assert.equal(schedule!.enabled, false);
    assert.match(schedule!.note!, /^held disabled by flowwarden guard: leaks credentials/);
    const holds = await holdsOf('g-recreate');
    assert.equal(holds.length, 1);
    assert.equal(holds[0].flow_id, flow.id, 'the open hold points at the new flow');
    assert.equal((await app.healthSweeper.runOnce()).enforced.filter((e) => e.flowName === 'g-recreate').length, 0, 'nothing to enforce');

    await withTransaction(app.pool, (tx) => reactivateFlowTx(app.boss, tx, 'g-recreate', { by: 'dana' }));
    assert.deepEqual((await schedulesOf('g-recreate')).map((s) => s.enabled), [true]);
  });

  test('connector guard actions run on disable, on every enforce pass of a held flow, and on reactivation', async () => {
    actionCalls.length = 0;
    const flowId = await defineFlow(flowDef('g-actions'));
    for (let i = 0; i < 3; i++) {
      const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, 'g-actions', {}, { origin: 'manual' }));
      await withTransaction(app.pool, (tx) => applyTransition(app.deps.transitions, tx, { runId, to: 'FAILED', message: 'boom' }));
    }
    await evaluateFlowHealth(app.deps, flowId);
    await runHealthJob(flowId, 'sweep');
    await withTransaction(app.pool, (tx) => reactivateFlowTx(app.boss, tx, 'g-actions', { by: 'dave' }));
    await runHealthJob(flowId, 'reactivated');
    assert.deepEqual(actionCalls, ['disable g-actions: 3 consecutive failures (last: boom)', 'enforce g-actions', 'reactivate g-actions by dave']);
  });
});

describe('reactivation', () => {
  test('switches guard-disabled schedules back on from now, leaves operator-paused ones paused, moves the baseline', async () => {
    await defineFlow(flowDef('g-react', {
      schedules: [
        { name: 'a-every-minute', cron: '* * * * *', catchup: 'all' },
        { name: 'b-paused', cron: '0 3 * * *', enabled: false, note: 'paused for maintenance' },
      ],
    }));
    // Push next_run_at into the past as if the flow had been disabled for a day.
    await app.pool.query(`update flowwarden.schedules s set next_run_at = now() - interval '1 day' from flowwarden.flows f where f.id = s.flow_id and f.name = 'g-react'`);
    await withTransaction(app.pool, (tx) => disableFlowTx(app.boss, tx, 'g-react', { reason: 'incident 42', by: 'erin' }));
    const { rows: before } = await app.pool.query(`select valid_since from flowwarden.flows where name = 'g-react'`);

    const out = await withTransaction(app.pool, (tx) => reactivateFlowTx(app.boss, tx, 'g-react', { by: 'frank' }));
    assert.equal(out.schedulesEnabled, 1);
    const [a, b] = await schedulesOf('g-react');
    assert.equal(a!.enabled, true);
    assert.equal(a!.note, null);
    const { rows: now } = await app.pool.query(`select now() as now`);
    assert.ok(a!.nextRunAt! > now[0].now, 'next_run_at recomputed from now: no catch-up storm');
    assert.deepEqual([b!.enabled, b!.note], [false, 'paused for maintenance']);
    assert.ok(out.flow.validSince > before[0].valid_since);
    assert.equal(out.flow.disabledAt, null);
    const [hold] = await holdsOf('g-react');
    assert.equal(hold.reactivated_by, 'frank');
    assert.ok(hold.reactivated_at);
  });
});

describe('flows disable / reactivate CLI', () => {
  test('disable, show the guard history, reactivate', async () => {
    await defineFlow(flowDef('g-cli'));
    let out = await cli('flows', 'disable', 'g-cli', '--reason', 'vendor outage', '--by', 'alice');
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^disabled g-cli: 1 schedule\(s\) off/);
    assert.match(out.stdout, /reactivate with: npm run flowwarden -- flows reactivate g-cli --by <you>/);

    out = await cli('flows', 'show', 'g-cli');
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /disabled: yes \(vendor outage\)/);
    assert.match(out.stdout, /guard history:\n.*DISABLEDBY.*\n.*alice\s+manual\s+vendor outage\s+no \(held\)/);

    out = await cli('flows', 'reactivate', 'g-cli', '--by', 'bob');
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^reactivated g-cli by bob: 1 schedule\(s\) on from now/);

    out = await cli('flows', 'show', 'g-cli', '--json');
    const shown = JSON.parse(out.stdout);
    assert.equal(shown.disabled, false);
    assert.equal(shown.guardHistory.length, 1);
    assert.equal(shown.guardHistory[0].disabledBy, 'alice');
    assert.equal(shown.guardHistory[0].reactivatedBy, 'bob');
    assert.equal(shown.guardHistory[0].reason, 'vendor outage');
  });

  test('bad input exits 1 with a one-line reason', async () => {
    await defineFlow(flowDef('g-cli-bad'));
    const cases: Array<[string[], RegExp]> = [
      [['flows', 'reactivate', 'g-cli-bad', '--by', 'bob'], /^flowwarden: error: flow 'g-cli-bad' is not disabled: nothing to reactivate/],
      [['flows', 'disable', 'no-such-flow', '--reason', 'x'], /^flowwarden: error: flow 'no-such-flow' not found/],
      [['flows', 'reactivate', 'no-such-flow', '--by', 'bob'], /^flowwarden: error: flow 'no-such-flow' not found/],
      [['flows', 'disable', 'g-cli-bad'], /^flowwarden: error: flows disable needs --reason TEXT/],
      [['flows', 'reactivate', 'g-cli-bad'], /^flowwarden: error: flows reactivate needs --by WHO/],
    ];
    for (const [args, expected] of cases) {
      const out = await cli(...args);
      assert.equal(out.code, 1, `${args.join(' ')}: ${out.stderr}`);
      assert.match(out.stderr, expected);
      assert.equal(out.stderr.trim().split('\n').length, 1, `one line: ${out.stderr}`);
    }
    // Disabling twice names the open hold.
    assert.equal((await cli('flows', 'disable', 'g-cli-bad', '--reason', 'first')).code, 0);
    const twice = await cli('flows', 'disable', 'g-cli-bad', '--reason', 'second');
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /flow 'g-cli-bad' is already disabled since .* \(first\); nothing to do/);
  });
});
