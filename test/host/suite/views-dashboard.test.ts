// The dashboard webview in a real extension host: Tandem: Open Dashboard opens one panel whose script loads
// under its CSP and says ready, the state it is sent lists the runs and workers the earlier files created, a
// selected run shows its steps and follows a live run's events to the end, its buttons act through the editor
// commands, and a malformed message is answered, never thrown. Runs after the command files (file-name order):
// extension.test.ts must be the first to activate Tandem, and the runs the earlier files started are listed here.
import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { Dashboard } from '../../../src/extension/dashboard';
import { parseToWebview, type FolderView } from '../../../src/extension/dashboard-protocol';
import type { TandemExtensionApi } from '../../../src/extension/extension';
import { EXTENSION_ID, until } from './helpers';

const AGENT_ID = 'host-test-dashboard';

/** The extension's API with the dashboard accessor that extension.ts exposes. */
type DashboardApi = TandemExtensionApi & { dashboard(): Dashboard };

function workspaceFolder(): vscode.WorkspaceFolder {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the runner opens one workspace folder');
  return folder;
}

/** Calls a Tandem tool as the language model would and returns its structured answer. */
async function invoke<T>(short: string, input: object): Promise<T> {
  const tool = vscode.lm.tools.find((candidate) => candidate.name === `mcp_tandem_${short}`);
  assert.ok(tool, `the editor lists Tandem's ${short} tool`);
  const cancel = new vscode.CancellationTokenSource();
  const timer = setTimeout(() => cancel.cancel(), 90_000);
  try {
    const result = await vscode.lm.invokeTool(
      tool.name,
      { input, toolInvocationToken: undefined },
      cancel.token,
    );
    const text = result.content
      .map((part) => (part instanceof vscode.LanguageModelTextPart ? part.value : ''))
      .join('');
    try {
      return JSON.parse(text) as T;
    } catch {
      assert.fail(`${short} answered with text: ${text}`);
    }
  } finally {
    clearTimeout(timer);
    cancel.dispose();
  }
}

function dashboardTabs(): vscode.Tab[] {
  return vscode.window.tabGroups.all
    .flatMap((group) => group.tabs)
    .filter(
      (tab) => tab.input instanceof vscode.TabInputWebview && tab.input.viewType.endsWith('tandem.dashboard'),
    );
}

describe('Tandem dashboard webview', function () {
  let api: DashboardApi;
  let dashboard: Dashboard;
  let folderKey: string;
  let workerId: string;

  /** The workspace folder in the dashboard's last state. */
  function folderView(): FolderView | undefined {
    return dashboard.lastState()?.folders.find((candidate) => candidate.key === folderKey);
  }

  before(async function () {
    this.timeout(60_000);
    const extension = vscode.extensions.getExtension<DashboardApi>(EXTENSION_ID);
    assert.ok(extension);
    api = await extension.activate();
    assert.equal(typeof api.dashboard, 'function', 'the extension API exposes dashboard()');
    dashboard = api.dashboard();
    folderKey = workspaceFolder().uri.toString();
    const services = await api.services();
    if (services.panic.engaged) await services.panic.release('human');
  });

  after(async () => {
    for (const tab of dashboardTabs()) await vscode.window.tabGroups.close(tab);
  });

  it('registers tandem.openDashboard', async () => {
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('tandem.openDashboard'));
  });

  it("opens one panel whose state lists the folder's runs and workers, as the run store and registry have them", async function () {
    this.timeout(120_000);
    const spawned = await invoke<{ worker: { id: string } }>('worker_spawn', {
      agentId: AGENT_ID,
      kind: 'codex',
    });
    workerId = spawned.worker.id;

    const returned = await vscode.commands.executeCommand('tandem.openDashboard');
    assert.equal(returned, undefined, 'the command returns nothing');
    assert.equal(dashboard.isOpen(), true);
    // The workbench adds the tab a moment after the panel exists.
    assert.ok(
      await until(() => dashboardTabs().length === 1, 10_000),
      `tabs: ${vscode.window.tabGroups.all
        .flatMap((group) => group.tabs)
        .map(
          (tab) => `${tab.label} (${tab.input instanceof vscode.TabInputWebview ? tab.input.viewType : '?'})`,
        )
        .join(', ')}`,
    );

    const state = dashboard.lastState();
    assert.ok(state, 'opening built a state');
    assert.deepEqual(
      parseToWebview(JSON.parse(JSON.stringify(state))),
      state,
      'the state passes the protocol',
    );
    const folder = folderView();
    assert.ok(folder, `the state lists the workspace folder: ${state.folders.map((f) => f.key).join(', ')}`);
    assert.equal(folder.name, workspaceFolder().name);
    assert.equal(folder.trusted, true);
    assert.equal(folder.panic.engaged, false);

    const services = await api.services();
    assert.deepEqual(
      folder.runs.map((run) => run.id),
      services.store.list({ limit: 200 }).map((run) => run.id),
      'every run of the store, newest first',
    );
    const hostRun = folder.runs.find((run) => run.owner === 'host-test');
    assert.ok(hostRun, 'the run extension.test.ts started');
    assert.equal(hostRun.status, 'succeeded');
    assert.equal(hostRun.strategy, 'single_worker');
    assert.equal(hostRun.applied, true);
    assert.match(hostRun.prompt, /host\.txt/);
    assert.ok(
      folder.runs.some((run) => run.owner === 'host-test-controls'),
      'the run status-commands.test.ts started',
    );

    assert.deepEqual(
      folder.workers.map((worker) => worker.id).sort(),
      services.workers
        .list({ includeStopped: true })
        .map((worker) => worker.id)
        .sort(),
    );
    const worker = folder.workers.find((candidate) => candidate.id === workerId);
    assert.deepEqual(worker, {
      id: workerId,
      kind: 'codex',
      model: worker?.model,
      owner: AGENT_ID,
      state: 'idle',
      stepsRun: 0,
    });
  });

  it('loads the webview script under its CSP, which says ready and is answered with the state', async function () {
    this.timeout(60_000);
    assert.ok(await until(() => dashboard.readyCount() >= 1, 45_000), 'the webview never said ready');
  });

  it('opening it again reveals the same panel', async () => {
    await vscode.commands.executeCommand('tandem.openDashboard');
    assert.equal(dashboardTabs().length, 1);
    assert.equal(dashboard.isOpen(), true);
  });

  it("a finished run's detail is its summary: steps with their command, the decision with its reason, changes, events", async () => {
    const hostRun = folderView()?.runs.find((run) => run.owner === 'host-test');
    assert.ok(hostRun);
    await dashboard.receive({ type: 'select', folderKey, runId: hostRun.id });
    const detail = dashboard.lastDetail();
    assert.ok(detail);
    assert.equal(detail.run.id, hostRun.id);
    assert.deepEqual(parseToWebview(JSON.parse(JSON.stringify(detail))), detail);
    assert.deepEqual(
      detail.steps.map((step) => [step.workerKind, step.role, step.status, step.exitCode]),
      [['codex', 'writer', 'succeeded', 0]],
    );
    assert.deepEqual(detail.steps[0]?.filesChanged, [{ path: 'host.txt', change: 'added' }]);

    // The same values as summary.json, which summary.md is rendered from.
    assert.equal(detail.source, 'summary');
    const services = await api.services();
    const summary = JSON.parse((await services.store.readRunFile(hostRun.id, 'summary.json')) ?? 'null') as {
      run: { decision: string | null; playbook: unknown };
      steps: { argv: string[] }[];
      decisions: { time: string; message: string }[];
      changes: { label: string; files: { path: string; insertions: number; deletions: number }[] }[];
    };
    assert.ok(summary, 'the run wrote summary.json');
    const argv = detail.steps[0]?.argv ?? [];
    assert.ok(argv.length > 1, `the step's command: ${JSON.stringify(argv)}`);
    assert.deepEqual(argv, summary.steps[0]?.argv, 'the command as summary.json has it');
    assert.match(argv[0] ?? '', /codex/, 'the command runs the codex CLI');
    assert.deepEqual(detail.run.playbook, summary.run.playbook);
    assert.ok(detail.run.decision, 'the run decided about its change');
    assert.equal(detail.run.decision, summary.run.decision);
    assert.deepEqual(detail.decisions, summary.decisions);
    assert.ok(
      detail.decisions.some((decision) => decision.message === detail.run.decision),
      `the decisions hold the apply decision: ${JSON.stringify(detail.decisions)}`,
    );
    assert.deepEqual(
      detail.changes.map((change) => [change.label, change.applied, change.files.map((file) => file.path)]),
      summary.changes.map((change) => [change.label, true, change.files.map((file) => file.path)]),
    );
    assert.ok(
      detail.changes[0]?.files.some((file) => file.path === 'host.txt' && file.insertions > 0),
      'host.txt with its added lines',
    );
    assert.equal(detail.events[0]?.type, 'run_queued');
    assert.equal(detail.events[detail.events.length - 1]?.type, 'run_finished');
  });

  it('follows a live run it shows until the run finishes', async function () {
    this.timeout(180_000);
    const started = await invoke<{ run: { id: string } }>('strategy_run', {
      agentId: AGENT_ID,
      strategy: 'single_worker',
      prompt: '[[scenario:write path=dashboard.txt]] Add dashboard.txt.',
      waitSeconds: 0,
    });
    await dashboard.receive({ type: 'select', folderKey, runId: started.run.id });
    assert.equal(dashboard.lastDetail()?.run.id, started.run.id);
    const finished = await until(() => {
      const detail = dashboard.lastDetail();
      return (
        detail?.run.id === started.run.id &&
        detail.run.status === 'succeeded' &&
        detail.events.some((event) => event.type === 'run_finished')
      );
    }, 150_000);
    const detail = dashboard.lastDetail();
    assert.ok(finished, `the detail stopped at ${JSON.stringify(detail?.run)}`);
    assert.deepEqual(
      detail?.steps.map((step) => [step.name, step.status]),
      [['write', 'succeeded']],
    );
    assert.equal(detail?.source, 'summary', 'once it ended, the detail is its summary');
    assert.ok((detail?.steps[0]?.argv.length ?? 0) > 0, 'with the command the step ran');
    const listed = await until(
      () => folderView()?.runs.find((run) => run.id === started.run.id)?.status === 'succeeded',
      10_000,
    );
    assert.ok(listed, 'the run list shows the run finished');
  });

  it('stops a worker through tandem.stopWorker and lists it as stopped', async function () {
    this.timeout(60_000);
    await dashboard.receive({ type: 'stopWorker', folderKey, workerId });
    const stopped = await until(
      () => folderView()?.workers.find((worker) => worker.id === workerId)?.state === 'stopped',
      10_000,
    );
    assert.ok(stopped, JSON.stringify(folderView()?.workers));
  });

  it('probes the CLIs through tandem.probeClis and shows the answer in the state', async function () {
    this.timeout(60_000);
    await dashboard.receive({ type: 'probe' });
    const probe = folderView()?.probe;
    assert.ok(probe, 'the state carries the probe');
    assert.deepEqual(
      probe.map((cli) => [cli.kind, cli.installed]),
      [
        ['codex', true],
        ['gemini', true],
      ],
    );
  });

  it('answers a malformed message or an unknown run with a logged notice, never a throw', async () => {
    await dashboard.receive({ type: 'select', folderKey: 7, runId: 'x' });
    await dashboard.receive('not a message');
    await dashboard.receive({ type: 'select', folderKey, runId: 'run-20000101T000000Z-000000' });
    const tail = api.logTail().join('\n');
    assert.match(
      tail,
      /dashboard: ignored a malformed message from the webview: message\.folderKey: expected a string/,
    );
    assert.match(
      tail,
      /dashboard: ignored a malformed message from the webview: message: expected an object/,
    );
    assert.match(tail, /dashboard: select failed: No run "run-20000101T000000Z-000000"/);
  });

  it('closing the panel leaves it closed until opened again', async () => {
    for (const tab of dashboardTabs()) await vscode.window.tabGroups.close(tab);
    assert.ok(await until(() => !dashboard.isOpen(), 5_000));
  });
});
