/** Prefect's state types and how they map onto flowwarden's run states (src/runs/states.ts). */
import { DEFAULT_NAMES } from '../../runs/states.ts';
import type { StateType } from '../../types.ts';

export const PREFECT_STATE_TYPES = [
  'SCHEDULED',
  'PENDING',
  'RUNNING',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'CRASHED',
  'PAUSED',
  'CANCELLING',
] as const;
export type PrefectStateType = (typeof PREFECT_STATE_TYPES)[number];

/** flowwarden's run-state vocabulary (Prefect-style, without PAUSED/CANCELLING). */
export type RunStateType = StateType;

export interface MappedState {
  stateType: RunStateType;
  stateName: string;
  terminal: boolean;
}

/**
 * Map a Prefect (state_type, state_name) onto flowwarden's vocabulary.
 * - PAUSED (names Paused/Suspended) → RUNNING, non-terminal: the run is alive and will resume or time out.
 * - CANCELLING → RUNNING named 'Cancelling', non-terminal: wait for CANCELLED.
 * - SCHEDULED named AwaitingRetry/Late stays SCHEDULED, non-terminal.
 * - No state yet (null) → PENDING; an unknown future type → RUNNING, non-terminal (keep watching
 *   rather than declare an outcome we do not understand).
 */
export function mapPrefectState(stateType: string | null | undefined, stateName?: string | null): MappedState {
  const name = stateName && stateName.trim() !== '' ? stateName : undefined;
  switch (stateType) {
    case 'SCHEDULED':
    case 'PENDING':
    case 'RUNNING':
      return { stateType, stateName: name ?? DEFAULT_NAMES[stateType], terminal: false };
    case 'COMPLETED':
    case 'FAILED':
    case 'CANCELLED':
    case 'CRASHED':
      // AwaitingRetry is a SCHEDULED state in Prefect; guard anyway so a retry is never read as final.
      return { stateType, stateName: name ?? DEFAULT_NAMES[stateType], terminal: name !== 'AwaitingRetry' };
    case 'PAUSED':
      return { stateType: 'RUNNING', stateName: name ?? 'Paused', terminal: false };
    case 'CANCELLING':
      return { stateType: 'RUNNING', stateName: 'Cancelling', terminal: false };
    case null:
    case undefined:
      return { stateType: 'PENDING', stateName: name ?? 'Pending', terminal: false };
    default:
      return { stateType: 'RUNNING', stateName: name ?? stateType, terminal: false };
  }
}

/** Prefect idempotency keys are unique per flow, not per deployment: put the deployment in the key. */
export function prefectIdempotencyKey(deploymentId: string, runId: string): string {
  return `flowwarden:${deploymentId}:${runId}`;
}
