/**
 * Input validation and cursor pagination shared by every API route: zod at the edge (a failure is
 * a 400 naming every bad field; src/util/input.ts); lists answer `{ items, nextCursor }` with an opaque keyset cursor.
 * Why the cursor is safe: docs/internals.md ("API: validation and pagination").
 */
import { z } from 'zod';
import { UserInputError } from '../errors.ts';

export const MAX_PAGE_SIZE = 500;
export const DEFAULT_PAGE_SIZE = 50;

/** `limit` and `cursor` query parameters; merge into each list's query schema. */
export const PageQuery = z.object({
  limit: z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(MAX_PAGE_SIZE, `must be at most ${MAX_PAGE_SIZE}`)
    .default(DEFAULT_PAGE_SIZE)
    .describe(`page size, 1 to ${MAX_PAGE_SIZE} (default ${DEFAULT_PAGE_SIZE})`),
  cursor: z.string().min(1).max(2000).optional().describe('nextCursor from the previous page; omit for the first page'),
});

export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/**
 * Decode a cursor made by `encodeCursor` for a key of the given element types. Anything else
 * (not base64url, not JSON, wrong arity or types) is a 400.
 */
export function decodeCursor<const T extends readonly ('string' | 'number')[]>(
  cursor: string | undefined,
  types: T,
): { [K in keyof T]: T[K] extends 'number' ? number : string } | undefined {
  if (cursor === undefined) return undefined;
  const bad = badCursor;
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(value) || value.length !== types.length) throw bad();
  value.forEach((v, i) => {
    if (typeof v !== types[i] || (typeof v === 'string' && (v.length > 1000 || hasControlChar(v)))) throw bad();
    // Number keys are ids: whole numbers Postgres' bigint holds (not 1.5, not 1e308).
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw bad();
  });
  return value as never;
}

/** C0 control characters (U+0000–U+001F): never part of a key a cursor was made from. */
function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x20) return true;
  return false;
}

export function badCursor(): UserInputError {
  return new UserInputError('invalid cursor: pass the nextCursor of the previous page unchanged (or omit it for the first page)');
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** `rows` were fetched with limit + 1: trim to `limit` and make the cursor from the last kept row. */
export function pageOf<R, T>(rows: R[], limit: number, key: (row: R) => (string | number)[], toJson: (row: R) => T): Page<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  return { items: kept.map(toJson), nextCursor: more ? encodeCursor(key(kept[kept.length - 1]!)) : null };
}

/** Page through a small in-memory list (channels, a flow's schedules) sorted by a unique name. */
export function pageByName<R extends { name: string }, T>(rows: R[], query: { limit: number; cursor?: string | undefined }, toJson: (row: R) => T): Page<T> {
  const after = decodeCursor(query.cursor, ['string'] as const)?.[0];
  const sorted = [...rows].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const rest = after === undefined ? sorted : sorted.filter((r) => r.name > after);
  return pageOf(rest.slice(0, query.limit + 1), query.limit, (r) => [r.name], toJson);
}
