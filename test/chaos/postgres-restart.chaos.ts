/**
 * Chaos 2 — Postgres restarted mid-load. The scenario owns an embedded Postgres server; three pods
 * run CHAOS_PG_SCHEDULES (default 200) schedules every second against it. During the chaos phase
 * Postgres is stopped (fast shutdown: every session cut, open transactions rolled back) for
 * CHAOS_PG_DOWN_SECONDS (default 5) and started again on the same port, once per 40 s of
 * CHAOS_SECONDS (at least once). While it is down every pod's /readyz must answer 503 (the pod is
 * alive, the database is not); after it is back every pod must report 200 again without a restart.
 * Then the same run invariants as the pod-kill scenario (docs/chaos.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { startBoss } from '../../src/queue/boss.ts';
import {
  CHAOS_SECONDS, type Pod, startRecordingPods, drain, fireLag, fireProblems, invocationProblems, log, lostDispatches, ownedPostgres,
  pollUntil, printSummary, scenarioDatabase, setSchedulesEnabled, sleep, staleActiveJobsOfTerminalRuns, stateCounts,
  summarise, workDir,
} from './support.ts';

const SCENARIO = 'postgres-restart';
const SCHEDULES = Number(process.env.CHAOS_PG_SCHEDULES ?? 200);
const DOWN_SECONDS = Number(process.env.CHAOS_PG_DOWN_SECONDS ?? 5);
const PODS = 3;

test('Postgres restart: pods report not-ready while it is down, recover by themselves, and nothing is lost or run twice', { timeout: (CHAOS_SECONDS + 600) * 1000 }, async () => {
  const dir = workDir(SCENARIO);
  const invocations = path.join(dir, 'invocations.log');
  const pgLog = fs.createWriteStream(path.join(dir, 'postgres.log'));
  const server = await ownedPostgres((line) => pgLog.write(line));
  const db = await scenarioDatabase('pgrestart', server.adminUrl);
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  // While Postgres is down, idle clients error out; the pool replaces them once it is back.
  pool.on('error', () => {});
  const pods: Pod[] = [];
  let boss: Awaited<ReturnType<typeof startBoss>> | undefined;
  let ok = false;
  try {
    const { enabledAt, enabledMs } = await startRecordingPods(pool, pods, { databaseUrl: db.url, dir, invocations, flowCount: 4, scheduleCount: SCHEDULES, podCount: PODS });
    const outages = Math.max(1, Math.floor(CHAOS_SECONDS / 40));
    log(SCENARIO, `${SCHEDULES} schedules every 1 s on ${PODS} pods; ${outages} outage(s) of ${DOWN_SECONDS} s within ${CHAOS_SECONDS} s (logs in ${dir})`);

    const until = Date.now() + CHAOS_SECONDS * 1000;
    const slot = (CHAOS_SECONDS * 1000) / outages;
    const recoveries: number[] = [];
    const lostDuringChaos: string[] = [];
    for (let o = 0; o < outages; o++) {
      // Each outage in the middle third of its slot, so the pods are loaded before and after it.
      await sleep(Math.max(0, enabledMs + o * slot + slot / 3 - Date.now()));
      await server.stop();
      const downAt = Date.now();
      log(SCENARIO, `outage ${o + 1}: Postgres stopped`);
      // Not ready while the database is gone: every pod answers 503 (alive, so not 0).
      await pollUntil(async () => (await Promise.all(pods.map((p) => p.readyz()))).every((s) => s === 503), {
        timeoutMs: DOWN_SECONDS * 1000 + 10_000,
        what: 'every pod /readyz 503 while Postgres is down',
        intervalMs: 200,
        describe: async () => `readyz: ${(await Promise.all(pods.map((p) => p.readyz()))).join(', ')}`,
      });
      await sleep(Math.max(0, downAt + DOWN_SECONDS * 1000 - Date.now()));
      await server.start();
      const upAt = Date.now();
      log(SCENARIO, `outage ${o + 1}: Postgres back after ${((upAt - downAt) / 1000).toFixed(1)} s`);
      await pollUntil(async () => (await Promise.all(pods.map((p) => p.readyz()))).every((s) => s === 200), {
        timeoutMs: 60_000,
        what: 'every pod /readyz 200 after Postgres is back',
        intervalMs: 200,
        describe: async () => `readyz: ${(await Promise.all(pods.map((p) => p.readyz()))).join(', ')}\n${pods.map((p) => `${p.name}:\n${(p.logFile && fs.existsSync(p.logFile) ? fs.readFileSync(p.logFile, 'utf8') : '').slice(-1500)}`).join('\n')}`,
      });
      recoveries.push((Date.now() - upAt) / 1000);
      const lost = await pollUntil(async () => lostDispatches(pool), { timeoutMs: 10_000, what: 'the test pool to reconnect' });
      lostDuringChaos.push(...lost.map((l) => `${l.id} ${l.state} job=${l.job}`));
    }
    await sleep(Math.max(0, until - Date.now()));
    const backlog = await stateCounts(pool);
    const disabledAt = await setSchedulesEnabled(pool, false);
    log(SCENARIO, `schedules off at ${disabledAt.toISOString()}; ${backlog.total} runs, ${backlog.nonTerminal} unfinished; draining`);

    boss = await startBoss({ connectionString: db.url, role: 'producer' });
    const drained = await drain(pool, boss, { timeoutMs: Math.max(180_000, backlog.nonTerminal * 50), staleSeconds: 20, scenario: SCENARIO });

    const counts = await stateCounts(pool);
    const fires = await fireProblems(pool, { enabledAt, disabledAt, everySeconds: 1 });
    const inv = await invocationProblems(pool, invocations);
    const lag = await fireLag(pool);
    const leftovers = await staleActiveJobsOfTerminalRuns(pool, 20);
    printSummary(SCENARIO, {
      schedules: fires.schedules,
      pods: PODS,
      'chaos seconds': CHAOS_SECONDS,
      'postgres restarts': `${outages} × ${DOWN_SECONDS} s down`,
      'readyz 200 again after': recoveries.map((s) => `${s.toFixed(1)} s`).join(', '),
      'pod restarts': pods.reduce((a, p) => a + p.starts - 1, 0),
      runs: counts.total,
      states: counts.byState,
      'handler invocations': inv.invocations,
      'crashed (invoked)': `${inv.crashed} (${inv.crashedInvoked})`,
      'orphaned by outage': `${drained.orphans.length} (${summarise(drained.orphans.map((o) => o.state))})`,
      'stale jobs, run done': leftovers,
      'fire lag s': `max ${lag.max.toFixed(2)}, p99 ${lag.p99.toFixed(2)}, p50 ${lag.p50.toFixed(2)}`,
      'drain seconds': drained.seconds.toFixed(1),
    });

    for (const p of pods) assert.deepEqual(p.unexpectedExits, [], `pod ${p.name} exited while Postgres was restarted`);
    assert.deepEqual(lostDuringChaos, [], 'an unfinished run had no live dispatch job after the restart');
    assert.deepEqual(fires.problems, [], 'each schedule has exactly one run per fire time, none missing');
    assert.deepEqual(inv.problems, [], 'handler invocations');
    assert.equal(counts.nonTerminal, 0, 'every run is terminal after the drain');
    const unexpectedStates = Object.keys(counts.byState).filter((s) => !['COMPLETED/Completed', 'CRASHED/Crashed'].includes(s));
    assert.deepEqual(unexpectedStates, [], 'runs end COMPLETED, or CRASHED when the outage cut a handler off from recording its outcome');
    ok = true;
  } finally {
    for (const p of pods) await p.stop();
    await boss?.stop({ graceful: false }).catch(() => {});
    await pool.end();
    await server.destroy();
    pgLog.end();
    if (ok) fs.rmSync(dir, { recursive: true, force: true });
    else log(SCENARIO, `kept pod and Postgres logs in ${dir}`);
  }
});
