// The editor's own controls over Tandem: the status bar item (running count or PANIC) and the commands a
// human uses directly (engage and release panic, copy the MCP config for other clients, show a run summary).
// Services are reached through the folder-server bookkeeping, so a command never starts a second server.
import * as vscode from 'vscode';
import { runWhat } from '../orchestrator/model';
import type { FolderServer } from './folder-server';
import type { FolderArgs, Hub } from './hub';
import { asObject, guarded } from './command-util';

export const ENGAGE_PANIC_COMMAND = 'tandem.engagePanic';
export const RELEASE_PANIC_COMMAND = 'tandem.releasePanic';
export const COPY_MCP_CONFIG_COMMAND = 'tandem.copyMcpConfig';
export const SHOW_RUN_SUMMARY_COMMAND = 'tandem.showRunSummary';

const HUMAN = 'human';

export interface ControlsDeps {
  hub: Hub;
  /** The extension's own `tandem-mcp` (dist/cli.js): what another client runs to reach the same workspace. */
  cliPath: string;
  showOutputCommand: string;
  log: (line: string) => void;
}

export interface Controls extends vscode.Disposable {
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
interface SummaryArgs extends FolderArgs {
  runId?: string;
}

export function createControls(deps: ControlsDeps): Controls {
  const { hub } = deps;
  const item = vscode.window.createStatusBarItem('tandem.status', vscode.StatusBarAlignment.Left, -100);
  item.name = 'Tandem';
  item.command = deps.showOutputCommand;
  let disposed = false;

  const refresh = (): void => {
    if (disposed) return;
    let running = 0;
    let panic = false;
    for (const { server } of hub.running()) {
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
  };
  const subscription = hub.onDidChange(refresh);
  const allServers = async (): Promise<FolderServer[]> => (await hub.openAll()).map((entry) => entry.server);

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
        // In memory, then the runs, then the disk: an unwritable panic.json cannot keep runs going.
        server.services.panic.engageNow(HUMAN, reason || 'engaged from the editor');
        const cancelling = server.services.orchestrator.cancelAll(undefined, { atOnce: true });
        await server.services.panic.persist();
        await cancelling;
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
    const folder = await hub.pickFolder(asObject<FolderArgs>(raw));
    if (!folder) return undefined;
    const config = {
      mcpServers: {
        // The CLI shipped in this extension, run by the node on PATH: no registry lookup, the same version.
        tandem: { command: 'node', args: [deps.cliPath, 'serve', '--workspace', folder.path] },
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
    const folder = await hub.pickFolder(args);
    if (!folder) return undefined;
    const server = await hub.get(folder);
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
          description: `${runWhat(run)} · ${run.owner}`,
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

  const guard = <T>(name: string, run: (args?: unknown) => Promise<T>) => guarded(name, deps.log, run);

  const registrations = [
    vscode.commands.registerCommand(ENGAGE_PANIC_COMMAND, guard('engage panic', engagePanic)),
    vscode.commands.registerCommand(RELEASE_PANIC_COMMAND, guard('release panic', releasePanic)),
    vscode.commands.registerCommand(COPY_MCP_CONFIG_COMMAND, guard('copy MCP config', copyMcpConfig)),
    vscode.commands.registerCommand(SHOW_RUN_SUMMARY_COMMAND, guard('show run summary', showRunSummary)),
  ];

  refresh();
  return {
    refresh,
    statusText: () => item.text,
    dispose: () => {
      disposed = true;
      subscription.dispose();
      for (const registration of registrations) registration.dispose();
      item.dispose();
    },
  };
}
