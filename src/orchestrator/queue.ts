// The dispatch queue: at most `limit` worker processes run at once across all runs; the rest wait in
// order of arrival. A waiter whose run is cancelled leaves the queue without taking a slot.

export class DispatchQueue {
  private running = 0;
  private readonly waiting: { grant: () => void; signal: AbortSignal | undefined; onAbort: () => void }[] =
    [];

  constructor(private limit: number) {
    this.setLimit(limit);
  }

  setLimit(limit: number): void {
    if (!Number.isInteger(limit) || limit < 1 || limit > 64) {
      throw new RangeError(`The concurrency limit must be an integer from 1 to 64, got ${limit}.`);
    }
    this.limit = limit;
    this.drain();
  }

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `work` when a slot is free. Rejects with the signal's reason if cancelled while waiting. */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await work();
    } finally {
      this.running -= 1;
      this.drain();
    }
  }

  private acquire(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(new Error('cancelled while queued'));
    if (this.running < this.limit && this.waiting.length === 0) {
      this.running += 1;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = {
        signal,
        grant: () => {
          signal?.removeEventListener('abort', entry.onAbort);
          this.running += 1;
          resolve();
        },
        onAbort: () => {
          const at = this.waiting.indexOf(entry);
          if (at !== -1) this.waiting.splice(at, 1);
          reject(new Error('cancelled while queued'));
        },
      };
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  private drain(): void {
    while (this.running < this.limit && this.waiting.length > 0) {
      (this.waiting.shift() as (typeof this.waiting)[number]).grant();
    }
  }
}
