import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { startFakePrefect, type FakePrefect } from './support/fake-prefect.ts';
import {
  createPrefectClient,
  mapPrefectState,
  prefectIdempotencyKey,
  type PrefectClient,
} from '../src/prefect/client/index.ts';
import { NotFoundError, PermanentError, RateLimitedError, UserInputError, isPermanent } from '../src/errors.ts';

let fake: FakePrefect;
let client: PrefectClient;
/** Every error a test provokes, checked at the end for the API key. */
const seenErrors: unknown[] = [];

/** What the queue would retry with backoff: neither permanent nor a rate-limit wait. */
function isTransient(err: unknown): boolean {
  return !isPermanent(err) && !(err instanceof RateLimitedError);
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    seenErrors.push(err);
    assert.ok(err instanceof Error, 'rejects with an Error');
    return err;
  }
  assert.fail('expected a rejection');
}

before(async () => {
  fake = await startFakePrefect();
  // Generous: requests meant to succeed must not time out on a loaded machine.
  client = createPrefectClient({ apiUrl: fake.apiUrl, apiKey: fake.apiKey, timeoutMs: 30_000 });
});

after(async () => {
  await fake.close();
});

describe('mapPrefectState', () => {
  test('terminal states are terminal, everything else is not', () => {
    assert.deepEqual(mapPrefectState('COMPLETED', 'Completed'), { stateType: 'COMPLETED', stateName: 'Completed', terminal: true });
    assert.deepEqual(mapPrefectState('FAILED', null), { stateType: 'FAILED', stateName: 'Failed', terminal: true });
    assert.deepEqual(mapPrefectState('CRASHED', 'Crashed'), { stateType: 'CRASHED', stateName: 'Crashed', terminal: true });
    assert.deepEqual(mapPrefectState('CANCELLED', 'Cancelled').terminal, true);
    assert.deepEqual(mapPrefectState('SCHEDULED', 'Late'), { stateType: 'SCHEDULED', stateName: 'Late', terminal: false });
    assert.deepEqual(mapPrefectState('SCHEDULED', 'AwaitingRetry'), {
      stateType: 'SCHEDULED',
      stateName: 'AwaitingRetry',
      terminal: false,
    });
    assert.deepEqual(mapPrefectState('RUNNING', 'Retrying').terminal, false);
  });

  test('PAUSED and CANCELLING read as a live RUNNING run', () => {
    assert.deepEqual(mapPrefectState('PAUSED', 'Paused'), { stateType: 'RUNNING', stateName: 'Paused', terminal: false });
    assert.deepEqual(mapPrefectState('PAUSED', null), { stateType: 'RUNNING', stateName: 'Paused', terminal: false });
    assert.deepEqual(mapPrefectState('CANCELLING', 'Cancelling'), {
      stateType: 'RUNNING',
      stateName: 'Cancelling',
      terminal: false,
    });
  });

  test('a run without a state is pending; an unknown type keeps being watched', () => {
    assert.deepEqual(mapPrefectState(null, null), { stateType: 'PENDING', stateName: 'Pending', terminal: false });
    assert.deepEqual(mapPrefectState('SOMETHING_NEW', null), {
      stateType: 'RUNNING',
      stateName: 'SOMETHING_NEW',
      terminal: false,
    });
  });

  test('idempotency keys carry the deployment id', () => {
    assert.equal(prefectIdempotencyKey('dep-1', 'run-9'), 'flowwarden:dep-1:run-9');
  });
});

describe('deployments', () => {
  test('resolves by flow/deployment name and by id, and caches both', async () => {
    const dep = fake.addDeployment({ flowName: 'etl', name: 'nightly' });
    const c = createPrefectClient({ apiUrl: fake.apiUrl, apiKey: fake.apiKey });

    const byName = await c.resolveDeployment('etl/nightly');
    assert.equal(byName.id, dep.id);
    assert.equal(byName.flow_id, dep.flow_id);
    assert.equal(byName.name, 'nightly');

    const before = fake.state.requests.length;
    assert.equal((await c.resolveDeployment('etl/nightly')).id, dep.id);
    assert.equal((await c.resolveDeployment(dep.id)).id, dep.id, 'the id learned from the name is cached too');
    assert.equal(fake.state.requests.length, before, 'second resolve makes no request');

    const other = fake.addDeployment({ flowName: 'etl', name: 'hourly' });
    const c2 = createPrefectClient({ apiUrl: fake.apiUrl, apiKey: fake.apiKey });
    assert.equal((await c2.resolveDeployment(other.id)).name, 'hourly');
    const afterFirst = fake.state.requests.length;
    await c2.resolveDeployment(other.id);
    assert.equal(fake.state.requests.length, afterFirst);
    assert.equal(fake.requestsTo(`GET /deployments/${other.id}`).length, 1);
  });

  test('an unknown flow/deployment name says what to check', async () => {
    const err = await rejection(client.resolveDeployment('etl/missing'));
    assert.ok(err instanceof NotFoundError && isPermanent(err));
    assert.equal(
      err.message,
      `Prefect deployment 'etl/missing' not found at ${fake.apiUrl}: check the flow and deployment names (prefect deployment ls)`,
    );
  });

  test('an unknown deployment id is a permanent not-found error', async () => {
    const id = '2b7f9f2e-0000-4000-8000-000000000000';
    const err = await rejection(client.resolveDeployment(id));
    assert.ok(err instanceof NotFoundError);
    assert.match(err.message, new RegExp(`Prefect deployment '${id}' not found`));
  });

  test('a malformed reference is rejected without a request', async () => {
    const before = fake.state.requests.length;
    const err = await rejection(client.resolveDeployment('just-a-name'));
    assert.ok(err instanceof UserInputError);
    assert.match(err.message, /flow-name\/deployment-name/);
    assert.equal(fake.state.requests.length, before);
  });

  test('an API URL with credentials or a query string is refused without echoing it', () => {
    const url = new URL(fake.apiUrl);
    url.username = 'user';
    url.password = 'hunter2';
    assert.throws(
      () => createPrefectClient({ apiUrl: url.toString(), apiKey: fake.apiKey }),
      (err: unknown) => err instanceof UserInputError && !err.message.includes('hunter2'),
    );
    assert.throws(
      () => createPrefectClient({ apiUrl: `${fake.apiUrl}?token=abc`, apiKey: fake.apiKey }),
      (err: unknown) => err instanceof UserInputError && !err.message.includes('abc'),
    );
  });
});

describe('create_flow_run', () => {
  test('201 then 200 for the same idempotency key, one run in Prefect', async () => {
    const dep = fake.addDeployment({ flowName: 'billing', name: 'daily' });
    const key = prefectIdempotencyKey(dep.id, 'fw-run-1');
    const first = await client.createFlowRun(dep.id, {
      idempotencyKey: key,
      name: 'billing-2024-06-01',
      parameters: { day: '2024-06-01' },
      tags: ['flowwarden'],
      jobVariables: { env: { A: '1' } },
    });
    assert.equal(first.created, true);
    assert.equal(first.run.deployment_id, dep.id);
    assert.equal(first.run.name, 'billing-2024-06-01');
    assert.equal(first.run.state_type, 'SCHEDULED');
    assert.deepEqual(first.run.parameters, { day: '2024-06-01' });

    const again = await client.createFlowRun(dep.id, { idempotencyKey: key, parameters: { day: 'other' } });
    assert.equal(again.created, false);
    assert.equal(again.run.id, first.run.id);

    const runs = [...fake.state.flowRuns.values()].filter((r) => r.deployment_id === dep.id);
    assert.equal(runs.length, 1);
    assert.deepEqual(runs[0]?.job_variables, { env: { A: '1' } });
  });

  test('an idempotency key is scoped to the flow: another deployment of the flow gets the same run', async () => {
    // Why prefectIdempotencyKey includes the deployment id.
    const a = fake.addDeployment({ flowName: 'shared-flow', name: 'a' });
    const b = fake.addDeployment({ flowName: 'shared-flow', name: 'b' });
    const first = await client.createFlowRun(a.id, { idempotencyKey: 'naive-key' });
    const collide = await client.createFlowRun(b.id, { idempotencyKey: 'naive-key' });
    assert.equal(collide.created, false);
    assert.equal(collide.run.id, first.run.id);
    const scoped = await client.createFlowRun(b.id, { idempotencyKey: prefectIdempotencyKey(b.id, 'r1') });
    assert.equal(scoped.created, true);
  });

  test('an unknown field is a 422 PermanentError carrying Prefect’s detail', async () => {
    // An older Prefect (before job_variables existed) rejects the field as an extra input.
    const old = await startFakePrefect({ createFlowRunOmits: ['job_variables'] });
    try {
      const dep = old.addDeployment({ flowName: 'billing', name: 'strict' });
      const c = createPrefectClient({ apiUrl: old.apiUrl, apiKey: old.apiKey });
      const err = await rejection(c.createFlowRun(dep.id, { idempotencyKey: 'k-422', jobVariables: { a: 1 } }));
      assert.ok(err instanceof PermanentError);
      assert.match(err.message, /422/);
      assert.match(err.message, /Invalid request received\. job_variables: Extra inputs are not permitted/);
      assert.ok(!err.message.includes(old.apiKey));
      assert.equal(old.state.flowRuns.size, 0);
    } finally {
      await old.close();
    }
  });

  test('the fake answers unknown fields and bad types in Prefect’s 422 shape', async () => {
    const dep = fake.addDeployment({ flowName: 'billing', name: 'raw' });
    const res = await fetch(`${fake.apiUrl}/deployments/${dep.id}/create_flow_run`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ idempotency_key: 'x', bogus_field: 1 }),
    });
    assert.equal(res.status, 422);
    const body = (await res.json()) as {
      exception_message: string;
      exception_detail: Array<{ loc: unknown[]; msg: string }>;
      request_body: unknown;
    };
    assert.equal(body.exception_message, 'Invalid request received.');
    assert.deepEqual(body.exception_detail[0]?.loc, ['body', 'bogus_field']);
    assert.deepEqual(body.request_body, { idempotency_key: 'x', bogus_field: 1 });

    const err = await rejection(
      client.createFlowRun(dep.id, {
        idempotencyKey: 'k-bad',
        jobVariables: 'not-an-object' as unknown as Record<string, unknown>,
      }),
    );
    assert.ok(err instanceof PermanentError);
    assert.match(err.message, /job_variables/);
  });

  test('unknown deployment → NotFoundError', async () => {
    const err = await rejection(
      client.createFlowRun('2b7f9f2e-1111-4000-8000-000000000000', { idempotencyKey: 'k-404' }),
    );
    assert.ok(err instanceof NotFoundError);
  });
});

describe('error classification', () => {
  test('429 → RateLimitedError with the Retry-After wait', async () => {
    const dep = fake.addDeployment({ flowName: 'rl', name: 'd' });
    fake.failNext('POST /deployments/:id/create_flow_run', '429', 1, { retryAfter: '7' });
    const err = await rejection(client.createFlowRun(dep.id, { idempotencyKey: 'k-429' }));
    assert.ok(err instanceof RateLimitedError);
    assert.equal(err.retryAfterMs, 7_000);
    assert.equal(isPermanent(err), false);
    // The next call goes through.
    assert.equal((await client.createFlowRun(dep.id, { idempotencyKey: 'k-429' })).created, true);
  });

  test('500 → transient error', async () => {
    const dep = fake.addDeployment({ flowName: 'five', name: 'hundred' });
    fake.failNext('GET /deployments/:id', '500');
    const err = await rejection(client.readDeployment(dep.id));
    assert.equal(isTransient(err), true);
    assert.match(err.message, /500/);
    assert.equal((await client.readDeployment(dep.id)).id, dep.id);
  });

  test('a hung request times out as a transient error', async () => {
    const dep = fake.addDeployment({ flowName: 'slow', name: 'one' });
    const c = createPrefectClient({ apiUrl: fake.apiUrl, apiKey: fake.apiKey, timeoutMs: 150 });
    fake.failNext('GET /deployments/:id', 'timeout');
    const err = await rejection(c.readDeployment(dep.id));
    assert.equal(isTransient(err), true);
    assert.match(err.message, /timed out after 150ms/);
    // On a loaded machine the client may give up before its request reaches the fake: the scripted
    // hang would then catch the next test's request.
    fake.clearFailures();
  });

  test('a reset connection is a transient error', async () => {
    const dep = fake.addDeployment({ flowName: 'reset', name: 'one' });
    fake.failNext('GET /deployments/:id', 'reset');
    const err = await rejection(client.readDeployment(dep.id));
    assert.equal(isTransient(err), true);
    assert.match(err.message, /network error/);
  });

  test('the caller’s abort signal is rethrown as an abort, not classified', async () => {
    const dep = fake.addDeployment({ flowName: 'abort', name: 'one' });
    fake.failNext('GET /deployments/:id', 'timeout');
    const ac = new AbortController();
    const pending = client.readDeployment(dep.id, { signal: ac.signal });
    setImmediate(() => ac.abort());
    const err = await rejection(pending);
    assert.equal(err.name, 'AbortError');
  });

  test('a wrong API key is permanent and never echoed', async () => {
    const wrongKey = 'pnu_wrong_key_123456';
    const c = createPrefectClient({ apiUrl: fake.apiUrl, apiKey: wrongKey });
    const err = await rejection(c.readDeployment('2b7f9f2e-1111-4000-8000-000000000000'));
    assert.ok(isPermanent(err));
    assert.match(err.message, /401/);
    assert.ok(!inspect(err, { depth: 10 }).includes(wrongKey));
  });
});

describe('flow runs', () => {
  test('a poller reads a run through its states until terminal', async () => {
    const dep = fake.addDeployment({
      flowName: 'poll',
      name: 'd',
      runScript: [
        { type: 'PENDING' },
        { type: 'RUNNING' },
        { type: 'FAILED', message: 'boom' },
      ],
    });
    const { run } = await client.createFlowRun(dep.id, { idempotencyKey: prefectIdempotencyKey(dep.id, 'poll-1') });
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) {
      const current = await client.readFlowRun(run.id);
      const mapped = mapPrefectState(current.state_type, current.state_name);
      seen.push(`${mapped.stateType}/${mapped.stateName}`);
      if (mapped.terminal) {
        assert.equal(current.state?.message, 'boom');
        assert.ok(current.start_time && current.end_time);
        break;
      }
    }
    assert.deepEqual(seen, ['PENDING/Pending', 'RUNNING/Running', 'FAILED/Failed']);
  });

  test('retries, pauses and cancelling are not terminal', async () => {
    const dep = fake.addDeployment({ flowName: 'poll', name: 'retrying' });
    const { run } = await client.createFlowRun(dep.id, { idempotencyKey: 'retry-1' });
    fake.script(run.id, [
      { type: 'RUNNING' },
      { type: 'SCHEDULED', name: 'AwaitingRetry' },
      { type: 'RUNNING', name: 'Retrying' },
      { type: 'PAUSED', name: 'Paused' },
      { type: 'CANCELLING', name: 'Cancelling' },
      { type: 'CANCELLED', name: 'Cancelled' },
    ]);
    const trail: Array<[string, boolean]> = [];
    for (;;) {
      const current = await client.readFlowRun(run.id);
      const mapped = mapPrefectState(current.state_type, current.state_name);
      trail.push([mapped.stateName, mapped.terminal]);
      if (mapped.terminal) break;
    }
    assert.deepEqual(trail, [
      ['Running', false],
      ['AwaitingRetry', false],
      ['Retrying', false],
      ['Paused', false],
      ['Cancelling', false],
      ['Cancelled', true],
    ]);
  });

  test('advance moves a run at once', async () => {
    const dep = fake.addDeployment({ flowName: 'adv', name: 'd' });
    const { run } = await client.createFlowRun(dep.id, { idempotencyKey: 'adv-1' });
    fake.advance(run.id, 'SCHEDULED', 'Late');
    const read = await client.readFlowRun(run.id);
    assert.equal(read.state_name, 'Late');
    assert.equal(mapPrefectState(read.state_type, read.state_name).terminal, false);
  });

  test('an unknown flow run id is NotFoundError', async () => {
    const err = await rejection(client.readFlowRun('2b7f9f2e-2222-4000-8000-000000000000'));
    assert.ok(err instanceof NotFoundError);
    assert.match(err.message, /flow run/);
  });

  test('filter by deployment and expected start window, sorted, paged', async () => {
    const dep = fake.addDeployment({ flowName: 'hist', name: 'd' });
    const noise = fake.addDeployment({ flowName: 'hist', name: 'noise' });
    const base = Date.parse('2024-03-01T00:00:00Z');
    const hour = 3_600_000;
    for (let i = 5; i >= 0; i--) {
      fake.addFlowRun(dep.id, { name: `h${i}`, expectedStartTime: new Date(base + i * hour), state: { type: 'COMPLETED' } });
    }
    fake.addFlowRun(noise.id, { expectedStartTime: new Date(base + 2 * hour) });

    const window = {
      deploymentIds: [dep.id],
      expectedStartAfter: new Date(base + hour),
      expectedStartBefore: new Date(base + 4 * hour),
      sort: 'EXPECTED_START_TIME_ASC' as const,
    };
    const page1 = await client.filterFlowRuns({ ...window, limit: 2, offset: 0 });
    const page2 = await client.filterFlowRuns({ ...window, limit: 2, offset: 2 });
    assert.deepEqual(page1.map((r) => r.name), ['h1', 'h2']);
    assert.deepEqual(page2.map((r) => r.name), ['h3', 'h4']);

    const newest = await client.filterFlowRuns({ deploymentIds: [dep.id], sort: 'EXPECTED_START_TIME_DESC', limit: 1 });
    assert.equal(newest[0]?.name, 'h5');

    const byId = await client.filterFlowRuns({ deploymentIds: [dep.id], sort: 'ID_DESC', limit: 200 });
    const ids = byId.map((r) => r.id);
    assert.deepEqual(ids, [...ids].sort().reverse());

    // The top-level `deployments` filter shape works against the fake as well.
    const res = await fetch(`${fake.apiUrl}/flow_runs/filter`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ deployments: { id: { any_: [noise.id] } }, limit: 10 }),
    });
    assert.equal(((await res.json()) as unknown[]).length, 1);
  });

  test('a limit above the server cap is answered 422 by Prefect; the client adopts the cap and asks again', async () => {
    const dep = fake.addDeployment({ flowName: 'cap', name: 'd' });
    for (let i = 0; i < 3; i++) fake.addFlowRun(dep.id);
    const res = await fetch(`${fake.apiUrl}/flow_runs/filter`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ limit: 201 }),
    });
    assert.equal(res.status, 422);
    assert.deepEqual(await res.json(), { detail: 'Invalid limit: must be less than or equal to 200.' });

    const err = await rejection(client.filterFlowRuns({ limit: 1001 }));
    assert.ok(err instanceof UserInputError, 'beyond any server cap flowwarden asks for: refused before sending');
  });

  test('task runs of a flow run', async () => {
    const dep = fake.addDeployment({ flowName: 'tasks', name: 'd' });
    const run = fake.addFlowRun(dep.id, { state: { type: 'FAILED' } });
    const other = fake.addFlowRun(dep.id);
    fake.addTaskRun(run.id, { name: 'extract', state: { type: 'COMPLETED' } });
    fake.addTaskRun(run.id, { name: 'run_dbt', state: { type: 'FAILED', message: 'dbt exploded' } });
    fake.addTaskRun(other.id, { name: 'unrelated' });

    const all = await client.filterTaskRuns({ flowRunIds: [run.id], limit: 50 });
    assert.deepEqual(all.map((t) => t.name.replace(/-[0-9a-f]{3}$/, '')).sort(), ['extract', 'run_dbt'], 'Prefect 3 names: <task>-<3 hex>');
    const failed = await client.filterTaskRuns({ flowRunIds: [run.id], stateTypes: ['FAILED'], limit: 50 });
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.state?.message, 'dbt exploded');
  });
});

describe('schedules and pausing', () => {
  test('deactivate and reactivate a deployment schedule', async () => {
    const dep = fake.addDeployment({ flowName: 'sched', name: 'd', schedules: [{}, { active: false }] });
    const schedules = await client.listDeploymentSchedules(dep.id);
    assert.deepEqual(schedules.map((s) => s.active), [true, false]);
    const first = schedules[0]!;

    await client.setDeploymentScheduleActive(dep.id, first, false);
    assert.equal(dep.schedules[0]?.active, false);
    assert.deepEqual((await client.listDeploymentSchedules(dep.id)).map((s) => s.active), [false, false]);

    await client.setDeploymentScheduleActive(dep.id, first, true);
    assert.equal(dep.schedules[0]?.active, true);

    const err = await rejection(client.setDeploymentScheduleActive(dep.id, { id: '2b7f9f2e-3333-4000-8000-000000000000' }, false));
    assert.ok(err instanceof NotFoundError);
  });

  test('pause and resume a deployment', async () => {
    const dep = fake.addDeployment({ flowName: 'sched', name: 'pausable' });
    await client.pauseDeployment(dep.id);
    assert.equal((await client.readDeployment(dep.id)).paused, true);
    await client.resumeDeployment(dep.id);
    assert.equal((await client.readDeployment(dep.id)).paused, false);
  });
});

describe('secrets', () => {
  test('the fake requires the bearer key', async () => {
    const res = await fetch(`${fake.apiUrl}/flow_runs/filter`, { method: 'POST', body: '{}' });
    assert.equal(res.status, 401);
  });

  test('the API key appears in no error message, stack or cause', () => {
    assert.ok(seenErrors.length >= 10, `collected ${seenErrors.length} errors`);
    for (const err of seenErrors) {
      const text = inspect(err, { depth: 10 }) + String((err as Error).stack);
      assert.ok(!text.includes(fake.apiKey), `key leaked in: ${(err as Error).message}`);
    }
  });
});
