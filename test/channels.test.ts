import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHttp } from '../src/http.ts';
import { inspect } from 'node:util';
import { PermanentError, RateLimitedError } from '../src/errors.ts';
import {
  buildPayload,
  channelLimit,
  detectChannelKind,
  escapeSlackText,
  postChunk,
  redactUrl,
  resolveChannel,
  type Channel,
} from '../src/notify/channels.ts';
import { chunkMessage } from '../src/notify/chunk.ts';
import { startFakeDiscord, startFakeSlack, startFakeWebhook, type FakeChatServer } from './support/fake-chat.ts';

// Requests meant to succeed get a generous timeout: on a loaded machine a fake's answer may take seconds.
const http = createHttp({ timeoutMs: 30_000 });

/** Post and return the error it throws (fails the test if it resolves). */
async function postError(channel: Channel, payload: Parameters<typeof postChunk>[2], httpClient = http): Promise<Error> {
  try {
    await postChunk(httpClient, channel, payload);
  } catch (err) {
    assert.ok(err instanceof Error);
    assertNoSecret(err, channel.url);
    return err;
  }
  assert.fail('expected postChunk to throw');
}

/** The webhook URL (or its token path) must never appear in what an error shows or logs. */
function assertNoSecret(err: Error, url: string): void {
  const u = new URL(url);
  const shown = [err.message, String(err), err.stack ?? '', JSON.stringify(err), inspect((err as { cause?: unknown }).cause ?? '')];
  for (const s of shown) {
    assert.ok(!s.includes(url), `URL leaked: ${s}`);
    assert.ok(!s.includes(u.pathname), `token path leaked: ${s}`);
  }
}

const meta = { index: 0, total: 1 };

describe('channel kinds and payloads', () => {
  test('kinds are detected from the webhook URL', () => {
    assert.equal(detectChannelKind('https://discord.com/api/webhooks/1/abc'), 'discord');
    assert.equal(detectChannelKind('https://discordapp.com/api/webhooks/1/abc'), 'discord');
    assert.equal(detectChannelKind('https://canary.discord.com/api/v10/webhooks/1/abc'), 'discord');
    assert.equal(detectChannelKind('https://hooks.slack.com/services/T/B/x'), 'slack');
    assert.equal(detectChannelKind('https://example.com/hook'), 'webhook');
    assert.equal(detectChannelKind('https://discord.com/channels/1/2'), 'webhook');
    assert.equal(detectChannelKind('https://evil.example/discord.com/api/webhooks/1/a'), 'webhook');
  });

  test('an explicit kind wins; an invalid URL is refused without echoing it', () => {
    assert.deepEqual(resolveChannel('http://127.0.0.1:1/x', 'discord'), { kind: 'discord', url: 'http://127.0.0.1:1/x' });
    assert.throws(
      () => detectChannelKind('discord.com/api/webhooks/1/secret-token'),
      (err: Error) => err instanceof PermanentError && !err.message.includes('secret-token'),
    );
  });

  test('limits per kind', () => {
    assert.equal(channelLimit('discord'), 2000);
    assert.equal(channelLimit('slack'), 3000);
    assert.equal(channelLimit('webhook'), 20000);
  });

  test('discord payloads suppress every mention', () => {
    assert.deepEqual(buildPayload('discord', '@everyone run failed', { index: 2, total: 3 }), {
      content: '@everyone run failed',
      allowed_mentions: { parse: [] },
    });
  });

  test('slack payloads escape special mentions and &<>', () => {
    assert.equal(escapeSlackText('<!channel> <!here> <!everyone> <@U1> a&b'), '&lt;!channel&gt; &lt;!here&gt; &lt;!everyone&gt; &lt;@U1&gt; a&amp;b');
    assert.deepEqual(buildPayload('slack', '*failed* <!here>', meta), { text: '*failed* &lt;!here&gt;', mrkdwn: true });
  });

  test('generic webhook payloads carry event and position', () => {
    assert.deepEqual(buildPayload('webhook', 'hi', { index: 1, total: 2, event: 'run.failed' }), {
      text: 'hi',
      event: 'run.failed',
      index: 1,
      total: 2,
    });
    assert.deepEqual(buildPayload('webhook', 'hi', meta), { text: 'hi', index: 0, total: 1 });
  });

  test('redactUrl keeps only the origin', () => {
    assert.equal(redactUrl('https://discord.com/api/webhooks/1/secret'), 'https://discord.com/…');
    assert.equal(redactUrl('not a url'), '[invalid url]');
  });
});

describe('postChunk against a fake Discord', () => {
  let discord: FakeChatServer;
  let channel: Channel;
  before(async () => {
    discord = await startFakeDiscord();
    channel = { kind: 'discord', url: discord.url };
  });
  after(() => discord.close());
  // A request that timed out or was aborted client-side (a loaded machine) may never have reached
  // the fake: its scripted failure must not catch the next test's request.
  afterEach(() => discord.clearFailures());

  test('a chunk is delivered (204) with mentions suppressed', async () => {
    const before = discord.received.length;
    await postChunk(http, channel, buildPayload('discord', 'run failed @everyone', meta));
    assert.equal(discord.received.length, before + 1);
    assert.deepEqual(discord.received.at(-1)!.body, { content: 'run failed @everyone', allowed_mentions: { parse: [] } });
  });

  test('?wait=true answers 200 and is also success', async () => {
    await postChunk(http, { kind: 'discord', url: `${discord.url}?wait=true` }, buildPayload('discord', 'hello', meta));
  });

  test('content over 2000 is a PermanentError quoting Discord', async () => {
    const err = await postError(channel, buildPayload('discord', 'x'.repeat(2001), meta));
    assert.ok(err instanceof PermanentError, String(err));
    assert.match(err.message, /HTTP 400/);
    assert.match(err.message, /Invalid Form Body \(code 50035\)/);
    assert.match(err.message, /content: Must be 2000 or fewer in length\./);
  });

  test('an empty message is a PermanentError (50006)', async () => {
    const err = await postError(channel, buildPayload('discord', '   ', meta));
    assert.ok(err instanceof PermanentError);
    assert.match(err.message, /Cannot send an empty message \(code 50006\)/);
  });

  test('a deleted webhook (404) is permanent', async () => {
    const err = await postError({ kind: 'discord', url: discord.url.replace('fake-secret-token', 'other-token') }, buildPayload('discord', 'x', meta));
    assert.ok(err instanceof PermanentError);
    assert.match(err.message, /HTTP 404.*Unknown Webhook/);
  });

  test('429 uses the body retry_after (fractional seconds) over the rounded header', async () => {
    discord.failNext('429', 1, 0.05);
    let err = await postError(channel, buildPayload('discord', 'x', meta));
    assert.ok(err instanceof RateLimitedError, String(err));
    assert.equal(err.retryAfterMs, 50);

    discord.failNext('429', 1, 1.5);
    err = await postError(channel, buildPayload('discord', 'x', meta));
    assert.ok(err instanceof RateLimitedError);
    assert.equal(err.retryAfterMs, 1500);
    assert.match(err.message, /You are being rate limited/);
  });

  test('500 is transient', async () => {
    discord.failNext('500');
    const err = await postError(channel, buildPayload('discord', 'x', meta));
    assert.ok(!(err instanceof PermanentError) && !(err instanceof RateLimitedError), String(err));
    assert.match(err.message, /HTTP 500/);
  });

  test('a connection reset is transient', async () => {
    discord.failNext('reset');
    const err = await postError(channel, buildPayload('discord', 'x', meta));
    assert.ok(!(err instanceof PermanentError) && !(err instanceof RateLimitedError), String(err));
    assert.match(err.message, /network error/);
  });

  test('a timeout is transient and does not show the URL (ky puts it in its message)', async () => {
    discord.failNext('hang');
    const err = await postError(channel, buildPayload('discord', 'x', meta), createHttp({ timeoutMs: 150 }));
    assert.ok(!(err instanceof PermanentError) && !(err instanceof RateLimitedError), String(err));
    assert.match(err.message, /timed out/);
  });

  test('an aborted job signal stops the post', async () => {
    discord.failNext('hang');
    const controller = new AbortController();
    const arrived = discord.waitForAttempts(discord.attempts + 1);
    const pending = postChunk(http, channel, buildPayload('discord', 'x', meta), { signal: controller.signal });
    await arrived;
    controller.abort();
    await assert.rejects(pending, (err: Error) => {
      assertNoSecret(err, channel.url);
      return err.name === 'AbortError' && !(err instanceof PermanentError);
    });
  });

  test('a long report chunks and posts in order, every chunk accepted', async () => {
    const start = discord.received.length;
    const report = ['**flow nightly-etl disabled** @everyone', '```py', ...Array.from({ length: 300 }, (_, i) => `Traceback line ${i}: ValueError("bad 😀 input")`), '```', 'done'].join('\n');
    const chunks = chunkMessage(report, { limit: channelLimit('discord') });
    assert.ok(chunks.length > 1);
    for (const [index, chunk] of chunks.entries()) {
      await postChunk(http, channel, buildPayload('discord', chunk, { index, total: chunks.length }));
    }
    const got = discord.received.slice(start).map((r) => (r.body as { content: string }).content);
    assert.deepEqual(got, chunks);
  });
});

describe('postChunk against a fake Slack', () => {
  let slack: FakeChatServer;
  let channel: Channel;
  before(async () => {
    slack = await startFakeSlack();
    channel = { kind: 'slack', url: slack.url };
  });
  after(() => slack.close());

  test('a chunk is delivered with mentions escaped', async () => {
    await postChunk(http, channel, buildPayload('slack', '<!channel> run failed', meta));
    await slack.waitForReceived(1);
    assert.deepEqual(slack.received.at(-1)!.body, { text: '&lt;!channel&gt; run failed', mrkdwn: true });
  });

  test('429 uses the Retry-After header', async () => {
    slack.failNext('429', 1, 2);
    const err = await postError(channel, buildPayload('slack', 'x', meta));
    assert.ok(err instanceof RateLimitedError);
    assert.equal(err.retryAfterMs, 2000);
  });

  test('a missing text is a PermanentError with Slack\'s error code', async () => {
    const err = await postError(channel, buildPayload('slack', '', meta));
    assert.ok(err instanceof PermanentError);
    assert.match(err.message, /HTTP 400: no_text/);
  });

  test('500 and reset are transient', async () => {
    slack.failNext('500');
    let err = await postError(channel, buildPayload('slack', 'x', meta));
    assert.ok(!(err instanceof PermanentError) && !(err instanceof RateLimitedError));
    assert.match(err.message, /HTTP 500: internal_error/);
    slack.failNext('reset');
    err = await postError(channel, buildPayload('slack', 'x', meta));
    assert.ok(!(err instanceof PermanentError) && !(err instanceof RateLimitedError));
  });
});

describe('postChunk against a generic webhook', () => {
  let sink: FakeChatServer;
  before(async () => {
    sink = await startFakeWebhook();
  });
  after(() => sink.close());

  test('delivers the generic JSON', async () => {
    const channel = resolveChannel(sink.url);
    assert.equal(channel.kind, 'webhook');
    await postChunk(http, channel, buildPayload('webhook', 'hello', { index: 0, total: 1, event: 'run.late' }));
    assert.deepEqual(sink.received.at(-1)!.body, { text: 'hello', event: 'run.late', index: 0, total: 1 });
  });

  test('429 with only a header, then success', async () => {
    const channel = resolveChannel(sink.url);
    sink.failNext('429', 1, 3);
    const err = await postError(channel, buildPayload('webhook', 'x', meta));
    assert.ok(err instanceof RateLimitedError);
    assert.equal(err.retryAfterMs, 3000);
    await postChunk(http, channel, buildPayload('webhook', 'x', meta));
  });

  test('a refused connection is transient and does not show the URL', async () => {
    const closed = await startFakeWebhook({ path: '/hooks/very-secret-token-123' });
    const url = closed.url;
    await closed.close();
    const err = await postError({ kind: 'webhook', url }, buildPayload('webhook', 'x', meta));
    assert.ok(!(err instanceof PermanentError) && !(err instanceof RateLimitedError));
    assert.match(err.message, /network error/);
    assert.ok(!err.message.includes('very-secret-token-123'));
  });
});
