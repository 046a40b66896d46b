/**
 * One batch of the late sweep, in one transaction: mark up to `limit` runs still
 * (SCHEDULED, Scheduled) past their threshold as (SCHEDULED, Late) with their history
 * (src/runs/store.ts runMarkLateMany), and publish one `run.late` event per run. Safe on every pod
 * at once; a run is marked at most once. The loop around it: src/maintenance/late-sweep.ts.
 */
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { withTransaction } from '../db/client.ts';
import { runMarkLateMany, type LateRun } from '../runs/store.ts';
import { EVENTS } from '../queue/catalog.ts';
import { publishEvents } from '../runs/service.ts';

export interface LateBatchOptions {
  /** Overrides Postgres time (tests). */
  now?: Date | undefined;
  /** The threshold of flows without their own late_after_seconds. */
  defaultAfterSeconds: number;
  limit: number;
  /** Where the previous batch of this sweep ended (see runMarkLateMany: keeps a sweep linear). */
  from?: Date | undefined;
}

export async function markLateBatch(deps: { pool: pg.Pool; boss: PgBoss }, options: LateBatchOptions): Promise<LateRun[]> {
  return withTransaction(deps.pool, async (tx) => {
    const runs = await runMarkLateMany(tx, options);
    await publishEvents(
      deps.boss,
      tx,
      runs.map((r) => ({
        event: EVENTS.runLate,
        flowId: r.flowId,
        flowName: r.flowName,
        runId: r.id,
        message: `not started within ${r.lateAfterSeconds} s of its scheduled time`,
        at: r.at.toISOString(),
        details: { scheduledFor: r.scheduledFor.toISOString(), lateAfterSeconds: r.lateAfterSeconds },
      })),
    );
    return runs;
  });
}
