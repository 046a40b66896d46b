/**
 * The worker registry: one array wires every queue. Adding a queue = one file in this folder and
 * one entry here.
 */
import type { WorkerDefinition, WorkerDeps } from './types.ts';
import { JobPool, type PoolJob } from '../queue/pool.ts';
import { QUEUE_OPTIONS } from '../queue/catalog.ts';
import type { Inflight } from '../util/inflight.ts';
import { dispatchWorker } from '../dispatch/worker.ts';
import { healthWorker } from './health.ts';
import { eventsWorker } from './events.ts';
import { notifyWorker } from './notify.ts';
import { pollWorker } from './poll.ts';

export const WORKERS: WorkerDefinition[] = [dispatchWorker, healthWorker, eventsWorker, notifyWorker, pollWorker];

/** A job's log context: its scalar payload fields (ids), never its arrays (an events batch, a job's run list). */
function bindingsOf(data: unknown): Record<string, unknown> {
  if (typeof data !== 'object' || data === null) return {};
  return Object.fromEntries(Object.entries(data).filter(([, v]) => v === null || ['string', 'number', 'boolean'].includes(typeof v)));
}

/** Parse a job's payload and call the worker's handler (tracked for shutdown); a malformed payload is logged and dropped. */
async function runJob<S extends WorkerDefinition>(
  deps: WorkerDeps, w: S, job: PoolJob, parsed: ReturnType<S['payload']['safeParse']>, inflight: Inflight | undefined,
): Promise<void> {
  const log = deps.log.child({ queue: w.queue, jobId: job.id, ...(job.units ? { unit: job.unit } : {}), ...bindingsOf(job.data) });
  if (!parsed.success) {
    // A malformed payload can never succeed: log it and complete the job rather than retry forever.
    log.error({ issues: parsed.error.issues }, 'dropping job with invalid payload');
    return;
  }
  const work = w.handle(deps, { ...job, data: parsed.data }, log);
  await (inflight ? inflight.track(work, job.signal) : work);
}

/** Subscribe each worker's handler; returns the pg-boss worker ids. `inflight` tracks handler calls for shutdown. */
export async function startWorkers(deps: WorkerDeps, workers: WorkerDefinition[] = WORKERS, options: { inflight?: Inflight } = {}): Promise<string[]> {
  const ids: string[] = [];
  for (const w of workers) {
    if (w.consumer === 'pool') continue;
    const id = await deps.boss.work(w.queue, w.workOptions(deps.config), async (jobs) => {
      for (const job of jobs) await runJob(deps, w, job, w.payload.safeParse(job.data), options.inflight);
    });
    ids.push(id);
  }
  return ids;
}

/** The pool heartbeats a third of the queue's heartbeat window (none when the queue has none). */
const heartbeatMs = (seconds: number | undefined): number => (seconds ? (seconds * 1000) / 3 : 0);

/** Start a JobPool for every worker that asks for one (the dispatch queue). */
export function startPools(deps: WorkerDeps, workers: WorkerDefinition[] = WORKERS, options: { inflight?: Inflight } = {}): JobPool[] {
  const pools: JobPool[] = [];
  for (const w of workers) {
    if (w.consumer !== 'pool') continue;
    // A job's payload is parsed once (when it is fetched), not once per unit.
    const parsedOf = new WeakMap<object, ReturnType<typeof w.payload.safeParse>>();
    const parse = (data: unknown) => {
      const known = typeof data === 'object' && data !== null ? parsedOf.get(data) : undefined;
      if (known) return known;
      const parsed = w.payload.safeParse(data);
      if (typeof data === 'object' && data !== null) parsedOf.set(data, parsed);
      return parsed;
    };
    const unitsOf = w.unitsOf;
    const pool = new JobPool(
      deps.boss,
      {
        queue: w.queue,
        capacity: deps.config.concurrency,
        pollIntervalMs: 500,
        heartbeatMs: heartbeatMs(QUEUE_OPTIONS[w.queue].heartbeatSeconds),
        ...(unitsOf ? { unitsOf: (job) => { const p = parse(job.data); return p.success ? unitsOf(p.data) : 1; } } : {}),
      },
      (job) => runJob(deps, w, job, parse(job.data), options.inflight),
      deps.log,
    );
    pool.start();
    pools.push(pool);
  }
  return pools;
}
