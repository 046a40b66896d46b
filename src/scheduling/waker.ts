/**
 * Exact-time wake-ups for dispatch workers in this pod: the pod that created dispatch jobs (startAfter
 * = fire time) sets one timer per distinct fire time and wakes its own dispatch workers when the job
 * becomes fetchable, instead of waiting up to a poll interval. Times use the Postgres clock offset
 * the tick measured (pod skew does not matter); polling stays on as the correctness floor.
 */
export class Waker {
  readonly #timers = new Map<number, NodeJS.Timeout>();
  readonly #wake: () => void;
  /** Postgres time minus local time, in ms (updated by the tick). */
  offsetMs = 0;
  #stopped = false;

  constructor(wake: () => void) {
    this.#wake = wake;
  }

  schedule(times: Iterable<Date>): void {
    if (this.#stopped) return;
    for (const t of times) {
      const at = t.getTime();
      if (this.#timers.has(at)) continue;
      // +2 ms so Postgres's now() is past startAfter when the fetch arrives.
      const delay = Math.max(0, at - (Date.now() + this.offsetMs) + 2);
      const timer = setTimeout(() => {
        this.#timers.delete(at);
        this.#wake();
      }, delay);
      timer.unref?.();
      this.#timers.set(at, timer);
    }
  }

  get pending(): number {
    return this.#timers.size;
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }
}
