/** `flowwarden migrate`: apply the domain and queue migrations. */
import { migrateAll } from '../db/migrate.ts';
import { migrationUrl } from '../db/topology.ts';
import { withDb, type Base } from './context.ts';
import { print } from './output.ts';

export async function run(base: Base): Promise<void> {
  await withDb(base, async (c) => {
    await migrateAll(c.db.embedded ? c.db.url : migrationUrl(c.config, c.db.url), { jobRetentionSeconds: c.config.retention.jobSeconds });
    print('migrations applied\n');
  });
}
