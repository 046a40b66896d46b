/**
 * Prefect 3 fidelity (issue 10): the connector against a fake built from Prefect's own server source
 * (test/support/fake-prefect.ts), one test per way flowwarden used to misbehave on a real server.
 * The shared app talks to a self-hosted-style server: Basic auth (PREFECT_API_AUTH_STRING) and CSRF
 * protection on; tests needing another server mode build their own client against their own fake.
 */
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { JobWithMetadata } from 'pg-boss';
import { startTestApp, upsertFlow, usePrefect, type TestApp } from './support/app.ts';
import { startFakePrefect, type FakePrefect, type FakeSchedule } from './support/fake-prefect.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { dispatchWorker } from '../src/dispatch/worker.ts';
import { QUEUES } from '../src/queue/catalog.ts';
import { getRun, runHistory, runTasks } from '../src/runs/read.ts';
import { type RunRow } from '../src/types.ts';
import { silentLogger } from '../src/log.ts';
import { createPrefectClient, type PrefectClient } from '../src/prefect/client/index.ts';
import { createPrefectConnector, type PrefectConnector } from '../src/prefect/connector.ts';
import { prefectGuardActions } from '../src/prefect/guard.ts';
import { PrefectWatcher } from '../src/maintenance/prefect-watch.ts';
import { listOpenWatchedRuns } from '../src/queries/prefect.ts';
import { NotFoundError, PermanentError } from '../src/errors.ts';
import type { FlowInputRaw } from '../src/flows/spec.ts';
import { requireFlow, type FlowRow } from '../src/queries/flows.ts';
import { evaluateFlowHealth } from '../src/guard/health.ts';
import { loadConfig } from '../src/config.ts';


let app: TestApp;
let fake: FakePrefect;
let connector: PrefectConnector;
const extraFakes: FakePrefect[] = [];

before(async () => {
  fake = await startFakePrefect({ auth: 'basic', csrf: true });
  app = await startTestApp({
    config: {
      httpTimeoutMs: 2000,
      prefect: { apiUrl: fake.apiUrl, apiKey: undefined, authString: fake.authString, pollIntervalSeconds: 0.05 },
    },
  });
  assert.ok(app.prefect);
  connector = app.prefect.connector;
});
after(async () => {
  await app.close();
  await fake.close();
  for (const f of extraFakes) await f.close();
});

async function otherFake(opts: Parameters<typeof startFakePrefect>[0]): Promise<FakePrefect> {
  const f = await startFakePrefect(opts);
  extraFakes.push(f);
  return f;
}

/** A connector, guard actions and watcher over the shared database, for another fake/client. */
function wire(client: PrefectClient) {
  const c = createPrefectConnector({ client, config: app.config, log: silentLogger });
  return {
    connector: c,
    actions: prefectGuardActions(c, { pool: app.pool, log: silentLogger, transitions: app.deps.transitions }),
    watcher: (opts: ConstructorParameters<typeof PrefectWatcher>[1] = {}) => new PrefectWatcher({ pool: app.pool, boss: app.boss, transitions: app.deps.transitions, log: silentLogger, connector: c }, opts),
  };
}

const flow = (def: FlowInputRaw): Promise<FlowRow> => upsertFlow(app, def);

async function ours(flowId: string, externalId: string): Promise<RunRow> {
  const { rows } = await app.pool.query<{ id: string }>(`select id from flowwarden.runs where external_id = $1 and flow_id = $2`, [externalId, flowId]);
  assert.ok(rows[0], `flow run ${externalId} imported`);
  const r = await getRun(app.pool, rows[0].id);
  assert.ok(r);
  return r;
}

const scheduleFields = (s: FakeSchedule) => ({ id: s.id, schedule: s.schedule, active: s.active, max_scheduled_runs: s.max_scheduled_runs, parameters: s.parameters, slug: s.slug });
const guard = () => app.deps.guardActions.actions.find((a) => a.name === 'prefect')!;

describe('1. schedule switch-off keeps parameters', () => {
  test('a guard disable → reactivate round trip on a watched flow with two parameterised schedules leaves every schedule field as it was', async () => {
    const fake = await otherFake({ auth: 'bearer' }); // Prefect Cloud style, so only the schedule behaviour is under test
    const w = wire(createPrefectClient({ apiUrl: fake.apiUrl, apiKey: fake.apiKey }));
    const guard = () => w.actions;
    const dep = fake.addDeployment({
      flowName: 'fid-roundtrip',
      name: 'prod',
      schedules: [
        { slug: 'hourly', schedule: { interval: 3600 }, parameters: { region: 'eu', full: false }, maxScheduledRuns: 5 },
        { slug: 'nightly', schedule: { cron: '0 2 * * *', timezone: 'Europe/Berlin', day_or: true }, parameters: { region: 'us', full: true } },
      ],
    });
    const f = await flow({ name: 'fid-roundtrip', target: { type: 'prefect', deployment: 'fid-roundtrip/prod', watch: true } });
    const before = dep.schedules.map(scheduleFields);
    const now = Date.now();
    const pastDue = dep.schedules.map((s, i) =>
      fake.addFlowRun(dep.id, { expectedStartTime: new Date(now - 600_000 + i * 1000), state: { type: 'SCHEDULED', name: 'Late' }, scheduleId: s.id }),
    );
    const future = dep.schedules.map((s, i) => fake.addFlowRun(dep.id, { expectedStartTime: new Date(now + 3_600_000 + i * 1000), scheduleId: s.id }));
    const watcher = w.watcher();
    await watcher.runOnce();
    for (const fr of pastDue) assert.equal((await ours(f.id, fr.id)).stateName, 'Late');

    await guard().onDisable!(await requireFlow(app.pool, 'fid-roundtrip'), 'three failures in a row');
    assert.deepEqual(dep.schedules.map((s) => s.active), [false, false]);
    assert.deepEqual(dep.schedules.map((s) => s.parameters), before.map((s) => s.parameters), 'parameters survive the switch-off');
    for (const fr of future) assert.ok(!fake.state.flowRuns.has(fr.id), 'future runs deleted by Prefect');
    for (const fr of pastDue) assert.equal(fake.state.flowRuns.get(fr.id)?.state_type, 'CANCELLED', 'past-due runs cancelled by the guard');
    await watcher.runOnce();
    for (const fr of pastDue) assert.equal((await ours(f.id, fr.id)).stateType, 'CANCELLED');
    assert.ok(!(await listOpenWatchedRuns(app.pool, 10_000)).some((o) => pastDue.some((fr) => fr.id === o.externalId)), 'no imported run left open');

    await guard().onReactivate!(await requireFlow(app.pool, 'fid-roundtrip'), 'ops');
    assert.deepEqual(dep.schedules.map(scheduleFields), before, 'every schedule field as it was');
    const patches = fake.requestsTo('PATCH /deployments/:id/schedules/:id').filter((r) => r.path.includes(dep.id));
    assert.equal(patches.length, 4);
    assert.ok(patches.every((r) => r.status === 204));
  });
});

describe('2. self-hosted auth', () => {
  test('PREFECT_API_AUTH_STRING is sent as Basic (what PREFECT_SERVER_API_AUTH_STRING expects), PREFECT_API_KEY as Bearer; a mismatch is a clear permanent error', async () => {
    const config = loadConfig({ PREFECT_API_URL: fake.apiUrl, PREFECT_API_AUTH_STRING: fake.authString });
    assert.equal(config.prefect.authString, fake.authString);
    const basic = createPrefectClient({ apiUrl: fake.apiUrl, authString: fake.authString });
    const dep = fake.addDeployment({ flowName: 'fid-auth', name: 'prod' });
    assert.equal((await basic.readDeployment(dep.id)).id, dep.id);
    assert.equal(fake.state.requests.at(-1)?.authScheme, 'Basic');

    const bearer = createPrefectClient({ apiUrl: fake.apiUrl, apiKey: 'pnu_not_for_this_server' });
    const err = await basic.readDeployment(dep.id).then(() => undefined, (e: unknown) => e);
    assert.equal(err, undefined);
    const rejected = await bearer.readDeployment(dep.id).then(() => undefined, (e: unknown) => e);
    assert.ok(rejected instanceof PermanentError);
    assert.match(rejected.message, /401 the PREFECT_API_KEY was rejected/);
    assert.doesNotMatch(rejected.message, /pnu_not_for_this_server/);

    const wrong = 'admin:not-the-password';
    const denied = await createPrefectClient({ apiUrl: fake.apiUrl, authString: wrong }).readDeployment(dep.id).then(() => undefined, (e: unknown) => e);
    assert.ok(denied instanceof PermanentError);
    assert.match(denied.message, /401 the PREFECT_API_AUTH_STRING was rejected/);
    for (const secret of [wrong, Buffer.from(wrong).toString('base64')]) assert.ok(!denied.message.includes(secret) && !(denied.stack ?? '').includes(secret));

    const cloud = await otherFake({ auth: 'bearer' });
    const d2 = cloud.addDeployment({ flowName: 'fid-auth', name: 'cloud' });
    await createPrefectClient({ apiUrl: cloud.apiUrl, apiKey: cloud.apiKey }).readDeployment(d2.id);
    assert.equal(cloud.state.requests.at(-1)?.authScheme, 'Bearer');
    // The app built from config (PREFECT_API_AUTH_STRING) talks Basic, with CSRF tokens.
    const held = fake.addDeployment({ flowName: 'fid-auth-app', name: 'prod', schedules: [{ parameters: { x: 1 } }] });
    await flow({ name: 'fid-auth-app', target: { type: 'prefect', deployment: 'fid-auth-app/prod', watch: true } });
    await guard().onDisable!(await requireFlow(app.pool, 'fid-auth-app'), 'test');
    const patch = fake.requestsTo('PATCH /deployments/:id/schedules/:id').find((r) => r.path.includes(held.id));
    assert.ok(patch && patch.status === 204 && patch.authScheme === 'Basic' && patch.csrf);

    const open = await otherFake({ auth: 'none' });
    const d3 = open.addDeployment({ flowName: 'fid-auth', name: 'open' });
    await createPrefectClient({ apiUrl: open.apiUrl }).readDeployment(d3.id);
    assert.equal(open.state.requests.at(-1)?.authScheme, null);
  });
});

describe('3. CSRF protection', () => {
  test('change requests carry a token from /csrf-token, refreshed on "Invalid CSRF token"; a server without CSRF is asked once; a 403 is not called a bad key', async () => {
    const fake = await otherFake({ auth: 'none', csrf: true }); // CSRF alone under test
    const client = createPrefectClient({ apiUrl: fake.apiUrl });
    const dep = fake.addDeployment({ flowName: 'fid-csrf', name: 'prod' });
    const run = fake.addFlowRun(dep.id);
    assert.equal((await client.filterFlowRuns({ flowRunIds: [run.id], limit: 10 })).length, 1, 'the read-only /flow_runs/filter is a POST too');
    fake.expireCsrfTokens();
    assert.equal((await client.filterFlowRuns({ flowRunIds: [run.id], limit: 10 })).length, 1, 'a new token after "Invalid CSRF token"');
    const tokens = fake.requestsTo('GET /csrf-token').length;
    assert.ok(tokens >= 2);

    const noCsrf = createPrefectClient({ apiUrl: fake.apiUrl, csrf: false });
    const err = await noCsrf.filterFlowRuns({ limit: 1 }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof PermanentError);
    assert.match(err.message, /403 Missing CSRF token\..*CSRF protection/);
    assert.doesNotMatch(err.message, /API key/);

    const off = await otherFake({ auth: 'none' });
    const offClient = createPrefectClient({ apiUrl: off.apiUrl });
    await offClient.filterFlowRuns({ limit: 1 });
    await offClient.filterFlowRuns({ limit: 1 });
    assert.equal(off.requestsTo('GET /csrf-token').length, 1, '422 "CSRF protection is disabled." once, then no more asking');
  });
});

describe('4. past-due runs survive a schedule switch-off', () => {
  test('disabling a watched flow cancels its Late run through set_state, recorded in our history; nothing stays open', async () => {
    const fake = await otherFake({ auth: 'bearer' });
    const c = createPrefectClient({ apiUrl: fake.apiUrl, apiKey: fake.apiKey });
    const w = wire(c);
    const guard = () => w.actions;
    const dep = fake.addDeployment({ flowName: 'fid-late', name: 'prod', schedules: [{ slug: 'every-5m', schedule: { interval: 300 } }] });
    const f = await flow({ name: 'fid-late', target: { type: 'prefect', deployment: 'fid-late/prod', watch: true } });
    const late = fake.addFlowRun(dep.id, { expectedStartTime: new Date(Date.now() - 900_000), state: { type: 'SCHEDULED', name: 'Late' }, scheduleId: dep.schedules[0]!.id });
    await w.watcher().runOnce();

    // What the real server does on the PATCH alone: the past-due run stays Scheduled/Late.
    const [s] = await c.listDeploymentSchedules(dep.id);
    await c.setDeploymentScheduleActive(dep.id, s!, false);
    assert.equal(fake.state.flowRuns.get(late.id)?.state_name, 'Late', 'Prefect keeps past-due runs');
    await c.setDeploymentScheduleActive(dep.id, s!, true);

    await guard().onDisable!(await requireFlow(app.pool, 'fid-late'), 'late three times');
    assert.equal(fake.state.flowRuns.get(late.id)?.state_type, 'CANCELLED');
    assert.match(fake.state.flowRuns.get(late.id)?.state.message ?? '', /disabled by the guard \(late three times\)/);
    assert.equal(fake.requestsTo('POST /flow_runs/:id/set_state').filter((r) => r.path.includes(late.id)).length, 1);
    const r = await ours(f.id, late.id);
    assert.deepEqual((await runHistory(app.pool, r.id)).map((h) => `${h.toType}/${h.toName}`), ['SCHEDULED/Scheduled', 'SCHEDULED/Late', 'CANCELLED/Cancelled']);
    assert.ok(!(await listOpenWatchedRuns(app.pool, 10_000)).some((o) => o.flowId === f.id));
  });
});

describe('5. task-run names and late task runs', () => {
  test('a critical task is matched by its name (run_dbt-3fa → run_dbt), also when Prefect records it after the flow run finished', async () => {
    const fake = await otherFake({ auth: 'bearer' });
    const w = wire(createPrefectClient({ apiUrl: fake.apiUrl, apiKey: fake.apiKey }));
    const dep = fake.addDeployment({ flowName: 'fid-tasks', name: 'prod' });
    const f = await flow({
      name: 'fid-tasks',
      target: { type: 'prefect', deployment: 'fid-tasks/prod', watch: true },
      health: { criticalTasks: ['run_dbt'], maxConsecutiveFailures: 10 },
    });
    const done = fake.addFlowRun(dep.id, { state: { type: 'COMPLETED' } });
    const custom = fake.addTaskRun(done.id, { name: 'extract', runName: 'extract-orders', state: { type: 'COMPLETED' } });
    const lateTask = fake.addTaskRun(done.id, { name: 'run_dbt', state: { type: 'FAILED', message: 'dbt exploded' }, delayed: true });
    assert.match(lateTask.name, /^run_dbt-[0-9a-f]{3}$/);
    const watcher = w.watcher();
    await watcher.runOnce();
    const r = await ours(f.id, done.id);
    assert.equal(r.stateType, 'COMPLETED');
    assert.deepEqual((await runTasks(app.pool, r.id)).map((t) => t.name), [custom.name], 'a custom task_run_name is kept as is');
    assert.equal((await evaluateFlowHealth(app.deps, f.id)).action, 'none');

    fake.flushTaskRuns(); // Prefect's event pipeline catches up
    const pass = await watcher.runOnce();
    assert.equal(pass.lateTasks, 1);
    assert.deepEqual((await runTasks(app.pool, r.id)).map((t) => [t.name, t.stateType]).sort(), [[custom.name, 'COMPLETED'], ['run_dbt', 'FAILED']]);
    assert.equal((await watcher.runOnce()).lateTasks, 0, 'recorded once');
    const outcome = await evaluateFlowHealth(app.deps, f.id);
    assert.equal('verdict' in outcome ? outcome.verdict.rule : outcome.action, 'critical_task');
  });
});

describe('6. smaller mismatches', () => {
  test('a lower page cap is adopted, ids are normalised, a parameter-schema 409 fails the run with Prefect’s message, pause/resume answer 200 null', async () => {
    const capped = await otherFake({ auth: 'none', defaultLimit: 50 });
    const client = createPrefectClient({ apiUrl: capped.apiUrl });
    const dep = capped.addDeployment({ flowName: 'fid-cap', name: 'prod' });
    const start = Date.now() - 3_000_000;
    for (let i = 0; i < 120; i++) capped.addFlowRun(dep.id, { expectedStartTime: new Date(start + i * 1000), scheduleId: dep.schedules[0]!.id });
    const w = wire(client);
    const f = await flow({ name: 'fid-cap', target: { type: 'prefect', deployment: dep.id.toUpperCase().replace(/-/g, ''), watch: true } });
    const pass = await w.watcher().runOnce();
    // (This watcher sees every watched flow in the database; only fid-cap's deployment is on this fake.)
    assert.deepEqual(pass.errors.filter((e) => e.startsWith('fid-cap')), []);
    assert.equal(client.pageLimit, 50);
    const { rows } = await app.pool.query<{ n: number }>(`select count(*)::int as n from flowwarden.runs where flow_id = $1`, [f.id]);
    assert.equal(rows[0]!.n, 120);
    assert.ok(capped.state.requests.every((r) => !/[A-F]/.test(r.path)), 'ids sent lowercase and hyphenated');

    await client.pauseDeployment(dep.id);
    await client.resumeDeployment(dep.id);
    assert.deepEqual(capped.requestsTo(/_deployment$/).map((r) => r.status), [200, 200]);

    const strict = fake.addDeployment({ flowName: 'fid-schema', name: 'prod', parameterSchema: { required: ['date'], properties: { date: { type: 'string' } } } });
    await flow({ name: 'fid-schema', target: { type: 'prefect', deployment: strict.id } });
    const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, 'fid-schema', { date: 20260101 }));
    const job = { id: runId, name: QUEUES.dispatch, data: { runId }, retryCount: 0, retryLimit: 5, signal: new AbortController().signal } as unknown as JobWithMetadata<{ runId: string }>;
    await dispatchWorker.handle(app.deps, job, silentLogger).catch(() => undefined);
    const r = await getRun(app.pool, runId);
    assert.equal(r?.stateType, 'FAILED');
    assert.match(r?.stateMessage ?? '', /conflict \(409\).*is not of type 'string'/);
  });
});

describe('7. bookkeeping never fails a completed run', () => {
  test('with a lower cap, or a task read failing, a COMPLETED flow run is recorded COMPLETED and its tasks are read later', async () => {
    const capped = await otherFake({ auth: 'none', defaultLimit: 100 });
    const client = createPrefectClient({ apiUrl: capped.apiUrl });
    const w = wire(client);
    usePrefect(app, w.connector);
    try {
      capped.addDeployment({ flowName: 'fid-book', name: 'prod', runScript: [{ type: 'COMPLETED', message: 'All states completed.' }] });
      const f = await flow({ name: 'fid-book', target: { type: 'prefect', deployment: 'fid-book/prod' }, health: { criticalTasks: ['run_dbt'] } });
      const dispatchAndPoll = async () => {
        const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, 'fid-book', {}));
        await dispatchWorker.handle(app.deps, { id: runId, name: QUEUES.dispatch, data: { runId }, retryCount: 0, retryLimit: 5, signal: new AbortController().signal } as unknown as JobWithMetadata<{ runId: string }>, silentLogger);
        const fr = (await getRun(app.pool, runId))!.externalId!;
        return { runId, fr };
      };
      const poll = (runId: string, lastAttempt: boolean) => w.connector.poll(app.deps, { runId, polls: 0 }, { log: silentLogger, lastAttempt });

      // A lower cap: the task read adapts.
      const a = await dispatchAndPoll();
      capped.addTaskRun(a.fr, { name: 'run_dbt', state: { type: 'COMPLETED' } });
      assert.deepEqual(await poll(a.runId, true), { kind: 'finished', state: 'COMPLETED' });
      assert.equal((await getRun(app.pool, a.runId))?.stateType, 'COMPLETED');
      assert.deepEqual((await runTasks(app.pool, a.runId)).map((t) => t.name), ['run_dbt']);

      // The task read fails (5xx) on the last attempt: still COMPLETED; the next watch pass reads it.
      const b = await dispatchAndPoll();
      capped.addTaskRun(b.fr, { name: 'run_dbt', state: { type: 'FAILED', message: 'late failure' } });
      capped.failNext('POST /task_runs/filter', '500', 1);
      assert.deepEqual(await poll(b.runId, true), { kind: 'finished', state: 'COMPLETED' });
      const rb = await getRun(app.pool, b.runId);
      assert.equal(rb?.stateType, 'COMPLETED');
      assert.match(rb?.stateMessage ?? '', /task results not read yet/);
      assert.equal((await w.watcher().runOnce()).lateTasks, 1);
      assert.deepEqual((await runTasks(app.pool, b.runId)).map((t) => [t.name, t.stateType]), [['run_dbt', 'FAILED']]);
      const outcome = await evaluateFlowHealth(app.deps, f.id);
      assert.equal('verdict' in outcome ? outcome.verdict.rule : outcome.action, 'critical_task');
    } finally {
      usePrefect(app, connector);
    }
  });
});

describe('8. settings', () => {
  test('page size, poll interval, watch interval and lookback, task grace come from the environment; a flow may set its own lookback', async () => {
    const c = loadConfig({
      PREFECT_API_URL: 'http://prefect:4200/api',
      FLOWWARDEN_PREFECT_PAGE_SIZE: '50',
      FLOWWARDEN_PREFECT_POLL_INTERVAL_SECONDS: '2.5',
      FLOWWARDEN_PREFECT_WATCH_INTERVAL_SECONDS: '30',
      FLOWWARDEN_PREFECT_WATCH_LOOKBACK_SECONDS: '3600',
      FLOWWARDEN_PREFECT_TASK_GRACE_SECONDS: '60',
      PREFECT_CLIENT_CSRF_SUPPORT_ENABLED: 'false',
    });
    assert.deepEqual(
      [c.prefect.pageSize, c.prefect.pollIntervalSeconds, c.prefect.watchIntervalSeconds, c.prefect.watchLookbackSeconds, c.prefect.taskGraceSeconds, c.prefect.csrf],
      [50, 2.5, 30, 3600, 60, false],
    );
    assert.throws(() => loadConfig({ FLOWWARDEN_PREFECT_PAGE_SIZE: '0' }), /FLOWWARDEN_PREFECT_PAGE_SIZE/);

    const dep = fake.addDeployment({ flowName: 'fid-lookback', name: 'prod' });
    const old = fake.addFlowRun(dep.id, { expectedStartTime: new Date(Date.now() - 1_800_000), scheduleId: dep.schedules[0]!.id });
    const recent = fake.addFlowRun(dep.id, { expectedStartTime: new Date(Date.now() - 60_000), scheduleId: dep.schedules[0]!.id });
    const f = await flow({ name: 'fid-lookback', target: { type: 'prefect', deployment: 'fid-lookback/prod', watch: true, watchLookbackSeconds: 600 } });
    await new PrefectWatcher({ pool: app.pool, boss: app.boss, transitions: app.deps.transitions, log: silentLogger, connector }).runOnce();
    const { rows } = await app.pool.query<{ externalId: string }>(`select external_id as "externalId" from flowwarden.runs where flow_id = $1`, [f.id]);
    assert.deepEqual(rows.map((r) => r.externalId), [recent.id], `the run from 30 minutes ago (${old.id}) is before the flow's 10-minute lookback`);
  });
});

describe('9. the fake is as strict as Prefect', () => {
  test('bodies, limits, uuid paths, PATCH reset, 200/null pause, set_state shape, auth and CSRF answers', async () => {
    const f = await otherFake({ auth: 'none', defaultLimit: 200 });
    const dep = f.addDeployment({ flowName: 'fid-fake', name: 'prod', schedules: [{ parameters: { a: 1 } }] });
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${f.apiUrl}${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      const text = await res.text();
      return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
    };
    const sched = dep.schedules[0]!;
    assert.equal((await call('PATCH', `/deployments/${dep.id}/schedules/${sched.id}`, { active: false, nope: 1 })).status, 422);
    assert.equal((await call('PATCH', `/deployments/${dep.id}/schedules/${sched.id}`, { active: false })).status, 204);
    assert.deepEqual(sched.parameters, {}, 'DeploymentScheduleUpdate.parameters defaults to {} and is written');
    assert.equal((await call('PATCH', `/deployments/${dep.id.toUpperCase()}/schedules/${sched.id}`, { active: true })).status, 404);
    // A PATCH or a create without a body is a 422 (FastAPI `missing`), never read as {}.
    const noBody = await call('PATCH', `/deployments/${dep.id}/schedules/${sched.id}`);
    assert.equal(noBody.status, 422);
    assert.deepEqual((noBody.body as { exception_detail: unknown[] }).exception_detail, [{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }]);
    assert.equal((await call('POST', `/deployments/${dep.id}/create_flow_run`)).status, 422);
    assert.equal((await call('POST', `/deployments/${dep.id}/create_flow_run`, { name: null })).status, 422, 'name is str: null is refused');
    assert.equal((await call('PATCH', `/deployments/${dep.id}/schedules/${sched.id}`, { max_scheduled_runs: 51 })).status, 422, 'at most 50 by default');
    assert.deepEqual(await call('GET', `/deployments/${dep.id.replace(/-/g, '')}`), { status: 404, body: { detail: 'Not Found' } });
    assert.deepEqual(await call('POST', '/flow_runs/filter', { limit: 201 }), { status: 422, body: { detail: 'Invalid limit: must be less than or equal to 200.' } });
    assert.deepEqual(await call('POST', `/deployments/${dep.id}/pause_deployment`), { status: 200, body: null });
    const run = f.addFlowRun(dep.id);
    assert.equal((await call('POST', `/flow_runs/${run.id}/set_state`, { state: { type: 'CANCELLED' }, force: false, extra: 1 })).status, 422);
    const set = await call('POST', `/flow_runs/${run.id}/set_state`, { state: { type: 'CANCELLED', message: 'bye' } });
    assert.equal(set.status, 201);
    assert.equal((set.body as { status: string }).status, 'ACCEPT');
    assert.equal(((await call('POST', `/flow_runs/${run.id}/set_state`, { state: { type: 'PENDING' } })).body as { status: string }).status, 'REJECT');
    assert.deepEqual(await call('GET', '/csrf-token?client=x'), { status: 422, body: { detail: 'CSRF protection is disabled.' } });

    const basic = await otherFake({ auth: 'basic' });
    const res = await fetch(`${basic.apiUrl}/deployments/${crypto.randomUUID()}`, { headers: { authorization: `Bearer ${basic.authString}` } });
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), { exception_message: 'Unauthorized' });
    const csrf = await otherFake({ auth: 'none', csrf: true });
    const denied = await fetch(`${csrf.apiUrl}/flow_runs/filter`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(denied.status, 403);
    assert.deepEqual(await denied.json(), { detail: 'Missing CSRF token.' });
    const notFound = await createPrefectClient({ apiUrl: f.apiUrl }).readFlowRun(crypto.randomUUID()).then(() => undefined, (e: unknown) => e);
    assert.ok(notFound instanceof NotFoundError);
  });
});
