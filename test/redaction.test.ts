/**
 * Secrets never reach the logs. A real `flowwarden start` runs at trace level with every kind of
 * secret configured (admin/read tokens, http signing secret, Prefect key, a webhook URL with a token
 * in its path and query) and goes through the paths that handle them: start-up, an http target whose
 * URL carries a token and times out, a failed run notified to a webhook that answers 500, API
 * requests with wrong tokens. Then every captured byte of stdout/stderr is searched for each value.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import path from 'node:path';
import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { waitFor } from './support/app.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { startBoss } from '../src/queue/boss.ts';
import { createLogger, registerSecrets } from '../src/log.ts';
import { freePort } from './support/server.ts';
import { upsertChannel } from '../src/notify/operations.ts';
import { runHttpTarget } from '../src/targets/http.ts';
import { createHttp } from '../src/http.ts';

const MAIN = path.resolve(import.meta.dirname, '../src/cli/main.ts');

const ADMIN = 'adm1n-t0ken-AAAA-1111-zzzz';
const READ = 'r3ad-t0ken-BBBB-2222-zzzz';
const HTTP_SECRET = 'http-s1gning-CCCC-3333-zzzz';
const PREFECT_KEY = 'pnu_prefectKeyDDDD4444zzzz';
const WEBHOOK_PATH_TOKEN = 'whPathTokenEEEE5555zzzzzzzz';
const WEBHOOK_QUERY_TOKEN = 'whQueryTokenFFFF6666zzzz';
const TARGET_QUERY_TOKEN = 'targetQueryTokenGGGG7777zzzz';
const TARGET_PATH_TOKEN = 'tgtPathTok3nLLLL0000zzzz';
const DB_CHANNEL_PATH_TOKEN = 'dbChannelTok3nMMMM1111zzzz';

let db: TestDatabase;
let pool: pg.Pool;
let boss: PgBoss;
let hang: Server;
let webhook: Server;
const webhookPaths: string[] = [];

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

before(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  boss = await startBoss({ connectionString: db.url, role: 'producer' });
  hang = createServer(() => {}); // never answers: the http target times out
  webhook = createServer((req, res) => {
    webhookPaths.push(req.url ?? '');
    req.resume();
    res.writeHead(500, { 'content-type': 'text/plain' }).end(`upstream broke while handling ${req.url}`);
  });
});
after(async () => {
  hang.closeAllConnections();
  webhook.closeAllConnections();
  await new Promise((r) => hang.close(r));
  await new Promise((r) => webhook.close(r));
  await boss.stop({ graceful: false });
  await pool.end();
  await db.drop();
});

function assertNoSecrets(output: string, secrets: string[]): void {
  for (const s of secrets) {
    const at = output.indexOf(s);
    assert.equal(at, -1, `secret ${s.slice(0, 6)}… leaked: …${output.slice(Math.max(0, at - 200), at + 50)}…`);
  }
}

test('a pod at trace level never logs tokens, keys or webhook URLs', async () => {
  const hangPort = await listen(hang);
  const webhookPort = await listen(webhook);
  const webhookUrl = `http://127.0.0.1:${webhookPort}/hooks/${WEBHOOK_PATH_TOKEN}?token=${WEBHOOK_QUERY_TOKEN}`;
  const targetUrl = `http://127.0.0.1:${hangPort}/run?token=${TARGET_QUERY_TOKEN}`;
  // A token as a path segment: no query to drop, only the segment itself carries it.
  const pathTargetUrl = `http://127.0.0.1:${hangPort}/hooks/${TARGET_PATH_TOKEN}/run`;
  // A channel stored in the database (channels add / the API), not in the environment: its URL is
  // loaded at runtime and must be redacted all the same (the webhook echoes its path in its 500 body).
  const dbChannelUrl = `http://127.0.0.1:${webhookPort}/services/T000/${DB_CHANNEL_PATH_TOKEN}`;
  await withTransaction(pool, (tx) => upsertFlowTx(tx, { name: 'leaky-http', target: { type: 'http', url: targetUrl, mode: 'sync' } }));
  await withTransaction(pool, (tx) => upsertFlowTx(tx, { name: 'leaky-path', target: { type: 'http', url: pathTargetUrl, mode: 'sync' } }));
  await pool.query(
    `insert into flowwarden.notification_channels (name, kind, url, events) values ('db-hook', 'webhook', $1, '{run.failed}')`,
    [dbChannelUrl],
  );
  await withTransaction(pool, (tx) => upsertFlowTx(tx, { name: 'failing', target: { type: 'function', handler: 'fail' } }));

  const child = spawn(process.execPath, [MAIN, 'start'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      DATABASE_URL: db.url,
      FLOWWARDEN_PORT: '0',
      FLOWWARDEN_HOST: '127.0.0.1',
      FLOWWARDEN_LOG_LEVEL: 'trace',
      FLOWWARDEN_ADMIN_TOKEN: ADMIN,
      FLOWWARDEN_READ_TOKEN: READ,
      FLOWWARDEN_HTTP_SECRET: HTTP_SECRET,
      FLOWWARDEN_HTTP_TIMEOUT_MS: '300',
      FLOWWARDEN_NOTIFY_URLS: webhookUrl,
      FLOWWARDEN_DRAIN_TIMEOUT_SECONDS: '2',
      PREFECT_API_URL: 'http://127.0.0.1:9/api',
      PREFECT_API_KEY: PREFECT_KEY,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const address = await waitFor(() => /"address":"(http:\/\/[^"]+)"/.exec(output)?.[1], { what: `the API address in:\n${output}`, timeoutMs: 30_000 });

    const httpRun = (await withTransaction(pool, (tx) => triggerRunTx(boss, tx, 'leaky-http', {}))).runId;
    const pathRun = (await withTransaction(pool, (tx) => triggerRunTx(boss, tx, 'leaky-path', {}))).runId;
    const failRun = (await withTransaction(pool, (tx) => triggerRunTx(boss, tx, 'failing', {}))).runId;
    const state = async (id: string) => (await pool.query(`select state_type, state_name, state_message from flowwarden.runs where id = $1`, [id])).rows[0];
    // The http target timed out once (ky's error quotes the full URL) and waits for its retry.
    await waitFor(async () => (await state(httpRun))?.state_name === 'AwaitingRetry', { what: 'the http run to await a retry', timeoutMs: 20_000 });
    assert.doesNotMatch((await state(httpRun)).state_message, new RegExp(TARGET_QUERY_TOKEN), 'nor is it stored in the run');
    await waitFor(async () => (await state(pathRun))?.state_name === 'AwaitingRetry', { what: 'the path-token run to await a retry', timeoutMs: 20_000 });
    const pathMessage: string = (await state(pathRun)).state_message;
    assert.doesNotMatch(pathMessage, new RegExp(TARGET_PATH_TOKEN), 'a path token is not stored in the run either');
    assert.match(pathMessage, new RegExp(`POST http://127\\.0\\.0\\.1:${hangPort}/hooks/\\*\\*\\*/run failed`), pathMessage);
    await waitFor(async () => (await state(failRun))?.state_type === 'FAILED', { what: 'the failing run to fail' });
    // The failure is notified to the webhook, which answers 500: the delivery failure is logged.
    await waitFor(() => webhookPaths.some((p) => p.startsWith('/hooks/')), { what: 'a notification attempt to the env channel', timeoutMs: 20_000 });
    await waitFor(() => webhookPaths.some((p) => p.includes(DB_CHANNEL_PATH_TOKEN)), { what: 'a notification attempt to the database channel', timeoutMs: 20_000 });

    for (const token of [HTTP_SECRET, PREFECT_KEY, `${ADMIN}x`]) {
      const res = await fetch(`${address}/api/queues`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 401);
    }
    const ok = await fetch(`${address}/api/queues`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(ok.status, 200);
    const report = await fetch(`${address}/api/runs/${httpRun}/state`, {
      method: 'POST', headers: { authorization: `Bearer ${READ}`, 'content-type': 'application/json' }, body: JSON.stringify({ state: 'COMPLETED' }),
    });
    assert.equal(report.status, 403);
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output);
  }

  // The paths ran and logged (the test is not vacuous) ...
  assert.match(output, /dispatch failed; will retry/);
  assert.match(output, /"level":20/, "verbose (debug/trace) logging was on");
  assert.match(output, new RegExp(`127\\.0\\.0\\.1:${hangPort}/run`), 'the scrubbed target URL is still there for operators');
  // ... and none of the secrets appear anywhere.
  assert.match(output, /"channel":"db-hook"|db-hook/, 'the database channel was worked on');
  assertNoSecrets(output, [
    ADMIN, READ, HTTP_SECRET, PREFECT_KEY, webhookUrl, WEBHOOK_PATH_TOKEN, WEBHOOK_QUERY_TOKEN, TARGET_QUERY_TOKEN,
    TARGET_PATH_TOKEN, DB_CHANNEL_PATH_TOKEN, dbChannelUrl,
  ]);
});

test('the logger redacts registered values anywhere in a line, and secret-named fields by path', () => {
  let out = '';
  const sink = new Writable({ write(chunk, _enc, cb) { out += chunk.toString(); cb(); } });
  const secret = 'value-registered-HHHH8888';
  registerSecrets([secret, 'https://discord.com/api/webhooks/1234/discordTokenIIII9999zzzzzz']);
  const log = createLogger({ level: 'trace', destination: sink });
  log.info({ nested: { deeper: [`a ${secret} b`] } }, `message with ${secret}`);
  log.error({ err: new Error(`boom at https://discord.com/api/webhooks/1234/discordTokenIIII9999zzzzzz`) }, 'post failed');
  log.warn({ target: { url: 'http://x.invalid/?k=unregistered-JJJJ', headers: { authorization: 'Basic abc' } }, token: 'unregistered-token-KKKK' }, 'by path');
  assertNoSecrets(out, [secret, 'discordTokenIIII9999zzzzzz', 'unregistered-JJJJ', 'Basic abc', 'unregistered-token-KKKK']);
  assert.equal(out.trim().split('\n').length, 3);
  assert.match(out, /\[redacted\]/);
});

test('secrets loaded at runtime are registered with the redactor: channel URLs and http target URLs, secrets and auth headers', async () => {
  const channelToken = 'runtimeChannelTok3nNNNN2222';
  const pathToken = 'runtimeTargetTok3nOOOO3333';
  const targetSecret = 'runtime-target-secret-PPPP4444';
  const bearer = 'Bearer runtimeBearerQQQQ5555';
  await upsertChannel(pool, { name: 'runtime-hook', url: `https://hooks.slack.com/services/T1/B2/${channelToken}` });
  const closed = await freePort(); // a port nothing listens on
  const target = { type: 'http' as const, mode: 'sync' as const, url: `http://127.0.0.1:${closed}/hooks/${pathToken}/run`, secret: targetSecret, headers: { authorization: bearer, accept: 'application/json' } };
  const ctx = { runId: '00000000-0000-4000-8000-000000000001', flow: 'f', scheduledFor: new Date(), parameters: {}, attempt: 0, signal: new AbortController().signal, log: createLogger({ level: 'silent' }) };
  const failure = await runHttpTarget(createHttp({ timeoutMs: 300 }), target, ctx, { secret: undefined, timeoutMs: 300 }).then(() => null, (err: Error) => err);
  assert.ok(failure, 'the call fails (nothing listens there any more)');
  assert.doesNotMatch(failure.message, new RegExp(pathToken), 'the error quotes the URL with its path token masked');
  assert.match(failure.message, /\/hooks\/\*\*\*\/run/);

  let out = '';
  const sink = new Writable({ write(chunk, _enc, cb) { out += chunk.toString(); cb(); } });
  const log = createLogger({ level: 'trace', destination: sink });
  log.info(`posting to https://hooks.slack.com/services/T1/B2/${channelToken} and ${target.url} with ${targetSecret} and ${bearer}`);
  assertNoSecrets(out, [channelToken, pathToken, targetSecret, bearer]);
  assert.match(out, /application\/json|posting to/, 'ordinary values are left alone');
});

test('an http target URL registers only what safeUrl hides: tokens in the path and query values, not the plain words', async () => {
  const closed = await freePort(); // a port nothing listens on
  const pathToken = 'a9f3c2e1b7d64e0f9a8b7c6d';
  const queryToken = 'queryTok3nRRRR6666';
  const url = `http://127.0.0.1:${closed}/jobs/warehouse-loader-nightly/${pathToken}?key=${queryToken}`;
  const target = { type: 'http' as const, mode: 'sync' as const, url, secret: 'plain-words-secret-SSSS7777' };
  const ctx = { runId: '00000000-0000-4000-8000-000000000002', flow: 'warehouse-loader-nightly', scheduledFor: new Date(), parameters: {}, attempt: 0, signal: new AbortController().signal, log: createLogger({ level: 'silent' }) };
  await runHttpTarget(createHttp({ timeoutMs: 300 }), target, ctx, { secret: undefined, timeoutMs: 300 }).catch(() => {});
  let out = '';
  const sink = new Writable({ write(chunk, _enc, cb) { out += chunk.toString(); cb(); } });
  createLogger({ level: 'trace', destination: sink }).info(`flow warehouse-loader-nightly called ${url}`);
  assertNoSecrets(out, [pathToken, queryToken]);
  assert.match(out, /flow warehouse-loader-nightly called .*\/jobs\/warehouse-loader-nightly\//, 'a long plain word in the path is not treated as a secret');
});
