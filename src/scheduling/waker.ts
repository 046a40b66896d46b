/**
 * Exact-time wake-ups for dispatch workers in this pod.
 *
 * The tick pre-creates runs up to a horizon ahead and their dispatch jobs carry startAfter = fire
 * time. pg-boss would find them on its next poll (up to a poll interval late); instead, the pod that
 * created the jobs sets a timer for each distinct fire time and wakes its own dispatch workers the
 * moment the job becomes fetchable. Timers are coalesced per fire time, so 100,000 fires due in the
 * same second cost one timer. Times are converted with the Postgres clock offset the tick measured,
 * so pod clock skew does not matter. Polling stays on as the correctness floor (and serves pods
 * that did not create the job).
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
