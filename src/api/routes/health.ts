import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { appliedMigrationCount, shippedMigrationCount } from '../../db/migrate.ts';
import { expectedBossSchemaVersion, installedBossSchemaVersion } from '../../queries/inspect.ts';
import { errorMessage } from '../../errors.ts';
import { schedulerLagSeconds } from '../../queries/schedules.ts';

/** Above this lag /readyz adds a warning (the pod stays ready). */
const SCHEDULER_LAG_WARN_SECONDS = 60;

/** A readiness probe must answer before the orchestrator's probe timeout, even when Postgres hangs. */
export const READY_CHECK_TIMEOUT_MS = 2000;

/** Why this pod should not receive traffic, or null when it is ready. */
async function notReadyReason(ctx: ApiContext): Promise<string | null> {
  if (ctx.stopping.aborted) return 'draining: this pod is shutting down';
  const applied = await appliedMigrationCount(ctx.pool);
  const shipped = shippedMigrationCount();
  if (applied < shipped) return `migrations behind: ${applied} of ${shipped} applied (run flowwarden migrate)`;
  const boss = await installedBossSchemaVersion(ctx.pool);
  const expected = expectedBossSchemaVersion();
  if (boss === null) return 'pg-boss schema not installed (run flowwarden migrate)';
  if (boss < expected) return `pg-boss schema behind: version ${boss}, this build needs ${expected} (run flowwarden migrate)`;
  return null;
}

/**
 * /healthz: the process is up (liveness; never touches the database).
 * /readyz: 503 with a reason while draining, while Postgres does not answer, or while the domain
 * or pg-boss migrations are behind this build; 200 otherwise.
 * /metrics: Prometheus exposition from this app's own registry (src/metrics.ts); unauthenticated
 * like the probes, it carries counts only (no flow names, no secrets).
 */
export function healthRoutes(ctx: ApiContext) {
  return async (app: FastifyInstance) => {
    app.get('/healthz', async () => ({ ok: true }));
    app.get('/readyz', async (_req, reply) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const reason = await Promise.race([
          notReadyReason(ctx),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${READY_CHECK_TIMEOUT_MS} ms`)), READY_CHECK_TIMEOUT_MS);
          }),
        ]);
        if (reason) return reply.code(503).send({ ok: false, reason });
        // Detail, not a readiness condition: a lagging scheduler is visible here and in
        // flowwarden_scheduler_lag_seconds, but the pod keeps serving (and dispatching).
        const lag = Math.round((await schedulerLagSeconds(ctx.pool)) * 10) / 10;
        return { ok: true, schedulerLagSeconds: lag, ...(lag > SCHEDULER_LAG_WARN_SECONDS ? { warning: `the scheduler is ${lag} s behind: more schedules are due than it materialises per tick (see docs/operations.md#overload)` } : {}) };
      } catch (err) {
        return reply.code(503).send({ ok: false, reason: `database unreachable: ${errorMessage(err)}` });
      } finally {
        clearTimeout(timer);
      }
    });
    app.get('/metrics', async (_req, reply) => {
      const { contentType, body } = await ctx.metrics.render();
      return reply.header('content-type', contentType).send(body);
    });
  };
}
