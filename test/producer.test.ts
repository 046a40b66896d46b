import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from './support/app.ts';
import { FlowwardenClient } from '../src/producers/client.ts';
import { BOSS_SCHEMA, QUEUES } from '../src/queue/catalog.ts';
import { ConflictError, UserInputError } from '../src/errors.ts';

let app: TestApp;
let client: FlowwardenClient;
before(async () => {
  app = await startTestApp();
  client = await FlowwardenClient.connect({ connectionString: app.db.url });
  await client.upsertFlow({ name: 'orders-export', target: { type: 'function', handler: 'noop' } });
  await app.pool.query('create table public.orders (id serial primary key, note text)');
});
after(async () => {
  await client.close();
  await app.close();
});

async function jobsFor(runId: string): Promise<number> {
  const { rows } = await app.pool.query(`select count(*)::int as n from ${BOSS_SCHEMA}.job where name = $1 and id = $2`, [QUEUES.dispatch, runId]);
  return rows[0].n;
}

describe('producer client', () => {
  test("triggerRun inside the caller's transaction commits with the caller's own writes", async () => {
    const c = await app.pool.connect();
    try {
      await c.query('begin');
      await c.query(`insert into public.orders (note) values ('committed')`);
      const { runId } = await client.triggerRun('orders-export', { order: 1 }, { db: c });
      await c.query('commit');
      assert.equal(await jobsFor(runId), 1);
      const { rows } = await app.pool.query('select state_type from flowwarden.runs where id = $1', [runId]);
      assert.equal(rows[0].state_type, 'SCHEDULED');
    } finally {
      c.release();
    }
  });

  test("a rolled-back caller transaction leaves neither run nor job", async () => {
    const c = await app.pool.connect();
    let runId: string;
    try {
      await c.query('begin');
      await c.query(`insert into public.orders (note) values ('rolled back')`);
      ({ runId } = await client.triggerRun('orders-export', { order: 2 }, { db: c }));
      await c.query('rollback');
    } finally {
      c.release();
    }
    const { rows } = await app.pool.query('select count(*)::int as n from flowwarden.runs where id = $1', [runId]);
    assert.equal(rows[0].n, 0);
    assert.equal(await jobsFor(runId), 0);
  });

  test('a watched Prefect flow gets no enabled flowwarden schedule, neither added later nor left over from before it was watched', async () => {
    await client.upsertFlow({ name: 'watched-later', target: { type: 'prefect', deployment: 'later/prod' }, schedules: [{ name: 'nightly', cron: '0 2 * * *' }] });
    // Turning watch on while a schedule is enabled: both would run it.
    await assert.rejects(
      client.upsertFlow({ name: 'watched-later', target: { type: 'prefect', deployment: 'later/prod', watch: true } }),
      (err: Error) => err instanceof UserInputError && /enabled flowwarden schedules \(nightly\).*pause them first/.test(err.message),
    );
    // Paused first, then watched: fine.
    await client.upsertSchedule('watched-later', { name: 'nightly', cron: '0 2 * * *', enabled: false });
    await client.upsertFlow({ name: 'watched-later', target: { type: 'prefect', deployment: 'later/prod', watch: true } });
    // Adding (or re-enabling) a schedule to a watched flow is refused; a paused one is allowed.
    await assert.rejects(
      client.upsertSchedule('watched-later', { name: 'nightly', cron: '0 2 * * *' }),
      (err: Error) => err instanceof UserInputError && /is watched \(target\.watch: true\).*would run it twice/.test(err.message),
    );
    await assert.rejects(client.upsertSchedule('watched-later', { name: 'hourly', every: '1h' }), UserInputError);
    const paused = await client.upsertSchedule('watched-later', { name: 'nightly', cron: '0 3 * * *', enabled: false });
    assert.equal(paused.schedule.enabled, false);
    // A whole definition may list it paused too; listed enabled, it is refused with its path.
    const watched = { type: 'prefect' as const, deployment: 'later/prod', watch: true };
    await client.upsertFlow({ name: 'watched-later', target: watched, schedules: [{ name: 'nightly', cron: '0 3 * * *', enabled: false }] });
    await assert.rejects(
      client.upsertFlow({ name: 'watched-later', target: watched, schedules: [{ name: 'nightly', cron: '0 3 * * *' }] }),
      /flow 'watched-later'\.schedules: a watched flow/,
    );
    const { rows } = await app.pool.query(
      `select count(*)::int as n from flowwarden.schedules s join flowwarden.flows f on f.id = s.flow_id where f.name = 'watched-later' and s.enabled`,
    );
    assert.equal(rows[0].n, 0);
  });

  test('upsertSchedule validates and reportRunState enforces the state machine', async () => {
    await assert.rejects(client.upsertSchedule('orders-export', { name: 'bad', cron: 'not a cron' }), UserInputError);
    await assert.rejects(client.upsertSchedule('orders-export', { name: 'tz', cron: '0 * * * *', timezone: 'Nowhere/City' }), /Nowhere\/City/);
    const s = await client.upsertSchedule('orders-export', { name: 'hourly', cron: '0 * * * *', timezone: 'Asia/Tokyo' });
    assert.equal(s.created, true);
    assert.ok(s.schedule.nextRunAt);

    const { runId } = await client.triggerRun('orders-export');
    await client.reportRunState(runId, 'RUNNING');
    const done = await client.reportRunState(runId, 'COMPLETED', { message: 'ok', tasks: [{ name: 'write', stateType: 'COMPLETED' }] });
    assert.equal(done.stateType, 'COMPLETED');
    await assert.rejects(client.reportRunState(runId, 'RUNNING'), /invalid state transition/);
  });

  test("triggerRun with an idempotency key another flow's run holds throws a ConflictError", async () => {
    await client.upsertFlow({ name: 'invoices-export', target: { type: 'function', handler: 'noop' } });
    const first = await client.triggerRun('orders-export', {}, { idempotencyKey: 'export:2026-11-22' });
    assert.equal(first.created, true);
    const same = await client.triggerRun('orders-export', {}, { idempotencyKey: 'export:2026-11-22' });
    assert.deepEqual(same, { runId: first.runId, created: false });
    await assert.rejects(client.triggerRun('invoices-export', {}, { idempotencyKey: 'export:2026-11-22' }), (err: unknown) => {
      assert.ok(err instanceof ConflictError);
      assert.match(err.message, /already used by run .* of flow 'orders-export', not flow 'invoices-export'/);
      return true;
    });
    const { rows } = await app.pool.query(`select count(*)::int as n from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where f.name = 'invoices-export'`);
    assert.equal(rows[0].n, 0);
  });

  test('unknown flow and non-object parameters are clear errors', async () => {
    await assert.rejects(client.triggerRun('missing-flow'), /flow 'missing-flow' not found/);
    await assert.rejects(client.triggerRun('orders-export', [] as unknown as Record<string, unknown>), /parameters: must be a JSON object/);
  });

  test('bad arguments from an untyped caller are clear errors naming the field, and change nothing', async () => {
    const { runId } = await client.triggerRun('orders-export');
    const runsOfFlow = async () => (await app.pool.query<{ n: number }>(`select count(*)::int as n from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where f.name = 'orders-export'`)).rows[0]!.n;
    const before = await runsOfFlow();
    const any = (v: unknown) => v as never;
    const cases: Array<[() => Promise<unknown>, RegExp]> = [
      [() => client.reportRunState(runId, 'RUNNING', { tasks: any({ name: 'write' }) }), /^invalid state report: tasks: must be a list of \{name, stateType, message\?\}$/],
      [() => client.reportRunState(runId, 'RUNNING', { tasks: [{ name: 'a', stateType: 'COMPLETED' }, any({ name: 'b', stateType: 'DONE' })] }), /^invalid state report: tasks\[1\]\.stateType: must be one of SCHEDULED, PENDING, RUNNING/],
      [() => client.reportRunState(runId, 'RUNNING', { tasks: [any({ stateType: 'COMPLETED' })] }), /tasks\[0\]\.name: must be a string \(every task needs a name\)/],
      [() => client.reportRunState(runId, 'RUNNING', { tasks: Array.from({ length: 1001 }, (_, i) => ({ name: `t${i}`, stateType: 'COMPLETED' as const })) }), /tasks: at most 1000 tasks per report; send the rest in another report/],
      [() => client.reportRunState(runId, any('DONE')), /^invalid state report: state: must be one of SCHEDULED, PENDING, RUNNING/],
      [() => client.reportRunState(runId, 'RUNNING', { message: any(42) }), /message: must be a string/],
      [() => client.reportRunState(runId, 'RUNNING', { message: 'bad \u0000 byte' }), /^invalid state report: message: must not contain a NUL character/],
      [() => client.reportRunState('abc', 'RUNNING'), /runId: not a run id \(runs are named by a UUID\)/],
      [() => client.triggerRun('orders-export', {}, { scheduledFor: any('2026-11-22T10:00:00Z') }), /^invalid trigger: scheduledFor: must be a valid Date/],
      [() => client.triggerRun('orders-export', {}, { scheduledFor: new Date('not a date') }), /scheduledFor: must be a valid Date/],
      [() => client.triggerRun('orders-export', {}, { idempotencyKey: any(42) }), /idempotencyKey: must be a string/],
      [() => client.triggerRun('orders-export', {}, { idempotencyKey: '' }), /idempotencyKey: must be 1 to 200 characters/],
      [() => client.triggerRun('orders-export', { note: 'bad \u0000 byte' }), /^invalid trigger: parameters\.note: must not contain a NUL character/],
      [() => client.triggerRun(any(null)), /flowName: must be a string \(the name of the flow\)/],
      [() => client.triggerRun('orders-export', { n: any(1n) }), /^invalid trigger: parameters\.n: is a BigInt, which JSON cannot carry: pass a number or a string$/],
      [() => client.upsertFlow({ name: 'orders-export', description: 'bad \u0000 byte', target: { type: 'function', handler: 'noop' } }), /^invalid flow 'orders-export': flow 'orders-export'\.description: must not contain a NUL character/],
      [() => client.upsertSchedule('orders-export', { name: 'nul', cron: '0 * * * *', parameters: { note: 'bad \u0000' } }), /^invalid schedule of flow 'orders-export': schedule of flow 'orders-export'\.parameters\.note: must not contain a NUL character/],
    ];
    for (const [call, re] of cases) {
      await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof UserInputError, `a UserInputError, not ${String(err)}`);
        assert.match(err.message, re);
        return true;
      });
    }
    const { rows } = await app.pool.query(`select state_type as "stateType" from flowwarden.runs where id = $1`, [runId]);
    assert.equal(rows[0].stateType, 'SCHEDULED', 'no bad report moved the run');
    assert.equal(await runsOfFlow(), before, 'no bad trigger created a run');
    // A task message may be null, as the TaskInput type says.
    const ok = await client.reportRunState(runId, 'RUNNING', { tasks: [{ name: 'extract', stateType: 'COMPLETED', message: null }] });
    assert.equal(ok.stateType, 'RUNNING');
  });
});
