// The one place the editor's views reach Tandem's state: the folder servers that run, and one change event
// for everything the views show (runs, workers, panic, servers starting or stopping). Trees, the dashboard and
// the status bar all listen here, so a run started by an agent, by a command or by another process on the same
// workspace (the CLI) shows up everywhere at once.
import * as vscode from 'vscode';
import type { FolderRef, FolderServers } from './folder-servers';
import type { FolderServer } from './folder-server';

/** State is re-read from disk this often while a server is open: panic and runs changed by other processes. */
const POLL_MS = 2000;

export type HubChangeKind = 'runs' | 'workers' | 'panic' | 'servers';

export interface HubChange {
  kind: HubChangeKind;
  /** The folder it happened in; null for changes to the set of servers. */
  folderKey: string | null;
  /** For 'runs': the run whose status changed, when known (another process's runs come without one). */
  runId?: string;
}

export interface FolderEntry {
  folder: FolderRef;
  server: FolderServer;
}

export interface HubDeps {
  servers: FolderServers<FolderServer>;
  /** The workspace folders that can host Tandem, in order. */
  folders: () => FolderRef[];
  log: (line: string) => void;
}

/** Optional command argument naming a folder by path, URI or name (tests, keybindings, tree items). */
export interface FolderArgs {
  folder?: string;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class Hub implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<HubChange>();
  readonly onDidChange: vscode.Event<HubChange> = this.emitter.event;
  private readonly attached = new Map<FolderServer, { folder: FolderRef; stop: () => void }>();
  private readonly storeVersions = new Map<FolderServer, number>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private polling = false;
  private disposed = false;

  constructor(private readonly deps: HubDeps) {}

  folders(): FolderRef[] {
    return this.deps.folders();
  }

  /** Servers already running, in workspace-folder order; starts nothing. */
  running(): FolderEntry[] {
    const order = this.deps.folders().map((folder) => folder.key);
    return this.deps.servers
      .running()
      .sort((a, b) => order.indexOf(a.folder.key) - order.indexOf(b.folder.key));
  }

  /** The folder's server (started when needed), followed by the views. */
  async get(folder: FolderRef): Promise<FolderServer> {
    const server = await this.deps.servers.get(folder);
    this.attach(folder, server);
    return server;
  }

  /** Every workspace folder's server, started when needed; a folder that fails is logged and left out. */
  async openAll(): Promise<FolderEntry[]> {
    const found: FolderEntry[] = [];
    for (const folder of this.deps.folders()) {
      try {
        found.push({ folder, server: await this.get(folder) });
      } catch (error) {
        this.deps.log(`${folder.name}: ${messageOf(error)}`);
      }
    }
    return found;
  }

  /** The folder a command acts on: the one named by args, the only one, or the one the user picks. */
  async pickFolder(args: FolderArgs = {}): Promise<FolderRef | undefined> {
    const folders = this.deps.folders();
    if (args.folder !== undefined) {
      const wanted = args.folder;
      const match = folders.find((f) => f.path === wanted || f.key === wanted || f.name === wanted);
      if (!match) void vscode.window.showErrorMessage(`Tandem: no workspace folder "${wanted}".`);
      return match;
    }
    if (folders.length === 0) {
      void vscode.window.showErrorMessage('Tandem: open a folder on disk first.');
      return undefined;
    }
    if (folders.length === 1) return folders[0];
    const picked = await vscode.window.showQuickPick(
      folders.map((folder) => ({ label: folder.name, description: folder.path, folder })),
      { placeHolder: 'Workspace folder', ignoreFocusOut: true },
    );
    return picked?.folder;
  }

  /** The folder's server picked as pickFolder does; undefined when the user backed out. */
  async pickServer(args: FolderArgs = {}): Promise<FolderEntry | undefined> {
    const folder = await this.pickFolder(args);
    if (!folder) return undefined;
    return { folder, server: await this.get(folder) };
  }

  /** The folder entry of a running server by folder key. */
  entry(folderKey: string): FolderEntry | undefined {
    return this.running().find((candidate) => candidate.folder.key === folderKey);
  }

  /** Starts following a server's runs, workers and panic switch. Called for every server that starts. */
  attach(folder: FolderRef, server: FolderServer): void {
    if (this.disposed || this.attached.has(server)) return;
    const key = folder.key;
    const { orchestrator, workers, panic, store } = server.services;
    const offRun = orchestrator.onRunChange((run) =>
      this.fire({ kind: 'runs', folderKey: key, runId: run.id }),
    );
    const offWorker = workers.onChange(() => this.fire({ kind: 'workers', folderKey: key }));
    // A step starting or ending changes both what works now and the run's steps.
    const offStep = orchestrator.onStepChange((runId) => {
      this.fire({ kind: 'workers', folderKey: key });
      this.fire({ kind: 'runs', folderKey: key, runId });
    });
    const offPanic = panic.onChange(() => this.fire({ kind: 'panic', folderKey: key }));
    this.attached.set(server, {
      folder,
      stop: () => {
        offRun();
        offWorker();
        offStep();
        offPanic();
      },
    });
    this.storeVersions.set(server, store.version);
    if (!this.timer) {
      this.timer = setInterval(() => void this.poll(), POLL_MS);
      this.timer.unref?.();
    }
    // The bookkeeping lists a server as running once its start promise settled: tell the views on the next turn.
    setTimeout(() => this.fire({ kind: 'servers', folderKey: null }), 0);
  }

  /** Says that servers came or went (a folder removed, trust granted). */
  serversChanged(): void {
    this.fire({ kind: 'servers', folderKey: null });
  }

  private fire(change: HubChange): void {
    if (this.disposed) return;
    try {
      this.emitter.fire(change);
    } catch (error) {
      this.deps.log(`a view failed to update: ${messageOf(error)}`);
    }
  }

  /** Re-reads what other processes may have changed: the panic switch and the run index. */
  private async poll(): Promise<void> {
    if (this.polling || this.disposed) return;
    this.polling = true;
    try {
      const open = new Set(this.deps.servers.running().map((entry) => entry.server));
      for (const [server, { folder, stop }] of this.attached) {
        if (!open.has(server)) {
          stop();
          this.attached.delete(server);
          this.storeVersions.delete(server);
          this.fire({ kind: 'servers', folderKey: null });
          continue;
        }
        const { panic, store } = server.services;
        const wasEngaged = panic.engaged;
        await panic.reload().catch(() => undefined);
        if (panic.engaged !== wasEngaged) this.fire({ kind: 'panic', folderKey: folder.key });
        await store.refresh().catch(() => undefined);
        if (store.version !== this.storeVersions.get(server)) {
          this.storeVersions.set(server, store.version);
          this.fire({ kind: 'runs', folderKey: folder.key });
        }
      }
      if (this.attached.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    } finally {
      this.polling = false;
    }
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const { stop } of this.attached.values()) stop();
    this.attached.clear();
    this.emitter.dispose();
  }
}
