/**
 * Bearer-token auth with two scopes: `read` (inspect) and `operate` (change things).
 * The operate (admin) token also grants read. Async http targets may instead use a run-scoped
 * report token (HMAC of the run id with an instance key only flowwarden holds, src/security/keys.ts)
 * that only allows reporting that run's state.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export type Scope = 'read' | 'operate';

export interface AuthConfig {
  adminToken: string | undefined;
  readToken: string | undefined;
}

function eq(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h);
  return m?.[1]?.trim();
}

export function scopeOf(token: string | undefined, auth: AuthConfig): Scope | null {
  if (!token) return null;
  if (auth.adminToken && eq(token, auth.adminToken)) return 'operate';
  if (auth.readToken && eq(token, auth.readToken)) return 'read';
  return null;
}


/**
 * A hook (use as onRequest, so it runs before the body is even parsed) that answers 401 without a
 * known token and 403 when the token's scope is too small. Run-scoped tokens (`run.…`) pass only
 * where `allowRunToken` is set, and only when that check accepts them for the request's run.
 */
export function requireScope(auth: AuthConfig, needed: Scope, options: { allowRunToken?: (req: FastifyRequest, token: string) => Promise<boolean> } = {}) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const token = bearer(req);
    const scope = scopeOf(token, auth);
    if (!token || (!scope && !(options.allowRunToken && token.startsWith('run.')))) {
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized', message: 'send Authorization: Bearer <token> (FLOWWARDEN_ADMIN_TOKEN or FLOWWARDEN_READ_TOKEN)' });
    }
    if (scope === 'operate' || (scope === 'read' && needed === 'read')) return;
    if (scope === null) {
      if (await options.allowRunToken!(req, token)) return;
      return reply.code(403).send({ error: 'forbidden', message: 'this token may not report state for this run' });
    }
    return reply.code(403).send({ error: 'forbidden', message: `this token has scope '${scope}'; this request needs '${needed}'` });
  };
}
