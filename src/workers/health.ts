/**
 * health — evaluate a flow's health rules, or act for a held flow. By payload reason: a failure or
 * a sweep evaluates the rules and disables the flow if one fires (a held flow, on sweep: connector
 * enforce actions); disabled/reactivated run the connectors' onDisable/onReactivate actions.
 * Idempotent; errors are rethrown for pg-boss to retry. Details: docs/internals.md, "Guard".
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
