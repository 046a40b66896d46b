/**
 * Declared routes and the OpenAPI 3.1 document built from them: `route(...)` registers the fastify
 * route (auth, zod parsing, handler) and records it for the document, so the document cannot drift
 * from what is served. Details: docs/internals.md ("API: declared routes").
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireScope, type AuthConfig, type Scope } from './auth.ts';
import { parseInput } from '../util/input.ts';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
type AnyObject = z.ZodObject<z.ZodRawShape>;

export interface RouteSpec<P extends AnyObject | undefined, Q extends AnyObject | undefined, B extends z.ZodType | undefined> {
  method: Method;
  /** fastify path relative to the plugin prefix, e.g. '/flows/:name'. */
  url: string;
  /** 'public': no token needed. */
  scope: Scope | 'public';
  /**
   * Accept run-scoped report tokens: this check (run before the body is read, in the auth hook)
   * says whether the token may act on the request's run; false → 403.
   */
  allowRunToken?: (req: FastifyRequest, token: string) => Promise<boolean>;
  tag: string;
  summary: string;
  description?: string;
  params?: P;
  query?: Q;
  body?: B;
  /** Document this request body instead of `body` (when the handler validates further itself). */
  bodyDoc?: z.ZodType;
  /** Documented success response (status → schema). */
  responses: Record<number, { description: string; schema?: z.ZodType }>;
  /** Extra documented error statuses beyond the defaults (400, 401, 403). */
  errors?: Record<number, string>;
}

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface RouteInput<P, Q, B> {
  params: Out<P>;
  query: Out<Q>;
  body: Out<B>;
  req: FastifyRequest;
  reply: FastifyReply;
}

interface Documented {
  method: string;
  path: string;
  spec?: RouteSpec<AnyObject | undefined, AnyObject | undefined, z.ZodType | undefined>;
}

/** The registry of routes for the document; one per API instance. */
export class ApiDocs {
  readonly routes: Documented[] = [];
  private readonly seen = new Set<string>();

  record(method: string, path: string, spec?: Documented['spec']): void {
    const key = `${method} ${path}`;
    if (this.seen.has(key)) {
      if (spec) {
        const existing = this.routes.find((r) => `${r.method} ${r.path}` === key);
        if (existing) existing.spec = spec;
      }
      return;
    }
    this.seen.add(key);
    this.routes.push({ method, path, spec });
  }

  /** Record every route registered on `app` (call before any route is added). */
  watch(app: FastifyInstance): void {
    app.addHook('onRoute', (opts) => {
      const methods = Array.isArray(opts.method) ? opts.method : [opts.method];
      for (const m of methods) {
        if (m === 'HEAD' || m === 'OPTIONS') continue;
        if (opts.url.includes('*')) continue; // static/dashboard catch-alls
        if (opts.url === '/admin' || opts.url.startsWith('/admin/')) continue; // HTML pages, not API
        this.record(m, opts.url);
      }
    });
  }

  document(info: { title: string; version: string }): object {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const r of this.routes) {
      const path = r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      const op: Record<string, unknown> = r.spec ? operation(r.spec) : { summary: `${r.method} ${r.path}`, responses: { 200: { description: 'OK' } } };
      if (!r.spec) {
        const params = [...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
        if (params.length) op.parameters = params;
      }
      (paths[path] ??= {})[r.method.toLowerCase()] = op;
    }
    return {
      openapi: '3.1.0',
      info: { ...info, description: 'flowwarden HTTP API. See docs/api.md for auth, pagination and errors.' },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'FLOWWARDEN_READ_TOKEN (scope read) or FLOWWARDEN_ADMIN_TOKEN (scopes read + operate)' } },
        schemas: { Error: jsonSchema(ErrorBody) },
      },
      paths,
    };
  }
}

export const ErrorBody = z.object({
  error: z.enum(['invalid_request', 'unauthorized', 'forbidden', 'not_found', 'conflict', 'invalid_transition', 'internal']),
  message: z.string(),
  details: z.array(z.string()).optional(),
});

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const s = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
  delete s.$schema;
  return s;
}

function parameters(schema: AnyObject | undefined, where: 'path' | 'query') {
  if (!schema) return [];
  const js = jsonSchema(schema) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, s]) => {
    const { description, ...rest } = s;
    return { name, in: where, required: where === 'path' || (js.required ?? []).includes(name), ...(description ? { description } : {}), schema: rest };
  });
}

const ERROR_TEXT: Record<number, string> = {
  400: 'invalid input (the message names each bad field)',
  401: 'no or unknown bearer token',
  403: 'the token lacks the scope this route needs',
  404: 'not found',
  409: 'conflicts with the current state',
};

function operation(spec: NonNullable<Documented['spec']>): Record<string, unknown> {
  const responses: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(spec.responses)) {
    responses[status] = { description: r.description, ...(r.schema ? { content: { 'application/json': { schema: jsonSchema(r.schema) } } } : {}) };
  }
  const errors: Record<number, string> = { 400: ERROR_TEXT[400]!, ...spec.errors };
  if (spec.scope !== 'public') Object.assign(errors, { 401: ERROR_TEXT[401]!, 403: ERROR_TEXT[403]! });
  for (const [status, description] of Object.entries(errors)) {
    responses[status] = { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  }
  return {
    tags: [spec.tag],
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    ...(spec.scope === 'public' ? { security: [] } : { security: [{ bearer: [] }], 'x-scope': spec.scope }),
    parameters: [...parameters(spec.params, 'path'), ...parameters(spec.query, 'query')],
    ...(spec.bodyDoc ?? spec.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema((spec.bodyDoc ?? spec.body)!) } } } } : {}),
    responses,
  };
}

/**
 * Declare one JSON route: register it on `app` and record it (with the plugin's prefix) in `docs`.
 */
export function route<P extends AnyObject | undefined = undefined, Q extends AnyObject | undefined = undefined, B extends z.ZodType | undefined = undefined>(
  app: FastifyInstance,
  docs: ApiDocs,
  auth: AuthConfig,
  spec: RouteSpec<P, Q, B>,
  handler: (input: RouteInput<P, Q, B>) => Promise<unknown>,
): void {
  docs.record(spec.method, `${app.prefix}${spec.url}`, spec);
  app.route({
    method: spec.method,
    url: spec.url,
    ...(spec.scope === 'public' ? {} : { onRequest: requireScope(auth, spec.scope, { allowRunToken: spec.allowRunToken }) }),
    handler: async (req, reply) => {
      const params = (spec.params ? parseInput(spec.params, req.params, 'path') : undefined) as Out<P>;
      const query = (spec.query ? parseInput(spec.query, req.query, 'query') : undefined) as Out<Q>;
      const body = (spec.body ? parseInput(spec.body, req.body, 'body') : undefined) as Out<B>;
      return handler({ params, query, body, req, reply });
    },
  });
}
