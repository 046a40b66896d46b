/**
 * Chat channels: which kind a webhook URL is (discord, slack, webhook), how long a message may be,
 * what JSON to send (mentions neutralised per kind) and how to read the answer (2xx delivered, 429
 * rate-limited, 408/5xx/network transient, other 4xx permanent). Webhook URLs are secrets: no error
 * message ever contains one. Details: docs/internals.md, "Notifications".
 */
import type { KyInstance } from 'ky';
import { parseRetryAfter, transportCause } from '../http.ts';
import { PermanentError, RateLimitedError, UserInputError } from '../errors.ts';
import type { ChannelKind } from '../schema/enums.ts';


export interface Channel {
  kind: ChannelKind;
  url: string;
}

export interface PayloadMeta {
  /** 0-based position of this chunk in the message. */
  index: number;
  total: number;
  /** Event name (e.g. "run.failed"); sent to generic webhooks only. */
  event?: string;
}

export interface DiscordPayload {
  content: string;
  allowed_mentions: { parse: [] };
}
export interface SlackPayload {
  text: string;
  mrkdwn: true;
}
export interface WebhookPayload {
  text: string;
  event?: string;
  index: number;
  total: number;
}
export type ChannelPayload = DiscordPayload | SlackPayload | WebhookPayload;

export const CHANNEL_LIMITS: Readonly<Record<ChannelKind, number>> = {
  discord: 2000,
  slack: 3000,
  webhook: 20000,
};

/** Default wait when a 429 names none. */
export const DEFAULT_RATE_LIMIT_WAIT_MS = 1000;
/** How much of a peer's error body we quote in an error message. */
const MAX_QUOTED_BODY = 300;

const DISCORD_HOSTS = new Set([
  'discord.com',
  'discordapp.com',
  'ptb.discord.com',
  'canary.discord.com',
  'ptb.discordapp.com',
  'canary.discordapp.com',
]);

function parseUrl(url: string): URL {
  try {
    return new URL(url);
  } catch {
    // Never echo the value: it may be a secret with a typo.
    throw new UserInputError('channel URL is not a valid absolute URL');
  }
}

export function detectChannelKind(url: string): ChannelKind {
  const u = parseUrl(url);
  const host = u.hostname.toLowerCase();
  if (DISCORD_HOSTS.has(host) && /^\/api\/(v\d+\/)?webhooks\//.test(u.pathname)) return 'discord';
  if (host === 'hooks.slack.com') return 'slack';
  return 'webhook';
}

/** A channel from a URL, with an explicit kind winning over detection. */
export function resolveChannel(url: string, kind?: ChannelKind): Channel {
  parseUrl(url);
  return { kind: kind ?? detectChannelKind(url), url };
}

export function channelLimit(kind: ChannelKind): number {
  return CHANNEL_LIMITS[kind];
}

/** Slack's required escaping; also neutralises <!channel>, <!here>, <!everyone>, <@U…>. */
export function escapeSlackText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function buildPayload(kind: 'discord', chunk: string, meta: PayloadMeta): DiscordPayload;
export function buildPayload(kind: 'slack', chunk: string, meta: PayloadMeta): SlackPayload;
export function buildPayload(kind: 'webhook', chunk: string, meta: PayloadMeta): WebhookPayload;
export function buildPayload(kind: ChannelKind, chunk: string, meta: PayloadMeta): ChannelPayload;
export function buildPayload(kind: ChannelKind, chunk: string, meta: PayloadMeta): ChannelPayload {
  switch (kind) {
    case 'discord':
      return { content: chunk, allowed_mentions: { parse: [] } };
    case 'slack':
      return { text: escapeSlackText(chunk), mrkdwn: true };
    case 'webhook': {
      const payload: WebhookPayload = { text: chunk, index: meta.index, total: meta.total };
      if (meta.event !== undefined) payload.event = meta.event;
      return payload;
    }
  }
}

/** "discord webhook discord.com": how a channel is named in errors and logs. */
export function describeChannel(channel: Channel): string {
  let host = 'invalid-url';
  try {
    host = new URL(channel.url).host;
  } catch {
    // keep placeholder
  }
  return `${channel.kind} webhook ${host}`;
}

/** The URL reduced to its origin, for logs: "https://discord.com/…". */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname === '/' && !u.search ? u.origin : `${u.origin}/…`;
  } catch {
    return '[invalid url]';
  }
}

/** Remove any trace of the URL (full, without query, or its path) from a piece of text. */
function scrub(text: string, url: string): string {
  let out = text;
  const secrets = new Set<string>([url]);
  try {
    const u = new URL(url);
    secrets.add(u.href);
    secrets.add(u.origin + u.pathname);
    if (u.pathname.length > 1) secrets.add(u.pathname);
    if (u.search.length > 1) secrets.add(u.search);
  } catch {
    // only the raw string
  }
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (s) out = out.split(s).join('[redacted]');
  }
  return out;
}

function quote(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > MAX_QUOTED_BODY ? `${oneLine.slice(0, MAX_QUOTED_BODY)}…` : oneLine;
}

/** The peer's own words for an error: Discord `{message, code, errors}`, Slack plain text. */
function errorText(body: string): string {
  if (!body) return '';
  try {
    const json: unknown = JSON.parse(body);
    if (json && typeof json === 'object') {
      const o = json as Record<string, unknown>;
      const parts: string[] = [];
      const main = typeof o.message === 'string' ? o.message : typeof o.error === 'string' ? o.error : undefined;
      if (main) parts.push(typeof o.code === 'number' ? `${main} (code ${o.code})` : main);
      const details = collectDiscordErrors(o.errors);
      if (details.length > 0) parts.push(details.join('; '));
      if (parts.length > 0) return parts.join(': ');
    }
  } catch {
    // not JSON: quote as text
  }
  return body;
}

/** Flatten Discord's nested `errors` object: `content: Must be 2000 or fewer in length.` */
function collectDiscordErrors(errors: unknown, path: string[] = []): string[] {
  if (!errors || typeof errors !== 'object') return [];
  const out: string[] = [];
  for (const [key, value] of Object.entries(errors as Record<string, unknown>)) {
    if (key === '_errors' && Array.isArray(value)) {
      for (const e of value) {
        const msg = e && typeof e === 'object' ? (e as { message?: unknown }).message : undefined;
        if (typeof msg === 'string') out.push(path.length > 0 ? `${path.join('.')}: ${msg}` : msg);
      }
    } else {
      out.push(...collectDiscordErrors(value, [...path, key]));
    }
  }
  return out;
}

function retryAfterFromBody(body: string): number | undefined {
  try {
    const json: unknown = JSON.parse(body);
    if (json && typeof json === 'object') {
      const v = (json as { retry_after?: unknown }).retry_after;
      const seconds = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
      if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
    }
  } catch {
    // not JSON
  }
  return undefined;
}

async function readBody(res: Response): Promise<string> {
  try {
    return await res.text();
  } catch {
    return '';
  }
}

function networkReason(error: unknown): string {
  const err = transportCause(error);
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError') return 'request timed out';
  const cause = (err as { cause?: unknown }).cause;
  const code = cause && typeof cause === 'object' ? (cause as { code?: unknown }).code : undefined;
  const causeMsg = cause instanceof Error ? cause.message : undefined;
  return [err.message, typeof code === 'string' ? code : causeMsg].filter(Boolean).join(': ');
}

/**
 * POST one payload to a channel and classify the outcome (see the module comment).
 * Resolves when the peer accepted the chunk; throws PermanentError, RateLimitedError or a plain
 * (transient) Error otherwise. Errors never contain the webhook URL and carry no `cause` (a
 * cause from fetch/ky would hold the URL).
 */
export async function postChunk(
  http: KyInstance,
  channel: Channel,
  payload: ChannelPayload,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const name = describeChannel(channel);
  let res: Response;
  try {
    res = await http.post(channel.url, { json: payload, signal: options.signal });
  } catch (err) {
    if (options.signal?.aborted) {
      const e = new Error(`${name}: post aborted`);
      e.name = 'AbortError';
      throw e;
    }
    // No `cause`: the network error names the webhook URL (a secret); this message is scrubbed of it.
    // eslint-disable-next-line preserve-caught-error
    throw new Error(`${name}: network error: ${scrub(quote(networkReason(err)), channel.url)}`);
  }

  const body = await readBody(res);
  if (res.status >= 200 && res.status < 300) return;

  const said = scrub(quote(errorText(body)), channel.url);
  const detail = said ? `: ${said}` : '';
  if (res.status === 429) {
    const waitMs =
      retryAfterFromBody(body) ?? parseRetryAfter(res.headers.get('retry-after')) ?? DEFAULT_RATE_LIMIT_WAIT_MS;
    throw new RateLimitedError(`${name} rate limited (HTTP 429), retry after ${waitMs} ms${detail}`, waitMs);
  }
  if (res.status >= 400 && res.status < 500 && res.status !== 408) {
    throw new PermanentError(`${name} rejected the message: HTTP ${res.status}${detail}`);
  }
  // 408, 5xx and anything unexpected (an unfollowed redirect): transient.
  throw new Error(`${name} responded HTTP ${res.status}${detail}`);
}
