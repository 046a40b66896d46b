/**
 * Notification wiring at app start (called from src/app.ts once the queues exist):
 * 1. upsert the channels from FLOWWARDEN_NOTIFY_URLS (idempotent, safe from many pods at once);
 * 2. subscribe the fw.events queue to every event, so publish() fans each event into it;
 * 3. worker pods only: re-send the notify job of every channel with work left over (a pod died
 *    mid-delivery, a job ran out of retries, a producer's long transaction committed after the
 *    debounced job had run).
 */
import type { PgBoss } from 'pg-boss';
import type { Queryable } from '../db/client.ts';
import type { Logger } from '../log.ts';
import { EVENTS, QUEUES } from '../queue/catalog.ts';
import { ensureConfiguredChannels, kickPendingNotifications } from './operations.ts';

export async function setupNotifications(
  boss: PgBoss,
  db: Queryable,
  options: { notifyUrls: readonly string[]; log: Logger; kick: boolean },
): Promise<void> {
  const channels = await ensureConfiguredChannels(db, options.notifyUrls);
  for (const event of Object.values(EVENTS)) await boss.subscribe(event, QUEUES.events);
  const kicked = options.kick ? await kickPendingNotifications(boss, db) : 0;
  if (channels.length > 0 || kicked > 0) {
    // Names and kinds only: URLs are secrets.
    options.log.info({ channels: channels.map((c) => `${c.name} (${c.kind})`), resumed: kicked }, 'notification channels ready');
  }
}
