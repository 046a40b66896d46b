/** The CLI's option table (one for all commands). Kept apart so `--help` loads nothing else. */
import type { parseArgs } from 'node:util';

export const OPTIONS = {
  role: { type: 'string', multiple: true },
  handlers: { type: 'string' },
  file: { type: 'string', short: 'f' },
  json: { type: 'boolean' },
  limit: { type: 'string' },
  flow: { type: 'string' },
  state: { type: 'string' },
  /** runs list: also upcoming runs (SCHEDULED, time not yet come). */
  upcoming: { type: 'boolean' },
  params: { type: 'string' },
  'idempotency-key': { type: 'string' },
  at: { type: 'string' },
  reason: { type: 'string' },
  by: { type: 'string' },
  /** channels add: comma-separated event names, or 'all'. */
  events: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  'prefect-fake': { type: 'boolean' },
  // import celery-beat (import-celery-beat.ts, IMPORT_USAGE).
  from: { type: 'string' },
  mapping: { type: 'string' },
  shadow: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  watch: { type: 'boolean' },
  interval: { type: 'string' },
  compare: { type: 'boolean' },
  days: { type: 'string' },
  since: { type: 'string' },
  'celery-timezone': { type: 'string' },
  'beat-tz-aware': { type: 'string' },
} as const;

export type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];
