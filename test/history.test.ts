/**
 * Run history: the plain path records its moves on the run row (runs.implied), everything else in
 * run_state_history; runHistory, the API and `runs show` read the merged view flowwarden.run_history
 * and show what the history table alone showed before (docs/state-machine.md, "How history is stored").
 */
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { JobWithMetadata } from 'pg-boss';
import { startTestApp, TEST_HTTP_SECRET, TEST_READ_TOKEN, TEST_ADMIN_TOKEN, type TestApp, fetchDispatchJob } from './support/app.ts';
import { startFakeTarget, type FakeTarget } from './support/http-target.ts';
import { runCli } from './support/cli.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { dispatchWorker } from '../src/dispatch/worker.ts';
import { runHistory } from '../src/runs/read.ts';
import { runMarkLateMany } from '../src/runs/store.ts';
import { silentLogger } from '../src/log.ts';
import type { FlowInputRaw } from '../src/flows/spec.ts';

let app: TestApp;
let target: FakeTarget;

before(async () => {
  app = await startTestApp({ config: { httpTimeoutMs: 30_000 } });
  target = await startFakeTarget(TEST_HTTP_SECRET);
  app.registry.define('ok', () => ({ message: 'done' }));
  // Task results keep the completion off the fast path (it records COMPLETED without tasks only).
  app.registry.define('ok-with-tasks', () => ({ message: 'done', tasks: [{ name: 'load', stateType: 'COMPLETED' }] }));
});
after(async () => {
  await target.close();
  await app.close();
});

async function flow(def: FlowInputRaw): Promise<void> {
  await withTransaction(app.pool, (tx) => upsertFlowTx(tx, def));
}

async function trigger(flowName: string): Promise<string> {
  return (await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, flowName, {}))).runId;
}

/** The tick's first run of a flow with one every-second schedule (its fire time is `now`). */
async function scheduledRun(flowName: string, now: Date): Promise<string> {
  await app.pool.query(`update flowwarden.schedules s set next_run_at = $1, anchor = $1 from flowwarden.flows f where f.id = s.flow_id and f.name = $2`, [now, flowName]);
  await app.scheduler.runOnce({ now });
  const { rows } = await app.pool.query<{ id: string }>(
    `select r.id from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where f.name = $1 order by r.scheduled_for limit 1`,
    [flowName],
  );
  return rows[0]!.id;
}

const fetchJob = (runId: string) => fetchDispatchJob(app, runId);

const handle = (job: JobWithMetadata<{ runId: string }>) => dispatchWorker.handle(app.deps, job, silentLogger);

type Entry = [from: string, to: string, message: string | null];
const shown = (h: Array<{ fromType: string | null; fromName: string | null; toType: string; toName: string; message: string | null }>): Entry[] =>
  h.map((e) => [e.fromType ? `${e.fromType}/${e.fromName}` : '-', `${e.toType}/${e.toName}`, e.message]);

async function storage(runId: string): Promise<{ tableRows: number; viewRows: number; implied: number }> {
  const { rows } = await app.pool.query<{ tableRows: number; viewRows: number; implied: number }>(
    `select (select count(*)::int from flowwarden.run_state_history where run_id = $1) as "tableRows",
            (select count(*)::int from flowwarden.run_history where run_id = $1) as "viewRows",
            (select implied from flowwarden.runs where id = $1) as implied`,
    [runId],
  );
  return rows[0]!;
}

/** SCHEDULED → PENDING → RUNNING → COMPLETED of a schedule-made function run, as it was always written. */
const PLAIN_SCHEDULED: Entry[] = [
  ['-', 'SCHEDULED/Scheduled', 'created by schedule'],
  ['SCHEDULED/Scheduled', 'PENDING/Pending', 'dispatch attempt 1'],
  ['PENDING/Pending', 'RUNNING/Running', null],
  ['RUNNING/Running', 'COMPLETED/Completed', 'done'],
];

describe('run history', () => {
  test('a plain scheduled function run writes no history rows: its four moves are on the run row, at its own times', async () => {
    await flow({ name: 'h-plain', target: { type: 'function', handler: 'ok' }, schedules: [{ name: 's', every: '1s' }] });
    const runId = await scheduledRun('h-plain', new Date());
    await handle(await fetchJob(runId));
    const history = await runHistory(app.pool, runId);
    assert.deepEqual(shown(history), PLAIN_SCHEDULED);
    assert.deepEqual(await storage(runId), { tableRows: 0, viewRows: 4, implied: 1 | 2 | 4 | 8 });
    const { rows: [run] } = await app.pool.query<{ created: Date; pending: Date; started: Date; ended: Date }>(
      `select created_at as created, pending_at as pending, started_at as started, ended_at as ended from flowwarden.runs where id = $1`,
      [runId],
    );
    assert.deepEqual(history.map((h) => h.at), [run!.created, run!.pending, run!.started, run!.ended]);
  });

  test('a Late run shows the same history whether dispatched on the fast path or forced through the general one', async () => {
    await flow({ name: 'h-fast', target: { type: 'function', handler: 'ok' }, schedules: [{ name: 's', every: '1s' }] });
    // overlap: skip takes the per-run claim; task results take the general completion.
    await flow({ name: 'h-general', target: { type: 'function', handler: 'ok-with-tasks' }, schedules: [{ name: 's', every: '1s', overlap: 'skip' }] });
    const now = new Date();
    const fast = await scheduledRun('h-fast', now);
    const general = await scheduledRun('h-general', now);
    const late = await withTransaction(app.pool, (tx) => runMarkLateMany(tx, { now: new Date(now.getTime() + 60_000), defaultAfterSeconds: 30, limit: 10_000 }));
    assert.ok(late.some((r) => r.id === fast) && late.some((r) => r.id === general));
    await handle(await fetchJob(fast));
    await handle(await fetchJob(general));
    const expected: Entry[] = [
      ['-', 'SCHEDULED/Scheduled', 'created by schedule'],
      ['SCHEDULED/Scheduled', 'SCHEDULED/Late', 'not started within 30 s of its scheduled time'],
      ['SCHEDULED/Late', 'PENDING/Pending', 'dispatch attempt 1'],
      ['PENDING/Pending', 'RUNNING/Running', null],
      ['RUNNING/Running', 'COMPLETED/Completed', 'done'],
    ];
    assert.deepEqual(shown(await runHistory(app.pool, fast)), expected);
    assert.deepEqual(shown(await runHistory(app.pool, general)), expected);
    assert.deepEqual(await storage(fast), { tableRows: 1, viewRows: 5, implied: 15 }, 'fast: only the Late rename is a row');
    assert.deepEqual(await storage(general), { tableRows: 4, viewRows: 5, implied: 1 }, 'general: every move after creation is a row');
  });

  test('a retried attempt claimed on the fast path writes its claim as rows, its completion on the run row', async () => {
    await flow({ name: 'h-retried', target: { type: 'function', handler: 'ok' } });
    const runId = await trigger('h-retried');
    await handle({ ...(await fetchJob(runId)), retryCount: 1 }); // the first attempt died before claiming
    assert.deepEqual(shown(await runHistory(app.pool, runId)), [
      ['-', 'SCHEDULED/Scheduled', 'created (api)'],
      ['SCHEDULED/Scheduled', 'PENDING/Pending', 'dispatch attempt 2'],
      ['PENDING/Pending', 'RUNNING/Running', null],
      ['RUNNING/Running', 'COMPLETED/Completed', 'done'],
    ]);
    assert.deepEqual(await storage(runId), { tableRows: 2, viewRows: 4, implied: 1 | 8 });
  });

  test('http runs: a sync run completes from PENDING; an async one mixes implied entries and later rows in order', async () => {
    await flow({ name: 'h-sync', target: { type: 'http', url: target.url, mode: 'sync' } });
    await flow({ name: 'h-async', target: { type: 'http', url: target.url, mode: 'async' } });
    target.script = [200];
    const sync = await trigger('h-sync');
    await handle(await fetchJob(sync));
    assert.deepEqual(shown(await runHistory(app.pool, sync)), [
      ['-', 'SCHEDULED/Scheduled', 'created (api)'],
      ['SCHEDULED/Scheduled', 'PENDING/Pending', 'dispatch attempt 1'],
      ['PENDING/Pending', 'COMPLETED/Completed', '200'],
    ]);
    assert.deepEqual(await storage(sync), { tableRows: 0, viewRows: 3, implied: 1 | 2 | 8 });

    target.script = [{ status: 202, body: { externalId: 'job-7' } }];
    const async = await trigger('h-async');
    await handle(await fetchJob(async));
    const res = await app.api!.inject({
      method: 'POST', url: `/api/runs/${async}/state`, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      payload: { state: 'FAILED', message: 'upstream said no' },
    });
    assert.equal(res.statusCode, 200, res.body);
    const history = await runHistory(app.pool, async);
    assert.deepEqual(shown(history), [
      ['-', 'SCHEDULED/Scheduled', 'created (api)'],
      ['SCHEDULED/Scheduled', 'PENDING/Pending', 'dispatch attempt 1'],
      ['PENDING/Pending', 'RUNNING/Running', 'accepted (202)'],
      ['RUNNING/Running', 'FAILED/Failed', 'upstream said no'],
    ]);
    assert.deepEqual(await storage(async), { tableRows: 2, viewRows: 4, implied: 1 | 2 });
  });

  test('GET /api/runs/:id, `runs show` and the admin run page show the four entries of a plain run', async () => {
    await flow({ name: 'h-shown', target: { type: 'function', handler: 'ok' }, schedules: [{ name: 's', every: '1s' }] });
    const runId = await scheduledRun('h-shown', new Date());
    await handle(await fetchJob(runId));
    assert.equal((await storage(runId)).tableRows, 0);

    const res = await app.api!.inject({ url: `/api/runs/${runId}`, headers: { authorization: `Bearer ${TEST_READ_TOKEN}` } });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json<{ history: Array<{ fromType: string | null; fromName: string | null; toType: string; toName: string; message: string | null; at: string }> }>();
    assert.deepEqual(shown(body.history), PLAIN_SCHEDULED);
    assert.ok(body.history.every((h) => !Number.isNaN(Date.parse(h.at))));

    const json = await runCli(['runs', 'show', runId, '--json'], { DATABASE_URL: app.db.url });
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(shown((JSON.parse(json.stdout) as { history: Parameters<typeof shown>[0] }).history), PLAIN_SCHEDULED);
    const text = await runCli(['runs', 'show', runId], { DATABASE_URL: app.db.url });
    assert.equal(text.code, 0, text.stderr);
    const login = await app.api!.inject({
      method: 'POST', url: '/admin/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${TEST_ADMIN_TOKEN}`,
    });
    assert.equal(login.statusCode, 303);
    const page = await app.api!.inject({ url: `/admin/runs/${runId}`, headers: { cookie: String(login.headers['set-cookie']).split(';')[0]! } });
    assert.equal(page.statusCode, 200);
    const section = page.body.slice(page.body.indexOf('<section id="history">'), page.body.indexOf('<section id="tasks">'));
    assert.equal(section.match(/<tr>/g)?.length, 1 + 4, 'a header row and four entries on the admin run page');
    assert.match(section, /created by schedule[\s\S]*dispatch attempt 1[\s\S]*Running[\s\S]*Completed[\s\S]*done/);

    // AT  FROM  TO  MESSAGE, columns two spaces apart.
    const lines = text.stdout.slice(text.stdout.indexOf('history:')).split('\n').filter((l) => l.includes('/'));
    assert.deepEqual(lines.map((l) => l.split(/\s{2,}/).slice(1, 3).join(' ')), [
      '- SCHEDULED/Scheduled', 'SCHEDULED/Scheduled PENDING/Pending', 'PENDING/Pending RUNNING/Running', 'RUNNING/Running COMPLETED/Completed',
    ]);
  });
});
