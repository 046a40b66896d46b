/**
 * The typed client other services use to publish work:
 *   const fw = await FlowwardenClient.connect({ connectionString: process.env.DATABASE_URL });
 *   await fw.triggerRun('nightly-etl', { date: '2026-11-22' }, { idempotencyKey: 'etl:2026-11-22' });
 *   await fw.notify('ops', 'nightly export finished: 1.2M rows');
 *
 * Every method takes `{ db }`: a pg client inside the caller's own open transaction. The run row
 * and its dispatch job are then written in that transaction and commit or roll back with the
 * caller's own writes. Without `db` the client opens (and commits) a transaction itself.
 */
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { createPool, withTransaction, type Queryable } from '../db/client.ts';
import { startBoss } from '../queue/boss.ts';
import { reportRunStateTx, triggerRunTx, type ReportOptions, type TriggerOptions } from '../runs/operations.ts';
import { upsertFlowTx, upsertScheduleTx, type UpsertFlowOutcome } from '../flows/operations.ts';
import type { FlowInputRaw, ScheduleInputRaw } from '../flows/spec.ts';
import type { RunRow } from '../types.ts';
import type { UpsertScheduleResult } from '../queries/flows.ts';
import type { StateType } from '../types.ts';
import { notifyTx } from '../notify/operations.ts';
import { disableFlowTx, reactivateFlowTx, type DisableOutcome, type ReactivateOutcome } from '../guard/operations.ts';
import { guardFailureHook } from '../guard/health.ts';
import type { TransitionDeps } from '../runs/service.ts';

export interface TxOption {
  /** A client inside the caller's open transaction. */
  db?: Queryable;
}

export interface ClientOptions {
  connectionString?: string;
  pool?: pg.Pool;
  boss?: PgBoss;
  maxParametersBytes?: number;
}

export class FlowwardenClient {
  readonly #pool: pg.Pool;
  readonly #boss: PgBoss;
  /** A run this client reports FAILED requests the flow's health evaluation, as in a pod. */
  readonly #transitions: TransitionDeps;
  readonly #owned: { pool: boolean; boss: boolean };
  readonly #maxParametersBytes: number | undefined;

  private constructor(pool: pg.Pool, boss: PgBoss, owned: { pool: boolean; boss: boolean }, maxParametersBytes?: number) {
    this.#pool = pool;
    this.#boss = boss;
    this.#transitions = { boss, onFailure: guardFailureHook() };
    this.#owned = owned;
    this.#maxParametersBytes = maxParametersBytes;
  }

  static async connect(options: ClientOptions): Promise<FlowwardenClient> {
    if (!options.pool && !options.connectionString) throw new Error('FlowwardenClient.connect needs a connectionString or a pool');
    const pool = options.pool ?? createPool(options.connectionString!, { max: 5, applicationName: 'flowwarden-producer' });
    const boss = options.boss ?? (await startBoss({ connectionString: options.connectionString ?? poolUrl(options), role: 'producer' }));
    return new FlowwardenClient(pool, boss, { pool: !options.pool, boss: !options.boss }, options.maxParametersBytes);
  }

  #tx<T>(opt: TxOption | undefined, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return opt?.db ? fn(opt.db) : withTransaction(this.#pool, fn);
  }

  triggerRun(flow: string, parameters: Record<string, unknown> = {}, options: TriggerOptions & TxOption = {}): Promise<{ runId: string; created: boolean }> {
    return this.#tx(options, (tx) => triggerRunTx(this.#boss, tx, flow, parameters, { origin: 'api', maxParametersBytes: this.#maxParametersBytes, ...options }));
  }

  reportRunState(runId: string, state: StateType, options: ReportOptions & TxOption = {}): Promise<RunRow> {
    return this.#tx(options, (tx) => reportRunStateTx(this.#transitions, tx, runId, state, options));
  }

  upsertFlow(flow: FlowInputRaw, options: TxOption = {}): Promise<UpsertFlowOutcome> {
    return this.#tx(options, (tx) => upsertFlowTx(tx, flow, { maxParametersBytes: this.#maxParametersBytes }));
  }

  /** Hold a flow disabled (schedules off, not-yet-started scheduled runs cancelled) until reactivated. */
  disableFlow(flow: string, options: { reason: string; by?: string } & TxOption): Promise<DisableOutcome> {
    return this.#tx(options, (tx) => disableFlowTx(this.#boss, tx, flow, options));
  }

  /** Reactivate a disabled flow: schedules back on from now, new health baseline. Not disabled → UserInputError. */
  reactivateFlow(flow: string, options: { by: string } & TxOption): Promise<ReactivateOutcome> {
    return this.#tx(options, (tx) => reactivateFlowTx(this.#boss, tx, flow, options));
  }

  upsertSchedule(flow: string, schedule: ScheduleInputRaw, options: TxOption = {}): Promise<UpsertScheduleResult> {
    return this.#tx(options, (tx) => upsertScheduleTx(tx, flow, schedule, { maxParametersBytes: this.#maxParametersBytes }));
  }

  /**
   * Post `text` to a notification channel by name (chunked to the channel's limit, delivered in
   * order, resumed without re-sending on retry). Unknown channel → UserInputError (NotFoundError).
   */
  notify(channel: string, text: string, options: TxOption = {}): Promise<{ eventId: number }> {
    return this.#tx(options, (tx) => notifyTx(this.#boss, tx, channel, text));
  }

  async close(): Promise<void> {
    if (this.#owned.boss) await this.#boss.stop({ graceful: false });
    if (this.#owned.pool) await this.#pool.end();
  }
}

function poolUrl(options: ClientOptions): string {
  const o = (options.pool as unknown as { options?: { connectionString?: string } }).options;
  if (!o?.connectionString) throw new Error('pass connectionString (or boss) together with pool');
  return o.connectionString;
}
