import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../server.ts';
import { appliedMigrationCount, shippedMigrationCount } from '../../db/migrate.ts';

/** /healthz: the process is up. /readyz: the database answers and migrations are current. */
export function healthRoutes(ctx: ApiContext) {
  return async (app: FastifyInstance) => {
    app.get('/healthz', async () => ({ ok: true }));
    app.get('/readyz', async (_req, reply) => {
      try {
        const applied = await appliedMigrationCount(ctx.pool);
        const shipped = shippedMigrationCount();
        if (applied < shipped) return reply.code(503).send({ ok: false, reason: `migrations behind: ${applied} of ${shipped} applied` });
        return { ok: true };
      } catch (err) {
        return reply.code(503).send({ ok: false, reason: `database unreachable: ${(err as Error).message}` });
      }
    });
  };
}
