/**
 * One flowwarden process: components with start/stop, wired in one place. Roles: `scheduler` (the
 * maintenance loops: src/maintenance/index.ts), `worker` (queue consumers, incl. health evaluation),
 * `api` (HTTP), `all` (everything). Every pod may run every role; nothing assumes a leader.
 *
 * Shutdown (stop): first stop claiming (scheduler tick, pg-boss fetch loops), then let in-flight
 * jobs finish up to the drain deadline; pg-boss hands back (fails for retry) whatever is still
 * active at the deadline, so nothing stays stuck "active" until its expiry. Then the API and pools.
 */
import { UserInputError } from './errors.ts';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { FastifyInstance } from 'fastify';
import { configSecrets, hasRole, type Config, type Role } from './config.ts';
import { registerSecrets, type Logger } from './log.ts';
import { createPool, onTransactionPoolingDetected } from './db/client.ts';
import { connectionBudget, createReadPool, listenUrl, migrateForPod, ReadRouter, type ConnectionBudget } from './db/topology.ts';
import { POOLER_DETECTED, startBoss } from './queue/boss.ts';
import { Waker } from './scheduling/waker.ts';
import { startPools, startWorkers, WORKERS } from './workers/index.ts';
import { ensureQueues } from './queue/catalog.ts';
import type { JobPool } from './queue/pool.ts';
import { DISPATCH_CHANNEL, Listener } from './db/listen.ts';
import type { WorkerDeps } from './workers/types.ts';
import { defaultRegistry, functionTarget, type HandlerRegistry } from './targets/function.ts';
import { httpTarget } from './targets/http.ts';
import { issueReportToken } from './security/keys.ts';
import type { Target, TargetType } from './types.ts';
import type { TransitionDeps } from './runs/service.ts';
import { OutcomeWriter } from './runs/outcomes.ts';
import { ClaimBatcher } from './dispatch/claim.ts';
import { QUEUES } from './queue/catalog.ts';
import { createHttp } from './http.ts';
import { GuardActionRegistry } from './guard/actions.ts';
import { installPrefect, type PrefectInstall } from './prefect/index.ts';
import type { PrefectClient } from './prefect/client/index.ts';
import { setupNotifications } from './notify/setup.ts';
import { guardFailureHook } from './guard/health.ts';
import { Metrics } from './metrics.ts';
import { watchTransitions } from './runs/observe.ts';
import { Inflight } from './util/inflight.ts';
import { Maintainer } from './maintenance/index.ts';
import type { Scheduler } from './maintenance/tick.ts';
import type { LateSweeper } from './maintenance/late-sweep.ts';
import type { HealthSweeper } from './maintenance/health-sweep.ts';
import type { RetentionSweeper } from './maintenance/retention.ts';
import type { PrefectWatcher } from './maintenance/prefect-watch.ts';

/** After the drain deadline, how long aborted handlers get to record their outcome before the pools close. */
export const ABORT_GRACE_MS = 2000;

export type { Role };

export interface AppOptions {
  config: Config;
  log: Logger;
  databaseUrl: string;
  roles?: Role[];
  registry?: HandlerRegistry;
  /** Run migrations on start (default true). */
  migrate?: boolean;
  /** Start the background loops and HTTP listener (default true); tests drive runOnce() instead. */
  autoStart?: boolean;
  /** A Prefect client to use instead of one built from PREFECT_API_URL (tests, dev --prefect-fake). */
  prefectClient?: PrefectClient;
}

export interface App {
  config: Config;
  log: Logger;
  pool: pg.Pool;
  /** Where the API's reads go (the replica of FLOWWARDEN_READ_URL, or the primary). */
  reads: ReadRouter;
  /** The connections this pod may open, by role (docs/scaling.md). */
  budget: ConnectionBudget;
  boss: PgBoss;
  deps: WorkerDeps;
  scheduler: Scheduler;
  /** Marks runs Late (scheduler role). */
  lateSweeper: LateSweeper;
  /** Enforces holds and requests health evaluations (scheduler role). */
  healthSweeper: HealthSweeper;
  /** Deletes expired runs and notifications (scheduler role). */
  retentionSweeper: RetentionSweeper;
  /** The Prefect connector and watch importer, when PREFECT_API_URL is set (or a client injected). */
  prefect: (PrefectInstall & { watcher: PrefectWatcher }) | undefined;
  api: FastifyInstance | undefined;
  /** The API's address once listening. */
  address: string | undefined;
  start(): Promise<void>;
  stop(options?: { timeoutMs?: number }): Promise<void>;
}

export async function createApp(options: AppOptions): Promise<App> {
  const { config, log } = options;
  // Loggers from createLogger redact these values from every line (src/log.ts).
  registerSecrets(configSecrets(config));
  const roles = options.roles ?? ['all'];
  // Claims and outcomes are group-committed, so connections need not grow with concurrency.
  const budget = connectionBudget(config, roles);
  const transactionPooling = config.poolMode === 'transaction';
  if (options.migrate !== false) await migrateForPod(config, options.databaseUrl);
  const pool = createPool(options.databaseUrl, { max: budget.main, transactionPooling });
  onTransactionPoolingDetected(pool, () => log.error(POOLER_DETECTED));
  const readPool = createReadPool(config, budget.read);
  const reads = new ReadRouter(pool, readPool);
  // One registry per app (tests run several apps in one process); gauges read Postgres at scrape time.
  const metrics = new Metrics({ log });
  metrics.attach(pool);
  // Every run transition committed on this app's pool counts in flowwarden_run_transitions_total.
  const unwatchTransitions = watchTransitions(pool, (stateType, count) => metrics.runTransitions(stateType, count));
  const stopping = new AbortController();
  const inflight = new Inflight();
  const boss = await startBoss({ connectionString: options.databaseUrl, role: 'worker', log, max: budget.boss, transactionPooling });
  // The start-up migration wrote the queues' options; without it (tests, `migrate: false`) write them here.
  if (options.migrate === false) await ensureQueues(boss, { jobRetentionSeconds: config.retention.jobSeconds });
  // Channels from FLOWWARDEN_NOTIFY_URLS, events → fw.events, resume leftover deliveries (docs/notifications.md).
  await setupNotifications(boss, pool, { notifyUrls: config.notifyUrls, log, kick: hasRole(roles, 'worker') });
  // Every failed run (whatever role reports it) requests a debounced health evaluation.
  const transitions: TransitionDeps = { boss, onFailure: guardFailureHook(log) };
  const http = createHttp({ timeoutMs: config.httpTimeoutMs });
  const registry = options.registry ?? defaultRegistry;
  const guardActions = new GuardActionRegistry();
  // Prefect: dispatch target and poller, guard actions (docs/prefect.md); its watch is a maintenance loop.
  const prefectInstall = installPrefect({ pool, boss, config, log, http, guardActions, transitions }, options.prefectClient ? { client: options.prefectClient } : {});
  const targets: Record<TargetType, Target> = {
    function: functionTarget(registry),
    http: httpTarget({ http, config, reportToken: (runId) => issueReportToken(pool, runId) }),
    prefect: prefectInstall?.connector ?? {
      dispatch: () => Promise.reject(new Error('the Prefect connector is not configured in this worker (set PREFECT_API_URL)')),
    },
  };
  const deps: WorkerDeps = {
    pool,
    boss,
    config,
    log,
    http,
    guardActions,
    transitions,
    targets,
    poller: prefectInstall?.connector,
    claims: new ClaimBatcher({ pool, log, transitions }),
    outcomes: new OutcomeWriter(pool, transitions, log.child({ queue: QUEUES.dispatch })),
    metrics,
    stopping: stopping.signal,
  };
  // Loaded only where the api role runs: fastify and the admin page cost ~20 MB a worker-only pod need not pay.
  const api = hasRole(roles, 'api') ? await (await import('./api/server.ts')).buildApi(deps, { databaseUrl: options.databaseUrl, reads }) : undefined;
  let workerIds: string[] = [];
  // Wake this pod's dispatch workers exactly at the fire times its tick materialised.
  let pools: JobPool[] = [];
  const wakePools = () => {
    for (const p of pools) p.wake();
  };
  const waker = new Waker(wakePools);
  // The maintenance loops (tick, sweeps, Prefect watch) and which of them this pod's roles run.
  const maintenance = new Maintainer({ pool, boss, log, metrics, waker, transitions, prefect: prefectInstall?.connector }, config, roles);
  const { scheduler, lateSweeper, healthSweeper, retentionSweeper, prefectWatcher } = maintenance.loops;
  const prefect = prefectInstall && prefectWatcher ? { ...prefectInstall, watcher: prefectWatcher } : undefined;
  // New dispatch jobs (manual triggers, API) NOTIFY on commit: wake this pod's pools at once.
  // Under PgBouncer in transaction mode LISTEN needs FLOWWARDEN_DIRECT_URL; without it the pools poll.
  const wakeUrl = listenUrl(config, options.databaseUrl);
  const listener = wakeUrl ? new Listener(wakeUrl, DISPATCH_CHANNEL, wakePools, log) : undefined;
  let stopped = false;

  const app: App = {
    config,
    log,
    pool,
    reads,
    budget,
    boss,
    deps,
    scheduler,
    lateSweeper,
    healthSweeper,
    retentionSweeper,
    prefect,
    api,
    address: undefined,
    async start() {
      if (hasRole(roles, 'worker')) {
        workerIds = await startWorkers(deps, WORKERS, { inflight });
        pools = startPools(deps, WORKERS, { inflight });
        await listener?.start();
      }
      maintenance.start();
      if (api) {
        app.address = await api.listen({ port: config.port, host: config.host }).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES' && err.code !== 'EADDRNOTAVAIL') throw err;
          const why = err.code === 'EADDRINUSE' ? 'is already in use (another flowwarden or program listens there)'
            : err.code === 'EACCES' ? 'needs privileges this user lacks' : 'is not an address of this machine';
          throw new UserInputError(
            `the API cannot listen on ${config.host}:${config.port}: that ${err.code === 'EADDRNOTAVAIL' ? 'host' : 'port'} ${why} (${err.code}); ` +
              (err.code === 'EADDRNOTAVAIL' ? 'set FLOWWARDEN_HOST to one of its addresses, e.g. 0.0.0.0' : 'set FLOWWARDEN_PORT to a free port, e.g. FLOWWARDEN_PORT=8081'),
          );
        });
        log.info({ address: app.address }, 'api listening');
      }
      log.info({ roles, workers: workerIds.length, poolMode: config.poolMode, connections: budget, replica: Boolean(readPool), listen: Boolean(listener) }, 'flowwarden started');
    },
    async stop(stopOptions = {}) {
      if (stopped) return;
      stopped = true;
      const timeoutMs = stopOptions.timeoutMs ?? config.drainTimeoutSeconds * 1000;
      // /readyz answers 503 from here on, so load balancers stop sending API traffic during the drain.
      stopping.abort();
      metrics.setDraining(true);
      // The dispatch pools stop fetching at once (their drain deadline starts now), before the
      // loops below are awaited: nothing is claimed once 'draining' is logged.
      const poolsDrained = Promise.all(pools.map((p) => p.stop(timeoutMs)));
      log.info({ timeoutMs }, 'draining: no new work is claimed');
      await maintenance.stop();
      waker.stop();
      await listener?.stop();
      // One deadline for everything, in parallel: the dispatch pools and pg-boss's own workers stop
      // fetching at once, let in-flight jobs finish until the deadline, then fail what is left for
      // retry (handed back: another pod takes it after the retry delay, not after expiry) and abort
      // its signal. pg-boss's connections stay open until the pools have recorded their hand-backs.
      const inFlightAtDrain = inflight.size;
      await Promise.all([
        poolsDrained,
        boss.stop({ graceful: true, timeout: Math.max(timeoutMs, 1000), close: false }),
      ]);
      // Aborted handlers get a moment to record their outcome (dispatch puts an aborted function run
      // back to PENDING/AwaitingRetry for the retried job) before the pools close; handlers that
      // ignore their signal are abandoned (settled CRASHED on redelivery).
      const abandoned = (await inflight.settled(ABORT_GRACE_MS)) ? 0 : inflight.size;
      const handedBack = inflight.aborted + abandoned;
      if (handedBack > 0) {
        log.warn({ handedBack, abandoned, timeoutMs }, 'drain deadline reached: in-flight jobs handed back to the queue for retry');
      }
      await boss.stop({ close: true });
      if (api) await api.close();
      await pool.end();
      await readPool?.end();
      unwatchTransitions();
      log.info({ inFlightAtDrain, handedBack }, 'stopped');
    },
  };
  if (options.autoStart !== false) await app.start();
  return app;
}
