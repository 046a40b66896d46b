/**
 * A capacity-driven consumer for the hot dispatch queue, built on pg-boss's public fetch /
 * complete / fail API.
 *
 * Why not `boss.work()`: its workers sleep a poll interval after every batch unless the batch came
 * back full, and a batch is only as fast as its slowest job. Dispatch needs both "fetch again the
 * moment a slot frees" (throughput) and "one long handler never holds up the others" (no
 * head-of-line blocking). So this pool keeps up to `capacity` jobs in flight, fetches exactly as
 * many as there are free slots, and completes finished jobs in batches (one statement per flush).
 *
 * Wake-ups: `wake()` (the exact-time Waker, LISTEN/NOTIFY on new dispatch jobs, a freed slot) or
 * the poll interval as the correctness floor. Failures go through `boss.fail`, so pg-boss applies
 * the queue's retry/backoff policy; expiry still belongs to pg-boss's supervisor, and the job's
 * signal is aborted when its expireInSeconds passes.
 *
 * Drain (`stop(deadline)`): stop fetching, let in-flight jobs finish until the deadline, then abort
 * the rest and hand them back with `fail` so another pod retries them at once instead of waiting
 * for expiry.
 */
import type { JobWithMetadata, PgBoss } from 'pg-boss';
import type { Logger } from '../log.ts';
import { errorMessage } from '../errors.ts';

export interface PoolOptions {
  queue: string;
  capacity: number;
  pollIntervalMs: number;
  /**
   * Refresh the heartbeat of every in-flight job this often (one statement for all of them). With
   * the queue's heartbeatSeconds set, a job whose pod died is failed for retry by pg-boss's
   * supervisor once its heartbeat is stale, instead of waiting out expireInSeconds.
   */
  heartbeatMs?: number;
  /** Most jobs fetched in one statement. */
  maxFetch?: number;
  /**
   * Most jobs held at once, counting those whose handlers released their slot and are still
   * settling (outcome and completion being written): back-pressure when those writes fall behind.
   * Default: 4 × capacity.
   */
  maxHeld?: number;
}

/**
 * A job as the pool hands it to its handler. `release()` gives the job's concurrency slot back
 * before the handler's promise settles: dispatch calls it once the target has returned, so the
 * bookkeeping that follows (recording the outcome, completing the job) overlaps the next runs'
 * fetch and claim instead of holding a slot. Calling it more than once is harmless.
 */
export type PoolJob<T = any> = JobWithMetadata<T> & { release?: () => void };

type Handler = (job: PoolJob) => Promise<void>;

/**
 * The abort reason of a job handed back at the drain deadline: the pool has already failed the job
 * for retry (another pod takes it after the retry delay), so the handler may put its work back
 * instead of settling it. Any other abort reason (job expiry) means the job was given up.
 */
export class HandedBackError extends Error {
  override name = 'HandedBackError';
  constructor() {
    super('worker shutting down: job handed back at the drain deadline');
  }
}

interface InFlight {
  job: JobWithMetadata<any>;
  controller: AbortController;
  timer: NodeJS.Timeout | undefined;
  done: Promise<void>;
}

export class JobPool {
  readonly #boss: PgBoss;
  readonly #options: Required<PoolOptions>;
  readonly #handler: Handler;
  readonly #log: Logger;
  readonly #inflight = new Map<string, InFlight>();
  /** Jobs holding a concurrency slot (fetched, not yet released). */
  #active = 0;
  #toComplete: Array<{ id: string; retryCount: number }> = [];
  #flushing: Promise<void> | undefined;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wakeResolve: (() => void) | undefined;
  #woken = false;

  constructor(boss: PgBoss, options: PoolOptions, handler: Handler, log: Logger) {
    this.#boss = boss;
    this.#options = { maxFetch: 100, heartbeatMs: 0, maxHeld: options.capacity * 4, ...options };
    this.#handler = handler;
    this.#log = log.child({ queue: options.queue, component: 'pool' });
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  /** Slots free for new jobs: capacity minus jobs holding a slot, within the held-jobs bound. */
  #free(): number {
    return Math.min(this.#options.capacity - this.#active, this.#options.maxHeld - this.#inflight.size);
  }

  #heartbeat: NodeJS.Timeout | undefined;

  start(): void {
    if (this.#loop) return;
    this.#loop = this.#run();
    if (this.#options.heartbeatMs > 0) {
      this.#heartbeat = setInterval(() => void this.#touch(), this.#options.heartbeatMs);
      this.#heartbeat.unref?.();
    }
  }

  async #touch(): Promise<void> {
    const jobs = [...this.#inflight.values()].map((e) => ({ id: e.job.id, retryCount: e.job.retryCount }));
    if (jobs.length === 0) return;
    await this.#boss.touch(this.#options.queue, jobs).catch((err: unknown) => this.#log.warn({ err }, 'heartbeat failed; will retry'));
  }

  wake(): void {
    this.#woken = true;
    this.#wakeResolve?.();
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      // Let slots freed in the same moment (outcomes are group-committed) add up into one fetch.
      await new Promise((r) => setImmediate(r));
      if (this.#stopping) break;
      const free = this.#free();
      let fetched = 0;
      if (free > 0) {
        try {
          this.#woken = false;
          const jobs = await this.#boss.fetch<any>(this.#options.queue, { batchSize: Math.min(free, this.#options.maxFetch), includeMetadata: true });
          fetched = jobs.length;
          for (const job of jobs) this.#startJob(job);
        } catch (err) {
          this.#log.error({ err }, 'fetch failed; retrying after the poll interval');
        }
        // A full fetch means there is probably more: go again at once (if a slot is free).
        if (fetched > 0 && fetched === Math.min(free, this.#options.maxFetch) && this.#free() > 0) continue;
      }
      if (this.#stopping) break;
      if (this.#woken && this.#free() > 0) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#options.pollIntervalMs);
        this.#wakeResolve = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wakeResolve = undefined;
    }
  }

  #startJob(job: JobWithMetadata<any>): void {
    const controller = new AbortController();
    const timer = job.expireInSeconds > 0
      ? setTimeout(() => controller.abort(new Error(`job expired after ${job.expireInSeconds}s`)), job.expireInSeconds * 1000)
      : undefined;
    timer?.unref?.();
    const entry: InFlight = { job, controller, timer, done: Promise.resolve() };
    let holdsSlot = true;
    const release = () => {
      if (!holdsSlot) return;
      holdsSlot = false;
      this.#active--;
      this.wake();
    };
    this.#active++;
    entry.done = this.#handler({ ...job, signal: controller.signal, release })
      .then(
        () => {
          this.#toComplete.push({ id: job.id, retryCount: job.retryCount });
          this.#scheduleFlush();
        },
        async (err: unknown) => {
          await this.#boss
            .fail(this.#options.queue, { id: job.id, retryCount: job.retryCount }, { message: errorMessage(err) })
            .catch((e: unknown) => this.#log.error({ err: e, jobId: job.id }, 'could not record job failure; pg-boss expiry will retry it'));
        },
      )
      .finally(() => {
        if (timer) clearTimeout(timer);
        this.#inflight.delete(job.id);
        release();
        this.wake();
      });
    this.#inflight.set(job.id, entry);
  }

  #scheduleFlush(): void {
    if (this.#flushing) return;
    this.#flushing = (async () => {
      // Let completions that finish in the same few milliseconds share one statement.
      await new Promise((r) => setImmediate(r));
      while (this.#toComplete.length > 0) {
        const batch = this.#toComplete.splice(0, 500);
        await this.#boss.complete(this.#options.queue, batch).catch((err: unknown) =>
          this.#log.error({ err, jobs: batch.length }, 'could not mark jobs completed; they will expire and be redelivered (handlers are idempotent)'),
        );
      }
    })().finally(() => {
      this.#flushing = undefined;
      if (this.#toComplete.length > 0) this.#scheduleFlush();
    });
  }

  /** Drain: stop fetching, wait for in-flight jobs until `deadlineMs`, hand back the rest. */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    // Keep heartbeating through the drain: in-flight jobs are still ours until they finish or are handed back.
    this.wake();
    await this.#loop;
    const all = Promise.all([...this.#inflight.values()].map((e) => e.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), Math.max(0, deadlineMs)))),
    ]);
    clearTimeout(timer);
    if (timedOut && this.#inflight.size > 0) {
      const left = [...this.#inflight.values()];
      this.#log.warn({ jobs: left.length }, 'drain deadline reached: aborting and handing back unfinished jobs');
      // Fail before abort (as pg-boss does): the hand-back lands while the jobs are still active, so
      // an aborted handler that settles its run at once cannot complete the job first.
      await this.#boss
        .fail(this.#options.queue, left.map((e) => ({ id: e.job.id, retryCount: e.job.retryCount })), { message: 'handed back at shutdown' })
        .catch((err: unknown) => this.#log.error({ err }, 'could not hand back jobs; they will be retried after expiry'));
      for (const e of left) e.controller.abort(new HandedBackError());
    }
    await this.#flushing;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
  }
}
