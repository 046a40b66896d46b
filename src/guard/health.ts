/**
 * Flow health (docs/guard.md): the failure trigger (a debounced health job per failing flow), the
 * rules that judge a flow, the evaluation that disables it, the enforce pass that keeps a held
 * flow disabled, and the sweep's request for evaluations. Evaluation and enforcement lock the flow
 * row and re-check under the lock, so concurrent pods disable a flow once and count one
 * enforcement. The periodic loop: src/maintenance/health-sweep.ts.
 */
import { runCancelMany } from '../runs/store.ts';
import type pg from 'pg';
import { compilePattern, type Pattern } from './pattern.ts';
import type { PgBoss } from 'pg-boss';
import { bossDb, withTransaction, type Queryable } from '../db/client.ts';
import {
  disableFlowSchedules,
  failedCriticalTasks,
  flowsNeedingEvaluation,
  getFlowById,
  heldFlowIds,
  openHold,
  recentTerminalRuns,
  recordEnforcement,
  setFlowDisabled,
  violatedHolds,
  type FailedTask,
  type TerminalRun,
} from '../queries/guard.ts';
import type { FlowRow } from '../queries/flows.ts';
import type { HealthPolicy } from '../flows/spec.ts';
import { EVENTS, QUEUES, insertJobs } from '../queue/catalog.ts';
import { publishEvent, type FailureCause, type FailureHook } from '../runs/service.ts';
import { FAILURE_TYPES } from '../runs/states.ts';
import { type StateType } from '../types.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { GuardActionRegistry } from './actions.ts';
import { disableLockedFlow, reactivateHint, runDisableActions, type DisableOutcome, type GuardRule } from './operations.ts';

/** Debounce slot for failure-triggered evaluations of one flow. */
export const HEALTH_DEBOUNCE_SECONDS = 5;

export interface GuardDeps {
  pool: pg.Pool;
  boss: PgBoss;
  config: Pick<Config, 'maxConsecutiveFailures'>;
  log: Logger;
  guardActions: GuardActionRegistry;
}

// ---------------------------------------------------------------------------------------------
// The failure trigger

/** Send a debounced health job for the flow inside the caller's transaction. */
export async function requestHealthCheck(boss: PgBoss, tx: Queryable, flowId: string, reason: FailureCause = 'run.failed'): Promise<void> {
  const data: { flowId: string; reason: FailureCause } = { flowId, reason };
  await boss.sendDebounced(QUEUES.health, data, { db: bossDb(tx) }, HEALTH_DEBOUNCE_SECONDS, flowId);
}

/**
 * The guard's failure hook (deps.transitions.onFailure, wired in createApp and the producer client):
 * a failed run requests the flow's debounced health evaluation in the failing transaction. A failure
 * to enqueue never fails the transition: it is logged and the periodic sweep picks the flow up.
 */
export function guardFailureHook(log?: Logger): FailureHook {
  return async (tx, run, boss, cause) => {
    try {
      await requestHealthCheck(boss, tx, run.flowId, cause);
    } catch (err) {
      log?.warn({ err, flow: run.flowName, runId: run.id }, 'could not enqueue the health check; the periodic sweep will evaluate the flow');
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Rules (pure)

export interface ResolvedPolicy {
  maxConsecutiveFailures: number;
  criticalTasks: string[];
  ignorePatterns: Pattern[];
  autoDisable: boolean;
}

export function resolvePolicy(health: HealthPolicy | null | undefined, defaults: { maxConsecutiveFailures: number }): ResolvedPolicy {
  const h = health ?? {};
  return {
    maxConsecutiveFailures: h.maxConsecutiveFailures ?? defaults.maxConsecutiveFailures,
    criticalTasks: h.criticalTasks ?? [],
    // Patterns were validated when the flow was written; a bad one here is skipped, not fatal.
    ignorePatterns: (h.ignorePatterns ?? []).flatMap((p) => {
      try {
        return [compilePattern(p)];
      } catch {
        return [];
      }
    }),
    autoDisable: h.autoDisable ?? true,
  };
}

export type Verdict =
  | { healthy: true }
  | { healthy: false; rule: Exclude<GuardRule, 'manual'>; reason: string; evidence: Record<string, unknown> };

const clip = (s: string | null | undefined, n = 300) => (s && s.length > n ? `${s.slice(0, n - 1)}…` : s ?? '');

/** `runs`: newest first, terminal, CANCELLED excluded (as recentTerminalRuns returns them). */
export function consecutiveFailuresVerdict(runs: TerminalRun[], n: number): Verdict {
  const streak: TerminalRun[] = [];
  for (const r of runs) {
    if (!FAILURE_TYPES.has(r.stateType as StateType)) break;
    streak.push(r);
  }
  if (streak.length < n) return { healthy: true };
  const last = clip(streak[0]!.message);
  return {
    healthy: false,
    rule: 'consecutive_failures',
    reason: `${streak.length} consecutive failures${last ? ` (last: ${last})` : ''}`,
    evidence: { runIds: streak.map((r) => r.id), message: streak[0]!.message },
  };
}

/** `tasks`: failed results of critical tasks, newest first. */
export function criticalTaskVerdict(tasks: FailedTask[], policy: ResolvedPolicy): Verdict {
  for (const t of tasks) {
    const message = t.message ?? '';
    if (policy.ignorePatterns.some((re) => re.test(message))) continue;
    return {
      healthy: false,
      rule: 'critical_task',
      reason: `critical task '${t.name}' ${t.stateType.toLowerCase()}${message ? `: ${clip(message)}` : ''}`,
      evidence: { runIds: [t.runId], task: t.name, message: t.message },
    };
  }
  return { healthy: true };
}

export async function judgeFlow(db: Queryable, flow: FlowRow, policy: ResolvedPolicy): Promise<Verdict> {
  const since = flow.validSince;
  const runs = await recentTerminalRuns(db, flow.id, since, policy.maxConsecutiveFailures);
  const streak = consecutiveFailuresVerdict(runs, policy.maxConsecutiveFailures);
  if (!streak.healthy) return streak;
  return criticalTaskVerdict(await failedCriticalTasks(db, flow.id, since, policy.criticalTasks), policy);
}

// ---------------------------------------------------------------------------------------------
// Evaluation

export type HealthOutcome =
  | { action: 'none'; why: 'not found' | 'held' | 'healthy' }
  | { action: 'reported'; flow: FlowRow; verdict: Exclude<Verdict, { healthy: true }> }
  | { action: 'disabled'; flow: FlowRow; verdict: Exclude<Verdict, { healthy: true }>; outcome: DisableOutcome };

/** Evaluate one flow's rules and disable it if one fires. Safe to run concurrently and repeatedly. */
export async function evaluateFlowHealth(deps: GuardDeps, flowId: string): Promise<HealthOutcome> {
  const result = await withTransaction(deps.pool, async (tx): Promise<HealthOutcome> => {
    const flow = await getFlowById(tx, flowId, { lock: true });
    if (!flow) return { action: 'none', why: 'not found' };
    if (flow.disabledAt || (await openHold(tx, flow.name))) return { action: 'none', why: 'held' };
    const policy = resolvePolicy(flow.health, deps.config);
    const verdict = await judgeFlow(tx, flow, policy);
    if (verdict.healthy) return { action: 'none', why: 'healthy' };
    if (!policy.autoDisable) return { action: 'reported', flow, verdict };
    const outcome = await disableLockedFlow(deps.boss, tx, flow, { reason: verdict.reason, rule: verdict.rule, evidence: verdict.evidence, by: 'guard' });
    return { action: 'disabled', flow: outcome.flow, verdict, outcome };
  });
  const log = deps.log.child({ component: 'guard', flow: result.action === 'none' ? undefined : result.flow.name });
  if (result.action === 'disabled') {
    const { flow, verdict, outcome } = result;
    log.warn(
      { rule: verdict.rule, evidence: verdict.evidence, schedulesDisabled: outcome.schedulesDisabled, runsCancelled: outcome.runsCancelled },
      `flow ${flow.name} disabled by guard: ${verdict.reason} — ${reactivateHint(flow.name)}`,
    );
    await runDisableActions(deps.guardActions, log, flow, verdict.reason);
  } else if (result.action === 'reported') {
    log.warn({ rule: result.verdict.rule, evidence: result.verdict.evidence }, `flow ${result.flow.name} is unhealthy (${result.verdict.reason}) but health.autoDisable is false: left enabled`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Enforce

export interface Enforcement {
  flowName: string;
  enforceCount: number;
  schedulesDisabled: number;
  flowWasUnmarked: boolean;
}

/**
 * Re-disable every held flow (open disabled_flows row) that something switched back on behind the
 * guard's back: a schedule enabled by manual SQL, a flow re-created under the same name, its
 * disabled mark cleared by hand. Set-based detection, then one short transaction per violated
 * flow that re-checks under the flow lock (so concurrent pods count one enforcement).
 */
export async function enforceHolds(deps: Pick<GuardDeps, 'pool' | 'boss' | 'log'>): Promise<Enforcement[]> {
  const done: Enforcement[] = [];
  for (const v of await violatedHolds(deps.pool)) {
    const e = await withTransaction(deps.pool, async (tx): Promise<Enforcement | null> => {
      const flow = await getFlowById(tx, v.flowId, { lock: true });
      const hold = flow ? await openHold(tx, flow.name) : null;
      if (!flow || !hold) return null;
      const flowWasUnmarked = flow.disabledAt === null;
      if (flowWasUnmarked) {
        await setFlowDisabled(tx, flow.id, hold.reason);
        await runCancelMany(tx, { flowId: flow.id }, `flow is held disabled by the guard: ${hold.reason}`);
      }
      const schedulesDisabled = await disableFlowSchedules(tx, flow.id, hold.reason);
      if (!flowWasUnmarked && schedulesDisabled === 0) return null; // another pod got here first
      const updated = await recordEnforcement(tx, hold.id, flow.id);
      await publishEvent(deps.boss, tx, {
        event: EVENTS.flowDisabled,
        flowId: flow.id,
        flowName: flow.name,
        message: `re-enabled behind the guard's back; disabled again (${hold.reason}) — ${reactivateHint(flow.name)}`,
        at: (updated.lastEnforcedAt ?? new Date()).toISOString(),
        details: { enforced: true, enforceCount: updated.enforceCount, schedulesDisabled, flowWasUnmarked, rule: hold.rule, holdId: hold.id },
      });
      return { flowName: flow.name, enforceCount: updated.enforceCount, schedulesDisabled, flowWasUnmarked };
    });
    if (e) {
      done.push(e);
      deps.log.warn(
        { component: 'guard', flow: e.flowName, enforceCount: e.enforceCount, schedulesDisabled: e.schedulesDisabled, flowWasUnmarked: e.flowWasUnmarked },
        `flow ${e.flowName} is held disabled by the guard but was re-enabled (not by reactivation): disabled again (enforcement #${e.enforceCount}) — ${reactivateHint(e.flowName)}`,
      );
    }
  }
  return done;
}

// ---------------------------------------------------------------------------------------------
// The periodic sweep's requests

export interface SweepRequestOptions {
  maxConsecutiveFailures: number;
  /** How far back to look for failures (the failure hook is the fast path). */
  windowSeconds: number;
  /** Throttle slot: one job per flow per slot however many pods sweep. */
  slotSeconds: number;
  /** Overrides Postgres time (tests). */
  now?: Date | undefined;
}

/**
 * Send one throttled health job (singletonKey `sweep:<flowId>`) for every flow that violates a rule
 * by the set-based pre-filter (flowsNeedingEvaluation) or holds an open hold. Returns how many.
 */
export async function requestSweepEvaluations(deps: { pool: pg.Pool; boss: PgBoss }, options: SweepRequestOptions): Promise<number> {
  const failing = await flowsNeedingEvaluation(deps.pool, {
    defaultMaxFailures: options.maxConsecutiveFailures,
    windowSeconds: options.windowSeconds,
    now: options.now,
  });
  const held = await heldFlowIds(deps.pool);
  const ids = [...new Set([...failing, ...held])];
  if (ids.length > 0) {
    await insertJobs(
      deps.boss,
      QUEUES.health,
      ids.map((flowId) => ({ data: { flowId, reason: 'sweep' as const }, singletonKey: `sweep:${flowId}`, singletonSeconds: options.slotSeconds })),
    );
  }
  return ids.length;
}
