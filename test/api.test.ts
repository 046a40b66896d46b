import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, TEST_ADMIN_TOKEN, TEST_READ_TOKEN, type TestApp } from './support/app.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { issueReportToken } from '../src/security/keys.ts';
import { getRun, runTasks } from '../src/runs/read.ts';

let app: TestApp;
before(async () => {
  app = await startTestApp();
  await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'async-flow', target: { type: 'http', url: 'http://127.0.0.1:9/x', mode: 'async' } }));
});
after(async () => {
  await app.close();
});

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

async function runningRun(): Promise<string> {
  const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, 'async-flow', {}));
  await app.pool.query(`update flowwarden.runs set state_type = 'RUNNING', state_name = 'Running', dispatch_attempt = 0 where id = $1`, [runId]);
  return runId;
}

describe('health endpoints', () => {
  test('/healthz and /readyz answer when the database is migrated', async () => {
    assert.equal((await app.api!.inject({ url: '/healthz' })).statusCode, 200);
    const ready = await app.api!.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 200, ready.body);
  });
});

describe('POST /api/runs/:id/state', () => {
  test('an async target reports completion with task results', async () => {
    const runId = await runningRun();
    const res = await app.api!.inject({
      method: 'POST', url: `/api/runs/${runId}/state`, headers: auth(TEST_ADMIN_TOKEN),
      payload: { state: 'COMPLETED', message: 'loaded 42 rows', tasks: [{ name: 'extract', stateType: 'COMPLETED' }] },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().stateType, 'COMPLETED');
    assert.equal((await runTasks(app.pool, runId)).length, 1);
  });

  test('the run-scoped report token works for its own run only', async () => {
    const runId = await runningRun();
    const other = await runningRun();
    const token = await issueReportToken(app.pool, runId);
    const wrong = await app.api!.inject({ method: 'POST', url: `/api/runs/${other}/state`, headers: auth(token), payload: { state: 'FAILED' } });
    assert.equal(wrong.statusCode, 403);
    assert.equal((await getRun(app.pool, other))?.stateType, 'RUNNING');
    const ok = await app.api!.inject({ method: 'POST', url: `/api/runs/${runId}/state`, headers: auth(token), payload: { state: 'FAILED', message: 'boom' } });
    assert.equal(ok.statusCode, 200, ok.body);
  });

  test('an invalid transition is a 409 and changes nothing', async () => {
    const runId = await runningRun();
    await app.api!.inject({ method: 'POST', url: `/api/runs/${runId}/state`, headers: auth(TEST_ADMIN_TOKEN), payload: { state: 'COMPLETED' } });
    const res = await app.api!.inject({ method: 'POST', url: `/api/runs/${runId}/state`, headers: auth(TEST_ADMIN_TOKEN), payload: { state: 'RUNNING' } });
    assert.equal(res.statusCode, 409);
    assert.match(res.json().message, /invalid state transition COMPLETED\/Completed → RUNNING\/Running; COMPLETED is terminal/);
    assert.equal((await getRun(app.pool, runId))?.stateType, 'COMPLETED');
  });

  test('a report cannot move a RUNNING run back to PENDING/AwaitingRetry (only a drained pod requeues)', async () => {
    const runId = await runningRun();
    const res = await app.api!.inject({ method: 'POST', url: `/api/runs/${runId}/state`, headers: auth(TEST_ADMIN_TOKEN), payload: { state: 'PENDING', name: 'AwaitingRetry' } });
    assert.equal(res.statusCode, 409);
    assert.equal((await getRun(app.pool, runId))?.stateType, 'RUNNING');
  });

  test('auth: no token 401, read token 403, and nothing changes', async () => {
    const runId = await runningRun();
    const none = await app.api!.inject({ method: 'POST', url: `/api/runs/${runId}/state`, payload: { state: 'COMPLETED' } });
    assert.equal(none.statusCode, 401);
    const read = await app.api!.inject({ method: 'POST', url: `/api/runs/${runId}/state`, headers: auth(TEST_READ_TOKEN), payload: { state: 'COMPLETED' } });
    assert.equal(read.statusCode, 403);
    assert.equal((await getRun(app.pool, runId))?.stateType, 'RUNNING');
  });

  test('validation: unknown state, unknown fields, unknown run, bad id', async () => {
    const runId = await runningRun();
    const badState = await app.api!.inject({ method: 'POST', url: `/api/runs/${runId}/state`, headers: auth(TEST_ADMIN_TOKEN), payload: { state: 'DONE' } });
    assert.equal(badState.statusCode, 400);
    assert.match(badState.json().message, /state/);
    const extra = await app.api!.inject({ method: 'POST', url: `/api/runs/${runId}/state`, headers: auth(TEST_ADMIN_TOKEN), payload: { state: 'COMPLETED', colour: 'red' } });
    assert.equal(extra.statusCode, 400);
    const unknown = await app.api!.inject({ method: 'POST', url: `/api/runs/00000000-0000-4000-8000-000000000000/state`, headers: auth(TEST_ADMIN_TOKEN), payload: { state: 'COMPLETED' } });
    assert.equal(unknown.statusCode, 404);
    const badId = await app.api!.inject({ method: 'POST', url: `/api/runs/abc/state`, headers: auth(TEST_ADMIN_TOKEN), payload: { state: 'COMPLETED' } });
    assert.equal(badId.statusCode, 400);
    assert.equal((await getRun(app.pool, runId))?.stateType, 'RUNNING');
  });
});

describe('POST /api/flows/:name/runs', () => {
  test('triggers a run; the idempotency key returns the same run', async () => {
    const first = await app.api!.inject({ method: 'POST', url: '/api/flows/async-flow/runs', headers: auth(TEST_ADMIN_TOKEN), payload: { parameters: { a: 1 }, idempotencyKey: 'api-1' } });
    assert.equal(first.statusCode, 201, first.body);
    const second = await app.api!.inject({ method: 'POST', url: '/api/flows/async-flow/runs', headers: auth(TEST_ADMIN_TOKEN), payload: { idempotencyKey: 'api-1' } });
    assert.equal(second.statusCode, 200);
    assert.equal(second.json().id, first.json().id);
  });

  test("an idempotency key another flow's run holds is a 409 and creates nothing", async () => {
    await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'other-flow', target: { type: 'function', handler: 'noop' } }));
    const first = await app.api!.inject({ method: 'POST', url: '/api/flows/async-flow/runs', headers: auth(TEST_ADMIN_TOKEN), payload: { idempotencyKey: 'api-shared' } });
    assert.equal(first.statusCode, 201, first.body);
    const before = (await app.pool.query('select count(*)::int as n from flowwarden.runs')).rows[0].n;
    const clash = await app.api!.inject({ method: 'POST', url: '/api/flows/other-flow/runs', headers: auth(TEST_ADMIN_TOKEN), payload: { idempotencyKey: 'api-shared' } });
    assert.equal(clash.statusCode, 409, clash.body);
    assert.equal(clash.json().error, 'conflict');
    assert.match(clash.json().message, new RegExp(`idempotency key 'api-shared' is already used by run ${first.json().id} of flow 'async-flow', not flow 'other-flow'`));
    assert.equal((await app.pool.query('select count(*)::int as n from flowwarden.runs')).rows[0].n, before);
  });

  test('unknown flow 404, oversized parameters 400, nothing written', async () => {
    const before = (await app.pool.query('select count(*)::int as n from flowwarden.runs')).rows[0].n;
    const unknown = await app.api!.inject({ method: 'POST', url: '/api/flows/nope/runs', headers: auth(TEST_ADMIN_TOKEN), payload: {} });
    assert.equal(unknown.statusCode, 404);
    const big = await app.api!.inject({ method: 'POST', url: '/api/flows/async-flow/runs', headers: auth(TEST_ADMIN_TOKEN), payload: { parameters: { blob: 'x'.repeat(70_000) } } });
    assert.equal(big.statusCode, 400);
    assert.match(big.json().message, /parameters are \d+ bytes; the limit is 65536/);
    assert.equal((await app.pool.query('select count(*)::int as n from flowwarden.runs')).rows[0].n, before);
  });
});

describe('admin pages', () => {
  test('the flows page lists 500 flows and a "more…" link that continues after the last one shown', async () => {
    await app.pool.query(
      `insert into flowwarden.flows (name, target) select 'paged-' || lpad(g::text, 4, '0'), '{"type":"function"}' from generate_series(1, 501) g`,
    );
    const login = await app.api!.inject({
      method: 'POST', url: '/admin/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${TEST_ADMIN_TOKEN}`,
    });
    assert.equal(login.statusCode, 303);
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const get = (url: string) => app.api!.inject({ method: 'GET', url, headers: { cookie } });
    const names = (body: string) => [...body.matchAll(/href="\/admin\/flows\/([^"?]+)"/g)].map((m) => decodeURIComponent(m[1]!));

    const first = await get('/admin/flows');
    assert.equal(first.statusCode, 200);
    const firstNames = names(first.body);
    assert.equal(firstNames.length, 500);
    const more = /<a href="\/admin\/flows\?after=([^"]+)">more…<\/a>/.exec(first.body);
    assert.ok(more, 'a "more…" link');
    assert.equal(decodeURIComponent(more[1]!), firstNames.at(-1));

    const second = await get(`/admin/flows?after=${more[1]}`);
    assert.equal(second.statusCode, 200);
    const secondNames = names(second.body);
    assert.ok(secondNames.length > 0 && secondNames.every((n) => n > firstNames.at(-1)!), 'the next page starts after the last name shown');
    assert.doesNotMatch(second.body, /more…/, 'the last page has no "more…" link');
    const all = new Set([...firstNames, ...secondNames]);
    for (let i = 1; i <= 501; i++) assert.ok(all.has(`paged-${String(i).padStart(4, '0')}`), `paged-${i} is on a page`);
  });
});
