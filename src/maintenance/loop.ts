/**
 * What every maintenance loop shares (docs/architecture.md, "Maintenance loops"): the `Loop` that
 * runs a pass every interval and never throws, the `LoopService` base that runs a service's
 * `runOnce` on it as the Maintainer starts and stops it, and `resolveConfig`, which fills a loop's
 * config from its named defaults and rejects a bad value at construction.
 */
import type { Logger } from '../log.ts';

/** What the Maintainer (src/maintenance/index.ts) starts and stops. */
export interface MaintenanceService {
  readonly name: string;
  start(): void;
  stop(): Promise<void>;
}

/** A setting's allowed range: an integer unless `real`. */
export interface Bound {
  min: number;
  max?: number;
  real?: boolean;
}

/**
 * `defaults` overlaid with the defined values of `input`, each checked against its bound. Keys not
 * in `defaults` are ignored, so a wider object may be passed.
 */
export function resolveConfig<T extends object>(loop: string, defaults: T, input: Partial<T>, bounds: Record<keyof T, Bound>): T {
  const out = { ...defaults };
  for (const key of Object.keys(defaults) as Array<keyof T & string>) {
    const value: unknown = input[key] ?? defaults[key];
    const b = bounds[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || (!b.real && !Number.isInteger(value)) || value < b.min || (b.max !== undefined && value > b.max)) {
      throw new RangeError(
        `${loop} config: ${key} must be ${b.real ? 'a number' : 'an integer'} in ${b.min}..${b.max ?? '∞'}, got ${String(value)}; ` +
          `leave it out for the default (${String(defaults[key])})`,
      );
    }
    out[key] = value as T[keyof T & string];
  }
  return out;
}

/**
 * The timer behind every loop. `stop()` aborts the signal the body gets (bodies check it between
 * batches, so a pass never outlives the drain) and waits for the pass in flight. A failing pass is
 * logged and the next runs on schedule; a body returning 'again' (work left after its bounded pass)
 * runs again at once.
 */
export class Loop {
  readonly #name: string;
  readonly #intervalMs: number;
  readonly #body: (signal: AbortSignal) => Promise<void | 'again'>;
  #abort = new AbortController();
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;
  readonly #keepAlive: boolean;

  /** `keepAlive`: the timer holds the process open (a command whose only work is this loop); by default it does not. */
  constructor(name: string, intervalMs: number, body: (signal: AbortSignal) => Promise<void | 'again'>, log: Logger, options: { keepAlive?: boolean } = {}) {
    this.#keepAlive = options.keepAlive ?? false;
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
    if (!this.#keepAlive) this.#timer.unref?.();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}

/**
 * A maintenance service whose loop runs its `runOnce({ signal })` every `config.intervalMs`; a pass
 * that returns `{ more: true }` (it hit its batch bound with work left) runs again at once. Tests
 * call `runOnce` directly.
 */
export abstract class LoopService<C extends { intervalMs: number }> implements MaintenanceService {
  readonly name: string;
  /** The resolved config (resolveConfig), fixed at construction. */
  readonly config: C;
  readonly #loop: Loop;

  constructor(name: string, config: C, log: Logger) {
    this.name = name;
    this.config = config;
    this.#loop = new Loop(name, config.intervalMs, async (signal) => {
      const result = await this.runOnce({ signal });
      return (result as { more?: unknown } | undefined)?.more === true && !signal.aborted ? 'again' : undefined;
    }, log);
  }

  abstract runOnce(options: { signal?: AbortSignal }): Promise<unknown>;

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }
}
