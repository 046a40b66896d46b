/**
 * Chaos 3 — target endpoint faults. Two pods dispatch CHAOS_HTTP_SCHEDULES (default 20) schedules
 * every second to an http target (test/chaos/faulty-target.ts) that hangs past
 * FLOWWARDEN_HTTP_TIMEOUT_MS, resets connections, answers 500/502, and has 503 bursts. Runs must
 * retry with backoff and end COMPLETED (exactly one 2xx call, the last one) or FAILED (retries
 * exhausted, no 2xx); every call carries the run id as idempotency-key; repeated calls for a run
 * are retries (distinct, increasing attempt numbers, spaced by the backoff), never duplicates.
 *
 * The dispatch queue's retry delay is 2 s doubling up to 300 s (src/dispatch/worker.ts); for a
 * bounded test the scenario shortens it to 1 s doubling up to 4 s with pg-boss's updateQueue,
 * after the pods have started (each pod re-applies the code's queue options at start-up).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import pg from 'pg';
import { startBoss } from '../../src/queue/boss.ts';
import { BOSS_SCHEMA, QUEUES } from '../../src/queue/catalog.ts';
import {
  CHAOS_SECONDS, HTTP_SECRET, Pod, createFlows, drain, fireLag, fireProblems, log, lostDispatches, printSummary, random,
  scenarioDatabase, scenarioSeed, setSchedulesEnabled, sleep, stateCounts, summarise, workDir,
} from './support.ts';
import { startFaultyTarget, type TargetCall } from './faulty-target.ts';

const SCENARIO = 'target-faults';
const SCHEDULES = Number(process.env.CHAOS_HTTP_SCHEDULES ?? 20);
const PODS = 2;
const HTTP_TIMEOUT_MS = 1000;
const RETRY_DELAY = 1;
const RETRY_DELAY_MAX = 4;
/** Slack for backoff timing: the endpoint's clock vs pg-boss's start_after, poll intervals. */
const BACKOFF_SLACK_MS = 300;

test('target faults: runs retry with backoff under the same idempotency key and end COMPLETED or FAILED, never double-succeeding', { timeout: (CHAOS_SECONDS + 600) * 1000 }, async () => {
  const seed = scenarioSeed();
  const rand = random(seed + 3);
  const dir = workDir(SCENARIO);
  const db = await scenarioDatabase('http');
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  const boss = await startBoss({ connectionString: db.url, role: 'producer' });
  const target = await startFaultyTarget(HTTP_SECRET, rand);
  const pods: Pod[] = [];
  let ok = false;
  try {
    await createFlows(pool, {
      prefix: 'chaos-http', flowCount: 4, scheduleCount: SCHEDULES, everySeconds: 1,
      target: { type: 'http', url: target.url, mode: 'sync' },
      parameters: {},
      enabled: false,
    });
    for (let i = 0; i < PODS; i++) {
      pods.push(await Pod.create({ name: `pod${i}`, databaseUrl: db.url, logDir: dir, env: { FLOWWARDEN_HTTP_TIMEOUT_MS: String(HTTP_TIMEOUT_MS) } }));
    }
    for (const p of pods) p.start();
    for (const p of pods) await p.waitReady();
    await boss.updateQueue(QUEUES.dispatch, { retryDelay: RETRY_DELAY, retryBackoff: true, retryDelayMax: RETRY_DELAY_MAX });
    const queue = await boss.getQueue(QUEUES.dispatch);
    assert.equal(queue?.retryDelay, RETRY_DELAY);
    const retryLimit = queue?.retryLimit ?? assert.fail('the dispatch queue has no retryLimit');

    const enabledAt = await setSchedulesEnabled(pool, true);
    log(SCENARIO, `seed ${seed}; ${SCHEDULES} schedules every 1 s, http timeout ${HTTP_TIMEOUT_MS} ms, retry ${RETRY_DELAY}s×2^n ≤ ${RETRY_DELAY_MAX}s, limit ${retryLimit}; faults for ${CHAOS_SECONDS} s`);
    await sleep(CHAOS_SECONDS * 1000);
    const lostDuringChaos = await lostDispatches(pool);
    const disabledAt = await setSchedulesEnabled(pool, false);
    const drained = await drain(pool, boss, { timeoutMs: 180_000, staleSeconds: 20, scenario: SCENARIO });

    const counts = await stateCounts(pool);
    const fires = await fireProblems(pool, { enabledAt, disabledAt, everySeconds: 1 });
    const lag = await fireLag(pool);
    const { rows: runs } = await pool.query<{ id: string; stateType: string; message: string | null; retryLimit: number | null }>(
      // A run's retries: its job's retry limit, plus the attempts before it when the job is a
      // single-run retry of a run from a multi-run job (attemptOffset).
      `select r.id, r.state_type as "stateType", r.state_message as message,
              j.retry_limit + coalesce((j.data->>'attemptOffset')::int, 0) as "retryLimit"
         from flowwarden.runs r left join ${BOSS_SCHEMA}.job j on j.name = $1 and j.id = coalesce(r.dispatch_job_id, r.id)`,
      [QUEUES.dispatch],
    );

    const byRun = new Map<string, TargetCall[]>();
    for (const c of target.calls) byRun.set(c.runId, [...(byRun.get(c.runId) ?? []), c]);
    const problems: string[] = [];
    const known = new Set(runs.map((r) => r.id));
    for (const id of byRun.keys()) if (!known.has(id)) problems.push(`call for unknown run '${id}'`);
    let maxCalls = 0;
    for (const run of runs) {
      const calls = (byRun.get(run.id) ?? []).sort((a, b) => a.startedAt - b.startedAt);
      maxCalls = Math.max(maxCalls, calls.length);
      const where = `run ${run.id} (${run.stateType}, ${calls.length} calls: ${calls.map((c) => `#${c.attempt} ${c.fault}`).join(', ')})`;
      if (calls.length === 0) problems.push(`${where}: the target was never called`);
      for (const c of calls) {
        if (c.key !== run.id) problems.push(`${where}: a call carried idempotency-key '${c.key}'`);
        if (!c.signatureValid) problems.push(`${where}: a call had a bad signature`);
      }
      const attempts = calls.map((c) => c.attempt);
      if (new Set(attempts).size !== attempts.length) problems.push(`${where}: two calls for the same attempt (a duplicate delivery called the target)`);
      if (attempts.some((a, i) => i > 0 && a <= attempts[i - 1]!)) problems.push(`${where}: attempts out of order`);
      const ok2xx = calls.filter((c) => c.fault === '2xx');
      if (ok2xx.length > 1) problems.push(`${where}: ${ok2xx.length} calls returned 2xx`);
      if (run.stateType === 'COMPLETED' && (ok2xx.length !== 1 || calls.at(-1)?.fault !== '2xx')) problems.push(`${where}: COMPLETED but the last call was not the only 2xx`);
      if (run.stateType === 'FAILED') {
        if (ok2xx.length !== 0) problems.push(`${where}: FAILED after a 2xx`);
        const limit = run.retryLimit ?? retryLimit;
        if (calls.length !== limit + 1) problems.push(`${where}: FAILED after ${calls.length} calls, expected ${limit + 1} (every retry used)`);
      }
      if (!['COMPLETED', 'FAILED'].includes(run.stateType)) problems.push(`${where}: ended ${run.stateType}`);
      for (let k = 1; k < calls.length; k++) {
        const prev = calls[k - 1]!;
        const wantMs = Math.min(RETRY_DELAY_MAX, RETRY_DELAY * 2 ** (calls[k]!.attempt - 1)) * 1000;
        const gap = calls[k]!.startedAt - (prev.endedAt ?? prev.startedAt);
        if (gap < wantMs - BACKOFF_SLACK_MS) problems.push(`${where}: attempt #${calls[k]!.attempt} came ${gap} ms after the previous one ended, backoff is ${wantMs} ms`);
      }
    }
    const faults = summarise(target.calls.map((c) => c.fault));
    printSummary(SCENARIO, {
      seed,
      schedules: fires.schedules,
      pods: PODS,
      'chaos seconds': CHAOS_SECONDS,
      runs: counts.total,
      states: counts.byState,
      'target calls': target.calls.length,
      'calls by outcome': faults,
      'retried runs': runs.filter((r) => (byRun.get(r.id)?.length ?? 0) > 1).length,
      'most calls for a run': maxCalls,
      'fire lag s': `max ${lag.max.toFixed(2)}, p99 ${lag.p99.toFixed(2)}, p50 ${lag.p50.toFixed(2)}`,
      'orphaned': drained.orphans.length,
      'drain seconds': drained.seconds.toFixed(1),
    });

    assert.deepEqual(lostDuringChaos, [], 'an unfinished run had no live dispatch job');
    assert.deepEqual(fires.problems, [], 'each schedule has exactly one run per fire time, none missing');
    assert.deepEqual(problems.slice(0, 20), [], `target calls (${problems.length} problems)`);
    assert.equal(counts.nonTerminal, 0, 'every run is terminal after the drain');
    assert.equal(drained.orphans.length, 0, 'no job was left active without a pod working it');
    for (const kind of ['hang', 'reset', '5xx', 'burst']) assert.ok(target.calls.some((c) => c.fault === kind), `the endpoint produced at least one '${kind}'`);
    for (const p of pods) assert.deepEqual(p.unexpectedExits, [], `pod ${p.name} exited on its own`);
    ok = true;
  } finally {
    for (const p of pods) await p.stop();
    await target.close();
    await boss.stop({ graceful: false }).catch(() => {});
    await pool.end();
    await db.drop();
    if (ok) fs.rmSync(dir, { recursive: true, force: true });
    else log(SCENARIO, `kept pod logs in ${dir}`);
  }
});
