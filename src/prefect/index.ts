/**
 * The Prefect connector, wired into one process: the dispatch target and poller (createApp puts it
 * in deps.targets.prefect and deps.poller) and the guard actions. Installed when PREFECT_API_URL is
 * set, or when a Prefect client is injected (tests, `dev --prefect-fake`). The watch loop runs from
 * src/maintenance/index.ts.
 */
import type { WorkerDeps } from '../workers/types.ts';
import { createPrefectClient, type PrefectClient } from './client/index.ts';
import { createPrefectConnector, type PrefectConnector } from './connector.ts';
import { prefectGuardActions } from './guard.ts';

export interface PrefectInstall {
  client: PrefectClient;
  connector: PrefectConnector;
}

export interface InstallPrefectOptions {
  client?: PrefectClient;
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
  log.info({ api: client.apiUrl }, 'Prefect connector installed');
  return { client, connector };
}

export { createPrefectConnector, prefectGuardActions };
export type { PrefectConnector };
