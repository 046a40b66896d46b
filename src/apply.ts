/**
 * `flowwarden apply -f FILE`: declarative flows and schedules, YAML or JSON, idempotent:
 *
 *   flows:
 *     - name: nightly-etl
 *       target: { type: http, url: https://etl.internal/run, mode: async }
 *       schedules: [{ name: nightly, cron: "0 2 * * *", timezone: Europe/Berlin }]
 * The whole file is validated first (every problem with its path; nothing written if any), then
 * all flows are upserted in one transaction.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { UserInputError } from './errors.ts';
import { checkFlowInput, checkParametersSize, duplicateNames, type FlowInput } from './flows/spec.ts';
import { withTransaction, type Queryable } from './db/client.ts';
import { upsertFlowTx, type UpsertFlowOutcome } from './flows/operations.ts';
import type pg from 'pg';

export function readDefinitions(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserInputError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (file.endsWith('.json')) {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new UserInputError(`${file}: invalid JSON: ${(err as Error).message}`);
    }
  }
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const errors = list.flatMap((d) => d.errors.map((e) => `${file}: line ${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]}`));
  if (errors.length) throw new UserInputError(`${file}: malformed YAML (${errors.length} error${errors.length > 1 ? 's' : ''}): ${errors[0]}`, errors);
  if (list.length === 1) return list[0]!.toJS();
  return { flows: list.flatMap((d) => { const v = d.toJS() as { flows?: unknown[] } | unknown[]; return Array.isArray(v) ? v : v?.flows ?? [v]; }) };
}

export function validateDefinitions(doc: unknown, where: string, maxParametersBytes: number): FlowInput[] {
  const flowsRaw = Array.isArray(doc) ? doc : (doc as { flows?: unknown })?.flows;
  // An empty file, an empty document or `flows: []` would apply nothing and exit 0: almost always a
  // wrong file or a broken template, so it is an error.
  if (doc === null || doc === undefined || (Array.isArray(flowsRaw) && flowsRaw.length === 0)) {
    throw new UserInputError(`${where} has no flows: expected a top-level flows: list with at least one flow`);
  }
  if (!Array.isArray(flowsRaw)) {
    throw new UserInputError(`${where}: expected a top-level 'flows:' list (or a list of flows)`);
  }
  const details: string[] = [];
  const parsed: FlowInput[] = [];
  flowsRaw.forEach((raw, i) => {
    const r = checkFlowInput(raw, `flows[${i}]`);
    details.push(...r.details);
    const schedules = raw && typeof raw === 'object' ? (raw as { schedules?: unknown }).schedules : undefined;
    // Checked on the raw entries, so a flow with other errors still gets its size problems reported.
    if (Array.isArray(schedules)) {
      schedules.forEach((s, j) => {
        try {
          checkParametersSize((s as { parameters?: unknown } | null)?.parameters, maxParametersBytes, `flows[${i}].schedules[${j}].parameters`);
        } catch (err) {
          details.push((err as Error).message);
        }
      });
    }
    if (r.data) parsed.push(r.data);
  });
  // Duplicate flow names, on the raw list: reported whether or not the flows otherwise parse.
  details.push(...duplicateNames(flowsRaw, 'flows', 'flow'));
  if (details.length) {
    throw new UserInputError(`${where}: ${details.length} problem${details.length > 1 ? 's' : ''}, nothing was applied`, details);
  }
  return parsed;
}

export async function applyDefinitions(pool: pg.Pool | Queryable, flows: FlowInput[], maxParametersBytes: number): Promise<UpsertFlowOutcome[]> {
  return withTransaction(pool, async (tx) => {
    const out: UpsertFlowOutcome[] = [];
    for (const f of flows) out.push(await upsertFlowTx(tx, f, { maxParametersBytes }));
    return out;
  });
}
