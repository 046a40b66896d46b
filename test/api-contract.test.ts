import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, TEST_ADMIN_TOKEN, TEST_READ_TOKEN, type TestApp } from './support/app.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { getRun } from '../src/runs/read.ts';

let app: TestApp;
before(async () => {
  app = await startTestApp();
  await withTransaction(app.pool, (tx) =>
    upsertFlowTx(tx, {
      name: 'reports',
      target: { type: 'function' },
      schedules: [{ name: 'morning', cron: '0 9 * * *', timezone: 'Europe/Berlin' }],
    }),
  );
});
after(async () => {
  await app.close();
});

const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
const reader = { authorization: `Bearer ${TEST_READ_TOKEN}` };

async function api(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, options: { headers?: Record<string, string>; payload?: unknown } = {}) {
  const res = await app.api!.inject({ method, url, headers: options.headers ?? admin, payload: options.payload as never });
  return { status: res.statusCode, body: res.body ? res.json() : undefined };
}

async function trigger(flow: string, scheduledFor?: Date): Promise<string> {
  const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, flow, {}, { scheduledFor }));
  return runId;
}

async function flowState(name: string) {
  const flow = (await app.pool.query(`select disabled_at, disabled_reason, valid_since from flowwarden.flows where name = $1`, [name])).rows[0];
  const schedules = (await app.pool.query(`select s.name, s.enabled, s.note from flowwarden.schedules s join flowwarden.flows f on f.id = s.flow_id where f.name = $1 order by s.name`, [name])).rows;
  const holds = (await app.pool.query(`select * from flowwarden.disabled_flows where flow_name = $1 order by id`, [name])).rows;
  return { flow, schedules, holds };
}

describe('auth scopes', () => {
  test('no token is 401 and a read token on a change is 403, and nothing is done', async () => {
    const before = await flowState('reports');
    for (const [method, url, payload] of [
      ['POST', '/api/flows/reports/disable', { reason: 'x' }],
      ['POST', '/api/flows/reports/schedules/morning/pause', { note: 'x' }],
      ['PUT', '/api/flows/reports', { target: { type: 'function' }, description: 'changed' }],
      ['PUT', '/api/channels/ops', { url: 'console' }],
    ] as const) {
      const none = await api(method, url, { headers: {}, payload });
      assert.equal(none.status, 401, `${method} ${url}: ${JSON.stringify(none.body)}`);
      assert.equal(none.body.error, 'unauthorized');
      const read = await api(method, url, { headers: reader, payload });
      assert.equal(read.status, 403, `${method} ${url}`);
      assert.match(read.body.message, /scope 'read'.*needs 'operate'/);
    }
    assert.deepEqual(await flowState('reports'), before);
    assert.equal((await app.pool.query(`select count(*)::int as n from flowwarden.notification_channels where name = 'ops'`)).rows[0].n, 0);
  });

  test('reads need a token; a read token may read; an unknown token is 401', async () => {
    assert.equal((await api('GET', '/api/flows', { headers: {} })).status, 401);
    assert.equal((await api('GET', '/api/runs', { headers: { authorization: 'Bearer nope' } })).status, 401);
    assert.equal((await api('GET', '/api/flows', { headers: reader })).status, 200);
    assert.equal((await api('GET', '/api/guard/history', { headers: reader })).status, 200);
  });

  test('a run-scoped report token is refused outside the state report route', async () => {
    const res = await api('GET', '/api/flows', { headers: { authorization: 'Bearer run.abc.def' } });
    assert.equal(res.status, 401);
  });

  test('an unauthorised request is refused before its body is parsed', async () => {
    const res = await app.api!.inject({ method: 'PUT', url: '/api/flows/reports', headers: { 'content-type': 'application/json' }, payload: '{not json' });
    assert.equal(res.statusCode, 401);
  });
});

describe('validation', () => {
  test('a bad cursor, a limit above 500 and bad filters are 400 with the field named', async () => {
    const cursor = await api('GET', '/api/runs?cursor=not-a-cursor', { headers: reader });
    assert.equal(cursor.status, 400);
    assert.match(cursor.body.message, /invalid cursor/);
    const forged = Buffer.from(JSON.stringify(['yesterday', 'x'])).toString('base64url');
    assert.equal((await api('GET', `/api/runs?cursor=${forged}`, { headers: reader })).status, 400);
    assert.equal((await api('GET', `/api/flows?cursor=${Buffer.from('[1]').toString('base64url')}`, { headers: reader })).status, 400);
    const limit = await api('GET', '/api/runs?limit=501', { headers: reader });
    assert.equal(limit.status, 400);
    assert.match(limit.body.message, /query\.limit: must be at most 500/);
    assert.equal((await api('GET', '/api/flows?limit=0', { headers: reader })).status, 400);
    assert.equal((await api('GET', '/api/flows?limit=ten', { headers: reader })).status, 400);
    const state = await api('GET', '/api/runs?state=DONE', { headers: reader });
    assert.equal(state.status, 400);
    assert.match(state.body.message, /query\.state/);
    const since = await api('GET', '/api/runs?since=yesterday', { headers: reader });
    assert.equal(since.status, 400);
    assert.match(since.body.message, /query\.since: must be an ISO 8601 time/);
    assert.equal((await api('GET', '/api/flows?disabled=maybe', { headers: reader })).status, 400);
    assert.equal((await api('GET', '/api/runs/not-a-uuid', { headers: reader })).status, 400);
  });

  test('bad bodies are 400 and change nothing', async () => {
    const before = await flowState('reports');
    const extra = await api('POST', '/api/flows/reports/schedules/morning/pause', { payload: { note: 'x', colour: 'red' } });
    assert.equal(extra.status, 400);
    const noNote = await api('POST', '/api/flows/reports/schedules/morning/pause', { payload: {} });
    assert.equal(noNote.status, 400);
    assert.match(noNote.body.message, /body\.note/);
    const noBy = await api('POST', '/api/flows/reports/reactivate', { payload: { by: '  ' } });
    assert.equal(noBy.status, 400);
    const badFlow = await api('PUT', '/api/flows/reports', { payload: { target: { type: 'ftp' } } });
    assert.equal(badFlow.status, 400);
    assert.match(badFlow.body.message, /target/);
    const badCron = await api('PUT', '/api/flows/reports', { payload: { target: { type: 'function' }, schedules: [{ name: 'x', cron: 'every day' }] } });
    assert.equal(badCron.status, 400);
    const otherName = await api('PUT', '/api/flows/reports', { payload: { name: 'other', target: { type: 'function' } } });
    assert.equal(otherName.status, 400);
    assert.match(otherName.body.message, /differs from the path/);
    assert.deepEqual(await flowState('reports'), before);
    assert.equal((await api('GET', '/api/flows/other')).status, 404);
  });

  test('a bad scheduledFor on trigger is a 400 that says which time format to use; a good one is kept', async () => {
    for (const bad of ['next tuesday', '2026-13-01T00:00:00Z', '2026-01-01T09:00:00']) {
      const res = await api('POST', '/api/flows/reports/runs', { payload: { scheduledFor: bad } });
      assert.equal(res.status, 400, `${bad}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error, 'invalid_request');
      assert.match(res.body.message, /body\.scheduledFor: must be an ISO 8601 time with a zone, e\.g\. 2026-01-01T00:00:00Z/);
      assert.doesNotMatch(res.body.message, /received Date|expected date/);
    }
    const ok = await api('POST', '/api/flows/reports/runs', { payload: { scheduledFor: '2033-05-01T09:30:00+02:00' } });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal((await getRun(app.pool, ok.body.id))?.scheduledFor.toISOString(), '2033-05-01T07:30:00.000Z');
  });

  test("an unknown flow's guard history is a 404 like every other flow route, a known flow's empty history a 200", async () => {
    const res = await api('GET', '/api/flows/no-such-flow/guard-history', { headers: reader });
    assert.equal(res.status, 404, JSON.stringify(res.body));
    assert.equal(res.body.error, 'not_found');
    assert.match(res.body.message, /flow 'no-such-flow' not found/);
    const known = await api('GET', '/api/flows/reports/guard-history', { headers: reader });
    assert.equal(known.status, 200);
    assert.ok(Array.isArray(known.body.items));
  });
});

describe('pagination', () => {
  test('25 runs walked in pages of 10 come back once each, newest first, and the last page ends the walk', async () => {
    await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'paged', target: { type: 'function' } }));
    const base = Date.parse('2030-01-01T00:00:00Z');
    const ids: string[] = [];
    // Every fifth run shares its scheduled time with the one before: the id breaks the tie.
    for (let i = 0; i < 25; i++) ids.push(await trigger('paged', new Date(base + Math.floor(i / 2) * 60_000)));
    const expected = (await app.pool.query(
      `select r.id from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where f.name = 'paged' order by r.scheduled_for desc, r.id desc`,
    )).rows.map((r) => r.id);
    const seen: string[] = [];
    const pageSizes: number[] = [];
    let cursor: string | null = null;
    do {
      const res = await api('GET', `/api/runs?flow=paged&upcoming=true&limit=10${cursor ? `&cursor=${cursor}` : ''}`, { headers: reader });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      pageSizes.push(res.body.items.length);
      seen.push(...res.body.items.map((r: { id: string }) => r.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    assert.deepEqual(pageSizes, [10, 10, 5]);
    assert.equal(new Set(seen).size, 25);
    assert.deepEqual(seen, expected);
    assert.deepEqual(new Set(seen), new Set(ids));
  });

  test('an exact multiple of the page size ends with nextCursor null, not an empty page', async () => {
    await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'even', target: { type: 'function' } }));
    for (let i = 0; i < 4; i++) await trigger('even', new Date(Date.parse('2031-01-01T00:00:00Z') + i * 1000));
    const first = await api('GET', '/api/runs?flow=even&upcoming=true&limit=2', { headers: reader });
    const second = await api('GET', `/api/runs?flow=even&upcoming=true&limit=2&cursor=${first.body.nextCursor}`, { headers: reader });
    assert.equal(second.body.items.length, 2);
    assert.equal(second.body.nextCursor, null);
  });

  test('run filters: state, since and until', async () => {
    await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'filtered', target: { type: 'function' } }));
    const a = await trigger('filtered', new Date('2032-01-01T00:00:00Z'));
    const b = await trigger('filtered', new Date('2032-01-02T00:00:00Z'));
    await app.pool.query(`update flowwarden.runs set state_type = 'FAILED', state_name = 'Failed' where id = $1`, [a]);
    const failed = await api('GET', '/api/runs?flow=filtered&state=FAILED,crashed', { headers: reader });
    assert.deepEqual(failed.body.items.map((r: { id: string }) => r.id), [a]);
    const window = await api('GET', '/api/runs?flow=filtered&upcoming=true&since=2032-01-01T12:00:00Z&until=2032-01-03T00:00:00Z', { headers: reader });
    assert.deepEqual(window.body.items.map((r: { id: string }) => r.id), [b]);
    // By default the list is what ran, runs and is due: b is SCHEDULED for a time still ahead.
    const recent = await api('GET', '/api/runs?flow=filtered', { headers: reader });
    assert.deepEqual(recent.body.items.map((r: { id: string }) => r.id), [a]);
    const upcoming = await api('GET', '/api/runs?flow=filtered&upcoming=true', { headers: reader });
    assert.deepEqual(upcoming.body.items.map((r: { id: string }) => r.id), [b, a]);
  });

  test('flows, schedules, guard history and channels are pages too', async () => {
    for (const url of ['/api/flows?limit=1', '/api/flows/reports/schedules', '/api/guard/history', '/api/flows/reports/guard-history', '/api/channels', '/api/queues']) {
      const res = await api('GET', url, { headers: reader });
      assert.equal(res.status, 200, url);
      assert.ok(Array.isArray(res.body.items), url);
      assert.ok('nextCursor' in res.body, url);
    }
    const one = await api('GET', '/api/flows?limit=1', { headers: reader });
    const next = await api('GET', `/api/flows?limit=1&cursor=${one.body.nextCursor}`, { headers: reader });
    assert.notEqual(next.body.items[0].name, one.body.items[0].name);
    assert.ok(next.body.items[0].name > one.body.items[0].name);
  });

  test('queues are walked by name in pages, each queue once, and a bad cursor is a 400', async () => {
    const all = (await app.pool.query<{ queue: string }>(`select queue from flowwarden.v_queue_depth order by queue`)).rows.map((r) => r.queue);
    assert.ok(all.length >= 5, all.join(', '));
    const seen: string[] = [];
    const pageSizes: number[] = [];
    let cursor: string | null = null;
    do {
      const res = await api('GET', `/api/queues?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { headers: reader });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      pageSizes.push(res.body.items.length);
      seen.push(...res.body.items.map((q: { queue: string }) => q.queue));
      cursor = res.body.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, all);
    assert.equal(pageSizes.length, Math.ceil(all.length / 2));
    assert.ok(pageSizes.every((n, i) => n === 2 || i === pageSizes.length - 1), pageSizes.join(','));
    const bad = await api('GET', '/api/queues?cursor=not-a-cursor', { headers: reader });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /invalid cursor/);
    assert.equal((await api('GET', '/api/queues?limit=501', { headers: reader })).status, 400);
  });
});

describe('schedules', () => {
  test('pause records the note, resume clears it and recomputes the next fire time', async () => {
    const paused = await api('POST', '/api/flows/reports/schedules/morning/pause', { payload: { note: 'warehouse migration, back Monday' } });
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.enabled, false);
    assert.equal(paused.body.note, 'warehouse migration, back Monday');
    let row = (await flowState('reports')).schedules[0];
    assert.equal(row.enabled, false);
    assert.equal(row.note, 'warehouse migration, back Monday');
    const resumed = await api('POST', '/api/flows/reports/schedules/morning/resume', { payload: {} });
    assert.equal(resumed.status, 200);
    assert.equal(resumed.body.enabled, true);
    assert.equal(resumed.body.note, null);
    assert.ok(Date.parse(resumed.body.nextRunAt) > Date.now() - 60_000);
    row = (await flowState('reports')).schedules[0];
    assert.equal(row.enabled, true);
  });

  test('an unknown schedule is 404', async () => {
    assert.equal((await api('POST', '/api/flows/reports/schedules/evening/pause', { payload: { note: 'x' } })).status, 404);
    assert.equal((await api('GET', '/api/flows/nope/schedules', { headers: reader })).status, 404);
  });

  test('the next N fire times follow the schedule timezone across a DST change', async () => {
    const res = await api('GET', '/api/flows/reports/schedules/morning/next?count=3&after=2026-03-27T00:00:00Z', { headers: reader });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    // 09:00 Berlin: CET (UTC+1) until 29 March 2026, then CEST (UTC+2).
    assert.deepEqual(res.body.times, ['2026-03-27T08:00:00.000Z', '2026-03-28T08:00:00.000Z', '2026-03-29T07:00:00.000Z']);
    assert.equal((await api('GET', '/api/flows/reports/schedules/morning/next?count=101', { headers: reader })).status, 400);
    const dflt = await api('GET', '/api/flows/reports/schedules/morning/next', { headers: reader });
    assert.equal(dflt.body.times.length, 5);
  });
});

describe('cancel', () => {
  test('a SCHEDULED run is cancelled through the state machine, with history', async () => {
    const id = await trigger('reports', new Date('2033-01-01T00:00:00Z'));
    const res = await api('POST', `/api/runs/${id}/cancel`, { payload: { reason: 'not needed' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.stateType, 'CANCELLED');
    const shown = await api('GET', `/api/runs/${id}`, { headers: reader });
    assert.deepEqual(shown.body.history.map((h: { toType: string }) => h.toType), ['SCHEDULED', 'CANCELLED']);
    assert.match(shown.body.history[1].message, /not needed/);
  });

  test('a COMPLETED run is a 409 and stays COMPLETED; an unknown run is 404', async () => {
    const id = await trigger('reports');
    await app.pool.query(`update flowwarden.runs set state_type = 'COMPLETED', state_name = 'Completed' where id = $1`, [id]);
    const res = await api('POST', `/api/runs/${id}/cancel`, { payload: {} });
    assert.equal(res.status, 409);
    assert.equal(res.body.error, 'conflict');
    assert.match(res.body.message, /COMPLETED\/Completed: only a run not yet dispatched \(SCHEDULED\) can be cancelled/);
    assert.equal((await getRun(app.pool, id))?.stateType, 'COMPLETED');
    assert.equal((await api('POST', '/api/runs/00000000-0000-4000-8000-000000000000/cancel', { payload: {} })).status, 404);
  });
});

describe('flows', () => {
  test('PUT creates a flow (201) with its schedules, then replaces its fields (200)', async () => {
    const created = await api('PUT', '/api/flows/nightly-etl', {
      payload: { target: { type: 'http', url: 'https://etl.example/run', secret: 'a-very-long-secret-value' }, schedules: [{ cron: '0 2 * * *' }], health: { maxConsecutiveFailures: 2 } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.created, true);
    assert.equal(created.body.flow.target.secret, '[redacted]');
    assert.deepEqual(created.body.flow.schedules.map((s: { name: string }) => s.name), ['default']);
    const updated = await api('PUT', '/api/flows/nightly-etl', { payload: { name: 'nightly-etl', description: 'loads the warehouse', target: { type: 'function' }, health: { maxConsecutiveFailures: 2 } } });
    assert.equal(updated.status, 200);
    assert.equal(updated.body.created, false);
    const shown = await api('GET', '/api/flows/nightly-etl', { headers: reader });
    assert.equal(shown.body.description, 'loads the warehouse');
    assert.equal(shown.body.target.type, 'function');
    assert.equal(shown.body.healthStatus.maxConsecutiveFailures, 2);
    assert.equal(shown.body.healthStatus.consecutiveFailures, 0);
    assert.equal(shown.body.openHold, null);
  });

  test('a watched flow: watch: true is refused while a schedule is enabled or held by the guard, and resuming its paused schedule is a 400', async () => {
    const target = { type: 'prefect', deployment: 'sync/prod' };
    await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'to-watch', target, schedules: [{ name: 'nightly', cron: '0 2 * * *' }] }));
    const watch = () => withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'to-watch', target: { ...target, watch: true } }));
    await assert.rejects(watch(), /enabled flowwarden schedules \(nightly\)/);
    // Held by the guard: reactivation would turn it back on, so it still counts.
    assert.equal((await api('POST', '/api/flows/to-watch/disable', { payload: { reason: 'maintenance' } })).status, 200);
    await assert.rejects(watch(), /enabled flowwarden schedules \(nightly\) \(counting any the guard holds/);
    assert.equal((await api('POST', '/api/flows/to-watch/reactivate', { payload: { by: 'ops' } })).status, 200);
    assert.equal((await api('POST', '/api/flows/to-watch/schedules/nightly/pause', { payload: { note: 'Prefect takes over' } })).status, 200);
    await watch();
    const resume = await api('POST', '/api/flows/to-watch/schedules/nightly/resume', { payload: {} });
    assert.equal(resume.status, 400, JSON.stringify(resume.body));
    assert.match(resume.body.message, /is watched \(target\.watch: true\).*would run it twice/);
    assert.equal((await flowState('to-watch')).schedules[0].enabled, false);
  });

  test('disable then reactivate through the API records who, and each repeated call is a 409', async () => {
    await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'flaky', target: { type: 'function' }, schedules: [{ name: 'hourly', cron: '0 * * * *' }] }));
    const disabled = await api('POST', '/api/flows/flaky/disable', { payload: { reason: 'upstream outage', by: 'ana' } });
    assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
    assert.equal(disabled.body.flow.disabled, true);
    assert.equal(disabled.body.schedulesDisabled, 1);
    let state = await flowState('flaky');
    assert.ok(state.flow.disabled_at);
    assert.equal(state.schedules[0].enabled, false);
    assert.equal(state.holds.length, 1);
    assert.equal(state.holds[0].disabled_by, 'ana');
    assert.equal((await api('POST', '/api/flows/flaky/disable', { payload: { reason: 'again' } })).status, 409);
    const resume = await api('POST', '/api/flows/flaky/schedules/hourly/resume', { payload: {} });
    assert.equal(resume.status, 409);
    assert.match(resume.body.message, /reactivate/);
    const history = await api('GET', '/api/flows/flaky/guard-history?open=true', { headers: reader });
    assert.equal(history.body.items.length, 1);

    const reactivated = await api('POST', '/api/flows/flaky/reactivate', { payload: { by: 'bo' } });
    assert.equal(reactivated.status, 200, JSON.stringify(reactivated.body));
    assert.equal(reactivated.body.hold.reactivatedBy, 'bo');
    assert.equal(reactivated.body.schedulesEnabled, 1);
    state = await flowState('flaky');
    assert.equal(state.flow.disabled_at, null);
    assert.equal(state.schedules[0].enabled, true);
    assert.equal(state.holds[0].reactivated_by, 'bo');
    const again = await api('POST', '/api/flows/flaky/reactivate', { payload: { by: 'bo' } });
    assert.equal(again.status, 409);
    assert.match(again.body.message, /not disabled/);
    assert.equal((await api('POST', '/api/flows/ghost/reactivate', { payload: { by: 'bo' } })).status, 404);
  });
});

describe('channels', () => {
  test('channels are listed with the URL redacted; add and remove need operate', async () => {
    const secretUrl = 'https://discord.com/api/webhooks/123/very-secret-token';
    const put = await api('PUT', '/api/channels/ops-alerts', { payload: { url: secretUrl, events: ['flow.disabled'] } });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const list = await app.api!.inject({ url: '/api/channels', headers: reader });
    assert.equal(list.statusCode, 200);
    assert.doesNotMatch(list.body, /very-secret-token/);
    assert.equal(list.json().items[0].kind, 'discord');
    assert.equal((await api('DELETE', '/api/channels/ops-alerts', { headers: reader })).status, 403);
    assert.equal((await api('DELETE', '/api/channels/ops-alerts')).status, 200);
    assert.equal((await api('DELETE', '/api/channels/ops-alerts')).status, 404);
  });
});

describe('OpenAPI document', () => {
  test('lists every API route with its scope and schemas generated from zod', async () => {
    const res = await app.api!.inject({ url: '/api/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.equal(doc.openapi, '3.1.0');
    const ops = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, m]) => Object.keys(m).map((k) => `${k.toUpperCase()} ${p}`));
    for (const expected of [
      'GET /api/flows', 'GET /api/flows/{name}', 'PUT /api/flows/{name}', 'POST /api/flows/{name}/disable', 'POST /api/flows/{name}/reactivate',
      'POST /api/flows/{name}/runs', 'GET /api/flows/{name}/schedules', 'POST /api/flows/{name}/schedules/{schedule}/pause',
      'POST /api/flows/{name}/schedules/{schedule}/resume', 'GET /api/flows/{name}/schedules/{schedule}/next', 'GET /api/runs', 'GET /api/runs/{id}',
      'POST /api/runs/{id}/cancel', 'POST /api/runs/{id}/state', 'GET /api/guard/history', 'GET /api/flows/{name}/guard-history',
      'GET /api/channels', 'PUT /api/channels/{name}', 'DELETE /api/channels/{name}', 'GET /api/queues', 'GET /api/openapi.json', 'GET /healthz',
    ]) {
      assert.ok(ops.includes(expected), `${expected} missing from ${ops.join(', ')}`);
    }
    assert.ok(!ops.some((o) => o.includes('/admin')), 'admin HTML pages are not API operations');
    const list = doc.paths['/api/runs'].get;
    assert.equal(list['x-scope'], 'read');
    assert.equal(list.parameters.find((p: { name: string }) => p.name === 'limit').schema.maximum, 500);
    const queues = doc.paths['/api/queues'].get;
    assert.deepEqual(queues.parameters.map((p: { name: string }) => p.name).sort(), ['cursor', 'limit']);
    assert.ok(queues.responses['200'].content['application/json'].schema.properties.nextCursor, 'a page of queues');
    const put = doc.paths['/api/flows/{name}'].put;
    assert.equal(put['x-scope'], 'operate');
    assert.ok(put.requestBody.content['application/json'].schema.properties.target);
  });
});
