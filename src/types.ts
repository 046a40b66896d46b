import type { Logger } from './log.ts';
import type { StateType } from './runs/states.ts';
import type { TaskInput } from './runs/store.ts';

/** What a target says about a run once it has been handed over. */
export type TargetOutcome =
  | { kind: 'completed'; message?: string; tasks?: TaskInput[] }
  | { kind: 'failed'; message: string; stateType?: Extract<StateType, 'FAILED' | 'CRASHED'>; name?: string; tasks?: TaskInput[] }
  /** Accepted and running elsewhere: state arrives later (API report or poll). */
  | { kind: 'running'; externalId?: string; message?: string; poll?: boolean };

export interface RunContext {
  runId: string;
  flow: string;
  scheduledFor: Date;
  parameters: Record<string, unknown>;
  attempt: number;
  signal: AbortSignal;
  log: Logger;
}
