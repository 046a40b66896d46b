/**
 * Guard actions on Prefect: a disabled flow that targets (or watches) a Prefect deployment must not
 * keep running from Prefect's own schedules.
 *
 * - onDisable: switch off every active schedule of the deployment, remembering which ones we
 *   switched off (prefect_schedule_holds) before each PATCH.
 * - enforce: the same pass again. A redeploy (`prefect deploy`) re-creates or re-activates schedules;
 *   whatever is active now is switched off and held. Returns true if anything had to be.
 * - onReactivate: switch on exactly the schedules we hold (not one an operator had turned off on
 *   purpose), then forget them. A held schedule that no longer exists is just forgotten.
 * The deployment is resolved fresh each time (never from the cache): a redeploy may change its id.
 */
import type pg from 'pg';
import type { GuardActions } from '../guard/actions.ts';
import type { FlowRow } from '../queries/flows.ts';
import type { Logger } from '../log.ts';
import type { PrefectTargetSpec, TargetSpec } from '../targets/spec.ts';
import { listScheduleHolds, recordScheduleHold, releaseScheduleHold } from '../queries/prefect.ts';
import type { PrefectConnector } from './connector.ts';

export function prefectGuardActions(connector: PrefectConnector, deps: { pool: pg.Pool; log: Logger }): GuardActions {
  const client = connector.client;

  function prefectTarget(flow: FlowRow): PrefectTargetSpec | undefined {
    const target = flow.target as TargetSpec;
    return target.type === 'prefect' ? target : undefined;
  }

  /** Switch off the deployment's active schedules; returns how many were active. */
  async function hold(flow: FlowRow, target: PrefectTargetSpec): Promise<number> {
    const log = deps.log.child({ flow: flow.name, guardAction: 'prefect' });
    const deployment = await connector.call('resolveDeployment', () => connector.deployments.resolve(target.deployment, { fresh: true }), { log });
    const schedules = await connector.call('listDeploymentSchedules', () => client.listDeploymentSchedules(deployment.id), { log });
    let switched = 0;
    for (const s of schedules) {
      if (!s.active) continue;
      await recordScheduleHold(deps.pool, flow.id, deployment.id, s.id);
      await connector.call('setDeploymentScheduleActive', () => client.setDeploymentScheduleActive(deployment.id, s.id, false), { log });
      switched += 1;
    }
    if (switched) log.info({ deploymentId: deployment.id, schedules: switched }, 'Prefect deployment schedules switched off');
    return switched;
  }

  return {
    name: 'prefect',

    async onDisable(flow) {
      const target = prefectTarget(flow);
      if (target) await hold(flow, target);
    },

    async enforce(flow) {
      const target = prefectTarget(flow);
      if (!target) return false;
      return (await hold(flow, target)) > 0;
    },

    async onReactivate(flow, by) {
      const target = prefectTarget(flow);
      if (!target) return;
      const log = deps.log.child({ flow: flow.name, guardAction: 'prefect' });
      const holds = await listScheduleHolds(deps.pool, flow.id);
      if (holds.length === 0) return;
      const deployment = await connector.call('resolveDeployment', () => connector.deployments.resolve(target.deployment, { fresh: true }), { log });
      const existing = new Map(
        (await connector.call('listDeploymentSchedules', () => client.listDeploymentSchedules(deployment.id), { log })).map((s) => [s.id, s]),
      );
      let switched = 0;
      for (const h of holds) {
        const s = existing.get(h.scheduleId);
        if (s && !s.active) {
          await connector.call('setDeploymentScheduleActive', () => client.setDeploymentScheduleActive(deployment.id, s.id, true), { log });
          switched += 1;
        }
        await releaseScheduleHold(deps.pool, flow.id, h.scheduleId);
      }
      log.info({ deploymentId: deployment.id, schedules: switched, by }, 'Prefect deployment schedules switched back on');
    },
  };
}
