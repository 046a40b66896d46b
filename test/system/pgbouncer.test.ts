/**
 * flowwarden through a real PgBouncer (Debian's 1.18: no prepared-statement support) in
 * transaction pooling mode with a small pool, FLOWWARDEN_POOL_MODE=transaction.
 *
 * - exactly once: three `flowwarden start` pods (two polling, one with FLOWWARDEN_DIRECT_URL for
 *   LISTEN), per-second schedules, one pod SIGKILLed and restarted: one run per fire time, none
 *   missing, no handler invoked twice;
 * - in one pod: manual runs dispatched to completion, the guard disabling a failing flow, and its
 *   flow.disabled notification delivered exactly once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { startBoss } from '../../src/queue/boss.ts';
import { createApp, type App } from '../../src/app.ts';
import { withTransaction } from '../../src/db/client.ts';
import { triggerRunTx } from '../../src/runs/operations.ts';
import { upsertFlowTx } from '../../src/flows/operations.ts';
import { upsertChannel } from '../../src/notify/operations.ts';
import { HandlerRegistry, registerBuiltins } from '../../src/targets/function.ts';
import { BOSS_SCHEMA, QUEUES } from '../../src/queue/catalog.ts';
import pino from 'pino';
import { Pod, createFlows, drain, fireProblems, invocationProblems, lostDispatches, setSchedulesEnabled, stateCounts, workDir } from '../chaos/support.ts';
import { testConfig, waitFor } from '../support/app.ts';
import { startFakeWebhook } from '../support/fake-chat.ts';
import { createDatabase, startPgBouncer, startPrimary, type PgBouncer, type PgServer } from './servers.ts';

const POOL_SIZE = 6;
let primary: PgServer;
let bouncer: PgBouncer;

before(async () => {
  primary = await startPrimary();
  bouncer = await startPgBouncer(primary, { poolSize: POOL_SIZE });
});

after(async () => {
  await bouncer?.stop();
  await primary?.stop();
});

async function completedCount(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(`select count(*)::int as n from flowwarden.runs where state_type = 'COMPLETED'`);
  return rows[0]!.n;
}

describe('PgBouncer, transaction pooling', () => {
  test('three pods, per-second schedules, a pod killed and restarted: every fire runs exactly once', { timeout: 300_000 }, async () => {
    await createDatabase(primary, 'fw_once');
    const direct = primary.url('fw_once');
    const pool = new pg.Pool({ connectionString: direct, max: 3 });
    const boss = await startBoss({ connectionString: direct, role: 'producer' });
    const dir = workDir('pgbouncer');
    const invocations = path.join(dir, 'invocations.log');
    const pods: Pod[] = [];
    try {
      await createFlows(pool, {
        prefix: 'pb', flowCount: 4, scheduleCount: 20, everySeconds: 1,
        target: { type: 'function', handler: 'chaos-record' }, parameters: { invocations, maxSleepMs: 20 }, enabled: false,
      });
      const env = { FLOWWARDEN_POOL_MODE: 'transaction', FLOWWARDEN_MAX_CONNECTIONS: '12' };
      pods.push(await Pod.create({ name: 'poll0', databaseUrl: bouncer.url('fw_once'), logDir: dir, env }));
      pods.push(await Pod.create({ name: 'poll1', databaseUrl: bouncer.url('fw_once'), logDir: dir, env }));
      pods.push(await Pod.create({ name: 'listen', databaseUrl: bouncer.url('fw_once'), logDir: dir, env: { ...env, FLOWWARDEN_DIRECT_URL: direct } }));
      for (const p of pods) p.start();
      for (const p of pods) await p.waitReady();
      const enabledAt = await setSchedulesEnabled(pool, true);

      await waitFor(async () => (await completedCount(pool)) >= 60, { timeoutMs: 120_000, what: '60 runs completed before the kill' });
      await pods[0]!.kill('SIGKILL');
      pods[0]!.start();
      await pods[0]!.waitReady();
      const afterRestart = await completedCount(pool);
      await waitFor(async () => (await completedCount(pool)) >= afterRestart + 60, { timeoutMs: 120_000, what: '60 more runs completed after the restart' });
      const lost = await lostDispatches(pool);
      const disabledAt = await setSchedulesEnabled(pool, false);
      await drain(pool, boss, { timeoutMs: 180_000, staleSeconds: 20, scenario: 'pgbouncer' });

      assert.deepEqual(lost, [], 'every unfinished run had a live dispatch job');
      const fires = await fireProblems(pool, { enabledAt, disabledAt, everySeconds: 1 });
      assert.deepEqual(fires.problems, [], 'one run per fire time per schedule, none missing');
      const inv = await invocationProblems(pool, invocations);
      assert.deepEqual(inv.problems, [], 'no handler invoked twice');
      const counts = await stateCounts(pool);
      assert.equal(counts.nonTerminal, 0);
      const unexpected = Object.keys(counts.byState).filter((s) => !['COMPLETED/Completed', 'CRASHED/Crashed'].includes(s));
      assert.deepEqual(unexpected, [], 'runs end COMPLETED, or CRASHED when the kill interrupted the handler');
      for (const p of pods) assert.deepEqual(p.unexpectedExits, [], `pod ${p.name} exited on its own (log: ${p.logFile})`);
      // PgBouncer multiplexed the pods' clients over its small pool, in transaction mode.
      const pools = await bouncer.admin<{ database: string; pool_mode: string }>('SHOW POOLS');
      assert.equal(pools.find((p) => p.database === 'fw_once')?.pool_mode, 'transaction');
      fs.rmSync(dir, { recursive: true, force: true });
    } finally {
      for (const p of pods) await p.stop();
      await boss.stop({ graceful: false }).catch(() => {});
      await pool.end();
    }
  });

  test('a pod left in session mode detects the pooler, says to set the mode, and sends its statements unnamed from then on', { timeout: 120_000 }, async () => {
    await createDatabase(primary, 'fw_wrong');
    const lines: string[] = [];
    const registry = new HandlerRegistry();
    registerBuiltins(registry);
    // FLOWWARDEN_DIRECT_URL for migrations; DATABASE_URL through PgBouncer, but the mode not set.
    const pod = await createApp({
      config: testConfig({ directUrl: primary.url('fw_wrong') }),
      log: pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) }),
      databaseUrl: bouncer.url('fw_wrong'),
      registry,
    });
    const direct = new pg.Pool({ connectionString: primary.url('fw_wrong'), max: 2 });
    try {
      await withTransaction(pod.pool, (tx) => upsertFlowTx(tx, { name: 'wrong', target: { type: 'function', handler: 'noop' } }));
      for (let i = 0; i < 60; i++) await withTransaction(pod.pool, (tx) => triggerRunTx(pod.boss, tx, 'wrong', { i }, { origin: 'manual' }));
      await waitFor(async () => (await direct.query<{ n: number }>(`select count(*)::int as n from flowwarden.runs where state_type = 'COMPLETED'`)).rows[0]!.n === 60, { timeoutMs: 90_000, what: '60 runs completed' });
      const detected = lines.filter((l) => l.includes('set FLOWWARDEN_POOL_MODE=transaction'));
      assert.ok(detected.length >= 1 && detected.length <= 2, `logged once per pool (flowwarden's, pg-boss's): ${lines.join('')}`);
    } finally {
      await pod.stop({ timeoutMs: 1000 });
      await direct.end();
    }
  });

  describe('one pod', () => {
    let app: App;
    let direct: pg.Pool;
    // Warnings and errors the pod logs: a named statement or a session feature used through
    // transaction pooling shows up here (the work may still finish, through retries).
    const problems: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void problems.push(line) });
    before(async () => {
      await createDatabase(primary, 'fw_pod');
      direct = new pg.Pool({ connectionString: primary.url('fw_pod'), max: 2 });
      const registry = new HandlerRegistry();
      registerBuiltins(registry);
      // No FLOWWARDEN_DIRECT_URL: no LISTEN anywhere, every wake-up is a poll; migrations were run directly.
      app = await createApp({
        config: testConfig({ poolMode: 'transaction', maxConsecutiveFailures: 2, maxConnections: 12 }),
        log,
        databaseUrl: bouncer.url('fw_pod'),
        registry,
      });
    });
    after(async () => {
      await app?.stop({ timeoutMs: 1000 });
      await direct?.end();
    });

    test('a pod in transaction mode opens no LISTEN session', async () => {
      await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'pb-probe', target: { type: 'function', handler: 'noop' } }));
      const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, 'pb-probe', {}, { origin: 'manual' }));
      await waitFor(async () => (await direct.query(`select 1 from flowwarden.runs where id = $1 and state_type = 'COMPLETED'`, [runId])).rowCount === 1, { what: 'the probe run completed' });
      const { rows } = await direct.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where datname = 'fw_pod' and query ilike 'listen%'`);
      assert.equal(rows[0]!.n, 0, 'no session is LISTENing');
      assert.equal(app.budget.listen + app.budget.bossListen, 0);
    });

    test('manual runs are dispatched to completion', async () => {
      await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'pb-ok', target: { type: 'function', handler: 'noop' } }));
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) ids.push((await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, 'pb-ok', { i }, { origin: 'manual' }))).runId);
      await waitFor(async () => {
        const { rows } = await direct.query<{ n: number }>(`select count(*)::int as n from flowwarden.runs where id = any($1::uuid[]) and state_type = 'COMPLETED'`, [ids]);
        return rows[0]!.n === ids.length;
      }, { timeoutMs: 60_000, what: '30 runs completed' });
    });

    test('the guard disables a failing flow and its notification is delivered exactly once', async () => {
      const hook = await startFakeWebhook();
      try {
        await upsertChannel(app.pool, { name: 'pb-hook', url: hook.url, events: ['flow.disabled'] });
        await withTransaction(app.pool, (tx) => upsertFlowTx(tx, { name: 'pb-bad', target: { type: 'function', handler: 'fail' }, health: { autoDisable: true } }));
        for (let i = 0; i < 2; i++) await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, 'pb-bad', {}, { origin: 'manual' }));
        await waitFor(async () => (await direct.query(`select 1 from flowwarden.flows where name = 'pb-bad' and disabled_at is not null`)).rowCount === 1, { timeoutMs: 60_000, what: 'the guard to disable pb-bad' });
        await hook.waitForReceived(1, 60_000);
        // Every notify and event job settled: nothing further can be sent.
        await waitFor(async () => {
          const { rows } = await direct.query<{ n: number }>(
            `select count(*)::int as n from ${BOSS_SCHEMA}.job where name = any($1::text[]) and state::text in ('created', 'retry', 'active')`,
            [[QUEUES.notify, QUEUES.events]],
          );
          const pending = await direct.query(`select 1 from flowwarden.notification_events where message_id is null`);
          return rows[0]!.n === 0 && pending.rowCount === 0;
        }, { timeoutMs: 60_000, what: 'notify and event jobs to settle' });
        const disabled = hook.received.filter((r) => (r.body as { event?: string }).event === 'flow.disabled');
        assert.equal(disabled.length, 1, 'one flow.disabled message');
        assert.match((disabled[0]!.body as { text: string }).text, /pb-bad/);
        // The failing handler's runs are expected warnings; nothing else went wrong on the connections.
        const unexpected = problems.filter((l) => !/"msg":"run failed|flow disabled|guard/i.test(l));
        assert.deepEqual(unexpected, [], 'the pod logged no connection-level problems');
      } finally {
        await hook.close();
      }
    });
  });
});
