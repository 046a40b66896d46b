/**
 * Notification channels: list (URLs redacted to their origin: the token lives in the path), add or
 * replace, remove. Uses the notify module's operations; nothing returned here contains a URL.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { readDb } from '../reads.ts';
import { route, type ApiDocs } from '../openapi.ts';
import { pageByName } from '../validate.ts';
import { ChannelBody, ChannelJson, ChannelParams, page } from '../schemas.ts';
import { PageQuery } from '../validate.ts';
import { deleteChannel, listChannels, upsertChannel } from '../../notify/operations.ts';
import { z } from 'zod';

export function channelRoutes(ctx: ApiContext, docs: ApiDocs) {
  const auth = { adminToken: ctx.config.adminToken, readToken: ctx.config.readToken };
  return async (app: FastifyInstance) => {
    route(app, docs, auth, {
      method: 'GET', url: '/channels', scope: 'read', tag: 'channels', summary: 'List notification channels (URLs redacted)',
      query: PageQuery,
      responses: { 200: { description: 'a page of channels', schema: page(ChannelJson) } },
    }, async ({ query, req }) => pageByName(await listChannels(readDb(req, ctx.pool)), query, (c) => c));

    route(app, docs, auth, {
      method: 'PUT', url: '/channels/:name', scope: 'operate', tag: 'channels', summary: 'Add or replace a channel (URL, events, flows)',
      params: ChannelParams, body: ChannelBody,
      responses: { 200: { description: 'replaced', schema: ChannelJson }, 201: { description: 'created', schema: ChannelJson } },
    }, async ({ params, body, reply }) => {
      const { channel, created } = await upsertChannel(ctx.pool, { name: params.name, url: body.url, events: body.events, flows: body.flows ?? null });
      return reply.code(created ? 201 : 200).send(channel);
    });

    route(app, docs, auth, {
      method: 'DELETE', url: '/channels/:name', scope: 'operate', tag: 'channels', summary: 'Remove a channel with its pending events and messages',
      params: ChannelParams, errors: { 404: 'no such channel' },
      responses: { 200: { description: 'removed', schema: z.object({ removed: z.string() }) } },
    }, async ({ params }) => {
      await deleteChannel(ctx.pool, params.name);
      return { removed: params.name };
    });
  };
}
