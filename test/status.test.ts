import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { runCli } from './support/cli.ts';
import { formatWindow } from '../src/cli/status.ts';
import { QUEUES } from '../src/queue/catalog.ts';
import pg from 'pg';
import { migrateForPod } from '../src/db/topology.ts';
import { loadConfig } from '../src/config.ts';

let db: TestDatabase;

before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db.drop();
});

/** Every flowwarden queue keeps finished jobs for `seconds` (pg-boss deletion_seconds). */
async function assertQueueRetention(seconds: number): Promise<void> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const { rows } = await c.query<{ name: string; deleteAfterSeconds: number }>(
      `select name, deletion_seconds as "deleteAfterSeconds" from flowwarden_queue.queue where name = any($1) order by name`, [Object.values(QUEUES)],
    );
    assert.equal(rows.length, Object.values(QUEUES).length, 'every flowwarden queue exists');
    for (const q of rows) assert.equal(q.deleteAfterSeconds, seconds, q.name);
  } finally {
    await c.end();
  }
}

describe('flowwarden status', () => {
  test('shows the retention settings in force and the size of every table', async () => {
    const env = { DATABASE_URL: db.url, FLOWWARDEN_RUN_RETENTION_SECONDS: '3600', FLOWWARDEN_JOB_RETENTION_SECONDS: '86400' };
    const json = await runCli(['status', '--json'], env);
    assert.equal(json.code, 0, json.stderr);
    const out = JSON.parse(json.stdout) as { retention: Record<string, unknown>; databaseBytes: number; tables: Array<{ table: string; totalBytes: number }> };
    assert.equal(out.retention.runSeconds, 3600);
    assert.equal(out.retention.jobSeconds, 86400);
    assert.equal(out.retention.notifySeconds, 7 * 86400, 'the default');
    assert.ok(out.databaseBytes > 0);
    for (const t of ['flowwarden.runs', 'flowwarden.run_state_history', 'flowwarden.disabled_flows', 'flowwarden_queue.job']) {
      assert.ok(out.tables.some((x) => x.table === t && x.totalBytes > 0), `${t} listed`);
    }
    const text = await runCli(['status'], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /finished runs kept\s+1h\s+FLOWWARDEN_RUN_RETENTION_SECONDS/);
    assert.match(text.stdout, /flowwarden\.runs\s+~?-?\S+\s+\d/);
  });

  test('flowwarden migrate keeps the configured job retention on every queue (it used to put the defaults back)', async () => {
    const res = await runCli(['migrate'], { DATABASE_URL: db.url, FLOWWARDEN_JOB_RETENTION_SECONDS: '7200' });
    assert.equal(res.code, 0, res.stderr);
    await assertQueueRetention(7200);
  });

  test("a pod's start-up migration writes the configured job retention into every queue too", async () => {
    await migrateForPod(loadConfig({ FLOWWARDEN_JOB_RETENTION_SECONDS: '3600' }), db.url);
    await assertQueueRetention(3600);
  });

  test('a bad retention setting is refused naming the variable', async () => {
    const res = await runCli(['status'], { DATABASE_URL: db.url, FLOWWARDEN_RETENTION_BATCH_SIZE: '10' });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /FLOWWARDEN_RETENTION_BATCH_SIZE/);
  });

  test('windows print in days, hours and minutes; 0 is forever', () => {
    assert.equal(formatWindow(0), 'forever');
    assert.equal(formatWindow(7 * 86400), '7d');
    assert.equal(formatWindow(5400), '1h30m');
    assert.equal(formatWindow(undefined), 'per queue');
  });
});
