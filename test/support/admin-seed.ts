/**
 * A run history for the admin page tests: three flows, runs in every state spread over the last
 * three hours (relative to the database clock), manual and API runs, pre-created future runs and
 * cancelled ones. Offsets keep every run clear of the boundaries the tests filter on (1 h, now),
 * so a slow machine cannot move a run across one between a page and its check query. Flows and schedules go through the real operations; the bulk history is inserted
 * as rows (the admin page only reads them), with a history row per run so run pages render.
 */
import type pg from 'pg';
import { withTransaction } from '../../src/db/client.ts';
import { upsertFlowTx } from '../../src/flows/operations.ts';

export interface SeededHistory {
  flows: string[];
  /** Runs inserted per flow name. */
  runs: Record<string, number>;
}

/** One run row per spec; `at`: seconds relative to now() (negative = in the past). */
interface RunSpec { flow: string; at: number; type: string; name: string; origin?: string; message?: string }

export async function seedAdminHistory(pool: pg.Pool): Promise<SeededHistory> {
  await withTransaction(pool, async (tx) => {
    await upsertFlowTx(tx, {
      name: 'etl-nightly', description: 'Loads the warehouse every night (Berlin time)', target: { type: 'function' },
      schedules: [{ name: 'nightly', cron: '30 1 * * *', timezone: 'Europe/Berlin' }],
    });
    await upsertFlowTx(tx, {
      name: 'ping-fast', description: 'Health ping every 3 seconds', target: { type: 'function' },
      schedules: [{ name: 'every-3s', every: '3s', catchup: 'skip' }],
    });
    await upsertFlowTx(tx, { name: 'report-builder', description: 'Builds customer reports', target: { type: 'function' } });
  });
  const specs: RunSpec[] = [];
  // ping-fast: one completed run every 2 minutes over three hours; a failure every 20 minutes, a crash.
  for (let i = 1; i <= 90; i++) {
    const at = -i * 120 - 30; // no run sits on a minute or hour boundary the tests filter on
    const failed = i % 10 === 0;
    specs.push({ flow: 'ping-fast', at, type: failed ? 'FAILED' : 'COMPLETED', name: failed ? 'Failed' : 'Completed', message: failed ? `ping timed out after 5 s (#${i})` : undefined });
  }
  specs.push({ flow: 'ping-fast', at: -1500, type: 'CRASHED', name: 'Crashed', message: 'worker pod OOM-killed' });
  // report-builder: manual and API runs, one running, one pending, a late one, a timed-out one.
  specs.push(
    { flow: 'report-builder', at: -40 * 60, type: 'COMPLETED', name: 'Completed', origin: 'manual' },
    { flow: 'report-builder', at: -25 * 60, type: 'FAILED', name: 'TimedOut', origin: 'api', message: 'report exceeded 10 min' },
    { flow: 'report-builder', at: -12 * 60, type: 'FAILED', name: 'Failed', origin: 'api', message: 'customer 4411: template missing' },
    { flow: 'report-builder', at: -5 * 60, type: 'SCHEDULED', name: 'Late', origin: 'api' },
    { flow: 'report-builder', at: -3 * 60, type: 'RUNNING', name: 'Running', origin: 'manual' },
    { flow: 'report-builder', at: -90, type: 'PENDING', name: 'Pending', origin: 'api' },
  );
  // etl-nightly: completed nightly runs long ago, then a crowd of pre-created runs the guard cancelled.
  for (let d = 1; d <= 3; d++) specs.push({ flow: 'etl-nightly', at: -d * 86400, type: 'COMPLETED', name: 'Completed' });
  for (let i = 1; i <= 8; i++) specs.push({ flow: 'etl-nightly', at: -i * 30, type: 'CANCELLED', name: 'Skipped', message: 'flow disabled by flowwarden guard' });
  specs.push({ flow: 'etl-nightly', at: -62 * 60, type: 'FAILED', name: 'Failed', message: 'warehouse connection refused' });
  // Future pre-created runs, far enough ahead that none becomes due while a test runs.
  for (let i = 1; i <= 5; i++) specs.push({ flow: 'ping-fast', at: 600 + i * 3, type: 'SCHEDULED', name: 'Scheduled' });

  await pool.query(
    `with spec as (
       select * from jsonb_to_recordset($1::jsonb) as s(flow text, at int, type text, name text, origin text, message text)
     ), ins as (
       insert into flowwarden.runs (flow_id, scheduled_for, state_type, state_name, state_message, origin, started_at, ended_at, created_at, updated_at)
       select f.id, now() + make_interval(secs => s.at), s.type, s.name, s.message, coalesce(s.origin, 'schedule'),
              case when s.type in ('RUNNING', 'COMPLETED', 'FAILED', 'CRASHED') then now() + make_interval(secs => s.at + 1) end,
              case when s.type in ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED') then now() + make_interval(secs => s.at + 2) end,
              now() + make_interval(secs => s.at - 30), now() + make_interval(secs => s.at + 2)
         from spec s join flowwarden.flows f on f.name = s.flow
       returning id, state_type, state_name, state_message, updated_at
     )
     insert into flowwarden.run_state_history (run_id, from_type, from_name, to_type, to_name, message, at)
     select id, 'SCHEDULED', 'Scheduled', state_type, state_name, state_message, updated_at from ins where state_type <> 'SCHEDULED' or state_name <> 'Scheduled'`,
    [JSON.stringify(specs)],
  );
  // As the tick leaves a fast schedule: its next_run_at a horizon (30 s) ahead, its runs pre-created.
  await pool.query(`update flowwarden.schedules set next_run_at = now() + interval '30 seconds' where name = 'every-3s'`);
  const runs: Record<string, number> = {};
  for (const s of specs) runs[s.flow] = (runs[s.flow] ?? 0) + 1;
  return { flows: Object.keys(runs), runs };
}
