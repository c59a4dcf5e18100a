/** Small async primitives the homeserver needs (no timers kept across restarts). */

/** A FIFO async mutex: `run(fn)` executes fns one at a time, in call order. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/**
 * Wakes `/sync` long-polls: waiters resolve when the stream passes their position, or at their
 * timeout. Lives in memory only: a restarted worker just has no waiters (clients retry).
 */
export class Notifier {
  private waiters = new Set<{ after: number; resolve: () => void }>();
  private pos = 0;
  /** The highest position notified (lowered only by `rewind`). */
  get position(): number {
    return this.pos;
  }
  /** Called after each commit with the new stream position (and on other wake-ups such as typing). */
  notify(position: number): void {
    if (position > this.pos) this.pos = position;
    for (const w of [...this.waiters]) {
      if (this.position > w.after || position < 0) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }
  /**
   * Go back to `position`: a batch that was shown before it was durable failed (Store.onVisible). Waiters
   * it woke have gone; a waiter that comes after waits for the next real change.
   */
  rewind(position: number): void {
    if (position < this.pos) this.pos = Math.max(position, 0);
  }
  /** Wake every waiter (e.g. typing changed, which is not in the stored stream). */
  wakeAll(): void {
    this.notify(-1);
  }
  /** Resolves when something happens after `after`, when `ms` elapse, or when `signal` aborts. */
  wait(after: number, ms: number, signal?: AbortSignal): Promise<void> {
    if (this.position > after || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const w = {
        after,
        resolve: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', w.resolve);
          this.waiters.delete(w);
          resolve();
        },
      };
      const timer = setTimeout(w.resolve, ms);
      signal?.addEventListener('abort', w.resolve);
      this.waiters.add(w);
    });
  }
}
