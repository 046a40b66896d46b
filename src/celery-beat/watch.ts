/**
 * Sync mode: re-import every `intervalSeconds` while Beat is still the source of truth. A pass reads
 * Django's tables and imports (idempotent, so an unchanged pass writes nothing). Bounded delay: a
 * change in Django shows up in flowwarden within one interval plus one pass. `runOnce` is the
 * testable unit; the loop never throws (it logs and tries again next interval).
 */
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { Logger } from '../log.ts';
import { importCeleryBeat, type ImportResult } from './import.ts';
import type { CeleryBeatMapping } from './mapping.ts';
import type { BeatSnapshot } from './source.ts';
import { Loop } from '../maintenance/loop.ts';

export interface SyncConfig {
  pool: pg.Pool;
  boss: PgBoss | null;
  mapping: CeleryBeatMapping;
  read: () => Promise<BeatSnapshot>;
  intervalSeconds: number;
  log: Logger;
  onPass?: (result: ImportResult) => void;
}

export class CeleryBeatSync {
  readonly #c: SyncConfig;
  readonly #loop: Loop;

  constructor(config: SyncConfig) {
    this.#c = config;
    this.#loop = new Loop('celery-beat-sync', config.intervalSeconds * 1000, async () => {
      const r = await this.runOnce();
      const changed = r.counts.created + r.counts.updated + r.counts.removed;
      if (changed > 0) this.#c.log.info({ counts: r.counts }, 'celery-beat sync: changes applied');
    }, config.log, { keepAlive: true });
  }

  async runOnce(): Promise<ImportResult> {
    const snapshot = await this.#c.read();
    const result = await importCeleryBeat(this.#c.pool, snapshot.tasks, this.#c.mapping, { boss: this.#c.boss });
    this.#c.onPass?.(result);
    return result;
  }

  /** Runs a pass now and then every interval; a failing pass is logged and retried next interval. */
  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }
}
