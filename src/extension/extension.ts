// Extension entry point: registers the Tandem MCP server definitions (one per workspace folder) and the
// commands. Activation stays cheap: the server code (services, MCP SDK, offline model) is loaded and started
// only when the editor resolves a definition, that is when something first needs Tandem's tools.
import path from 'node:path';
import * as vscode from 'vscode';
import { TANDEM_VERSION } from '../version';
import type { TandemServices } from '../mcp/services';
import { registerCommands } from './commands';
import { createControls } from './controls';
import { registerDashboard, type Dashboard } from './dashboard';
import { Hub } from './hub';
import { registerTrees, type Trees } from './trees';
import { FolderServers, labelFolders, type FolderRef } from './folder-servers';
import type { FolderServer } from './folder-server';
import { SharedOfflineModel } from './offline-model';
import { SETTINGS_SECTION, readSettings } from './settings';

/** Set by the bundle's first statement (esbuild.mjs banner); absent when this file runs unbundled. */
declare const __tandemBundleStart: number | undefined;
/** When the extension's code started to run: the bundle's first statement, before any module it imports. */
const moduleLoadedAt = typeof __tandemBundleStart === 'number' ? __tandemBundleStart : performance.now();

export const MCP_PROVIDER_ID = 'tandem.mcp';
export const SHOW_OUTPUT_COMMAND = 'tandem.showOutput';
export const RESTART_SERVERS_COMMAND = 'tandem.restartServers';
/** What provideMcpServerDefinitions hands out before a server runs; resolve fills in the real address. */
const UNRESOLVED_URI = 'http://127.0.0.1/mcp';
const LOG_TAIL_LINES = 200;

/** Milliseconds since this module was loaded; undefined until the moment came. */
export interface TandemTimings {
  /** activate() called: the time before it is the host loading the bundle and preparing the context. */
  activateCalledMs: number;
  /** End of activate(). */
  activationMs: number;
  firstProvideMs?: number;
  firstResolveMs?: number;
  /** The first folder's server is listening (services opened, HTTP bound). */
  firstServerReadyMs?: number;
  /** The editor's first tools/list request reached a server. */
  firstToolsListMs?: number;
}

/** What activate() returns (`extension.exports`): read by the host tests, not a public API. */
export interface TandemExtensionApi {
  readonly timings: Readonly<TandemTimings>;
  runningServers(): { folder: string; url: string; sessions: number; trusted: boolean }[];
  /** The last lines of the output channel (at most 200). */
  logTail(): string[];
  /** The status bar item's text. */
  getStatusText(): string;
  /** A folder's services (the first folder when none is named), its server started through the bookkeeping. */
  services(folderPath?: string): Promise<TandemServices>;
  /** The sidebar trees, to read what they show. */
  trees(): Trees;
  /** The dashboard panel's host side, to read what it shows. */
  dashboard(): Dashboard;
}

interface Host {
  servers: FolderServers<FolderServer>;
  offline: SharedOfflineModel;
}

let host: Host | undefined;

function sinceLoad(): number {
  return Math.round((performance.now() - moduleLoadedAt) * 100) / 100;
}

interface Logger {
  info(line: string): void;
  warn(line: string): void;
}

/**
 * Writes to the output channel and never throws: during shutdown the host closes the channel before
 * deactivate() has finished, and a failed log line must not stop the servers from closing.
 */
function channelLogger(output: vscode.LogOutputChannel): Logger {
  const guard =
    (write: (line: string) => void) =>
    (line: string): void => {
      try {
        write(line);
      } catch {
        // the channel is gone; nothing left to tell
      }
    };
  return { info: guard((line) => output.info(line)), warn: guard((line) => output.warn(line)) };
}

function currentFolders(log: Logger): FolderRef[] {
  const folders: FolderRef[] = [];
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    if (folder.uri.scheme !== 'file') {
      log.warn(`${folder.name}: only folders on disk can host Tandem (this one is ${folder.uri.scheme}:)`);
      continue;
    }
    folders.push({ key: folder.uri.toString(), name: folder.name, path: folder.uri.fsPath });
  }
  return folders;
}

export function activate(context: vscode.ExtensionContext): TandemExtensionApi {
  const timings: TandemTimings = { activateCalledMs: sinceLoad(), activationMs: 0 };
  const output = vscode.window.createOutputChannel('Tandem', { log: true });
  const channel = channelLogger(output);
  // The last lines written, for the host tests (e.g. the code a refused tool call was logged with).
  const recent: string[] = [];
  const remember = (line: string): void => {
    recent.push(line);
    if (recent.length > LOG_TAIL_LINES) recent.splice(0, recent.length - LOG_TAIL_LINES);
  };
  const logger: Logger = {
    info: (line) => {
      remember(line);
      channel.info(line);
    },
    warn: (line) => {
      remember(line);
      channel.warn(line);
    },
  };
  const log = logger.info;
  const offline = new SharedOfflineModel(log);

  // Created once the bookkeeping exists; the views follow every server that starts through it.
  const ui: { hub?: Hub } = {};
  const startServer = async (folder: FolderRef): Promise<FolderServer> => {
    const settings = readSettings(
      vscode.workspace.getConfiguration(SETTINGS_SECTION, vscode.Uri.parse(folder.key)),
      logger.warn,
    );
    const endpoint = settings.offlineModel ? await offline.endpoint() : undefined;
    const loadStarted = performance.now();
    // Loaded here, not at the top: esbuild turns this import into a module that is evaluated on first use, so
    // activation does not pay for the SDK and the services. (The `.js` suffix is what node16 resolution asks.)
    const { startFolderServer } = await import('./folder-server.js');
    const loadMs = Math.round(performance.now() - loadStarted);
    const server = await startFolderServer({
      workspaceRoot: folder.path,
      trusted: vscode.workspace.isTrusted,
      settings,
      ...(endpoint ? { endpoint } : {}),
      log: (line) => log(`[${folder.name}] ${line}`),
      onRequest: (method) => {
        if (method === 'tools/list' && timings.firstToolsListMs === undefined) {
          timings.firstToolsListMs = sinceLoad();
          log(`first tools/list from the editor at +${timings.firstToolsListMs} ms`);
        }
      },
    });
    timings.firstServerReadyMs ??= sinceLoad();
    ui.hub?.attach(folder, server);
    log(
      `server for ${folder.name} ready at +${sinceLoad()} ms (server code loaded in ${loadMs} ms; ` +
        `${settings.offlineModel ? 'offline model' : 'vendor APIs'}, concurrency ${settings.concurrency}` +
        `${server.trusted ? '' : ', untrusted: no workers'})`,
    );
    return server;
  };
  const servers = new FolderServers<FolderServer>(startServer, log);
  host = { servers, offline };
  const hub = new Hub({ servers, folders: () => currentFolders(logger), log });
  ui.hub = hub;
  const controls = createControls({
    hub,
    cliPath: path.join(context.extensionPath, 'dist', 'cli.js'),
    showOutputCommand: SHOW_OUTPUT_COMMAND,
    log,
  });
  const trees = registerTrees(hub, log);
  const dashboard = registerDashboard({ hub, extensionUri: context.extensionUri, log });

  const changed = new vscode.EventEmitter<void>();
  let labels = new Map<string, FolderRef>();
  const provider: vscode.McpServerDefinitionProvider<vscode.McpHttpServerDefinition> = {
    onDidChangeMcpServerDefinitions: changed.event,
    provideMcpServerDefinitions: () => {
      timings.firstProvideMs ??= sinceLoad();
      labels = labelFolders(currentFolders(logger));
      return [...labels.keys()].map(
        (label) =>
          new vscode.McpHttpServerDefinition(label, vscode.Uri.parse(UNRESOLVED_URI), {}, TANDEM_VERSION),
      );
    },
    resolveMcpServerDefinition: async (definition) => {
      timings.firstResolveMs ??= sinceLoad();
      const folder =
        labels.get(definition.label) ?? labelFolders(currentFolders(logger)).get(definition.label);
      if (!folder) {
        throw new Error(`${definition.label}: its workspace folder is no longer open.`);
      }
      const server = await servers.get(folder);
      definition.uri = vscode.Uri.parse(server.url);
      definition.headers = { Authorization: `Bearer ${server.token}` };
      return definition;
    },
  };

  context.subscriptions.push(
    output,
    changed,
    hub,
    controls,
    trees,
    dashboard,
    ...registerCommands({ hub, log }),
    vscode.lm.registerMcpServerDefinitionProvider(MCP_PROVIDER_ID, provider),
    vscode.commands.registerCommand(SHOW_OUTPUT_COMMAND, () => output.show()),
    vscode.workspace.onDidChangeWorkspaceFolders(() => {
      const keys = new Set(currentFolders(logger).map((folder) => folder.key));
      void servers.retain(keys).then(() => hub.serversChanged());
      changed.fire();
    }),
    // Trust granted while the window is open: servers started untrusted (history only) are restarted trusted,
    // and the editor is told its MCP definitions changed so it reconnects to them.
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      const untrusted = servers.running().filter((entry) => !entry.server.trusted);
      log(`workspace trust granted: restarting ${untrusted.length} untrusted server(s)`);
      void Promise.all(untrusted.map((entry) => servers.stop(entry.folder.key)))
        .then(async () => {
          changed.fire();
          hub.serversChanged();
          if (untrusted.length > 0) await hub.openAll();
        })
        .catch((error: unknown) => logger.warn(`restart after trust failed: ${(error as Error).message}`));
    }),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(SETTINGS_SECTION)) {
        log('settings changed: they apply to Tandem servers started from now on (Tandem: Restart Servers)');
      }
    }),
    vscode.commands.registerCommand(RESTART_SERVERS_COMMAND, async (raw?: unknown) => {
      // Runs in progress are cancelled by a restart: ask first, unless the caller confirmed.
      const confirmed =
        typeof raw === 'object' && raw !== null && (raw as { confirmed?: unknown }).confirmed === true;
      const running = servers.running();
      const active = running.reduce((sum, entry) => sum + entry.server.services.orchestrator.runningCount, 0);
      if (active > 0 && !confirmed) {
        const answer = await vscode.window.showWarningMessage(
          `Restart Tandem? ${active} run(s) in progress will be cancelled.`,
          { modal: true },
          'Restart',
        );
        if (answer !== 'Restart') return 0;
      }
      await Promise.all(running.map((entry) => servers.stop(entry.folder.key)));
      changed.fire();
      hub.serversChanged();
      // Each server reads its state from disk again on start: runs a dead process left become interrupted.
      const started = await hub.openAll();
      log(`restarted ${started.length} Tandem server(s)`);
      return started.length;
    }),
  );

  timings.activationMs = sinceLoad();
  log(
    `Tandem ${TANDEM_VERSION} activated: ${timings.activationMs} ms from module load to the end of activate ` +
      `(${Math.round((timings.activationMs - timings.activateCalledMs) * 100) / 100} ms in activate)`,
  );
  return {
    timings,
    runningServers: () =>
      servers.running().map(({ folder, server }) => ({
        folder: folder.path,
        url: server.url,
        sessions: server.sessionCount(),
        trusted: server.trusted,
      })),
    logTail: () => [...recent],
    getStatusText: () => controls.statusText(),
    trees: () => trees,
    dashboard: () => dashboard,
    services: async (folderPath) => {
      const folders = currentFolders(logger);
      const folder =
        folderPath === undefined ? folders[0] : folders.find((candidate) => candidate.path === folderPath);
      if (!folder) throw new Error(`no workspace folder ${folderPath ?? ''} can host Tandem`);
      return (await hub.get(folder)).services;
    },
  };
}

/** Closes every folder's server: runs are cancelled and their worker process trees killed. */
export async function deactivate(): Promise<void> {
  const closing = host;
  host = undefined;
  if (!closing) return;
  try {
    await closing.servers.closeAll();
  } finally {
    await closing.offline.close();
  }
}
