/**
 * The declarative shape of flows and schedules: what `flowwarden apply -f`, the producer client and
 * the API accept. Parsed with zod; `formatIssues` turns zod issues into "path: problem" lines.
 */
import { z } from 'zod';
import { TargetSpec, isWatchedTarget } from '../targets/spec.ts';
import { validateScheduleSpec } from '../scheduling/fire-times.ts';
import { UserInputError } from '../errors.ts';
import { formatIssues, inputBytesProblem, parseInput } from '../util/input.ts';
import { patternProblem } from '../guard/pattern.ts';
import { CATCHUP_MODES, OVERLAP_MODES } from '../schema/enums.ts';

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const Name = z.string().regex(NAME_RE, 'must start with a letter or digit and use only letters, digits, _ . : - (max 128)');

/** "90", "90s", "5m", "2h", "1d" → seconds. */
export function parseDuration(value: string | number): number | null {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : null;
  const m = /^\s*(\d+)\s*(s|m|h|d)?\s*$/.exec(value);
  if (!m) return null;
  const n = Number(m[1]);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return n > 0 ? n * unit : null;
}

const Duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const s = parseDuration(v);
  if (s === null) {
    ctx.addIssue({ code: 'custom', message: `'${v}' is not a duration; use seconds or e.g. '30s', '5m', '2h', '1d'` });
    return z.NEVER;
  }
  return s;
});

export const HealthPolicy = z
  .object({
    /** Disable after this many consecutive FAILED/CRASHED runs since the baseline. */
    maxConsecutiveFailures: z.number().int().min(1).max(1000).optional(),
    /** Task names whose failure disables the flow at once... */
    criticalTasks: z.array(z.string().min(1)).optional(),
    /** ...unless the failure message matches one of these regular expressions (RE2 syntax, linear time: src/guard/pattern.ts). */
    ignorePatterns: z
      .array(
        z.string().superRefine((p, ctx) => {
          const problem = patternProblem(p);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
      )
      .optional(),
    /** Set false to exempt the flow from auto-disable (it is still reported). */
    autoDisable: z.boolean().optional(),
    /** Keep this flow's finished runs this long instead of FLOWWARDEN_RUN_RETENTION_SECONDS (stored in seconds). */
    retention: Duration.optional(),
  })
  .strict();
export type HealthPolicy = z.infer<typeof HealthPolicy>;

export const ScheduleInput = z
  .object({
    name: Name.default('default'),
    cron: z.string().min(1).optional(),
    every: Duration.optional(),
    timezone: z.string().min(1).default('UTC'),
    anchor: z.coerce.date().optional(),
    parameters: z.record(z.string(), z.unknown()).default({}),
    enabled: z.boolean().default(true),
    note: z.string().max(1000).optional(),
    catchup: z.enum(CATCHUP_MODES).default('latest'),
    catchupWindow: Duration.optional(),
    catchupMax: z.number().int().min(1).max(1000).optional(),
    overlap: z.enum(OVERLAP_MODES).default('allow'),
  })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.cron === undefined) === (s.every === undefined)) {
      ctx.addIssue({ code: 'custom', message: "give exactly one of 'cron' (e.g. '*/5 * * * *') or 'every' (e.g. '30s')" });
      return;
    }
    try {
      validateScheduleSpec(
        s.cron !== undefined
          ? { kind: 'cron', cron: s.cron, timezone: s.timezone }
          : { kind: 'interval', everySeconds: s.every!, anchor: s.anchor ?? new Date(0) },
      );
    } catch (err) {
      // Report it where the mistake is: a cron that is fine in UTC has a bad timezone.
      let field = s.cron !== undefined ? 'cron' : 'every';
      if (s.cron !== undefined && s.timezone !== 'UTC') {
        try {
          validateScheduleSpec({ kind: 'cron', cron: s.cron, timezone: 'UTC' });
          field = 'timezone';
        } catch {
          // The cron itself is wrong.
        }
      }
      ctx.addIssue({ code: 'custom', message: (err as Error).message, path: [field] });
    }
  });
export type ScheduleInput = z.infer<typeof ScheduleInput>;
export type ScheduleInputRaw = z.input<typeof ScheduleInput>;

export const FlowInput = z
  .object({
    name: Name,
    description: z.string().max(2000).optional(),
    target: TargetSpec,
    lateAfter: Duration.optional(),
    health: HealthPolicy.default({}),
    schedules: z.array(ScheduleInput).default([]),
  })
  .strict();
// Duplicate schedule names are checked on the raw input (checkFlowInput), not by a refinement here:
// zod skips an object's refinements once any of its fields has an issue, so they went unreported.
export type FlowInput = z.infer<typeof FlowInput>;
export type FlowInputRaw = z.input<typeof FlowInput>;

/** The name a raw list entry will have after parsing (`fallback` when absent), or null if it has none usable. */
function rawName(entry: unknown, fallback?: string): string | null {
  if (!entry || typeof entry !== 'object') return null;
  const name = (entry as { name?: unknown }).name;
  if (typeof name === 'string') return name;
  return name === undefined && fallback !== undefined ? fallback : null;
}

/**
 * "path: duplicate ..." lines for entries of a raw list that share a name with an earlier one.
 * Works on the raw list, so a duplicate is reported whether or not the entries otherwise parse.
 */
export function duplicateNames(list: unknown, prefix: string, what: string, options: { fallback?: string; context?: string } = {}): string[] {
  if (!Array.isArray(list)) return [];
  const seen = new Map<string, number>();
  const details: string[] = [];
  list.forEach((entry, i) => {
    const name = rawName(entry, options.fallback);
    if (name === null) return;
    const prev = seen.get(name);
    if (prev !== undefined) details.push(`${prefix}[${i}].name: duplicate ${what} name '${name}'${options.context ?? ''} (also ${prefix.split('.').at(-1)}[${prev}])`);
    else seen.set(name, i);
  });
  return details;
}

/**
 * Validate one raw flow: zod's issues plus duplicate schedule names (checked on the raw schedules
 * list, so they are reported alongside any other error). `data` is set only when there is no problem.
 */
export function checkFlowInput(raw: unknown, where: string): { data: FlowInput | null; details: string[] } {
  const bytes = inputBytesProblem(raw, where);
  if (bytes) return { data: null, details: [bytes] };
  const r = FlowInput.safeParse(raw);
  const details = r.success ? [] : formatIssues(r.error.issues, where);
  if (raw && typeof raw === 'object' && (raw as { target?: unknown }).target === undefined) {
    // zod would say "expected object, received undefined": say what a target is instead.
    const at = `${where}.target`.replace(/^\./, '');
    const i = details.findIndex((d) => d.startsWith(`${at}: `));
    if (i >= 0) details[i] = `${at}: every flow needs a target: {type: function, handler: NAME}, {type: http, url: URL} or {type: prefect, deployment: 'flow/deployment'}`;
  }
  const flowName = rawName(raw);
  details.push(
    ...duplicateNames(raw && typeof raw === 'object' ? (raw as { schedules?: unknown }).schedules : undefined, `${where}.schedules`, 'schedule', {
      fallback: 'default',
      context: flowName !== null ? ` in flow '${flowName}'` : '',
    }),
  );
  details.push(...watchedWithSchedules(raw, where));
  return { data: r.success && details.length === 0 ? r.data : null, details };
}

/**
 * A flow Prefect schedules itself (watch mode) must not also have enabled flowwarden schedules: both
 * would run it. A paused one (`enabled: false`) may stay listed, as upsertSchedule allows.
 */
function watchedWithSchedules(raw: unknown, where: string): string[] {
  if (!raw || typeof raw !== 'object') return [];
  const { target, schedules } = raw as { target?: unknown; schedules?: unknown };
  if (!isWatchedTarget(target) || !Array.isArray(schedules)) return [];
  const enabled = schedules.filter((s) => (s as { enabled?: unknown } | null)?.enabled !== false);
  if (enabled.length === 0) return [];
  return [`${where}.schedules: a watched flow (target.watch: true) is scheduled by Prefect itself, so flowwarden schedules would run it twice; remove them or pause them (enabled: false), or set watch: false to have flowwarden schedule and dispatch it`];
}

export function parseFlowInput(raw: unknown, where = 'flow'): FlowInput {
  const { data, details } = checkFlowInput(raw, where);
  if (!data) throw new UserInputError(`invalid ${where}: ${details.join('; ')}`, details);
  return data;
}

export function parseScheduleInput(raw: unknown, where = 'schedule'): ScheduleInput {
  return parseInput(ScheduleInput, raw, where);
}

export function checkParametersSize(parameters: unknown, maxBytes: number, where: string): void {
  const size = Buffer.byteLength(JSON.stringify(parameters ?? {}));
  if (size > maxBytes) {
    throw new UserInputError(`${where}: parameters are ${size} bytes; the limit is ${maxBytes} bytes — pass a reference (a key or URL) instead of the data itself`);
  }
}
