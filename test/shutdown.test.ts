/**
 * Shutdown with real processes: `node src/cli/main.ts start` against a test database, a handler that
 * runs until the test releases it, and real signals. Every wait is on observable state (the run row,
 * the pg-boss job row, the pod's log output, the process exit), never on a sleep.
 */
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { waitFor } from './support/app.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { upsertFlowTx } from '../src/flows/operations.ts';
import { startBoss } from '../src/queue/boss.ts';
import { scaled } from './support/timeouts.ts';

const MAIN = path.resolve(import.meta.dirname, '../src/cli/main.ts');
const HANDLERS = path.resolve(import.meta.dirname, 'fixtures/slow-handlers.ts');

let dir: string;
const cleanups: Array<() => Promise<void>> = [];

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-shutdown-'));
});
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Pod {
  child: ChildProcess;
  output(): string;
  /** Resolves when the combined stdout/stderr matches. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function startPod(db: TestDatabase, env: Record<string, string> = {}): Pod {
  const child = spawn(process.execPath, [MAIN, 'start', '--handlers', HANDLERS], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      DATABASE_URL: db.url,
      FLOWWARDEN_PORT: '0',
      FLOWWARDEN_HOST: '127.0.0.1',
      FLOWWARDEN_LOG_LEVEL: 'info',
      FLOWWARDEN_TICK_INTERVAL_MS: '200',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  // A child that could not be spawned emits 'error' and never 'exit': settle on either, or a test
  // awaiting the exit would wait on nothing at all.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve, reject) => {
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
    child.on('error', (err) => reject(new Error(`the pod process failed: ${err.message}\n${out}`)));
  });
  exited.catch(() => {});
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return {
    child,
    output: () => out,
    exited,
    waitForOutput: (re, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (re.test(out)) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${re} in pod output:\n${out}`));
        }, scaled(timeoutMs));
        listeners.add(check);
        check();
        const gone = (why: string) => {
          if (!re.test(out)) {
            listeners.delete(check);
            clearTimeout(timer);
            reject(new Error(`${why} before ${re} appeared:\n${out}`));
          }
        };
        exited.then(() => gone('pod exited'), (err: Error) => gone(err.message));
      }),
  };
}

interface Env {
  db: TestDatabase;
  pool: pg.Pool;
  boss: PgBoss;
}

/**
 * SIGTERM `pod` while `runId`'s handler never finishes on its own: the pod exits 0 through the
 * drain deadline (not a speed bound), and the run's job is handed back, failed for retry rather
 * than left active until its expiry.
 */
async function drainPastDeadline(env: Env, pod: Pod, runId: string): Promise<void> {
  pod.child.kill('SIGTERM');
  const exit = await pod.exited;
  assert.equal(exit.code, 0, pod.output());
  assert.match(pod.output(), /drain deadline reached/);
  assert.equal(await jobState(env, runId), 'retry');
}

/** Start another pod, run `check` while it is up, then SIGTERM it and expect a clean exit. */
async function withNextPod(env: Env, check: () => Promise<unknown>): Promise<void> {
  const next = startPod(env.db, { FLOWWARDEN_DRAIN_TIMEOUT_SECONDS: '5' });
  try {
    await check();
  } finally {
    next.child.kill('SIGTERM');
  }
  assert.equal((await next.exited).code, 0, next.output());
}

async function setup(): Promise<Env> {
  const db = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: db.url, max: 3 });
  const boss = await startBoss({ connectionString: db.url, role: 'producer' });
  cleanups.push(async () => {
    await boss.stop({ graceful: false });
    await pool.end();
    await db.drop();
  });
  await withTransaction(pool, (tx) => upsertFlowTx(tx, { name: 'slow', target: { type: 'function', handler: 'wait-for-file' } }));
  return { db, pool, boss };
}

async function trigger(env: Env, parameters: Record<string, unknown>): Promise<string> {
  const { runId } = await withTransaction(env.pool, (tx) => triggerRunTx(env.boss, tx, 'slow', parameters));
  return runId;
}

async function runState(env: Env, runId: string): Promise<{ stateType: string; stateName: string; message: string | null }> {
  const { rows } = await env.pool.query(`select state_type as "stateType", state_name as "stateName", state_message as message from flowwarden.runs where id = $1`, [runId]);
  return rows[0];
}

async function jobState(env: Env, runId: string): Promise<string | undefined> {
  const { rows } = await env.pool.query<{ state: string }>(`select state::text from flowwarden_queue.job where name = 'fw.dispatch' and id = $1`, [runId]);
  return rows[0]?.state;
}

const untilRunning = (env: Env, runId: string) =>
  waitFor(async () => (await runState(env, runId))?.stateType === 'RUNNING', { what: 'the run to be RUNNING', timeoutMs: 20_000 });

describe('SIGTERM drains the pod', () => {
  test('a run that finishes within the drain deadline completes and the pod exits 0', async () => {
    const env = await setup();
    const release = path.join(dir, 'release-a');
    const pod = startPod(env.db, { FLOWWARDEN_DRAIN_TIMEOUT_SECONDS: '60' });
    const runId = await trigger(env, { release });
    await untilRunning(env, runId);

    pod.child.kill('SIGTERM');
    await pod.waitForOutput(/draining: no new work is claimed/);
    // Draining, not gone: the run is still in the handler and its job still held by this pod.
    assert.equal(pod.child.exitCode, null);
    assert.equal((await runState(env, runId)).stateType, 'RUNNING');
    assert.equal(await jobState(env, runId), 'active');

    fs.writeFileSync(release, '');
    const exit = await pod.exited;
    assert.equal(exit.code, 0, pod.output());
    assert.equal((await runState(env, runId)).stateType, 'COMPLETED');
    assert.equal(await jobState(env, runId), 'completed');
    assert.match(pod.output(), /"msg":"stopped"/);
  });

  test('past the deadline the pod hands the job back and requeues the run; another pod re-runs it to COMPLETED, never CRASHED', async () => {
    const env = await setup();
    const release = path.join(dir, 'release-b');
    const pod = startPod(env.db, { FLOWWARDEN_DRAIN_TIMEOUT_SECONDS: '1' });
    const runId = await trigger(env, { release });
    await untilRunning(env, runId);

    await drainPastDeadline(env, pod, runId);
    // The run waits for that retry.
    const run = await runState(env, runId);
    assert.deepEqual([run.stateType, run.stateName], ['PENDING', 'AwaitingRetry']);
    assert.match(run.message ?? '', /interrupted by pod shutdown .*; will be retried/);
    assert.match(pod.output(), /drain deadline reached: in-flight jobs handed back/);

    // The next pod takes the retried job and runs the handler again (this time it may finish).
    fs.writeFileSync(release, '');
    await withNextPod(env, async () => {
      await waitFor(async () => (await runState(env, runId)).stateType === 'COMPLETED', { what: 'the requeued run to complete on the next pod', timeoutMs: 30_000 });
      await waitFor(async () => (await jobState(env, runId)) === 'completed', { what: 'the retried job to complete' });
    });
    const { rows: history } = await env.pool.query<{ to: string }>(
      `select to_type || '/' || to_name as "to" from flowwarden.run_history where run_id = $1 order by seq`,
      [runId],
    );
    assert.deepEqual(history.map((h) => h.to), [
      'SCHEDULED/Scheduled', 'PENDING/Pending', 'RUNNING/Running', // first pod
      'PENDING/AwaitingRetry', // cut off at its drain deadline
      'PENDING/Pending', 'RUNNING/Running', 'COMPLETED/Completed', // re-run once on the next pod
    ]);
  });

  test('a draining pod claims nothing new: a run triggered during the drain stays SCHEDULED until another pod takes it', async () => {
    const env = await setup();
    const releaseA = path.join(dir, 'release-d');
    const releaseB = path.join(dir, 'release-d-b');
    fs.writeFileSync(releaseB, '');
    const pod = startPod(env.db, { FLOWWARDEN_DRAIN_TIMEOUT_SECONDS: '60' });
    const first = await trigger(env, { release: releaseA });
    await untilRunning(env, first);

    pod.child.kill('SIGTERM');
    await pod.waitForOutput(/draining: no new work is claimed/);
    // Finishes at once if any pod claims it.
    const second = await trigger(env, { release: releaseB });
    const { rows: [created] } = await env.pool.query<{ at: Date }>(`select created_on as at from flowwarden_queue.job where name = 'fw.dispatch' and id = $1`, [second]);
    // The draining pod still heartbeats its in-flight job (every 10 s): once it has done so after the
    // trigger, the pod has been alive and working for many poll intervals with the new job ready.
    await waitFor(async () => {
      const { rows } = await env.pool.query<{ ok: boolean }>(
        `select heartbeat_on > $2 as ok from flowwarden_queue.job where name = 'fw.dispatch' and id = $1`,
        [first, created!.at],
      );
      return rows[0]?.ok;
    }, { what: 'a heartbeat of the draining pod after the trigger', timeoutMs: 20_000 });
    assert.equal((await runState(env, second)).stateType, 'SCHEDULED');
    assert.equal(await jobState(env, second), 'created');

    fs.writeFileSync(releaseA, '');
    const exit = await pod.exited;
    assert.equal(exit.code, 0, pod.output());
    assert.equal((await runState(env, first)).stateType, 'COMPLETED');
    assert.equal((await runState(env, second)).stateType, 'SCHEDULED', 'the draining pod never claimed it');
    assert.equal(await jobState(env, second), 'created');

    // Not stuck: the next pod takes it.
    await withNextPod(env, () => waitFor(async () => (await runState(env, second)).stateType === 'COMPLETED', { what: 'the next pod to run it', timeoutMs: 30_000 }));
  });

  test('a handler that ignores its abort signal is abandoned; the redelivered job marks the run CRASHED on another pod', async () => {
    const env = await setup();
    const pod = startPod(env.db, { FLOWWARDEN_DRAIN_TIMEOUT_SECONDS: '1' });
    const runId = await trigger(env, { release: path.join(dir, 'never-b2'), ignoreAbort: true });
    await untilRunning(env, runId);

    await drainPastDeadline(env, pod, runId);
    assert.equal((await runState(env, runId)).stateType, 'RUNNING', 'nobody settled it yet');

    // Not lost: the next pod takes the retry, sees a function run that was RUNNING under an older
    // attempt, and settles it CRASHED instead of running the handler a second time.
    await withNextPod(env, async () => {
      await waitFor(async () => (await runState(env, runId)).stateType === 'CRASHED', { what: 'the run to be CRASHED by redelivery', timeoutMs: 30_000 });
      await waitFor(async () => (await jobState(env, runId)) === 'completed', { what: 'the retried job to complete' });
    });
  });

  test('a second SIGTERM exits at once without waiting for in-flight work', async () => {
    const env = await setup();
    const pod = startPod(env.db, { FLOWWARDEN_DRAIN_TIMEOUT_SECONDS: '120' });
    const runId = await trigger(env, { release: path.join(dir, 'never-c') });
    await untilRunning(env, runId);

    pod.child.kill('SIGTERM');
    await pod.waitForOutput(/draining: no new work is claimed/);
    pod.child.kill('SIGTERM');
    const exit = await pod.exited;
    // 130 is only the second signal's exit: a drain would wait 120 s for a handler that never ends and exit 0.
    assert.equal(exit.code, 130, pod.output());
    assert.equal(await jobState(env, runId), 'active', 'in-flight work was not waited for or handed back');
    assert.match(pod.output(), /second signal: exiting now/);
  });
});
