/**
 * The README's runnable example as a newcomer runs it: a pod with examples/handlers.ts, then
 * `apply -f examples/flows.yaml`. Every flow either runs to COMPLETED or ships paused with the
 * reason (sync-crm needs the user's own endpoint), and nothing gets auto-disabled. No signing
 * secret is configured, as under `npm run dev`.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startTestApp, waitFor, type TestApp } from './support/app.ts';
import { HandlerRegistry, loadHandlersModule } from '../src/targets/function.ts';
import { applyDefinitions, readDefinitions, validateDefinitions } from '../src/apply.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx } from '../src/runs/operations.ts';
import { getRun, runTasks } from '../src/runs/read.ts';
import { listFlows, listSchedules } from '../src/queries/flows.ts';

const EXAMPLES = path.resolve(import.meta.dirname, '../examples');
let app: TestApp;

before(async () => {
  const registry = new HandlerRegistry();
  await loadHandlersModule(path.join(EXAMPLES, 'handlers.ts'), registry);
  app = await startTestApp({ registry, roles: ['worker'], start: true, config: { httpSecret: undefined } });
});
after(async () => {
  await app?.close();
});

test('examples/flows.yaml applies and every flow in it runs as shown (or ships paused, saying why)', async () => {
  const file = path.join(EXAMPLES, 'flows.yaml');
  const flows = validateDefinitions(readDefinitions(file), file, app.config.maxParametersBytes);
  await applyDefinitions(app.pool, flows, app.config.maxParametersBytes);

  for (const name of ['nightly-report', 'heartbeat']) {
    const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, name, {}));
    const run = await waitFor(async () => {
      const r = await getRun(app.pool, runId);
      return r && ['COMPLETED', 'FAILED', 'CRASHED'].includes(r.stateType) ? r : undefined;
    }, { what: `a run of ${name} to finish`, timeoutMs: 30_000 });
    assert.equal(run.stateType, 'COMPLETED', `${name}: ${run.stateMessage ?? ''}`);
    if (name === 'nightly-report') {
      assert.deepEqual((await runTasks(app.pool, runId)).map((t) => [t.name, t.stateType]), [['load-warehouse', 'COMPLETED'], ['render', 'COMPLETED']]);
    }
  }

  const all = await listFlows(app.pool, { limit: 100 });
  assert.deepEqual(all.filter((f) => f.disabledAt).map((f) => f.name), [], 'no flow held disabled by the guard');
  for (const f of all) {
    const schedules = await listSchedules(app.pool, f.id);
    if (f.name === 'sync-crm') {
      assert.ok(schedules.every((s) => !s.enabled), 'sync-crm ships paused: it needs the user\'s own endpoint');
      assert.match(schedules[0]!.note ?? '', /needs your own endpoint/);
    } else {
      assert.ok(schedules.every((s) => s.enabled && s.nextRunAt), `${f.name}: its schedules run`);
    }
  }
});
