// The panic switch: once engaged, every in-flight run is cancelled and every mutating tool is refused
// until a human releases it. The state lives in .tandem/panic.json so it survives restarts and is shared
// by every server on the workspace (the editor's and any `tandem-mcp serve`).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureStateDir, writeFileAtomic } from './run-store';

export interface PanicState {
  engaged: boolean;
  /** agentId (or "human") who engaged it. */
  engagedBy: string | null;
  engagedAt: string | null;
  reason: string | null;
  releasedBy: string | null;
  releasedAt: string | null;
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

export class PanicSwitch {
  private state: PanicState = { ...RELEASED };
  private readonly listeners = new Set<(state: PanicState) => void>();

  private constructor(private readonly file: string) {}

  static async open(workspaceRoot: string): Promise<PanicSwitch> {
    const dir = await ensureStateDir(workspaceRoot);
    const panic = new PanicSwitch(path.join(dir, 'panic.json'));
    await panic.reload();
    return panic;
  }

  /** Re-reads the file: another process on the workspace may have engaged or released it. */
  async reload(): Promise<PanicState> {
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as Partial<PanicState>;
      // Anything unreadable counts as engaged: failing closed is the point of a kill switch.
      this.state = { ...RELEASED, ...parsed, engaged: parsed.engaged !== false };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') this.state = { ...RELEASED };
      else
        this.state = {
          ...RELEASED,
          engaged: true,
          reason: `panic.json could not be read: ${(error as Error).message}`,
        };
    }
    return this.status();
  }

  status(): PanicState {
    return { ...this.state };
  }

  get engaged(): boolean {
    return this.state.engaged;
  }

  onChange(listener: (state: PanicState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async engage(by: string, reason: string): Promise<PanicState> {
    this.state = {
      ...this.state,
      engaged: true,
      engagedBy: by,
      engagedAt: new Date().toISOString(),
      reason: reason.slice(0, 500),
    };
    await this.persist();
    return this.status();
  }

  /** Only a human may call this: the editor command (after a modal confirm) or `tandem-mcp panic release`. */
  async release(by: string): Promise<PanicState> {
    this.state = { ...this.state, engaged: false, releasedBy: by, releasedAt: new Date().toISOString() };
    await this.persist();
    return this.status();
  }

  private async persist(): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(this.state, null, 2) + '\n');
    for (const listener of this.listeners) listener(this.status());
  }
}
