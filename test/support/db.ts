/**
 * Per-test-file databases: a clone of the migrated template `test/run.ts` built. Cloning is a file
 * copy inside Postgres, so every file starts from a fresh, migrated database in milliseconds.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = process.env.FW_TEST_ADMIN_URL;
  const template = process.env.FW_TEST_TEMPLATE;
  if (!adminUrl || !template) throw new Error('run tests with `npm test` (it prepares Postgres and the template database)');
  const name = `fw_test_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    // CREATE DATABASE ... TEMPLATE fails if another session is connected to the template at that
    // instant (several files start at once): retry briefly.
    for (let i = 0; ; i++) {
      try {
        await admin.query(`create database ${name} template ${template}`);
        break;
      } catch (err) {
        if (i >= 50 || (err as { code?: string }).code !== '55006') throw err;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`).catch(() => {});
      await c.end();
    },
  };
}
