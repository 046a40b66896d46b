/**
 * What Prefect sends: the response shapes flowwarden relies on (zod; unknown fields are stripped,
 * a shape we do not understand is a PermanentError), and the id format of its `{id:uuid}` routes.
 */
import { z } from 'zod';

const nullableString = z.string().nullish().transform((v) => v ?? null);

export const prefectStateSchema = z.object({
  type: z.string(),
  name: nullableString,
  message: nullableString,
  timestamp: nullableString,
});

export const prefectDeploymentScheduleSchema = z.object({
  id: z.string(),
  active: z.boolean(),
  schedule: z.record(z.string(), z.unknown()),
  deployment_id: nullableString,
  /** Per-schedule parameter overrides (Prefect ≥ 3.1); absent on older servers. */
  parameters: z.record(z.string(), z.unknown()).nullish(),
  slug: z.string().nullish(),
  max_scheduled_runs: z.number().nullish(),
});

export const prefectDeploymentSchema = z.object({
  id: z.string(),
  name: z.string(),
  flow_id: z.string(),
  paused: z.boolean().nullish().transform((v) => v ?? false),
  tags: z.array(z.string()).nullish().transform((v) => v ?? []),
  parameters: z.record(z.string(), z.unknown()).nullish().transform((v) => v ?? {}),
  work_pool_name: nullableString,
  work_queue_name: nullableString,
  schedules: z.array(prefectDeploymentScheduleSchema).nullish().transform((v) => v ?? []),
});

export const prefectFlowRunSchema = z.object({
  id: z.string(),
  name: z.string(),
  flow_id: z.string(),
  deployment_id: nullableString,
  state_type: nullableString,
  state_name: nullableString,
  state: prefectStateSchema.nullish().transform((v) => v ?? null),
  idempotency_key: nullableString,
  /** Created by Prefect's scheduler from a deployment schedule. */
  auto_scheduled: z.boolean().nullish().transform((v) => v ?? false),
  tags: z.array(z.string()).nullish().transform((v) => v ?? []),
  parameters: z.record(z.string(), z.unknown()).nullish().transform((v) => v ?? {}),
  expected_start_time: nullableString,
  start_time: nullableString,
  end_time: nullableString,
  created: nullableString,
  updated: nullableString,
});

export const prefectTaskRunSchema = z.object({
  id: z.string(),
  name: z.string(),
  flow_run_id: nullableString,
  task_key: nullableString,
  /** Prefect 3 names a task run `<task name>-<dynamic_key[:3]>` (tasks.py). */
  dynamic_key: nullableString,
  state_type: nullableString,
  state_name: nullableString,
  state: prefectStateSchema.nullish().transform((v) => v ?? null),
  expected_start_time: nullableString,
  start_time: nullableString,
  end_time: nullableString,
  created: nullableString,
  updated: nullableString,
});

export type PrefectState = z.infer<typeof prefectStateSchema>;
export type PrefectDeployment = z.infer<typeof prefectDeploymentSchema>;
export type PrefectDeploymentSchedule = z.infer<typeof prefectDeploymentScheduleSchema>;
export type PrefectFlowRun = z.infer<typeof prefectFlowRunSchema>;
export type PrefectTaskRun = z.infer<typeof prefectTaskRunSchema>;

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

/** A UUID as Prefect's `{id:uuid}` routes match it: lowercase, hyphenated (8-4-4-4-12). */
export function normalizeUuid(value: string): string {
  const hex = value.trim().replace(/-/g, '').toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
