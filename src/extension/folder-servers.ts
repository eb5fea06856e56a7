// Which workspace folder has which running MCP server: at most one per folder, started on first use (the
// editor's resolveMcpServerDefinition), stopped when its folder leaves the workspace, all closed on deactivate.
// Plain Node and generic over the server, so its rules are tested with stand-ins.

export interface FolderRef {
  /** Stable identity: the folder's URI as a string. */
  key: string;
  /** The folder's name as the editor shows it. */
  name: string;
  /** Absolute file-system path. */
  path: string;
}

export interface Closable {
  close(): Promise<void>;
}

interface Entry<S> {
  folder: FolderRef;
  starting: Promise<S>;
  /** Set once the start succeeded. */
  server?: S;
}

export class ShutDownError extends Error {
  constructor() {
    super('Tandem is shutting down: no MCP server is started any more in this window.');
    this.name = 'ShutDownError';
  }
}

export class FolderServers<S extends Closable> {
  private readonly entries = new Map<string, Entry<S>>();
  private closing: Promise<void> | undefined;

  private readonly log: (line: string) => void;

  constructor(
    private readonly start: (folder: FolderRef) => Promise<S>,
    log: (line: string) => void = () => undefined,
  ) {
    // Bookkeeping must go on when logging fails (a closed output channel at shutdown).
    this.log = (line) => {
      try {
        log(line);
      } catch {
        // nowhere left to write
      }
    };
  }

  /** The folder's server, started on first call; concurrent callers share one start. A failed start is forgotten, so the next call tries again. */
  get(folder: FolderRef): Promise<S> {
    if (this.closing) return Promise.reject(new ShutDownError());
    const existing = this.entries.get(folder.key);
    if (existing) return existing.starting;
    const entry: Entry<S> = { folder, starting: this.start(folder) };
    this.entries.set(folder.key, entry);
    entry.starting.then(
      (server) => {
        entry.server = server;
      },
      (error: unknown) => {
        if (this.entries.get(folder.key) === entry) this.entries.delete(folder.key);
        this.log(`could not start the server for ${folder.name}: ${messageOf(error)}`);
      },
    );
    return entry.starting;
  }

  /** Servers whose start finished, with their folders. */
  running(): { folder: FolderRef; server: S }[] {
    const list: { folder: FolderRef; server: S }[] = [];
    for (const entry of this.entries.values()) {
      if (entry.server) list.push({ folder: entry.folder, server: entry.server });
    }
    return list;
  }

  /** Stops the servers of folders that are no longer in the workspace. */
  async retain(keys: ReadonlySet<string>): Promise<void> {
    const gone = [...this.entries.keys()].filter((key) => !keys.has(key));
    await Promise.all(gone.map((key) => this.stop(key)));
  }

  /** Stops one folder's server (waiting for a start under way first); nothing when none runs. */
  async stop(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    await this.closeEntry(entry);
  }

  /** Closes every server, including those still starting; later get() calls are refused. Never throws. */
  closeAll(): Promise<void> {
    this.closing ??= (async () => {
      const all = [...this.entries.values()];
      this.entries.clear();
      await Promise.all(all.map((entry) => this.closeEntry(entry)));
    })();
    return this.closing;
  }

  private async closeEntry(entry: Entry<S>): Promise<void> {
    let server: S;
    try {
      server = await entry.starting;
    } catch {
      return; // it never ran; its failure was logged when it happened
    }
    try {
      await server.close();
      this.log(`stopped the server for ${entry.folder.name}`);
    } catch (error) {
      this.log(`stopping the server for ${entry.folder.name} failed: ${messageOf(error)}`);
    }
  }
}

/**
 * One MCP server label per folder: "Tandem (name)", with the folder's position added when two folders share a
 * name. The editor finds the definition to resolve again by its label, so labels must be unique.
 */
export function labelFolders(folders: readonly FolderRef[]): Map<string, FolderRef> {
  const counts = new Map<string, number>();
  for (const folder of folders) counts.set(folder.name, (counts.get(folder.name) ?? 0) + 1);
  const labels = new Map<string, FolderRef>();
  folders.forEach((folder, index) => {
    const unique = counts.get(folder.name) === 1;
    labels.set(unique ? `Tandem (${folder.name})` : `Tandem (${folder.name} #${index + 1})`, folder);
  });
  return labels;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
