/**
 * Celery Beat import against the real thing: Debian's python3-django-celery-beat (2.4), Django and
 * Celery. One Django setup for the whole file: Django's own migrations create the django_celery_beat
 * schema once, one ORM call creates every task, one Celery call computes every expected fire.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { runCli } from '../support/cli.ts';
import { requireProgram } from './requires.ts';
import { startBoss } from '../../src/queue/boss.ts';
import { readBeatTasks } from '../../src/celery-beat/source.ts';
import { importCeleryBeat } from '../../src/celery-beat/import.ts';
import { parseMapping } from '../../src/celery-beat/mapping.ts';
import { beatFireTimes, compareCeleryBeat } from '../../src/celery-beat/compare.ts';

const PYTHON = '/usr/bin/python3';
const HELPER_DIR = path.join(import.meta.dirname, '..', 'celery-beat');

let db: TestDatabase;
let pool: pg.Pool;
let boss: PgBoss;

function python(args: string[], input?: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, args, {
      cwd: HELPER_DIR,
      env: { PATH: process.env.PATH ?? '', PYTHONPATH: HELPER_DIR, DJANGO_SETTINGS_MODULE: 'settings', FW_DJANGO_DB_URL: db.url },
      maxBuffer: 64 * 1024 * 1024,
    }, (err, stdout, stderr) => (err ? reject(new Error(`${args.join(' ')} failed: ${stderr || err.message}`)) : resolve(stdout)));
    if (input !== undefined) child.stdin!.end(JSON.stringify(input));
  });
}

function requirePythonModule(module: string, debianPackage: string): Promise<void> {
  return python(['-c', `import ${module}`]).then(
    () => undefined,
    () => {
      throw new Error(`${PYTHON} cannot import ${module}: this system test needs Debian's ${debianPackage}. Install it with: apt-get install -y ${debianPackage} (.ci/run does this)`);
    },
  );
}

const CRONS = [
  { minute: '0', hour: '*', timezone: 'Europe/Berlin' },
  { minute: '*/15', hour: '*', timezone: 'Europe/Berlin' },
  { minute: '30', hour: '2', timezone: 'Europe/Berlin' },
  { minute: '0', hour: '1-3', timezone: 'America/New_York' },
  { minute: '45', hour: '1', day_of_week: 'sun', timezone: 'America/New_York' },
  { minute: '0', hour: '9', day_of_week: 'mon-fri', timezone: 'Australia/Sydney' },
  { minute: '0', hour: '6', day_of_week: '1', day_of_month: '1-7', timezone: 'UTC' },
  { minute: '5', hour: '*/6', day_of_month: '1-10/3', month_of_year: '3,4,10,11', timezone: 'Europe/London' },
];
// Windows over each zone's DST changes of 2026 (spring forward and fall back).
const WINDOWS = [
  { from: '2026-03-28T00:00:00Z', until: '2026-03-30T00:00:00Z' }, // Europe: 29 March
  { from: '2026-10-24T00:00:00Z', until: '2026-10-26T00:00:00Z' }, // Europe: 25 October
  { from: '2026-03-07T12:00:00Z', until: '2026-03-09T12:00:00Z' }, // US: 8 March
  { from: '2026-10-31T12:00:00Z', until: '2026-11-02T12:00:00Z' }, // US: 1 November
  { from: '2026-04-04T00:00:00Z', until: '2026-04-06T00:00:00Z' }, // Sydney: 5 April
];

before(async () => {
  requireProgram(PYTHON, 'python3');
  db = await createTestDatabase();
  await requirePythonModule('django_celery_beat', 'python3-django-celery-beat');
  await requirePythonModule('psycopg2', 'python3-psycopg2');
  await python(['-m', 'django', 'migrate', '-v0']);
  pool = new pg.Pool({ connectionString: db.url, max: 3 });
  boss = await startBoss({ connectionString: db.url, role: 'producer' });
  await python(['beat_helper.py', 'create'], [
    { name: 'nightly', task: 'proj.tasks.nightly', crontab: { minute: '30', hour: '2', timezone: 'Europe/Berlin' }, kwargs: { region: 'eu' }, args: [7], queue: 'reports', description: 'nightly export' },
    { name: 'weekdays-ny', task: 'proj.tasks.http', crontab: { minute: '0', hour: '9', day_of_week: 'mon-fri', timezone: 'America/New_York' } },
    { name: 'every-10s', task: 'proj.tasks.poll', interval: { every: 10, period: 'seconds' } },
    { name: 'every-2d', task: 'proj.tasks.poll', interval: { every: 2, period: 'days' } },
    { name: 'off', task: 'proj.tasks.poll', crontab: { minute: '0' }, enabled: false },
    { name: 'launch', task: 'proj.tasks.launch', clocked: '2030-01-01T08:00:00Z', one_off: true, kwargs: { rocket: 1 } },
    { name: 'once', task: 'proj.tasks.poll', crontab: { minute: '0', hour: '4' }, one_off: true },
    { name: 'expired', task: 'proj.tasks.poll', crontab: { minute: '0' }, expires: '2020-01-01T00:00:00Z' },
    { name: 'future', task: 'proj.tasks.poll', crontab: { minute: '0' }, start_time: '2099-01-01T00:00:00Z' },
    { name: 'sunrise', task: 'proj.tasks.poll', solar: 'sunrise' },
    ...CRONS.map((c, i) => ({ name: `dst-${i}`, task: 'proj.tasks.dst', crontab: c })),
  ]);
});
after(async () => {
  await boss?.stop({ graceful: false });
  await pool?.end();
  await db?.drop();
});

const mapping = parseMapping({ flowPrefix: 'beat-', tasks: { 'proj.tasks.http': { type: 'http', url: 'https://jobs.internal/run' } }, default: { type: 'shadow' } });

test('tasks created through the Django ORM import as flows; re-running is idempotent; solar is reported', async () => {
  const { tasks } = await readBeatTasks(pool);
  assert.equal(tasks.length, 10 + CRONS.length);
  const r = await importCeleryBeat(pool, tasks, mapping, { boss });
  const items = Object.fromEntries(r.items.map((i) => [i.task, i]));
  assert.equal(r.counts.created, 10 + CRONS.length - 1, JSON.stringify(r.items.filter((i) => i.action !== 'created')));
  assert.equal(items['sunrise']!.action, 'unsupported');
  assert.equal(items['dst-6']!.action, 'created', "Celery's 'first Monday' (day_of_month 1-7 AND day_of_week 1)");
  const rows = (await pool.query(
    `select f.name, s.cron, s.interval_seconds, s.timezone, s.enabled, s.parameters from flowwarden.flows f
       left join flowwarden.schedules s on s.flow_id = f.id and s.name = 'beat' order by f.name`,
  )).rows;
  const by = Object.fromEntries(rows.map((x) => [x.name, x]));
  assert.deepEqual([by['beat-nightly'].cron, by['beat-nightly'].timezone, by['beat-nightly'].parameters], ['30 2 * * *', 'Europe/Berlin', { region: 'eu', args: [7] }]);
  assert.equal(by['beat-weekdays-ny'].cron, '0 9 * * 1-5');
  assert.equal(by['beat-every-10s'].interval_seconds, 10);
  assert.equal(by['beat-every-2d'].interval_seconds, 172800);
  assert.equal(by['beat-off'].enabled, false);
  assert.equal(by['beat-expired'].enabled, false);
  assert.equal(by['beat-future'].enabled, false);
  assert.equal(by['beat-dst-6'].cron, '0 6 * * 1#1');
  const runs = (await pool.query(`select f.name, r.scheduled_for, r.parameters from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id order by f.name`)).rows;
  assert.deepEqual(runs.map((x) => x.name), ['beat-launch', 'beat-once']);
  assert.equal(runs[0].scheduled_for.toISOString(), '2030-01-01T08:00:00.000Z');
  assert.deepEqual(runs[0].parameters, { rocket: 1 });

  const again = await importCeleryBeat(pool, (await readBeatTasks(pool)).tasks, mapping, { boss });
  assert.equal(again.counts.created + again.counts.updated + again.counts.removed, 0);
});

test("Beat's fire times as flowwarden computes them equal Celery's own is_due, across DST changes; compare explains every difference", async () => {
  const cases = CRONS.flatMap((c) => WINDOWS.map((w) => ({ crontab: c, ...w })));
  const celery = JSON.parse(await python(['beat_helper.py', 'fires'], cases)) as string[][];
  const { tasks } = await readBeatTasks(pool);
  let differences = 0;
  for (const [i, c] of cases.entries()) {
    const task = tasks.find((t) => t.name === `dst-${CRONS.indexOf(c.crontab)}`)!;
    const ours = beatFireTimes(task, new Date(c.from), new Date(c.until), { celeryTimezone: 'UTC', tzAware: true }).map((d) => d.toISOString());
    assert.deepEqual(ours, celery[i], `crontab ${JSON.stringify(c.crontab)} from ${c.from}`);
    const [cmp] = await compareCeleryBeat(pool, [task], mapping, { from: new Date(c.from), until: new Date(c.until) }, { celeryTimezone: 'UTC', tzAware: true });
    assert.equal(cmp!.beatFires, celery[i]!.length);
    for (const d of cmp!.differences) {
      differences++;
      assert.match(d.reason, /DST change/, `${JSON.stringify(c.crontab)} ${d.at} ${d.side}`);
    }
  }
  assert.ok(differences > 0, 'the fall-back hour differs for every-hour crons');
});

test('flowwarden import celery-beat --compare reports per task from the command line', async () => {
  const mapFile = path.join(os.tmpdir(), `fw-beat-map-${process.pid}.json`);
  fs.writeFileSync(mapFile, JSON.stringify({ flowPrefix: 'beat-', default: { type: 'shadow' } }));
  const r = await runCli(['import', 'celery-beat', '--from', db.url, '--mapping', mapFile, '--compare', '--since', '2026-10-24T00:00:00Z', '--days', '2', '--json'], { DATABASE_URL: db.url });
  fs.rmSync(mapFile);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { tasks: Array<{ task: string; flow: string; matching: number; differences: Array<{ at: string; side: string; reason: string }>; note?: string }> };
  const hourly = out.tasks.find((t) => t.task === 'dst-0')!;
  assert.equal(hourly.flow, 'beat-dst-0');
  assert.equal(hourly.matching, 47);
  assert.deepEqual(hourly.differences.map((d) => [d.at, d.side]), [['2026-10-25T01:00:00.000Z', 'flowwarden-only']]);
  assert.match(out.tasks.find((t) => t.task === 'sunrise')!.note!, /solar/);
});
