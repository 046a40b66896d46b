/** CLI output helpers: aligned tables for humans, stable JSON for scripts. */
import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Where a command reads its environment and writes its output. The real CLI uses the process's;
 * `cli(argv, io)` (src/cli/main.ts) runs a command in-process with its own (tests do).
 */
export interface CliIo {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
  env: NodeJS.ProcessEnv;
}

const PROCESS_IO: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env };
const current = new AsyncLocalStorage<CliIo>();

/** The io of the command running in this async context (the process's outside `cli()`). */
export function io(): CliIo {
  return current.getStore() ?? PROCESS_IO;
}

export function withIo<T>(value: CliIo, fn: () => Promise<T>): Promise<T> {
  return current.run(value, fn);
}

export function print(text: string): void {
  io().stdout.write(text);
}

export function printJson(value: unknown): void {
  print(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable(rows: Array<Record<string, unknown>>, columns: string[]): void {
  if (rows.length === 0) {
    print('(none)\n');
    return;
  }
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  print(`${line(columns.map((c) => c.toUpperCase()))}\n`);
  for (const r of rows) print(`${line(columns.map((c) => cell(r[c])))}\n`);
}

/** A table cell: '-' for no value, ISO times, arrays joined by commas, objects as JSON. */
function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(cell).join(',');
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v) ?? typeof v;
}
