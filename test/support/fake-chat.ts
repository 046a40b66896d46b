/**
 * Local stand-ins for chat webhooks (127.0.0.1, random port) that enforce the real limits and
 * answer with the real error shapes, so the notify code is tested against behaviour rather than
 * against mocks of our own HTTP client.
 *
 * - Discord: POST + JSON only; `content` over 2000 (UTF-16 units, the stricter measure) → 400
 *   50035 BASE_TYPE_MAX_LENGTH; missing/blank content → 400 50006; bad `allowed_mentions` → 400
 *   50035; success 204 (200 with the message object when `?wait=true`).
 * - Slack: bad JSON → 400 `invalid_payload`; missing text → 400 `no_text` (Slack's own code);
 *   success 200 `ok`.
 * - Generic webhook sink: any JSON body → 200 `{"ok":true}`.
 *
 * Failures are scripted with `failNext(kind, count)`: '429' (rate limit with Retry-After header;
 * Discord also sends `retry_after` in the body), '500', 'reset' (socket destroyed before any
 * answer), 'hang' (never answers; for timeout tests). Failed requests are not added to
 * `received`, only to `attempts`. Tests wait with `waitForReceived(n)`, never with sleeps.
 */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { EventEmitter, once } from 'node:events';
import { scaled } from './timeouts.ts';

export type FailureKind = '429' | '500' | 'reset' | 'hang';

export interface ReceivedRequest {
  body: unknown;
  raw: string;
  path: string;
  headers: IncomingMessage['headers'];
  at: number;
}

export interface FakeChatServer {
  /** Webhook URL to post to (contains a fake secret token in the path). */
  url: string;
  /** Accepted messages, in arrival order. */
  received: ReceivedRequest[];
  /** Every request that reached the handler, accepted or not. */
  attempts: number;
  /** The next `count` requests fail as `kind`. 429 waits `retryAfterSeconds` (default 0.05). */
  failNext(kind: FailureKind, count?: number, retryAfterSeconds?: number): void;
  waitForReceived(count: number, timeoutMs?: number): Promise<void>;
  /** Resolves once `count` requests (accepted or failed) reached the server. */
  waitForAttempts(count: number, timeoutMs?: number): Promise<void>;
  /** Drop scripted failures not yet used. */
  clearFailures(): void;
  close(): Promise<void>;
}

export interface FakeChatOptions {
  /** Path of the webhook; default depends on the kind. */
  path?: string;
}

type Failure = { kind: FailureKind; retryAfterSeconds: number };
type Handler = (req: IncomingMessage, res: ServerResponse, raw: string, fake: Internals) => void;

interface Internals {
  accept(req: IncomingMessage, raw: string, body: unknown): void;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
function text(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(body);
}
function isJson(req: IncomingMessage): boolean {
  return (req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json');
}
function tryParse(raw: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch {
    return { ok: false };
  }
}

async function startFake(
  defaultPath: string,
  handler: Handler,
  failResponder: (res: ServerResponse, f: Failure) => void,
  opts: FakeChatOptions,
): Promise<FakeChatServer> {
  const failures: Failure[] = [];
  const received: ReceivedRequest[] = [];
  const events = new EventEmitter();
  const sockets = new Set<Socket>();
  const path = opts.path ?? defaultPath;
  let attempts = 0;

  const internals: Internals = {
    accept(req, raw, body) {
      received.push({ body, raw, path: req.url ?? '', headers: req.headers, at: Date.now() });
      events.emit('received');
    },
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      attempts += 1;
      fake.attempts = attempts;
      const failure = failures.shift();
      events.emit('attempt');
      if (failure) {
        if (failure.kind === 'reset') {
          req.socket.destroy();
          return;
        }
        if (failure.kind === 'hang') return; // closed by close()
        failResponder(res, failure);
        return;
      }
      const url = new URL(req.url ?? '/', 'http://fake');
      if (url.pathname !== path) {
        json(res, 404, { message: 'Unknown Webhook', code: 10015 }); // Source: discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes (10015 Unknown Webhook)
        return;
      }
      handler(req, res, Buffer.concat(chunks).toString('utf8'), internals);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('fake chat server has no port');

  const fake: FakeChatServer = {
    url: `http://127.0.0.1:${address.port}${path}`,
    received,
    attempts: 0,
    failNext(kind, count = 1, retryAfterSeconds = 0.05) {
      for (let i = 0; i < count; i++) failures.push({ kind, retryAfterSeconds });
    },
    async waitForReceived(count, timeoutMs = 5000) {
      if (received.length >= count) return;
      const signal = AbortSignal.timeout(scaled(timeoutMs));
      while (received.length < count) {
        await once(events, 'received', { signal });
      }
    },
    async waitForAttempts(count, timeoutMs = 5000) {
      if (attempts >= count) return;
      const signal = AbortSignal.timeout(scaled(timeoutMs));
      while (attempts < count) {
        await once(events, 'attempt', { signal });
      }
    },
    clearFailures() {
      failures.length = 0;
    },
    async close() {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}

// Source: discord.com/developers/docs/resources/webhook#execute-webhook (content: up to 2000 characters)
export const DISCORD_MAX_CONTENT = 2000;

export function discordRateLimitBody(retryAfterSeconds: number): unknown {
  // Source: discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit (429 body: message, retry_after in seconds, global)
  return { message: 'You are being rate limited.', retry_after: retryAfterSeconds, global: false };
}

// 50035 Invalid Form Body with per-field `errors`. Source: discord.com/developers/docs/topics/opcodes-and-status-codes#example-json-error-response
// (the docs give the shape; the field codes used below — STRING_TYPE_CONVERT, BASE_TYPE_MAX_LENGTH,
// BASE_TYPE_CHOICES, MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE — are Discord's validation codes as its API returns them).
function invalidFormBody(errors: unknown): unknown {
  return { code: 50035, message: 'Invalid Form Body', errors };
}

export function startFakeDiscord(opts: FakeChatOptions = {}): Promise<FakeChatServer> {
  const handler: Handler = (req, res, raw, fake) => {
    if (req.method !== 'POST') {
      // Source: discord.com/developers/docs/resources/webhook#execute-webhook (POST only); code 0 =
      // General error, opcodes-and-status-codes#json-json-error-codes; 405 per the HTTP status table there.
      json(res, 405, { message: '405: Method Not Allowed', code: 0 });
      return;
    }
    if (!isJson(req)) {
      // Discord reads a non-JSON body as a form without `content`.
      json(res, 400, { message: 'Cannot send an empty message', code: 50006 }); // Source: discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes (50006)
      return;
    }
    const parsed = tryParse(raw);
    if (!parsed.ok || !parsed.value || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
      json(res, 400, { message: 'The request body contains invalid JSON.', code: 50109 }); // Source: discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes (50109)
      return;
    }
    const body = parsed.value as Record<string, unknown>;
    const content = body.content;
    // Source: discord.com/developers/docs/resources/webhook#execute-webhook-jsonform-params (content: string, up to 2000 characters)
    if (content !== undefined && content !== null && typeof content !== 'string') {
      json(res, 400, invalidFormBody({ content: { _errors: [{ code: 'STRING_TYPE_CONVERT', message: 'Could not interpret "{}" as string.' }] } }));
      return;
    }
    if (typeof content === 'string' && content.length > DISCORD_MAX_CONTENT) {
      json(
        res,
        400,
        invalidFormBody({
          content: { _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: `Must be ${DISCORD_MAX_CONTENT} or fewer in length.` }] },
        }),
      );
      return;
    }
    // Source: discord.com/developers/docs/resources/message#allowed-mentions-object: parse is an array of
    // "roles" | "users" | "everyone"; roles/users are arrays of at most 100 ids, and each is exclusive
    // with its own type in parse ("users" in parse and a users array is an error).
    const am = body.allowed_mentions;
    if (am !== undefined) {
      const fields = am !== null && typeof am === 'object' && !Array.isArray(am) ? (am as Record<string, unknown>) : undefined;
      const parse = fields?.parse;
      const choices = fields !== undefined && (parse === undefined || (Array.isArray(parse) && parse.every((p) => p === 'roles' || p === 'users' || p === 'everyone')));
      if (!choices) {
        json(res, 400, invalidFormBody({ allowed_mentions: { _errors: [{ code: 'BASE_TYPE_CHOICES', message: "Value must be one of ('roles', 'users', 'everyone')." }] } }));
        return;
      }
      for (const kind of ['roles', 'users'] as const) {
        const ids = fields[kind];
        if (ids === undefined) continue;
        if (!Array.isArray(ids) || ids.length > 100) {
          json(res, 400, invalidFormBody({ allowed_mentions: { [kind]: { _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 100 or fewer in length.' }] } } }));
          return;
        }
        if (Array.isArray(parse) && parse.includes(kind)) {
          json(res, 400, invalidFormBody({ allowed_mentions: { _errors: [{ code: 'MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE', message: `parse:["${kind}"] and ${kind}: [ids...] are mutually exclusive.` }] } }));
          return;
        }
      }
    }
    if (typeof content !== 'string' || content.trim() === '') {
      json(res, 400, { message: 'Cannot send an empty message', code: 50006 }); // Source: discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes (50006)
      return;
    }
    fake.accept(req, raw, body);
    // Source: discord.com/developers/docs/resources/webhook#execute-webhook-query-string-params (wait=true:
    // 200 with the created message; otherwise 204 No Content)
    const wait = new URL(req.url ?? '/', 'http://fake').searchParams.get('wait') === 'true';
    if (wait) {
      json(res, 200, { id: String(Date.now()), type: 0, content, channel_id: '1', webhook_id: '1' });
    } else {
      res.writeHead(204);
      res.end();
    }
  };
  return startFake(
    '/api/webhooks/123456789012345678/fake-secret-token',
    handler,
    (res, f) => {
      if (f.kind === '429') {
        // Source: discord-api-docs developers/topics/rate-limits.mdx, "Header Format" (X-RateLimit-Scope is
        // returned only on 429s) and "Example Exceeded User Rate Limit Response" (Retry-After: 65 beside
        // retry_after: 64.57, i.e. the header is the body's seconds rounded up to a whole number).
        json(res, 429, discordRateLimitBody(f.retryAfterSeconds), {
          'retry-after': String(Math.ceil(f.retryAfterSeconds)),
          'x-ratelimit-scope': 'user',
        });
      } else {
        json(res, 500, { message: '500: Internal Server Error', code: 0 }); // Source: opcodes-and-status-codes#http (5xx: server error; code 0 General error)
      }
    },
    opts,
  );
}

export function startFakeSlack(opts: FakeChatOptions = {}): Promise<FakeChatServer> {
  const handler: Handler = (req, res, raw, fake) => {
    if (req.method !== 'POST') {
      // Source: api.slack.com/messaging/webhooks#posting_with_webhooks (messages are sent with an HTTP POST).
      // The status and body Slack gives another method are not documented; 405 with a plain-text code
      // in the style of the documented errors (docs.slack.dev/messaging/sending-messages-using-incoming-webhooks#handling_errors).
      text(res, 405, 'invalid_method');
      return;
    }
    const parsed = tryParse(raw);
    if (!parsed.ok || !parsed.value || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
      text(res, 400, 'invalid_payload'); // Source: api.slack.com/messaging/webhooks#handling_errors (400 invalid_payload)
      return;
    }
    const body = parsed.value as Record<string, unknown>;
    if (typeof body.text !== 'string' || body.text.trim() === '') {
      text(res, 400, 'no_text'); // Source: api.slack.com/messaging/webhooks#handling_errors (400 no_text)
      return;
    }
    fake.accept(req, raw, body);
    // Source: api.slack.com/messaging/webhooks (200, body "ok"); docs.slack.dev/tools/python-slack-sdk/webhook
    // (the SDK asserts response.body == "ok": a plain-text body, not JSON)
    text(res, 200, 'ok', { 'content-type': 'text/html' });
  };
  return startFake(
    '/services/T00000000/B00000000/fakesecrettoken',
    handler,
    (res, f) => {
      // Source: api.slack.com/apis/rate-limits (429 with a Retry-After header, in seconds)
      if (f.kind === '429') text(res, 429, 'rate_limited', { 'retry-after': String(Math.ceil(f.retryAfterSeconds)) });
      // Source: api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks (5xx with a
      // plain-text body; the one 500 code it names is `rollup_error`). The body here stays the Web API's
      // generic `internal_error` (api.slack.com/methods: common errors) because test/channels.test.ts pins it.
      else text(res, 500, 'internal_error');
    },
    opts,
  );
}

// Not a fake of any peer: the generic webhook is flowwarden's own contract (docs/internals.md,
// "Notifications"), so nothing here is taken from an external source.
export function startFakeWebhook(opts: FakeChatOptions = {}): Promise<FakeChatServer> {
  const handler: Handler = (req, res, raw, fake) => {
    if (req.method !== 'POST') {
      json(res, 405, { error: 'method not allowed' });
      return;
    }
    const parsed = tryParse(raw);
    if (!isJson(req) || !parsed.ok) {
      json(res, 400, { error: 'expected a JSON body' });
      return;
    }
    fake.accept(req, raw, parsed.value);
    json(res, 200, { ok: true });
  };
  return startFake(
    '/hooks/fake-secret-token',
    handler,
    (res, f) => {
      if (f.kind === '429') json(res, 429, { error: 'rate limited' }, { 'retry-after': String(Math.ceil(f.retryAfterSeconds)) });
      else json(res, 500, { error: 'internal error' });
    },
    opts,
  );
}
