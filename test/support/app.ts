/**
 * A flowwarden app on a fresh test database. Background loops are off unless asked for: tests
 * drive `scheduler.runOnce({ now })` and wait on state, never on sleeps.
 */
import { loadConfig, type Config } from '../../src/config.ts';
import { createApp, type App, type Role } from '../../src/app.ts';
import { silentLogger, createLogger } from '../../src/log.ts';
import { errorMessage } from '../../src/errors.ts';
import { HandlerRegistry, registerBuiltins } from '../../src/targets/function.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';
import { scaled } from './timeouts.ts';
import type { JobWithMetadata } from 'pg-boss';
import { QUEUES } from '../../src/queue/catalog.ts';
import { runIdsOf, type DispatchPayload } from '../../src/queue/payloads.ts';
import type { PrefectConnector } from '../../src/prefect/connector.ts';
import { withTransaction } from '../../src/db/client.ts';
import { upsertFlowTx } from '../../src/flows/operations.ts';
import type { FlowInputRaw } from '../../src/flows/spec.ts';
import type { FlowRow } from '../../src/queries/flows.ts';

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789';
export const TEST_READ_TOKEN = 'test-read-token-0123456789';
export const TEST_HTTP_SECRET = 'test-http-secret-0123456789';

export interface TestApp extends App {
  db: TestDatabase;
  registry: HandlerRegistry;
  close(): Promise<void>;
}

export function testConfig(overrides: Partial<Config> = {}): Config {
  return loadConfig({}, {
    port: 0,
    host: '127.0.0.1',
    adminToken: TEST_ADMIN_TOKEN,
    readToken: TEST_READ_TOKEN,
    httpSecret: TEST_HTTP_SECRET,
    concurrency: 4,
    tickIntervalMs: 100,
    drainTimeoutSeconds: 5,
    ...overrides,
  });
}

export async function startTestApp(options: {
  config?: Partial<Config>;
  roles?: Role[];
  registry?: HandlerRegistry;
  /** Start workers/tick/API listener (default false). */
  start?: boolean;
  db?: TestDatabase;
} = {}): Promise<TestApp> {
  const db = options.db ?? (await createTestDatabase());
  const registry = options.registry ?? new HandlerRegistry();
  registerBuiltins(registry);
  const log = process.env.TEST_LOG ? createLogger({ level: process.env.TEST_LOG }) : silentLogger;
  const app = await createApp({
    config: testConfig(options.config),
    log,
    databaseUrl: db.url,
    roles: options.roles ?? ['all'],
    registry,
    migrate: false,
    autoStart: options.start ?? false,
  });
  return Object.assign(app, {
    db,
    registry,
    async close() {
      await app.stop({ timeoutMs: 1000 });
      if (!options.db) await db.drop();
    },
  });
}

/** Wait until `check` returns a truthy value (polling state, not sleeping blindly). */
export async function waitFor<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, options: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + scaled(options.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? 'condition'}${last ? `: ${errorMessage(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The dispatch jobs carrying any of `runIds` (single-run or multi-run), fetched from pg-boss as a
 * worker would but ignoring startAfter; any other job fetched on the way is put back (failed for
 * retry, which costs it an attempt: keep `batchSize` small where attempt numbers are asserted).
 * Each comes with a fresh abort signal, ready for `dispatchWorker.handle`.
 */
export async function fetchDispatchJobs(app: Pick<App, 'boss'>, runIds: string[], batchSize = 20): Promise<Array<JobWithMetadata<DispatchPayload>>> {
  const wanted = new Set(runIds);
  const found: Array<JobWithMetadata<DispatchPayload>> = [];
  for (let i = 0; i < 50 && found.length === 0; i++) {
    const jobs = await app.boss.fetch<DispatchPayload>(QUEUES.dispatch, { includeMetadata: true, ignoreStartAfter: true, batchSize });
    for (const j of jobs) {
      if (runIdsOf(j.data).some((id) => wanted.has(id))) found.push({ ...j, signal: new AbortController().signal });
      else await app.boss.fail(QUEUES.dispatch, j.id, { reason: 'test put-back' }).catch(() => {});
    }
  }
  if (found.length === 0) throw new Error(`no dispatch job for ${runIds.join(', ')}`);
  return found;
}

/** The single-run dispatch job of `runId` (see fetchDispatchJobs). */
export async function fetchDispatchJob(app: Pick<App, 'boss'>, runId: string): Promise<JobWithMetadata<{ runId: string }>> {
  const [job] = await fetchDispatchJobs(app, [runId]);
  return job as JobWithMetadata<{ runId: string }>;
}

/** Create or update a flow on the app's database; returns its row. */
export async function upsertFlow(app: Pick<App, 'pool'>, def: FlowInputRaw): Promise<FlowRow> {
  return (await withTransaction(app.pool, (tx) => upsertFlowTx(tx, def))).flow;
}

/** Route the app's Prefect dispatches and polls through `c` (createApp wires deps.targets.prefect and deps.poller). */
export function usePrefect(app: Pick<App, 'deps'>, c: PrefectConnector): void {
  app.deps.targets.prefect = c;
  app.deps.poller = c;
}
