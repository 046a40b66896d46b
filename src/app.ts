/**
 * One flowwarden process: components with start/stop, wired in one place.
 *
 * Roles: `scheduler` (the tick and the guard's maintenance loops: late sweep, health sweep/enforce),
 * `worker` (queue consumers, incl. health evaluation), `api` (HTTP), `all` (everything).
 * Every pod may run every role; nothing here assumes a leader.
 *
 * Shutdown (stop): first stop claiming (scheduler tick, pg-boss fetch loops), then let in-flight
 * jobs finish up to the drain deadline; pg-boss hands back (fails for retry) whatever is still
 * active at the deadline, so nothing stays stuck "active" until its expiry. Then the API and pools.
 */
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { createPool } from './db/client.ts';
import { migrateAll } from './db/migrate.ts';
import { startBoss } from './queue/boss.ts';
import { Scheduler } from './scheduling/tick.ts';
import { Waker } from './scheduling/waker.ts';
import { ensureQueues, startWorkers, WORKERS } from './workers/index.ts';
import type { WorkerDeps } from './workers/types.ts';
import { defaultRegistry, type HandlerRegistry } from './targets/function.ts';
import { createHttp } from './http.ts';
import { buildApi } from './api/server.ts';
import { GuardActionRegistry } from './guard/actions.ts';
import { setupNotifications } from './notify/setup.ts';
import { LateSweeper } from './guard/late.ts';
import { HealthSweeper, installGuardHooks } from './guard/health.ts';

export type Role = 'all' | 'scheduler' | 'worker' | 'api';

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
}

export interface App {
  config: Config;
  log: Logger;
  pool: pg.Pool;
  boss: PgBoss;
  deps: WorkerDeps;
  scheduler: Scheduler;
  /** Marks runs Late (scheduler role). */
  lateSweeper: LateSweeper;
  /** Enforces holds and requests health evaluations (scheduler role). */
  healthSweeper: HealthSweeper;
  api: FastifyInstance | undefined;
  /** The API's address once listening. */
  address: string | undefined;
  start(): Promise<void>;
  stop(options?: { timeoutMs?: number }): Promise<void>;
}

function has(roles: Role[], role: Exclude<Role, 'all'>): boolean {
  return roles.includes('all') || roles.includes(role);
}

export async function createApp(options: AppOptions): Promise<App> {
  const { config, log } = options;
  const roles = options.roles ?? ['all'];
  if (options.migrate !== false) await migrateAll(options.databaseUrl);
  const pool = createPool(options.databaseUrl, { max: Math.max(10, config.concurrency + 5) });
  const boss = await startBoss({ connectionString: options.databaseUrl, role: 'worker', log, max: Math.max(10, config.concurrency + 2) });
  await ensureQueues(boss);
  // Channels from FLOWWARDEN_NOTIFY_URLS, events → fw.events, resume leftover deliveries (docs/notifications.md).
  await setupNotifications(boss, pool, { notifyUrls: config.notifyUrls, log, kick: has(roles, 'worker') });
  const deps: WorkerDeps = {
    pool,
    boss,
    config,
    log,
    http: createHttp({ timeoutMs: config.httpTimeoutMs }),
    registry: options.registry ?? defaultRegistry,
    guardActions: new GuardActionRegistry(),
    extensions: new Map(),
  };
  const scheduler = new Scheduler(pool, boss, config, log);
  const lateSweeper = new LateSweeper(pool, boss, config, log);
  const healthSweeper = new HealthSweeper(deps);
  // Every failed run (whatever role reports it) requests a debounced health evaluation.
  installGuardHooks(log);
  const api = has(roles, 'api') ? await buildApi(deps, { databaseUrl: options.databaseUrl }) : undefined;
  let workerIds: string[] = [];
  // Wake this pod's dispatch workers exactly at the fire times its tick materialised.
  const waker = new Waker(() => {
    for (const id of dispatchWorkerIds) boss.notifyWorker(id);
  });
  let dispatchWorkerIds: string[] = [];
  if (has(roles, 'worker')) {
    scheduler.onCreated = (runs) => waker.schedule(runs.map((r) => r.scheduledFor));
    scheduler.onClockOffset = (offset) => (waker.offsetMs = offset);
  }
  let stopped = false;

  const app: App = {
    config,
    log,
    pool,
    boss,
    deps,
    scheduler,
    lateSweeper,
    healthSweeper,
    api,
    address: undefined,
    async start() {
      if (has(roles, 'worker')) {
        workerIds = await startWorkers(deps, WORKERS);
        dispatchWorkerIds = workerIds.slice(0, 1);
      }
      if (has(roles, 'scheduler')) {
        scheduler.start();
        lateSweeper.start();
        healthSweeper.start();
      }
      if (api) {
        app.address = await api.listen({ port: config.port, host: config.host });
        log.info({ address: app.address }, 'api listening');
      }
      log.info({ roles, workers: workerIds.length }, 'flowwarden started');
    },
    async stop(stopOptions = {}) {
      if (stopped) return;
      stopped = true;
      const timeoutMs = stopOptions.timeoutMs ?? config.drainTimeoutSeconds * 1000;
      log.info({ timeoutMs }, 'draining: no new work is claimed');
      await scheduler.stop();
      await lateSweeper.stop();
      await healthSweeper.stop();
      waker.stop();
      // pg-boss stops fetching first, waits for handlers up to the deadline, then fails what is left
      // so it is retried by another pod instead of sitting active until expiry.
      await boss.stop({ graceful: true, timeout: Math.max(timeoutMs, 1000), close: true });
      if (api) await api.close();
      await pool.end();
      log.info('stopped');
    },
  };
  if (options.autoStart !== false) await app.start();
  return app;
}
