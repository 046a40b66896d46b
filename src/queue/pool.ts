/**
 * A capacity-driven consumer for the hot dispatch queue, built on pg-boss's public fetch / complete /
 * fail API: up to `capacity` handlers at once, a fetch the moment a slot frees, no head-of-line
 * blocking, completions flushed in batches. Slots, prefetch, wake-ups and drain are described in
 * docs/internals.md, "Queue".
 */
import type { JobWithMetadata, PgBoss } from 'pg-boss';
import type { Logger } from '../log.ts';
import { errorMessage } from '../errors.ts';

export interface PoolOptions {
  queue: string;
  /** Handlers running at once (FLOWWARDEN_CONCURRENCY). */
  capacity: number;
  pollIntervalMs: number;
  /**
   * Refresh the heartbeat of every held job this often (one statement for all of them). With the
   * queue's heartbeatSeconds set, a job whose pod died is failed for retry by pg-boss's supervisor
   * once its heartbeat is stale, instead of waiting out expireInSeconds.
   */
  heartbeatMs?: number;
  /** Most jobs fetched in one statement. */
  maxFetch?: number;
  /**
   * Most jobs held at once: prefetched, running, and settling (outcome and completion being
   * written after release). Back-pressure when those writes fall behind. Default: 4 × capacity.
   */
  maxHeld?: number;
  /** Prefetch while the recent average slot time is below this (ms); 0 turns prefetching off. */
  prefetchBelowMs?: number;
  /** How long finished jobs may wait to be completed together (ms). */
  completeLingerMs?: number;
  /** The clock slot times are measured with (ms; default performance.now). Tests inject one. */
  now?: () => number;
  /**
   * How many units of work a job carries (default 1): a multi-run dispatch job is one pg-boss job
   * whose runs each take a slot. The handler is called once per unit; the job completes when all
   * its units have, and is failed (retried whole) if one threw.
   */
  unitsOf?: (job: JobWithMetadata<unknown>) => number;
}

/**
 * A job as the pool hands it to its handler. `release()` gives the job's slot back before the
 * handler's promise settles: dispatch calls it once the target has returned, so the bookkeeping
 * that follows overlaps the next runs. Calling it more than once is harmless.
 */
export type PoolJob<T = unknown> = JobWithMetadata<T> & {
  release?: () => void;
  /** Which unit of the job this call is (0-based), and how many the job carries (absent: one). */
  unit?: number;
  units?: number;
};

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

interface Held {
  job: JobWithMetadata<unknown>;
  controller: AbortController;
  timer: NodeJS.Timeout | undefined;
  units: number;
  started: number;
  settled: number;
  /** The first error a unit's handler threw: the job is failed (retried whole). */
  error: unknown;
  /** The drain dropped its unstarted units: hand the job back once the started ones settle. */
  cut: boolean;
  /** Handed back at the drain deadline, or expired: pg-boss has it again, so it is neither completed nor failed here. */
  gone: boolean;
  /** Settles when every started unit has settled and the job is queued for completion or failed. */
  done: Promise<void>;
  finish: () => void;
}

/** A unit of a held job waiting for a slot. */
interface Unit {
  held: Held;
  index: number;
}

/** A wait of `ms` that `cut()` ends early. */
function cuttableDelay(ms: number): { done: Promise<void>; cut: () => void } {
  let cut!: () => void;
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    cut = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  return { done, cut };
}

/** Completions that are flushed at once, without waiting for more. */
const COMPLETE_BATCH = 200;

/** Weight of a shorter slot time in the running average that decides prefetching (a longer one replaces it). */
const EWMA_WEIGHT = 0.2;

export class JobPool {
  readonly #boss: PgBoss;
  readonly #options: Required<Omit<PoolOptions, 'now' | 'unitsOf'>> & Pick<PoolOptions, 'now' | 'unitsOf'>;
  readonly #handler: Handler;
  readonly #log: Logger;
  /** Every job this pool holds in pg-boss (heartbeated, handed back at drain). */
  readonly #held = new Map<string, Held>();
  /** Units of held jobs waiting for a slot, oldest first. */
  #waiting: Unit[] = [];
  /** Units held and not yet settled (waiting or running). */
  #heldUnits = 0;
  /** Running average of units per fetched job: a fetch asks for about as many jobs as there is room for units. */
  #unitsPerJob = 1;
  /** Jobs holding a slot (handler started, not yet released). */
  #active = 0;
  /** Running average of how long a job holds its slot (ms); undefined until one has. */
  #slotMs: number | undefined;
  #toComplete: Array<{ id: string; retryCount: number }> = [];
  #flushing: Promise<void> | undefined;
  /** Ends the wait of a completion flush early (a full batch, or the drain). */
  #lingerEnd: (() => void) | undefined;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wakeResolve: (() => void) | undefined;
  #woken = false;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(boss: PgBoss, options: PoolOptions, handler: Handler, log: Logger) {
    this.#boss = boss;
    this.#options = { maxFetch: 100, heartbeatMs: 0, maxHeld: options.capacity * 4, prefetchBelowMs: 25, completeLingerMs: 20, ...options };
    this.#handler = handler;
    this.#log = log.child({ queue: options.queue, component: 'pool' });
  }

  /** Jobs held: prefetched, running or settling. */
  get inflight(): number {
    return this.#held.size;
  }

  /** Whether the pool currently fetches ahead of its free slots (handlers are short). */
  get prefetching(): boolean {
    return this.#options.prefetchBelowMs > 0 && this.#slotMs !== undefined && this.#slotMs < this.#options.prefetchBelowMs;
  }

  /** How many jobs to fetch now: free slots (plus the prefetch allowance) not already covered by waiting jobs. */
  #room(): number {
    const wanted = this.#options.capacity - this.#active + (this.prefetching ? this.#options.capacity : 0) - this.#waiting.length;
    return Math.max(0, Math.min(wanted, this.#options.maxHeld - this.#heldUnits, this.#options.maxFetch));
  }

  start(): void {
    if (this.#loop) return;
    this.#loop = this.#run();
    if (this.#options.heartbeatMs > 0) {
      this.#heartbeat = setInterval(() => void this.#touch(), this.#options.heartbeatMs);
      this.#heartbeat.unref?.();
    }
  }

  async #touch(): Promise<void> {
    const jobs = [...this.#held.values()].map((e) => ({ id: e.job.id, retryCount: e.job.retryCount }));
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
      const room = this.#room();
      let full = false;
      if (room > 0) {
        try {
          this.#woken = false;
          const batchSize = Math.max(1, Math.floor(room / this.#unitsPerJob));
          const jobs = await this.#boss.fetch<unknown>(this.#options.queue, { batchSize, includeMetadata: true });
          let units = 0;
          for (const job of jobs) units += this.#hold(job);
          if (jobs.length > 0) this.#unitsPerJob += 0.5 * (units / jobs.length - this.#unitsPerJob);
          full = jobs.length === batchSize;
          this.#startWaiting();
        } catch (err) {
          this.#log.error({ err }, 'fetch failed; retrying after the poll interval');
        }
        // A full fetch means there is probably more: go again at once (if there is room).
        if (full && this.#room() > 0) continue;
      }
      if (this.#stopping) break;
      if (this.#woken && this.#room() > 0) continue;
      const poll = cuttableDelay(this.#options.pollIntervalMs);
      this.#wakeResolve = poll.cut;
      await poll.done;
      this.#wakeResolve = undefined;
    }
  }

  /** Take a fetched job: it is ours in pg-boss from now on, and its units wait for slots. Returns its units. */
  #hold(job: JobWithMetadata<unknown>): number {
    const units = Math.max(1, this.#options.unitsOf?.(job) ?? 1);
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const entry: Held = { job, controller: new AbortController(), timer: undefined, units, started: 0, settled: 0, error: undefined, cut: false, gone: false, done, finish };
    if (job.expireInSeconds > 0) {
      entry.timer = setTimeout(() => this.#expire(entry), job.expireInSeconds * 1000);
      entry.timer.unref?.();
    }
    this.#held.set(job.id, entry);
    this.#heldUnits += units;
    for (let index = 0; index < units; index++) this.#waiting.push({ held: entry, index });
    return units;
  }

  /**
   * The job outlived its expireInSeconds (pg-boss retries it whole, on any pod, whatever heartbeats
   * say): abort its running units, and its units still waiting for a slot never start here.
   */
  #expire(entry: Held): void {
    entry.controller.abort(new Error(`job expired after ${entry.job.expireInSeconds}s`));
    const waiting = this.#waiting.length;
    this.#waiting = this.#waiting.filter((u) => u.held !== entry);
    if (this.#waiting.length === waiting) return;
    this.#heldUnits -= waiting - this.#waiting.length;
    entry.cut = entry.gone = true;
    if (entry.settled === entry.started) void this.#settle(entry);
  }

  /** Start waiting units while slots are free (never once the drain has begun). */
  #startWaiting(): void {
    while (!this.#stopping && this.#active < this.#options.capacity && this.#waiting.length > 0) {
      this.#start(this.#waiting.shift()!);
    }
  }

  /** Every started unit of a job has settled (and no unit is left, or the drain cut them): settle the job. */
  async #settle(entry: Held): Promise<void> {
    const { job } = entry;
    if (entry.timer) clearTimeout(entry.timer);
    this.#held.delete(job.id);
    try {
      if (entry.gone) return;
      if (entry.cut && entry.started < entry.units) {
        await this.#handBack([entry], `handed back at shutdown: ${entry.units - entry.started} of its ${entry.units} units had not started`);
        await this.#restoreSpent([entry]);
      } else if (entry.error !== undefined) {
        await this.#boss
          .fail(this.#options.queue, { id: job.id, retryCount: job.retryCount }, { message: errorMessage(entry.error) })
          .catch((e: unknown) => this.#log.error({ err: e, jobId: job.id }, 'could not record job failure; pg-boss expiry will retry it'));
      } else {
        this.#toComplete.push({ id: job.id, retryCount: job.retryCount });
        this.#scheduleFlush();
      }
    } finally {
      entry.finish();
    }
  }

  #start(unit: Unit): void {
    const entry = unit.held;
    const { job, controller } = entry;
    entry.started++;
    const now = this.#options.now ?? (() => performance.now());
    const startedAt = now();
    let holdsSlot = true;
    const release = () => {
      if (!holdsSlot) return;
      holdsSlot = false;
      this.#active--;
      const ms = now() - startedAt;
      // Up at once (one long handler stops prefetching), down gradually (several short ones restart it).
      this.#slotMs = this.#slotMs === undefined || ms > this.#slotMs ? ms : this.#slotMs + EWMA_WEIGHT * (ms - this.#slotMs);
      this.#startWaiting();
      this.wake();
    };
    this.#active++;
    const call = entry.units > 1 ? { unit: unit.index, units: entry.units } : {};
    void this.#handler({ ...job, ...call, signal: controller.signal, release })
      .catch((err: unknown) => {
        entry.error ??= err;
      })
      .finally(() => {
        release();
        entry.settled++;
        this.#heldUnits--;
        if (entry.settled === entry.started && (entry.started === entry.units || entry.cut)) void this.#settle(entry);
      });
  }

  #scheduleFlush(): void {
    if (this.#flushing) {
      if (this.#toComplete.length >= COMPLETE_BATCH) this.#lingerEnd?.();
      return;
    }
    this.#flushing = (async () => {
      // Completing a job is bookkeeping: the run's outcome is already committed, and a redelivered
      // job finds its run finished and does nothing. So completions wait a moment (or until a full
      // batch) to share one statement, instead of one statement per group of handlers.
      if (this.#toComplete.length < COMPLETE_BATCH && !this.#stopping) {
        const linger = cuttableDelay(this.#options.completeLingerMs);
        this.#lingerEnd = linger.cut;
        await linger.done;
      }
      this.#lingerEnd = undefined;
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

  /** Hand jobs back to pg-boss for another pod (a retry, after the queue's retry delay). */
  async #handBack(entries: Held[], message: string): Promise<void> {
    if (entries.length === 0) return;
    await this.#boss
      .fail(this.#options.queue, entries.map((e) => ({ id: e.job.id, retryCount: e.job.retryCount })), { message })
      .catch((err: unknown) => this.#log.error({ err }, 'could not hand back jobs; they will be retried after expiry'));
  }

  /** A job on its last attempt is failed for good by a hand-back although its work never ran: give it its attempt back. */
  async #restoreSpent(entries: Held[]): Promise<void> {
    const spent = entries.filter((e) => e.job.retryCount >= e.job.retryLimit).map((e) => e.job.id);
    if (spent.length === 0) return;
    await this.#boss
      .retry(this.#options.queue, spent)
      .catch((err: unknown) => this.#log.error({ err, jobs: spent }, 'could not restore handed-back jobs that were on their last attempt: their runs stay SCHEDULED until these jobs are retried (pg-boss retry)'));
  }

  /**
   * Drain: stop fetching, hand back jobs none of whose units started, wait for running units until
   * `deadlineMs`, hand back the rest. A job with some units started and some not is handed back
   * whole once the started ones settle: its redelivery skips the runs already settled.
   */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    // Keep heartbeating through the drain: held jobs are still ours until they finish or are handed back.
    this.wake();
    await this.#loop;
    const dropped = new Map<Held, number>();
    for (const u of this.#waiting) dropped.set(u.held, (dropped.get(u.held) ?? 0) + 1);
    this.#waiting = [];
    const unstarted: Held[] = [];
    for (const [e, n] of dropped) {
      e.cut = true;
      this.#heldUnits -= n;
      if (e.started === 0) {
        if (e.timer) clearTimeout(e.timer);
        this.#held.delete(e.job.id);
        unstarted.push(e);
        e.finish();
      } else if (e.settled === e.started) void this.#settle(e);
    }
    await this.#handBack(unstarted, 'handed back at shutdown before it started');
    // A job on its last attempt is now failed for good although it never ran here: give it back its
    // attempt (pg-boss's retry: state retry, one more allowed), or its run would never be dispatched.
    await this.#restoreSpent(unstarted);
    const all = Promise.all([...this.#held.values()].map((e) => e.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), Math.max(0, deadlineMs)))),
    ]);
    clearTimeout(timer);
    if (timedOut && this.#held.size > 0) {
      const left = [...this.#held.values()];
      this.#log.warn({ jobs: left.length }, 'drain deadline reached: aborting and handing back unfinished jobs');
      // Fail before abort (as pg-boss does): the hand-back lands while the jobs are still active, so
      // an aborted handler that settles its run at once cannot complete the job first.
      for (const e of left) e.gone = true;
      await this.#handBack(left, 'handed back at shutdown');
      for (const e of left) e.controller.abort(new HandedBackError());
    }
    this.#lingerEnd?.();
    await this.#flushing;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
  }
}
