// The editor's own controls over Tandem: the status bar item (running count or PANIC) and the commands a
// human uses directly (engage and release panic, copy the MCP config for other clients, show a run summary).
// Services are reached through the folder-server bookkeeping, so a command never starts a second server.
import * as vscode from 'vscode';
import type { FolderRef, FolderServers } from './folder-servers';
import type { FolderServer } from './folder-server';

export const ENGAGE_PANIC_COMMAND = 'tandem.engagePanic';
export const RELEASE_PANIC_COMMAND = 'tandem.releasePanic';
export const COPY_MCP_CONFIG_COMMAND = 'tandem.copyMcpConfig';
export const SHOW_RUN_SUMMARY_COMMAND = 'tandem.showRunSummary';

/** While a server is open, state is re-read this often (panic engaged by another process, runs elsewhere). */
const STATUS_POLL_MS = 2000;
const HUMAN = 'human';

export interface ControlsDeps {
  servers: FolderServers<FolderServer>;
  /** The workspace folders that can host Tandem, in order. */
  folders: () => FolderRef[];
  showOutputCommand: string;
  log: (line: string) => void;
}

export interface Controls extends vscode.Disposable {
  /** Called once a folder's server has started: the status bar follows its runs and panic switch. */
  attach(server: FolderServer): void;
  /** The status bar item's text, for the host tests. */
  statusText(): string;
  refresh(): void;
}

/** Optional arguments that skip the prompts (tests, keybindings, other extensions). */
interface EngageArgs {
  reason?: string;
}
interface ReleaseArgs {
  confirmed?: boolean;
}
interface FolderArgs {
  folder?: string;
}
interface SummaryArgs extends FolderArgs {
  runId?: string;
}

function asObject<T extends object>(value: unknown): T {
  return (typeof value === 'object' && value !== null ? value : {}) as T;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function createControls(deps: ControlsDeps): Controls {
  const { servers } = deps;
  const item = vscode.window.createStatusBarItem('tandem.status', vscode.StatusBarAlignment.Left, -100);
  item.name = 'Tandem';
  item.command = deps.showOutputCommand;
  const detach = new Map<FolderServer, () => void>();
  let timer: ReturnType<typeof setInterval> | undefined;
  let disposed = false;

  const refresh = (): void => {
    if (disposed) return;
    const open = servers.running().map((entry) => entry.server);
    let running = 0;
    let panic = false;
    for (const server of open) {
      running += server.services.orchestrator.runningCount;
      if (server.services.panic.engaged) panic = true;
    }
    if (panic) {
      item.text = '$(error) Tandem: PANIC';
      item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
      item.tooltip = 'Tandem: panic is engaged; every mutating tool is refused. Click for the output.';
    } else {
      item.backgroundColor = undefined;
      item.text = running > 0 ? `$(sync~spin) Tandem: ${running} running` : '$(check) Tandem';
      item.tooltip =
        running > 0 ? `Tandem: ${running} run(s) in progress. Click for the output.` : 'Tandem: idle';
    }
    item.show();
    // Poll only while a server is open; a server closed by the bookkeeping stops being followed.
    for (const [server, stop] of detach) {
      if (!open.includes(server)) {
        stop();
        detach.delete(server);
      }
    }
    if (open.length === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  const poll = (): void => {
    const open = servers.running().map((entry) => entry.server);
    // Another process may have engaged or released panic: the services re-read it only while runs are running.
    void Promise.allSettled(open.map((server) => server.services.panic.reload())).then(refresh);
  };

  const attach = (server: FolderServer): void => {
    if (disposed || detach.has(server)) return;
    const offRun = server.services.orchestrator.onRunChange(() => refresh());
    const offPanic = server.services.panic.onChange(() => refresh());
    detach.set(server, () => {
      offRun();
      offPanic();
    });
    if (!timer) {
      timer = setInterval(poll, STATUS_POLL_MS);
      timer.unref?.();
    }
    // The server is listed as running only once its start promise settled: refresh on the next turn too.
    refresh();
    setTimeout(refresh, 0);
  };

  /** Every workspace folder's server (started when needed), for commands that act on all folders. */
  const allServers = async (): Promise<FolderServer[]> => {
    const found: FolderServer[] = [];
    for (const folder of deps.folders()) {
      try {
        const server = await servers.get(folder);
        attach(server);
        found.push(server);
      } catch (error) {
        deps.log(`${folder.name}: ${messageOf(error)}`);
      }
    }
    return found;
  };

  /** One folder: the one named by args, the only one, or the one the user picks. */
  const pickFolder = async (args: FolderArgs): Promise<FolderRef | undefined> => {
    const folders = deps.folders();
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
      { placeHolder: 'Workspace folder' },
    );
    return picked?.folder;
  };

  const engagePanic = async (raw?: unknown): Promise<number> => {
    const args = asObject<EngageArgs>(raw);
    let reason = args.reason;
    if (reason === undefined) {
      reason = await vscode.window.showInputBox({
        title: 'Tandem: Engage Panic',
        prompt: 'Why? Every run is cancelled and every mutating tool refused until a human releases it.',
        value: 'engaged from the editor',
      });
      if (reason === undefined) return 0;
    }
    const list = await allServers();
    await Promise.all(
      list.map(async (server) => {
        await server.services.panic.engage(HUMAN, reason || 'engaged from the editor');
        await server.services.orchestrator.cancelAll();
      }),
    );
    deps.log(`panic engaged by a human on ${list.length} folder(s): ${reason}`);
    refresh();
    if (args.reason === undefined) {
      void vscode.window.showWarningMessage('Tandem: panic engaged. Every run was cancelled.');
    }
    return list.length;
  };

  const releasePanic = async (raw?: unknown): Promise<number> => {
    const args = asObject<ReleaseArgs>(raw);
    if (args.confirmed !== true) {
      const answer = await vscode.window.showWarningMessage(
        'Release Tandem panic? Agents may start runs and change files again.',
        { modal: true },
        'Release',
      );
      if (answer !== 'Release') return 0;
    }
    const list = await allServers();
    await Promise.all(list.map((server) => server.services.panic.release(HUMAN)));
    deps.log(`panic released by a human on ${list.length} folder(s)`);
    refresh();
    return list.length;
  };

  const copyMcpConfig = async (raw?: unknown): Promise<string | undefined> => {
    const folder = await pickFolder(asObject<FolderArgs>(raw));
    if (!folder) return undefined;
    const config = {
      mcpServers: {
        tandem: { command: 'npx', args: ['tandem-mcp', 'serve', '--workspace', folder.path] },
      },
    };
    const text = JSON.stringify(config, null, 2);
    await vscode.env.clipboard.writeText(text);
    void vscode.window.showInformationMessage(
      `Tandem: MCP config for ${folder.name} copied. Paste it into the other client's MCP settings.`,
    );
    return text;
  };

  const showRunSummary = async (raw?: unknown): Promise<vscode.TextDocument | undefined> => {
    const args = asObject<SummaryArgs>(raw);
    const folder = await pickFolder(args);
    if (!folder) return undefined;
    const server = await servers.get(folder);
    attach(server);
    const { store } = server.services;
    await store.refresh();
    let runId = args.runId;
    if (runId === undefined) {
      const runs = store.list({ limit: 50 });
      if (runs.length === 0) {
        void vscode.window.showInformationMessage(`Tandem: no runs yet in ${folder.name}.`);
        return undefined;
      }
      const picked = await vscode.window.showQuickPick(
        runs.map((run) => ({
          label: `${run.id}  ${run.status}`,
          description: `${run.strategy ?? 'task'} · ${run.owner}`,
          runId: run.id,
        })),
        { placeHolder: 'Run', matchOnDescription: true },
      );
      if (!picked) return undefined;
      runId = picked.runId;
    }
    if (!store.has(runId)) {
      void vscode.window.showErrorMessage(`Tandem: no run ${runId} in ${folder.name}.`);
      return undefined;
    }
    let content = await store.readRunFile(runId, 'summary.md');
    if (content === undefined) {
      const { runHeaderMarkdown } = await import('../orchestrator/summary.js');
      content = `${runHeaderMarkdown(store.get(runId)).join('\n')}\n\n_(This run has written no summary yet.)_\n`;
    }
    const document = await vscode.workspace.openTextDocument({ language: 'markdown', content });
    try {
      await vscode.commands.executeCommand('markdown.showPreview', document.uri);
    } catch {
      await vscode.window.showTextDocument(document, { preview: true });
    }
    return document;
  };

  /** Commands report failures to the user and return undefined instead of throwing. */
  const guarded =
    <T>(name: string, run: (args?: unknown) => Promise<T>) =>
    async (args?: unknown): Promise<T | undefined> => {
      try {
        return await run(args);
      } catch (error) {
        deps.log(`${name} failed: ${messageOf(error)}`);
        void vscode.window.showErrorMessage(`Tandem: ${messageOf(error)}`);
        return undefined;
      }
    };

  const registrations = [
    vscode.commands.registerCommand(ENGAGE_PANIC_COMMAND, guarded('engage panic', engagePanic)),
    vscode.commands.registerCommand(RELEASE_PANIC_COMMAND, guarded('release panic', releasePanic)),
    vscode.commands.registerCommand(COPY_MCP_CONFIG_COMMAND, guarded('copy MCP config', copyMcpConfig)),
    vscode.commands.registerCommand(SHOW_RUN_SUMMARY_COMMAND, guarded('show run summary', showRunSummary)),
  ];

  refresh();
  return {
    attach,
    refresh,
    statusText: () => item.text,
    dispose: () => {
      disposed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      for (const stop of detach.values()) stop();
      detach.clear();
      for (const registration of registrations) registration.dispose();
      item.dispose();
    },
  };
}
