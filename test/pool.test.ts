/**
 * The dispatch JobPool on a real pg-boss queue: slots, prefetch, drain; and pg-boss's repeated
 * statements sent prepared.
 */
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PgBoss } from 'pg-boss';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { waitFor } from './support/app.ts';
import { JobPool, type PoolJob } from '../src/queue/pool.ts';
import { prepareRepeatedStatements } from '../src/queue/boss.ts';
import { silentLogger } from '../src/log.ts';

let db: TestDatabase;
let boss: PgBoss;
let queueNo = 0;

before(async () => {
  db = await createTestDatabase();
  boss = new PgBoss({ connectionString: db.url, schema: 'pool_test_boss', supervise: false, schedule: false, max: 4 });
  boss.on('error', () => {});
  await boss.start();
});
after(async () => {
  await boss.stop({ graceful: false });
  await db.drop();
});

async function queue(options: { retryLimit?: number; expireInSeconds?: number } = {}): Promise<string> {
  const name = `pool-test-${queueNo++}`;
  await boss.createQueue(name, { retryDelay: 60, ...options });
  return name;
}

async function insert(name: string, count: number, data: object = {}): Promise<string[]> {
  const ids: string[] = [];
  // One send per job: fetch order (created_on) is send order.
  for (let i = 0; i < count; i++) ids.push((await boss.send(name, { ...data, i }))!);
  return ids;
}

async function state(name: string, id: string): Promise<string | undefined> {
  return (await boss.getJobById(name, id))?.state;
}

/** A gate a handler can wait on; the test opens it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

describe('JobPool', () => {
  test('never runs more handlers than its capacity, also while it fetches ahead; every job completes', async () => {
    const name = await queue();
    const ids = await insert(name, 60);
    let running = 0;
    let maxRunning = 0;
    let maxHeld = 0;
    let sawPrefetch = false;
    const done = new Set<string>();
    // The pool's clock stands still: every slot takes 0 ms on it, however busy the machine is.
    const pool: JobPool = new JobPool(boss, { queue: name, capacity: 3, pollIntervalMs: 50, now: () => 0 }, async (job: PoolJob) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      maxHeld = Math.max(maxHeld, pool.inflight);
      sawPrefetch ||= pool.prefetching;
      await new Promise((r) => setImmediate(r));
      running--;
      done.add(job.id);
    }, silentLogger);
    pool.start();
    try {
      await waitFor(() => done.size === 60, { what: 'all 60 handlers ran' });
    } finally {
      await pool.stop(1000);
    }
    assert.ok(maxRunning <= 3, `at most 3 handlers at once (saw ${maxRunning})`);
    assert.ok(sawPrefetch, 'short handlers turn prefetching on');
    assert.ok(maxHeld > 3, `jobs were fetched ahead of free slots (held up to ${maxHeld})`);
    for (const id of ids) assert.equal(await state(name, id), 'completed');
  });

  test('a prefetched job waits for a slot; a long handler turns prefetching off; the drain hands the waiting job back unstarted', async () => {
    // No retries: the unstarted job is on its last attempt, and must still come back for retry.
    const name = await queue({ retryLimit: 0 });
    const started: string[] = [];
    const long = gate();
    // The pool's clock moves only when a handler says so: short handlers take 0 ms on it, the long
    // one 60 ms (over the 25 ms threshold), whatever the machine's load.
    let clock = 0;
    const pool = new JobPool(boss, { queue: name, capacity: 1, pollIntervalMs: 20, prefetchBelowMs: 25, now: () => clock }, async (job: PoolJob) => {
      started.push(job.id);
      if ((job.data as { kind?: string }).kind === 'long') {
        await long.wait;
        clock += 60;
      }
    }, silentLogger);
    const second = gate();
    const pool2 = new JobPool(boss, { queue: name, capacity: 1, pollIntervalMs: 20, prefetchBelowMs: 1e9 }, async (job: PoolJob) => {
      started.push(job.id);
      if ((job.data as { kind?: string }).kind === 'long') await second.wait;
    }, silentLogger);
    pool.start();
    try {
      const warm = await insert(name, 3);
      await waitFor(async () => (await Promise.all(warm.map((id) => state(name, id)))).every((s) => s === 'completed'), { what: 'warm-up jobs completed' });
      assert.equal(pool.prefetching, true, 'short handlers: prefetching');

      const [longId] = await insert(name, 1, { kind: 'long' });
      await waitFor(() => started.includes(longId!), { what: 'the long handler started' });
      const [waitingId] = await insert(name, 1, { kind: 'short' });
      await waitFor(() => pool.inflight === 2, { what: 'the next job fetched ahead' });
      assert.equal(await state(name, waitingId!), 'active', 'the prefetched job is held');
      assert.ok(!started.includes(waitingId!), 'its handler has not started: the only slot is taken');

      long.open();
      await waitFor(() => started.includes(waitingId!), { what: 'the waiting job started once the slot freed' });
      await waitFor(async () => (await state(name, waitingId!)) === 'completed', { what: 'the waiting job completed' });
      assert.equal(pool.prefetching, false, 'a long handler turns prefetching off');

      // Drain while a job waits for the slot: it is handed back without starting.
      await pool.stop(1000);
      pool2.start();
      const [warm2] = await insert(name, 1);
      await waitFor(async () => (await state(name, warm2!)) === 'completed', { what: 'warm-up job completed' });
      const [blocking] = await insert(name, 1, { kind: 'long' });
      await waitFor(() => started.includes(blocking!), { what: 'the blocking handler started' });
      const [unstarted] = await insert(name, 1, { kind: 'short' });
      await waitFor(() => pool2.inflight === 2, { what: 'a job fetched ahead' });
      const stopping = pool2.stop(5000);
      await waitFor(async () => (await state(name, unstarted!)) === 'retry', { what: 'the unstarted job handed back for retry' });
      second.open();
      await stopping;
      assert.ok(!started.includes(unstarted!), 'a handed-back job never started here');
      assert.equal(await state(name, blocking!), 'completed', 'the running job finished within the drain');
    } finally {
      long.open();
      second.open();
      await pool.stop(1000);
      await pool2.stop(1000);
    }
  });
});

describe('JobPool: jobs of several units', () => {
  const unitsOf = (job: { data: unknown }) => (job.data as { units?: number }).units ?? 1;

  test('each unit takes a slot and one handler call; the job completes once all its units have', async () => {
    const name = await queue();
    const [batchId] = await insert(name, 1, { units: 7 });
    const [singleId] = await insert(name, 1);
    const calls: Array<{ id: string; unit: number | undefined; units: number | undefined }> = [];
    let running = 0;
    let maxRunning = 0;
    const pool = new JobPool(boss, { queue: name, capacity: 3, pollIntervalMs: 20, now: () => 0, unitsOf }, async (job: PoolJob) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      calls.push({ id: job.id, unit: job.unit, units: job.units });
      await new Promise((r) => setImmediate(r));
      running--;
    }, silentLogger);
    pool.start();
    try {
      await waitFor(async () => (await state(name, batchId!)) === 'completed' && (await state(name, singleId!)) === 'completed', { what: 'both jobs completed' });
    } finally {
      await pool.stop(1000);
    }
    const units = calls.filter((c) => c.id === batchId).map((c) => c.unit).sort();
    assert.deepEqual(units, [0, 1, 2, 3, 4, 5, 6], 'one call per unit, each once');
    assert.ok(calls.filter((c) => c.id === batchId).every((c) => c.units === 7), 'each call knows the job has 7 units');
    assert.deepEqual(calls.filter((c) => c.id === singleId).map((c) => [c.unit, c.units]), [[undefined, undefined]], 'a one-unit job is called as before');
    assert.ok(maxRunning <= 3, `units share the 3 slots (saw ${maxRunning} at once)`);
  });

  test('a unit that throws fails the whole job for retry once the others have settled', async () => {
    const name = await queue({ retryLimit: 2 });
    const [id] = await insert(name, 1, { units: 4 });
    const started: number[] = [];
    const lastUnit = gate();
    const pool = new JobPool(boss, { queue: name, capacity: 2, pollIntervalMs: 20, unitsOf }, async (job: PoolJob) => {
      started.push(job.unit!);
      if (job.unit === 1 && job.retryCount === 0) throw new Error('unit 1 broke');
      if (job.unit === 3 && job.retryCount === 0) await lastUnit.wait;
    }, silentLogger);
    pool.start();
    try {
      await waitFor(() => started.includes(3), { what: 'the last unit started (unit 1 has thrown by then)' });
      assert.equal(await state(name, id!), 'active', 'not failed while a unit of it still runs');
      lastUnit.open();
      await waitFor(async () => (await state(name, id!)) === 'retry', { what: 'the job failed and went back for retry' });
      assert.deepEqual(started.slice(0, 4).sort(), [0, 1, 2, 3], 'every unit ran before the job was failed');
      const job = await boss.getJobById(name, id!);
      assert.match(String((job?.output as { message?: string } | null)?.message), /unit 1 broke/);
    } finally {
      lastUnit.open();
      await pool.stop(1000);
    }
  });

  test("a job that outlives its expiry starts none of its waiting units (pg-boss retries it whole) and is neither completed nor failed here", async () => {
    const name = await queue({ expireInSeconds: 1 });
    const [id] = await insert(name, 1, { units: 3 });
    const started: number[] = [];
    const pool = new JobPool(boss, { queue: name, capacity: 1, pollIntervalMs: 20, unitsOf }, async (job: PoolJob) => {
      started.push(job.unit!);
      // The first unit holds the only slot until the job's expiry aborts it.
      if (!job.signal.aborted) await new Promise((r) => job.signal.addEventListener('abort', r, { once: true }));
    }, silentLogger);
    pool.start();
    try {
      await waitFor(() => started.length > 0 && pool.inflight === 0, { what: 'the expired job let go' });
      assert.deepEqual(started, [0], 'the two waiting units never started with an expired job');
      assert.equal(await state(name, id!), 'active', 'left to pg-boss (its supervisor retries an expired job), not completed');
    } finally {
      await pool.stop(1000);
    }
  });

  test('the drain hands a partly started job back whole, after its started units finish; on its last attempt it still comes back', async () => {
    const name = await queue({ retryLimit: 0 });
    const [id] = await insert(name, 1, { units: 5 });
    const started: number[] = [];
    const hold = gate();
    const pool = new JobPool(boss, { queue: name, capacity: 2, pollIntervalMs: 20, unitsOf }, async (job: PoolJob) => {
      started.push(job.unit!);
      await hold.wait;
    }, silentLogger);
    pool.start();
    try {
      await waitFor(() => started.length === 2, { what: 'two units started (the slots are full)' });
      const stopping = pool.stop(10_000);
      assert.equal(await state(name, id!), 'active', 'not handed back while two of its units run');
      hold.open();
      await stopping;
      assert.deepEqual(started.sort(), [0, 1], 'the three waiting units never started');
      // retryLimit 0: the hand-back failed it for good, so the pool gave the attempt back (retry).
      await waitFor(async () => (await state(name, id!)) === 'retry', { what: 'the job is back for another pod' });
    } finally {
      hold.open();
      await pool.stop(1000);
    }
  });
});

describe('prepared pg-boss statements', () => {
  test("pg-boss's repeated fetch runs as a named prepared statement and still fetches each job once; multi-statement texts are left alone", async () => {
    const own = new PgBoss({ connectionString: db.url, schema: 'pool_test_boss', supervise: false, schedule: false, max: 1, migrate: false });
    own.on('error', () => {});
    await own.start();
    try {
      assert.equal(prepareRepeatedStatements(own), true);
      const name = await queue();
      const ids = await insert(name, 5);
      const fetched: string[] = [];
      for (let i = 0; i < 5; i++) fetched.push(...(await own.fetch(name, { batchSize: 1 })).map((j) => j.id));
      assert.deepEqual(fetched, ids, 'each job fetched once, in order');
      assert.deepEqual(await own.fetch(name, { batchSize: 1 }), [], 'nothing left');
      const sql = own.getDb();
      for (let i = 0; i < 4; i++) {
        const r = (await sql.executeSql('select 1 as a; select 2 as b')) as unknown as Array<{ rows: unknown[] }>;
        assert.equal(r.length, 2, 'both statements ran');
      }
      // max: 1, so this is the session that ran the fetches.
      const { rows } = await sql.executeSql(`select name, statement from pg_prepared_statements where name like 'flowwarden_boss_%'`);
      const statements = rows as Array<{ name: string; statement: string }>;
      assert.ok(statements.some((s) => /FOR UPDATE OF j SKIP LOCKED/.test(s.statement)), 'the fetch statement is prepared');
      assert.ok(!statements.some((s) => /select 1 as a/.test(s.statement)), 'a multi-statement text is not');
    } finally {
      await own.stop({ graceful: false });
    }
  });
});
