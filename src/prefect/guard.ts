/**
 * Guard actions on Prefect: a disabled flow that targets (or watches) a Prefect deployment must not
 * keep running from Prefect's own schedules. onDisable switches its active schedules off (held in
 * prefect_schedule_holds) and cancels past-due auto-scheduled runs; enforce repeats that after a
 * redeploy; onReactivate switches on exactly the held schedules. Why each step is needed (Prefect's
 * own behaviour): docs/internals.md, "Prefect".
 */
import type pg from 'pg';
import type { GuardActions } from '../guard/actions.ts';
import type { FlowRow } from '../queries/flows.ts';
import type { Logger } from '../log.ts';
import type { PrefectTargetSpec } from '../targets/spec.ts';
import type { PrefectDeployment, PrefectFlowRun } from './client/index.ts';
import { listScheduleHolds, recordScheduleHold, releaseScheduleHold } from '../queries/prefect.ts';
import { getRun } from '../runs/read.ts';
import { applyLockedTransition, type TransitionDeps } from '../runs/service.ts';
import { isTerminal } from '../runs/states.ts';
import { withTransaction, dbNow } from '../db/client.ts';
import type { PrefectConnector } from './connector.ts';

/** Scheduled-type states that are not the scheduler's pending work: leave these alone. */
const NOT_CANCELLED = new Set(['AwaitingRetry', 'AwaitingConcurrencySlot']);

export function prefectGuardActions(connector: PrefectConnector, deps: { pool: pg.Pool; log: Logger; transitions?: TransitionDeps }): GuardActions {
  const client = connector.client;

  function prefectTarget(flow: FlowRow): PrefectTargetSpec | undefined {
    const target = flow.target;
    return target.type === 'prefect' ? target : undefined;
  }

  /** Switch off the deployment's active schedules; returns how many were active. */
  async function hold(flow: FlowRow, target: PrefectTargetSpec): Promise<{ switched: number; deployment: PrefectDeployment }> {
    const log = deps.log.child({ flow: flow.name, guardAction: 'prefect' });
    const deployment = await connector.call('resolveDeployment', () => connector.deployments.resolve(target.deployment, { fresh: true }), { log });
    const schedules = await connector.call('listDeploymentSchedules', () => client.listDeploymentSchedules(deployment.id), { log });
    let switched = 0;
    for (const s of schedules) {
      if (!s.active) continue;
      await recordScheduleHold(deps.pool, flow.id, deployment.id, s.id);
      await connector.call('setDeploymentScheduleActive', () => client.setDeploymentScheduleActive(deployment.id, s, false), { log });
      switched += 1;
    }
    if (switched) log.info({ deploymentId: deployment.id, schedules: switched }, 'Prefect deployment schedules switched off');
    return { switched, deployment };
  }

  /**
   * Cancel the deployment's runs that Prefect's scheduler created and that are already due but not
   * started (Scheduled/Late): switching a schedule off leaves them. Returns how many were cancelled.
   */
  async function cancelPastDue(flow: FlowRow, deployment: PrefectDeployment, why: string): Promise<number> {
    const log = deps.log.child({ flow: flow.name, guardAction: 'prefect' });
    const now = await dbNow(deps.pool);
    const due: PrefectFlowRun[] = [];
    for (let offset = 0; ; ) {
      const limit = client.pageLimit;
      const page = await connector.call(
        'filterFlowRuns',
        () =>
          client.filterFlowRuns({
            deploymentIds: [deployment.id],
            stateTypes: ['SCHEDULED'],
            expectedStartBefore: now,
            sort: 'EXPECTED_START_TIME_ASC',
            limit,
            offset,
          }),
        { log },
      );
      due.push(...page);
      offset += page.length;
      if (page.length < Math.min(limit, client.pageLimit) || page.length === 0) break;
    }
    let cancelled = 0;
    const message = `Cancelled by flowwarden: flow '${flow.name}' is disabled by the guard (${why}); its past-due scheduled run would otherwise still start`;
    for (const fr of due) {
      if (!fr.auto_scheduled || NOT_CANCELLED.has(fr.state_name ?? '')) continue;
      try {
        const result = await connector.call('setFlowRunState', () => client.setFlowRunState(fr.id, { type: 'CANCELLED', message }), { log });
        if (result.status !== 'ACCEPT') {
          log.warn({ flowRunId: fr.id, status: result.status, reason: result.reason }, 'Prefect did not accept cancelling a past-due run');
          continue;
        }
        cancelled += 1;
        await closeImported(fr.id, `Prefect flow run ${fr.id} (${fr.state_name ?? 'Scheduled'}, due ${fr.expected_start_time}) cancelled in Prefect by the guard: ${why}`);
      } catch (err) {
        log.warn({ err, flowRunId: fr.id }, 'cannot cancel a past-due Prefect run; the next enforce pass tries again');
      }
    }
    if (cancelled) log.info({ deploymentId: deployment.id, cancelled }, 'past-due Prefect runs cancelled');
    return cancelled;
  }

  /** Our imported copy of a Prefect run the guard cancelled: CANCELLED in our history too. */
  async function closeImported(flowRunId: string, message: string): Promise<void> {
    if (!deps.transitions) return; // the watch refresh mirrors it on its next pass
    const fx = deps.transitions;
    await withTransaction(deps.pool, async (tx) => {
      const { rows } = await tx.query<{ id: string }>(
        `select id from flowwarden.runs where external_id = $1 and origin = 'watch' order by id for update`,
        [flowRunId],
      );
      for (const { id } of rows) {
        const run = await getRun(tx, id, { forUpdate: true });
        if (!run || isTerminal(run.stateType)) continue;
        await applyLockedTransition(fx, tx, run, { to: 'CANCELLED', name: 'Cancelled', message, externalId: flowRunId });
      }
    });
  }

  return {
    name: 'prefect',

    async onDisable(flow, reason) {
      const target = prefectTarget(flow);
      if (!target) return;
      const { deployment } = await hold(flow, target);
      await cancelPastDue(flow, deployment, reason);
    },

    async enforce(flow) {
      const target = prefectTarget(flow);
      if (!target) return false;
      const { switched, deployment } = await hold(flow, target);
      const cancelled = await cancelPastDue(flow, deployment, flow.disabledReason ?? 'disabled');
      return switched + cancelled > 0;
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
          await connector.call('setDeploymentScheduleActive', () => client.setDeploymentScheduleActive(deployment.id, s, true), { log });
          switched += 1;
        }
        await releaseScheduleHold(deps.pool, flow.id, h.scheduleId);
      }
      log.info({ deploymentId: deployment.id, schedules: switched, by }, 'Prefect deployment schedules switched back on');
    },
  };
}
