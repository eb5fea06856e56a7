// The sidebar and the palette's work commands in a real extension host: a strategy run from the command shows
// up in the Runs tree with its steps, a worker spawned and used from the palette shows up in the Workers tree
// and is stopped from it, a hanging run is cancelled with its process tree gone, a run's change opens as a diff,
// the CLIs are probed, and an untrusted folder's server keeps history readable but refuses to spawn.
// Runs after status-commands.test.ts (file-name order), with panic released.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { TandemExtensionApi } from '../../../src/extension/extension';
import { startFolderServer } from '../../../src/extension/folder-server';
import type { TandemNode } from '../../../src/extension/trees';
import type { ProbeResult } from '../../../src/workers/contract';
import { EXTENSION_ID, processGroupAlive, until, workspacePath } from './helpers';

describe('Tandem sidebar and work commands', function () {
  let api: TandemExtensionApi;

  before(async function () {
    this.timeout(60_000);
    const extension = vscode.extensions.getExtension<TandemExtensionApi>(EXTENSION_ID);
    assert.ok(extension);
    api = await extension.activate();
    const services = await api.services();
    if (services.panic.engaged) await services.panic.release('human');
  });

  it('registers the palette commands and the two views', async () => {
    const commands = await vscode.commands.getCommands(true);
    for (const name of [
      'tandem.openDashboard',
      'tandem.runStrategy',
      'tandem.dispatchTask',
      'tandem.spawnWorker',
      'tandem.stopWorker',
      'tandem.cancelRun',
      'tandem.probeClis',
      'tandem.openRunChange',
      'tandem.revealRunFolder',
      'tandem.refresh',
      'tandem.restartServers',
    ]) {
      assert.ok(commands.includes(name), name);
    }
    const manifest = vscode.extensions.getExtension(EXTENSION_ID)?.packageJSON as {
      contributes: { views: Record<string, { id: string }[]> };
    };
    assert.deepEqual(
      manifest.contributes.views.tandem?.map((view) => view.id),
      ['tandem.runs', 'tandem.workers'],
    );
  });

  it('runStrategy starts a run as "human" that the Runs tree lists first, with its steps as children', async function () {
    this.timeout(120_000);
    const runId = await vscode.commands.executeCommand<string>('tandem.runStrategy', {
      strategy: 'single_worker',
      prompt: '[[scenario:write path=from-palette.txt]] Add from-palette.txt.',
    });
    assert.match(runId ?? '', /^run-/, 'the command returns the run id');
    const services = await api.services();
    const run = await services.orchestrator.finished(runId as string);
    assert.equal(run.status, 'succeeded', run.outcome ?? '');
    assert.equal(run.owner, 'human');
    assert.ok(existsSync(path.join(workspacePath(), 'from-palette.txt')), 'the change was applied');

    assert.ok(
      await until(
        async () => (await api.trees().runLabels())[0] === 'single_worker: Add from-palette.txt.',
        5_000,
      ),
      `runs tree: ${(await api.trees().runLabels()).join(' | ')}`,
    );
    const tree = api.trees().runs;
    const [first] = await tree.getChildren();
    assert.ok(first && first.type === 'run' && first.runId === runId);
    const item = tree.getTreeItem(first);
    assert.equal(item.contextValue, 'run.finished');
    assert.match(String(item.description), /^succeeded · /);
    assert.equal((item.iconPath as vscode.ThemeIcon).id, 'pass');
    const steps = await tree.getChildren(first);
    assert.equal(steps.length, 1);
    const step = steps[0] as TandemNode;
    assert.equal(tree.getTreeItem(step).label, '1. write');
    assert.match(String(tree.getTreeItem(step).description), /^codex \(writer\) · succeeded/);
  });

  it('openRunChange opens the change of that run as a diff', async function () {
    this.timeout(30_000);
    const services = await api.services();
    const [run] = services.store.list({ owner: 'human', status: 'succeeded' });
    assert.ok(run);
    const patches = await vscode.commands.executeCommand<string[]>('tandem.openRunChange', { runId: run.id });
    assert.equal(patches?.length, 1, `patches: ${JSON.stringify(patches)}`);
    const editor = vscode.window.activeTextEditor;
    assert.ok(editor, 'the patch is open');
    assert.equal(editor.document.languageId, 'diff');
    assert.match(editor.document.getText(), /from-palette\.txt/);
  });

  it('spawnWorker and dispatchTask run a task on a worker the Workers tree lists; stopWorker retires it', async function () {
    this.timeout(120_000);
    const workerId = await vscode.commands.executeCommand<string>('tandem.spawnWorker', { kind: 'codex' });
    assert.match(workerId ?? '', /^codex-/);
    assert.ok(
      await until(async () => (await api.trees().workerLabels()).includes(workerId as string), 5_000),
      'the Workers tree lists the new worker',
    );
    const runId = await vscode.commands.executeCommand<string>('tandem.dispatchTask', {
      workerId,
      prompt: '[[scenario:reply text=hello-from-the-palette]] Say hello.',
    });
    const services = await api.services();
    const run = await services.orchestrator.finished(runId as string);
    assert.equal(run.status, 'succeeded', run.outcome ?? '');
    assert.equal(services.workers.get(workerId as string).stepsRun, 1);

    const state = await vscode.commands.executeCommand<string>('tandem.stopWorker', { workerId });
    assert.equal(state, 'stopped');
    const tree = api.trees().workers;
    const node = (await tree.getChildren()).find(
      (candidate) => candidate.type === 'worker' && candidate.workerId === workerId,
    );
    assert.ok(node);
    assert.equal(tree.getTreeItem(node).contextValue, 'worker.stopped');
  });

  it('cancelRun ends a hanging run: cancelled, its worker process group gone, the status bar idle again', async function () {
    this.timeout(120_000);
    const services = await api.services();
    const runId = await vscode.commands.executeCommand<string>('tandem.runStrategy', {
      strategy: 'single_worker',
      prompt: '[[scenario:hang]] Wait until cancelled.',
    });
    assert.ok(runId);
    // The step runs once its pid is recorded; the worker leads its own process group.
    let pid: number | undefined;
    assert.ok(
      await until(async () => {
        const events = await services.store.readEvents(runId, 0);
        pid = events
          .map((event) => event.data?.pid)
          .find((value): value is number => typeof value === 'number');
        return pid !== undefined && services.orchestrator.runningCount > 0;
      }, 30_000),
      'the run started its step',
    );
    assert.match(api.getStatusText(), /1 running/);
    const labels = await api.trees().runLabels();
    assert.equal(labels[0], 'single_worker: Wait until cancelled.');
    // A strategy's step has no named worker: the Workers view lists the CLI working for the run.
    assert.ok(
      await until(async () => (await api.trees().workerLabels()).includes('codex · write'), 5_000),
      `workers tree: ${(await api.trees().workerLabels()).join(' | ')}`,
    );

    const status = await vscode.commands.executeCommand<string>('tandem.cancelRun', { runId });
    const finished = await services.orchestrator.finished(runId);
    assert.equal(finished.status, 'cancelled', `cancel answered ${status}`);
    assert.ok(pid !== undefined);
    assert.ok(await until(() => !processGroupAlive(pid as number), 5_000), `worker group ${pid} is gone`);
    assert.equal(services.orchestrator.runningCount, 0);
    // Told after the run left the running set: the status bar is idle at once, not a poll later.
    assert.equal(api.getStatusText(), '$(check) Tandem');
    assert.ok(!(await api.trees().workerLabels()).includes('codex · write'));
  });

  it('probeClis reports both pinned CLIs as installed', async function () {
    this.timeout(60_000);
    const results = await vscode.commands.executeCommand<ProbeResult[]>('tandem.probeClis', { quiet: true });
    assert.deepEqual(
      results?.map((result) => [result.kind, result.installed]),
      [
        ['codex', true],
        ['gemini', true],
      ],
    );
  });

  it('an untrusted folder keeps its history readable and refuses to spawn anything', async function () {
    this.timeout(60_000);
    const scratch = path.join(path.dirname(workspacePath()), 'untrusted');
    const root = mkdtempSync(`${scratch}-`);
    writeFileSync(path.join(root, 'README.md'), 'untrusted\n');
    const server = await startFolderServer({
      workspaceRoot: root,
      trusted: false,
      settings: {
        cliPaths: {},
        concurrency: 1,
        offlineModel: true,
        models: {},
        limits: {},
        extraEnvNames: [],
        mcpSessions: {},
        sandbox: 'auto',
      },
      log: () => undefined,
    });
    try {
      for (const [tool, input] of [
        ['worker_spawn', { kind: 'codex' }],
        ['strategy_run', { strategy: 'single_worker', prompt: 'write a file' }],
      ] as const) {
        const result = await server.callAsHuman(tool, input);
        assert.equal(result.isError, true, tool);
        assert.equal(result._meta?.['tandem/errorCode'], 'UNTRUSTED_WORKSPACE', tool);
      }
      const list = await server.callAsHuman('run_list', {});
      assert.equal(list.isError, undefined);
      assert.equal(server.services.workers.list().length, 0);
      assert.equal(server.services.store.size, 0);
      assert.ok(!existsSync(path.join(root, 'write-test.txt')));
      assert.equal(readFileSync(path.join(root, 'README.md'), 'utf8'), 'untrusted\n');
    } finally {
      await server.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
