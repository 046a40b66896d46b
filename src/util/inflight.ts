/**
 * Handler calls in flight in this process. Shutdown uses it after pg-boss has handed back (failed
 * for retry) the jobs still active at the drain deadline and aborted their signals: handlers that
 * honour the signal get a short grace to record what happened before the pools close; handlers that
 * ignore it are abandoned (their runs are settled on redelivery, see docs/operations.md).
 */
export class Inflight {
  readonly #pending = new Set<Promise<unknown>>();
  #aborted = 0;

  get size(): number {
    return this.#pending.size;
  }

  /** Handler calls that ended after their job's signal was aborted (handed back by pg-boss). */
  get aborted(): number {
    return this.#aborted;
  }

  track<T>(work: Promise<T>, signal?: AbortSignal): Promise<T> {
    this.#pending.add(work);
    const done = () => {
      this.#pending.delete(work);
      if (signal?.aborted) this.#aborted++;
    };
    work.then(done, done);
    return work;
  }

  /** Resolves true once nothing is in flight, false if `timeoutMs` passes first. */
  async settled(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      for (;;) {
        if (this.#pending.size === 0) return true;
        const all = Promise.allSettled([...this.#pending]).then(() => true as const);
        if (!(await Promise.race([all, deadline]))) return false;
      }
    } finally {
      clearTimeout(timer);
    }
  }
}
