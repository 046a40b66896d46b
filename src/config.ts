/**
 * Configuration: read from the environment in exactly this one place, validated once, passed down.
 * Every setting has a named default next to its type. See the table in docs/operations.md.
 */
import path from 'node:path';
import { z } from 'zod';
import { UserInputError } from './errors.ts';

const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no'])
  .transform((v) => v === '1' || v === 'true' || v === 'yes');

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** The pod roles (`flowwarden start --role`): which loops and workers a process runs (src/app.ts). */
export const ROLES = ['all', 'scheduler', 'worker', 'api'] as const;
export type Role = (typeof ROLES)[number];

/** Whether a process started with `roles` runs `role` ('all' runs every role). */
export function hasRole(roles: readonly Role[], role: Exclude<Role, 'all'>): boolean {
  return roles.includes('all') || roles.includes(role);
}

export const DEFAULTS = {
  dataDir: '.flowwarden',
  embeddedPort: 54329,
  port: 8080,
  host: '0.0.0.0',
  logLevel: 'info',
  concurrency: 10,
  tickIntervalMs: 1000,
  // Long enough to pre-create a burst of 100,000 same-second fires before it is due (docs/benchmarks.md).
  horizonSeconds: 30,
  claimBatch: 500,
  catchupGraceSeconds: 30,
  lateAfterSeconds: 15,
  lateSweepIntervalMs: 5000,
  healthSweepIntervalMs: 30_000,
  maxConsecutiveFailures: 3,
  drainTimeoutSeconds: 20,
  httpTimeoutMs: 10_000,
  maxParametersBytes: 64 * 1024,
  pollIntervalSeconds: 5,
  prefectPageSize: 200,
  prefectWatchIntervalSeconds: 15,
  prefectWatchLookbackSeconds: 86_400,
  prefectTaskGraceSeconds: 900,
  poolMode: 'session',
  // Retention (docs/operations.md "Retention"): finished runs and delivered notifications older
  // than these are deleted in the background; 0 keeps them forever.
  runRetentionSeconds: 7 * 86_400,
  notifyRetentionSeconds: 7 * 86_400,
  retentionKeepRuns: 20,
  retentionIntervalSeconds: 60,
  retentionBatchSize: 5000,
} as const;

const EnvSchema = z.object({
  DATABASE_URL: z.string().url().optional(),
  FLOWWARDEN_DATA_DIR: z.string().default(DEFAULTS.dataDir),
  FLOWWARDEN_EMBEDDED_PORT: int(1024, 65535).default(DEFAULTS.embeddedPort),
  FLOWWARDEN_PORT: int(0, 65535).default(DEFAULTS.port),
  FLOWWARDEN_HOST: z.string().default(DEFAULTS.host),
  FLOWWARDEN_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  FLOWWARDEN_READ_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  FLOWWARDEN_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  FLOWWARDEN_LOG_PRETTY: bool.optional(),
  FLOWWARDEN_CONCURRENCY: int(1, 500).default(DEFAULTS.concurrency),
  FLOWWARDEN_TICK_INTERVAL_MS: int(50, 60_000).default(DEFAULTS.tickIntervalMs),
  FLOWWARDEN_HORIZON_SECONDS: int(0, 300).default(DEFAULTS.horizonSeconds),
  FLOWWARDEN_CATCHUP_GRACE_SECONDS: int(1, 3600).default(DEFAULTS.catchupGraceSeconds),
  FLOWWARDEN_LATE_AFTER_SECONDS: int(1, 86_400).default(DEFAULTS.lateAfterSeconds),
  FLOWWARDEN_MAX_CONSECUTIVE_FAILURES: int(1, 1000).default(DEFAULTS.maxConsecutiveFailures),
  FLOWWARDEN_DRAIN_TIMEOUT_SECONDS: int(0, 3600).default(DEFAULTS.drainTimeoutSeconds),
  FLOWWARDEN_HTTP_TIMEOUT_MS: int(100, 600_000).default(DEFAULTS.httpTimeoutMs),
  FLOWWARDEN_HTTP_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  // Behind a reverse proxy: true (trust X-Forwarded-* from any hop), a hop count, or addresses/CIDRs.
  FLOWWARDEN_TRUST_PROXY: z.string().optional(),
  FLOWWARDEN_HANDLERS: z.string().optional(),
  FLOWWARDEN_NOTIFY_URLS: z.string().optional(),
  FLOWWARDEN_RUN_RETENTION_SECONDS: int(0, 100 * 365 * 86_400).default(DEFAULTS.runRetentionSeconds),
  FLOWWARDEN_NOTIFY_RETENTION_SECONDS: int(0, 100 * 365 * 86_400).default(DEFAULTS.notifyRetentionSeconds),
  FLOWWARDEN_JOB_RETENTION_SECONDS: int(60, 365 * 86_400).optional(),
  FLOWWARDEN_RETENTION_KEEP_RUNS: int(0, 10_000).default(DEFAULTS.retentionKeepRuns),
  FLOWWARDEN_RETENTION_INTERVAL_SECONDS: int(1, 86_400).default(DEFAULTS.retentionIntervalSeconds),
  FLOWWARDEN_RETENTION_BATCH_SIZE: int(100, 100_000).default(DEFAULTS.retentionBatchSize),
  PREFECT_API_URL: z.string().url().optional(),
  PREFECT_API_KEY: z.string().optional(),
  // Prefect's own client settings, same names and meaning (docs/prefect.md).
  PREFECT_API_AUTH_STRING: z.string().optional(),
  PREFECT_CLIENT_CSRF_SUPPORT_ENABLED: bool.optional(),
  FLOWWARDEN_PREFECT_PAGE_SIZE: int(1, 1000).default(DEFAULTS.prefectPageSize),
  FLOWWARDEN_PREFECT_POLL_INTERVAL_SECONDS: z.coerce.number().min(0.05).max(3600).default(DEFAULTS.pollIntervalSeconds),
  FLOWWARDEN_PREFECT_WATCH_INTERVAL_SECONDS: z.coerce.number().min(0.05).max(3600).default(DEFAULTS.prefectWatchIntervalSeconds),
  FLOWWARDEN_PREFECT_WATCH_LOOKBACK_SECONDS: int(0, 90 * 86_400).default(DEFAULTS.prefectWatchLookbackSeconds),
  FLOWWARDEN_PREFECT_TASK_GRACE_SECONDS: int(0, 7 * 86_400).default(DEFAULTS.prefectTaskGraceSeconds),
  // Production topologies (docs/scaling.md): PgBouncer, a direct URL, a read replica, one connection budget.
  FLOWWARDEN_POOL_MODE: z.enum(['session', 'transaction'], { message: "must be 'session' (a direct server or PgBouncer in session mode) or 'transaction' (PgBouncer pool_mode = transaction)" }).default(DEFAULTS.poolMode),
  FLOWWARDEN_DIRECT_URL: z.string().url().optional(),
  FLOWWARDEN_READ_URL: z.string().url().optional(),
  FLOWWARDEN_MAX_CONNECTIONS: int(6, 1000).optional(),
});

/** FLOWWARDEN_TRUST_PROXY: unset/false → off; true → every hop; a number → that many hops; else addresses/CIDRs. */
function parseTrustProxy(v: string | undefined): boolean | number | string {
  if (v === undefined || v === '' || /^(0|false|no)$/i.test(v)) return false;
  if (/^(1|true|yes)$/i.test(v)) return true;
  if (/^\d+$/.test(v)) return Number(v);
  return v;
}

export interface Config {
  databaseUrl: string | undefined;
  dataDir: string;
  embeddedPort: number;
  port: number;
  host: string;
  adminToken: string | undefined;
  readToken: string | undefined;
  logLevel: string;
  logPretty: boolean;
  concurrency: number;
  tickIntervalMs: number;
  horizonSeconds: number;
  claimBatch: number;
  catchupGraceSeconds: number;
  lateAfterSeconds: number;
  lateSweepIntervalMs: number;
  healthSweepIntervalMs: number;
  maxConsecutiveFailures: number;
  drainTimeoutSeconds: number;
  httpTimeoutMs: number;
  httpSecret: string | undefined;
  /** fastify's trustProxy: client address and https from X-Forwarded-For/-Proto (default off). */
  trustProxy: boolean | number | string;
  handlersModule: string | undefined;
  notifyUrls: string[];
  maxParametersBytes: number;
  prefect: {
    apiUrl: string | undefined;
    apiKey: string | undefined;
    pollIntervalSeconds: number;
    /** PREFECT_API_AUTH_STRING: Basic auth for a self-hosted server (wins over apiKey). */
    authString?: string | undefined;
    /** PREFECT_CLIENT_CSRF_SUPPORT_ENABLED (default true). */
    csrf?: boolean;
    /** First page size for Prefect filter requests; a lower server cap is adopted. */
    pageSize?: number;
    watchIntervalSeconds?: number;
    /** How far back a new watch starts importing (a flow's target may override it). */
    watchLookbackSeconds?: number;
    /** How long after a run finished its Prefect task runs are read again. */
    taskGraceSeconds?: number;
  };
  /** 'transaction': PgBouncer transaction pooling: no named prepared statements, no session locks, no LISTEN on DATABASE_URL. */
  poolMode: 'session' | 'transaction';
  /** A session connection to the primary (bypassing PgBouncer): migrations and LISTEN. */
  directUrl: string | undefined;
  /** A streaming replica for the API's, admin page's and CLI list commands' reads. */
  readUrl: string | undefined;
  /** Upper bound on the connections one pod opens, all roles together (src/db/topology.ts). */
  maxConnections: number | undefined;
  retention: RetentionConfig;
}

/** What the retention sweep deletes and keeps (src/maintenance/retention.ts). Windows of 0 keep forever. */
export interface RetentionConfig {
  /** Finished runs (with their history and task results) older than this; a flow's health.retention overrides. */
  runSeconds: number;
  /** Delivered/failed notification messages and their folded events older than this. */
  notifySeconds: number;
  /** pg-boss deleteAfterSeconds for every flowwarden queue; undefined = each queue's own (src/workers/*). */
  jobSeconds: number | undefined;
  /** Newest finished runs kept per flow whatever their age (at least the guard's failure streak). */
  keepRuns: number;
  intervalSeconds: number;
  batchSize: number;
}

/**
 * Every variable is optional, and an empty one (`DATABASE_URL=` in a .env file or a compose
 * `environment:` entry) means unset: its default applies. Without this, '' reached the schema as a
 * value ('Invalid URL' for DATABASE_URL, port 0 for FLOWWARDEN_PORT).
 */
function withoutEmptyValues(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') out[key] = value;
  }
  return out;
}

/** Parse the environment. Throws UserInputError listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const parsed = EnvSchema.safeParse(withoutEmptyValues(env));
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    // Said once: one problem in the message line, several as the detail lines under it.
    if (details.length === 1) throw new UserInputError(`invalid environment: ${details[0]}`);
    throw new UserInputError(`invalid environment: ${details.length} variables are invalid`, details);
  }
  const e = parsed.data;
  const config: Config = {
    databaseUrl: e.DATABASE_URL,
    dataDir: path.resolve(e.FLOWWARDEN_DATA_DIR),
    embeddedPort: e.FLOWWARDEN_EMBEDDED_PORT,
    port: e.FLOWWARDEN_PORT,
    host: e.FLOWWARDEN_HOST,
    adminToken: e.FLOWWARDEN_ADMIN_TOKEN,
    readToken: e.FLOWWARDEN_READ_TOKEN,
    logLevel: e.FLOWWARDEN_LOG_LEVEL,
    logPretty: e.FLOWWARDEN_LOG_PRETTY ?? false,
    concurrency: e.FLOWWARDEN_CONCURRENCY,
    tickIntervalMs: e.FLOWWARDEN_TICK_INTERVAL_MS,
    horizonSeconds: e.FLOWWARDEN_HORIZON_SECONDS,
    claimBatch: DEFAULTS.claimBatch,
    catchupGraceSeconds: e.FLOWWARDEN_CATCHUP_GRACE_SECONDS,
    lateAfterSeconds: e.FLOWWARDEN_LATE_AFTER_SECONDS,
    lateSweepIntervalMs: DEFAULTS.lateSweepIntervalMs,
    healthSweepIntervalMs: DEFAULTS.healthSweepIntervalMs,
    maxConsecutiveFailures: e.FLOWWARDEN_MAX_CONSECUTIVE_FAILURES,
    drainTimeoutSeconds: e.FLOWWARDEN_DRAIN_TIMEOUT_SECONDS,
    httpTimeoutMs: e.FLOWWARDEN_HTTP_TIMEOUT_MS,
    httpSecret: e.FLOWWARDEN_HTTP_SECRET,
    trustProxy: parseTrustProxy(e.FLOWWARDEN_TRUST_PROXY),
    handlersModule: e.FLOWWARDEN_HANDLERS,
    notifyUrls: (e.FLOWWARDEN_NOTIFY_URLS ?? '')
      .split(/[\s,]+/)
      .map((s) => s.trim())
      .filter(Boolean),
    maxParametersBytes: DEFAULTS.maxParametersBytes,
    prefect: {
      apiUrl: e.PREFECT_API_URL,
      apiKey: e.PREFECT_API_KEY,
      pollIntervalSeconds: e.FLOWWARDEN_PREFECT_POLL_INTERVAL_SECONDS,
      authString: e.PREFECT_API_AUTH_STRING,
      csrf: e.PREFECT_CLIENT_CSRF_SUPPORT_ENABLED ?? true,
      pageSize: e.FLOWWARDEN_PREFECT_PAGE_SIZE,
      watchIntervalSeconds: e.FLOWWARDEN_PREFECT_WATCH_INTERVAL_SECONDS,
      watchLookbackSeconds: e.FLOWWARDEN_PREFECT_WATCH_LOOKBACK_SECONDS,
      taskGraceSeconds: e.FLOWWARDEN_PREFECT_TASK_GRACE_SECONDS,
    },
    poolMode: e.FLOWWARDEN_POOL_MODE,
    directUrl: e.FLOWWARDEN_DIRECT_URL,
    readUrl: e.FLOWWARDEN_READ_URL,
    maxConnections: e.FLOWWARDEN_MAX_CONNECTIONS,
    retention: {
      runSeconds: e.FLOWWARDEN_RUN_RETENTION_SECONDS,
      notifySeconds: e.FLOWWARDEN_NOTIFY_RETENTION_SECONDS,
      jobSeconds: e.FLOWWARDEN_JOB_RETENTION_SECONDS,
      keepRuns: e.FLOWWARDEN_RETENTION_KEEP_RUNS,
      intervalSeconds: e.FLOWWARDEN_RETENTION_INTERVAL_SECONDS,
      batchSize: e.FLOWWARDEN_RETENTION_BATCH_SIZE,
    },
  };
  return { ...config, ...overrides };
}

/** Every secret value in the config, for log redaction by value (src/log.ts registerSecrets). */
export function configSecrets(config: Config): Array<string | undefined> {
  return [config.adminToken, config.readToken, config.httpSecret, config.prefect.apiKey, config.prefect.authString, config.databaseUrl, config.directUrl, config.readUrl, ...config.notifyUrls];
}
