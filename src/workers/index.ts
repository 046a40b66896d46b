/**
 * The worker registry: one array wires every queue. Adding a queue = one file in this folder and
 * one entry here.
 */
import type { PgBoss } from 'pg-boss';
import type { WorkerDefinition, WorkerDeps } from './types.ts';
import { dispatchWorker } from './dispatch.ts';

export const WORKERS: WorkerDefinition[] = [dispatchWorker as unknown as WorkerDefinition];

/** Create (or update) every queue with its options. Idempotent; safe from many pods at once. */
export async function ensureQueues(boss: PgBoss, workers: WorkerDefinition[] = WORKERS): Promise<void> {
  const existing = new Set((await boss.getQueues()).map((q) => q.name));
  for (const w of workers) {
    if (existing.has(w.queue)) {
      await boss.updateQueue(w.queue, w.queueOptions);
    } else {
      await boss.createQueue(w.queue, w.queueOptions).catch(async (err: unknown) => {
        // Another pod created it between our read and our create.
        if (!(await boss.getQueue(w.queue))) throw err;
      });
    }
  }
}

/** Subscribe each worker's handler; returns the pg-boss worker ids. */
export async function startWorkers(deps: WorkerDeps, workers: WorkerDefinition[] = WORKERS): Promise<string[]> {
  const ids: string[] = [];
  for (const w of workers) {
    const id = await deps.boss.work(w.queue, w.workOptions(deps.config), async (jobs) => {
      for (const job of jobs) {
        const log = deps.log.child({ queue: w.queue, jobId: job.id, ...(job.data as object) });
        const parsed = w.payload.safeParse(job.data);
        if (!parsed.success) {
          // A malformed payload can never succeed: log it and complete the job rather than retry forever.
          log.error({ issues: parsed.error.issues }, 'dropping job with invalid payload');
          continue;
        }
        await w.handle(deps, { ...job, data: parsed.data }, log);
      }
    });
    ids.push(id);
  }
  return ids;
}
