// The sidebar: a Runs tree (newest first, status icons, steps as children) and a Workers tree, both in the
// "Tandem" activity-bar container and both following the hub live. With more than one workspace folder each
// tree groups by folder. Opening a view is a reason to start the folders' servers (history must be readable).
import * as vscode from 'vscode';
import { isFinished, runWhat, type RunRecord, type RunStatus, type StepRecord } from '../orchestrator/model';
import type { ActiveStep } from '../orchestrator/orchestrator';
import type { WorkerInfo } from '../workers/registry';
import { messageOf } from './command-util';
import type { FolderRef } from './folder-servers';
import type { FolderEntry, Hub } from './hub';

export const RUNS_VIEW = 'tandem.runs';
export const WORKERS_VIEW = 'tandem.workers';
export const SHOW_RUN_SUMMARY = 'tandem.showRunSummary';
/** Runs listed per folder: the history can hold far more; the dashboard and `tandem-mcp runs` page further. */
export const RUNS_SHOWN = 100;
/** While a listed run is active its steps change without an index line: re-read them this often. */
const ACTIVE_REFRESH_MS = 1000;
const DEBOUNCE_MS = 100;

/** Tree elements carry the folder key and ids under the names the commands read from their argument. */
export type TandemNode =
  | { type: 'folder'; folder: string; ref: FolderRef; view: 'runs' | 'workers' }
  | { type: 'run'; folder: string; runId: string; run: RunRecord }
  | { type: 'step'; folder: string; runId: string; step: StepRecord }
  | { type: 'worker'; folder: string; workerId: string; worker: WorkerInfo }
  | { type: 'active'; folder: string; runId: string; active: ActiveStep }
  | { type: 'message'; text: string };

const RUN_ICONS: Record<RunStatus, [string, string | undefined]> = {
  queued: ['clock', undefined],
  running: ['sync~spin', 'charts.blue'],
  succeeded: ['pass', 'testing.iconPassed'],
  failed: ['error', 'testing.iconFailed'],
  partial: ['warning', 'list.warningForeground'],
  cancelled: ['circle-slash', 'disabledForeground'],
  interrupted: ['debug-disconnect', 'list.warningForeground'],
};

function icon(name: string, color: string | undefined): vscode.ThemeIcon {
  return new vscode.ThemeIcon(name, color ? new vscode.ThemeColor(color) : undefined);
}

function stepIcon(status: StepRecord['status']): vscode.ThemeIcon {
  switch (status) {
    case 'running':
      return icon('sync~spin', 'charts.blue');
    case 'succeeded':
      return icon('pass', 'testing.iconPassed');
    case 'cancelled':
      return icon('circle-slash', 'disabledForeground');
    default:
      return icon('error', 'testing.iconFailed');
  }
}

/** "3 s", "2 min 5 s", "1 h 2 min". */
export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** "just now", "5 min ago", "3 h ago", else the date. */
export function formatAge(iso: string, now: number = Date.now()): string {
  const then = Date.parse(iso);
  if (!Number.isFinite(then)) return '';
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 45) return 'just now';
  if (seconds < 3600) return `${Math.max(1, Math.round(seconds / 60))} min ago`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h ago`;
  return iso.slice(0, 10);
}

function runDuration(run: RunRecord): number | null {
  if (!run.startedAt) return null;
  const end = run.endedAt ? Date.parse(run.endedAt) : Date.now();
  return end - Date.parse(run.startedAt);
}

/** One line of a prompt for a label: the scenario tags of the offline model and extra spaces left out. */
export function promptLine(prompt: string, max = 60): string {
  const line = prompt
    .replace(/\[\[[^\]]*\]\]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

abstract class LiveTree implements vscode.TreeDataProvider<TandemNode>, vscode.Disposable {
  protected readonly changed = new vscode.EventEmitter<TandemNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private pending: ReturnType<typeof setTimeout> | undefined;
  private readonly subscription: vscode.Disposable;
  private opened = false;

  constructor(
    protected readonly hub: Hub,
    private readonly kinds: ReadonlySet<string>,
    protected readonly log: (line: string) => void,
  ) {
    this.subscription = hub.onDidChange((change) => {
      if (this.kinds.has(change.kind)) this.refreshSoon();
    });
  }

  refreshSoon(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.changed.fire(undefined);
    }, DEBOUNCE_MS);
  }

  abstract getTreeItem(node: TandemNode): vscode.TreeItem;

  protected abstract childrenOf(entry: FolderEntry): Promise<TandemNode[]> | TandemNode[];

  protected abstract readonly view: 'runs' | 'workers';

  async getChildren(node?: TandemNode): Promise<TandemNode[]> {
    if (node === undefined) {
      // A view that opens is a need for the folders' state: start their servers (once).
      if (!this.opened) {
        this.opened = true;
        await this.hub.openAll();
      }
      const entries = this.hub.running();
      if (entries.length === 0) return [];
      if (this.hub.folders().length > 1) {
        return entries.map(({ folder }) => ({
          type: 'folder',
          folder: folder.key,
          ref: folder,
          view: this.view,
        }));
      }
      return this.safeChildren(entries[0] as FolderEntry);
    }
    if (node.type === 'folder') {
      const entry = this.hub.entry(node.folder);
      return entry ? this.safeChildren(entry) : [];
    }
    return this.nodeChildren(node);
  }

  protected nodeChildren(_node: TandemNode): Promise<TandemNode[]> | TandemNode[] {
    return [];
  }

  private async safeChildren(entry: FolderEntry): Promise<TandemNode[]> {
    try {
      return await this.childrenOf(entry);
    } catch (error) {
      this.log(`${this.view} view: ${messageOf(error)}`);
      return [{ type: 'message', text: `Could not read ${entry.folder.name}: ${messageOf(error)}` }];
    }
  }

  protected folderItem(node: Extract<TandemNode, { type: 'folder' }>): vscode.TreeItem {
    const item = new vscode.TreeItem(node.ref.name, vscode.TreeItemCollapsibleState.Expanded);
    item.iconPath = vscode.ThemeIcon.Folder;
    item.description = this.hub.entry(node.folder)?.server.trusted === false ? 'untrusted: history only' : '';
    item.tooltip = node.ref.path;
    item.contextValue = 'folder';
    item.id = `${this.view}:${node.folder}`;
    return item;
  }

  dispose(): void {
    if (this.pending) clearTimeout(this.pending);
    this.subscription.dispose();
    this.changed.dispose();
  }
}

export class RunsTree extends LiveTree {
  protected readonly view = 'runs' as const;
  private timer: ReturnType<typeof setInterval> | undefined;
  private visible = false;

  constructor(hub: Hub, log: (line: string) => void) {
    super(hub, new Set(['runs', 'servers', 'panic']), log);
  }

  /** Follows the view's visibility: the timer that refreshes active runs runs only while it is seen. */
  setVisible(visible: boolean): void {
    this.visible = visible;
    this.updateTimer();
  }

  private hasActiveRun(): boolean {
    return this.hub
      .running()
      .some(({ server }) => server.services.store.list({ limit: 20 }).some((run) => !isFinished(run.status)));
  }

  private updateTimer(): void {
    const wanted = this.visible && this.hasActiveRun();
    if (wanted && !this.timer) {
      this.timer = setInterval(() => {
        this.refreshSoon();
        this.updateTimer();
      }, ACTIVE_REFRESH_MS);
    } else if (!wanted && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  protected childrenOf(entry: FolderEntry): TandemNode[] {
    const runs = entry.server.services.store.list({ limit: RUNS_SHOWN });
    this.updateTimer();
    return runs.map((run) => ({ type: 'run', folder: entry.folder.key, runId: run.id, run }));
  }

  protected override async nodeChildren(node: TandemNode): Promise<TandemNode[]> {
    if (node.type !== 'run') return [];
    const entry = this.hub.entry(node.folder);
    if (!entry) return [];
    const text = await entry.server.services.store.readRunFile(node.runId, 'steps.json');
    if (text === undefined) {
      return [
        {
          type: 'message',
          text: isFinished(node.run.status) ? 'No step ran.' : 'Waiting for the first step…',
        },
      ];
    }
    let steps: StepRecord[];
    try {
      steps = JSON.parse(text) as StepRecord[];
    } catch {
      // Written atomically, so a bad file is damage, not a half-written file: say so rather than hide it.
      return [{ type: 'message', text: 'steps.json could not be read.' }];
    }
    return steps.map((step) => ({ type: 'step', folder: node.folder, runId: node.runId, step }));
  }

  getTreeItem(node: TandemNode): vscode.TreeItem {
    switch (node.type) {
      case 'folder':
        return this.folderItem(node);
      case 'run':
        return runItem(node);
      case 'step':
        return stepItem(node);
      case 'message':
        return new vscode.TreeItem(node.text);
      default:
        return new vscode.TreeItem('');
    }
  }

  override dispose(): void {
    if (this.timer) clearInterval(this.timer);
    super.dispose();
  }
}

function runItem(node: Extract<TandemNode, { type: 'run' }>): vscode.TreeItem {
  const { run } = node;
  const what = runWhat(run);
  const item = new vscode.TreeItem(
    `${what}: ${promptLine(run.prompt) || run.id}`,
    vscode.TreeItemCollapsibleState.Collapsed,
  );
  // Stable ids keep a run expanded across refreshes; a refresh re-reads the children of expanded runs.
  item.id = `run:${node.folder}:${run.id}`;
  const [name, color] = RUN_ICONS[run.status];
  item.iconPath = icon(name, color);
  const duration = formatDuration(runDuration(run));
  item.description = [run.status, duration, formatAge(run.createdAt), run.owner].filter(Boolean).join(' · ');
  const tooltip = new vscode.MarkdownString(undefined, true);
  tooltip.appendMarkdown(`**${what}** \`${run.id}\` — ${run.status}\n\n`);
  tooltip.appendText(`Asked by ${run.owner} · workers ${run.workers.join(', ') || 'none'}\n`);
  if (run.outcome) tooltip.appendText(`\n${run.outcome}\n`);
  if (run.decision) tooltip.appendText(`\nDecision: ${run.decision}\n`);
  tooltip.appendText(
    `\n${run.applied ? 'The change was applied to the workspace.' : 'Nothing was applied.'}`,
  );
  item.tooltip = tooltip;
  item.contextValue = isFinished(run.status) ? 'run.finished' : 'run.active';
  item.command = {
    command: SHOW_RUN_SUMMARY,
    title: 'Show Run Summary',
    arguments: [{ folder: node.folder, runId: run.id }],
  };
  return item;
}

function stepItem(node: Extract<TandemNode, { type: 'step' }>): vscode.TreeItem {
  const { step } = node;
  const item = new vscode.TreeItem(`${step.index}. ${step.name}`, vscode.TreeItemCollapsibleState.None);
  item.id = `step:${node.folder}:${node.runId}:${step.index}`;
  item.iconPath = stepIcon(step.status);
  const parts = [`${step.workerKind} (${step.role})`, step.status, formatDuration(step.durationMs)];
  if (step.verdict && step.verdict !== 'none') parts.push(step.verdict);
  if (step.findings.length > 0) parts.push(`${step.findings.length} finding(s)`);
  if (step.diffStats) parts.push(`+${step.diffStats.insertions} −${step.diffStats.deletions}`);
  item.description = parts.filter(Boolean).join(' · ');
  const tooltip = new vscode.MarkdownString();
  tooltip.appendText(`${step.workerKind} ${step.model} as ${step.role}: ${step.status}`);
  if (step.exitCode !== null) tooltip.appendText(`, exit ${step.exitCode}`);
  if (step.errorMessage) tooltip.appendText(`\n\n${step.errorMessage}`);
  for (const finding of step.findings.slice(0, 10)) {
    tooltip.appendText(
      `\n\n[${finding.severity}] ${finding.title}${finding.file ? ` (${finding.file})` : ''}`,
    );
  }
  for (const file of step.filesChanged.slice(0, 10)) tooltip.appendText(`\n${file.change}: ${file.path}`);
  item.tooltip = tooltip;
  item.contextValue = 'step';
  return item;
}

export class WorkersTree extends LiveTree {
  protected readonly view = 'workers' as const;

  constructor(hub: Hub, log: (line: string) => void) {
    super(hub, new Set(['workers', 'servers']), log);
  }

  /** The workers agents spawned, then the CLIs working for runs right now (strategy steps have no named worker). */
  protected childrenOf(entry: FolderEntry): TandemNode[] {
    const key = entry.folder.key;
    const active: TandemNode[] = entry.server.services.orchestrator
      .activeSteps()
      .filter(({ step }) => step.workerId === null)
      .map((active) => ({ type: 'active', folder: key, runId: active.runId, active }));
    return [...this.namedWorkers(entry), ...active];
  }

  private namedWorkers(entry: FolderEntry): TandemNode[] {
    const workers = entry.server.services.workers.list({ includeStopped: true });
    // Live workers first, newest first within each group.
    workers.sort(
      (a, b) =>
        Number(a.state === 'stopped') - Number(b.state === 'stopped') ||
        b.createdAt.localeCompare(a.createdAt),
    );
    return workers.map((worker) => ({
      type: 'worker',
      folder: entry.folder.key,
      workerId: worker.id,
      worker,
    }));
  }

  getTreeItem(node: TandemNode): vscode.TreeItem {
    if (node.type === 'folder') return this.folderItem(node);
    if (node.type === 'active') return activeItem(node);
    if (node.type !== 'worker') return new vscode.TreeItem(node.type === 'message' ? node.text : '');
    const { worker } = node;
    const item = new vscode.TreeItem(worker.id, vscode.TreeItemCollapsibleState.None);
    item.id = `worker:${node.folder}:${worker.id}`;
    item.iconPath =
      worker.state === 'busy'
        ? icon('sync~spin', 'charts.blue')
        : worker.state === 'idle'
          ? icon('circle-large-outline', 'testing.iconPassed')
          : icon('circle-slash', 'disabledForeground');
    item.description = `${worker.model} · ${worker.state} · ${worker.stepsRun} step(s) · ${worker.owner}`;
    item.tooltip = `${worker.kind} ${worker.cliVersion ?? ''} (${worker.cliPath ?? 'on PATH'})\nspawned by ${worker.owner} ${formatAge(worker.createdAt)}`;
    item.contextValue = worker.state === 'stopped' ? 'worker.stopped' : 'worker.live';
    return item;
  }
}

function activeItem(node: Extract<TandemNode, { type: 'active' }>): vscode.TreeItem {
  const { step, owner } = node.active;
  const item = new vscode.TreeItem(`${step.workerKind} · ${step.name}`, vscode.TreeItemCollapsibleState.None);
  item.id = `active:${node.folder}:${node.runId}:${step.index}`;
  item.iconPath = icon('sync~spin', 'charts.blue');
  item.description = `${step.model} · ${step.role} in ${node.runId} · ${owner}`;
  item.tooltip = `${step.workerKind} works as ${step.role} for run ${node.runId} (asked by ${owner}), since ${formatAge(step.startedAt)}`;
  item.contextValue = 'worker.run';
  item.command = {
    command: SHOW_RUN_SUMMARY,
    title: 'Show Run Summary',
    arguments: [{ folder: node.folder, runId: node.runId }],
  };
  return item;
}

export interface Trees extends vscode.Disposable {
  runs: RunsTree;
  workers: WorkersTree;
  /** The items the Runs view shows at its top level, as labels (host tests). */
  runLabels(): Promise<string[]>;
  workerLabels(): Promise<string[]>;
}

export function registerTrees(hub: Hub, log: (line: string) => void): Trees {
  const runs = new RunsTree(hub, log);
  const workers = new WorkersTree(hub, log);
  const runsView = vscode.window.createTreeView(RUNS_VIEW, { treeDataProvider: runs, showCollapseAll: true });
  const workersView = vscode.window.createTreeView(WORKERS_VIEW, { treeDataProvider: workers });
  runs.setVisible(runsView.visible);
  const visibility = runsView.onDidChangeVisibility((event) => runs.setVisible(event.visible));
  const labels = async (tree: LiveTree): Promise<string[]> => {
    const out: string[] = [];
    const walk = async (nodes: TandemNode[]): Promise<void> => {
      for (const node of nodes) {
        if (node.type === 'folder') await walk(await tree.getChildren(node));
        else {
          const label = tree.getTreeItem(node).label;
          out.push(typeof label === 'string' ? label : (label?.label ?? ''));
        }
      }
    };
    await walk(await tree.getChildren());
    return out;
  };
  return {
    runs,
    workers,
    runLabels: () => labels(runs),
    workerLabels: () => labels(workers),
    dispose: () => {
      visibility.dispose();
      runsView.dispose();
      workersView.dispose();
      runs.dispose();
      workers.dispose();
    },
  };
}
