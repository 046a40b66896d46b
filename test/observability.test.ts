import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startTestApp, TEST_ADMIN_TOKEN, TEST_READ_TOKEN, type TestApp, fetchDispatchJob } from './support/app.ts';
import { runCli } from './support/cli.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { dispatchWorker } from '../src/dispatch/worker.ts';
import { QUEUES } from '../src/queue/catalog.ts';
import { silentLogger } from '../src/log.ts';
import { Metrics } from '../src/metrics.ts';

let app: TestApp;

before(async () => {
  app = await startTestApp();
  await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'obs-noop', target: { type: 'function', handler: 'noop' } }));
  await withTransaction(app.pool, (tx) =>
    upsertFlowTx(tx, { name: 'obs-scheduled', target: { type: 'function', handler: 'noop' }, schedules: [{ name: 'hourly', cron: '0 * * * *' }] }),
  );
  await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'obs-flaky', target: { type: 'function', handler: 'fail' } }));
});
after(async () => {
  await app.close();
});

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

async function trigger(flow: string, scheduledFor?: Date): Promise<string> {
  const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, flow, {}, { scheduledFor }));
  return runId;
}

const fetchJob = (runId: string) => fetchDispatchJob(app, runId);

async function row<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T | undefined> {
  return (await app.pool.query<T>(sql, params)).rows[0];
}

/** One sample's value from Prometheus text, e.g. sample(text, 'flowwarden_runs', { state_type: 'SCHEDULED' }). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name} `) && !line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('SQL views', () => {
  test('v_open_runs joins a run to its dispatch job state, and v_queue_depth counts ready and deferred jobs', async () => {
    const later = await trigger('obs-noop', new Date(Date.now() + 3_600_000));
    const now = await trigger('obs-noop');
    const depth = await row<{ queued: number; ready: number; deferred: number; oldest_ready_age_seconds: string }>(
      `select queued::int, ready::int, deferred::int, oldest_ready_age_seconds from flowwarden.v_queue_depth where queue = $1`,
      [QUEUES.dispatch],
    );
    assert.ok(depth, 'fw.dispatch is listed');
    assert.ok(depth.ready >= 1 && depth.deferred >= 1, JSON.stringify(depth));
    assert.equal(depth.queued, depth.ready + depth.deferred);
    assert.ok(Number(depth.oldest_ready_age_seconds) >= 0);

    const deferred = await row<{ job_state: string; state_name: string }>(`select job_state, state_name from flowwarden.v_open_runs where run_id = $1`, [later]);
    assert.deepEqual(deferred, { job_state: 'created', state_name: 'Scheduled' });
    const job = await fetchJob(now);
    const open = await row<{ state_type: string; job_state: string; flow: string }>(`select state_type, job_state, flow from flowwarden.v_open_runs where run_id = $1`, [now]);
    assert.deepEqual(open, { state_type: 'SCHEDULED', job_state: 'active', flow: 'obs-noop' });

    await dispatchWorker.handle(app.deps, job, silentLogger);
    assert.equal(await row(`select 1 from flowwarden.v_open_runs where run_id = $1`, [now]), undefined, 'a completed run is not open');
  });

  test('v_due_schedules lists enabled schedules with their next fire', async () => {
    const due = await row<{ schedule: string; spec: string; next_run_at: Date; overdue: boolean }>(
      `select schedule, spec, next_run_at, overdue from flowwarden.v_due_schedules where flow = 'obs-scheduled'`,
    );
    assert.equal(due?.schedule, 'hourly');
    assert.equal(due?.spec, '0 * * * *');
    assert.ok(due?.next_run_at instanceof Date && due.next_run_at.getTime() > Date.now() - 1000);
    assert.equal(due?.overdue, false);
  });

  test('v_flow_health counts failures since the last success and within valid_since only', async () => {
    const flow = (await row<{ id: string; valid_since: Date }>(`select id, valid_since from flowwarden.flows where name = 'obs-flaky'`))!;
    const insert = (state: string, minutesAgo: number) =>
      app.pool.query(
        `insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, origin, created_at, ended_at)
         values ($1, now() - make_interval(mins => $2), $3, initcap($3), 'manual', now() - make_interval(mins => $2), now() - make_interval(mins => $2))`,
        [flow.id, minutesAgo, state],
      );
    // Older than valid_since: ignored. Then a success, then two failures and a cancellation (neither counts nor resets).
    await app.pool.query(`update flowwarden.flows set valid_since = now() - interval '30 minutes' where id = $1`, [flow.id]);
    await insert('FAILED', 40);
    await insert('COMPLETED', 20);
    await insert('FAILED', 10);
    await insert('CANCELLED', 8);
    await insert('CRASHED', 5);
    const health = await row<{ consecutive_failures: number; last_state_type: string; disabled: boolean }>(
      `select consecutive_failures::int, last_state_type, disabled from flowwarden.v_flow_health where flow = 'obs-flaky'`,
    );
    assert.deepEqual(health, { consecutive_failures: 2, last_state_type: 'CRASHED', disabled: false });
  });
});

describe('GET /api/queues and flowwarden queues', () => {
  test('the API lists every queue for a read token and refuses without one', async () => {
    const res = await app.api!.inject({ url: '/api/queues', headers: auth(TEST_READ_TOKEN) });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json<{ items: Array<{ queue: string; queued: number; active: number; failed: number; oldestReadyAgeSeconds: number }>; nextCursor: string | null }>();
    assert.equal(body.nextCursor, null, 'every queue fits the default page');
    const names = body.items.map((q) => q.queue);
    for (const q of Object.values(QUEUES)) assert.ok(names.includes(q), `${q} listed`);
    const d = body.items.find((q) => q.queue === QUEUES.dispatch)!;
    assert.equal(typeof d.queued, 'number');
    assert.equal(typeof d.oldestReadyAgeSeconds, 'number');
    assert.equal((await app.api!.inject({ url: '/api/queues' })).statusCode, 401);
  });

  test('the CLI prints the same numbers as JSON and as a table', async () => {
    const json = await runCli(['queues', '--json'], { DATABASE_URL: app.db.url });
    assert.equal(json.code, 0, json.stderr);
    const queues = JSON.parse(json.stdout) as Array<{ queue: string; queued: number; ready: number; deferred: number }>;
    const d = queues.find((q) => q.queue === QUEUES.dispatch);
    assert.ok(d && d.queued === d.ready + d.deferred, json.stdout);
    const table = await runCli(['queues'], { DATABASE_URL: app.db.url });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /QUEUE\s+QUEUED\s+READY\s+DEFERRED\s+RETRY\s+ACTIVE\s+FAILED\s+OLDEST/);
    assert.match(table.stdout, /fw\.dispatch\s+\d+/);
  });
});

/** The pod's /metrics text. */
const scrape = async () => (await app.api!.inject({ url: '/metrics' })).body;

describe('/metrics', () => {
  test('exposes cluster-wide gauges from Postgres and the fire lag and dispatch duration of dispatched runs', async () => {
    const before = await scrape();
    const count = (text: string, name: string, labels: Record<string, string>) => sample(text, name, labels) ?? 0;
    // Four runs, due 5 s ago, dispatched together (one group claim, one group-committed outcome batch).
    const runIds: string[] = [];
    for (let i = 0; i < 4; i++) runIds.push(await trigger('obs-noop', new Date(Date.now() - 5000)));
    const jobs = [];
    for (const id of runIds) jobs.push(await fetchJob(id));
    await Promise.all(jobs.map((job) => dispatchWorker.handle(app.deps, job, silentLogger)));
    await trigger('obs-noop', new Date(Date.now() + 3_600_000));
    const res = await app.api!.inject({ url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /text\/plain/);
    const text = res.body;
    assert.equal(sample(text, 'flowwarden_db_up'), 1);
    assert.ok((sample(text, 'flowwarden_runs', { state_type: 'SCHEDULED', state_name: 'Scheduled' }) ?? 0) >= 1);
    assert.equal(sample(text, 'flowwarden_flows_disabled'), 0);
    assert.ok(sample(text, 'flowwarden_queue_jobs', { queue: QUEUES.dispatch, state: 'deferred' })! >= 1);
    assert.notEqual(sample(text, 'flowwarden_queue_oldest_ready_seconds', { queue: QUEUES.dispatch }), undefined);
    const lag = { target: 'function' };
    assert.equal(count(text, 'flowwarden_fire_lag_seconds_count', lag) - count(before, 'flowwarden_fire_lag_seconds_count', lag), 4, text);
    // Every run was due 5 s ago: each lag lands above the 2 s bucket.
    const le2 = { target: 'function', le: '2' };
    assert.equal(count(text, 'flowwarden_fire_lag_seconds_bucket', le2) - count(before, 'flowwarden_fire_lag_seconds_bucket', le2), 0, text);
    const done = { target: 'function', outcome: 'completed' };
    assert.equal(count(text, 'flowwarden_dispatch_duration_seconds_count', done) - count(before, 'flowwarden_dispatch_duration_seconds_count', done), 4, text);
    assert.match(text, /^process_cpu_user_seconds_total /m);
  });

  test('run transitions are counted by new state type, whichever path finished the run', async () => {
    const transitions = (text: string, stateType: string) => sample(text, 'flowwarden_run_transitions_total', { state_type: stateType }) ?? 0;
    const before = await scrape();
    // Dispatch: two runs complete, one fails (the built-in fail handler).
    const ok = [await trigger('obs-noop'), await trigger('obs-noop')];
    const bad = await trigger('obs-flaky');
    for (const id of [...ok, bad]) await dispatchWorker.handle(app.deps, await fetchJob(id), silentLogger);
    // An async report through the API, and a cancel through the API.
    const reported = await trigger('obs-noop', new Date(Date.now() + 3_600_000));
    const report = await app.api!.inject({ method: 'POST', url: `/api/runs/${reported}/state`, headers: auth(TEST_ADMIN_TOKEN), payload: { state: 'CRASHED', message: 'reported' } });
    assert.equal(report.statusCode, 200, report.body);
    const cancelled = await trigger('obs-noop', new Date(Date.now() + 3_600_000));
    const cancel = await app.api!.inject({ method: 'POST', url: `/api/runs/${cancelled}/cancel`, headers: auth(TEST_ADMIN_TOKEN), payload: {} });
    assert.equal(cancel.statusCode, 200, cancel.body);
    // A transition that is refused (the run is terminal) and rolled back counts nothing.
    const refused = await app.api!.inject({ method: 'POST', url: `/api/runs/${cancelled}/state`, headers: auth(TEST_ADMIN_TOKEN), payload: { state: 'COMPLETED' } });
    assert.equal(refused.statusCode, 409);

    const after = await scrape();
    const delta = (t: string) => transitions(after, t) - transitions(before, t);
    assert.equal(delta('COMPLETED'), 2, after);
    assert.equal(delta('FAILED'), 1, after);
    assert.equal(delta('CRASHED'), 1, after);
    assert.equal(delta('CANCELLED'), 1, after);
    assert.equal(delta('PENDING'), 3, 'one claim per dispatched run');
    assert.equal(delta('RUNNING'), 3, 'function runs go RUNNING before their handler');
    const { rows } = await app.pool.query<{ t: string }>(`select state_type as t from flowwarden.runs where id = any($1::uuid[]) order by state_type`, [[...ok, bad, reported, cancelled]]);
    assert.deepEqual(rows.map((r) => r.t), ['CANCELLED', 'COMPLETED', 'COMPLETED', 'CRASHED', 'FAILED']);
  });

  test('components count notifications through deps.metrics; each app has its own registry', async () => {
    app.deps.metrics.notificationDelivered('discord');
    app.deps.metrics.notificationFailed('discord', true);
    const other = new Metrics({ defaultMetrics: false });
    other.notificationDelivered('slack');
    const text = (await app.api!.inject({ url: '/metrics' })).body;
    assert.equal(sample(text, 'flowwarden_notifications_delivered_total', { channel_kind: 'discord' }), 1);
    assert.equal(sample(text, 'flowwarden_notification_failures_total', { channel_kind: 'discord', permanent: 'true' }), 1);
    assert.equal(sample(text, 'flowwarden_notifications_delivered_total', { channel_kind: 'slack' }), undefined);
  });
});

describe('/readyz', () => {
  test('503 while domain or pg-boss migrations are behind, 200 again once they are current', async () => {
    assert.equal((await app.api!.inject({ url: '/readyz' })).statusCode, 200);
    const last = (await row<{ id: number; hash: string; created_at: string }>(
      `select id, hash, created_at from flowwarden_migrations.__drizzle_migrations order by id desc limit 1`,
    ))!;
    await app.pool.query(`delete from flowwarden_migrations.__drizzle_migrations where id = $1`, [last.id]);
    try {
      const res = await app.api!.inject({ url: '/readyz' });
      assert.equal(res.statusCode, 503);
      assert.match(res.json().reason, /migrations behind/);
    } finally {
      await app.pool.query(`insert into flowwarden_migrations.__drizzle_migrations (id, hash, created_at) values ($1, $2, $3)`, [last.id, last.hash, last.created_at]);
    }
    await app.pool.query(`update flowwarden_queue.version set version = version - 1`);
    try {
      const res = await app.api!.inject({ url: '/readyz' });
      assert.equal(res.statusCode, 503);
      assert.match(res.json().reason, /pg-boss schema behind/);
    } finally {
      await app.pool.query(`update flowwarden_queue.version set version = version + 1`);
    }
    assert.equal((await app.api!.inject({ url: '/readyz' })).statusCode, 200);
  });

  test('503 while the database refuses connections, and /metrics reports db_up 0', async () => {
    const dbName = new URL(app.db.url).pathname.slice(1);
    const admin = new pg.Client({ connectionString: process.env.FW_TEST_ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`alter database ${dbName} allow_connections false`);
      await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`, [dbName]);
      const res = await app.api!.inject({ url: '/readyz' });
      assert.equal(res.statusCode, 503, res.body);
      assert.match(res.json().reason, /database unreachable/);
      const metrics = (await app.api!.inject({ url: '/metrics' })).body;
      assert.equal(sample(metrics, 'flowwarden_db_up'), 0);
      assert.equal(sample(metrics, 'flowwarden_runs'), undefined, 'no stale cluster-wide numbers');
    } finally {
      await admin.query(`alter database ${dbName} allow_connections true`);
      await admin.end();
    }
    const ok = await app.api!.inject({ url: '/readyz' });
    assert.equal(ok.statusCode, 200, ok.body);
  });

  test('503 as soon as the pod starts draining', async () => {
    const stopping = app.stop();
    const res = await app.api!.inject({ url: '/readyz', headers: auth(TEST_ADMIN_TOKEN) });
    assert.equal(res.statusCode, 503);
    assert.match(res.json().reason, /draining/);
    await stopping;
  });
});
