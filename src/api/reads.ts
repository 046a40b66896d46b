/**
 * Read-your-writes over a replica (FLOWWARDEN_READ_URL, src/db/topology.ts ReadRouter).
 *
 * GET requests read from `readDb(req)`: the replica, unless the client wrote and the replica has not
 * replayed that write yet (then the primary). A successful write answers with the primary's WAL
 * position in the `Flowwarden-Lsn` header and the `fw_lsn` cookie (browsers, the admin page: the
 * redirect after "Reactivate" shows the flow reactivated); API clients send the header back on the
 * reads that must see their write. Without a replica nothing is added and everything reads the primary.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Queryable } from '../db/client.ts';
import { parseLsn, primaryLsn, type ReadRouter } from '../db/topology.ts';

export const LSN_HEADER = 'flowwarden-lsn';
export const LSN_COOKIE = 'fw_lsn';
/** How long a browser keeps its write position: long past any healthy replica's lag. */
const LSN_COOKIE_MAX_AGE_S = 300;

const chosen = new WeakMap<FastifyRequest, Queryable>();

/** The connection pool a GET handler reads from. */
export function readDb(req: FastifyRequest, fallback: Queryable): Queryable {
  return chosen.get(req) ?? fallback;
}

function lsnOf(req: FastifyRequest): string | undefined {
  const header = parseLsn(req.headers[LSN_HEADER]);
  if (header) return header;
  const cookie = /(?:^|;\s*)fw_lsn=([^;]+)/.exec(req.headers.cookie ?? '');
  return parseLsn(cookie ? decodeURIComponent(cookie[1]!) : undefined);
}

export function installReadRouting(app: FastifyInstance, reads: ReadRouter): void {
  if (!reads.replica) return;
  app.addHook('preHandler', async (req) => {
    if (req.method === 'GET' || req.method === 'HEAD') chosen.set(req, await reads.pick(lsnOf(req)));
  });
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.method === 'GET' || req.method === 'HEAD' || reply.statusCode >= 400) return payload;
    const lsn = await primaryLsn(reads.primary).catch(() => undefined);
    if (lsn) {
      reply.header(LSN_HEADER, lsn);
      const secure = req.protocol === 'https' ? '; Secure' : '';
      reply.header('set-cookie', [...cookieList(reply.getHeader('set-cookie')), `${LSN_COOKIE}=${encodeURIComponent(lsn)}; Path=/; Max-Age=${LSN_COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Lax${secure}`]);
    }
    return payload;
  });
}

function cookieList(value: string | number | string[] | undefined): string[] {
  if (Array.isArray(value)) return value.map(String);
  return value === undefined ? [] : [String(value)];
}
