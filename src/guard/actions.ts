/**
 * Extra actions the guard performs when it disables, enforces or reactivates a flow, beyond
 * flowwarden's own schedules: e.g. the Prefect connector deactivates the deployment's schedules in
 * Prefect. Connectors register here; the guard calls every registered action and logs (never
 * throws on) a failing one, retrying it on the next enforce pass.
 */
import type { FlowRow } from '../queries/flows.ts';

export interface GuardActions {
  name: string;
  /** The flow was just disabled (by a rule or an operator). */
  onDisable?(flow: FlowRow, reason: string): Promise<void>;
  /** Enforce pass for a flow held disabled: undo anything that switched it back on. Returns true if it had to. */
  enforce?(flow: FlowRow): Promise<boolean>;
  /** The flow was reactivated by an operator. */
  onReactivate?(flow: FlowRow, by: string): Promise<void>;
}

export class GuardActionRegistry {
  readonly actions: GuardActions[] = [];
  register(a: GuardActions): void {
    this.actions.push(a);
  }
}
