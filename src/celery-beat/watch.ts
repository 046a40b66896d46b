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
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #running: Promise<void> | null = null;

  constructor(config: SyncConfig) {
    this.#c = config;
  }

  async runOnce(): Promise<ImportResult> {
    const snapshot = await this.#c.read();
    const result = await importCeleryBeat(this.#c.pool, snapshot.tasks, this.#c.mapping, { boss: this.#c.boss });
    this.#c.onPass?.(result);
    return result;
  }

  start(): void {
    const loop = () => {
      if (this.#stopped) return;
      this.#running = this.runOnce()
        .then((r) => {
          const changed = r.counts.created + r.counts.updated + r.counts.removed;
          if (changed > 0) this.#c.log.info({ counts: r.counts }, 'celery-beat sync: changes applied');
        })
        .catch((err: unknown) => this.#c.log.error({ err }, 'celery-beat sync pass failed; retrying next interval'))
        .finally(() => {
          this.#running = null;
          if (!this.#stopped) this.#timer = setTimeout(loop, this.#c.intervalSeconds * 1000);
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }
}
