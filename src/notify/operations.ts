/**
 * Notification operations shared by the CLI, the HTTP API, the producer client and app start. Every
 * function takes a Queryable (possibly the caller's transaction): an event and its notify job commit
 * or roll back together. Also parses FLOWWARDEN_NOTIFY_URLS (upserted by name at every start).
 * Names, URL secrecy and the configuration format: docs/internals.md, "Notifications".
 */
import type { PgBoss } from 'pg-boss';
import { bossDb, type Queryable } from '../db/client.ts';
import { QUEUES, EVENTS, type QueuePayloads } from '../queue/catalog.ts';
import { EVENT_NAMES } from '../queue/payloads.ts';
import { NotFoundError, UserInputError } from '../errors.ts';
import { registerSecrets } from '../log.ts';
import { cliCommand } from '../util/command.ts';
import { redactUrl, resolveChannel } from './channels.ts';
import type { ChannelKind, StoredChannelKind } from '../schema/enums.ts';
import { MESSAGE_EVENT } from './render.ts';
import {
  channelsWithPendingWork,
  deleteChannelRow,
  getChannelByName,
  insertEvent,
  listChannelRows,
  upsertChannelRow,
  type ChannelRow,
  type ChannelWrite,
} from '../queries/notifications.ts';

/** Events a channel may subscribe to. */
export const NOTIFY_EVENTS: readonly string[] = EVENT_NAMES;
/** What a channel receives when no events are given: everything but run.completed (too chatty). */
export const DEFAULT_CHANNEL_EVENTS: readonly string[] = [EVENTS.runFailed, EVENTS.runLate, EVENTS.flowDisabled, EVENTS.flowReactivated];
/** The notify job for a channel is debounced per channel: a burst within this window is one job. */
export const NOTIFY_DEBOUNCE_SECONDS = 2;
/** Producer messages above this size are refused (they would be dozens of chat posts). */
export const MAX_NOTIFY_TEXT_CHARS = 100_000;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface ChannelInput {
  name: string;
  /** A Discord/Slack/webhook URL (optionally prefixed `discord+`, `slack+`, `webhook+` to force the kind), or 'console'. */
  url: string;
  /** Force the kind instead of detecting it from the URL's host. */
  kind?: ChannelKind;
  /** Event names, or ['all'] for every event (including run.completed); default DEFAULT_CHANNEL_EVENTS. */
  events?: string[];
  /** Flow names; default every flow. */
  flows?: string[] | null;
}

/** A channel as the CLI and the API show it: the URL reduced to its origin ("https://discord.com/…"). */
export interface ChannelView {
  name: string;
  kind: StoredChannelKind;
  url: string;
  events: string[];
  flows: string[] | null;
  enabled: boolean;
  pendingEvents?: number;
  pendingMessages?: number;
  failedMessages?: number;
  lastDeliveredAt?: string | null;
}

export function channelView(row: ChannelRow & Partial<{ pendingEvents: number; pendingMessages: number; failedMessages: number; lastDeliveredAt: Date | null }>): ChannelView {
  const view: ChannelView = {
    name: row.name,
    kind: row.kind,
    url: row.url ? redactUrl(row.url) : row.kind,
    events: row.events.length === 0 ? ['all'] : row.events,
    flows: row.flows,
    enabled: row.enabled,
  };
  if (row.pendingEvents !== undefined) {
    view.pendingEvents = row.pendingEvents;
    view.pendingMessages = row.pendingMessages;
    view.failedMessages = row.failedMessages;
    view.lastDeliveredAt = row.lastDeliveredAt ? row.lastDeliveredAt.toISOString() : null;
  }
  return view;
}

function checkName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new UserInputError(`channel name '${name.slice(0, 80)}' is not valid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. ops-alerts)`);
  }
}

/**
 * "discord+https://relay.internal/api/webhooks/…" → kind discord, URL without the prefix: for
 * webhooks behind a proxy or relay whose host does not tell the kind. Same for slack+ and webhook+.
 */
export function splitKindPrefix(url: string): { kind?: ChannelKind; url: string } {
  const m = /^(discord|slack|webhook)\+(https?:.*)$/i.exec(url);
  return m ? { kind: m[1]!.toLowerCase() as ChannelKind, url: m[2]! } : { url };
}

/** Validate a channel input and turn it into a row to write. */
export function parseChannelInput(input: ChannelInput): ChannelWrite {
  checkName(input.name);
  let kind: StoredChannelKind;
  let url: string | null;
  if (input.url === 'console') {
    kind = 'console';
    url = null;
  } else {
    const { kind: forced, url: bare } = splitKindPrefix(input.url);
    const channel = resolveChannel(bare, input.kind ?? forced); // UserInputError without echoing the URL
    const protocol = new URL(bare).protocol;
    if (protocol !== 'https:' && protocol !== 'http:') throw new UserInputError(`channel '${input.name}': the URL must be http(s)`);
    kind = channel.kind;
    url = bare;
  }
  let events: string[];
  if (input.events === undefined) {
    events = [...DEFAULT_CHANNEL_EVENTS];
  } else {
    const list = [...new Set(input.events.map((e) => e.trim()).filter(Boolean))];
    if (list.length === 0) throw new UserInputError(`channel '${input.name}': events is empty; list some of ${NOTIFY_EVENTS.join(', ')}, or 'all'`);
    const unknown = list.filter((e) => e !== 'all' && !NOTIFY_EVENTS.includes(e));
    if (unknown.length > 0) throw new UserInputError(`channel '${input.name}': unknown event(s) ${unknown.join(', ')}; use ${NOTIFY_EVENTS.join(', ')} or 'all'`);
    events = list.includes('all') ? [] : list;
  }
  let flows: string[] | null = null;
  if (input.flows) {
    flows = [...new Set(input.flows.map((f) => f.trim()).filter(Boolean))];
    if (flows.length === 0) flows = null;
  }
  return { name: input.name, kind, url, events, flows };
}

/** Split "NAME=URL" / "URL" / "console" entries and name the unnamed ones `<kind>-<n>`. */
export function channelsFromConfig(entries: readonly string[]): ChannelInput[] {
  const counts = new Map<string, number>();
  const seen = new Set<string>();
  const out: ChannelInput[] = [];
  entries.forEach((entry, i) => {
    const eq = entry.indexOf('=');
    const prefix = eq > 0 ? entry.slice(0, eq) : '';
    // "name=url": the part before '=' is a name only when it has no ':' or '/' (a URL's '=' is in its query).
    const named = eq > 0 && !/[:/]/.test(prefix);
    const name0 = named ? prefix : undefined;
    const url = named ? entry.slice(eq + 1) : entry;
    let kind: string;
    if (url === 'console') kind = 'console';
    else {
      try {
        const split = splitKindPrefix(url);
        kind = resolveChannel(split.url, split.kind).kind;
      } catch {
        throw new UserInputError(`FLOWWARDEN_NOTIFY_URLS entry ${i + 1} is not a valid URL (expected URL or NAME=URL)`);
      }
    }
    const n = (counts.get(kind) ?? 0) + 1;
    counts.set(kind, n);
    const name = name0 ?? `${kind}-${n}`;
    if (seen.has(name)) throw new UserInputError(`FLOWWARDEN_NOTIFY_URLS names channel '${name}' twice`);
    seen.add(name);
    out.push({ name, url });
  });
  for (const c of out) parseChannelInput(c); // validate everything before writing anything
  return out;
}

/** Upsert the channels from FLOWWARDEN_NOTIFY_URLS (idempotent; subscriptions set by operators are kept). */
export async function ensureConfiguredChannels(db: Queryable, entries: readonly string[]): Promise<ChannelView[]> {
  const views: ChannelView[] = [];
  for (const input of channelsFromConfig(entries)) {
    const { channel } = await upsertChannelRow(db, parseChannelInput(input), { keepSubscriptions: true });
    views.push(channelView(channel));
  }
  return views;
}

/** Create or replace a channel (URL, events and flows) by name. */
/**
 * The flows an operator subscribes a channel to must exist (CLI `channels add --flow`, the API's PUT):
 * a typo would otherwise make a channel that silently never hears anything. Not checked for
 * FLOWWARDEN_NOTIFY_URLS and library calls, which may name flows that are defined later.
 */
export async function checkChannelFlows(db: Queryable, channel: string, flows: string[] | null | undefined): Promise<void> {
  const names = [...new Set((flows ?? []).map((f) => f.trim()).filter(Boolean))];
  if (names.length === 0) return;
  const { rows } = await db.query<{ name: string }>('select name from flowwarden.flows where name = any($1::text[])', [names]);
  const known = new Set(rows.map((r) => r.name));
  const unknown = names.filter((f) => !known.has(f));
  if (unknown.length) {
    throw new UserInputError(`channel '${channel}': no flow named ${unknown.map((f) => `'${f}'`).join(', ')}; a channel's flows must exist (see ${cliCommand()} flows list), or leave them out for all flows`);
  }
}

export async function upsertChannel(db: Queryable, input: ChannelInput): Promise<{ channel: ChannelView; created: boolean }> {
  const parsed = parseChannelInput(input);
  // From here on the URL is a secret of this process too: redact it from log lines by value.
  registerSecrets([parsed.url]);
  const { channel, created } = await upsertChannelRow(db, parsed);
  return { channel: channelView(channel), created };
}

export async function listChannels(db: Queryable): Promise<ChannelView[]> {
  return (await listChannelRows(db)).map(channelView);
}

/** Delete a channel with its pending events and messages. */
export async function deleteChannel(db: Queryable, name: string): Promise<void> {
  if (!(await deleteChannelRow(db, name))) {
    throw new NotFoundError(`channel '${name}' not found: see flowwarden channels list`);
  }
}

/**
 * Send the channel's notify job, debounced per channel: pg-boss keeps one job per channel per
 * NOTIFY_DEBOUNCE_SECONDS slot (singletonKey = channel id, singletonNextSlot), and the first one
 * also waits the window out, so a burst of events becomes one job that takes them all. A null
 * result means a job for this channel that has not started yet already exists: it will take our
 * event too.
 */
export async function enqueueNotify(boss: PgBoss, db: Queryable, channelId: string): Promise<string | null> {
  const data: QueuePayloads['fw.notify'] = { channelId };
  return boss.sendDebounced(QUEUES.notify, data, { db: bossDb(db), startAfter: NOTIFY_DEBOUNCE_SECONDS }, NOTIFY_DEBOUNCE_SECONDS, channelId);
}

/**
 * Post `text` to a channel, for other services: a notification event and its notify job, in the
 * caller's transaction. Same chunking and delivery guarantees as events; never digested.
 */
export async function notifyTx(boss: PgBoss, tx: Queryable, channelName: string, text: string): Promise<{ eventId: number }> {
  if (typeof channelName !== 'string' || channelName === '') throw new UserInputError('notify needs a channel name (see flowwarden channels list)');
  if (typeof text !== 'string' || text.trim() === '') throw new UserInputError(`notify to '${channelName}': text is empty`);
  if (text.length > MAX_NOTIFY_TEXT_CHARS) {
    throw new UserInputError(`notify to '${channelName}': text is ${text.length} characters; the limit is ${MAX_NOTIFY_TEXT_CHARS}`);
  }
  const channel = await getChannelByName(tx, channelName);
  if (!channel) throw new NotFoundError(`channel '${channelName}' not found: add it with flowwarden channels add NAME URL (or FLOWWARDEN_NOTIFY_URLS)`);
  if (!channel.enabled) throw new UserInputError(`channel '${channelName}' is disabled`);
  const eventId = await insertEvent(tx, { channelId: channel.id, event: MESSAGE_EVENT, flowName: null, text });
  await enqueueNotify(boss, tx, channel.id);
  return { eventId };
}

/** Re-send the notify job of every channel with work left over (pending events, undelivered messages). */
export async function kickPendingNotifications(boss: PgBoss, db: Queryable): Promise<number> {
  const ids = await channelsWithPendingWork(db);
  for (const id of ids) await enqueueNotify(boss, db, id);
  return ids.length;
}
