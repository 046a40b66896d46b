/**
 * Reading django-celery-beat's tables (2.x schema: django_celery_beat_periodictask and its four
 * schedule tables) from the Django database. Read-only: flowwarden never writes to Django's tables.
 */
import pg from 'pg';
import { UserInputError } from '../errors.ts';

export interface BeatTask {
  id: number;
  name: string;
  task: string;
  args: string;
  kwargs: string;
  queue: string | null;
  expires: Date | null;
  expireSeconds: number | null;
  enabled: boolean;
  oneOff: boolean;
  startTime: Date | null;
  lastRunAt: Date | null;
  totalRunCount: number;
  description: string;
  crontab: { minute: string; hour: string; day_of_week: string; day_of_month: string; month_of_year: string; timezone: string } | null;
  interval: { every: number; period: string } | null;
  solar: { event: string; latitude: string; longitude: string } | null;
  clocked: { clockedTime: Date } | null;
}

export interface BeatSnapshot {
  tasks: BeatTask[];
  /** django_celery_beat_periodictasks.last_update: bumped by Django on every PeriodicTask save/delete. */
  lastUpdate: Date | null;
}

const TASKS_SQL = `
  select t.id, t.name, t.task, t.args, t.kwargs, t.queue, t.expires, t.expire_seconds as "expireSeconds",
         t.enabled, t.one_off as "oneOff", t.start_time as "startTime", t.last_run_at as "lastRunAt",
         t.total_run_count as "totalRunCount", t.description,
         case when c.id is null then null else json_build_object('minute', c.minute, 'hour', c.hour,
           'day_of_week', c.day_of_week, 'day_of_month', c.day_of_month, 'month_of_year', c.month_of_year,
           'timezone', c.timezone) end as crontab,
         case when i.id is null then null else json_build_object('every', i.every, 'period', i.period) end as interval,
         case when s.id is null then null else json_build_object('event', s.event, 'latitude', s.latitude::text,
           'longitude', s.longitude::text) end as solar,
         k.clocked_time as "clockedTime"
    from django_celery_beat_periodictask t
    left join django_celery_beat_crontabschedule c on c.id = t.crontab_id
    left join django_celery_beat_intervalschedule i on i.id = t.interval_id
    left join django_celery_beat_solarschedule s on s.id = t.solar_id
    left join django_celery_beat_clockedschedule k on k.id = t.clocked_id
   order by t.name`;

type TaskRow = Omit<BeatTask, 'clocked'> & { clockedTime: Date | null };

export async function readBeatTasks(db: pg.ClientBase | pg.Pool): Promise<BeatSnapshot> {
  let rows: TaskRow[];
  try {
    rows = (await db.query<TaskRow>(TASKS_SQL)).rows;
  } catch (err) {
    if ((err as { code?: string }).code === '42P01' || (err as { code?: string }).code === '42703') {
      throw new UserInputError(
        `the database given with --from has no django-celery-beat 2.x tables (${(err as Error).message}): point --from at the Django database Beat uses, ` +
          `and run \`python manage.py migrate django_celery_beat\` there if it is older than 2.0`,
      );
    }
    throw err;
  }
  const last = await db.query<{ last_update: Date }>(`select last_update from django_celery_beat_periodictasks where ident = 1`);
  return {
    tasks: rows.map(({ clockedTime, ...t }) => ({ ...t, clocked: clockedTime ? { clockedTime } : null })),
    lastUpdate: last.rows[0]?.last_update ?? null,
  };
}

/** Open the Django database, read, close. `url` is a postgres:// URL (never printed: it may hold a password). */
export async function readBeatDatabase(url: string): Promise<BeatSnapshot> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: 'flowwarden-celery-beat' });
  try {
    await client.connect();
  } catch (err) {
    let where = 'the --from database';
    try {
      const u = new URL(url);
      where = `${u.hostname}:${u.port || '5432'}${u.pathname}`;
    } catch {
      // not a URL: keep the generic name
    }
    throw new UserInputError(`cannot connect to the Django database at ${where} (${(err as Error).message}): check --from (a postgres:// URL)`);
  }
  try {
    return await readBeatTasks(client);
  } finally {
    await client.end();
  }
}
