/**
 * The HTTP server (fastify): health endpoints and the JSON API. Routes live in src/api/routes/,
 * one file per resource; each registers itself on the instance, so new resources slot in.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { WorkerDeps } from '../workers/types.ts';
import { errorHandler } from './errors.ts';
import { healthRoutes } from './routes/health.ts';
import { runRoutes } from './routes/runs.ts';
import { flowRoutes } from './routes/flows.ts';
import { channelRoutes } from './routes/channels.ts';
import { adminRoutes } from './routes/admin.ts';
import { queueRoutes } from './routes/queues.ts';
import { ApiDocs } from './openapi.ts';
import { installReadRouting } from './reads.ts';
import { ReadRouter } from '../db/topology.ts';
import type { ApiContext } from './context.ts';

const API_VERSION = '0.1.0';

/** Trust the nearest `n` proxies (proxy-addr's hop count). */
const trustHops = (n: number) => (_address: string, hop: number) => hop < n;

export async function buildApi(deps: WorkerDeps, options: { databaseUrl: string; reads?: ReadRouter }): Promise<FastifyInstance> {
  const app = Fastify({
    // Request lines stay out of the logs; errors still come through at warn and above.
    loggerInstance: deps.log.child({ component: 'api' }, { level: 'warn' }) as unknown as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
    // Names may be 128 characters (NAME_RE), up to 3× that when %-encoded: every valid name must
    // reach its route (fastify's default of 100 answered 414 for long names).
    routerOptions: { maxParamLength: 1024 },
    // FLOWWARDEN_TRUST_PROXY: read the client address and https from the proxy's X-Forwarded-* headers.
    trustProxy: typeof deps.config.trustProxy === 'number' ? trustHops(deps.config.trustProxy) : deps.config.trustProxy,
  });
  app.setErrorHandler(errorHandler);
  const ctx: ApiContext = { ...deps, databaseUrl: options.databaseUrl, reads: options.reads ?? new ReadRouter(deps.pool, undefined) };
  installReadRouting(app, ctx.reads);
  // Every route registered from here on is listed in GET /api/openapi.json (src/api/openapi.ts).
  const docs = new ApiDocs();
  docs.watch(app);
  await app.register(healthRoutes(ctx));
  await app.register(runRoutes(ctx, docs), { prefix: '/api' });
  await app.register(flowRoutes(ctx, docs), { prefix: '/api' });
  await app.register(channelRoutes(ctx, docs), { prefix: '/api' });
  await app.register(queueRoutes(ctx, docs), { prefix: '/api' });
  app.get('/api/openapi.json', async () => docs.document({ title: 'flowwarden', version: API_VERSION }));
  await app.register(adminRoutes(ctx), { prefix: '/admin' });
  return app;
}
