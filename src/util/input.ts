/**
 * Checking input at every edge (HTTP bodies, the producer client's arguments, flow files): zod's
 * issues as "path: problem" lines, and the bytes Postgres cannot store refused before any schema
 * or SQL sees them. A failure is a UserInputError naming every bad field.
 */
import type { z } from 'zod';
import { UserInputError } from '../errors.ts';

/** zod issues as "path: problem" lines, each path under `prefix` (e.g. `body.tasks[0].name`). */
export function formatIssues(issues: readonly z.core.$ZodIssue[], prefix = ''): string[] {
  return issues.map((i) => {
    const p = [prefix, ...i.path.map((x) => (typeof x === 'number' ? `[${x}]` : `.${String(x)}`))].join('').replace(/^\./, '');
    return `${p || '(root)'}: ${i.message}`;
  });
}

/** JSON nested deeper than this is refused (Postgres' jsonb and recursive code have limits too). */
const MAX_INPUT_DEPTH = 64;

/**
 * What Postgres cannot store or would choke on, found before any schema or SQL sees it: a NUL
 * character (`\u0000`) in any string or key (text and jsonb reject it), nesting deeper than
 * MAX_INPUT_DEPTH, and values JSON cannot carry (a BigInt, a function, a symbol: a caller of the
 * producer client can pass them). Iterative, so a 10,000-deep document cannot overflow the stack
 * here. Returns the first problem as "path: problem" (paths start at `where`, '' for top-level
 * fields), or null.
 */
export function inputBytesProblem(value: unknown, where: string): string | null {
  const at = (path: string, problem: string) => `${path || '(root)'}: ${problem}`;
  const stack: Array<[unknown, string, number]> = [[value, where, 0]];
  while (stack.length > 0) {
    const [v, path, depth] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return at(path, 'must not contain a NUL character (\\u0000)');
    } else if (typeof v === 'bigint') {
      return at(path, 'is a BigInt, which JSON cannot carry: pass a number or a string');
    } else if (typeof v === 'function' || typeof v === 'symbol') {
      return at(path, `is a ${typeof v}: only JSON values (strings, numbers, booleans, null, arrays, objects) can be stored`);
    } else if (v && typeof v === 'object') {
      if (depth >= MAX_INPUT_DEPTH) return at(path, `nested more than ${MAX_INPUT_DEPTH} levels deep`);
      for (const [k, child] of Object.entries(v)) {
        if (k.includes('\u0000')) return at(path, 'a key must not contain a NUL character (\\u0000)');
        stack.push([child, path ? `${path}.${k}` : k, depth + 1]);
      }
    }
  }
  return null;
}

/** inputBytesProblem as a UserInputError saying `invalid ${what}: ...`. */
export function checkInputBytes(value: unknown, where: string, what = where): void {
  const detail = inputBytesProblem(value, where);
  if (detail) throw new UserInputError(`invalid ${what}: ${detail}`, [detail]);
}

/**
 * Parse `value` with `schema`; on failure throw a UserInputError naming each problem, its path
 * under `where` (the API: 'body', 'query', 'path'; '' for a function's own arguments).
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, where: string, what = where): z.output<S> {
  checkInputBytes(value, where, what);
  const r = schema.safeParse(value ?? {});
  if (!r.success) {
    const details = formatIssues(r.error.issues, where);
    throw new UserInputError(`invalid ${what}: ${details.join('; ')}`, details);
  }
  return r.data;
}
