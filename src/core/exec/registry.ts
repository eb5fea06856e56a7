// Every live child the product started, so a shutdown (extension deactivate, CLI exit) can end them all.

export interface TrackedProcess {
  readonly pid: number | undefined;
  /** Starts SIGTERM → grace → SIGKILL of the whole tree and resolves when it is gone. */
  terminate(reason: 'cancelled' | 'shutdown'): Promise<void>;
  /** Immediate SIGKILL of the whole tree, for process exit handlers that cannot wait. */
  killNow(): void;
}

export class ProcessRegistry {
  private readonly live = new Set<TrackedProcess>();
  private closed = false;

  get size(): number {
    return this.live.size;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  pids(): number[] {
    return [...this.live].flatMap((entry) => (entry.pid === undefined ? [] : [entry.pid]));
  }

  add(entry: TrackedProcess): void {
    this.live.add(entry);
  }

  delete(entry: TrackedProcess): void {
    this.live.delete(entry);
  }

  /** Ends every live child and waits for their trees to be gone. Later starts are still allowed. */
  async terminateAll(): Promise<void> {
    await Promise.all([...this.live].map((entry) => entry.terminate('shutdown')));
  }

  /** Refuses new starts, then ends every live child. */
  async close(): Promise<void> {
    this.closed = true;
    await this.terminateAll();
  }

  /** SIGKILL to every live tree, synchronously: for `process.on('exit')`. */
  killAllNow(): void {
    for (const entry of this.live) entry.killNow();
  }
}

/** The registry used when a caller does not pass its own. */
export const defaultProcessRegistry = new ProcessRegistry();
