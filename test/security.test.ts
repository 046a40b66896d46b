/**
 * Hardening (issue 11): each test here attacks one hole a review found in a running pod.
 */
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from './support/app.ts';
import { withTransaction } from '../src/db/client.ts';
import { triggerRunTx, upsertFlowTx } from '../src/producers/operations.ts';
import { applyTransition } from '../src/runs/service.ts';
import { evaluateFlowHealth } from '../src/guard/health.ts';
import { reactivateFlowTx } from '../src/guard/operations.ts';
import type { FlowInputRaw } from '../src/flows/spec.ts';

let app: TestApp;

before(async () => {
  app = await startTestApp({ config: { maxConsecutiveFailures: 3 } });
});
after(async () => {
  await app.close();
});

async function defineFlow(def: Partial<FlowInputRaw> & { name: string }): Promise<string> {
  const out = await withTransaction(app.pool, (tx) =>
    upsertFlowTx(tx, { target: { type: 'function', handler: 'noop' }, schedules: [{ name: 'hourly', cron: '0 * * * *' }], ...def }),
  );
  return out.flow.id;
}

describe('health baseline', () => {
  test('runs triggered for a future time that failed before a reactivation do not count after it', async () => {
    const flowId = await defineFlow({ name: 's-future' });
    const future = new Date(Date.now() + 7 * 86400_000);
    for (let i = 0; i < 3; i++) {
      const { runId } = await withTransaction(app.pool, (tx) => triggerRunTx(app.boss, tx, 's-future', {}, { origin: 'manual', scheduledFor: future }));
      await withTransaction(app.pool, (tx) => applyTransition(app.boss, tx, { runId, to: 'FAILED', message: 'failed early' }));
    }
    assert.equal((await evaluateFlowHealth(app.deps, flowId)).action, 'disabled');
    await withTransaction(app.pool, (tx) => reactivateFlowTx(app.boss, tx, 's-future', { by: 'alice' }));
    const again = await evaluateFlowHealth(app.deps, flowId);
    assert.deepEqual(again, { action: 'none', why: 'healthy' }, 'failures that happened before the reactivation must not count');
  });
});
