/**
 * Chaos 1 — pod kills. Three real `flowwarden start` pods share one database with
 * CHAOS_SCHEDULES (default 1,000) schedules firing every second, function target (the
 * chaos-record handler: logs each invocation, sleeps 0–20 ms). Every 1–4 s a random pod gets
 * SIGKILL and is started again at once, so at least two pods are always up. Then the schedules are
 * switched off, the survivors drain, and the run invariants are checked (docs/chaos.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { startBoss } from '../../src/queue/boss.ts';
import {
  CHAOS_SECONDS, type Pod, startRecordingPods, drain, fireLag, fireProblems, invocationProblems, log, lostDispatches,
  printSummary, random, scenarioDatabase, scenarioSeed, setSchedulesEnabled, sleep, staleActiveJobsOfTerminalRuns,
  stateCounts, summarise, workDir,
} from './support.ts';

const SCENARIO = 'pod-kills';
const SCHEDULES = Number(process.env.CHAOS_SCHEDULES ?? 1000);
const PODS = 3;

test('pod kills: every fire runs exactly once, nothing is lost, killed handlers end CRASHED and never run twice', { timeout: (CHAOS_SECONDS * 12 + 600) * 1000 }, async () => {
  const seed = scenarioSeed();
  const rand = random(seed);
  const dir = workDir(SCENARIO);
  const invocations = path.join(dir, 'invocations.log');
  const db = await scenarioDatabase('podkills');
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  const boss = await startBoss({ connectionString: db.url, role: 'producer' });
  const pods: Pod[] = [];
  let ok = false;
  try {
    const { enabledAt, enabledMs } = await startRecordingPods(pool, pods, { databaseUrl: db.url, dir, invocations, flowCount: 10, scheduleCount: SCHEDULES, podCount: PODS });
    log(SCENARIO, `seed ${seed}; ${SCHEDULES} schedules every 1 s on ${PODS} pods; killing pods for ${CHAOS_SECONDS} s (logs in ${dir})`);

    const kills: string[] = [];
    const lostDuringChaos: string[] = [];
    const until = Date.now() + CHAOS_SECONDS * 1000;
    while (Date.now() < until) {
      await sleep(1000 + rand() * 3000);
      if (Date.now() >= until) break;
      const victim = pods[Math.floor(rand() * pods.length)]!;
      await victim.kill('SIGKILL');
      kills.push(victim.name);
      victim.start();
      // Invariant sampled under fire: every unfinished run still has a live dispatch job.
      const lost = await lostDispatches(pool);
      lostDuringChaos.push(...lost.map((l) => `${l.id} ${l.state} job=${l.job}`));
    }
    const backlog = await stateCounts(pool);
    const disabledAt = await setSchedulesEnabled(pool, false);
    log(SCENARIO, `${kills.length} kills; schedules off at ${disabledAt.toISOString()}; ${backlog.total} runs, ${backlog.nonTerminal} unfinished; draining`);
    // Restarted pods must come up again (migrations, queues, pg-boss) after every kill.
    for (const p of pods) await p.waitReady(120_000);

    const drained = await drain(pool, boss, { timeoutMs: Math.max(180_000, backlog.nonTerminal * 50), staleSeconds: 20, scenario: SCENARIO });

    const counts = await stateCounts(pool);
    const fires = await fireProblems(pool, { enabledAt, disabledAt, everySeconds: 1 });
    const inv = await invocationProblems(pool, invocations);
    const lag = await fireLag(pool);
    const leftovers = await staleActiveJobsOfTerminalRuns(pool, 20);
    printSummary(SCENARIO, {
      seed,
      schedules: fires.schedules,
      pods: PODS,
      'chaos seconds': CHAOS_SECONDS,
      kills: `${kills.length} (${summarise(kills)})`,
      restarts: pods.reduce((a, p) => a + p.starts - 1, 0),
      runs: counts.total,
      states: counts.byState,
      'handler invocations': inv.invocations,
      'crashed (invoked)': `${inv.crashed} (${inv.crashedInvoked})`,
      'orphaned by kills': `${drained.orphans.length} (${summarise(drained.orphans.map((o) => o.state))})`,
      'stale jobs, run done': leftovers,
      'fire lag s': `max ${lag.max.toFixed(2)}, p99 ${lag.p99.toFixed(2)}, p50 ${lag.p50.toFixed(2)}`,
      'drain seconds': drained.seconds.toFixed(1),
      'settled runs/s': (counts.total / ((Date.now() - enabledMs) / 1000)).toFixed(0),
    });

    assert.deepEqual(lostDuringChaos, [], 'an unfinished run had no live dispatch job during the chaos');
    assert.deepEqual(fires.problems, [], 'each schedule has exactly one run per fire time, none missing');
    assert.deepEqual(inv.problems, [], 'handler invocations');
    assert.equal(counts.nonTerminal, 0, 'every run is terminal after the drain');
    const unexpectedStates = Object.keys(counts.byState).filter((s) => !['COMPLETED/Completed', 'CRASHED/Crashed'].includes(s));
    assert.deepEqual(unexpectedStates, [], 'runs end COMPLETED, or CRASHED when a kill interrupted the handler');
    for (const p of pods) assert.deepEqual(p.unexpectedExits, [], `pod ${p.name} exited on its own`);
    ok = true;
  } finally {
    for (const p of pods) await p.stop();
    await boss.stop({ graceful: false }).catch(() => {});
    await pool.end();
    await db.drop();
    if (ok) fs.rmSync(dir, { recursive: true, force: true });
    else log(SCENARIO, `kept pod logs and the invocation log in ${dir}`);
  }
});
