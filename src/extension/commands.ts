// The palette's commands that start and stop work: run a strategy, dispatch a task, spawn and stop workers,
// cancel a run, probe the CLIs, and the run actions of the Runs tree (open the change, reveal the run folder).
// Each one acts through the folder server's tools as the editor user, so the trust check, the panic switch and
// the input checks are the ones an agent's call meets, and every action is logged the same way.
// Every command takes an optional argument object that skips its prompts (tests, tree items, the dashboard).
import path from 'node:path';
import * as vscode from 'vscode';
import type { RunRecord } from '../orchestrator/model';
import { STRATEGIES, isFinished, runWhat } from '../orchestrator/model';
import type { ProbeResult, WorkerKind } from '../workers/contract';
import type { WorkerInfo } from '../workers/registry';
import { asObject, guarded, replyOf } from './command-util';
import { builtinPlaybook } from '../orchestrator/playbook/library';
import { OPEN_DASHBOARD_COMMAND } from './dashboard';
import type { FolderArgs, FolderEntry, Hub } from './hub';

export const RUN_STRATEGY_COMMAND = 'tandem.runStrategy';
export const DISPATCH_TASK_COMMAND = 'tandem.dispatchTask';
export const SPAWN_WORKER_COMMAND = 'tandem.spawnWorker';
export const STOP_WORKER_COMMAND = 'tandem.stopWorker';
export const CANCEL_RUN_COMMAND = 'tandem.cancelRun';
export const PROBE_CLIS_COMMAND = 'tandem.probeClis';
export const OPEN_RUN_CHANGE_COMMAND = 'tandem.openRunChange';
export const REVEAL_RUN_FOLDER_COMMAND = 'tandem.revealRunFolder';
export const REFRESH_COMMAND = 'tandem.refresh';

interface RunStarted {
  run: { id: string; status: string };
}

interface StrategyArgs extends FolderArgs {
  strategy?: string;
  prompt?: string;
  writer?: WorkerKind;
}
interface DispatchArgs extends FolderArgs {
  workerId?: string;
  /** Spawn a new worker of this kind for the task instead of naming one. */
  kind?: WorkerKind;
  prompt?: string;
}
interface SpawnArgs extends FolderArgs {
  kind?: WorkerKind;
}
interface WorkerArgs extends FolderArgs {
  workerId?: string;
}
interface RunArgs extends FolderArgs {
  runId?: string;
}
interface ProbeArgs extends FolderArgs {
  quiet?: boolean;
}

export interface CommandDeps {
  hub: Hub;
  log: (line: string) => void;
}

/** Tree items pass themselves as the argument: they carry folder and id the same way. */
function runArgs(raw: unknown): RunArgs {
  return asObject<RunArgs>(raw);
}

function isWorkerKind(value: unknown): value is WorkerKind {
  return value === 'codex' || value === 'gemini';
}

function ask(options: vscode.InputBoxOptions): Thenable<string | undefined> {
  return vscode.window.showInputBox({ ignoreFocusOut: true, ...options });
}

function nonEmpty(value: string): string | undefined {
  return value.trim() === '' ? 'Describe the task: the prompt cannot be empty.' : undefined;
}

export function registerCommands(deps: CommandDeps): vscode.Disposable[] {
  const { hub, log } = deps;
  const guard = <T>(name: string, run: (args?: unknown) => Promise<T>) => guarded(name, log, run);

  const announce = (entry: FolderEntry, reply: RunStarted, what: string): void => {
    log(`${what} started by the editor user: ${reply.run.id} in ${entry.folder.name}`);
    void vscode.window
      .showInformationMessage(`Tandem: ${what} started (${reply.run.id}).`, 'Open Dashboard')
      .then((choice) => {
        if (choice) void vscode.commands.executeCommand(OPEN_DASHBOARD_COMMAND);
      });
  };

  const runStrategy = async (raw?: unknown): Promise<string | undefined> => {
    const args = asObject<StrategyArgs>(raw);
    const entry = await hub.pickServer(args);
    if (!entry) return undefined;
    let strategy = args.strategy;
    if (strategy === undefined) {
      const picked = await vscode.window.showQuickPick(
        STRATEGIES.map((name) => ({
          label: name,
          detail: builtinPlaybook(name)?.playbook.description ?? '',
        })),
        { title: 'Tandem: Run Strategy', placeHolder: 'Strategy', ignoreFocusOut: true },
      );
      if (!picked) return undefined;
      strategy = picked.label;
    }
    const prompt =
      args.prompt ??
      (await ask({
        title: `Tandem: ${strategy}`,
        prompt: 'The task for the workers (they work on this workspace folder).',
        placeHolder: 'e.g. Fix the failing test in src/greet.js',
        validateInput: nonEmpty,
      }));
    if (prompt === undefined) return undefined;
    const reply = await callAsHuman<RunStarted>(entry, 'strategy_run', {
      strategy,
      prompt,
      ...(args.writer ? { writer: args.writer } : {}),
      waitSeconds: 0,
    });
    announce(entry, reply, strategy);
    return reply.run.id;
  };

  const liveWorkers = (entry: FolderEntry): WorkerInfo[] => entry.server.services.workers.list();

  const spawnWorker = async (entry: FolderEntry, kind: WorkerKind): Promise<WorkerInfo> => {
    const reply = await callAsHuman<{ worker: WorkerInfo }>(entry, 'worker_spawn', { kind });
    log(`worker ${reply.worker.id} spawned by the editor user in ${entry.folder.name}`);
    return reply.worker;
  };

  const pickKind = async (title: string): Promise<WorkerKind | undefined> => {
    const picked = await vscode.window.showQuickPick(
      [
        { label: 'codex', cli: 'codex' as const, detail: 'OpenAI codex CLI' },
        { label: 'gemini', cli: 'gemini' as const, detail: 'Google gemini CLI' },
      ],
      { title, placeHolder: 'Which CLI', ignoreFocusOut: true },
    );
    return picked?.cli;
  };

  const spawnCommand = async (raw?: unknown): Promise<string | undefined> => {
    const args = asObject<SpawnArgs>(raw);
    const entry = await hub.pickServer(args);
    if (!entry) return undefined;
    const kind = isWorkerKind(args.kind) ? args.kind : await pickKind('Tandem: Spawn Worker');
    if (!kind) return undefined;
    const worker = await spawnWorker(entry, kind);
    if (args.kind === undefined) {
      void vscode.window.showInformationMessage(`Tandem: ${worker.kind} worker ${worker.id} is ready.`);
    }
    return worker.id;
  };

  const dispatchTask = async (raw?: unknown): Promise<string | undefined> => {
    const args = asObject<DispatchArgs>(raw);
    const entry = await hub.pickServer(args);
    if (!entry) return undefined;
    let workerId = args.workerId;
    let spawnKind: WorkerKind | undefined = isWorkerKind(args.kind) ? args.kind : undefined;
    if (workerId === undefined && spawnKind === undefined) {
      const idle = liveWorkers(entry);
      const picked = await vscode.window.showQuickPick(
        [
          ...idle.map((worker) => ({
            label: worker.id,
            description: `${worker.model} · ${worker.state}`,
            detail: `owner ${worker.owner}, ${worker.stepsRun} step(s)`,
            workerId: worker.id as string | undefined,
            cli: undefined as WorkerKind | undefined,
          })),
          ...(['codex', 'gemini'] as const).map((cli) => ({
            label: `$(add) New ${cli} worker`,
            description: 'spawned for this task',
            workerId: undefined,
            cli,
          })),
        ],
        { title: 'Tandem: Dispatch Task', placeHolder: 'Worker', ignoreFocusOut: true },
      );
      if (!picked) return undefined;
      workerId = picked.workerId;
      spawnKind = picked.cli;
    }
    const prompt =
      args.prompt ??
      (await ask({
        title: 'Tandem: Dispatch Task',
        prompt: `The task for ${workerId ?? `a new ${spawnKind ?? ''} worker`}.`,
        validateInput: nonEmpty,
      }));
    if (prompt === undefined) return undefined;
    if (workerId === undefined) {
      if (!spawnKind) return undefined;
      workerId = (await spawnWorker(entry, spawnKind)).id;
    }
    const reply = await callAsHuman<RunStarted>(entry, 'task_dispatch', { workerId, prompt, waitSeconds: 0 });
    announce(entry, reply, `task on ${workerId}`);
    return reply.run.id;
  };

  const stopWorker = async (raw?: unknown): Promise<string | undefined> => {
    const args = asObject<WorkerArgs>(raw);
    const entry = await hub.pickServer(args);
    if (!entry) return undefined;
    let workerId = args.workerId;
    if (workerId === undefined) {
      const live = liveWorkers(entry);
      if (live.length === 0) {
        void vscode.window.showInformationMessage(`Tandem: no worker runs in ${entry.folder.name}.`);
        return undefined;
      }
      const picked = await vscode.window.showQuickPick(
        live.map((worker) => ({
          label: worker.id,
          description: `${worker.state} · owner ${worker.owner}`,
          workerId: worker.id,
        })),
        { title: 'Tandem: Stop Worker', placeHolder: 'Worker to stop', ignoreFocusOut: true },
      );
      if (!picked) return undefined;
      workerId = picked.workerId;
    }
    const reply = await callAsHuman<{ worker: WorkerInfo }>(entry, 'worker_stop', { workerId });
    log(`worker ${workerId} stopped by the editor user`);
    return reply.worker.state;
  };

  /** Runs still queued or running in every folder whose server runs. */
  const activeRuns = (): { entry: FolderEntry; run: RunRecord }[] =>
    hub.running().flatMap((entry) =>
      entry.server.services.store
        .list({ limit: 200 })
        .filter((run) => !isFinished(run.status))
        .map((run) => ({ entry, run })),
    );

  const cancelRun = async (raw?: unknown): Promise<string | undefined> => {
    const args = runArgs(raw);
    let target: { entry: FolderEntry; runId: string } | undefined;
    if (args.runId !== undefined) {
      const entry = await hub.pickServer(args);
      if (!entry) return undefined;
      target = { entry, runId: args.runId };
    } else {
      await hub.openAll();
      const active = activeRuns();
      if (active.length === 0) {
        void vscode.window.showInformationMessage('Tandem: no run is in progress.');
        return undefined;
      }
      const picked = await vscode.window.showQuickPick(
        active.map(({ entry, run }) => ({
          label: run.id,
          description: `${runWhat(run)} · ${run.status} · ${run.owner}`,
          detail: run.prompt.slice(0, 120),
          target: { entry, runId: run.id },
        })),
        { title: 'Tandem: Cancel Run', placeHolder: 'Run to cancel', ignoreFocusOut: true },
      );
      if (!picked) return undefined;
      target = picked.target;
    }
    const reply = await callAsHuman<RunStarted>(target.entry, 'run_cancel', { runId: target.runId });
    log(`run ${target.runId} cancelled by the editor user: ${reply.run.status}`);
    return reply.run.status;
  };

  const probeClis = async (raw?: unknown): Promise<ProbeResult[] | undefined> => {
    const args = asObject<ProbeArgs>(raw);
    const entry = await hub.pickServer(args);
    if (!entry) return undefined;
    const { clis } = await callAsHuman<{ clis: ProbeResult[] }>(entry, 'probe', {});
    const lines = clis.map((cli) =>
      cli.installed
        ? `${cli.kind} ${cli.version ?? '(unknown version)'}${cli.versionInTestedRange ? '' : ' (untested version)'}, auth ${cli.auth.mode}`
        : `${cli.kind} not installed: ${cli.installHint}`,
    );
    for (const line of lines) log(`probe: ${line}`);
    if (!args.quiet) {
      const missing = clis.some((cli) => !cli.installed);
      const show = missing ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
      void show(`Tandem: ${lines.join(' · ')}`);
    }
    return clis;
  };

  /** The run a tree item or argument names, in its folder; undefined (with a message) when it is unknown. */
  const namedRun = async (raw: unknown): Promise<{ entry: FolderEntry; run: RunRecord } | undefined> => {
    const args = runArgs(raw);
    if (args.runId === undefined) {
      void vscode.window.showErrorMessage('Tandem: choose a run in the Runs view first.');
      return undefined;
    }
    const entry = await hub.pickServer(args);
    if (!entry) return undefined;
    const { store } = entry.server.services;
    await store.refresh();
    if (!store.has(args.runId)) {
      void vscode.window.showErrorMessage(`Tandem: no run ${args.runId} in ${entry.folder.name}.`);
      return undefined;
    }
    return { entry, run: store.get(args.runId) };
  };

  const openRunChange = async (raw?: unknown): Promise<string[] | undefined> => {
    const found = await namedRun(raw);
    if (!found) return undefined;
    const dir = found.entry.server.services.store.runDir(found.run.id);
    const entries = await vscode.workspace.fs.readDirectory(vscode.Uri.file(dir));
    const patches = entries
      .map(([name]) => name)
      .filter((name) => name.startsWith('changes-') && name.endsWith('.patch'))
      .sort();
    if (patches.length === 0) {
      void vscode.window.showInformationMessage(`Tandem: run ${found.run.id} changed no file.`);
      return [];
    }
    for (const name of patches) {
      const document = await vscode.workspace.openTextDocument(vscode.Uri.file(path.join(dir, name)));
      await vscode.languages.setTextDocumentLanguage(document, 'diff');
      await vscode.window.showTextDocument(document, { preview: patches.length === 1 });
    }
    return patches;
  };

  const revealRunFolder = async (raw?: unknown): Promise<string | undefined> => {
    const found = await namedRun(raw);
    if (!found) return undefined;
    const dir = found.entry.server.services.store.runDir(found.run.id);
    await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(dir));
    return dir;
  };

  const refresh = async (): Promise<void> => {
    await Promise.all(hub.running().map((entry) => entry.server.services.store.refresh()));
    hub.serversChanged();
  };

  return [
    vscode.commands.registerCommand(RUN_STRATEGY_COMMAND, guard('run strategy', runStrategy)),
    vscode.commands.registerCommand(DISPATCH_TASK_COMMAND, guard('dispatch task', dispatchTask)),
    vscode.commands.registerCommand(SPAWN_WORKER_COMMAND, guard('spawn worker', spawnCommand)),
    vscode.commands.registerCommand(STOP_WORKER_COMMAND, guard('stop worker', stopWorker)),
    vscode.commands.registerCommand(CANCEL_RUN_COMMAND, guard('cancel run', cancelRun)),
    vscode.commands.registerCommand(PROBE_CLIS_COMMAND, guard('probe CLIs', probeClis)),
    vscode.commands.registerCommand(OPEN_RUN_CHANGE_COMMAND, guard('open run change', openRunChange)),
    vscode.commands.registerCommand(REVEAL_RUN_FOLDER_COMMAND, guard('reveal run folder', revealRunFolder)),
    vscode.commands.registerCommand(REFRESH_COMMAND, guard('refresh', refresh)),
  ];
}

async function callAsHuman<T>(entry: FolderEntry, tool: string, input: Record<string, unknown>): Promise<T> {
  return replyOf<T>(await entry.server.callAsHuman(tool, input));
}
