import { PgBoss } from 'pg-boss';
import { BOSS_SCHEMA } from './catalog.ts';
import type { Logger } from '../log.ts';
import { CONNECT_TIMEOUT_MS } from '../db/client.ts';

export interface BossOptions {
  connectionString: string;
  /** Workers and the scheduler: LISTEN/NOTIFY wake-ups and maintenance. Producers: neither. */
  role: 'worker' | 'producer';
  max?: number;
  log?: Logger;
}

/** A started pg-boss over flowwarden's queue schema. Its errors are logged, never thrown at us. */
export async function startBoss(options: BossOptions): Promise<PgBoss> {
  const worker = options.role === 'worker';
  const boss = new PgBoss({
    connectionString: options.connectionString,
    schema: BOSS_SCHEMA,
    application_name: `flowwarden-${options.role}`,
    max: options.max ?? (worker ? 10 : 3),
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    schedule: false,
    supervise: worker,
    migrate: true,
    useListenNotify: worker,
    // The supervisor fails jobs with stale heartbeats (a dead pod's dispatches): check every 10 s.
    ...(worker ? { monitorIntervalSeconds: 10 } : {}),
  });
  boss.on('error', (err) => options.log?.error({ err }, 'pg-boss error'));
  boss.on('warning', (w) => options.log?.warn({ warning: w }, 'pg-boss warning'));
  await boss.start();
  return boss;
}
