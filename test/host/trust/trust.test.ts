// Tandem under workspace trust, in a real extension host: test/host/run.mjs opens this session's folder with
// security.workspace.trust.enabled on and the folder not trusted. The history stays readable and nothing is
// spawned (UNTRUSTED_WORKSPACE); once the user trusts the folder in the editor's trust editor (run.mjs clicks
// its Trust button when asked), the server restarts trusted and workers run.
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { TandemExtensionApi } from '../../../src/extension/extension';
import { EXTENSION_ID, until, workspacePath } from '../suite/helpers';

/** A run an earlier, trusted session left in the folder's history. */
const EARLIER_RUN = 'run-20260103T000000Z-0ea41e';
const EARLIER_LABEL = 'single_worker: Done before the folder was opened untrusted.';

/** Asks test/host/run.mjs to act in the page; it answers nothing, the test watches the outcome. */
function askRunner(name: string): void {
  console.log(`host-action ${JSON.stringify({ name })}`);
}

describe('Tandem in a workspace the user has not trusted', function () {
  let api: TandemExtensionApi;

  before(async function () {
    this.timeout(60_000);
    assert.equal(vscode.workspace.isTrusted, false, 'the runner opened the folder untrusted');
    const stateDir = path.join(workspacePath(), '.tandem');
    mkdirSync(stateDir, { recursive: true });
    const at = '2026-01-03T00:00:00.000Z';
    appendFileSync(
      path.join(stateDir, 'runs.jsonl'),
      `${JSON.stringify({
        id: EARLIER_RUN,
        kind: 'strategy',
        strategy: 'single_worker',
        playbook: null,
        owner: 'human',
        prompt: 'Done before the folder was opened untrusted.',
        status: 'succeeded',
        createdAt: at,
        startedAt: at,
        endedAt: at,
        workers: ['codex'],
        stepCount: 1,
        outcome: 'The change was applied.',
        decision: null,
        applied: true,
        host: { pid: 4_194_002, startTime: '1' },
      })}\n`,
    );
    const extension = vscode.extensions.getExtension<TandemExtensionApi>(EXTENSION_ID);
    assert.ok(extension);
    api = await extension.activate();
  });

  it('starts the folder server untrusted, with the history listed in the Runs view', async () => {
    const services = await api.services();
    assert.equal(services.trusted, false);
    assert.deepEqual(
      api.runningServers().map((server) => server.trusted),
      [false],
    );
    assert.equal(services.store.get(EARLIER_RUN).status, 'succeeded');
    assert.ok(
      await until(async () => (await api.trees().runLabels()).includes(EARLIER_LABEL), 5_000),
      `runs tree: ${(await api.trees().runLabels()).join(' | ')}`,
    );
  });

  it('refuses to spawn a worker or start a run with UNTRUSTED_WORKSPACE', async () => {
    const services = await api.services();
    const before = services.store.size;
    assert.equal(await vscode.commands.executeCommand('tandem.spawnWorker', { kind: 'codex' }), undefined);
    assert.equal(
      await vscode.commands.executeCommand('tandem.runStrategy', {
        strategy: 'single_worker',
        prompt: '[[scenario:write path=untrusted.txt]] Add untrusted.txt.',
      }),
      undefined,
    );
    for (const tool of ['worker_spawn', 'strategy_run']) {
      assert.ok(
        api.logTail().some((line) => line.includes(`tool ${tool} by human: UNTRUSTED_WORKSPACE`)),
        `${tool} refused: ${api.logTail().slice(-6).join('\n')}`,
      );
    }
    assert.equal(services.workers.list().length, 0);
    assert.equal(services.store.size, before, 'no run was recorded');
  });

  it('restarts the server trusted once the user trusts the folder, and then spawns workers', async function () {
    this.timeout(90_000);
    const untrusted = await api.services();
    const granted = new Promise<void>((resolve) => {
      const subscription = vscode.workspace.onDidGrantWorkspaceTrust(() => {
        subscription.dispose();
        resolve();
      });
    });
    await vscode.commands.executeCommand('workbench.trust.manage');
    askRunner('grant-trust');
    const outcome = await Promise.race([
      granted.then(() => 'granted'),
      new Promise((resolve) => setTimeout(() => resolve('timeout'), 30_000)),
    ]);
    assert.equal(outcome, 'granted', 'the trust editor granted trust within 30 s');
    assert.equal(vscode.workspace.isTrusted, true);

    assert.ok(
      await until(() => api.runningServers().some((server) => server.trusted), 15_000),
      `servers: ${JSON.stringify(api.runningServers())}`,
    );
    const trusted = await api.services();
    assert.notEqual(trusted, untrusted, 'a new server with its own services');
    assert.equal(trusted.trusted, true);
    assert.ok(
      api
        .logTail()
        .some((line) => line.includes('workspace trust granted: restarting 1 untrusted server(s)')),
      api.logTail().slice(-6).join('\n'),
    );
    assert.ok((await api.trees().runLabels()).includes(EARLIER_LABEL), 'the history is still listed');

    const workerId = await vscode.commands.executeCommand<string>('tandem.spawnWorker', { kind: 'codex' });
    assert.match(workerId ?? '', /^codex-/, api.logTail().slice(-6).join('\n'));
    const runId = await vscode.commands.executeCommand<string>('tandem.dispatchTask', {
      workerId,
      prompt: '[[scenario:reply text=trusted-now]] Say that the folder is trusted.',
    });
    assert.ok(runId, api.logTail().slice(-6).join('\n'));
    const run = await trusted.orchestrator.finished(runId);
    assert.equal(run.status, 'succeeded', run.outcome ?? '');
    assert.equal(await vscode.commands.executeCommand('tandem.stopWorker', { workerId }), 'stopped');
  });
});
