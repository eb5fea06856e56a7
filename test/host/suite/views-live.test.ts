// The sidebar follows the work live: the Runs and Workers trees tell the workbench to redraw (their
// onDidChangeTreeData fires) when a run starts and ends and when a worker is spawned and stopped, the Workers
// view asks for the new worker's item, Tandem: Refresh re-reads the history another process wrote, and Reveal
// Run Folder selects the run's folder in the Explorer. Runs after views-dashboard.test.ts (file-name order).
import assert from 'node:assert/strict';
import { appendFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { TandemExtensionApi } from '../../../src/extension/extension';
import type { TandemNode } from '../../../src/extension/trees';
import { EXTENSION_ID, TreeChanges, stepPids, until, workspacePath } from './helpers';

/** The item the tree gives the workbench for the run with this id, if the tree lists it. */
async function runItem(api: TandemExtensionApi, runId: string): Promise<vscode.TreeItem | undefined> {
  const tree = api.trees().runs;
  const node = (await tree.getChildren()).find(
    (candidate) => candidate.type === 'run' && candidate.runId === runId,
  );
  return node ? tree.getTreeItem(node) : undefined;
}

describe('Tandem views follow the work live', function () {
  let api: TandemExtensionApi;
  let runs: TreeChanges;
  let workers: TreeChanges;

  before(async function () {
    this.timeout(60_000);
    const extension = vscode.extensions.getExtension<TandemExtensionApi>(EXTENSION_ID);
    assert.ok(extension);
    api = await extension.activate();
    const services = await api.services();
    if (services.panic.engaged) await services.panic.release('human');
    runs = new TreeChanges(api.trees().runs);
    workers = new TreeChanges(api.trees().workers);
  });

  after(async () => {
    runs.dispose();
    workers.dispose();
    await vscode.commands.executeCommand('workbench.view.explorer');
  });

  it('the Runs and Workers trees fire their change events when a run starts and when it ends', async function () {
    this.timeout(90_000);
    // With the Tandem views hidden the Runs tree's timer for active runs is off: every event below comes from
    // the run itself, not from a periodic redraw.
    await vscode.commands.executeCommand('workbench.view.explorer');
    assert.ok(await runs.settled(), 'the Runs tree went quiet');
    assert.ok(await workers.settled(), 'the Workers tree went quiet');
    const services = await api.services();

    let runsMark = runs.count;
    let workersMark = workers.count;
    const runId = await vscode.commands.executeCommand<string>('tandem.runStrategy', {
      strategy: 'single_worker',
      prompt: '[[scenario:hang]] Wait for the live-view test.',
    });
    assert.ok(runId, 'the run started');
    assert.ok(await runs.firedSince(runsMark), 'the Runs tree fired when the run was created');
    assert.ok(
      await until(async () => (await runItem(api, runId))?.contextValue === 'run.active', 5_000),
      'the Runs tree lists the new run as active',
    );
    assert.ok(
      await until(async () => (await stepPids(services.store, runId)).length === 1, 30_000),
      'the step started its CLI',
    );
    assert.ok(await workers.firedSince(workersMark), 'the Workers tree fired when the step started');
    assert.ok(
      await until(async () => (await api.trees().workerLabels()).includes('codex · write'), 5_000),
      `workers tree: ${(await api.trees().workerLabels()).join(' | ')}`,
    );

    assert.ok(await runs.settled(), 'the Runs tree went quiet while the step hangs');
    assert.ok(await workers.settled(), 'the Workers tree went quiet while the step hangs');
    runsMark = runs.count;
    workersMark = workers.count;
    assert.equal(await vscode.commands.executeCommand<string>('tandem.cancelRun', { runId }), 'cancelled');
    assert.equal((await services.orchestrator.finished(runId)).status, 'cancelled');
    assert.ok(await runs.firedSince(runsMark), 'the Runs tree fired when the run ended');
    assert.ok(await workers.firedSince(workersMark), 'the Workers tree fired when the step ended');
    const item = await runItem(api, runId);
    assert.equal(item?.contextValue, 'run.finished');
    assert.match(String(item?.description), /^cancelled · /);
    assert.ok(!(await api.trees().workerLabels()).includes('codex · write'), 'the CLI left the Workers tree');
  });

  it('the Workers view shows a spawned worker, and shows it stopped once it is stopped', async function () {
    this.timeout(60_000);
    const tree = api.trees().workers;
    // The items the workbench asks for while it draws the view (the test itself asks nothing while it watches).
    const drawn: { workerId: string; contextValue: string | undefined }[] = [];
    const getTreeItem = tree.getTreeItem.bind(tree);
    tree.getTreeItem = (node: TandemNode): vscode.TreeItem => {
      const item = getTreeItem(node);
      if (node.type === 'worker') drawn.push({ workerId: node.workerId, contextValue: item.contextValue });
      return item;
    };
    try {
      await vscode.commands.executeCommand('tandem.workers.focus');
      assert.ok(await workers.settled(), 'the Workers tree went quiet');
      let mark = workers.count;
      const workerId = await vscode.commands.executeCommand<string>('tandem.spawnWorker', { kind: 'gemini' });
      assert.match(workerId ?? '', /^gemini-/);
      assert.ok(await workers.firedSince(mark), 'the Workers tree fired when the worker was spawned');
      assert.ok(
        await until(
          () => drawn.some((item) => item.workerId === workerId && item.contextValue === 'worker.live'),
          5_000,
        ),
        `the Workers view drew ${JSON.stringify(drawn.slice(-5))}`,
      );

      mark = workers.count;
      assert.equal(
        await vscode.commands.executeCommand<string>('tandem.stopWorker', { workerId }),
        'stopped',
      );
      assert.ok(await workers.firedSince(mark), 'the Workers tree fired when the worker was stopped');
      assert.ok(
        await until(
          () => drawn.some((item) => item.workerId === workerId && item.contextValue === 'worker.stopped'),
          5_000,
        ),
        `the Workers view drew ${JSON.stringify(drawn.slice(-5))}`,
      );
    } finally {
      delete (tree as Partial<typeof tree>).getTreeItem;
    }
    assert.equal(typeof tree.getTreeItem, 'function', "the provider's own getTreeItem is back");
  });

  it('tandem.refresh re-reads a run another process added and tells both trees to redraw', async function () {
    this.timeout(30_000);
    const services = await api.services();
    assert.ok(await runs.settled(), 'the Runs tree went quiet');
    assert.ok(await workers.settled(), 'the Workers tree went quiet');
    // A finished run as another process (the CLI) writes it: one line appended to the shared index.
    const id = 'run-20260102T000000Z-0a0e01';
    const now = new Date().toISOString();
    appendFileSync(
      services.store.indexPath,
      `${JSON.stringify({
        id,
        kind: 'strategy',
        strategy: 'single_worker',
        playbook: null,
        owner: 'other-process',
        prompt: 'Written by another process.',
        status: 'succeeded',
        createdAt: now,
        startedAt: now,
        endedAt: now,
        workers: ['codex'],
        stepCount: 1,
        outcome: 'Done elsewhere.',
        decision: null,
        applied: false,
        host: { pid: 4_194_001, startTime: '1' },
      })}\n`,
    );
    const runsMark = runs.count;
    const workersMark = workers.count;
    await vscode.commands.executeCommand('tandem.refresh');
    assert.equal(services.store.has(id), true, 'the store read the new line when the command returned');
    assert.ok(await runs.firedSince(runsMark, 1_000), 'the Runs tree fired');
    assert.ok(await workers.firedSince(workersMark, 1_000), 'the Workers tree fired');
    assert.ok(
      (await api.trees().runLabels()).includes('single_worker: Written by another process.'),
      `runs tree: ${(await api.trees().runLabels()).join(' | ')}`,
    );
  });

  it('tandem.revealRunFolder selects the run folder in the Explorer and returns its path', async function () {
    this.timeout(30_000);
    const services = await api.services();
    const [run] = services.store.list({ owner: 'human', status: 'succeeded' });
    assert.ok(run, 'an earlier file ran a strategy as "human"');
    const dir = await vscode.commands.executeCommand<string>('tandem.revealRunFolder', { runId: run.id });
    assert.equal(dir, path.join(workspacePath(), '.tandem', 'runs', run.id));
    assert.ok(statSync(dir).isDirectory());
    // What the Explorer has selected and focused now: "Copy Path" without an argument copies exactly that.
    await vscode.env.clipboard.writeText('');
    await vscode.commands.executeCommand('copyFilePath');
    assert.equal(await vscode.env.clipboard.readText(), dir, 'the Explorer selected the run folder');

    const unknown = await vscode.commands.executeCommand('tandem.revealRunFolder', {
      runId: 'run-20000101T000000Z-000000',
    });
    assert.equal(unknown, undefined, 'an unknown run reveals nothing');
  });
});
