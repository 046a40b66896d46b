/**
 * Admin page sessions, kept server-side (flowwarden.admin_sessions): login with a token, an
 * HttpOnly SameSite=Strict cookie that never holds the token, a CSRF value derived from it, expiry,
 * logout and token rotation end a session; failed sign-ins are throttled per address.
 * Design: docs/internals.md ("API: admin sessions"); for operators: docs/operations.md.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Queryable } from '../../db/client.ts';
import { scopeOf, type AuthConfig, type Scope } from '../auth.ts';

export const SESSION_COOKIE = 'fw_admin';
export const SESSION_SECONDS = 12 * 3600;

export interface Session {
  id: string;
  scope: Scope;
  csrf: string;
}

const mac = (key: string, data: string) => createHmac('sha256', key).update(data).digest('base64url');
const hashId = (value: string) => createHash('sha256').update(value).digest('base64url');

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function keyFor(scope: Scope, auth: AuthConfig): string | undefined {
  return scope === 'operate' ? auth.adminToken : auth.readToken;
}

/** A new session for a valid token (a fresh random id every time), or null. */
export async function createSession(db: Queryable, token: string, auth: AuthConfig, nowMs = Date.now()): Promise<{ value: string; scope: Scope } | null> {
  const scope = scopeOf(token, auth);
  if (!scope) return null;
  const value = randomBytes(32).toString('base64url');
  const id = hashId(value);
  await db.query(
    `insert into flowwarden.admin_sessions (id, scope, token_mac, expires_at) values ($1, $2, $3, $4)`,
    [id, scope, mac(token, id), new Date(nowMs + SESSION_SECONDS * 1000)],
  );
  // Expired and revoked sessions are kept a day for the record, then dropped.
  await db.query(`delete from flowwarden.admin_sessions where expires_at < now() - interval '1 day'`);
  return { value, scope };
}

export function readCookie(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** The live session of this request's cookie (not expired, not revoked, token unchanged), or null. */
export async function sessionOf(db: Queryable, req: FastifyRequest, auth: AuthConfig, nowMs = Date.now()): Promise<Session | null> {
  const value = readCookie(req, SESSION_COOKIE);
  if (!value || !/^[A-Za-z0-9_-]{20,100}$/.test(value)) return null;
  const id = hashId(value);
  const { rows } = await db.query<{ scope: Scope; tokenMac: string; expiresAt: Date; revokedAt: Date | null }>(
    `select scope, token_mac as "tokenMac", expires_at as "expiresAt", revoked_at as "revokedAt" from flowwarden.admin_sessions where id = $1`,
    [id],
  );
  const row = rows[0];
  if (!row || row.revokedAt || row.expiresAt.getTime() <= nowMs) return null;
  const key = keyFor(row.scope, auth);
  if (!key || !same(row.tokenMac, mac(key, id))) return null;
  return { id, scope: row.scope, csrf: mac(value, 'csrf') };
}

/** End a session server-side: its cookie no longer works anywhere, even if it was copied. */
export async function revokeSession(db: Queryable, session: Session): Promise<void> {
  await db.query(`update flowwarden.admin_sessions set revoked_at = now() where id = $1 and revoked_at is null`, [session.id]);
}

export function cookieHeader(value: string, req: FastifyRequest, maxAgeSeconds = SESSION_SECONDS): string {
  // req.protocol is 'https' for TLS connections, and behind a proxy only when trustProxy is on and
  // the proxy sent X-Forwarded-Proto: https.
  const secure = req.protocol === 'https' ? '; Secure' : '';
  return `${SESSION_COOKIE}=${value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}

export function csrfOk(session: Session, body: unknown): boolean {
  const given = body && typeof body === 'object' ? (body as Record<string, unknown>).csrf : undefined;
  return typeof given === 'string' && same(given, session.csrf);
}

/** Failed sign-ins per client address, in this process. */
export class LoginThrottle {
  static readonly FREE_FAILURES = 5;
  static readonly WINDOW_MS = 15 * 60_000;
  static readonly MAX_WAIT_MS = 60_000;
  private failures = new Map<string, { count: number; first: number; last: number }>();
  private readonly clock: () => number;
  constructor(clock: () => number = Date.now) {
    this.clock = clock;
  }

  /** Milliseconds this address must still wait before its next attempt (0: go ahead). */
  waitMs(ip: string): number {
    const f = this.failures.get(ip);
    const now = this.clock();
    if (!f) return 0;
    if (now - f.last > LoginThrottle.WINDOW_MS) {
      this.failures.delete(ip);
      return 0;
    }
    if (f.count < LoginThrottle.FREE_FAILURES) return 0;
    const wait = Math.min(LoginThrottle.MAX_WAIT_MS, 1000 * 2 ** (f.count - LoginThrottle.FREE_FAILURES));
    return Math.max(0, f.last + wait - now);
  }

  failed(ip: string): void {
    const now = this.clock();
    const f = this.failures.get(ip);
    if (!f || now - f.last > LoginThrottle.WINDOW_MS) this.failures.set(ip, { count: 1, first: now, last: now });
    else Object.assign(f, { count: f.count + 1, last: now });
    if (this.failures.size > 10_000) this.failures.delete(this.failures.keys().next().value!); // bounded memory
  }

  succeeded(ip: string): void {
    this.failures.delete(ip);
  }
}
