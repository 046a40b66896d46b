/**
 * Import django-celery-beat PeriodicTasks as flowwarden flows (docs/celery-beat.md): one task, one
 * flow with at most one schedule `beat` (clocked/one_off: one run). `translateTask` is pure;
 * `importCeleryBeat` diffs and writes in one transaction. Django wins on every sync; the guard's hold
 * always stays. Details: docs/internals.md, "Celery Beat import".
 */
import { createHash } from 'node:crypto';
import type { PgBoss } from 'pg-boss';
import type pg from 'pg';
import { withTransaction, dbNow, type Queryable } from '../db/client.ts';
import { getFlowByName, listSchedules, setScheduleEnabled, type FlowRow, type ScheduleRow } from '../queries/flows.ts';
import { triggerRunTx } from '../runs/operations.ts';
import { upsertFlowTx } from '../flows/operations.ts';
import { applyTransition } from '../runs/service.ts';
import { GUARD_NOTE_PREFIX } from '../queries/guard.ts';
import { nextFireAfter } from '../scheduling/fire-times.ts';
import { NAME_RE, type FlowInputRaw } from '../flows/spec.ts';
import type { TargetSpec } from '../targets/spec.ts';
import { crontabToCron } from './crontab.ts';
import { targetFor, type CeleryBeatMapping } from './mapping.ts';
import type { BeatTask } from './source.ts';
import type { ScheduleKind } from '../schema/enums.ts';

export const SCHEDULE_NAME = 'beat';

const PERIOD_SECONDS: Record<string, number> = { days: 86400, hours: 3600, minutes: 60, seconds: 1, microseconds: 1e-6 };

/** The parts of a flow the import owns, in a comparable form. */
export interface Definition {
  target: TargetSpec;
  description: string;
  lateAfterSeconds: number | null;
  schedule: null | { kind: ScheduleKind; cron: string | null; intervalSeconds: number | null; timezone: string; parameters: Record<string, unknown>; enabled: boolean; note: string | null };
  /** clocked / one_off: the one run (time and parameters). */
  oneOff: null | { at: string; parameters: Record<string, unknown> };
}

export type Translation =
  | { ok: true; flowName: string; definition: Definition; anchor: Date | null; notes: string[] }
  | { ok: false; flowName: string; reason: string };

export interface ImportItem {
  task: string;
  celeryTask: string;
  flow: string;
  action: 'created' | 'updated' | 'unchanged' | 'removed' | 'skipped' | 'unsupported' | 'conflict';
  detail: string;
}

export interface ImportResult {
  items: ImportItem[];
  counts: Record<ImportItem['action'], number>;
  dryRun: boolean;
}

export function flowNameFor(prefix: string, taskName: string): string {
  const safe = taskName.replace(/[^A-Za-z0-9_.:-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  const exact = `${prefix}${safe}`;
  if (safe === taskName && NAME_RE.test(exact)) return exact;
  // Lossy: a short hash of the real name keeps two different names apart.
  const hash = createHash('sha1').update(taskName).digest('hex').slice(0, 8);
  return `${prefix}${safe.slice(0, 110 - prefix.length)}-${hash}`.replace(/^-+/, 'task-');
}

function parseJson(text: string, what: string): { value?: unknown; error?: string } {
  try {
    return { value: JSON.parse(text || (what === 'args' ? '[]' : '{}')) };
  } catch (err) {
    return { error: `${what} is not valid JSON (${(err as Error).message}); Beat itself disables such a task` };
  }
}

/** The run parameters of a task: its kwargs, plus `args` (the positional arguments) when there are any. */
export function parametersFor(t: Pick<BeatTask, 'args' | 'kwargs'>): { parameters?: Record<string, unknown>; error?: string } {
  const a = parseJson(t.args, 'args');
  if (a.error) return { error: a.error };
  const k = parseJson(t.kwargs, 'kwargs');
  if (k.error) return { error: k.error };
  if (!Array.isArray(a.value)) return { error: `args must be a JSON list, got ${JSON.stringify(a.value)}` };
  if (!k.value || typeof k.value !== 'object' || Array.isArray(k.value)) return { error: `kwargs must be a JSON object, got ${JSON.stringify(k.value)}` };
  const kwargs = k.value as Record<string, unknown>;
  if (a.value.length === 0) return { parameters: kwargs };
  if ('args' in kwargs) return { error: `kwargs has a key 'args' and the task also has positional args: they would collide in the run parameters; rename the kwarg` };
  return { parameters: { ...kwargs, args: a.value } };
}

/** One PeriodicTask as a flowwarden definition, or the reason it cannot be one. Pure: `now` is passed. */
export function translateTask(t: BeatTask, mapping: CeleryBeatMapping, now: Date): Translation {
  const flowName = flowNameFor(mapping.flowPrefix, t.name);
  const fail = (reason: string): Translation => ({ ok: false, flowName, reason });
  const target = targetFor(mapping, t.task);
  if (!target) return fail(`no target for Celery task '${t.task}': add it under tasks: in the mapping file, or set default:`);
  const p = parametersFor(t);
  if (p.error) return fail(p.error);
  const parameters = p.parameters!;
  const notes: string[] = [];
  const description = [`Celery task ${t.task}${t.queue ? ` (queue ${t.queue})` : ''}, imported from django-celery-beat`, t.description].filter(Boolean).join(': ');
  let lateAfterSeconds: number | null = null;
  if (t.expireSeconds) {
    lateAfterSeconds = t.expireSeconds;
    notes.push(`expire_seconds ${t.expireSeconds}: Celery drops a message not started within that time; here the run is marked Late after ${t.expireSeconds} s instead`);
  }
  // Beat's window: nothing before start_time, nothing after expires (its messages expire at once).
  const notYet = t.startTime !== null && t.startTime > now;
  const expired = t.expires !== null && t.expires <= now;
  const enabled = t.enabled && !notYet && !expired;
  let note: string | null = null;
  if (!t.enabled) note = 'disabled in django-celery-beat';
  else if (notYet) note = `starts at ${t.startTime!.toISOString()} (Beat start_time): a sync at or after that time enables it`;
  else if (expired) note = `expired at ${t.expires!.toISOString()} (Beat expires)`;
  if (t.expires && !expired) notes.push(`expires ${t.expires.toISOString()}: the schedule is disabled by the first sync after that time`);

  let schedule: Definition['schedule'] = null;
  let anchor: Date | null = null;
  if (t.solar) return fail(`solar schedule (${t.solar.event} at ${t.solar.latitude}, ${t.solar.longitude}) is not supported: flowwarden schedules are cron or interval; replace it with a crontab near the event's time`);
  if (t.crontab) {
    const c = crontabToCron(t.crontab);
    if ('unsupported' in c) return fail(c.unsupported);
    schedule = { kind: 'cron', cron: c.cron, intervalSeconds: null, timezone: t.crontab.timezone || 'UTC', parameters, enabled, note };
  } else if (t.interval) {
    const seconds = t.interval.every * (PERIOD_SECONDS[t.interval.period] ?? Number.NaN);
    if (!Number.isInteger(seconds) || seconds < 1) {
      return fail(`interval every ${t.interval.every} ${t.interval.period} is not a whole number of seconds (flowwarden intervals are 1 s to 366 days)`);
    }
    schedule = { kind: 'interval', cron: null, intervalSeconds: seconds, timezone: 'UTC', parameters, enabled, note };
    // Beat counts from the last run; a new task from start_time (or now).
    anchor = t.lastRunAt ?? t.startTime ?? now;
  } else if (!t.clocked) {
    return fail('the task has no schedule (crontab, interval, solar or clocked)');
  }

  let oneOff: Definition['oneOff'] = null;
  if (t.clocked || t.oneOff) {
    // Beat runs a one-off task once and then disables it (total_run_count > 0 at its next check).
    let at: Date | null = null;
    if (t.clocked) {
      at = t.clocked.clockedTime;
      if (!t.oneOff) notes.push('clocked without one_off (Django refuses to save that): imported as one run anyway');
    } else if (schedule) {
      const after = t.startTime && t.startTime > now ? t.startTime : now;
      at = nextFireAfter(
        schedule.kind === 'cron' ? { kind: 'cron', cron: schedule.cron!, timezone: schedule.timezone } : { kind: 'interval', everySeconds: schedule.intervalSeconds!, anchor: anchor! },
        after,
      );
    }
    const ran = t.oneOff && t.totalRunCount > 0;
    if (t.enabled && !ran && !expired && at) oneOff = { at: at.toISOString(), parameters };
    else notes.push(ran ? 'one_off and Beat already ran it: nothing to run' : !t.enabled ? 'one-off task disabled in Django: nothing to run' : 'one-off task expired: nothing to run');
    schedule = null;
    anchor = null;
  }
  return { ok: true, flowName, definition: { target, description, lateAfterSeconds, schedule, oneOff }, anchor, notes };
}

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
const same = (a: unknown, b: unknown) => stable(a) === stable(b);

/** What flowwarden holds now for an imported flow, in the Definition shape. */
function currentDefinition(flow: FlowRow, beat: ScheduleRow | undefined, oneOff: Definition['oneOff']): Definition {
  return {
    target: flow.target,
    description: flow.description ?? '',
    lateAfterSeconds: flow.lateAfterSeconds,
    schedule: beat
      ? {
          kind: beat.kind, cron: beat.cron, intervalSeconds: beat.intervalSeconds, timezone: beat.timezone, parameters: beat.parameters as Record<string, unknown>,
          // The guard's hold is not a local edit: compare what the import asked for.
          enabled: flow.disabledAt ? (beat.note?.startsWith(GUARD_NOTE_PREFIX) ?? false) || beat.enabled : beat.enabled,
          note: flow.disabledAt && beat.note?.startsWith(GUARD_NOTE_PREFIX) ? null : beat.note,
        }
      : null,
    oneOff,
  };
}

interface LinkRow { taskName: string; flowId: string; imported: Definition; oneOffKey: string | null }

export interface ImportOptions {
  dryRun?: boolean;
  /** Defaults to Postgres's now. */
  now?: Date;
  /** Needed to create the one run of clocked / one_off tasks; without it they are reported as skipped. */
  boss?: PgBoss | null;
  maxParametersBytes?: number;
}

/** The one run's idempotency key: changes when the time, the parameters or the flow change. */
const oneOffKey = (source: string, flow: string, task: string, oneOff: NonNullable<Definition['oneOff']>) =>
  `celery-beat:${source}:${createHash('sha1').update(`${flow}\0${task}\0${stable(oneOff.parameters)}`).digest('hex').slice(0, 16)}:${oneOff.at}`;

/**
 * Bring flowwarden in step with a snapshot of django-celery-beat's tasks (library form of
 * `flowwarden import celery-beat`). Idempotent: a second call with the same tasks reports every
 * task unchanged and writes nothing. With dryRun the transaction is rolled back.
 */
export async function importCeleryBeat(pool: pg.Pool | Queryable, tasks: BeatTask[], mapping: CeleryBeatMapping, options: ImportOptions = {}): Promise<ImportResult> {
  const items: ImportItem[] = [];
  const rollback = new Error('dry run');
  try {
    await withTransaction(pool, async (tx) => {
      const now = options.now ?? (await dbNow(tx));
      // One sync at a time per source (a watch loop in several pods, or a CLI run beside one).
      await tx.query(`select pg_advisory_xact_lock(hashtext('flowwarden.celery_beat:' || $1))`, [mapping.source]);
      const links = new Map(
        (await tx.query<LinkRow>(
          `select task_name as "taskName", flow_id as "flowId", imported, one_off_key as "oneOffKey" from flowwarden.celery_beat_tasks where source = $1`,
          [mapping.source],
        )).rows.map((r) => [r.taskName, r]),
      );
      const seen = new Set<string>();
      for (const t of tasks) {
        seen.add(t.name);
        items.push(await importOne(tx, t, links.get(t.name), mapping, now, options));
      }
      for (const link of links.values()) {
        if (seen.has(link.taskName)) continue;
        items.push(await removeOne(tx, link, mapping.source, now));
      }
      if (options.dryRun) throw rollback;
    });
  } catch (err) {
    if (err !== rollback) throw err;
  }
  const counts = { created: 0, updated: 0, unchanged: 0, removed: 0, skipped: 0, unsupported: 0, conflict: 0 };
  for (const i of items) counts[i.action]++;
  return { items, counts, dryRun: options.dryRun ?? false };
}

async function importOne(tx: Queryable, t: BeatTask, link: LinkRow | undefined, mapping: CeleryBeatMapping, now: Date, options: ImportOptions): Promise<ImportItem> {
  const tr = translateTask(t, mapping, now);
  const base = { task: t.name, celeryTask: t.task, flow: tr.flowName };
  if (!tr.ok) {
    // Already imported and now inexpressible (e.g. switched to solar): stop it firing the old way.
    if (link) await disableBeatSchedule(tx, link.flowId, `not expressible after a change in Django: ${tr.reason}`, now);
    return { ...base, action: 'unsupported', detail: tr.reason };
  }
  const want = tr.definition;
  const existing = await getFlowByName(tx, tr.flowName);
  if (existing && (!link || link.flowId !== existing.id)) {
    return { ...base, action: 'conflict', detail: `a flow named '${tr.flowName}' exists and was not imported from this Celery Beat source: left alone; set flowPrefix in the mapping file` };
  }
  const beat = existing ? (await listSchedules(tx, existing.id)).find((s) => s.name === SCHEDULE_NAME) : undefined;
  const current = existing ? currentDefinition(existing, beat, link?.imported.oneOff ?? null) : null;
  const notes = [...tr.notes];
  if (current && same(current, want)) {
    if (!same(link!.imported, want)) await saveLink(tx, mapping.source, t.name, existing!.id, want, link!.oneOffKey);
    return { ...base, action: 'unchanged', detail: notes.join('; ') };
  }
  if (current && link && !same(current, link.imported)) {
    notes.unshift('changed in flowwarden since the last import: overwritten (Django wins)');
  }
  const raw: FlowInputRaw = {
    name: tr.flowName,
    description: want.description.slice(0, 2000),
    target: want.target,
    ...(want.lateAfterSeconds ? { lateAfter: want.lateAfterSeconds } : {}),
    schedules: want.schedule
      ? [{
          name: SCHEDULE_NAME,
          ...(want.schedule.kind === 'cron' ? { cron: want.schedule.cron! } : { every: want.schedule.intervalSeconds! }),
          timezone: want.schedule.timezone,
          // An interval keeps its anchor across syncs (Beat's last_run_at moves on every run).
          ...(want.schedule.kind === 'interval' && (!beat || beat.intervalSeconds !== want.schedule.intervalSeconds || beat.kind !== 'interval') ? { anchor: tr.anchor! } : {}),
          parameters: want.schedule.parameters,
          enabled: want.schedule.enabled,
          ...(want.schedule.note ? { note: want.schedule.note } : {}),
          // Beat never catches up missed fires beyond one: it runs a due task once when it wakes up.
          catchup: 'latest',
        }]
      : [],
  };
  const out = await upsertFlowTx(tx, raw, { maxParametersBytes: options.maxParametersBytes });
  if (!want.schedule && beat?.enabled) await disableBeatSchedule(tx, out.flow.id, 'the task became one-off/clocked in django-celery-beat', now);
  let key = link?.oneOffKey ?? null;
  if (want.oneOff) {
    const newKey = oneOffKey(mapping.source, tr.flowName, t.name, want.oneOff);
    if (newKey !== key) {
      if (options.dryRun) {
        notes.push(`would schedule one run at ${want.oneOff.at}`);
      } else if (!options.boss) {
        notes.push(`one run at ${want.oneOff.at} NOT created: the import was given no queue (pass boss to importCeleryBeat)`);
      } else {
        if (key) await cancelOneOff(options.boss, tx, key, 'superseded: the clocked/one-off task changed in django-celery-beat');
        const r = await triggerRunTx(options.boss, tx, tr.flowName, want.oneOff.parameters, { idempotencyKey: newKey, scheduledFor: new Date(want.oneOff.at), origin: 'api', maxParametersBytes: options.maxParametersBytes });
        notes.push(`${r.created ? 'one run' : 'run already'} scheduled at ${want.oneOff.at}`);
        key = newKey;
      }
    }
  } else if (key && options.boss) {
    await cancelOneOff(options.boss, tx, key, 'cancelled: the task is no longer one-off, or was disabled, in django-celery-beat');
    key = null;
  }
  await saveLink(tx, mapping.source, t.name, out.flow.id, want, key);
  const what = want.schedule
    ? `${want.schedule.kind === 'cron' ? `cron '${want.schedule.cron}' ${want.schedule.timezone}` : `every ${want.schedule.intervalSeconds}s`}${want.schedule.enabled ? '' : ` (disabled: ${want.schedule.note})`}`
    : want.oneOff ? `one run at ${want.oneOff.at}` : 'no schedule';
  return { ...base, action: existing ? 'updated' : 'created', detail: [what, ...notes].join('; ') };
}

async function cancelOneOff(boss: PgBoss, tx: Queryable, key: string, message: string): Promise<void> {
  const { rows } = await tx.query<{ id: string }>(`select id from flowwarden.runs where idempotency_key = $1 and state_type = 'SCHEDULED' for update`, [key]);
  for (const r of rows) await applyTransition({ boss }, tx, { runId: r.id, to: 'CANCELLED', name: 'Skipped', message });
}

async function saveLink(tx: Queryable, source: string, taskName: string, flowId: string, imported: Definition, oneOffKey: string | null): Promise<void> {
  await tx.query(
    `insert into flowwarden.celery_beat_tasks (source, task_name, flow_id, imported, one_off_key)
     values ($1, $2, $3, $4, $5)
     on conflict (source, task_name) do update set flow_id = excluded.flow_id, imported = excluded.imported,
       one_off_key = excluded.one_off_key, synced_at = now()`,
    [source, taskName, flowId, JSON.stringify(imported), oneOffKey],
  );
}

/** Turn the flow's `beat` schedule off (its pre-created future runs are cancelled). */
async function disableBeatSchedule(tx: Queryable, flowId: string, note: string, now: Date): Promise<void> {
  const { rows } = await tx.query<{ id: string }>(`select id from flowwarden.schedules where flow_id = $1 and name = $2 and enabled`, [flowId, SCHEDULE_NAME]);
  for (const r of rows) await setScheduleEnabled(tx, r.id, false, note, now);
}

async function removeOne(tx: Queryable, link: LinkRow, source: string, now: Date): Promise<ImportItem> {
  const { rows } = await tx.query<{ name: string }>(`select name from flowwarden.flows where id = $1`, [link.flowId]);
  await disableBeatSchedule(tx, link.flowId, 'deleted in django-celery-beat', now);
  await tx.query(`delete from flowwarden.celery_beat_tasks where source = $1 and task_name = $2`, [source, link.taskName]);
  return { task: link.taskName, celeryTask: '', flow: rows[0]?.name ?? '', action: 'removed', detail: 'deleted in django-celery-beat: schedule disabled, flow and its runs kept' };
}
