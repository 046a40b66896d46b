/**
 * One batch of the scheduler tick, in one short transaction: claim due schedules (SKIP LOCKED),
 * plan their fire times, insert the runs with their dispatch jobs, advance next_run_at. A pod that
 * dies mid-batch rolls it all back; the claim and the unique (schedule, fire time) index keep two
 * pods from inserting one fire twice. The loop around it: src/maintenance/tick.ts.
 */
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { bossDb, dbNow, withTransaction } from '../db/client.ts';
import { advanceSchedules, claimDueSchedules } from '../queries/schedules.ts';
import { runInsertScheduledMany, type PlannedRun } from '../runs/store-insert.ts';
import { dispatchJobs, insertJobs, planDispatchJobs, QUEUES } from '../queue/catalog.ts';
import { planFires } from './plan.ts';
import { scheduleSpecOf } from '../queries/flows.ts';
import type { Logger } from '../log.ts';

export interface MaterialiseDeps {
  pool: pg.Pool;
  boss: PgBoss;
  log: Logger;
}

export interface MaterialiseOptions {
  horizonSeconds: number;
  catchupGraceSeconds: number;
  claimBatch: number;
  /** Overrides Postgres time (tests); then no clock offset is measured. */
  now?: Date;
}

export interface MaterialisedBatch {
  claimed: number;
  /** The runs this batch created (committed). */
  runs: Array<{ id: string; scheduledFor: Date }>;
  /** Postgres time minus local time, read at the start of the batch (undefined when `now` was given). */
  clockOffsetMs: number | undefined;
}

export async function materialiseBatch(deps: MaterialiseDeps, options: MaterialiseOptions): Promise<MaterialisedBatch> {
  let clockOffsetMs: number | undefined;
  const created = await withTransaction(deps.pool, async (tx) => {
    let now = options.now;
    if (!now) {
      now = await dbNow(tx);
      clockOffsetMs = now.getTime() - Date.now();
    }
    const until = new Date(now.getTime() + options.horizonSeconds * 1000);
    const due = await claimDueSchedules(tx, until, options.claimBatch);
    if (due.length === 0) return { claimed: 0, runs: [] };

    const planned: Array<Omit<PlannedRun, 'id' | 'dispatchJobId'>> = [];
    const advances: Array<{ id: string; nextRunAt: Date; lastRunAt: Date | null }> = [];
    for (const s of due) {
      const spec = scheduleSpecOf(s);
      try {
        const plan = planFires(
          { spec, nextRunAt: s.nextRunAt, catchup: s.catchup, catchupWindowSeconds: s.catchupWindowSeconds, catchupMax: s.catchupMax },
          { now, horizonSeconds: options.horizonSeconds, graceSeconds: options.catchupGraceSeconds },
        );
        for (const t of plan.fireTimes) planned.push({ flowId: s.flowId, scheduleId: s.id, scheduledFor: t, parameters: s.parameters });
        advances.push({ id: s.id, nextRunAt: plan.nextRunAt, lastRunAt: plan.fireTimes.at(-1) ?? null });
      } catch (err) {
        // A schedule that cannot be planned (should be impossible after validation) must not block the others.
        deps.log.error({ err, scheduleId: s.id }, 'could not plan schedule; pushing it back one hour');
        advances.push({ id: s.id, nextRunAt: new Date(now.getTime() + 3_600_000), lastRunAt: null });
      }
    }
    const runs = await runInsertScheduledMany(tx, planDispatchJobs(planned));
    if (runs.length > 0) {
      await insertJobs(deps.boss, QUEUES.dispatch, dispatchJobs(runs), { db: bossDb(tx) });
    }
    await advanceSchedules(tx, advances);
    return { claimed: due.length, runs };
  });
  if (created.runs.length > 0) deps.log.debug({ claimed: created.claimed, created: created.runs.length }, 'materialised runs');
  return { ...created, clockOffsetMs };
}
