/**
 * Notification channels, pending events and messages. Functions of (db, params); `db` may be the
 * caller's transaction. Raw SQL throughout (SKIP LOCKED takes, compare-and-set progress). Indexes
 * relied on: docs/internals.md, "Notifications".
 */
import type { Queryable } from '../db/client.ts';
import type { MessageStatus, StoredChannelKind } from '../schema/enums.ts';


export interface ChannelRow {
  id: string;
  name: string;
  kind: StoredChannelKind;
  /** A secret. Never log it, never return it from the API or the CLI. */
  url: string | null;
  /** Empty = every event. */
  events: string[];
  /** null = every flow. */
  flows: string[] | null;
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

const channelColumns = (t = '') =>
  `${t}id, ${t}name, ${t}kind, ${t}url, ${t}events, ${t}flows, ${t}enabled, ${t}created_at as "createdAt", ${t}updated_at as "updatedAt"`;
const CHANNEL_COLUMNS = channelColumns();

export interface ChannelWrite {
  name: string;
  kind: StoredChannelKind;
  url: string | null;
  events: string[];
  flows: string[] | null;
}

/**
 * Create or update a channel by name. `keepSubscriptions` (used for channels from
 * FLOWWARDEN_NOTIFY_URLS at every start) updates only kind and URL, so subscriptions an operator
 * changed with the CLI survive restarts.
 */
export async function upsertChannelRow(
  db: Queryable,
  input: ChannelWrite,
  options: { keepSubscriptions?: boolean } = {},
): Promise<{ channel: ChannelRow; created: boolean }> {
  const keep = options.keepSubscriptions === true;
  const { rows } = await db.query<ChannelRow & { created: boolean }>(
    `insert into flowwarden.notification_channels as c (name, kind, url, events, flows)
     values ($1, $2, $3, $4::text[], $5::text[])
     on conflict (name) do update set
       kind = excluded.kind,
       url = excluded.url,
       events = case when $6 then c.events else excluded.events end,
       flows = case when $6 then c.flows else excluded.flows end,
       updated_at = now()
     returning ${CHANNEL_COLUMNS}, (xmax = 0) as created`,
    [input.name, input.kind, input.url, input.events, input.flows, keep],
  );
  const { created, ...channel } = rows[0]!;
  return { channel, created };
}

export async function getChannelByName(db: Queryable, name: string): Promise<ChannelRow | null> {
  const { rows } = await db.query<ChannelRow>(`select ${CHANNEL_COLUMNS} from flowwarden.notification_channels where name = $1`, [name]);
  return rows[0] ?? null;
}

export async function getChannelById(db: Queryable, id: string): Promise<ChannelRow | null> {
  const { rows } = await db.query<ChannelRow>(`select ${CHANNEL_COLUMNS} from flowwarden.notification_channels where id = $1`, [id]);
  return rows[0] ?? null;
}

export interface ChannelStatsRow extends ChannelRow {
  pendingEvents: number;
  pendingMessages: number;
  failedMessages: number;
  lastDeliveredAt: Date | null;
}

export async function listChannelRows(db: Queryable): Promise<ChannelStatsRow[]> {
  const { rows } = await db.query<ChannelStatsRow>(
    `select ${channelColumns('c.')},
            (select count(*) from flowwarden.notification_events e where e.channel_id = c.id and e.message_id is null)::int as "pendingEvents",
            (select count(*) from flowwarden.notification_messages m where m.channel_id = c.id and m.status = 'pending')::int as "pendingMessages",
            (select count(*) from flowwarden.notification_messages m where m.channel_id = c.id and m.status = 'failed')::int as "failedMessages",
            (select max(m.delivered_at) from flowwarden.notification_messages m where m.channel_id = c.id) as "lastDeliveredAt"
       from flowwarden.notification_channels c
      order by c.name`,
  );
  return rows;
}

export async function deleteChannelRow(db: Queryable, name: string): Promise<boolean> {
  const { rowCount } = await db.query(`delete from flowwarden.notification_channels where name = $1`, [name]);
  return (rowCount ?? 0) > 0;
}

export async function countChannels(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from flowwarden.notification_channels`);
  return rows[0]!.n;
}

/** Enabled channels subscribed to `event` for `flowName` (empty events = all; null flows = all). */
export async function matchingChannels(db: Queryable, event: string, flowName: string | null): Promise<ChannelRow[]> {
  const { rows } = await db.query<ChannelRow>(
    `select ${CHANNEL_COLUMNS} from flowwarden.notification_channels
      where enabled
        and (cardinality(events) = 0 or $1 = any(events))
        and (flows is null or $2::text = any(flows))
      order by name`,
    [event, flowName],
  );
  return rows;
}

export interface PendingEvent {
  id: number;
  event: string;
  flowName: string | null;
  text: string;
}

export async function insertEvent(db: Queryable, input: { channelId: string; event: string; flowName: string | null; text: string }): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    `insert into flowwarden.notification_events (channel_id, event, flow_name, text) values ($1, $2, $3, $4) returning id`,
    [input.channelId, input.event, input.flowName, input.text],
  );
  return rows[0]!.id;
}

/**
 * Take (lock) a channel's pending events, oldest first. SKIP LOCKED: a concurrent take (which the
 * notify worker's per-channel lock should already prevent) gets the rest instead of waiting.
 * Uses notification_events_pending_idx.
 */
export async function takePendingEvents(tx: Queryable, channelId: string, limit: number): Promise<PendingEvent[]> {
  const { rows } = await tx.query<PendingEvent>(
    `select id, event, flow_name as "flowName", text from flowwarden.notification_events
      where channel_id = $1 and message_id is null
      order by id
      limit $2
      for update skip locked`,
    [channelId, limit],
  );
  return rows;
}

export interface MessageRow {
  id: string;
  channelId: string;
  text: string;
  chunks: string[];
  chunksTotal: number;
  chunksDelivered: number;
  status: MessageStatus;
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

const MESSAGE_COLUMNS = `id, channel_id as "channelId", text, chunks, chunks_total as "chunksTotal",
  chunks_delivered as "chunksDelivered", status, attempts, last_error as "lastError",
  created_at as "createdAt", delivered_at as "deliveredAt"`;

/**
 * Store a rendered message and link its events, in the caller's transaction. created_at is
 * clock_timestamp() (not now()) so several messages made in one transaction keep their order.
 * A message with no chunks (blank text) is delivered by definition.
 */
export async function insertMessage(tx: Queryable, input: { channelId: string; text: string; chunks: string[]; eventIds: number[] }): Promise<string> {
  const { rows } = await tx.query<{ id: string }>(
    `insert into flowwarden.notification_messages (channel_id, text, chunks, chunks_total, status, delivered_at, created_at)
     values ($1, $2, $3::jsonb, $4, case when $4 = 0 then 'delivered' else 'pending' end, case when $4 = 0 then now() end, clock_timestamp())
     returning id`,
    [input.channelId, input.text, JSON.stringify(input.chunks), input.chunks.length],
  );
  const id = rows[0]!.id;
  await tx.query(`update flowwarden.notification_events set message_id = $1 where id = any($2::bigint[])`, [id, input.eventIds]);
  return id;
}

export async function pendingMessages(db: Queryable, channelId: string): Promise<MessageRow[]> {
  const { rows } = await db.query<MessageRow>(
    `select ${MESSAGE_COLUMNS} from flowwarden.notification_messages
      where channel_id = $1 and status = 'pending'
      order by created_at, id`,
    [channelId],
  );
  return rows;
}

/** The event name a generic webhook gets: the single event's name, or 'digest'. */
export async function messageEventName(db: Queryable, messageId: string): Promise<string | undefined> {
  const { rows } = await db.query<{ event: string; n: number }>(
    `select event, count(*)::int as n from flowwarden.notification_events where message_id = $1 group by event`,
    [messageId],
  );
  if (rows.length === 0) return undefined;
  return rows.length === 1 && rows[0]!.n === 1 ? rows[0]!.event : 'digest';
}

export async function markAttempt(db: Queryable, messageId: string): Promise<void> {
  await db.query(`update flowwarden.notification_messages set attempts = attempts + 1 where id = $1`, [messageId]);
}

/**
 * Record that chunk `delivered - 1` was accepted: compare-and-set on the previous count, so two
 * deliverers can never both advance past the same chunk. Returns false when the row moved on
 * (someone else delivered it, or it was failed) — the caller stops.
 */
export async function advanceDelivered(db: Queryable, messageId: string, delivered: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `update flowwarden.notification_messages
        set chunks_delivered = $2,
            status = case when $2 >= chunks_total then 'delivered' else status end,
            delivered_at = case when $2 >= chunks_total then now() else delivered_at end,
            last_error = null
      where id = $1 and status = 'pending' and chunks_delivered = $2 - 1`,
    [messageId, delivered],
  );
  return (rowCount ?? 0) > 0;
}

export async function recordMessageError(db: Queryable, messageId: string, error: string): Promise<void> {
  await db.query(`update flowwarden.notification_messages set last_error = $2 where id = $1`, [messageId, error]);
}

export async function failMessage(db: Queryable, messageId: string, error: string): Promise<void> {
  await db.query(
    `update flowwarden.notification_messages set status = 'failed', last_error = $2 where id = $1 and status = 'pending'`,
    [messageId, error],
  );
}

/** Channels with work left over (pending events or undelivered messages), e.g. after a crash. */
export async function channelsWithPendingWork(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `select c.id from flowwarden.notification_channels c
      where c.enabled and (
        exists (select 1 from flowwarden.notification_events e where e.channel_id = c.id and e.message_id is null)
        or exists (select 1 from flowwarden.notification_messages m where m.channel_id = c.id and m.status = 'pending'))`,
  );
  return rows.map((r) => r.id);
}

export async function channelHasPendingEvents(db: Queryable, channelId: string): Promise<boolean> {
  const { rows } = await db.query(
    `select 1 from flowwarden.notification_events where channel_id = $1 and message_id is null limit 1`,
    [channelId],
  );
  return rows.length > 0;
}
