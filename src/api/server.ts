/**
 * The HTTP server (fastify): health endpoints and the JSON API. Routes live in src/api/routes/,
 * one file per resource; each registers itself on the instance, so new resources slot in.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { WorkerDeps } from '../workers/types.ts';
import { errorHandler } from './errors.ts';
import { healthRoutes } from './routes/health.ts';
import { runRoutes } from './routes/runs.ts';

export interface ApiContext extends WorkerDeps {
  databaseUrl: string;
}

export async function buildApi(deps: WorkerDeps, options: { databaseUrl: string }): Promise<FastifyInstance> {
  const app = Fastify({
    // Request lines stay out of the logs; errors still come through at warn and above.
    loggerInstance: deps.log.child({ component: 'api' }, { level: 'warn' }) as unknown as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
  });
  app.setErrorHandler(errorHandler);
  const ctx: ApiContext = { ...deps, databaseUrl: options.databaseUrl };
  await app.register(healthRoutes(ctx));
  await app.register(runRoutes(ctx), { prefix: '/api' });
  return app;
}
