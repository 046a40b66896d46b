/** `flowwarden status [--json]`: the retention settings in force and how big each table is. */
import type { Ctx, Values } from './context.ts';
import { withPool } from './context.ts';
import { printJson, printTable } from './output.ts';
import { tableSizes } from '../queries/retention.ts';
import type { RetentionConfig } from '../config.ts';

export const STATUS_USAGE = '  status [--json]                                              retention settings and table sizes';

/** 0 → 'forever', 604800 → '7d', 5400 → '1h30m'. */
export function formatWindow(seconds: number | undefined): string {
  if (seconds === undefined) return 'per queue';
  if (seconds <= 0) return 'forever';
  const parts: string[] = [];
  let s = seconds;
  for (const [unit, n] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)}${unit}`);
      s %= n;
    }
  }
  return parts.join('');
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** The retention settings as operators read them (also the admin overview). */
export function retentionRows(r: RetentionConfig): Array<{ setting: string; value: string; env: string }> {
  return [
    { setting: 'finished runs kept', value: formatWindow(r.runSeconds), env: 'FLOWWARDEN_RUN_RETENTION_SECONDS (per flow: health.retention)' },
    { setting: 'newest runs kept per flow', value: String(r.keepRuns), env: 'FLOWWARDEN_RETENTION_KEEP_RUNS' },
    { setting: 'notifications kept', value: formatWindow(r.notifySeconds), env: 'FLOWWARDEN_NOTIFY_RETENTION_SECONDS' },
    { setting: 'finished queue jobs kept', value: formatWindow(r.jobSeconds), env: 'FLOWWARDEN_JOB_RETENTION_SECONDS' },
    { setting: 'sweep every', value: formatWindow(r.intervalSeconds), env: 'FLOWWARDEN_RETENTION_INTERVAL_SECONDS' },
    { setting: 'rows per batch', value: String(r.batchSize), env: 'FLOWWARDEN_RETENTION_BATCH_SIZE' },
  ];
}

export async function cmdStatus(base: Omit<Ctx, 'db'>, values: Values): Promise<void> {
  await withPool(base, async (pool) => {
    const sizes = await tableSizes(pool);
    const retention = base.config.retention;
    if (values.json) return printJson({ retention, databaseBytes: sizes.databaseBytes, tables: sizes.tables });
    process.stdout.write('retention:\n');
    printTable(retentionRows(retention), ['setting', 'value', 'env']);
    process.stdout.write(`\ndatabase: ${formatBytes(sizes.databaseBytes)}\n\n`);
    printTable(
      sizes.tables.map((t) => ({ table: t.table, rows: t.rowsEstimate < 0 ? '?' : `~${t.rowsEstimate.toLocaleString('en')}`, size: formatBytes(t.totalBytes) })),
      ['table', 'rows', 'size'],
    );
    process.stdout.write('\nrows are planner estimates (pg_class.reltuples); size includes indexes and TOAST\n');
  });
}

/** The command module (main.ts COMMANDS). */
export async function run(base: Omit<Ctx, 'db'>, _args: string[], values: Values): Promise<void> {
  await cmdStatus(base, values);
}
