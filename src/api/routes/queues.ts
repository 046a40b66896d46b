/** GET /api/queues (read scope): live per-queue job counts from flowwarden.v_queue_depth, a page by queue name. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApiContext } from '../context.ts';
import { readDb } from '../reads.ts';
import { route, type ApiDocs } from '../openapi.ts';
import { queueDepth, queueJson } from '../../queries/inspect.ts';
import { decodeCursor, pageOf, PageQuery } from '../validate.ts';
import { page } from '../schemas.ts';

const QueueJson = z.object({
  queue: z.string(),
  queued: z.number().int().describe('waiting jobs: ready + deferred'),
  ready: z.number().int().describe('waiting jobs whose start time has come'),
  deferred: z.number().int().describe('waiting jobs whose start time is ahead (fire times within the horizon, retry backoff)'),
  retry: z.number().int().describe('waiting jobs that failed before and wait for another attempt (part of queued)'),
  active: z.number().int(),
  failed: z.number().int().describe('failed for good and still retained by pg-boss'),
  oldestReadyAt: z.string().nullable(),
  oldestReadyAgeSeconds: z.number().describe('how long the oldest ready job has waited; 0 when none'),
});

export function queueRoutes(ctx: ApiContext, docs: ApiDocs) {
  const auth = { adminToken: ctx.config.adminToken, readToken: ctx.config.readToken };
  return async (app: FastifyInstance) => {
    route(app, docs, auth, {
      method: 'GET', url: '/queues', scope: 'read', tag: 'queues', summary: 'Job counts per pg-boss queue (live, from flowwarden.v_queue_depth)',
      query: PageQuery,
      responses: { 200: { description: 'a page of queues, by name', schema: page(QueueJson) } },
    }, async ({ query, req }) => {
      const after = decodeCursor(query.cursor, ['string'] as const)?.[0];
      const rows = await queueDepth(readDb(req, ctx.pool), { after, limit: query.limit + 1 });
      return pageOf(rows, query.limit, (q) => [q.queue], queueJson);
    });
  };
}
