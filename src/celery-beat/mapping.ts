/**
 * The mapping file of `flowwarden import celery-beat`: which target a Celery task name becomes
 * (`flowPrefix`, `tasks` by name or `*` pattern, `default`, `shadow`); the format with an example
 * is in docs/celery-beat.md ("The mapping file"). `{ type: shadow }` is the built-in `shadow`
 * function handler: it records the fire and dispatches nothing.
 */
import { z } from 'zod';
import { TargetSpec } from '../targets/spec.ts';
import { formatIssues } from '../util/input.ts';
import { UserInputError } from '../errors.ts';

export const SHADOW_TARGET = { type: 'function', handler: 'shadow' } as const;

const MappedTarget = z.union([z.object({ type: z.literal('shadow') }).strict(), TargetSpec]);

export const CeleryBeatMapping = z
  .object({
    /** Names this Django database in flowwarden (several Django projects may be imported). */
    source: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (max 64)').default('default'),
    flowPrefix: z.string().regex(/^[A-Za-z0-9_.:-]{0,40}$/, 'letters, digits, _ . : - (max 40)').default(''),
    tasks: z.record(z.string().min(1), MappedTarget).default({}),
    default: MappedTarget.optional(),
    shadow: z.boolean().default(false),
  })
  .strict();
export type CeleryBeatMapping = z.infer<typeof CeleryBeatMapping>;

export function parseMapping(raw: unknown, where = 'mapping'): CeleryBeatMapping {
  const r = CeleryBeatMapping.safeParse(raw ?? {});
  if (!r.success) {
    const details = formatIssues(r.error.issues, where);
    throw new UserInputError(`invalid ${where}: ${details.join('; ')}`, details);
  }
  return r.data;
}

const globRe = (pattern: string) => new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);

/** The target for a Celery task name: exact key, else the longest matching glob, else the default. */
export function targetFor(mapping: CeleryBeatMapping, task: string): TargetSpec | null {
  if (mapping.shadow) return { ...SHADOW_TARGET };
  let hit = mapping.tasks[task];
  if (!hit) {
    const globs = Object.keys(mapping.tasks).filter((k) => k.includes('*') && globRe(k).test(task)).sort((a, b) => b.length - a.length);
    hit = globs[0] !== undefined ? mapping.tasks[globs[0]] : mapping.default;
  }
  if (!hit) return null;
  return hit.type === 'shadow' ? { ...SHADOW_TARGET } : hit;
}
