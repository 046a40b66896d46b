/**
 * Prometheus metrics (prom-client), one registry per app instance (never the global one, so apps
 * in one process do not collide). Per-pod counters/histograms (sum across pods) and cluster-wide
 * gauges read from Postgres at scrape time (aggregate with max()), documented in
 * docs/operations.md ("Metrics"). Components call the small methods of `deps.metrics`, never
 * prom-client directly.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queryable } from './db/client.ts';
import { disabledFlowCount, openRunCounts, queueDepth } from './queries/inspect.ts';
import type { Logger } from './log.ts';
import { schedulerLagSeconds } from './queries/schedules.ts';

/** The scrape-time queries share this budget; past it the scrape answers without them. */
export const SCRAPE_QUERY_TIMEOUT_MS = 2000;

const LAG_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900];
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 900, 3600];

export type DispatchOutcome = 'completed' | 'failed' | 'crashed' | 'accepted' | 'retry' | 'handed_back';

export class Metrics {
  readonly registry: Registry;
  readonly #log: Logger | undefined;
  #db: Queryable | undefined;

  readonly #runsCreated: Counter<'origin'>;
  readonly #fireLag: Histogram<'target'>;
  readonly #dispatchDuration: Histogram<'target' | 'outcome'>;
  readonly #runsMarkedLate: Counter;
  readonly #retentionDeleted: Counter<'table'>;
  readonly #transitions: Counter<'state_type'>;
  readonly #notifyDelivered: Counter<'channel_kind'>;
  readonly #notifyFailed: Counter<'channel_kind' | 'permanent'>;
  readonly #runs: Gauge<'state_type' | 'state_name'>;
  readonly #late: Gauge;
  readonly #disabled: Gauge;
  readonly #queueJobs: Gauge<'queue' | 'state'>;
  readonly #queueOldest: Gauge<'queue'>;
  readonly #dbUp: Gauge;
  readonly #draining: Gauge;
  readonly #schedulerLag: Gauge;

  constructor(options: { log?: Logger; defaultMetrics?: boolean } = {}) {
    this.#log = options.log;
    const registers = [(this.registry = new Registry())];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });

    this.#runsCreated = new Counter({ name: 'flowwarden_runs_created_total', help: 'Runs materialised by this pod\'s scheduler tick.', labelNames: ['origin'], registers });
    this.#fireLag = new Histogram({
      name: 'flowwarden_fire_lag_seconds', help: 'Time from a run\'s scheduled fire time to its dispatch claim (SCHEDULED → PENDING), per target type. Measured with Postgres time.',
      labelNames: ['target'], buckets: LAG_BUCKETS, registers,
    });
    this.#dispatchDuration = new Histogram({
      name: 'flowwarden_dispatch_duration_seconds', help: 'Time from dispatch claim to the recorded outcome (the target call included), per target type and outcome.',
      labelNames: ['target', 'outcome'], buckets: DURATION_BUCKETS, registers,
    });
    this.#runsMarkedLate = new Counter({ name: 'flowwarden_runs_marked_late_total', help: 'Runs this pod\'s late sweep marked SCHEDULED/Late.', registers });
    this.#retentionDeleted = new Counter({ name: 'flowwarden_retention_deleted_rows_total', help: 'Rows this pod\'s retention sweep deleted, per table.', labelNames: ['table'], registers });
    this.#transitions = new Counter({
      name: 'flowwarden_run_transitions_total',
      help: 'Run state changes this pod committed, by the new state type (claims, outcomes, API reports and cancels, Prefect polls, guard and pause cancels).',
      labelNames: ['state_type'], registers,
    });
    this.#notifyDelivered = new Counter({ name: 'flowwarden_notifications_delivered_total', help: 'Chat messages fully delivered (all chunks), per channel kind.', labelNames: ['channel_kind'], registers });
    this.#notifyFailed = new Counter({
      name: 'flowwarden_notification_failures_total', help: 'Failed delivery attempts, per channel kind; permanent="true" when the message was given up on.',
      labelNames: ['channel_kind', 'permanent'], registers,
    });

    this.#runs = new Gauge({ name: 'flowwarden_runs', help: 'Open (non-terminal) runs by state, cluster-wide (aggregate with max).', labelNames: ['state_type', 'state_name'], registers });
    this.#late = new Gauge({ name: 'flowwarden_runs_late', help: 'Runs currently SCHEDULED/Late, cluster-wide.', registers });
    this.#disabled = new Gauge({ name: 'flowwarden_flows_disabled', help: 'Flows held disabled by the guard or an operator, cluster-wide.', registers });
    this.#queueJobs = new Gauge({
      name: 'flowwarden_queue_jobs', help: 'pg-boss jobs per queue and state (ready, deferred, active, failed), cluster-wide. queued = ready + deferred.',
      labelNames: ['queue', 'state'], registers,
    });
    this.#queueOldest = new Gauge({ name: 'flowwarden_queue_oldest_ready_seconds', help: 'Age of the oldest ready (claimable) job per queue; 0 when none is waiting.', labelNames: ['queue'], registers });
    this.#dbUp = new Gauge({ name: 'flowwarden_db_up', help: '1 when the scrape-time database queries answered, 0 otherwise.', registers });
    this.#schedulerLag = new Gauge({ name: 'flowwarden_scheduler_lag_seconds', help: 'Seconds since the oldest due, not yet materialised fire of an enabled schedule, cluster-wide (0: the scheduler keeps up).', registers });
    this.#draining = new Gauge({ name: 'flowwarden_draining', help: '1 while this pod is shutting down (draining in-flight work).', registers });
  }

  /** Give the scrape-time gauges their database (the app pool). Without one they are omitted. */
  attach(db: Queryable): void {
    this.#db = db;
  }

  // ---- API for components (deps.metrics) ----

  /** The scheduler tick materialised runs. */
  runsCreated(count: number, origin = 'schedule'): void {
    if (count > 0) this.#runsCreated.inc({ origin }, count);
  }

  /** A dispatch claimed a SCHEDULED run `lagSeconds` after its fire time. */
  fireLag(target: string, lagSeconds: number): void {
    this.#fireLag.observe({ target }, Math.max(0, lagSeconds));
  }

  dispatchDone(target: string, outcome: DispatchOutcome, seconds: number): void {
    this.#dispatchDuration.observe({ target, outcome }, Math.max(0, seconds));
  }

  /** Runs moved into `stateType` (committed); fed by src/runs/observe.ts. */
  runTransitions(stateType: string, count = 1): void {
    if (count > 0) this.#transitions.inc({ state_type: stateType }, count);
  }

  /** The late sweep marked runs Late. */
  runsMarkedLate(count: number): void {
    if (count > 0) this.#runsMarkedLate.inc(count);
  }

  /** The retention sweep deleted `count` rows of `table`. */
  retentionDeleted(table: string, count: number): void {
    if (count > 0) this.#retentionDeleted.inc({ table }, count);
  }

  /** A message reached the channel (every chunk accepted). `kind`: discord, slack, webhook, console. */
  notificationDelivered(kind: string): void {
    this.#notifyDelivered.inc({ channel_kind: kind });
  }

  /** A delivery attempt failed; `permanent` when the message is given up on (4xx, last retry). */
  notificationFailed(kind: string, permanent = false): void {
    this.#notifyFailed.inc({ channel_kind: kind, permanent: String(permanent) });
  }

  setDraining(draining: boolean): void {
    this.#draining.set(draining ? 1 : 0);
  }

  // ---- scrape ----

  /** Prometheus text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    // Refreshed before rendering, not in per-gauge collect(): prom-client reads metrics in parallel,
    // and one query round sets all the cluster-wide gauges consistently.
    await this.#collect();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  async #collect(): Promise<void> {
    const gauges = [this.#runs, this.#late, this.#disabled, this.#queueJobs, this.#queueOldest, this.#schedulerLag];
    for (const g of gauges) g.reset();
    const db = this.#db;
    if (!db) {
      this.#dbUp.set(0);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`database did not answer within ${SCRAPE_QUERY_TIMEOUT_MS} ms`)), SCRAPE_QUERY_TIMEOUT_MS);
    });
    try {
      const [runs, disabled, queues, lag] = await Promise.race([
        Promise.all([openRunCounts(db), disabledFlowCount(db), queueDepth(db), schedulerLagSeconds(db)]),
        timeout,
      ]);
      let late = 0;
      for (const r of runs) {
        this.#runs.set({ state_type: r.stateType, state_name: r.stateName }, r.count);
        if (r.stateType === 'SCHEDULED' && r.stateName === 'Late') late += r.count;
      }
      this.#late.set(late);
      this.#disabled.set(disabled);
      this.#schedulerLag.set(lag);
      for (const q of queues) {
        this.#queueJobs.set({ queue: q.queue, state: 'ready' }, q.ready);
        this.#queueJobs.set({ queue: q.queue, state: 'deferred' }, q.deferred);
        this.#queueJobs.set({ queue: q.queue, state: 'active' }, q.active);
        this.#queueJobs.set({ queue: q.queue, state: 'failed' }, q.failed);
        this.#queueOldest.set({ queue: q.queue }, q.oldestReadyAgeSeconds);
      }
      this.#dbUp.set(1);
    } catch (err) {
      for (const g of gauges) g.reset();
      this.#dbUp.set(0);
      this.#log?.debug({ err }, 'metrics: scrape-time queries failed');
    } finally {
      clearTimeout(timer);
    }
  }
}
