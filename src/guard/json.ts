/** The stable JSON shape of a guard history entry (disabled_flows row): CLI --json and the HTTP API. */
import type { DisabledFlowRow } from '../queries/guard.ts';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export function holdJson(h: DisabledFlowRow) {
  return {
    id: h.id,
    flow: h.flowName,
    rule: h.rule,
    reason: h.reason,
    evidence: h.evidence,
    disabledBy: h.disabledBy,
    disabledAt: iso(h.disabledAt),
    reactivatedAt: iso(h.reactivatedAt),
    reactivatedBy: h.reactivatedBy,
    enforceCount: h.enforceCount,
    lastEnforcedAt: iso(h.lastEnforcedAt),
  };
}
