// The dashboard webview's host side: one panel (strict CSP, per-load nonce, local resources only), the state
// it shows rebuilt from the running folder servers whenever the hub reports a change, the selected run's
// events followed while it runs, and the webview's buttons mapped onto the editor commands, so each action
// has one implementation. Every message from the webview is validated before anything reads it.
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import * as z from 'zod';
import {
  isFinished,
  type RunStatus as ModelRunStatus,
  type Severity as ModelSeverity,
  type StepRecord,
} from '../orchestrator/model';
import { probeResultSchema } from '../workers/contract';
import type { WorkerState as ModelWorkerState } from '../workers/registry';
import { loadRunDetail } from './dashboard-detail';
import {
  LIMITS,
  buildEvents,
  buildState,
  notice,
  parseFromWebview,
  probeViews,
  type DetailMessage,
  type FolderInput,
  type FromWebview,
  type ProbeInput,
  type RunStatus,
  type Severity,
  type StateMessage,
  type StepStatus,
  type ToWebview,
  type WorkerState,
} from './dashboard-protocol';
import type { Hub } from './hub';

export const OPEN_DASHBOARD_COMMAND = 'tandem.openDashboard';
const VIEW_TYPE = 'tandem.dashboard';
/** Bursts of changes (a run's steps, several workers) become one state message. */
const STATE_DEBOUNCE_MS = 100;
/** How often the selected run's events file is read while the run is live. */
const EVENT_POLL_MS = 500;
/** A run's status is written before its run_finished event: keep polling this many ticks for the last events. */
const FINISHED_GRACE_TICKS = 6;

// The protocol spells the model's enums again (the webview bundle must not pull zod in); these fail to compile
// when the two drift apart.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _runStatusesAgree: Same<ModelRunStatus, RunStatus> = true;
const _stepStatusesAgree: Same<StepRecord['status'], StepStatus> = true;
const _severitiesAgree: Same<ModelSeverity, Severity> = true;
const _workerStatesAgree: Same<ModelWorkerState, WorkerState> = true;

export interface DashboardDeps {
  hub: Hub;
  extensionUri: vscode.Uri;
  log: (line: string) => void;
}

export interface Dashboard extends vscode.Disposable {
  /** Opens (or reveals) the panel, starting every folder's server: the dashboard is a lazy-start point. */
  open(): Promise<void>;
  /** The last state built for the panel. */
  lastState(): StateMessage | undefined;
  /** The last detail built for the selected run. */
  lastDetail(): DetailMessage | undefined;
  isOpen(): boolean;
  /** Handles a message as if the webview had posted it (host tests). */
  receive(message: unknown): Promise<void>;
  /** How many times the webview script loaded and said `ready` (it loads again after being hidden). */
  readyCount(): number;
}

interface Selection {
  folderKey: string;
  runId: string;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function dashboardHtml(webview: vscode.Webview, extensionUri: vscode.Uri, nonce: string): string {
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'media', 'dashboard.js'));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'dashboard.css'));
  const csp = [
    "default-src 'none'",
    `style-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
    `img-src ${webview.cspSource} data:`,
    `font-src ${webview.cspSource}`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp};">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style.toString()}">
<title>Tandem</title>
</head>
<body>
<div id="app" aria-busy="true">Loading the Tandem dashboard…</div>
<script nonce="${nonce}" src="${script.toString()}"></script>
</body>
</html>`;
}

export function registerDashboard(deps: DashboardDeps): Dashboard {
  const { hub, extensionUri } = deps;
  const log = (line: string): void => {
    try {
      deps.log(line);
    } catch {
      // a closed output channel must not break the panel
    }
  };

  let panel: vscode.WebviewPanel | undefined;
  let state: StateMessage | undefined;
  let detail: DetailMessage | undefined;
  let selection: Selection | undefined;
  /** Bumped on every new selection, so an answer for an older one is dropped. */
  let generation = 0;
  /** The last event seq the webview has for the selected run. */
  let cursor = 0;
  let sawRunFinished = false;
  let finishedTicks = 0;
  let stateTimer: ReturnType<typeof setTimeout> | undefined;
  let pollTimer: ReturnType<typeof setInterval> | undefined;
  let polling = false;
  let readies = 0;
  let disposed = false;
  const probes = new Map<string, ProbeInput[]>();

  const visible = (): boolean => panel !== undefined && panel.visible;

  const post = (message: ToWebview): void => {
    if (!panel) return;
    panel.webview.postMessage(message).then(
      () => undefined,
      (error: unknown) => log(`dashboard: could not post ${message.type}: ${messageOf(error)}`),
    );
  };

  const folders = (): FolderInput[] =>
    hub.running().map(({ folder, server }) => {
      const { store, workers, panic } = server.services;
      return {
        key: folder.key,
        name: folder.name,
        trusted: server.trusted,
        panic: panic.status(),
        workers: workers.list({ includeStopped: true }),
        // Named workers' steps show on their worker row; the others are the CLIs strategies run.
        active: server.services.orchestrator.activeSteps().filter(({ step }) => step.workerId === null),
        runs: store.list({ limit: LIMITS.runsPerFolder }),
        probe: probes.get(folder.key),
      };
    });

  const refreshState = (): void => {
    if (stateTimer) clearTimeout(stateTimer);
    stateTimer = undefined;
    try {
      state = buildState(folders(), new Date());
      post(state);
    } catch (error) {
      log(`dashboard: could not build the state: ${messageOf(error)}`);
    }
  };

  const scheduleState = (): void => {
    if (!visible() || stateTimer) return;
    stateTimer = setTimeout(refreshState, STATE_DEBOUNCE_MS);
  };

  const stopPolling = (): void => {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = undefined;
  };

  const loadDetail = async (target: Selection): Promise<DetailMessage> => {
    const entry = hub.entry(target.folderKey);
    if (!entry) throw new Error(`No Tandem server runs for the folder ${target.folderKey}.`);
    const { store, orchestrator } = entry.server.services;
    const running = orchestrator
      .activeSteps()
      .filter(({ runId }) => runId === target.runId)
      .map(({ step }) => step);
    // A finished run's detail is its summary.json, the object summary.md is rendered from.
    return loadRunDetail(store, target.folderKey, target.runId, log, new Date(), running);
  };

  /** Builds and posts the selected run's detail; undefined when the selection changed meanwhile. */
  const sendDetail = async (target: Selection, asOf: number): Promise<DetailMessage | undefined> => {
    const message = await loadDetail(target);
    if (asOf !== generation) return undefined;
    detail = message;
    cursor = Math.max(cursor, message.events[message.events.length - 1]?.seq ?? 0);
    if (message.events.some((event) => event.type === 'run_finished')) sawRunFinished = true;
    post(message);
    return message;
  };

  const poll = async (): Promise<void> => {
    const target = selection;
    if (polling || !target || !visible()) return;
    polling = true;
    const asOf = generation;
    try {
      const entry = hub.entry(target.folderKey);
      if (!entry) {
        stopPolling();
        return;
      }
      const { store } = entry.server.services;
      const fresh = await store.readEvents(target.runId, cursor, LIMITS.events);
      if (asOf !== generation) return;
      const last = fresh[fresh.length - 1];
      if (last) {
        cursor = last.seq;
        post(buildEvents(target.folderKey, target.runId, fresh));
      }
      if (fresh.some((event) => event.type === 'run_finished')) sawRunFinished = true;
      const status = store.get(target.runId).status;
      // steps.json is rewritten as steps start and finish, a step's command is known once its process
      // started (the progress event with its pid), and the status line changes at the end.
      const moved = fresh.some((event) => event.type !== 'step_progress' || event.data?.pid !== undefined);
      if (moved || status !== detail?.run.status) {
        if (!(await sendDetail(target, asOf))) return;
      }
      if (isFinished(status)) {
        finishedTicks += 1;
        if (sawRunFinished || finishedTicks >= FINISHED_GRACE_TICKS) stopPolling();
      }
    } catch (error) {
      log(`dashboard: following ${target.runId} failed: ${messageOf(error)}`);
      stopPolling();
    } finally {
      polling = false;
    }
  };

  const select = async (target: Selection): Promise<void> => {
    generation += 1;
    const asOf = generation;
    stopPolling();
    selection = target;
    detail = undefined;
    cursor = 0;
    sawRunFinished = false;
    finishedTicks = 0;
    const sent = await sendDetail(target, asOf);
    if (sent && (!isFinished(sent.run.status) || !sawRunFinished)) {
      pollTimer = setInterval(() => void poll(), EVENT_POLL_MS);
    }
  };

  const probe = async (): Promise<void> => {
    const lines: string[] = [];
    for (const { folder } of hub.running()) {
      const answer = await vscode.commands.executeCommand<unknown>('tandem.probeClis', {
        folder: folder.key,
        quiet: true,
      });
      if (answer === undefined) continue;
      const parsed = z.array(probeResultSchema).safeParse(answer);
      if (!parsed.success) {
        log(`dashboard: tandem.probeClis answered something that is not a probe result list`);
        continue;
      }
      probes.set(folder.key, parsed.data);
      const summary = probeViews(parsed.data)
        .map((cli) => `${cli.kind} ${cli.installed ? (cli.version ?? 'installed') : 'not installed'}`)
        .join(', ');
      lines.push(hub.running().length > 1 ? `${folder.name}: ${summary}` : summary);
    }
    refreshState();
    post(notice('info', lines.length > 0 ? `Probed the CLIs: ${lines.join('; ')}.` : 'No CLI was probed.'));
  };

  const act = async (message: FromWebview): Promise<void> => {
    switch (message.type) {
      case 'ready':
        readies += 1;
        // The webview starts empty (first load, or shown again after being hidden) and selects again itself.
        generation += 1;
        stopPolling();
        selection = undefined;
        refreshState();
        return;
      case 'select':
        await select({ folderKey: message.folderKey, runId: message.runId });
        return;
      case 'cancelRun':
        await vscode.commands.executeCommand('tandem.cancelRun', {
          folder: message.folderKey,
          runId: message.runId,
        });
        break;
      case 'stopWorker':
        await vscode.commands.executeCommand('tandem.stopWorker', {
          folder: message.folderKey,
          workerId: message.workerId,
        });
        break;
      case 'engagePanic':
        await vscode.commands.executeCommand('tandem.engagePanic', { reason: 'engaged from the dashboard' });
        break;
      case 'releasePanic':
        // No arguments: the command asks for the modal confirmation; releasing is always a deliberate act.
        await vscode.commands.executeCommand('tandem.releasePanic');
        break;
      case 'probe':
        await probe();
        return;
      case 'openSummary':
        await vscode.commands.executeCommand('tandem.showRunSummary', {
          folder: message.folderKey,
          runId: message.runId,
        });
        return;
    }
    scheduleState();
  };

  const receive = async (raw: unknown): Promise<void> => {
    let message: FromWebview;
    try {
      message = parseFromWebview(raw);
    } catch (error) {
      log(`dashboard: ignored a malformed message from the webview: ${messageOf(error)}`);
      post(notice('error', `Ignored a malformed message: ${messageOf(error)}`));
      return;
    }
    try {
      await act(message);
    } catch (error) {
      log(`dashboard: ${message.type} failed: ${messageOf(error)}`);
      post(notice('error', messageOf(error)));
    }
  };

  const createPanel = (): vscode.WebviewPanel => {
    const created = vscode.window.createWebviewPanel(VIEW_TYPE, 'Tandem', vscode.ViewColumn.One, {
      enableScripts: true,
      localResourceRoots: [
        vscode.Uri.joinPath(extensionUri, 'dist', 'media'),
        vscode.Uri.joinPath(extensionUri, 'media'),
      ],
      retainContextWhenHidden: false,
    });
    created.webview.html = dashboardHtml(created.webview, extensionUri, randomBytes(16).toString('base64'));
    const subscriptions = [
      created.webview.onDidReceiveMessage((raw: unknown) => void receive(raw)),
      created.onDidChangeViewState(() => {
        // A hidden webview is torn down (no retained context): stop the work; it says ready when shown again.
        if (created.visible) return;
        stopPolling();
        if (stateTimer) clearTimeout(stateTimer);
        stateTimer = undefined;
      }),
    ];
    created.onDidDispose(() => {
      for (const subscription of subscriptions) subscription.dispose();
      if (panel === created) {
        panel = undefined;
        generation += 1;
        selection = undefined;
        stopPolling();
        if (stateTimer) clearTimeout(stateTimer);
        stateTimer = undefined;
      }
    });
    return created;
  };

  const open = async (): Promise<void> => {
    if (disposed) return;
    if (panel) panel.reveal();
    else panel = createPanel();
    await hub.openAll();
    refreshState();
  };

  const onChange = hub.onDidChange(() => scheduleState());
  const command = vscode.commands.registerCommand(OPEN_DASHBOARD_COMMAND, async (): Promise<void> => {
    try {
      await open();
    } catch (error) {
      log(`dashboard: could not open: ${messageOf(error)}`);
      void vscode.window.showErrorMessage(`Tandem: could not open the dashboard: ${messageOf(error)}`);
    }
  });

  return {
    open,
    lastState: () => state,
    lastDetail: () => detail,
    isOpen: () => panel !== undefined,
    receive,
    readyCount: () => readies,
    dispose: () => {
      if (disposed) return;
      disposed = true;
      onChange.dispose();
      command.dispose();
      panel?.dispose();
      stopPolling();
      if (stateTimer) clearTimeout(stateTimer);
    },
  };
}
