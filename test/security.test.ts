/**
 * Hardening (issue 11): each test here attacks one hole a review found in a running pod.
 */
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from './support/app.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { applyTransition } from '../src/runs/service.ts';
import { evaluateFlowHealth } from '../src/guard/health.ts';
import { reactivateFlowTx } from '../src/guard/operations.ts';
import type { FlowInputRaw } from '../src/flows/spec.ts';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TEST_HTTP_SECRET, TEST_ADMIN_TOKEN } from './support/app.ts';
import { startFakeTarget, type FakeTarget } from './support/http-target.ts';
import { dispatchWorker } from '../src/dispatch/worker.ts';
import { QUEUES } from '../src/queue/catalog.ts';
import { getRun } from '../src/runs/read.ts';
import { silentLogger } from '../src/log.ts';

let app: TestApp;
let target: FakeTarget;

before(async () => {
  app = await startTestApp({ config: { maxConsecutiveFailures: 3 } });
  target = await startFakeTarget(TEST_HTTP_SECRET);
});
after(async () => {
  await target.close();
  await app.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function trigger(flowName: string, parameters: Record<string, unknown> = {}): Promise<string> {
  const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, flowName, parameters));
  return runId;
}

/** Fetch the run's real dispatch job from pg-boss and handle it as a worker would. */
async function dispatch(runId: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const jobs = await app.boss.fetch<{ runId: string }>(QUEUES.dispatch, { includeMetadata: true, ignoreStartAfter: true, batchSize: 20 });
    const mine = jobs.find((j) => j.data.runId === runId);
    for (const j of jobs) if (j !== mine) await app.boss.fail(QUEUES.dispatch, j.id, { reason: 'test put-back' }).catch(() => {});
    if (mine) {
      await dispatchWorker.handle(app.deps, { ...mine, signal: new AbortController().signal }, silentLogger);
      return;
    }
  }
  throw new Error(`no dispatch job for ${runId}`);
}

/** The token an endpoint holding FLOWWARDEN_HTTP_SECRET could mint under the old scheme. */
const minted = (runId: string) => `run.${createHmac('sha256', TEST_HTTP_SECRET).update(`report:${runId}`).digest('base64url')}`;

async function defineFlow(def: Partial<FlowInputRaw> & { name: string }): Promise<string> {
  const out = await withTransaction(app.pool, (tx) =>
    upsertFlowTx(tx, { target: { type: 'function', handler: 'noop' }, schedules: [{ name: 'hourly', cron: '0 * * * *' }], ...def }),
  );
  return out.flow.id;
}

describe('health baseline', () => {
  test('runs triggered for a future time that failed before a reactivation do not count after it', async () => {
    const flowId = await defineFlow({ name: 's-future' });
    const future = new Date(Date.now() + 7 * 86400_000);
    for (let i = 0; i < 3; i++) {
      const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, 's-future', {}, { origin: 'manual', scheduledFor: future }));
      await withTransaction(app.pool, (tx) => applyTransition(app.deps.transitions, tx, { runId, to: 'FAILED', message: 'failed early' }));
    }
    assert.equal((await evaluateFlowHealth(app.deps, flowId)).action, 'disabled');
    await withTransaction(app.pool, (tx) => reactivateFlowTx(app.boss, tx, 's-future', { by: 'alice' }));
    const again = await evaluateFlowHealth(app.deps, flowId);
    assert.deepEqual(again, { action: 'none', why: 'healthy' }, 'failures that happened before the reactivation must not count');
    const view = await app.pool.query(`select consecutive_failures::int as n from flowwarden.v_flow_health where flow = 's-future'`);
    assert.equal(view.rows[0].n, 0, 'v_flow_health counts the same way');
  });
});

describe('report tokens', () => {
  test('a token minted with the http signing secret reports nothing, for any kind of run', async () => {
    await defineFlow({ name: 's-fn', target: { type: 'function', handler: 'noop' } });
    await defineFlow({ name: 's-async', target: { type: 'http', url: target.url, mode: 'async' } });
    const fnRun = await trigger('s-fn');
    const asyncRun = await trigger('s-async'); // never dispatched
    for (const runId of [fnRun, asyncRun]) {
      const res = await app.api!.inject({ method: 'POST', url: `/api/runs/${runId}/state`, headers: bearer(minted(runId)), payload: { state: 'CRASHED', message: 'forged' } });
      assert.equal(res.statusCode, 403, res.body);
      assert.equal((await getRun(app.pool, runId))?.stateType, 'SCHEDULED');
    }
  });

  test('only a run dispatched to an async http target gets a token, and it works for that run only', async () => {
    await defineFlow({ name: 's-async2', target: { type: 'http', url: target.url, mode: 'async' } });
    await defineFlow({ name: 's-sync', target: { type: 'http', url: target.url, mode: 'sync' } });
    target.script = [{ status: 202, body: {} }, { status: 200, body: {} }];
    const runId = await trigger('s-async2');
    const other = await trigger('s-async2');
    await dispatch(runId);
    const call = target.calls.at(-1)!;
    const token = call.body.reportToken as string;
    assert.match(token, /^run\./);
    assert.notEqual(token, minted(runId), 'the report token must not be derivable from the signing secret');
    const syncRun = await trigger('s-sync');
    await dispatch(syncRun);
    assert.equal(target.calls.at(-1)!.body.reportToken, undefined, 'a sync run gets no report token');

    const wrong = await app.api!.inject({ method: 'POST', url: `/api/runs/${other}/state`, headers: bearer(token), payload: { state: 'FAILED' } });
    assert.equal(wrong.statusCode, 403);
    const ok = await app.api!.inject({ method: 'POST', url: `/api/runs/${runId}/state`, headers: bearer(token), payload: { state: 'COMPLETED', message: 'done' } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal((await getRun(app.pool, runId))?.stateType, 'COMPLETED');
    // The admin token still reports any run.
    const admin = await app.api!.inject({ method: 'POST', url: `/api/runs/${other}/state`, headers: bearer(TEST_ADMIN_TOKEN), payload: { state: 'CANCELLED' } });
    assert.notEqual(admin.statusCode, 403);
  });
});

describe('ignorePatterns', () => {
  test('a catastrophic-backtracking pattern is matched in linear time against a long message', { timeout: 120_000 }, async () => {
    const flowId = await defineFlow({ name: 's-redos', health: { criticalTasks: ['load'], ignorePatterns: ['^(a+)+$'] } });
    const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, 's-redos', {}, { origin: 'manual' }));
    const message = `${'a'.repeat(9_999)}!`; // a backtracking engine takes exponential time on this
    await withTransaction(app.pool, (tx) => applyTransition(app.deps.transitions, tx, { runId, to: 'COMPLETED', tasks: [{ name: 'load', stateType: 'FAILED', message }] }));
    const outcome = await evaluateFlowHealth(app.deps, flowId);
    assert.equal(outcome.action, 'disabled', 'the message does not match the pattern, so the critical task failure counts');
  });

  test('patterns the linear-time engine cannot run are rejected when the flow is written, saying why', async () => {
    for (const pattern of ['(a)\\1', '(?<=x)y']) {
      await assert.rejects(
        defineFlow({ name: 's-badpattern', health: { criticalTasks: ['load'], ignorePatterns: [pattern] } }),
        (err: Error) => /ignorePatterns/.test(err.message) && /RE2 syntax/.test(err.message) && /backreferences/.test(err.message),
      );
    }
    const res = await app.api!.inject({
      method: 'PUT', url: '/api/flows/s-badpattern', headers: bearer(TEST_ADMIN_TOKEN),
      payload: { target: { type: 'function', handler: 'noop' }, health: { criticalTasks: ['x'], ignorePatterns: ['(a)\\1'] } },
    });
    assert.equal(res.statusCode, 400, res.body);
    assert.match(res.json().message, /RE2 syntax/);
  });
});

describe('target URLs and headers', () => {
  test('GET /api/flows and /api/flows/{name} never return a target URL\'s query or path tokens', async () => {
    const pathToken = 'AbCdEfGhIjKlMnOpQrSt'; // letters only: not a plain word either
    const queryToken = 'q1w2e3r4t5y6u7i8';
    await defineFlow({ name: 's-url', target: { type: 'http', url: `https://ci.example.com/hooks/${pathToken}/run?token=${queryToken}`, mode: 'async' } });
    for (const url of ['/api/flows', '/api/flows/s-url']) {
      const res = await app.api!.inject({ url, headers: bearer(TEST_ADMIN_TOKEN) });
      assert.equal(res.statusCode, 200, res.body);
      assert.ok(!res.body.includes(pathToken), `${url} leaks the path token`);
      assert.ok(!res.body.includes(queryToken), `${url} leaks the query token`);
    }
    const one = (await app.api!.inject({ url: '/api/flows/s-url', headers: bearer(TEST_ADMIN_TOKEN) })).json();
    assert.equal(one.target.url, 'https://ci.example.com/hooks/***/run?[redacted]');
  });

  test('safeUrl masks letters-only tokens but keeps plain lower-case words', async () => {
    const { safeUrl } = await import('../src/targets/safe-url.ts');
    assert.equal(safeUrl('https://h.example/api/v2/xoxbQwErTyUiOpAs/nightly-report/abcdefghijklmnopqrst/42'), 'https://h.example/api/v2/***/nightly-report/***/42');
  });

  test('targets are validated at save time: http(s) only, no CR/LF in headers, flowwarden\'s own headers untouchable', async () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ type: 'http', url: 'file:///etc/passwd' }, /http:\/\/ or https:\/\//],
      [{ type: 'http', url: 'gopher://x.example/' }, /http:\/\/ or https:\/\//],
      [{ type: 'http', url: 'https://x.example/', headers: { 'x-a': 'ok\r\nx-injected: 1' } }, /CR, LF/],
      [{ type: 'http', url: 'https://x.example/', headers: { 'x-a\r\nx-b': 'v' } }, /header name/],
      [{ type: 'http', url: 'https://x.example/', headers: { 'X-FlowWarden-Signature': 'sha256=forged' } }, /cannot be overridden/],
      [{ type: 'http', url: 'https://x.example/', headers: { 'IDEMPOTENCY-KEY': 'same' } }, /cannot be overridden/],
    ];
    for (const [targetSpec, why] of bad) {
      const res = await app.api!.inject({ method: 'PUT', url: '/api/flows/s-badtarget', headers: bearer(TEST_ADMIN_TOKEN), payload: { target: targetSpec } });
      assert.equal(res.statusCode, 400, `${JSON.stringify(targetSpec)}: ${res.body}`);
      assert.match(res.json().message, why);
    }
  });
});

describe('http target signatures', () => {
  test('the signature covers a timestamp with the body, and a request older than the tolerance is rejected', async () => {
    const { signBody, verifySignature, SIGNATURE_HEADER } = await import('../src/targets/http.ts');
    await defineFlow({ name: 's-signed', target: { type: 'http', url: target.url, mode: 'sync' } });
    target.script = [200];
    const runId = await trigger('s-signed');
    await dispatch(runId);
    const call = target.calls.at(-1)!;
    const header = call.headers[SIGNATURE_HEADER] as string;
    const m = /^t=(\d+),sha256=[0-9a-f]{64}$/.exec(header);
    assert.ok(m, `signature header carries a timestamp: ${header}`);
    const sentAt = Number(m[1]) * 1000;
    assert.ok(call.signatureValid);
    assert.ok(verifySignature(call.raw, header, TEST_HTTP_SECRET, { nowMs: sentAt + 299_000 }));
    // The same captured request replayed six minutes later is refused.
    assert.equal(verifySignature(call.raw, header, TEST_HTTP_SECRET, { nowMs: sentAt + 360_000 }), false);
    assert.equal(verifySignature(call.raw, header, TEST_HTTP_SECRET, { nowMs: sentAt + 360_000, toleranceSeconds: 600 }), true);
    // Re-stamping the timestamp without the secret breaks the signature.
    const restamped = header.replace(/^t=\d+/, `t=${Math.floor(sentAt / 1000) + 360}`);
    assert.equal(verifySignature(call.raw, restamped, TEST_HTTP_SECRET, { nowMs: sentAt + 360_000 }), false);
    assert.equal(verifySignature(call.raw, signBody(call.raw, 'another-secret-0123456789', sentAt), TEST_HTTP_SECRET, { nowMs: sentAt }), false);
  });
});

describe('API routing and auth order', () => {
  test('POST /api/runs/:id/state rejects a bad report token before it looks at the body', async () => {
    await defineFlow({ name: 's-order', target: { type: 'http', url: target.url, mode: 'async' } });
    const runId = await trigger('s-order');
    const res = await app.api!.inject({
      method: 'POST', url: `/api/runs/${runId}/state`, headers: { ...bearer('run.not-a-real-token'), 'content-type': 'application/json' },
      payload: '{"state": "NOT A STATE", ',
    });
    assert.equal(res.statusCode, 403, res.body);
    const notUuid = await app.api!.inject({ method: 'POST', url: '/api/runs/zzz/state', headers: bearer('run.x'), payload: { state: 'FAILED' } });
    assert.equal(notUuid.statusCode, 403, notUuid.body);
  });

  test('a flow with a 128-character name (the longest valid) is reachable on every route', async () => {
    const name = `s${'x'.repeat(126)}:`;
    assert.equal(name.length, 128);
    await defineFlow({ name });
    for (const url of [`/api/flows/${name}`, `/api/flows/${encodeURIComponent(name)}`, `/api/flows/${name}/schedules/hourly/next`, `/api/flows/${name}/guard-history`]) {
      const res = await app.api!.inject({ url, headers: bearer(TEST_ADMIN_TOKEN) });
      assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
    }
  });
});

describe('bad bytes', () => {
  const NUL = '\u0000';
  function assertClean400(res: { statusCode: number; body: string }, what: string) {
    assert.equal(res.statusCode, 400, `${what}: ${res.body}`);
    const json = JSON.parse(res.body);
    assert.equal(json.error, 'invalid_request', what);
    assert.equal(typeof json.message, 'string');
    assert.doesNotMatch(res.body, /select |insert |update |params:|Failed query|flowwarden\./i, `${what} echoes SQL`);
  }

  test('a NUL character anywhere in a request is a 400 in the documented shape, never SQL', async () => {
    await defineFlow({ name: 's-nul' });
    const cases: Array<[string, string, string, unknown]> = [
      ['parameters', 'POST', '/api/flows/s-nul/runs', { parameters: { date: `2026${NUL}` } }],
      ['a parameter key', 'POST', '/api/flows/s-nul/runs', { parameters: { [`k${NUL}`]: 1 } }],
      ['idempotencyKey', 'POST', '/api/flows/s-nul/runs', { idempotencyKey: `k${NUL}` }],
      ['description', 'PUT', '/api/flows/s-nul', { description: `d${NUL}`, target: { type: 'function', handler: 'noop' } }],
      ['note', 'POST', '/api/flows/s-nul/schedules/hourly/pause', { note: `n${NUL}` }],
      ['by', 'POST', '/api/flows/s-nul/disable', { reason: 'r', by: `b${NUL}` }],
    ];
    for (const [what, method, url, payload] of cases) {
      const res = await app.api!.inject({ method: method as 'POST', url, headers: bearer(TEST_ADMIN_TOKEN), payload: payload as object });
      assertClean400(res, what);
    }
    const q = await app.api!.inject({ url: `/api/runs?flow=s${encodeURIComponent(NUL)}nul`, headers: bearer(TEST_ADMIN_TOKEN) });
    assertClean400(q, 'query string');
  });

  test('malformed cursors are a 400', async () => {
    const cursor = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const [url, value] of [
      ['/api/flows', ['zz\u0000']],
      ['/api/flows/s-nul/guard-history', [1.5]],
      ['/api/flows/s-nul/guard-history', [1e308]],
      ['/api/runs', ['2026-01-01 00:00:00+00\u0000', '00000000-0000-4000-8000-000000000000']],
    ] as Array<[string, unknown]>) {
      await defineFlow({ name: 's-nul' });
      const res = await app.api!.inject({ url: `${url}?cursor=${cursor(value)}`, headers: bearer(TEST_ADMIN_TOKEN) });
      assertClean400(res, `${url} cursor ${JSON.stringify(value)}`);
    }
  });

  test('JSON nested 10,000 deep is a 400', async () => {
    const deep = `{"parameters":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`;
    const res = await app.api!.inject({ method: 'POST', url: '/api/flows/s-nul/runs', headers: { ...bearer(TEST_ADMIN_TOKEN), 'content-type': 'application/json' }, payload: deep });
    assertClean400(res, 'deep JSON');
  });

  test('an internal error answers 500 without its message', async () => {
    const { errorHandler } = await import('../src/api/errors.ts');
    let sent: { code?: number; body?: unknown } = {};
    const reply = { code(c: number) { sent.code = c; return this; }, send(b: unknown) { sent.body = b; return this; } };
    const req = { id: 'req-1', log: silentLogger };
    errorHandler(new Error('Failed query: select secret from flowwarden.instance_keys params: x'), req as never, reply as never);
    assert.equal(sent.code, 500);
    assert.doesNotMatch(JSON.stringify(sent.body), /select|instance_keys/);
    sent = {};
    errorHandler(Object.assign(new Error('Failed query: insert …'), { cause: Object.assign(new Error('invalid byte sequence'), { code: '22021' }) }), req as never, reply as never);
    assert.equal(sent.code, 400);
    assert.doesNotMatch(JSON.stringify(sent.body), /insert/);
  });
});

describe('chat formatting', () => {
  test('untrusted text never opens a code block: every post has balanced fences and headlines have none', async () => {
    const { eventText, renderMessages } = await import('../src/notify/render.ts');
    const { chunkMessage } = await import('../src/notify/chunk.ts');
    const messages = [
      'query failed: ```select * from t``` then ``` unterminated',
      '```\nTraceback (most recent call last):\n  File "x.py"\nValueError: bad',
      'one ``` fence',
      'a `span and ``` and ```` and ``',
    ];
    const events = messages.flatMap((message, i) => [
      { id: 2 * i + 1, event: 'run.failed', flowName: `f${i}`, text: eventText({ event: 'run.failed', flowName: `f${i}`, runId: '00000000-0000-4000-8000-00000000000' + i, message, details: { stateType: 'FAILED' } } as never) },
      { id: 2 * i + 2, event: 'flow.disabled', flowName: `f${i}`, text: eventText({ event: 'flow.disabled', flowName: `f${i}`, message, details: { by: 'mallory ```' } } as never) },
    ]);
    const posts = [
      ...events.map((e) => e.text),
      ...renderMessages('ops', events as never).map((m) => m.text),
    ].flatMap((text) => chunkMessage(text, { limit: 120 }));
    for (const post of posts) {
      const fences = post.match(/```/g)?.length ?? 0;
      assert.equal(fences % 2, 0, `odd number of fences in a post:\n${post}`);
    }
    for (const e of events) assert.doesNotMatch(e.text.split('\n')[0]!, /`{2,}/, `headline opens a block: ${e.text.split('\n')[0]}`);
  });
});

describe('catch-up latest', () => {
  test('after an outage the latest missed fire runs, however many fires the outage held', async () => {
    const { planFires } = await import('../src/scheduling/plan.ts');
    const opts = (now: Date) => ({ now, horizonSeconds: 5, graceSeconds: 30 });
    // Every second of Berlin office hours, weekdays; down from Monday 08:00 to Saturday 10:00 (Berlin, CET).
    const office = planFires(
      { spec: { kind: 'cron', cron: '* * 9-17 * * 1-5', timezone: 'Europe/Berlin' }, nextRunAt: new Date('2026-11-23T07:00:00Z'), catchup: 'latest', catchupWindowSeconds: 3600, catchupMax: 100 },
      opts(new Date('2026-11-28T09:00:00Z')),
    );
    assert.deepEqual(office.fireTimes.map((d) => d.toISOString()), ['2026-11-27T16:59:59.000Z'], 'Friday 17:59:59 Berlin');
    // Once every four years, down for 400+ days across the 29th of February 2028.
    const leap = planFires(
      { spec: { kind: 'cron', cron: '0 0 29 2 *', timezone: 'UTC' }, nextRunAt: new Date('2028-02-29T00:00:00Z'), catchup: 'latest', catchupWindowSeconds: 3600, catchupMax: 100 },
      opts(new Date('2029-04-05T00:00:00Z')),
    );
    assert.deepEqual(leap.fireTimes.map((d) => d.toISOString()), ['2028-02-29T00:00:00.000Z']);
  });
});

describe('admin sessions', () => {
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  async function signIn(a: TestApp, extra: Record<string, string> = {}, token = TEST_ADMIN_TOKEN) {
    return a.api!.inject({ method: 'POST', url: '/admin/login', headers: { ...form, ...extra }, payload: `token=${encodeURIComponent(token)}` });
  }
  const cookieOf = (res: { headers: Record<string, unknown> }) => String(res.headers['set-cookie']).split(';')[0]!;

  test('logout revokes the session server-side: the old cookie no longer opens a page', async () => {
    const login = await signIn(app);
    assert.equal(login.statusCode, 303);
    const cookie = cookieOf(login);
    const page = await app.api!.inject({ url: '/admin', headers: { cookie } });
    assert.equal(page.statusCode, 200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const out = await app.api!.inject({ method: 'POST', url: '/admin/logout', headers: { ...form, cookie }, payload: `csrf=${encodeURIComponent(csrf)}` });
    assert.equal(out.statusCode, 303);
    const replayed = await app.api!.inject({ url: '/admin', headers: { cookie } });
    assert.equal(replayed.statusCode, 303, 'a copied cookie replayed after logout is refused');
    assert.equal(replayed.headers.location, '/admin/login');
  });

  test('two sign-ins never share a session id', async () => {
    const a = cookieOf(await signIn(app));
    const b = cookieOf(await signIn(app));
    assert.notEqual(a, b);
  });

  test('the cookie is Secure over TLS behind a trusted proxy, and not without trust', async () => {
    const behind = await startTestApp({ db: app.db, config: { trustProxy: true } });
    try {
      const res = await signIn(behind, { 'x-forwarded-proto': 'https' });
      assert.match(String(res.headers['set-cookie']), /; Secure/);
    } finally {
      await behind.stop({ timeoutMs: 1000 });
    }
    const direct = await signIn(app, { 'x-forwarded-proto': 'https' });
    assert.doesNotMatch(String(direct.headers['set-cookie']), /Secure/, 'an untrusted X-Forwarded-Proto is ignored');
  });

  test('repeated failed sign-ins are slowed down (429 with Retry-After), per client address', async () => {
    const ip = { 'x-forwarded-for': '203.0.113.7' };
    const throttled = await startTestApp({ db: app.db, config: { trustProxy: true } });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await signIn(throttled, ip, 'wrong-token-0123456789')).statusCode, 401);
      const next = await signIn(throttled, ip); // even the right token waits now
      assert.equal(next.statusCode, 429, next.body);
      assert.ok(Number(next.headers['retry-after']) >= 1);
      assert.equal((await signIn(throttled, { 'x-forwarded-for': '203.0.113.8' })).statusCode, 303, 'another address is not affected');
    } finally {
      await throttled.stop({ timeoutMs: 1000 });
    }
  });
});

describe('embedded database identity', () => {
  test("a Postgres server of another data folder on the embedded port is not used: the error names both folders and the port setting", async () => {
    const { ensureEmbeddedPostgres } = await import('../src/db/embedded.ts');
    const port = Number(new URL(process.env.FW_TEST_ADMIN_URL!).port); // the test server: another data folder
    const mine = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-other-checkout-'));
    try {
      await assert.rejects(ensureEmbeddedPostgres({ dataDir: mine, port }), (err: Error) => {
        assert.match(err.message, /FLOWWARDEN_EMBEDDED_PORT/);
        assert.ok(err.message.includes(path.join(mine, 'pg')) || err.message.includes(fs.realpathSync(mine)), err.message);
        return true;
      });
    } finally {
      fs.rmSync(mine, { recursive: true, force: true });
    }
  });

  test('a port held by something that is not Postgres says so', async () => {
    const { ensureEmbeddedPostgres } = await import('../src/db/embedded.ts');
    const server = http.createServer((_req, res) => res.end('hello'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const mine = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-notpg-'));
    try {
      await assert.rejects(ensureEmbeddedPostgres({ dataDir: mine, port: (server.address() as AddressInfo).port }), /not a Postgres server.*FLOWWARDEN_EMBEDDED_PORT/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      fs.rmSync(mine, { recursive: true, force: true });
    }
  });
});
