// The panic switch: once engaged, every in-flight run is cancelled and every mutating tool is refused
// until a human releases it. The state lives in .tandem/panic.json so it survives restarts and is shared
// by every server on the workspace (the editor's and any `tandem-mcp serve`). Engaging takes effect in
// memory first; a panic.json that cannot be written (a full or read-only disk, a planted folder in its place)
// leaves it engaged in this process, and says so, instead of failing open.
import path from 'node:path';
import { readStateFile, writeStateFile } from '../core/state-file';
import { ensureStateDir } from './run-store';

export interface PanicState {
  engaged: boolean;
  /** agentId (or "human") who engaged it. */
  engagedBy: string | null;
  engagedAt: string | null;
  reason: string | null;
  releasedBy: string | null;
  releasedAt: string | null;
}

/** The state as this process holds it: whether panic.json says the same, and if not, why. */
export interface PanicStatus extends PanicState {
  /** False while this process holds an engagement panic.json does not have (the write failed). */
  persisted: boolean;
  persistError: string | null;
}

/** The state of a workspace where panic was never engaged (or has been released with no record). */
export const RELEASED: Readonly<PanicState> = {
  engaged: false,
  engagedBy: null,
  engagedAt: null,
  reason: null,
  releasedBy: null,
  releasedAt: null,
};

/** panic.json is a few hundred bytes; anything larger is not ours. */
const PANIC_FILE_MAX_BYTES = 64 * 1024;
/** How long engage waits for panic.json to be written before it answers (engaged in memory regardless). */
const PERSIST_WAIT_MS = 3000;

export class PanicSwitch {
  private state: PanicState = { ...RELEASED };
  /** An engagement of this process that panic.json does not hold yet, and why. */
  private unpersisted: { state: PanicState; error: string } | undefined;
  private writing: Promise<void> | undefined;
  private readonly listeners = new Set<(state: PanicStatus) => void>();

  private constructor(
    private readonly workspaceRoot: string,
    private readonly file: string,
  ) {}

  static async open(workspaceRoot: string): Promise<PanicSwitch> {
    const dir = await ensureStateDir(workspaceRoot);
    const panic = new PanicSwitch(workspaceRoot, path.join(dir, 'panic.json'));
    await panic.reload();
    return panic;
  }

  /** Re-reads the file: another process on the workspace may have engaged or released it. */
  async reload(): Promise<PanicStatus> {
    let fromFile: PanicState;
    let readable = true;
    try {
      const text = await readStateFile(this.workspaceRoot, this.file, { maxBytes: PANIC_FILE_MAX_BYTES });
      if (text === undefined) fromFile = { ...RELEASED };
      else {
        const parsed = JSON.parse(text) as Partial<PanicState>;
        // Anything unreadable counts as engaged: failing closed is the point of a kill switch.
        fromFile = { ...RELEASED, ...parsed, engaged: parsed.engaged !== false };
      }
    } catch (error) {
      readable = false;
      fromFile = {
        ...RELEASED,
        engaged: true,
        reason: `panic.json could not be read: ${(error as Error).message}`,
      };
    }
    const pending = this.unpersisted;
    if (pending) {
      const releasedLater =
        readable &&
        !fromFile.engaged &&
        fromFile.releasedAt !== null &&
        pending.state.engagedAt !== null &&
        fromFile.releasedAt > pending.state.engagedAt;
      if ((readable && fromFile.engaged) || releasedLater) {
        // The file speaks for the workspace again: engaged by someone, or released by a human since.
        this.unpersisted = undefined;
        this.state = fromFile;
      } else {
        this.state = pending.state;
        void this.persistInBackground();
      }
    } else {
      this.state = fromFile;
    }
    return this.status();
  }

  status(): PanicStatus {
    return {
      ...this.state,
      persisted: this.unpersisted === undefined,
      persistError: this.unpersisted?.error ?? null,
    };
  }

  get engaged(): boolean {
    return this.state.engaged;
  }

  onChange(listener: (state: PanicStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Engages at once in memory (no I/O, so nothing a workspace does can delay it) and tells the listeners;
   * persisting is left to persist(). Cancel the runs between the two.
   */
  engageNow(by: string, reason: string): void {
    this.state = {
      ...this.state,
      engaged: true,
      engagedBy: by,
      engagedAt: new Date().toISOString(),
      reason: reason.slice(0, 500),
    };
    this.unpersisted = { state: { ...this.state }, error: 'not written to .tandem/panic.json yet' };
    this.notify();
  }

  /**
   * Writes the engagement to panic.json, waiting at most a few seconds. Never throws: when the write fails
   * (or is slow), panic stays engaged in this process and status() says it is not persisted, and why.
   */
  async persist(): Promise<PanicStatus> {
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, PERSIST_WAIT_MS);
      timer.unref();
    });
    await Promise.race([this.persistInBackground(), slow]);
    clearTimeout(timer);
    return this.status();
  }

  /** engageNow, then persist: for the editor and the CLI, which have no runs of their own to cancel between. */
  async engage(by: string, reason: string): Promise<PanicStatus> {
    this.engageNow(by, reason);
    return this.persist();
  }

  private persistInBackground(): Promise<void> {
    const pending = this.unpersisted;
    if (!pending) return Promise.resolve();
    this.writing ??= writeStateFile(
      this.workspaceRoot,
      this.file,
      JSON.stringify(pending.state, null, 2) + '\n',
    )
      .then(
        () => {
          if (this.unpersisted === pending) this.unpersisted = undefined;
        },
        (error: unknown) => {
          if (this.unpersisted === pending) {
            this.unpersisted = {
              state: pending.state,
              error: `.tandem/panic.json could not be written (${(error as Error).message})`,
            };
          }
        },
      )
      .finally(() => {
        this.writing = undefined;
        this.notify();
      });
    return this.writing;
  }

  /**
   * Only a human may call this: the editor command (after a modal confirm) or `tandem-mcp panic release`.
   * The file is written first: a release that cannot be recorded leaves panic engaged (and throws).
   */
  async release(by: string): Promise<PanicStatus> {
    const next = { ...this.state, engaged: false, releasedBy: by, releasedAt: new Date().toISOString() };
    await writeStateFile(this.workspaceRoot, this.file, JSON.stringify(next, null, 2) + '\n');
    this.state = next;
    this.unpersisted = undefined;
    this.notify();
    return this.status();
  }

  private notify(): void {
    for (const listener of this.listeners) {
      try {
        listener(this.status());
      } catch {
        // a view's failure must not change the switch
      }
    }
  }
}
