/**
 * Target specifications: where a flow's runs execute. Validated with zod at every edge (apply
 * files, API, producer) and stored as jsonb on the flow.
 */
import { z } from 'zod';
import { safeUrl } from './safe-url.ts';

export const FunctionTarget = z
  .object({
    type: z.literal('function'),
    /** Name of a handler registered in the worker (defineFlow). Defaults to the flow's name. */
    handler: z.string().min(1).optional(),
  })
  .strict();

/** Headers flowwarden sets on every http target request (lower case); target.headers may not touch them. */
export const RESERVED_HEADERS = new Set(['x-flowwarden-signature', 'idempotency-key', 'content-type', 'content-length', 'host', 'transfer-encoding']);

export const HttpTarget = z
  .object({
    type: z.literal('http'),
    url: z.string().url().refine((u) => /^https?:$/.test(new URL(u).protocol), 'must be an http:// or https:// URL'),
    /** sync: the status code is the result. async: 2xx accepts the run; state is reported later. */
    mode: z.enum(['sync', 'async']).default('sync'),
    /** HMAC-SHA256 key for the x-flowwarden-signature header; default FLOWWARDEN_HTTP_SECRET. */
    secret: z.string().min(16, 'must be at least 16 characters').optional(),
    timeoutMs: z.number().int().min(100).max(600_000).optional(),
    headers: z
      .record(z.string(), z.string())
      .superRefine((headers, ctx) => {
        for (const [name, value] of Object.entries(headers)) {
          if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
            ctx.addIssue({ code: 'custom', path: [name], message: `${JSON.stringify(name)} is not an HTTP header name (letters, digits and !#$%&'*+.^_\`|~-; no spaces, CR or LF)` });
          } else if (RESERVED_HEADERS.has(name.toLowerCase())) {
            ctx.addIssue({ code: 'custom', path: [name], message: `'${name}' is set by flowwarden on every request and cannot be overridden; remove it from target.headers` });
          }
          if (/[\r\n\0]/.test(value)) ctx.addIssue({ code: 'custom', path: [name], message: 'must not contain CR, LF or NUL characters' });
        }
      })
      .optional(),
  })
  .strict();

export const PrefectTarget = z
  .object({
    type: z.literal('prefect'),
    /** A deployment id (UUID) or 'flow-name/deployment-name'. */
    deployment: z.string().min(1),
    tags: z.array(z.string()).optional(),
    jobVariables: z.record(z.string(), z.unknown()).optional(),
    pollIntervalSeconds: z.number().min(0.05).max(3600).optional(),
    maxPolls: z.number().int().min(1).optional(),
    /** watch: import runs Prefect schedules itself instead of dispatching our own. */
    watch: z.boolean().optional(),
    /** watch: how far back the first import reaches (default FLOWWARDEN_PREFECT_WATCH_LOOKBACK_SECONDS). */
    watchLookbackSeconds: z.number().int().min(0).max(90 * 86_400).optional(),
  })
  .strict();

export const TargetSpec = z.discriminatedUnion('type', [FunctionTarget, HttpTarget, PrefectTarget]);

/** A Prefect target in watch mode: Prefect schedules the flow itself, so flowwarden must not. */
export function isWatchedTarget(target: unknown): boolean {
  const t = target as { type?: unknown; watch?: unknown } | null | undefined;
  return t?.type === 'prefect' && t.watch === true;
}
export type TargetSpec = z.infer<typeof TargetSpec>;
export type HttpTargetSpec = z.infer<typeof HttpTarget>;
export type FunctionTargetSpec = z.infer<typeof FunctionTarget>;
export type PrefectTargetSpec = z.infer<typeof PrefectTarget>;

/** For display: secrets never leave the process. */
function redactedTargetUrl(url: string): string {
  const safe = safeUrl(url);
  return URL.canParse(url) && new URL(url).search.length > 1 ? `${safe}?[redacted]` : safe;
}

export function redactTarget(target: TargetSpec): TargetSpec {
  if (target.type === 'http') {
    return {
      ...target,
      // Query strings and path tokens are credentials as often as headers: the URL as safeUrl
      // shows it (masked segments as ***), with a redacted query.
      url: redactedTargetUrl(target.url),
      ...(target.secret ? { secret: '[redacted]' } : {}),
      // Header values are often credentials (Authorization, X-Api-Key): show the names only.
      ...(target.headers ? { headers: Object.fromEntries(Object.keys(target.headers).map((k) => [k, '[redacted]'])) } : {}),
    };
  }
  return target;
}
