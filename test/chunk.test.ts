import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  chunkMessage,
  splitMessage,
  joinBodies,
  renderPart,
  fenceAfterLine,
  DEFAULT_CHUNK_LIMIT,
  FENCE,
  MIN_CHUNK_LIMIT,
  type ChunkPart,
  type OpenFence,
} from '../src/notify/chunk.ts';

/** mulberry32: small seeded PRNG so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ATOMS = [
  'a', 'b', 'x', 'Z', '0', '-', '.', '`', '``', 'é', 'e\u0301', 'ß', '日', '本', 'Ω',
  '😀', '🎉', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇫🇷', '🇯🇵', '𝒳', '❤️',
];
const WORDS = [
  'run', 'failed', 'flow', 'nightly-etl', 'retry', 'Late', 'état', '日本語', '😀', '👨‍👩‍👧‍👦', '🇫🇷🇩🇪',
  '@everyone', '@here', '<@123456789>', '<@&987654321>', '<!channel>', '`inline`', 'use ``` mid-line',
  'https://example.com/runs/42?x=1', 'a'.repeat(25),
];
const LANGS = ['', 'ts', 'json', 'sql', 'py', 'diff'];

function generate(rnd: () => number, limit: number): string {
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const eol = rnd() < 0.15 ? '\r\n' : '\n';
  const target = int(1, limit * 4);
  let out = '';
  const line = (): string => {
    const n = int(0, 12);
    const ws: string[] = [];
    for (let i = 0; i < n; i++) ws.push(pick(WORDS));
    return ws.join(rnd() < 0.1 ? '  ' : ' ');
  };
  const longLine = (): string => {
    const len = int(1, limit * 3);
    let s = '';
    while (s.length < len) s += rnd() < 0.5 ? pick(ATOMS) : 'q'.repeat(int(1, 30));
    return s;
  };
  while (out.length < target) {
    const r = rnd();
    if (r < 0.3) {
      out += line() + eol;
    } else if (r < 0.45) {
      out += longLine() + (rnd() < 0.8 ? eol : '');
    } else if (r < 0.55) {
      out += eol.repeat(int(1, 4));
    } else if (r < 0.85) {
      // A fenced block: lines of code, sometimes long, sometimes unclosed.
      out += '```' + pick(LANGS) + eol;
      const n = int(0, 15);
      for (let i = 0; i < n; i++) {
        const c = rnd();
        out += (c < 0.2 ? longLine() : c < 0.3 ? '' : c < 0.4 ? '  ' + line() : line()) + eol;
      }
      if (rnd() < 0.9) out += '```' + eol;
    } else if (r < 0.95) {
      // An emoji or multi-unit sequence right around a likely boundary.
      const pad = Math.max(0, limit - out.length % limit - int(0, 6));
      out += 'p'.repeat(pad) + pick(ATOMS) + pick(ATOMS);
    } else {
      out += pick(WORDS) + ' '.repeat(int(1, 5));
    }
  }
  return out;
}

function lines(chunk: string): string[] {
  return chunk.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** Independent, naive check: lines that start a fence, counted per chunk. */
function fenceLineCount(chunk: string): number {
  return lines(chunk).filter((l) => /^ {0,3}```/.test(l)).length;
}

/** The module's own fence model: must end closed when started closed. */
function endsClosed(chunk: string): boolean {
  let open: OpenFence | null = null;
  for (const l of lines(chunk)) open = fenceAfterLine(l, open);
  return open === null;
}

function isGraphemeBoundary(text: string, index: number): boolean {
  if (index <= 0 || index >= text.length) return true;
  const seg = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  for (const s of seg.segment(text)) {
    if (s.index === index) return true;
    if (s.index > index) return false;
  }
  return false;
}

function checkInvariants(text: string, limit: number, label: string): ChunkPart[] {
  const parts = splitMessage(text, { limit });
  const chunks = chunkMessage(text, { limit });
  assert.deepEqual(chunks, parts.map(renderPart), `${label}: chunkMessage = rendered parts`);
  if (text.trim() === '') {
    assert.deepEqual(parts, [], `${label}: blank input gives no chunks`);
    return parts;
  }
  let offset = 0;
  let open: OpenFence | null = null;
  for (const [i, part] of parts.entries()) {
    const chunk = renderPart(part);
    const where = `${label} chunk ${i}/${parts.length}`;
    // Bodies are the input in order. The only text ever left out is a whitespace-only run too long
    // to share a chunk with any content (alone it would be an "empty" message the peer rejects).
    let at = offset;
    while (!text.startsWith(part.body, at)) {
      assert.ok(at < text.length && text[at]!.trim() === '', `${where}: content lost or altered at ${at}`);
      at++;
    }
    // ... and only after the previous chunk is full (a CRLF or a mid-line ``` may leave a few units).
    if (at > offset && i > 0) assert.ok(limit - renderPart(parts[i - 1]!).length <= FENCE.length + 1, `${where}: dropped whitespace the previous chunk had room for`);
    offset = at;
    assert.ok(part.body.length > 0 && chunk.length > 0, `${where}: not empty`);
    assert.notEqual(chunk.trim(), '', `${where}: whitespace-only chunk ${JSON.stringify(chunk.slice(0, 40))}`);
    assert.ok(chunk.length <= limit, `${where}: ${chunk.length} UTF-16 units > ${limit}`);
    assert.ok([...chunk].length <= limit, `${where}: code points > ${limit}`);
    assert.equal(fenceLineCount(chunk) % 2, 0, `${where}: odd number of fence lines in ${JSON.stringify(chunk)}`);
    assert.ok(endsClosed(chunk), `${where}: fence left open in ${JSON.stringify(chunk)}`);

    // Added fences are exactly a reopen of the fence open at this point, and a close.
    if (open) {
      assert.ok(part.reopen === '```' + open.info + '\n' || part.reopen === '```\n', `${where}: reopen ${JSON.stringify(part.reopen)}`);
    } else {
      assert.equal(part.reopen, '', `${where}: no reopen outside a fence`);
    }
    assert.ok(['', '```', '\n```'].includes(part.close), `${where}: close ${JSON.stringify(part.close)}`);

    // Never split a surrogate pair.
    const end = offset + part.body.length;
    if (end < text.length) {
      const hi = text.charCodeAt(end - 1);
      const lo = text.charCodeAt(end);
      assert.ok(!(hi >= 0xd800 && hi <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff), `${where}: split a surrogate pair`);
      // With room for the longest grapheme we generate, splits land on grapheme boundaries.
      if (limit >= 40) assert.ok(isGraphemeBoundary(text, end), `${where}: split inside a grapheme at ${end}`);
    }

    // Track the original's fence state through this body (a line counts once its start is taken).
    let lineStart = offset === 0 || text[offset - 1] === '\n';
    let p = offset;
    while (p < end) {
      const nl = text.indexOf('\n', p);
      const lineEnd = nl === -1 ? text.length : nl;
      if (lineStart) open = fenceAfterLine(text.slice(p, lineEnd), open);
      if (nl === -1 || nl >= end) break;
      p = nl + 1;
      lineStart = true;
    }
    offset = end;
  }
  assert.equal(text.slice(offset).trim(), '', `${label}: only whitespace may be left out after the last chunk`);
  if (joinBodies(parts).length === text.length) assert.equal(joinBodies(parts), text, `${label}: bodies reassemble the input exactly`);
  return parts;
}

describe('chunkMessage properties over generated text', () => {
  const LIMITS = [MIN_CHUNK_LIMIT, 23, 40, 64, 100, 257, DEFAULT_CHUNK_LIMIT];
  for (const limit of LIMITS) {
    test(`every chunk fits ${limit}, keeps fences balanced, loses no content and sends no whitespace-only chunk`, () => {
      const cases = limit >= 1000 ? 60 : 150;
      for (let seed = 1; seed <= cases; seed++) {
        const rnd = prng(seed * 7919 + limit);
        const text = generate(rnd, limit);
        checkInvariants(text, limit, `limit=${limit} seed=${seed}`);
      }
    });
  }
});

describe('chunkMessage examples', () => {
  test('empty and whitespace-only text give no chunks', () => {
    assert.deepEqual(chunkMessage(''), []);
    assert.deepEqual(chunkMessage(' \n\t\n'), []);
  });

  test('text within the limit is one chunk, unchanged', () => {
    assert.deepEqual(chunkMessage('hello @everyone'), ['hello @everyone']);
    const exact = 'x'.repeat(2000);
    assert.deepEqual(chunkMessage(exact), [exact]);
    assert.deepEqual(chunkMessage(exact + 'y'), [exact, 'y']);
  });

  test('limit below the minimum is refused', () => {
    assert.throws(() => chunkMessage('abc', { limit: MIN_CHUNK_LIMIT - 1 }), RangeError);
    assert.throws(() => chunkMessage('abc', { limit: 20.5 }), RangeError);
  });

  test('splits on line boundaries first', () => {
    const text = 'first line\nsecond line\nthird line\n';
    assert.deepEqual(chunkMessage(text, { limit: 24 }), ['first line\nsecond line\n', 'third line\n']);
  });

  test('splits a long line after spaces, keeping the spaces with the earlier chunk', () => {
    const text = 'alpha beta gamma delta epsilon';
    const chunks = chunkMessage(text, { limit: 16 });
    assert.deepEqual(chunks, ['alpha beta ', 'gamma delta ', 'epsilon']);
  });

  test('hard split never cuts an emoji, ZWJ sequence or flag at the boundary', () => {
    for (const emoji of ['😀', '👨‍👩‍👧‍👦', '🇫🇷', '👍🏽', 'e\u0301']) {
      for (let shift = 0; shift < emoji.length + 1; shift++) {
        const text = 'a'.repeat(2000 - shift) + emoji + 'b'.repeat(10);
        const chunks = chunkMessage(text);
        assert.equal(chunks.join(''), text);
        assert.ok(chunks.every((c) => c.length <= 2000));
        assert.ok(
          chunks.some((c) => c.includes(emoji)),
          `${JSON.stringify(emoji)} shift ${shift} kept whole`,
        );
      }
    }
  });

  test('a chunk ending inside a code fence closes it and the next reopens with the language', () => {
    const code = Array.from({ length: 8 }, (_, i) => `const v${i} = ${i};`).join('\n');
    const text = `Run failed:\n\`\`\`ts\n${code}\n\`\`\`\nSee logs.`;
    const parts = splitMessage(text, { limit: 60 });
    assert.ok(parts.length > 1);
    assert.equal(joinBodies(parts), text);
    const chunks = parts.map(renderPart);
    assert.ok(chunks[0]!.endsWith('\n```'));
    for (const c of chunks.slice(1, -1)) {
      assert.ok(c.startsWith('```ts\n'), c);
      assert.ok(/```\n?$/.test(c), c);
    }
    assert.ok(chunks.at(-1)!.endsWith('See logs.'));
  });

  test('an unclosed fence is closed in the last chunk', () => {
    const parts = splitMessage('```json\n{"a": 1}', { limit: 100 });
    assert.deepEqual(parts, [{ reopen: '', body: '```json\n{"a": 1}', close: '\n```' }]);
  });

  test('a one-line ```block``` does not open a fence', () => {
    const text = '```inline```\n' + 'word '.repeat(20);
    const parts = splitMessage(text, { limit: 40 });
    assert.ok(parts.every((p) => p.reopen === '' && p.close === ''));
  });

  test('a continuation chunk never starts with a mid-line ```', () => {
    const text = 'x'.repeat(30) + ' ```' + 'y'.repeat(30);
    const chunks = chunkMessage(text, { limit: 32 });
    assert.equal(chunks.join(''), text);
    assert.ok(chunks.every((c) => !/^ {0,3}```/.test(c)), JSON.stringify(chunks));
  });

  test('trailing blank lines do not become a whitespace-only last chunk', () => {
    const text = 'x'.repeat(1990) + '\ny\n' + '\n'.repeat(15);
    const chunks = chunkMessage(text);
    assert.equal(chunks.join(''), text);
    assert.ok(chunks.every((c) => c.trim() !== ''), JSON.stringify(chunks.map((c) => c.length)));
  });

  test('a whitespace run longer than the limit inside a line never becomes a whitespace-only chunk', () => {
    const text = 'a\n' + ' '.repeat(2500) + '\nb';
    const chunks = chunkMessage(text);
    assert.ok(chunks.every((c) => c.trim() !== ''), JSON.stringify(chunks.map((c) => c.length)));
    assert.ok(chunks.every((c) => c.length <= 2000));
    assert.equal(chunks.join(''), text, 'the spaces fit beside the content: nothing is dropped');
    checkInvariants(text, 2000, 'probe');
  });

  test('whitespace too long to share a chunk with content is dropped, never sent alone', () => {
    for (const text of ['a\n' + ' '.repeat(6000) + '\nb', ' '.repeat(4500) + 'x', 'x' + '\n'.repeat(5000) + 'y\n' + '\t'.repeat(3000)]) {
      const parts = checkInvariants(text, 2000, JSON.stringify(text.slice(0, 3)));
      const chunks = parts.map(renderPart);
      assert.ok(chunks.every((c) => c.trim() !== '' && c.length <= 2000), JSON.stringify(chunks.map((c) => c.length)));
      assert.equal(chunks.join('').replace(/\s/g, ''), text.replace(/\s/g, ''), 'every non-whitespace character kept');
    }
  });

  test('mentions pass through unchanged (suppression is the channel payload\'s job)', () => {
    const text = '@everyone @here <@123> <@&456>\n'.repeat(200);
    const chunks = chunkMessage(text);
    assert.equal(chunks.join(''), text);
    assert.ok(chunks.every((c) => c.endsWith('\n')), 'split only at line ends');
  });
});
