/**
 * What a notification says: `eventText` fixes an event's text when it fans in (headline + detail),
 * `renderMessages` turns a channel's pending events into messages (producer messages verbatim, the
 * rest one text or one capped digest), chunked later to the channel's limit.
 * Details: docs/internals.md, "Notifications".
 */
import type { EventName, EventPayload } from '../queue/payloads.ts';
import type { PendingEvent } from '../queries/notifications.ts';

/** The event name of producer messages (never digested, never filtered by subscriptions). */
export const MESSAGE_EVENT = 'message';
export const DIGEST_LINES_PER_GROUP = 5;
export const DIGEST_MAX_GROUPS = 20;
/** A run's message beyond this many characters is cut (a stack trace is not a chat message). */
export const MAX_DETAIL_CHARS = 3500;
const MAX_HEADLINE_CHARS = 200;

/** One icon per event name (`satisfies`: a new event needs one); indexed by stored names too. */
const ICONS: Readonly<Record<string, string>> = {
  'run.failed': '❌',
  'run.late': '⏰',
  'run.completed': '✅',
  'flow.disabled': '⛔',
  'flow.reactivated': '🔁',
} satisfies Record<EventName, string>;

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (truncated)` : text;
}

/**
 * Untrusted text (run messages, reasons, `by`) in an inline context — a headline, a digest line —
 * must not open or close a code span or block: its backticks become ˋ (U+02CB), which reads the
 * same and formats nothing.
 */
export function inline(text: string): string {
  return text.replace(/`/g, '\u02cb');
}

/**
 * Untrusted multi-line text as a block of its own: a fence stays a fence only at the start of a
 * line (as CommonMark reads it); ``` anywhere else in a line (Discord would read it as a fence) is
 * neutralised; an unclosed fence is closed at the end, so the block's fences are balanced.
 */
export function block(text: string): string {
  let open = false;
  const lines = text.split('\n').map((line) => {
    const m = /^( {0,3})(`{3,})(.*)$/.exec(line);
    if (m) {
      open = !open;
      return `${m[1]}\`\`\`${m[3]!.replace(/`{3,}/g, (run) => '\u02cb'.repeat(run.length))}`;
    }
    return line.replace(/`{3,}/g, (run) => '\u02cb'.repeat(run.length));
  });
  if (open) lines.push('```');
  return lines.join('\n');
}

function oneLine(text: string, max: number): string {
  const line = inline(text).replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** The stored text of one event: a headline, then detail lines. */
export function eventText(p: EventPayload): string {
  const flow = `\`${p.flowName}\``;
  const d = p.details ?? {};
  const state = [str(d.stateType), str(d.stateName)].filter(Boolean).join('/');
  const message = p.message ? oneLine(p.message, 160) : undefined;
  let headline: string;
  switch (p.event) {
    case 'run.failed':
      headline = `${ICONS[p.event]} ${flow} run failed${state ? ` (${state})` : ''}${message ? `: ${message}` : ''}`;
      break;
    case 'run.late':
      headline = `${ICONS[p.event]} ${flow} run is late${str(d.scheduledFor) ? ` (scheduled for ${str(d.scheduledFor)})` : ''}`;
      break;
    case 'run.completed':
      headline = `${ICONS[p.event]} ${flow} run completed`;
      break;
    case 'flow.disabled':
      headline = d.enforced === true
        ? `${ICONS[p.event]} ${flow} disabled again: its schedules were re-enabled while the guard holds it${message ? ` (${message})` : ''}`
        : `${ICONS[p.event]} ${flow} disabled${str(d.by) ? ` by ${inline(str(d.by)!)}` : ''}${message ? `: ${message}` : ''}`;
      break;
    case 'flow.reactivated':
      headline = `${ICONS[p.event]} ${flow} reactivated${str(d.by) ? ` by ${inline(str(d.by)!)}` : ''}${message ? `: ${message}` : ''}`;
      break;
    default:
      headline = `${flow} ${String(p.event)}${message ? `: ${message}` : ''}`;
  }
  const lines = [headline];
  // The full message when the headline had to shorten it (multi-line errors, long reasons).
  if (p.message && p.message.replace(/\s+/g, ' ').trim() !== message) lines.push(block(cut(p.message.trim(), MAX_DETAIL_CHARS)));
  if (p.runId) lines.push(`run \`${p.runId}\`${str(d.scheduledFor) && p.event !== 'run.late' ? ` scheduled for ${str(d.scheduledFor)}` : ''}`);
  return lines.join('\n');
}

export interface RenderedMessage {
  text: string;
  eventIds: number[];
}

/** Group pending events into the messages to post, in the order their first event arrived. */
export function renderMessages(channelName: string, events: readonly PendingEvent[]): RenderedMessage[] {
  const out: Array<RenderedMessage & { first: number }> = [];
  const system = events.filter((e) => e.event !== MESSAGE_EVENT);
  for (const e of events) {
    if (e.event === MESSAGE_EVENT) out.push({ text: e.text, eventIds: [e.id], first: e.id });
  }
  if (system.length === 1) {
    out.push({ text: system[0]!.text, eventIds: [system[0]!.id], first: system[0]!.id });
  } else if (system.length > 1) {
    out.push({ text: renderDigest(channelName, system), eventIds: system.map((e) => e.id), first: system[0]!.id });
  }
  return out.sort((a, b) => a.first - b.first).map(({ text, eventIds }) => ({ text, eventIds }));
}

/** "N events for <channel>:" grouped by (flow, event), capped. */
export function renderDigest(channelName: string, events: readonly PendingEvent[]): string {
  const groups = new Map<string, { flow: string | null; event: string; items: PendingEvent[] }>();
  for (const e of events) {
    const key = `${e.flowName ?? ''}\u0000${e.event}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { flow: e.flowName, event: e.event, items: [] }));
    g.items.push(e);
  }
  const lines = [`📋 ${events.length} events for ${channelName}:`];
  const all = [...groups.values()];
  for (const g of all.slice(0, DIGEST_MAX_GROUPS)) {
    lines.push('');
    lines.push(`${ICONS[g.event] ?? '•'} ${g.flow ? `\`${g.flow}\`` : '(no flow)'} · ${g.event} ×${g.items.length}`);
    for (const e of g.items.slice(0, DIGEST_LINES_PER_GROUP)) {
      lines.push(`• ${oneLine(e.text.split('\n', 1)[0] ?? '', MAX_HEADLINE_CHARS)}`);
    }
    if (g.items.length > DIGEST_LINES_PER_GROUP) lines.push(`… and ${g.items.length - DIGEST_LINES_PER_GROUP} more`);
  }
  const rest = all.slice(DIGEST_MAX_GROUPS);
  if (rest.length > 0) {
    const n = rest.reduce((sum, g) => sum + g.items.length, 0);
    lines.push('');
    lines.push(`… and ${n} more events in ${rest.length} other groups`);
  }
  return lines.join('\n');
}
