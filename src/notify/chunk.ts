/**
 * Split a rendered notification into chunks that each fit a chat channel's message limit: greedy,
 * breaking at a line, else after spaces, else at a grapheme boundary; code fences are closed at a
 * chunk's end and reopened in the next; no non-whitespace content is lost and no chunk is
 * whitespace only. Length is UTF-16 code units. Design and limits: docs/internals.md
 * ("Notifications: chunking").
 */

export const FENCE = '```';
/** Smallest accepted limit: room for a bare reopen ("```\n"), a close ("\n```") and some text. */
export const MIN_CHUNK_LIMIT = 16;
export const DEFAULT_CHUNK_LIMIT = 2000;

export interface ChunkOptions {
  /** Maximum chunk length in UTF-16 code units (default 2000, Discord's message limit). */
  limit?: number;
}

/** One chunk: `reopen` and `close` are fence lines added by the chunker; `body` is original text. */
export interface ChunkPart {
  reopen: string;
  body: string;
  close: string;
}

export interface OpenFence {
  /** The info string of the opening fence ("ts", "json", "" for a bare fence). */
  info: string;
}

const FENCE_LINE = /^ {0,3}```(.*)$/;
const FENCE_START = /^ {0,3}```/;

/**
 * Classify one line (without its terminator) given the current fence state.
 * Returns the fence state after the line.
 */
export function fenceAfterLine(line: string, open: OpenFence | null): OpenFence | null {
  const m = FENCE_LINE.exec(line.endsWith('\r') ? line.slice(0, -1) : line);
  if (!m) return open;
  if (open) return null;
  const rest = m[1] ?? '';
  if (rest.includes(FENCE)) return null; // ```one-line block``` — not an opener
  return { info: rest.trim() };
}

/** True if the line (without terminator) would toggle fence state from `open`. */
export function isFenceToggle(line: string, open: OpenFence | null): boolean {
  const after = fenceAfterLine(line, open);
  return (after === null) !== (open === null);
}

export function renderPart(part: ChunkPart): string {
  return part.reopen + part.body + part.close;
}

/** The original text back from the parts (bodies only, added fences dropped). */
export function joinBodies(parts: readonly ChunkPart[]): string {
  return parts.map((p) => p.body).join('');
}

export function chunkMessage(text: string, opts: ChunkOptions = {}): string[] {
  return splitMessage(text, opts).map(renderPart);
}

interface Line {
  start: number;
  /** Index after the terminator ("\n"), or text length for a last line without one. */
  end: number;
  /** Index of the terminator ("\r\n" or "\n"), or `end` when there is none. */
  contentEnd: number;
  before: OpenFence | null;
  after: OpenFence | null;
}

function scanLines(text: string): Line[] {
  const lines: Line[] = [];
  let open: OpenFence | null = null;
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    const end = nl === -1 ? text.length : nl + 1;
    let contentEnd = nl === -1 ? text.length : nl;
    if (nl !== -1 && contentEnd > start && text[contentEnd - 1] === '\r') contentEnd -= 1;
    const after = fenceAfterLine(text.slice(start, contentEnd), open);
    lines.push({ start, end, contentEnd, before: open, after });
    open = after;
    start = end;
  }
  return lines;
}

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t';
}

export function splitMessage(text: string, opts: ChunkOptions = {}): ChunkPart[] {
  const limit = opts.limit ?? DEFAULT_CHUNK_LIMIT;
  if (!Number.isInteger(limit) || limit < MIN_CHUNK_LIMIT) {
    throw new RangeError(`chunk limit must be an integer >= ${MIN_CHUNK_LIMIT}, got ${limit}`);
  }
  if (text.trim() === '') return [];

  const n = text.length;
  const lines = scanLines(text);
  // Index where the trailing whitespace begins; a remainder starting at or after it is blank.
  const trailingStart = text.trimEnd().length;

  const lineIndexAt = (pos: number): number => {
    let lo = 0;
    let hi = lines.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lines[mid]!.start <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  // Fence state at a position: a line's fence effect applies once its first character is taken.
  const fenceAt = (pos: number): OpenFence | null => {
    if (pos >= n) return lines[lines.length - 1]!.after;
    const line = lines[lineIndexAt(pos)]!;
    return pos === line.start ? line.before : line.after;
  };
  const closeLen = (end: number): number =>
    fenceAt(end) ? (text[end - 1] === '\n' ? FENCE.length : FENCE.length + 1) : 0;
  const startsFence = (pos: number): boolean => FENCE_START.test(text.slice(pos, pos + 6));

  const reopenFor = (open: OpenFence): string => {
    const full = FENCE + open.info + '\n';
    // Keep the language unless it would crowd out the content (absurdly long info strings).
    return full.length + FENCE.length + 1 + 8 <= limit ? full : FENCE + '\n';
  };

  const splitWithinLine = (pos: number, budget: number): number => {
    const line = lines[lineIndexAt(pos)]!;
    const maxLen = budget - (line.after ? FENCE.length + 1 : 0);
    let maxEnd = Math.min(pos + maxLen, line.contentEnd);
    if (maxEnd <= pos) maxEnd = Math.min(pos + maxLen, line.end);
    // 1. The line's content fits without its terminator: split just before the newline.
    if (maxEnd === line.contentEnd && maxEnd > pos) return maxEnd;
    // 2. After a run of spaces, keeping some non-space text in this chunk.
    let firstNonSpace = pos;
    while (firstNonSpace < maxEnd && isSpace(text[firstNonSpace])) firstNonSpace++;
    for (let p = maxEnd; p > firstNonSpace; p--) {
      if (isSpace(text[p - 1]) && !isSpace(text[p]) && !startsFence(p)) return p;
    }
    // 3. Hard split at the last grapheme boundary that fits.
    const windowEnd = Math.min(n, maxEnd + 16);
    const boundaries: number[] = [];
    for (const s of segmenter.segment(text.slice(pos, windowEnd))) {
      const b = pos + s.index;
      if (b > maxEnd) break;
      if (b > pos) boundaries.push(b);
    }
    if (windowEnd === maxEnd) boundaries.push(maxEnd);
    for (let i = boundaries.length - 1; i >= 0; i--) {
      const b = boundaries[i]!;
      if (!startsFence(b)) return b;
    }
    // 4. One grapheme longer than the room (e.g. thousands of combining marks): code points.
    let p = maxEnd;
    if (isLowSurrogate(text.charCodeAt(p)) && isHighSurrogate(text.charCodeAt(p - 1))) p -= 1;
    return p > pos ? p : maxEnd;
  };

  const parts: ChunkPart[] = [];
  let pos = 0;
  while (pos < n) {
    const open = fenceAt(pos);
    const reopen = open ? reopenFor(open) : '';
    const budget = limit - reopen.length;

    // Line-boundary candidates that fit, including the close fence they would need.
    const fits: number[] = [];
    for (let li = lineIndexAt(pos); li < lines.length; li++) {
      const e = lines[li]!.end;
      if (e - pos > budget) break;
      if (e <= pos) continue;
      if (e - pos + closeLen(e) <= budget) fits.push(e);
    }

    let end: number;
    if (fits.length > 0) {
      fits.reverse(); // largest first
      // Prefer not to leave a whitespace-only remainder (it would become an "empty" message).
      const notBlankTail = fits.filter((e) => e >= n || e < trailingStart);
      const ranked = notBlankTail.length > 0 ? notBlankTail : fits;
      end = ranked[0]!;
      // Avoid ending right after an opening fence line or right before a closing one (an empty
      // code block in one of the two chunks) when a smaller candidate exists.
      const second = ranked[1];
      if (second !== undefined && isAwkward(end)) end = second;
    } else {
      end = splitWithinLine(pos, budget);
    }

    const body = text.slice(pos, end);
    if (reopen === '' && body.trim() === '') {
      // Alone, this would be an "empty" message (Discord: 400). Outside a fence (so no fence lines
      // to add or close): give the whitespace to the previous chunk while it has room, and drop
      // what is left — it sits at a chunk boundary, where chat clients trim whitespace anyway.
      const prev = parts.at(-1);
      const take = prev ? absorbable(prev, pos, end) : 0;
      if (take > 0) prev!.body += text.slice(pos, pos + take);
      pos = take > 0 ? pos + take : end;
      continue;
    }
    const close = fenceAt(end) ? (body.endsWith('\n') ? FENCE : '\n' + FENCE) : '';
    parts.push({ reopen, body, close });
    pos = end;
  }
  return parts;

  /** How much of the whitespace run [from, to) fits at the end of `prev` (not splitting "\r\n", not leaving a mid-line ``` to start the next chunk). */
  function absorbable(prev: ChunkPart, from: number, to: number): number {
    let take = Math.min(limit - renderPart(prev).length, to - from);
    while (take > 0) {
      const at = from + take;
      const splitsCrlf = text[at - 1] === '\r' && text[at] === '\n';
      const fenceMidLine = text[at - 1] !== '\n' && startsFence(at);
      if (!splitsCrlf && !fenceMidLine) break;
      take--;
    }
    return Math.max(0, take);
  }

  function isAwkward(end: number): boolean {
    if (end >= n || !fenceAt(end)) return false;
    const next = lines[lineIndexAt(end)]!;
    const prev = lines[lineIndexAt(end - 1)]!;
    const endsAfterOpener = prev.before === null && prev.after !== null;
    const nextIsCloser = next.start === end && next.after === null;
    return endsAfterOpener || nextIsCloser;
  }
}
