/**
 * A background loop with the shape every maintenance service shares: `start`, `stop`, and a body
 * that is also callable directly as `runOnce()` in tests. The loop never throws: a failing pass is
 * logged and the next one runs on schedule. `stop()` aborts the signal the body gets — every body
 * checks it between batches/pages/flows and returns early, so a pass never outlives the drain — and
 * then waits for the pass in flight. A body that returns 'again' (work left over after its bounded
 * pass) runs again at once instead of after the interval.
 */
import type { Logger } from '../log.ts';

export class Loop {
  readonly #name: string;
  readonly #intervalMs: number;
  readonly #body: (signal: AbortSignal) => Promise<void | 'again'>;
  #abort = new AbortController();
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;

  constructor(name: string, intervalMs: number, body: (signal: AbortSignal) => Promise<void | 'again'>, log: Logger) {
    this.#name = name;
    this.#intervalMs = intervalMs;
    this.#body = body;
    this.#log = log;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    if (this.#abort.signal.aborted) this.#abort = new AbortController();
    this.#schedule(0);
  }

  /** Run the next pass now instead of waiting out the interval. */
  wake(): void {
    if (this.#stopped || this.#running) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#schedule(0);
  }

  #schedule(delay: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      let again = false;
      this.#running = this.#body(this.#abort.signal)
        .then((r) => {
          again = r === 'again';
        })
        .catch((err: unknown) => this.#log.error({ err, loop: this.#name }, 'background pass failed; will retry'))
        .finally(() => {
          this.#running = undefined;
          if (!this.#stopped) this.#schedule(again ? 0 : this.#intervalMs);
        });
    }, delay);
    this.#timer.unref?.();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
