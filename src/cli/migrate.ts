/** `flowwarden migrate`: apply the domain and queue migrations. */
import { migrateAll } from '../db/migrate.ts';
import { withDb, type Base } from './context.ts';
import { print } from './output.ts';

export async function run(base: Base): Promise<void> {
  await withDb(base, async (c) => {
    await migrateAll(c.db.url);
    print('migrations applied\n');
  });
}
