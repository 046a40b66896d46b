/**
 * The Prefect connector, wired into one process: the dispatch target and poller (createApp puts it
 * in deps.targets.prefect and deps.poller), the guard actions, and the watch importer. Installed when
 * PREFECT_API_URL is set, or when a Prefect client is injected (tests, `dev --prefect-fake`).
 */
import type { WorkerDeps } from '../workers/types.ts';
import { createPrefectClient, type PrefectClient } from '../targets/prefect-client.ts';
import { createPrefectConnector, type PrefectConnector } from './connector.ts';
import { prefectGuardActions } from './guard.ts';
import { PrefectWatcher, type WatchOptions } from './watch.ts';

export interface PrefectInstall {
  client: PrefectClient;
  connector: PrefectConnector;
  watcher: PrefectWatcher;
}

export interface InstallPrefectOptions {
  client?: PrefectClient;
  watch?: WatchOptions;
  maxInlineWaitMs?: number;
}

export type PrefectBase = Pick<WorkerDeps, 'pool' | 'boss' | 'config' | 'log' | 'http' | 'guardActions' | 'transitions'>;

export function installPrefect(deps: PrefectBase, options: InstallPrefectOptions = {}): PrefectInstall | undefined {
  const p = deps.config.prefect;
  if (!options.client && !p.apiUrl) return undefined;
  const client =
    options.client ??
    createPrefectClient({
      apiUrl: p.apiUrl!,
      ...(p.apiKey ? { apiKey: p.apiKey } : {}),
      ...(p.authString ? { authString: p.authString } : {}),
      ...(p.csrf !== undefined ? { csrf: p.csrf } : {}),
      ...(p.pageSize !== undefined ? { pageSize: p.pageSize } : {}),
      http: deps.http,
    });
  const log = deps.log.child({ component: 'prefect' });
  const connector = createPrefectConnector({
    client,
    config: deps.config,
    log,
    ...(options.maxInlineWaitMs !== undefined ? { maxInlineWaitMs: options.maxInlineWaitMs } : {}),
  });
  deps.guardActions.register(prefectGuardActions(connector, { pool: deps.pool, log, transitions: deps.transitions }));
  // Environment settings first, then what the caller (tests) passes.
  const fromConfig: WatchOptions = {
    ...(p.pageSize !== undefined ? { pageSize: p.pageSize } : {}),
    ...(p.watchIntervalSeconds !== undefined ? { intervalMs: Math.round(p.watchIntervalSeconds * 1000) } : {}),
    ...(p.watchLookbackSeconds !== undefined ? { lookbackSeconds: p.watchLookbackSeconds } : {}),
    ...(p.taskGraceSeconds !== undefined ? { taskGraceSeconds: p.taskGraceSeconds } : {}),
  };
  const watcher = new PrefectWatcher({ pool: deps.pool, boss: deps.boss, transitions: deps.transitions, log }, connector, {
    ...fromConfig,
    ...Object.fromEntries(Object.entries(options.watch ?? {}).filter(([, v]) => v !== undefined)),
  });
  log.info({ api: client.apiUrl }, 'Prefect connector installed');
  return { client, connector, watcher };
}

export { createPrefectConnector, PrefectWatcher, prefectGuardActions };
export type { PrefectConnector, WatchOptions };
