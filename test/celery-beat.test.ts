/**
 * Celery Beat import on real Postgres: django_celery_beat's own tables (the schema Django's
 * migrations create, test/fixtures/django-celery-beat-2.4.sql) with rows shaped as the Django ORM
 * writes them. test/system/celery-beat.test.ts does the same through the real Django and Celery.
 */
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { runCli } from './support/cli.ts';
import { startBoss } from '../src/queue/boss.ts';
import { readBeatTasks } from '../src/celery-beat/source.ts';
import { importCeleryBeat } from '../src/celery-beat/import.ts';
import { parseMapping } from '../src/celery-beat/mapping.ts';
import { crontabToCron, expandCeleryField } from '../src/celery-beat/crontab.ts';
import { beatFireTimes, compareCeleryBeat } from '../src/celery-beat/compare.ts';
import { defaultRegistry, runFunctionTarget } from '../src/targets/function.ts';
import { createLogger } from '../src/log.ts';
import { CeleryBeatSync } from '../src/celery-beat/watch.ts';
import { startTestApp, waitFor } from './support/app.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { disableFlowTx, reactivateFlowTx } from '../src/guard/operations.ts';

let db: TestDatabase;
let pool: pg.Pool;
let boss: PgBoss;
let dir: string;

before(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 3 });
  await pool.query(fs.readFileSync(path.join(import.meta.dirname, 'fixtures/django-celery-beat-2.4.sql'), 'utf8'));
  boss = await startBoss({ connectionString: db.url, role: 'producer' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-beat-'));
});
after(async () => {
  await boss.stop({ graceful: false });
  await pool.end();
  await db.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

// Rows as the Django ORM writes them: every NOT NULL column given (Django sets no DB defaults),
// args/kwargs/headers as JSON text, and the PeriodicTasks change marker bumped on each save.
async function crontab(c: { minute?: string; hour?: string; dow?: string; dom?: string; moy?: string; tz?: string }): Promise<number> {
  const { rows } = await pool.query<{ id: number }>(
    `insert into django_celery_beat_crontabschedule (minute, hour, day_of_week, day_of_month, month_of_year, timezone) values ($1,$2,$3,$4,$5,$6) returning id`,
    [c.minute ?? '*', c.hour ?? '*', c.dow ?? '*', c.dom ?? '*', c.moy ?? '*', c.tz ?? 'UTC'],
  );
  return rows[0]!.id;
}
async function interval(every: number, period: string): Promise<number> {
  return (await pool.query<{ id: number }>(`insert into django_celery_beat_intervalschedule (every, period) values ($1,$2) returning id`, [every, period])).rows[0]!.id;
}
async function clocked(at: string): Promise<number> {
  return (await pool.query<{ id: number }>(`insert into django_celery_beat_clockedschedule (clocked_time) values ($1) returning id`, [at])).rows[0]!.id;
}
async function solar(): Promise<number> {
  return (await pool.query<{ id: number }>(`insert into django_celery_beat_solarschedule (event, latitude, longitude) values ('sunrise', 52.52, 13.405) returning id`)).rows[0]!.id;
}
type Task = { name: string; task: string; crontab?: number; interval?: number; clocked?: number; solar?: number; args?: string; kwargs?: string; enabled?: boolean; oneOff?: boolean; start?: string; expires?: string; queue?: string; description?: string; lastRunAt?: string; expireSeconds?: number };
async function periodicTask(t: Task): Promise<void> {
  await pool.query(
    `insert into django_celery_beat_periodictask (name, task, args, kwargs, queue, exchange, routing_key, expires, enabled, last_run_at,
       total_run_count, date_changed, description, crontab_id, interval_id, solar_id, one_off, start_time, priority, headers, clocked_id, expire_seconds)
     values ($1,$2,$3,$4,$5,null,null,$6,$7,$8,0,now(),$9,$10,$11,$12,$13,$14,null,'{}',$15,$16)`,
    [t.name, t.task, t.args ?? '[]', t.kwargs ?? '{}', t.queue ?? null, t.expires ?? null, t.enabled ?? true, t.lastRunAt ?? null, t.description ?? '',
      t.crontab ?? null, t.interval ?? null, t.solar ?? null, t.oneOff ?? false, t.start ?? null, t.clocked ?? null, t.expireSeconds ?? null],
  );
  await pool.query(`insert into django_celery_beat_periodictasks (ident, last_update) values (1, now()) on conflict (ident) do update set last_update = now()`);
}

const mapping = parseMapping({
  flowPrefix: 'beat-',
  tasks: { 'proj.tasks.http': { type: 'http', url: 'https://jobs.internal/run' }, 'proj.reports.*': { type: 'prefect', deployment: 'reports/nightly' } },
  default: { type: 'shadow' },
});
const NOW = new Date('2026-06-01T12:00:00Z');
const read = async () => (await readBeatTasks(pool)).tasks;
const byTask = (r: Awaited<ReturnType<typeof importCeleryBeat>>) => Object.fromEntries(r.items.map((i) => [i.task, i]));

async function schedule(flow: string) {
  const { rows } = await pool.query(
    `select s.kind, s.cron, s.interval_seconds, s.timezone, s.parameters, s.enabled, s.note, s.anchor, f.target, f.late_after_seconds
       from flowwarden.flows f left join flowwarden.schedules s on s.flow_id = f.id and s.name = 'beat' where f.name = $1`,
    [flow],
  );
  return rows[0];
}

describe('celery-beat import', () => {
  test('every Beat schedule kind becomes a flow, a schedule or one run; the inexpressible are reported per task', async () => {
    await periodicTask({ name: 'nightly report', task: 'proj.reports.nightly', crontab: await crontab({ minute: '30', hour: '2', tz: 'Europe/Berlin' }), kwargs: '{"fmt": "pdf"}', args: '[1, "a"]', queue: 'reports', description: 'the nightly PDF' });
    await periodicTask({ name: 'weekdays', task: 'proj.tasks.http', crontab: await crontab({ minute: '0', hour: '9', dow: 'mon-fri', tz: 'America/New_York' }) });
    await periodicTask({ name: 'first-monday', task: 'proj.tasks.other', crontab: await crontab({ minute: '0', hour: '6', dow: '1', dom: '1-7' }) });
    await periodicTask({ name: 'odd-days-on-sundays', task: 'proj.tasks.other', crontab: await crontab({ minute: '0', hour: '6', dow: 'sun', dom: '1-31/2' }) });
    await periodicTask({ name: 'every-5m', task: 'proj.tasks.other', interval: await interval(5, 'minutes'), lastRunAt: '2026-06-01T11:58:00Z', expireSeconds: 120 });
    await periodicTask({ name: 'micro', task: 'proj.tasks.other', interval: await interval(500, 'microseconds') });
    await periodicTask({ name: 'paused', task: 'proj.tasks.other', crontab: await crontab({ minute: '*/10' }), enabled: false });
    await periodicTask({ name: 'later', task: 'proj.tasks.other', crontab: await crontab({ minute: '0' }), start: '2026-07-01T00:00:00Z' });
    await periodicTask({ name: 'gone', task: 'proj.tasks.other', crontab: await crontab({ minute: '0' }), expires: '2026-05-01T00:00:00Z' });
    await periodicTask({ name: 'launch', task: 'proj.tasks.other', clocked: await clocked('2026-06-02T08:00:00Z'), oneOff: true, kwargs: '{"x": 1}' });
    await periodicTask({ name: 'once-at-noon', task: 'proj.tasks.other', crontab: await crontab({ minute: '0', hour: '13' }), oneOff: true });
    await periodicTask({ name: 'sunrise', task: 'proj.tasks.other', solar: await solar() });
    await periodicTask({ name: 'bad-args', task: 'proj.tasks.other', crontab: await crontab({}), args: '[1,' });

    const dry = await importCeleryBeat(pool, await read(), mapping, { now: NOW, boss, dryRun: true });
    assert.equal(dry.counts.created, 9);
    assert.equal((await pool.query(`select count(*)::int as n from flowwarden.flows`)).rows[0].n, 0, 'a dry run writes nothing');

    const r = await importCeleryBeat(pool, await read(), mapping, { now: NOW, boss });
    const items = byTask(r);
    assert.deepEqual(r.counts, { created: 9, updated: 0, unchanged: 0, removed: 0, skipped: 0, unsupported: 4, conflict: 0 });
    assert.match(items['odd-days-on-sundays']!.detail, /day_of_month .* and day_of_week .*both/);
    assert.match(items['micro']!.detail, /not a whole number of seconds/);
    assert.match(items['sunrise']!.detail, /solar schedule .* not supported/);
    assert.match(items['bad-args']!.detail, /args is not valid JSON/);

    const nightly = await schedule('beat-nightly-report-' + items['nightly report']!.flow.split('-').at(-1));
    assert.equal(items['nightly report']!.flow.startsWith('beat-nightly-report-'), true, 'a name with a space gets a safe name plus a hash');
    assert.equal(nightly.cron, '30 2 * * *');
    assert.equal(nightly.timezone, 'Europe/Berlin');
    assert.deepEqual(nightly.parameters, { fmt: 'pdf', args: [1, 'a'] });
    assert.deepEqual(nightly.target, { type: 'prefect', deployment: 'reports/nightly' });
    assert.equal((await schedule('beat-weekdays')).cron, '0 9 * * 1-5');
    assert.equal((await schedule('beat-weekdays')).target.url, 'https://jobs.internal/run');
    assert.equal((await schedule('beat-first-monday')).cron, '0 6 * * 1#1');
    assert.deepEqual((await schedule('beat-first-monday')).target, { type: 'function', handler: 'shadow' });
    const every = await schedule('beat-every-5m');
    assert.equal(every.interval_seconds, 300);
    assert.equal(every.anchor.toISOString(), '2026-06-01T11:58:00.000Z', 'an interval continues from Beat\'s last run');
    assert.equal(every.late_after_seconds, 120);
    assert.equal((await schedule('beat-paused')).enabled, false);
    assert.match((await schedule('beat-later')).note, /starts at 2026-07-01/);
    assert.equal((await schedule('beat-later')).enabled, false);
    assert.match((await schedule('beat-gone')).note, /expired/);

    const oneRuns = await pool.query(`select f.name, r.scheduled_for, r.parameters from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id order by f.name`);
    assert.deepEqual(oneRuns.rows.map((x) => [x.name, x.scheduled_for.toISOString()]), [
      ['beat-launch', '2026-06-02T08:00:00.000Z'],
      ['beat-once-at-noon', '2026-06-01T13:00:00.000Z'],
    ]);
    assert.equal((await schedule('beat-launch')).kind, null, 'a clocked task has no schedule, only its run');

    const again = await importCeleryBeat(pool, await read(), mapping, { now: NOW, boss });
    assert.deepEqual(again.counts, { created: 0, updated: 0, unchanged: 9, removed: 0, skipped: 0, unsupported: 4, conflict: 0 });
    assert.equal((await pool.query(`select count(*)::int as n from flowwarden.runs`)).rows[0].n, 2, 're-running creates no second one-off run');
  });

  test('a sync follows Django: changed, disabled, deleted and started tasks; Django wins over a local edit', async () => {
    await pool.query(`update django_celery_beat_crontabschedule set hour = '3' where id = (select crontab_id from django_celery_beat_periodictask where name = 'weekdays')`);
    await pool.query(`update django_celery_beat_periodictask set enabled = false, last_run_at = null where name = 'every-5m'`);
    await pool.query(`delete from django_celery_beat_periodictask where name = 'paused'`);
    await pool.query(`update django_celery_beat_periodictask set kwargs = '{"x": 2}' where name = 'launch'`);
    await pool.query(`update flowwarden.flows set target = '{"type":"function","handler":"noop"}' where name = 'beat-first-monday'`);
    const later = new Date('2026-07-01T00:30:00Z');
    const r = byTask(await importCeleryBeat(pool, await read(), mapping, { now: later, boss }));
    assert.equal(r['weekdays']!.action, 'updated');
    assert.equal((await schedule('beat-weekdays')).cron, '0 3 * * 1-5');
    assert.equal(r['every-5m']!.action, 'updated');
    assert.equal((await schedule('beat-every-5m')).enabled, false);
    assert.equal((await schedule('beat-every-5m')).anchor.toISOString(), '2026-06-01T11:58:00.000Z', 'Beat moving last_run_at does not move the anchor');
    assert.equal(r['paused']!.action, 'removed');
    assert.equal(r['later']!.action, 'updated', 'start_time passed: enabled');
    assert.equal((await schedule('beat-later')).enabled, true);
    assert.equal(r['first-monday']!.action, 'updated');
    assert.match(r['first-monday']!.detail, /changed in flowwarden since the last import: overwritten/);
    assert.deepEqual((await schedule('beat-first-monday')).target, { type: 'function', handler: 'shadow' });
    assert.equal(r['launch']!.action, 'updated');
    const launch = await pool.query(`select r.state_name, r.parameters from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where f.name = 'beat-launch' order by r.created_at`);
    assert.deepEqual(launch.rows.map((x) => [x.state_name, x.parameters]), [['Skipped', { x: 1 }], ['Scheduled', { x: 2 }]]);
    const quiet = await importCeleryBeat(pool, await read(), mapping, { now: later, boss });
    assert.equal(quiet.counts.created + quiet.counts.updated + quiet.counts.removed, 0, 'a second pass finds nothing to do');
  });

  test("the guard's hold survives a sync: a held flow stays off and is not reported as a local edit", async () => {
    await withTransaction(pool, (tx) => disableFlowTx(boss, tx, 'beat-weekdays', { reason: 'three failures', by: 'test' }));
    const later = new Date('2026-07-01T00:30:00Z');
    const r = byTask(await importCeleryBeat(pool, await read(), mapping, { now: later, boss }));
    assert.equal(r['weekdays']!.action, 'unchanged');
    assert.equal((await schedule('beat-weekdays')).enabled, false);
    await pool.query(`update django_celery_beat_crontabschedule set minute = '15' where id = (select crontab_id from django_celery_beat_periodictask where name = 'weekdays')`);
    const changed = byTask(await importCeleryBeat(pool, await read(), mapping, { now: later, boss }));
    assert.equal(changed['weekdays']!.action, 'updated');
    assert.doesNotMatch(changed['weekdays']!.detail, /overwritten/);
    const s = await schedule('beat-weekdays');
    assert.deepEqual([s.cron, s.enabled], ['15 3 * * 1-5', false], 'the new time is written, the hold keeps it off');
    await withTransaction(pool, (tx) => reactivateFlowTx(boss, tx, 'beat-weekdays', { by: 'test' }));
  });

  test('sync mode: the loop runs a pass at start; a task added in Django appears on the next pass', async () => {
    const passes: Array<Awaited<ReturnType<typeof importCeleryBeat>>> = [];
    let firstPass!: () => void;
    const ran = new Promise<void>((resolve) => (firstPass = resolve));
    const sync = new CeleryBeatSync({
      pool, boss, mapping, read: () => readBeatTasks(pool), intervalSeconds: 3600, log: createLogger({ level: 'silent' }),
      onPass: (r) => { passes.push(r); firstPass(); },
    });
    sync.start();
    await ran;
    await sync.stop();
    assert.equal(passes.length, 1);
    await periodicTask({ name: 'added-later', task: 'proj.tasks.other', interval: await interval(1, 'hours') });
    const r = await sync.runOnce();
    assert.deepEqual(r.items.filter((i) => i.action !== 'unchanged' && i.action !== 'unsupported').map((i) => [i.task, i.action]), [['added-later', 'created']]);
    assert.equal((await schedule('beat-added-later')).interval_seconds, 3600);
  });

  test('a flow of the same name that was not imported is left alone and reported', async () => {
    await pool.query(`insert into flowwarden.flows (name, target) values ('own-hourly', '{"type":"function","handler":"noop"}')`);
    await periodicTask({ name: 'hourly', task: 'x.y', crontab: await crontab({ minute: '0' }) });
    const r = byTask(await importCeleryBeat(pool, await read(), parseMapping({ flowPrefix: 'own-', default: { type: 'shadow' } }), { now: NOW, boss }));
    assert.equal(r['hourly']!.action, 'conflict');
    assert.deepEqual((await schedule('own-hourly')).target, { type: 'function', handler: 'noop' });
  });
});

describe('celery-beat crontab semantics', () => {
  test("Celery's field syntax: weekday names, Sunday = 0, wrapping ranges, steps; 7 is an error", () => {
    assert.deepEqual(expandCeleryField('mon-fri', 7, 0, 'day_of_week'), [1, 2, 3, 4, 5]);
    assert.deepEqual(expandCeleryField('sunday,sat', 7, 0, 'day_of_week'), [0, 6]);
    assert.deepEqual(expandCeleryField('fri-mon', 7, 0, 'day_of_week'), [0, 1, 5, 6]);
    assert.deepEqual(expandCeleryField('*/15', 60, 0, 'minute'), [0, 15, 30, 45]);
    assert.deepEqual(expandCeleryField('1-10/3', 31, 1, 'day_of_month'), [1, 4, 7, 10]);
    assert.throws(() => expandCeleryField('7', 7, 0, 'day_of_week'), /day_of_week: 7 is above 6/);
    assert.deepEqual(crontabToCron({ minute: '0,1,2,3', hour: '*', day_of_week: '*', day_of_month: '*', month_of_year: '1-12' }), { cron: '0-3 * * * *' });
    assert.deepEqual(crontabToCron({ minute: '0', hour: '8', day_of_week: 'tue', day_of_month: '15-21', month_of_year: '*' }), { cron: '0 8 * * 2#3' });
  });

  test("Beat's crontab fires, computed the way Celery does, skip the repeated hour after a fall-back; compare names DST as the reason", async () => {
    const t = (await read()).find((x) => x.name === 'weekdays')!;
    const hourly = { ...t, name: 'hourly-berlin', crontab: { minute: '0', hour: '*', day_of_week: '*', day_of_month: '*', month_of_year: '*', timezone: 'Europe/Berlin' }, lastRunAt: null, enabled: true, startTime: null, expires: null };
    const fires = beatFireTimes(hourly, new Date('2026-10-24T22:30:00Z'), new Date('2026-10-25T03:30:00Z'), { celeryTimezone: 'UTC', tzAware: true });
    // Europe/Berlin falls back 03:00 CEST -> 02:00 CET at 01:00Z: Beat has no fire at 01:00Z (02:00 CET again).
    assert.deepEqual(fires.map((d) => d.toISOString()), ['2026-10-24T23:00:00.000Z', '2026-10-25T00:00:00.000Z', '2026-10-25T02:00:00.000Z', '2026-10-25T03:00:00.000Z']);
    const spring = { ...hourly, crontab: { ...hourly.crontab, minute: '30', hour: '2' } };
    assert.deepEqual(beatFireTimes(spring, new Date('2026-03-28T12:00:00Z'), new Date('2026-03-29T12:00:00Z'), { celeryTimezone: 'UTC', tzAware: true }).map((d) => d.toISOString()), ['2026-03-29T01:00:00.000Z'], '02:30 in the gap fires when the clock jumps to 03:00');

    await periodicTask({ name: 'hourly-berlin', task: 'x.y', crontab: await crontab({ minute: '0', tz: 'Europe/Berlin' }) });
    await importCeleryBeat(pool, await read(), mapping, { now: NOW, boss });
    const rows = await compareCeleryBeat(pool, (await read()).filter((x) => x.name === 'hourly-berlin'), mapping, { from: new Date('2026-10-24T22:30:00Z'), until: new Date('2026-10-25T03:30:00Z') }, { celeryTimezone: 'UTC', tzAware: true });
    assert.equal(rows[0]!.matching, 4);
    assert.deepEqual(rows[0]!.differences.map((d) => [d.at, d.side]), [['2026-10-25T01:00:00.000Z', 'flowwarden-only']]);
    assert.match(rows[0]!.differences[0]!.reason, /DST change in Europe\/Berlin.*repeated hour/);
    const naive = await compareCeleryBeat(pool, (await read()).filter((x) => x.name === 'hourly-berlin'), mapping, { from: new Date('2026-06-01T00:00:00Z'), until: new Date('2026-06-01T03:00:00Z') }, { celeryTimezone: 'Asia/Kolkata', tzAware: false });
    assert.match(naive[0]!.differences[0]!.reason, /DJANGO_CELERY_BEAT_TZ_AWARE=False/);
  });

  test('an imported flow in shadow mode runs in a pod: the run completes with the shadow record and nothing else', async () => {
    const app = await startTestApp({ db, start: true });
    try {
      const { runId } = await withTransaction(pool, (tx) => triggerRunTx(boss, tx, 'beat-first-monday', { from: 'test' }));
      const run = await waitFor(async () => {
        const { rows } = await pool.query(`select state_type, state_message from flowwarden.runs where id = $1`, [runId]);
        return rows[0]?.state_type === 'COMPLETED' ? rows[0] : null;
      }, { timeoutMs: 60_000, what: 'the shadow run to complete' });
      assert.match(run.state_message, /^shadow: fire of beat-first-monday at .* recorded, nothing dispatched$/);
    } finally {
      await app.stop({ timeoutMs: 1000 });
    }
  });

  test('the shadow handler records the fire and dispatches nothing', async () => {
    const out = await runFunctionTarget(defaultRegistry, 'shadow', { runId: 'r', flow: 'beat-x', scheduledFor: new Date('2026-06-01T00:00:00Z'), parameters: {}, attempt: 0, signal: new AbortController().signal, log: createLogger({ level: 'silent' }) });
    assert.deepEqual(out, { kind: 'completed', message: 'shadow: fire of beat-x at 2026-06-01T00:00:00.000Z recorded, nothing dispatched', tasks: undefined });
  });
});

describe('flowwarden import celery-beat (CLI)', () => {
  test('--dry-run prints the plan and writes nothing; bad input is a clear error', async () => {
    const mapFile = path.join(dir, 'map.yaml');
    fs.writeFileSync(mapFile, 'flowPrefix: cli-\ndefault: { type: shadow }\n');
    const before = (await pool.query(`select count(*)::int as n from flowwarden.flows`)).rows[0].n;
    const r = await runCli(['import', 'celery-beat', '--from', db.url, '--mapping', mapFile, '--dry-run'], { DATABASE_URL: db.url });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /cli-weekdays\s+created/);
    assert.match(r.stdout, /dry run, nothing written: would be \d+ created/);
    assert.equal((await pool.query(`select count(*)::int as n from flowwarden.flows`)).rows[0].n, before);

    fs.writeFileSync(mapFile, 'tasks:\n  a.b: { type: carrier-pigeon }\n');
    const bad = await runCli(['import', 'celery-beat', '--from', db.url, '--mapping', mapFile], { DATABASE_URL: db.url });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid .*map\.yaml/);
    const noFrom = await runCli(['import', 'celery-beat'], { DATABASE_URL: db.url });
    assert.match(noFrom.stderr, /needs --from URL/);
    const notUrl = await runCli(['import', 'celery-beat', '--from', 'django-db'], { DATABASE_URL: db.url });
    assert.equal(notUrl.code, 1);
    assert.match(notUrl.stderr, /--from must be a postgres:\/\/ \(or postgresql:\/\/\) URL/);
  });
});
