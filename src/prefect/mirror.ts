/**
 * Mirroring a Prefect flow run onto one of our runs: the state (through validated transitions, so
 * history and events follow as for any other run) and, for finished runs, the task results the
 * critical-task health rule reads.
 *
 * Mapping (mapPrefectState): SCHEDULED/PENDING/RUNNING map through; PAUSED and CANCELLING read as
 * RUNNING (alive); AwaitingRetry is a non-terminal SCHEDULED state; COMPLETED, FAILED, CRASHED and
 * CANCELLED are terminal and carry Prefect's state message. A mapped state that would move a run
 * backwards (our RUNNING, Prefect AwaitingRetry) is not applied: our state machine never regresses.
 */
import type { Queryable } from '../db/client.ts';
import {
  mapPrefectState,
  PREFECT_MAX_LIMIT,
  type CallOptions,
  type MappedState,
  type PrefectClient,
  type PrefectFlowRun,
  type PrefectTaskRun,
} from './client/index.ts';
import type { RunRow, TaskInput } from '../types.ts';
import { applyLockedTransition, type TransitionDeps } from '../runs/service.ts';
import { transitionAllowed } from '../runs/states.ts';

/** In a finished run's message when its task runs could not be read yet (the watch pass retries). */
export const TASKS_UNREAD_MARKER = '(task results not read yet:';

/** The note a run's message carries while its task results could not be read (found again by TASKS_UNREAD_MARKER). */
export function tasksUnreadNote(reason: string): string {
  return ` ${TASKS_UNREAD_MARKER} ${reason}; read again by the next Prefect watch pass)`;
}

export function mappedStateOf(fr: Pick<PrefectFlowRun, 'state_type' | 'state_name' | 'state'>): MappedState {
  return mapPrefectState(fr.state_type ?? fr.state?.type, fr.state_name ?? fr.state?.name);
}

/**
 * The task's own name, which health rules use (run_dbt). Prefect 3 names a task run
 * `f"{task.name}-{dynamic_key[:3]}"` (tasks.py) with a random key (run_dbt-3fa); the task run's
 * `dynamic_key` says which suffix that is. A custom `task_run_name` has no such suffix and is kept
 * as is. Without a dynamic_key (older servers), Prefect 2's '<name>-<counter>' suffix is removed.
 */
export function taskNameOf(taskRun: Pick<PrefectTaskRun, 'name'> & { dynamic_key?: string | null }): string {
  const key = taskRun.dynamic_key;
  if (key) {
    const suffix = `-${key.slice(0, 3)}`;
    return taskRun.name.endsWith(suffix) && taskRun.name.length > suffix.length ? taskRun.name.slice(0, -suffix.length) : taskRun.name;
  }
  return taskRun.name.replace(/-\d+$/, '') || taskRun.name;
}

export function taskInputOf(taskRun: PrefectTaskRun): TaskInput {
  const mapped = mapPrefectState(taskRun.state_type ?? taskRun.state?.type, taskRun.state_name ?? taskRun.state?.name);
  return { name: taskNameOf(taskRun), stateType: mapped.stateType, message: taskRun.state?.message ?? null };
}

/** Task runs of the given flow runs, every page, grouped by flow run id. */
export async function fetchTaskResults(
  client: PrefectClient,
  flowRunIds: string[],
  call: <T>(what: string, fn: () => Promise<T>) => Promise<T>,
  opts: CallOptions = {},
): Promise<Map<string, TaskInput[]>> {
  const out = new Map<string, TaskInput[]>(flowRunIds.map((id) => [id, []]));
  for (let i = 0; i < flowRunIds.length; i += PREFECT_MAX_LIMIT) {
    const ids = flowRunIds.slice(i, i + PREFECT_MAX_LIMIT);
    // Page size: the client's cap, which drops to the server's own when it answers 422 with one.
    for (let offset = 0; ; ) {
      const limit = client.pageLimit;
      const page = await call('filterTaskRuns', () =>
        client.filterTaskRuns({ flowRunIds: ids, limit, offset, sort: 'EXPECTED_START_TIME_ASC' }, opts),
      );
      for (const tr of page) if (tr.flow_run_id) out.get(tr.flow_run_id)?.push(taskInputOf(tr));
      offset += page.length;
      if (page.length === 0 || page.length < Math.min(limit, client.pageLimit)) break;
    }
  }
  return out;
}

export function describeFlowRun(fr: Pick<PrefectFlowRun, 'id' | 'name'>): string {
  return `Prefect flow run '${fr.name}' (${fr.id})`;
}

/**
 * Apply Prefect's state to a run the caller holds locked, when it is a valid forward move.
 * Returns the updated run, or null when nothing changed.
 */
export async function mirrorLockedRun(
  fx: TransitionDeps,
  tx: Queryable,
  run: RunRow,
  fr: PrefectFlowRun,
  options: { tasks?: TaskInput[]; message?: string; suffix?: string } = {},
): Promise<RunRow | null> {
  const mapped = mappedStateOf(fr);
  const from = { type: run.stateType, name: run.stateName };
  const to = { type: mapped.stateType, name: mapped.stateName };
  if (from.type === to.type && from.name === to.name) return null;
  if (!transitionAllowed(from, to)) return null;
  const message = (fr.state?.message ?? options.message ?? `${describeFlowRun(fr)} is ${mapped.stateName}`) + (options.suffix ?? '');
  const { run: updated } = await applyLockedTransition(fx, tx, run, {
    to: to.type,
    name: to.name,
    message,
    externalId: fr.id,
    ...(mapped.terminal && options.tasks?.length ? { tasks: options.tasks } : {}),
  });
  return updated;
}
