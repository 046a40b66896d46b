import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { startTestApp, waitFor, type TestApp } from './support/app.ts';
import { startFakeDiscord, startFakeSlack, startFakeWebhook, type FakeChatServer, type FailureKind } from './support/fake-chat.ts';
import { createHttp } from '../src/http.ts';
import { createLogger, type Logger } from '../src/log.ts';
import { withTransaction } from '../src/db/client.ts';
import { BOSS_SCHEMA, EVENTS, QUEUES, type EventName, type EventPayload } from '../src/queue/catalog.ts';
import { chunkMessage } from '../src/notify/chunk.ts';
import { channelsFromConfig, ensureConfiguredChannels, listChannels, notifyTx, upsertChannel, DEFAULT_CHANNEL_EVENTS, NOTIFY_DEBOUNCE_SECONDS } from '../src/notify/operations.ts';
import { renderDigest, DIGEST_LINES_PER_GROUP } from '../src/notify/render.ts';
import { setupNotifications } from '../src/notify/setup.ts';
import { handleNotify } from '../src/workers/notify.ts';
import { fanIn } from '../src/workers/events.ts';
import { runCli as runCliProcess } from './support/cli.ts';
import { publishEvents, publishEvent } from '../src/runs/service.ts';
import { FlowwardenClient } from '../src/producers/client.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { NotFoundError, UserInputError } from '../src/errors.ts';
import type { WorkerDeps } from '../src/workers/types.ts';
import type { KyInstance } from 'ky';

let app: TestApp;
const fakes: FakeChatServer[] = [];
before(async () => {
  app = await startTestApp();
});
after(async () => {
  for (const f of fakes) await f.close();
  await app.close();
});
beforeEach(async () => {
  // Every test starts with no channel (cascades to their events and messages).
  await app.pool.query('delete from flowwarden.notification_channels');
});

/** A fake chat server; `url` carries a kind prefix (127.0.0.1 does not tell the kind), `raw` is the bare URL. */
async function fake(kind: 'discord' | 'slack' | 'webhook' = 'discord'): Promise<FakeChatServer & { raw: string }> {
  const f = await (kind === 'discord' ? startFakeDiscord() : kind === 'slack' ? startFakeSlack() : startFakeWebhook());
  fakes.push(f);
  return Object.assign(f, { raw: f.url, url: `${kind}+${f.url}` });
}

/** A pino logger writing into a string, to check what the logs would show. */
function captureLogger(): { log: Logger; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination: stream }), text: () => lines.join('') };
}

/**
 * An HTTP client that scripts the fake's failures per request number (1-based), so failures land
 * between chunks, not only before the first one. Optionally rewrites a request's body.
 */
function scriptedHttp(f: FakeChatServer, script: Record<number, FailureKind>, rewrite: Record<number, string> = {}): KyInstance {
  let n = 0;
  return createHttp({ timeoutMs: 30_000 }).extend({
    hooks: {
      beforeRequest: [
        ({ request }) => {
          n++;
          const kind = script[n];
          if (kind) f.failNext(kind);
          const body = rewrite[n];
          if (body !== undefined) return new Request(request, { body });
          return undefined;
        },
      ],
    },
  });
}

function depsWith(overrides: Partial<WorkerDeps>): WorkerDeps {
  return { ...app.deps, ...overrides };
}

async function channelId(name: string): Promise<string> {
  const { rows } = await app.pool.query<{ id: string }>('select id from flowwarden.notification_channels where name = $1', [name]);
  return rows[0]!.id;
}

interface Attempts {
  failures: number;
  errors: string[];
}

/** Run the notify handler the way pg-boss would: retry after each throw (no backoff wait) until it returns. */
async function runNotifyWithRetries(deps: WorkerDeps, id: string, options: { retryLimit?: number; log?: Logger } = {}): Promise<Attempts> {
  const retryLimit = options.retryLimit ?? 30;
  const errors: string[] = [];
  for (let retryCount = 0; retryCount <= retryLimit; retryCount++) {
    try {
      await handleNotify(deps, { data: { channelId: id }, retryCount, retryLimit, signal: new AbortController().signal }, options.log ?? deps.log);
      return { failures: errors.length, errors };
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  return { failures: errors.length, errors };
}

async function messagesOf(id: string): Promise<Array<{ status: string; chunks: string[]; chunksTotal: number; chunksDelivered: number; lastError: string | null; text: string }>> {
  const { rows } = await app.pool.query(
    `select status, chunks, chunks_total as "chunksTotal", chunks_delivered as "chunksDelivered", last_error as "lastError", text
       from flowwarden.notification_messages where channel_id = $1 order by created_at, id`,
    [id],
  );
  return rows;
}

async function notifyJobs(id: string): Promise<number> {
  const { rows } = await app.pool.query<{ n: number }>(
    `select count(*)::int as n from ${BOSS_SCHEMA}.job where name = $1 and singleton_key = $2`,
    [QUEUES.notify, id],
  );
  return rows[0]!.n;
}

function payload(event: EventName, flowName: string, extra: Partial<EventPayload> = {}): EventPayload {
  return { event, flowId: '00000000-0000-0000-0000-000000000000', flowName, at: new Date().toISOString(), ...extra };
}

async function fanInOne(p: EventPayload, log: Logger = app.log) {
  return withTransaction(app.pool, (tx) => fanIn(app.deps, tx, p, log));
}

/** A long message: many Discord chunks, with a code fence crossing chunk boundaries. */
function longText(): string {
  const lines: string[] = ['nightly report @everyone'];
  for (let i = 0; i < 120; i++) lines.push(`line ${String(i).padStart(3, '0')}: ${'x'.repeat(60)} <@123456>`);
  lines.push('```ts');
  for (let i = 0; i < 60; i++) lines.push(`const v${i} = ${i}; // ${'y'.repeat(50)}`);
  lines.push('```');
  for (let i = 0; i < 40; i++) lines.push(`tail ${i} ${'z'.repeat(70)}`);
  return lines.join('\n');
}

describe('delivery', () => {
  test('a long message reaches Discord in order, each chunk exactly once, through a 429 storm and 5xx bursts', async () => {
    const discord = await fake('discord');
    await upsertChannel(app.pool, { name: 'ops', url: discord.url });
    const id = await channelId('ops');
    const text = longText();
    await withTransaction(app.pool, (tx) => notifyTx(app.boss, tx, 'ops', text));

    const expected = chunkMessage(text, { limit: 2000 });
    assert.ok(expected.length >= 8, `expected many chunks, got ${expected.length}`);
    // Failures land before the first chunk and between later ones: 429s are waited out in the
    // same job; 500s and resets make the job throw, and the retry resumes where it stopped.
    const script: Record<number, FailureKind> = {
      1: '429', 2: '429', 3: '429', 5: '500', 6: '500', 8: 'reset', 10: '429', 11: '429', 12: '429', 13: '429', 15: '500', 17: '429', 18: '500',
    };
    const deps = depsWith({ http: scriptedHttp(discord, script) });
    const { failures } = await runNotifyWithRetries(deps, id);

    assert.equal(failures, 5, 'each 500 and the reset cost one job attempt; 429s none');
    const bodies = discord.received.map((r) => (r.body as { content: string }).content);
    assert.deepEqual(bodies, expected, 'every chunk, in order, no duplicates');
    assert.equal(new Set(bodies).size, bodies.length);
    for (const r of discord.received) assert.deepEqual((r.body as { allowed_mentions: unknown }).allowed_mentions, { parse: [] });
    const [message] = await messagesOf(id);
    assert.equal(message!.status, 'delivered');
    assert.equal(message!.chunksDelivered, expected.length);
    assert.equal(message!.chunksTotal, expected.length);
    assert.deepEqual(message!.chunks, expected);

    // Running the job again (a duplicate delivery) posts nothing.
    const before = discord.attempts;
    await runNotifyWithRetries(app.deps, id);
    assert.equal(discord.attempts, before);
  });

  test('a retry after a crash mid-message resumes at the first undelivered chunk', async () => {
    const slack = await fake('slack');
    await upsertChannel(app.pool, { name: 'team', url: slack.url });
    const id = await channelId('team');
    await withTransaction(app.pool, (tx) => notifyTx(app.boss, tx, 'team', longText()));
    // The first attempt dies (connection reset) on the 3rd chunk.
    const job = { data: { channelId: id }, retryCount: 0, retryLimit: 5, signal: new AbortController().signal };
    await assert.rejects(handleNotify(depsWith({ http: scriptedHttp(slack, { 3: 'reset' }) }), job, app.log), /network error/);
    assert.equal(slack.received.length, 2);
    const [partial] = await messagesOf(id);
    assert.equal(partial!.status, 'pending');
    assert.equal(partial!.chunksDelivered, 2);
    assert.match(partial!.lastError ?? '', /chunk 3\//);

    await runNotifyWithRetries(app.deps, id);
    const [done] = await messagesOf(id);
    assert.equal(done!.status, 'delivered');
    const texts = slack.received.map((r) => (r.body as { text: string }).text);
    assert.equal(texts.length, done!.chunksTotal);
    assert.equal(new Set(texts).size, texts.length, 'no chunk posted twice');
  });

  test('a 429 asking to wait longer than the job waits re-queues the job for then; nothing is re-sent', async () => {
    const discord = await fake('discord');
    await upsertChannel(app.pool, { name: 'ops', url: discord.url });
    const id = await channelId('ops');
    const text = longText();
    const expected = chunkMessage(text, { limit: 2000 });
    await withTransaction(app.pool, (tx) => notifyTx(app.boss, tx, 'ops', text));
    await app.pool.query(`delete from ${BOSS_SCHEMA}.job where name = $1`, [QUEUES.notify]);

    // Two chunks go out, then Discord asks for 10 minutes.
    let n = 0;
    const http = createHttp({ timeoutMs: 30_000 }).extend({
      hooks: { beforeRequest: [() => void (++n === 3 && discord.failNext('429', 1, 600))] },
    });
    const job = { data: { channelId: id }, retryCount: 0, retryLimit: 8, signal: new AbortController().signal };
    await handleNotify(depsWith({ http }), job, app.log); // returns: the attempt is not a failure
    assert.equal(discord.received.length, 2);
    const [paused] = await messagesOf(id);
    assert.equal(paused!.status, 'pending');
    assert.equal(paused!.chunksDelivered, 2);
    assert.match(paused!.lastError ?? '', /rate limited.*600/);

    const { rows: jobs } = await app.pool.query<{ id: string; data: { channelId: string }; wait: number }>(
      `select id, data, extract(epoch from start_after - created_on)::float8 as wait
         from ${BOSS_SCHEMA}.job where name = $1 and state = 'created'`,
      [QUEUES.notify],
    );
    assert.equal(jobs.length, 1, 'one notify job re-queued');
    assert.deepEqual(jobs[0]!.data, { channelId: id });
    assert.ok(jobs[0]!.wait >= 600 && jobs[0]!.wait <= 602, `starts after retry_after (600 s), got ${jobs[0]!.wait} s`);

    // When it runs, it resumes at the third chunk: every chunk reaches Discord exactly once.
    await handleNotify(app.deps, { ...job, data: jobs[0]!.data }, app.log);
    assert.deepEqual(discord.received.map((r) => (r.body as { content: string }).content), expected);
    assert.equal((await messagesOf(id))[0]!.status, 'delivered');
  });

  test('a chunk rejected with 400 fails the message, is not retried, and later messages still go out', async () => {
    const discord = await fake('discord');
    await upsertChannel(app.pool, { name: 'ops', url: discord.url });
    const id = await channelId('ops');
    await withTransaction(app.pool, (tx) => notifyTx(app.boss, tx, 'ops', longText()));
    // The 3rd request goes out without content: Discord answers 400 "Cannot send an empty message".
    const deps = depsWith({ http: scriptedHttp(discord, {}, { 3: '{"allowed_mentions":{"parse":[]}}' }) });
    const { failures } = await runNotifyWithRetries(deps, id);
    assert.equal(failures, 0, 'a permanent rejection is not a job failure to retry');
    const [message] = await messagesOf(id);
    assert.equal(message!.status, 'failed');
    assert.equal(message!.chunksDelivered, 2);
    assert.match(message!.lastError ?? '', /HTTP 400.*Cannot send an empty message/);
    assert.equal(discord.received.length, 2);

    const attempts = discord.attempts;
    await runNotifyWithRetries(app.deps, id);
    assert.equal(discord.attempts, attempts, 'nothing re-sent');

    await withTransaction(app.pool, (tx) => notifyTx(app.boss, tx, 'ops', 'after the failure'));
    await runNotifyWithRetries(app.deps, id);
    assert.equal((discord.received.at(-1)!.body as { content: string }).content, 'after the failure');
  });

  test('the last retry of a transient failure gives the message up instead of holding the channel', async () => {
    const hook = await fake('webhook');
    await upsertChannel(app.pool, { name: 'hook', url: hook.url });
    const id = await channelId('hook');
    await withTransaction(app.pool, (tx) => notifyTx(app.boss, tx, 'hook', 'will not make it'));
    hook.failNext('500', 3);
    const { failures } = await runNotifyWithRetries(app.deps, id, { retryLimit: 2 });
    assert.equal(failures, 2);
    const [message] = await messagesOf(id);
    assert.equal(message!.status, 'failed');
    assert.match(message!.lastError ?? '', /gave up after 3 attempts.*HTTP 500/);
  });

  test('a generic webhook gets index, total and the event name', async () => {
    const hook = await fake('webhook');
    await upsertChannel(app.pool, { name: 'hook', url: hook.url, events: ['all'] });
    await fanInOne(payload(EVENTS.runCompleted, 'etl', { runId: 'r1' }));
    await runNotifyWithRetries(app.deps, await channelId('hook'));
    const body = hook.received[0]!.body as { text: string; index: number; total: number; event: string };
    assert.equal(body.index, 0);
    assert.equal(body.total, 1);
    assert.equal(body.event, 'run.completed');
    assert.match(body.text, /`etl` run completed/);
  });
});

/** A counter's value in the app's own metrics registry (0 when the series does not exist yet). */
async function counterValue(name: string, labels: Record<string, string>): Promise<number> {
  const metric = app.deps.metrics.registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const found = values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want));
  return found?.value ?? 0;
}

describe('delivery metrics', () => {
  const DELIVERED = 'flowwarden_notifications_delivered_total';
  const FAILURES = 'flowwarden_notification_failures_total';

  test('a message of many chunks counts once as delivered, when its last chunk is accepted', async () => {
    const discord = await fake('discord');
    await upsertChannel(app.pool, { name: 'ops', url: discord.url });
    const id = await channelId('ops');
    const text = longText();
    const chunks = chunkMessage(text, { limit: 2000 }).length;
    assert.ok(chunks >= 3);
    await withTransaction(app.pool, (tx) => notifyTx(app.boss, tx, 'ops', text));
    const before = await counterValue(DELIVERED, { channel_kind: 'discord' });

    // The first attempt stops after two chunks (a 500): the message is not delivered yet.
    const job = { data: { channelId: id }, retryCount: 0, retryLimit: 5, signal: new AbortController().signal };
    await assert.rejects(handleNotify(depsWith({ http: scriptedHttp(discord, { 3: '500' }) }), job, app.log), /HTTP 500/);
    assert.equal(discord.received.length, 2);
    assert.equal(await counterValue(DELIVERED, { channel_kind: 'discord' }), before, 'a partly delivered message is not counted');

    await runNotifyWithRetries(app.deps, id);
    assert.equal(discord.received.length, chunks);
    assert.equal(await counterValue(DELIVERED, { channel_kind: 'discord' }), before + 1, 'one message, counted once');
  });

  test('a message given up on its last attempt counts as a permanent failure; earlier attempts do not', async () => {
    const hook = await fake('webhook');
    await upsertChannel(app.pool, { name: 'hook', url: hook.url });
    const id = await channelId('hook');
    await withTransaction(app.pool, (tx) => notifyTx(app.boss, tx, 'hook', 'will not make it'));
    const transient = await counterValue(FAILURES, { channel_kind: 'webhook', permanent: 'false' });
    const permanent = await counterValue(FAILURES, { channel_kind: 'webhook', permanent: 'true' });
    const delivered = await counterValue(DELIVERED, { channel_kind: 'webhook' });
    hook.failNext('500', 3);
    const { failures } = await runNotifyWithRetries(app.deps, id, { retryLimit: 2 });
    assert.equal(failures, 2);
    assert.equal((await messagesOf(id))[0]!.status, 'failed');
    assert.equal(await counterValue(FAILURES, { channel_kind: 'webhook', permanent: 'false' }), transient + 2, 'the two retried attempts');
    assert.equal(await counterValue(FAILURES, { channel_kind: 'webhook', permanent: 'true' }), permanent + 1, 'the attempt that gave the message up');
    assert.equal(await counterValue(DELIVERED, { channel_kind: 'webhook' }), delivered, 'nothing delivered');
  });
});

describe('digest and fan-in', () => {
  test('200 events for one channel become one digest post, not 200', async () => {
    const discord = await fake('discord');
    await upsertChannel(app.pool, { name: 'ops', url: discord.url });
    const id = await channelId('ops');
    // Debounce slots are NOTIFY_DEBOUNCE_SECONDS slices of the database clock: read it around the loop.
    const dbEpoch = async () => (await app.pool.query<{ t: number }>('select extract(epoch from clock_timestamp())::float8 as t')).rows[0]!.t;
    const started = await dbEpoch();
    for (let i = 0; i < 200; i++) {
      await fanInOne(payload(EVENTS.runFailed, `flow-${i % 3}`, { runId: `run-${i}`, message: `boom ${i}`, details: { stateType: 'FAILED', stateName: 'Failed' } }));
    }
    const ended = await dbEpoch();
    // At most one job per debounce slot the loop touched, plus the next-slot one: on a loaded machine
    // the loop takes longer and legitimately spans more slots; the bound follows, never a speed.
    const slot = (epoch: number) => Math.floor(epoch / NOTIFY_DEBOUNCE_SECONDS);
    const slots = slot(ended) - slot(started) + 2;
    const jobs = await notifyJobs(id);
    assert.ok(jobs >= 1 && jobs <= slots, `the notify job is debounced per channel (${jobs} jobs over ${slots - 1} slot(s))`);

    await runNotifyWithRetries(app.deps, id);
    assert.equal(discord.received.length, 1);
    const content = (discord.received[0]!.body as { content: string }).content;
    assert.match(content, /^📋 200 events for ops:/);
    assert.match(content, /`flow-0` · run\.failed ×67/);
    assert.match(content, new RegExp(`… and ${67 - DIGEST_LINES_PER_GROUP} more`));
    const { rows } = await app.pool.query<{ n: number }>(
      'select count(*)::int as n from flowwarden.notification_events where channel_id = $1 and message_id is null',
      [id],
    );
    assert.equal(rows[0]!.n, 0, 'every event folded into the digest');
  });

  test('events reach the subscribed channels only (event types and flows)', async () => {
    const hook = await fake('webhook');
    await upsertChannel(app.pool, { name: 'defaults', url: hook.url });
    await upsertChannel(app.pool, { name: 'completions', url: hook.url, events: ['run.completed'] });
    await upsertChannel(app.pool, { name: 'etl-failures', url: hook.url, events: ['run.failed'], flows: ['etl'] });
    await upsertChannel(app.pool, { name: 'everything', url: hook.url, events: ['all'] });

    const names = async (p: EventPayload) => {
      const r = await fanInOne(p);
      assert.equal(r.kind, 'channels');
      return r.kind === 'channels' ? r.channels : [];
    };
    assert.deepEqual(await names(payload(EVENTS.runFailed, 'etl')), ['defaults', 'etl-failures', 'everything']);
    assert.deepEqual(await names(payload(EVENTS.runFailed, 'other')), ['defaults', 'everything']);
    assert.deepEqual(await names(payload(EVENTS.runCompleted, 'etl')), ['completions', 'everything']);
    assert.deepEqual(await names(payload(EVENTS.runLate, 'etl')), ['defaults', 'everything']);
    assert.deepEqual(await names(payload(EVENTS.flowDisabled, 'etl', { message: '3 failures in a row' })), ['defaults', 'everything']);

    const { rows } = await app.pool.query<{ name: string; n: number }>(
      `select c.name, count(e.id)::int as n from flowwarden.notification_channels c
         left join flowwarden.notification_events e on e.channel_id = c.id group by c.name order by c.name`,
    );
    assert.deepEqual(rows, [
      { name: 'completions', n: 1 },
      { name: 'defaults', n: 4 },
      { name: 'etl-failures', n: 1 },
      { name: 'everything', n: 5 },
    ]);
  });

  test('with no channel configured, events go to the console sink (a warn log line)', async () => {
    const { log, text } = captureLogger();
    const r = await fanInOne(payload(EVENTS.flowDisabled, 'etl', { message: 'critical task failed', details: { by: 'guard' } }), log);
    assert.equal(r.kind, 'console');
    const line = JSON.parse(text().trim().split('\n').at(-1)!);
    assert.equal(line.level, 40);
    assert.equal(line.event, 'flow.disabled');
    assert.match(line.msg, /no channel configured.*⛔ `etl` disabled by guard: critical task failed/);
  });

  test('an events job is fanned in once even when delivered twice', async () => {
    const hook = await fake('webhook');
    await upsertChannel(app.pool, { name: 'defaults', url: hook.url });
    await withTransaction(app.pool, (tx) => publishEvent(app.boss, tx, payload(EVENTS.runLate, 'etl', { runId: 'late-1' })));
    const [job] = await app.boss.fetch<EventPayload>(QUEUES.events, { includeMetadata: true });
    assert.ok(job);
    const first = await withTransaction(app.pool, (tx) => fanIn(app.deps, tx, job.data, app.log, job));
    const second = await withTransaction(app.pool, (tx) => fanIn(app.deps, tx, job.data, app.log, job));
    assert.equal(first.kind, 'channels');
    assert.equal(second.kind, 'duplicate');
    const { rows } = await app.pool.query<{ n: number }>(`select count(*)::int as n from flowwarden.notification_events where text like '%late-1%'`);
    assert.equal(rows[0]!.n, 1);
  });

  test('digest text is grouped by flow and event, and capped', () => {
    const events = Array.from({ length: 30 }, (_, i) => ({
      id: i + 1,
      event: (i % 25) % 2 ? 'run.failed' : 'run.late',
      flowName: `f${i % 25}`,
      text: `headline ${i}\ndetail that digests leave out`,
    }));
    const text = renderDigest('ops', events);
    assert.match(text, /^📋 30 events for ops:/);
    assert.doesNotMatch(text, /detail that digests leave out/);
    assert.match(text, /… and 5 more events in 5 other groups$/);
  });
});

describe('producer notify', () => {
  test("notify in the caller's transaction: rolled back → nothing sent; committed → delivered", async () => {
    const discord = await fake('discord');
    await upsertChannel(app.pool, { name: 'ops', url: discord.url });
    const id = await channelId('ops');
    const fw = await FlowwardenClient.connect({ pool: app.pool, boss: app.boss });
    const client = await app.pool.connect();
    try {
      await client.query('begin');
      await fw.notify('ops', 'rolled back', { db: client });
      await client.query('rollback');
      assert.equal(await notifyJobs(id), 0);
      assert.equal((await app.pool.query('select 1 from flowwarden.notification_events where channel_id = $1', [id])).rowCount, 0);

      await client.query('begin');
      await fw.notify('ops', 'committed', { db: client });
      await client.query('commit');
    } finally {
      client.release();
    }
    assert.equal(await notifyJobs(id), 1);
    await runNotifyWithRetries(app.deps, id);
    assert.deepEqual(discord.received.map((r) => (r.body as { content: string }).content), ['committed']);

    await assert.rejects(fw.notify('nope', 'x'), (err: Error) => err instanceof NotFoundError && /channel 'nope' not found/.test(err.message));
    await assert.rejects(fw.notify('ops', '   '), (err: Error) => err instanceof UserInputError && /text is empty/.test(err.message));
    await fw.close();
  });
});

describe('channels', () => {
  test('FLOWWARDEN_NOTIFY_URLS entries are named by kind or NAME=URL, upserted idempotently, keeping subscriptions', async () => {
    const entries = [
      'https://discord.com/api/webhooks/1/aaa',
      'alerts=https://hooks.slack.com/services/T/B/ccc',
      'https://discord.com/api/webhooks/2/bbb?x=1',
      'https://example.com/hook?token=a=b',
      'console',
    ];
    assert.deepEqual(channelsFromConfig(entries).map((c) => c.name), ['discord-1', 'alerts', 'discord-2', 'webhook-1', 'console-1']);
    assert.throws(() => channelsFromConfig(['not a url']), (err: Error) => err instanceof UserInputError && /entry 1 is not a valid URL/.test(err.message));

    await ensureConfiguredChannels(app.pool, entries);
    await upsertChannel(app.pool, { name: 'alerts', url: 'https://hooks.slack.com/services/T/B/ccc', events: ['run.failed'], flows: ['etl'] });
    await ensureConfiguredChannels(app.pool, entries); // a restart
    const list = await listChannels(app.pool);
    assert.deepEqual(list.map((c) => [c.name, c.kind]), [['alerts', 'slack'], ['console-1', 'console'], ['discord-1', 'discord'], ['discord-2', 'discord'], ['webhook-1', 'webhook']]);
    const alerts = list.find((c) => c.name === 'alerts')!;
    assert.deepEqual(alerts.events, ['run.failed']);
    assert.deepEqual(alerts.flows, ['etl']);
    assert.deepEqual(list.find((c) => c.name === 'discord-1')!.events, [...DEFAULT_CHANNEL_EVENTS]);
  });

  test('bad channel input is refused with a clear message and without echoing the URL', async () => {
    await assert.rejects(upsertChannel(app.pool, { name: 'bad name!', url: 'https://example.com/h' }), /channel name 'bad name!' is not valid/);
    await assert.rejects(upsertChannel(app.pool, { name: 'x', url: 'https://example.com/h', events: ['run.exploded'] }), /unknown event\(s\) run\.exploded/);
    await assert.rejects(
      upsertChannel(app.pool, { name: 'x', url: 'discord.com/api/webhooks/1/secret-token' }),
      (err: Error) => err instanceof UserInputError && !err.message.includes('secret-token'),
    );
  });

  test('a webhook URL never appears in logs or in `channels list` output', async () => {
    const discord = await fake('discord');
    const { log, text } = captureLogger();
    const secretPath = new URL(discord.raw).pathname;
    await setupNotifications(app.boss, app.pool, { notifyUrls: [`ops=${discord.url}`], log, kick: true });
    const id = await channelId('ops');
    await fanInOne(payload(EVENTS.runFailed, 'etl', { message: `upstream said ${discord.raw} is down` }), log);
    await withTransaction(app.pool, (tx) => notifyTx(app.boss, tx, 'ops', longText()));
    const deps = depsWith({ http: scriptedHttp(discord, { 1: '429', 2: '500', 4: 'reset' }, { 6: '{}' }), log });
    await runNotifyWithRetries(deps, id, { log });
    assert.ok(discord.received.length > 0);
    const logs = text();
    assert.ok(logs.length > 0);
    assert.ok(logs.includes('rate limited'), 'the failures were logged');
    assert.ok(!logs.includes(discord.raw), 'URL leaked into logs');
    assert.ok(!logs.includes(secretPath), 'token path leaked into logs');

    const listed = JSON.stringify(await listChannels(app.pool));
    assert.ok(!listed.includes(secretPath));

    // The real CLI, as an operator runs it.
    const out = await runCli(['channels', 'list', '--json']);
    assert.equal(out.code, 0, out.stderr);
    assert.ok(!out.stdout.includes(secretPath), 'token path leaked into channels list');
    const rows = JSON.parse(out.stdout) as Array<{ name: string; url: string; kind: string }>;
    assert.deepEqual(rows.map((r) => [r.name, r.kind, r.url]), [['ops', 'discord', `${new URL(discord.raw).origin}/…`]]);
    const table = await runCli(['channels', 'list']);
    assert.ok(!table.stdout.includes(secretPath));
  });

  test('the CLI adds and removes channels, and explains bad input', async () => {
    // A flow that does not exist is refused (a typo would make a channel that never hears anything).
    const typo = await runCli(['channels', 'add', 'team', 'https://hooks.slack.com/services/T/B/secret-xyz', '--flow', 'etl,nosuch']);
    assert.equal(typo.code, 1);
    assert.match(typo.stderr, /channel 'team': no flow named 'etl', 'nosuch'; a channel's flows must exist/);
    assert.ok(!typo.stderr.includes('secret-xyz'));
    assert.deepEqual((await listChannels(app.pool)).filter((c) => c.name === 'team'), [], 'nothing written');
    await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'etl', target: { type: 'function' } }));
    const add = await runCli(['channels', 'add', 'team', 'https://hooks.slack.com/services/T/B/secret-xyz', '--events', 'run.failed,flow.disabled', '--flow', 'etl']);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /added channel team \(slack https:\/\/hooks\.slack\.com\/…\): events run\.failed,flow\.disabled; flows etl/);
    assert.ok(!add.stdout.includes('secret-xyz'));
    const bad = await runCli(['channels', 'add', 'team', 'https://hooks.slack.com/services/T/B/secret-xyz', '--events', 'run.nope']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unknown event\(s\) run\.nope/);
    assert.ok(!bad.stderr.includes('secret-xyz'));
    const rm = await runCli(['channels', 'remove', 'team']);
    assert.equal(rm.code, 0, rm.stderr);
    const again = await runCli(['channels', 'remove', 'team']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /channel 'team' not found/);
  });
});

describe('end to end', () => {
  test('a burst of published events reaches Discord as one digest through the running workers', async () => {
    const discord = await fake('discord');
    const e2e = await startTestApp({ config: { notifyUrls: [`ops=${discord.url}`] }, start: true });
    try {
      await withTransaction(e2e.pool, async (tx) => {
        // Half one by one, half as one batch job (how the late sweep publishes).
        for (let i = 0; i < 25; i++) await publishEvent(e2e.boss, tx, payload(EVENTS.runFailed, 'etl', { runId: `e2e-${i}`, message: 'boom' }));
        await publishEvents(e2e.boss, tx, Array.from({ length: 25 }, (_, i) => payload(EVENTS.runLate, 'etl', { runId: `e2e-late-${i}` })));
      });
      const folded = async () => {
        const { rows } = await e2e.pool.query<{ pending: number; undelivered: number }>(
          `select (select count(*) from flowwarden.notification_events where message_id is null)::int as pending,
                  (select count(*) from flowwarden.notification_messages where status <> 'delivered')::int as undelivered,
                  (select count(*) from flowwarden.notification_events)::int as total`,
        );
        return rows[0]!.pending === 0 && rows[0]!.undelivered === 0 && (rows[0] as unknown as { total: number }).total === 50;
      };
      await waitFor(folded, { what: 'all 50 events delivered', timeoutMs: 20_000 });
      // How many digests depends on how many debounce windows the fan-in spans (one or two on an idle
      // machine, more on a loaded one); what holds every time: the burst is folded into digests.
      const posts = discord.received.map((r) => (r.body as { content: string }).content);
      assert.ok(posts.length >= 1 && posts.length < 26, `50 events in 26 jobs fold into fewer posts than jobs, got ${posts.length}`);
      assert.match(posts.join('\n'), /\d+ events for ops:/);
    } finally {
      await e2e.close();
    }
  });
});

/** The real CLI on this file's database (test/support/cli.ts). */
function runCli(args: string[]) {
  return runCliProcess(args, { DATABASE_URL: app.db.url, FLOWWARDEN_LOG_LEVEL: 'warn' });
}
