/**
 * `flowwarden import celery-beat`: import, sync (--watch) and compare django-celery-beat schedules
 * (docs/celery-beat.md). Parses its own options, so main.ts only dispatches to `runImport`.
 */
import { configSecrets } from '../config.ts';
import { createLogger } from '../log.ts';
import { UserInputError } from '../errors.ts';
import { startBoss } from '../queue/boss.ts';
import { readDefinitions } from '../apply.ts';
import { withPool, type Base, type Values } from './context.ts';
import { io, printJson, printTable } from './output.ts';
import { parseMapping, type CeleryBeatMapping } from '../celery-beat/mapping.ts';
import { readBeatDatabase } from '../celery-beat/source.ts';
import { importCeleryBeat, type ImportResult } from '../celery-beat/import.ts';
import { compareCeleryBeat } from '../celery-beat/compare.ts';
import { CeleryBeatSync } from '../celery-beat/watch.ts';

export const IMPORT_USAGE = `usage: flowwarden import celery-beat --from POSTGRES_URL [options]

  --from URL              the Django database django-celery-beat uses (read only)
  --mapping FILE          YAML/JSON: Celery task name -> target (docs/celery-beat.md)
  --shadow                every task gets the shadow target (records fires, dispatches nothing)
  --dry-run               print what would change, write nothing
  --watch [--interval S]  keep in step with Django: re-import every S seconds (default 30)
  --compare [--days N] [--since ISO]
                          Beat's fires against flowwarden's over N days (default 7) from --since (default now)
    --celery-timezone TZ  CELERY_TIMEZONE of the Django project (default UTC)
    --beat-tz-aware BOOL  DJANGO_CELERY_BEAT_TZ_AWARE (default true)
  --json                  machine-readable output`;


function positiveNumber(v: string | undefined, name: string, fallback: number, max: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new UserInputError(`${name} must be a number above 0 and at most ${max}, got '${v}'`);
  return n;
}

function printResult(r: ImportResult, json: boolean | undefined): void {
  if (json) return printJson(r);
  printTable(r.items.map((i) => ({ ...i })), ['task', 'flow', 'action', 'detail']);
  const c = r.counts;
  io().stdout.write(
    `${r.dryRun ? 'dry run, nothing written: would be ' : ''}${c.created} created, ${c.updated} updated, ${c.unchanged} unchanged, ${c.removed} removed, ` +
      `${c.unsupported} unsupported, ${c.conflict} conflicts\n`,
  );
}

export const usage = IMPORT_USAGE;

/** `flowwarden import celery-beat ...` (options in options.ts; a failure is thrown to main.ts). */
export async function run(base: Base, positionals: string[], values: Values): Promise<void> {
  if (positionals[0] !== 'celery-beat' || positionals.length > 1) {
    throw new UserInputError(`unknown import source '${positionals.join(' ')}'; use: flowwarden import celery-beat --from URL`);
  }
  if (!values.from) throw new UserInputError('import celery-beat needs --from URL: the postgres:// URL of the Django database django-celery-beat uses');
  // Checked before connecting: pg reads a bare word as a host name and fails with a resolver error.
  if (!/^postgres(ql)?:\/\//.test(values.from)) throw new UserInputError('--from must be a postgres:// (or postgresql://) URL of the Django database django-celery-beat uses, e.g. postgres://user:pass@host:5432/django');
  if (values.compare && (values.watch || values['dry-run'])) throw new UserInputError('--compare only reads: use it without --watch and --dry-run');
  if (values.watch && values['dry-run']) throw new UserInputError('--watch writes on every pass: drop --dry-run (try a single --dry-run first)');
  const rawMapping = values.mapping ? readDefinitions(values.mapping) : {};
  const mapping: CeleryBeatMapping = parseMapping(values.shadow ? { ...(rawMapping as object), shadow: true } : rawMapping, values.mapping ?? 'mapping');
  const from = values.from;
  const { config } = base;
  // The Django URL carries its password: redacted like the configured secrets.
  const log = createLogger({ level: values.watch ? config.logLevel : 'warn', pretty: config.logPretty, secrets: [...configSecrets(config), from] });
  base = { ...base, log };

  if (values.compare) {
    const days = positiveNumber(values.days, '--days', 7, 366);
    const since = values.since === undefined ? new Date() : new Date(values.since);
    if (Number.isNaN(since.getTime()) || (values.since !== undefined && !/(Z|[+-]\d\d:?\d\d)$/.test(values.since))) {
      throw new UserInputError(`--since '${values.since}' must be an ISO 8601 time with a zone, e.g. 2026-03-28T00:00:00Z`);
    }
    const tzAware = values['beat-tz-aware'] === undefined ? true : /^(true|1|yes)$/i.test(values['beat-tz-aware']) ? true : /^(false|0|no)$/i.test(values['beat-tz-aware']) ? false : null;
    if (tzAware === null) throw new UserInputError(`--beat-tz-aware must be true or false, got '${values['beat-tz-aware']}'`);
    const celeryTimezone = values['celery-timezone'] ?? 'UTC';
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: celeryTimezone });
    } catch {
      throw new UserInputError(`--celery-timezone '${celeryTimezone}' is not an IANA timezone (the CELERY_TIMEZONE of the Django project, e.g. Europe/Berlin)`);
    }
    const snapshot = await readBeatDatabase(from);
    await withPool(base, async (pool) => {
      const until = new Date(since.getTime() + days * 86_400_000);
      const rows = await compareCeleryBeat(pool, snapshot.tasks, mapping, { from: since, until }, { celeryTimezone, tzAware });
      if (values.json) return printJson({ from: since.toISOString(), until: until.toISOString(), tasks: rows });
      io().stdout.write(`fires from ${since.toISOString()} to ${until.toISOString()}\n`);
      printTable(rows.map((r) => ({ ...r, differences: r.differences.length, note: r.note ?? '' })), ['task', 'flow', 'beatFires', 'flowwardenFires', 'matching', 'differences', 'note']);
      for (const r of rows) {
        for (const d of r.differences) io().stdout.write(`  ${r.task}: ${d.at} ${d.side}: ${d.reason}\n`);
      }
    });
    return;
  }

  // Read Django first: a wrong --from fails before flowwarden's database is opened.
  const first = values.watch ? null : await readBeatDatabase(from);
  await withPool(base, async (pool, c) => {
    const boss = values['dry-run'] ? null : await startBoss({ connectionString: c.db.url, role: 'producer' });
    try {
      if (first) {
        const snapshot = first;
        printResult(await importCeleryBeat(pool, snapshot.tasks, mapping, { dryRun: values['dry-run'], boss, maxParametersBytes: config.maxParametersBytes }), values.json);
        return;
      }
      const interval = positiveNumber(values.interval, '--interval', 30, 86_400);
      const sync = new CeleryBeatSync({ pool, boss, mapping, read: () => readBeatDatabase(from), intervalSeconds: interval, log, onPass: (r) => printResult(r, values.json) });
      const stop = new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      sync.start();
      await stop;
      await sync.stop();
    } finally {
      await boss?.stop({ graceful: false });
    }
  });
}
