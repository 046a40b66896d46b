/**
 * Admin page sessions: POST /admin/login checks a token (admin → operate, read → read) and sets an
 * HttpOnly, SameSite=Strict cookie. The cookie never holds the token itself: it is
 * `base64url({scope, exp}).HMAC-SHA256(token of that scope, payload)`, so it is stateless, expires
 * (SESSION_SECONDS), and rotating a token ends every session made with it.
 *
 * Forms that change something also carry a CSRF value derived from the cookie (HMAC of it), on top
 * of SameSite=Strict; a form from another origin can neither read nor guess it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { scopeOf, type AuthConfig, type Scope } from '../auth.ts';

export const SESSION_COOKIE = 'fw_admin';
export const SESSION_SECONDS = 12 * 3600;

export interface Session {
  scope: Scope;
  csrf: string;
}

const mac = (key: string, data: string) => createHmac('sha256', key).update(data).digest('base64url');

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function keyFor(scope: Scope, auth: AuthConfig): string | undefined {
  return scope === 'operate' ? auth.adminToken : auth.readToken;
}

/** The cookie value for a valid token, or null. */
export function createSession(token: string, auth: AuthConfig, nowMs = Date.now()): { value: string; scope: Scope } | null {
  const scope = scopeOf(token, auth);
  if (!scope) return null;
  const payload = Buffer.from(JSON.stringify({ s: scope, e: Math.floor(nowMs / 1000) + SESSION_SECONDS })).toString('base64url');
  return { value: `${payload}.${mac(token, payload)}`, scope };
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

export function sessionOf(req: FastifyRequest, auth: AuthConfig, nowMs = Date.now()): Session | null {
  const value = readCookie(req, SESSION_COOKIE);
  if (!value) return null;
  const [payload, sig] = value.split('.');
  if (!payload || !sig) return null;
  let claims: { s?: unknown; e?: unknown };
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if ((claims.s !== 'read' && claims.s !== 'operate') || typeof claims.e !== 'number' || claims.e * 1000 < nowMs) return null;
  const key = keyFor(claims.s, auth);
  if (!key || !same(sig, mac(key, payload))) return null;
  return { scope: claims.s, csrf: mac(value, 'csrf') };
}

export function cookieHeader(value: string, req: FastifyRequest, maxAgeSeconds = SESSION_SECONDS): string {
  const secure = req.protocol === 'https' ? '; Secure' : '';
  return `${SESSION_COOKIE}=${value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}

export function csrfOk(session: Session, body: unknown): boolean {
  const given = body && typeof body === 'object' ? (body as Record<string, unknown>).csrf : undefined;
  return typeof given === 'string' && same(given, session.csrf);
}
