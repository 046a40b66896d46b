/**
 * Keys only flowwarden holds (flowwarden.instance_keys), generated on first use. Unlike
 * FLOWWARDEN_HTTP_SECRET or a flow's own secret — which every http endpoint must know to verify
 * signatures — nothing outside flowwarden's database ever sees these, so nothing outside can mint
 * what they sign.
 *
 * `report`: signs run report tokens (`run.<HMAC(key, "report:" + runId)>`), issued only in the run
 * request of a run dispatched to an asynchronous http target.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Queryable } from '../db/client.ts';

const cache = new WeakMap<object, Map<string, Promise<string>>>();

/** The named instance key, created once across all pods (first insert wins; everyone reads it back). */
export function instanceKey(db: Queryable, name: string): Promise<string> {
  let keys = cache.get(db);
  if (!keys) cache.set(db, (keys = new Map<string, Promise<string>>()));
  let key = keys.get(name);
  if (!key) {
    key = (async () => {
      await db.query(`insert into flowwarden.instance_keys (name, secret) values ($1, $2) on conflict (name) do nothing`, [name, randomBytes(32).toString('base64url')]);
      const { rows } = await db.query<{ secret: string }>(`select secret from flowwarden.instance_keys where name = $1`, [name]);
      return rows[0]!.secret;
    })();
    key.catch(() => keys.delete(name)); // a failed read is retried next time
    keys.set(name, key);
  }
  return key;
}

export function equalConstantTime(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A token that lets an async endpoint report the state of this one run (and nothing else). */
export function runReportToken(runId: string, key: string): string {
  return `run.${createHmac('sha256', key).update(`report:${runId}`).digest('base64url')}`;
}

export async function issueReportToken(db: Queryable, runId: string): Promise<string> {
  return runReportToken(runId, await instanceKey(db, 'report'));
}

/**
 * True when `token` is this run's report token and the run was dispatched to an asynchronous http
 * target (a run still SCHEDULED, or of a function/Prefect/sync-http flow, never got a token).
 */
export async function reportTokenValid(db: Queryable, runId: string, token: string): Promise<boolean> {
  const key = await instanceKey(db, 'report');
  const ok = equalConstantTime(token, runReportToken(runId, key));
  const { rows } = await db.query<{ ok: boolean }>(
    `select (f.target->>'type' = 'http' and f.target->>'mode' = 'async' and r.dispatch_attempt is not null) as ok
       from flowwarden.runs r join flowwarden.flows f on f.id = r.flow_id where r.id = $1`,
    [runId],
  );
  return ok && rows[0]?.ok === true;
}
