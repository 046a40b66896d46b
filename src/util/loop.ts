/**
 * A background loop with the shape every maintenance service shares: `start`, `stop`, and a body
 * that is also callable directly as `runOnce()` in tests. The loop never throws: a failing pass is
 * logged and the next one runs on schedule. `stop()` waits for the pass in flight.
 */
import type { Logger } from '../log.ts';

export class Loop {
  readonly #name: string;
  readonly #intervalMs: number;
  readonly #body: () => Promise<void>;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;

  constructor(name: string, intervalMs: number, body: () => Promise<void>, log: Logger) {
    this.#name = name;
    this.#intervalMs = intervalMs;
    this.#body = body;
    this.#log = log;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
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
      this.#running = this.#body()
        .catch((err: unknown) => this.#log.error({ err, loop: this.#name }, 'background pass failed; will retry'))
        .finally(() => {
          this.#running = undefined;
          if (!this.#stopped) this.#schedule(this.#intervalMs);
        });
    }, delay);
    this.#timer.unref?.();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
