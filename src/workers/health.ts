/**
 * health — evaluate a flow's health rules, or act for a held flow.
 *
 * Payload { flowId, reason }:
 *   run.failed, task.failed, sweep
 *                     → the flow is not held: evaluate the rules (src/guard/health.ts) and disable
 *                       it if one fires, then run connector onDisable actions (task.failed: a
 *                       transition recorded a failed task result, whatever the run's own state);
 *                       the flow is held (sweep only): connector enforce actions (e.g. switch a
 *                       Prefect deployment's schedule back off);
 *   disabled          → an operator disabled it (CLI/API): connector onDisable actions;
 *   reactivated       → an operator reactivated it: connector onReactivate actions; a failed action
 *                       fails the job, which pg-boss retries with backoff (REACTIVATED_JOB_RETRY:
 *                       nothing else would switch the Prefect schedules back on).
 * Idempotent: evaluation locks the flow and re-checks; connector actions are idempotent by contract.
 * Dedup: failure jobs are debounced per flow (singletonKey = flowId), sweep jobs throttled per flow.
 * Errors: rethrown → pg-boss retries with backoff (a few times: the next failure or sweep re-asks).
 */
import type { JobWithMetadata } from 'pg-boss';
import { QUEUES } from '../queue/catalog.ts';
import { HealthPayload } from '../queue/payloads.ts';
import type { WorkerDefinition, WorkerDeps } from './types.ts';
import { getFlowById, guardHistory } from '../queries/guard.ts';
import { evaluateFlowHealth } from '../guard/health.ts';
import { runDisableActions, runEnforceActions, runReactivateActions } from '../guard/operations.ts';
import type { Logger } from '../log.ts';


async function handle(deps: WorkerDeps, job: JobWithMetadata<HealthPayload>, log: Logger): Promise<void> {
  const { flowId, reason } = job.data;
  const flow = await getFlowById(deps.pool, flowId);
  if (!flow) {
    log.debug('flow no longer exists');
    return;
  }
  const history = reason === 'run.failed' || reason === 'task.failed' ? [] : await guardHistory(deps.pool, flow.name);
  const open = history.find((h) => h.reactivatedAt === null);
  const held = flow.disabledAt !== null || open !== undefined;
  switch (reason) {
    case 'disabled':
      if (held) await runDisableActions(deps.guardActions, log, flow, flow.disabledReason ?? open?.reason ?? 'disabled');
      return;
    case 'reactivated':
      if (!held) await runReactivateActions(deps.guardActions, log, flow, history[0]?.reactivatedBy ?? 'operator');
      return;
    case 'sweep':
      if (held) {
        const acted = await runEnforceActions(deps.guardActions, log, flow);
        if (acted.length > 0) log.warn({ flow: flow.name, actions: acted }, `flow ${flow.name} is held disabled: ${acted.join(', ')} had to switch it off again`);
        return;
      }
      break;
    case 'run.failed':
    case 'task.failed':
      break;
  }
  const outcome = await evaluateFlowHealth(deps, flowId);
  log.debug({ flow: flow.name, action: outcome.action }, 'health evaluated');
}

export const healthWorker: WorkerDefinition<typeof HealthPayload> = {
  queue: QUEUES.health,
  workOptions: () => ({
    includeMetadata: true,
    localConcurrency: 2,
    batchSize: 1,
    pollingIntervalSeconds: 1,
    notifyPollingIntervalSeconds: 1,
  }),
  payload: HealthPayload,
  handle,
};
