/**
 * Local stand-ins for chat webhooks (127.0.0.1, random port) that enforce the real limits and
 * answer with the real error shapes, so the notify code is tested against behaviour rather than
 * against mocks of our own HTTP client. Each behaviour names its source (the Discord API docs
 * repository, Slack's docs pages) beside it.
 *
 * - Discord: Execute Webhook as documented: JSON or urlencoded form (another Content-Type → 400
 *   50035); `content` ≤ 2000 (UTF-16 units), `embeds` ≤ 10 within the embed limits, `username`
 *   1-80 without "clyde"/"discord", settable `flags` only, valid `allowed_mentions`, boolean
 *   `wait`/`with_components`; a message needs content, embeds, components or a poll (else 400
 *   50006); bad fields → 400 50035 with the nested `errors`; bad JSON → 400 50109; unknown webhook
 *   → 404 10015; a `thread_id` → 404 10003 (the fake channel has no threads). Success 204, or 200
 *   with the message object when `?wait=true`; both with X-RateLimit-* headers.
 * - Slack: bad JSON → 400 `invalid_payload`; no text (nor blocks/attachments) → 400 `no_text`;
 *   unknown webhook → 404 `no_service`; long text is accepted (Slack truncates at 40,000);
 *   success 200 `ok` (plain text).
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
  notFound: (res: ServerResponse) => void,
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
        notFound(res); // each kind answers an unknown webhook in its own shape
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

// Sources for the Discord fake are files of github.com/discord/discord-api-docs (read at commit
// c98d64b, 2026-08-06); the web page of each is discord.com/developers/docs/<path without
// "developers/" and ".mdx">.

// Source: developers/resources/webhook.mdx, Execute Webhook, JSON/Form Params (content: up to 2000 characters)
export const DISCORD_MAX_CONTENT = 2000;
// Source: the same table (embeds: array of up to 10 embed objects)
export const DISCORD_MAX_EMBEDS = 10;
const DISCORD_WEBHOOK_ID = '123456789012345678';
const DISCORD_CHANNEL_ID = '199737254929760256';
const DISCORD_GUILD_ID = '199737254929760257';
// Source: developers/resources/message.mdx, Message Flags; Execute Webhook `flags`: "only SUPPRESS_EMBEDS,
// SUPPRESS_NOTIFICATIONS and IS_COMPONENTS_V2 can be set".
const SUPPRESS_EMBEDS = 1 << 2;
const SUPPRESS_NOTIFICATIONS = 1 << 12;
const IS_COMPONENTS_V2 = 1 << 15;
const SETTABLE_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2;

export function discordRateLimitBody(retryAfterSeconds: number): unknown {
  // Source: developers/topics/rate-limits.mdx, "Rate Limit Response Structure" (message, retry_after: float seconds, global)
  return { message: 'You are being rate limited.', retry_after: retryAfterSeconds, global: false };
}

/**
 * Per-route rate-limit headers. Source: developers/topics/rate-limits.mdx, "Header Format" ("for most
 * API requests made, we return ... X-RateLimit-Limit, -Remaining, -Reset, -Reset-After, -Bucket") and
 * "Exceeding A Rate Limit" ("normal route rate-limiting headers will also be sent in this response").
 */
function rateLimitHeaders(remaining: number, resetAfterSeconds: number): Record<string, string> {
  return {
    'x-ratelimit-limit': '5',
    'x-ratelimit-remaining': String(remaining),
    'x-ratelimit-reset': ((Date.now() / 1000) + resetAfterSeconds).toFixed(3),
    'x-ratelimit-reset-after': resetAfterSeconds.toFixed(3),
    'x-ratelimit-bucket': 'f4ke6ucket0webh00k',
  };
}

/** A snowflake for now. Source: developers/reference.mdx, "Snowflakes" (ms since 2015-01-01 in bits 63..22). */
function snowflake(): string {
  return ((BigInt(Date.now()) - 1420070400000n) << 22n).toString();
}

// 50035 Invalid Form Body with per-field `errors`. Source: developers/topics/opcodes-and-status-codes.mdx
// (JSON error code 50035) and developers/reference.mdx, "Error Messages" (the nested `errors` shape:
// `{ field: { _errors: [{ code, message }] } }`, array items keyed by index as in its "Array Error"
// example). The docs say the list of field codes is open-ended and give BASE_TYPE_CHOICES and
// BASE_TYPE_REQUIRED; the other codes and messages below are the ones Discord's API returns for
// these fields (not in the docs): only their place in the shape is checked by flowwarden.
function invalidFormBody(errors?: unknown): unknown {
  return errors === undefined ? { code: 50035, message: 'Invalid Form Body' } : { code: 50035, message: 'Invalid Form Body', errors };
}
/** `{ a: { 0: { b: { _errors: [...] } } } }` for the path ['a', 0, 'b']. */
function fieldError(path: readonly (string | number)[], code: string, message: string): unknown {
  let node: unknown = { _errors: [{ code, message }] };
  for (let i = path.length - 1; i >= 0; i--) node = { [String(path[i])]: node };
  return node;
}
type Answer = { status: number; body: unknown };
const formError = (path: readonly (string | number)[], code: string, message: string): Answer => ({
  status: 400,
  body: invalidFormBody(fieldError(path, code, message)),
});
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const present = (v: unknown): boolean => v !== undefined && v !== null;

/** Source: developers/reference.mdx, "Boolean Query Strings" (`True`, `true`, `1` / `False`, `false`, `0`). */
function queryBoolean(params: URLSearchParams, name: string): boolean | Answer {
  const raw = params.get(name);
  if (raw === null) return false; // both default to false: webhook.mdx, Execute Webhook, Query String Params
  if (raw === 'True' || raw === 'true' || raw === '1') return true;
  if (raw === 'False' || raw === 'false' || raw === '0') return false;
  return formError([name], 'BASE_TYPE_BOOLEAN', 'Must be either true or false.');
}

function checkString(body: Record<string, unknown>, field: string): Answer | undefined {
  const v = body[field];
  if (present(v) && typeof v !== 'string') return formError([field], 'STRING_TYPE_CONVERT', 'Could not interpret "{}" as string.');
  return undefined;
}

/**
 * Embeds. Source: developers/resources/webhook.mdx (embeds: array of up to 10 embed objects) and
 * developers/resources/message.mdx, "Embed Limits" (title 256, description 4096, up to 25 fields,
 * field.name 256, field.value 1024, footer.text 2048, author.name 256, all measured after trimming
 * leading/trailing whitespace; the sum over all embeds at most 6000; "violating any of these
 * constraints will result in a Bad Request response") and "Embed Field Structure" / "Embed Footer
 * Structure" / "Embed Author Structure" (field name and value, footer text and author name are required).
 */
function checkEmbeds(embeds: unknown): Answer | undefined {
  if (!present(embeds)) return undefined;
  if (!Array.isArray(embeds)) return formError(['embeds'], 'BASE_TYPE_ARRAY', 'Must be an array.');
  if (embeds.length > DISCORD_MAX_EMBEDS) return formError(['embeds'], 'BASE_TYPE_MAX_LENGTH', `Must be ${DISCORD_MAX_EMBEDS} or fewer in length.`);
  let total = 0;
  const measure = (path: (string | number)[], v: unknown, max: number, required: boolean): Answer | undefined => {
    if (!present(v)) return required ? formError(path, 'BASE_TYPE_REQUIRED', 'This field is required') : undefined;
    if (typeof v !== 'string') return formError(path, 'STRING_TYPE_CONVERT', 'Could not interpret "{}" as string.');
    const length = v.trim().length;
    if (length > max) return formError(path, 'BASE_TYPE_MAX_LENGTH', `Must be ${max} or fewer in length.`);
    total += length;
    return undefined;
  };
  for (const [i, embed] of embeds.entries()) {
    if (!isObject(embed)) return formError(['embeds', i], 'DICT_TYPE_CONVERT', 'Only dictionaries may be used in a DictType');
    const bad =
      measure(['embeds', i, 'title'], embed.title, 256, false) ??
      measure(['embeds', i, 'description'], embed.description, 4096, false) ??
      (present(embed.footer) ? (isObject(embed.footer) ? measure(['embeds', i, 'footer', 'text'], embed.footer.text, 2048, true) : formError(['embeds', i, 'footer'], 'DICT_TYPE_CONVERT', 'Only dictionaries may be used in a DictType')) : undefined) ??
      (present(embed.author) ? (isObject(embed.author) ? measure(['embeds', i, 'author', 'name'], embed.author.name, 256, true) : formError(['embeds', i, 'author'], 'DICT_TYPE_CONVERT', 'Only dictionaries may be used in a DictType')) : undefined);
    if (bad) return bad;
    if (present(embed.fields)) {
      if (!Array.isArray(embed.fields)) return formError(['embeds', i, 'fields'], 'BASE_TYPE_ARRAY', 'Must be an array.');
      if (embed.fields.length > 25) return formError(['embeds', i, 'fields'], 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
      for (const [j, field] of embed.fields.entries()) {
        if (!isObject(field)) return formError(['embeds', i, 'fields', j], 'DICT_TYPE_CONVERT', 'Only dictionaries may be used in a DictType');
        const badField =
          measure(['embeds', i, 'fields', j, 'name'], field.name, 256, true) ?? measure(['embeds', i, 'fields', j, 'value'], field.value, 1024, true);
        if (badField) return badField;
      }
    }
  }
  if (total > 6000) return formError(['embeds'], 'MAX_EMBED_SIZE_EXCEEDED', 'Embed size exceeds maximum size of 6000');
  return undefined;
}

/**
 * allowed_mentions. Source: developers/resources/message.mdx, "Allowed Mentions Object": parse is an
 * array of "roles" | "users" | "everyone"; roles/users are arrays of at most 100 ids; and each of
 * roles/users is exclusive with its own type in parse ("users" in parse and a users array is an error).
 */
function checkAllowedMentions(am: unknown): Answer | undefined {
  if (am === undefined) return undefined;
  if (!isObject(am)) return formError(['allowed_mentions'], 'DICT_TYPE_CONVERT', 'Only dictionaries may be used in a DictType');
  const parse = am.parse;
  if (parse !== undefined) {
    if (!Array.isArray(parse)) return formError(['allowed_mentions', 'parse'], 'BASE_TYPE_ARRAY', 'Must be an array.');
    const bad = parse.findIndex((p) => p !== 'roles' && p !== 'users' && p !== 'everyone');
    // The docs' own example of this code: developers/reference.mdx, "Array Error" (BASE_TYPE_CHOICES per index)
    if (bad >= 0) return formError(['allowed_mentions', 'parse', bad], 'BASE_TYPE_CHOICES', "Value must be one of ('roles', 'users', 'everyone').");
  }
  for (const kind of ['roles', 'users'] as const) {
    const ids = am[kind];
    if (ids === undefined) continue;
    if (!Array.isArray(ids)) return formError(['allowed_mentions', kind], 'BASE_TYPE_ARRAY', 'Must be an array.');
    if (ids.length > 100) return formError(['allowed_mentions', kind], 'BASE_TYPE_MAX_LENGTH', 'Must be 100 or fewer in length.');
    if (Array.isArray(parse) && parse.includes(kind)) {
      return formError(['allowed_mentions'], 'MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE', `parse:["${kind}"] and ${kind}: [ids...] are mutually exclusive.`);
    }
  }
  return undefined;
}

/** Execute Webhook (developers/resources/webhook.mdx): the answer to a parsed body, or undefined when it is accepted. */
function checkExecute(body: Record<string, unknown>, params: URLSearchParams): Answer | undefined {
  // Query String Params: wait and with_components are boolean query strings; thread_id a snowflake.
  for (const name of ['wait', 'with_components']) {
    const b = queryBoolean(params, name);
    if (typeof b !== 'boolean') return b;
  }
  const threadId = params.get('thread_id');
  if (threadId !== null) {
    if (!/^\d{1,20}$/.test(threadId)) return formError(['thread_id'], 'NUMBER_TYPE_COERCE', `Value "${threadId}" is not snowflake.`);
    // The fake's channel has no threads: 10003 Unknown channel (opcodes-and-status-codes.mdx), 404 Not Found.
    return { status: 404, body: { message: 'Unknown Channel', code: 10003 } };
  }

  const content = body.content;
  // content: string (JSON/Form Params); STRING_TYPE_CONVERT is the field code Discord returns for a non-string.
  const notString = checkString(body, 'content');
  if (notString) return notString;
  // Length in UTF-16 units, the stricter measure (Discord's "characters" is not defined further).
  if (typeof content === 'string' && content.length > DISCORD_MAX_CONTENT) {
    return formError(['content'], 'BASE_TYPE_MAX_LENGTH', `Must be ${DISCORD_MAX_CONTENT} or fewer in length.`);
  }
  for (const field of ['avatar_url', 'thread_name']) {
    const bad = checkString(body, field);
    if (bad) return bad;
  }
  // username. Source: developers/resources/webhook.mdx, Create Webhook: a webhook name is valid if it does not
  // contain `clyde` or `discord` (case-insensitive) and follows the nickname rules of developers/resources/user.mdx,
  // "Usernames and Nicknames" (trimmed of leading/trailing whitespace), with names of 1-80 characters. The same
  // rules apply to the Execute Webhook `username` override (the name shown on the message).
  const username = body.username;
  if (present(username)) {
    if (typeof username !== 'string') return formError(['username'], 'STRING_TYPE_CONVERT', 'Could not interpret "{}" as string.');
    const name = username.trim();
    if (name.length < 1 || name.length > 80) return formError(['username'], 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 80 in length.');
    for (const word of ['clyde', 'discord']) {
      if (name.toLowerCase().includes(word)) return formError(['username'], 'USERNAME_INVALID_CONTAINS', `Username cannot contain "${word}"`);
    }
  }
  // tts: boolean (JSON/Form Params)
  if (present(body.tts) && typeof body.tts !== 'boolean') return formError(['tts'], 'BASE_TYPE_BOOLEAN', 'Must be either true or false.');
  const badEmbeds = checkEmbeds(body.embeds);
  if (badEmbeds) return badEmbeds;
  const badMentions = checkAllowedMentions(body.allowed_mentions);
  if (badMentions) return badMentions;

  // flags: integer, only SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS and IS_COMPONENTS_V2 can be set (JSON/Form Params);
  // with IS_COMPONENTS_V2 "providing content, embeds, files[n] or poll will fail with a 400 BAD REQUEST".
  const flags = body.flags;
  if (present(flags)) {
    if (typeof flags !== 'number' || !Number.isSafeInteger(flags) || flags < 0) return formError(['flags'], 'NUMBER_TYPE_COERCE', `Value "${String(flags)}" is not int.`);
    if ((flags & ~SETTABLE_FLAGS) !== 0) return formError(['flags'], 'MESSAGE_FLAGS_INVALID', 'Invalid flags.');
    if ((flags & IS_COMPONENTS_V2) !== 0) {
      for (const field of ['content', 'embeds', 'poll']) {
        if (present(body[field])) return formError([field], 'MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2', `The '${field}' field cannot be used when using MessageFlags.IS_COMPONENTS_V2`);
      }
    }
  }

  // "You must provide a value for at least one of content, embeds, components, file, or poll" (Execute Webhook),
  // else 50006 Cannot send an empty message (opcodes-and-status-codes.mdx). Components count only with
  // ?with_components=true (non-application-owned webhooks ignore the field otherwise: same page); files[n] only
  // exist in multipart bodies, which this fake does not model. Whitespace-only content counts as empty:
  // Discord trims it (observed: the docs only warn that Discord "may strip certain characters").
  const hasContent = typeof content === 'string' && content.trim() !== '';
  const hasEmbeds = Array.isArray(body.embeds) && body.embeds.length > 0;
  const hasPoll = isObject(body.poll);
  const hasComponents = queryBoolean(params, 'with_components') === true && Array.isArray(body.components) && body.components.length > 0;
  if (!hasContent && !hasEmbeds && !hasPoll && !hasComponents) return { status: 400, body: { message: 'Cannot send an empty message', code: 50006 } };
  return undefined;
}

/**
 * The message object a `?wait=true` execute answers with. Source: developers/resources/message.mdx,
 * "Message Structure" (a webhook message's author is the webhook's id, username and avatar; webhook_id set).
 */
function discordMessage(body: Record<string, unknown>): unknown {
  const username = typeof body.username === 'string' ? body.username.trim() : 'Captain Hook';
  return {
    id: snowflake(),
    type: 0,
    content: typeof body.content === 'string' ? body.content : '',
    channel_id: DISCORD_CHANNEL_ID,
    author: { id: DISCORD_WEBHOOK_ID, username, avatar: null, discriminator: '0000', bot: true },
    attachments: [],
    embeds: Array.isArray(body.embeds) ? body.embeds.map((e) => ({ ...(e as object), type: 'rich' })) : [],
    mentions: [],
    mention_roles: [],
    pinned: false,
    mention_everyone: false,
    tts: body.tts === true,
    timestamp: new Date().toISOString(),
    edited_timestamp: null,
    flags: typeof body.flags === 'number' ? body.flags : 0,
    components: [],
    webhook_id: DISCORD_WEBHOOK_ID,
  };
}

/** Form bodies carry string fields only; nested fields (embeds, allowed_mentions) need JSON or payload_json. */
function formBody(raw: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(raw)) out[k] = v;
  return out;
}

export function startFakeDiscord(opts: FakeChatOptions = {}): Promise<FakeChatServer> {
  const handler: Handler = (req, res, raw, fake) => {
    if (req.method === 'GET') {
      // Get Webhook with Token (developers/resources/webhook.mdx): the webhook object, without `user`
      // (fields as in its "Example Incoming Webhook").
      json(res, 200, { type: 1, id: DISCORD_WEBHOOK_ID, name: 'Captain Hook', avatar: null, channel_id: DISCORD_CHANNEL_ID, guild_id: DISCORD_GUILD_ID, application_id: null, token: 'fake-secret-token' });
      return;
    }
    if (req.method !== 'POST') {
      // Execute Webhook is a POST (developers/resources/webhook.mdx); 405 "The HTTP method used is not valid
      // for the location specified" and code 0 General error (developers/topics/opcodes-and-status-codes.mdx).
      // PATCH/DELETE (Modify/Delete Webhook with Token) are real routes this fake does not model.
      json(res, 405, { message: '405: Method Not Allowed', code: 0 });
      return;
    }
    // Source: developers/reference.mdx, "Content Type": a valid Content-Type is application/json,
    // application/x-www-form-urlencoded or multipart/form-data; "failing to do so will result in a 50035
    // 'Invalid form body' error" (also the 50035 row of opcodes-and-status-codes.mdx: "or invalid Content-Type").
    const media = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    let body: Record<string, unknown>;
    if (media === 'application/json') {
      const parsed = tryParse(raw);
      if (!parsed.ok || !isObject(parsed.value)) {
        json(res, 400, { message: 'The request body contains invalid JSON.', code: 50109 }); // Source: opcodes-and-status-codes.mdx (50109)
        return;
      }
      body = parsed.value;
    } else if (media === 'application/x-www-form-urlencoded') {
      // A form is read field by field: a JSON text posted as a form has no `content` field, hence 50006
      // (github.com/discord/discord-api-docs/issues/4065: an HTML form without `content` → 50006).
      body = formBody(raw);
    } else if (media === 'multipart/form-data') {
      // Real Discord accepts it (developers/reference.mdx, "Uploading Files"); this fake does not model
      // multipart, and says so rather than answer something Discord would not.
      json(res, 501, { message: 'fake-chat: multipart/form-data is not modelled by this fake', code: 0 });
      return;
    } else {
      json(res, 400, invalidFormBody());
      return;
    }
    const params = new URL(req.url ?? '/', 'http://fake').searchParams;
    const rejected = checkExecute(body, params);
    if (rejected) {
      json(res, rejected.status, rejected.body);
      return;
    }
    fake.accept(req, raw, body);
    // Source: developers/resources/webhook.mdx, Execute Webhook ("Returns a message or 204 No Content
    // depending on the wait query parameter")
    if (queryBoolean(params, 'wait') === true) {
      json(res, 200, discordMessage(body), rateLimitHeaders(4, 1));
    } else {
      res.writeHead(204, rateLimitHeaders(4, 1));
      res.end();
    }
  };
  return startFake(
    `/api/webhooks/${DISCORD_WEBHOOK_ID}/fake-secret-token`,
    handler,
    (res, f) => {
      if (f.kind === '429') {
        // Source: discord-api-docs developers/topics/rate-limits.mdx, "Header Format" (X-RateLimit-Scope is
        // returned only on 429s) and "Example Exceeded User Rate Limit Response" (Retry-After: 65 beside
        // retry_after: 64.57, i.e. the header is the body's seconds rounded up to a whole number).
        json(res, 429, discordRateLimitBody(f.retryAfterSeconds), {
          ...rateLimitHeaders(0, f.retryAfterSeconds),
          'retry-after': String(Math.ceil(f.retryAfterSeconds)),
          'x-ratelimit-scope': 'user',
        });
      } else {
        json(res, 500, { message: '500: Internal Server Error', code: 0 }); // Source: opcodes-and-status-codes.mdx, HTTP (5xx: server error) and JSON (code 0 General error)
      }
    },
    // Source: developers/topics/opcodes-and-status-codes.mdx (404 Not Found; JSON code 10015 Unknown webhook)
    // and developers/topics/rate-limits.mdx ("If a webhook returns a 404 status you should not attempt to use
    // it again"). A wrong token on a live id is 50027 "Invalid webhook token provided" there (status not
    // documented); the fake answers every unknown path as an unknown webhook.
    (res) => json(res, 404, { message: 'Unknown Webhook', code: 10015 }),
    opts,
  );
}

/** Slack's text truncation point. Source: api.slack.com/changelog/2018-04-truncating-really-long-messages. */
export const SLACK_TRUNCATE_AT = 40_000;

export function startFakeSlack(opts: FakeChatOptions = {}): Promise<FakeChatServer> {
  const handler: Handler = (req, res, raw, fake) => {
    if (req.method !== 'POST') {
      // Source: api.slack.com/messaging/webhooks#posting_with_webhooks (messages are sent with an HTTP POST).
      // The status and body Slack gives another method are not documented; 405 with a plain-text code
      // in the style of the documented errors (docs.slack.dev/messaging/sending-messages-using-incoming-webhooks#handling_errors).
      text(res, 405, 'invalid_method');
      return;
    }
    // The body is a JSON payload (api.slack.com/messaging/webhooks: "send a JSON payload"), or the legacy form
    // field `payload=<json>` (the same page's curl example of old: --data-urlencode 'payload={...}').
    // 400 invalid_payload when it "cannot be understood as presented; verify your content body matches your
    // content type and is structurally valid" (api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks).
    const media = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const form = media === 'application/x-www-form-urlencoded' ? new URLSearchParams(raw).get('payload') : null;
    const parsed = tryParse(form ?? raw);
    if (!parsed.ok || !parsed.value || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
      text(res, 400, 'invalid_payload');
      return;
    }
    const body = parsed.value as Record<string, unknown>;
    // `text` is required unless blocks or attachments carry the message (api.slack.com/reference/messaging/payload:
    // with blocks, text becomes the notification fallback). 400 no_text: docs.slack.dev/messaging/
    // sending-messages-using-incoming-webhooks#handling_errors. (Slack has also been seen answering the same case
    // `missing_text_or_fallback_or_attachments`, e.g. github.com/strapi/strapi/issues/12679; both are a 400.)
    const hasText = typeof body.text === 'string' && body.text.trim() !== '';
    const hasBlocks = Array.isArray(body.blocks) && body.blocks.length > 0;
    const hasAttachments = Array.isArray(body.attachments) && body.attachments.length > 0;
    if (!hasText && !hasBlocks && !hasAttachments) {
      text(res, 400, 'no_text');
      return;
    }
    // Text over SLACK_TRUNCATE_AT characters is not refused: Slack truncates it and still posts
    // (api.slack.com/changelog/2018-04-truncating-really-long-messages; it applies to incoming webhooks).
    // `mrkdwn` is optional and defaults to true (api.slack.com/reference/surfaces/formatting).
    fake.accept(req, raw, body);
    // Source: api.slack.com/messaging/webhooks (200, body "ok"); docs.slack.dev/tools/python-slack-sdk/webhook
    // (the SDK asserts response.body == "ok": a plain-text body, not JSON)
    text(res, 200, 'ok', { 'content-type': 'text/html' });
  };
  return startFake(
    '/services/T00000000/B00000000/fakesecrettoken',
    handler,
    (res, f) => {
      // Source: api.slack.com/docs/rate-limits (incoming webhooks over the limit get HTTP 429 and a Retry-After
      // header in seconds). That page also speaks of "a JSON object containing the number of calls" without
      // giving its shape; the body here is a plain-text code like Slack's other webhook errors.
      if (f.kind === '429') text(res, 429, 'rate_limited', { 'retry-after': String(Math.ceil(f.retryAfterSeconds)) });
      // Source: api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks (5xx with a
      // plain-text body; the one 500 code it names is `rollup_error`). The body here stays the Web API's
      // generic `internal_error` (api.slack.com/methods: common errors) because test/channels.test.ts pins it.
      else text(res, 500, 'internal_error');
    },
    // An unknown, disabled or removed webhook: 404 no_service (docs.slack.dev/messaging/
    // sending-messages-using-incoming-webhooks#handling_errors), plain text like every webhook error.
    (res) => text(res, 404, 'no_service'),
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
    (res) => json(res, 404, { error: 'not found' }),
    opts,
  );
}
