// The editor's own controls in a real extension host: the status bar item, the panic commands (with the
// arguments that skip their prompts: the smoke-test dialog service refuses dialogs), the MCP config copied for
// other clients, and a run summary opened as a document. Runs after extension.test.ts (file-name order), which
// activated Tandem, started the folder's server and ran one strategy.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { TandemExtensionApi } from '../../../src/extension/extension';
import { PanicSwitch } from '../../../src/orchestrator/panic';
import { EXTENSION_ID, until, workspacePath } from './helpers';

const AGENT_ID = 'host-test-controls';
const IDLE = '$(check) Tandem';
const PANIC = '$(error) Tandem: PANIC';

/** Calls a Tandem tool as the language model would; a refusal may come back as text or as a thrown error. */
async function invoke(short: string, input: object): Promise<string> {
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
    return result.content
      .map((part) => (part instanceof vscode.LanguageModelTextPart ? part.value : ''))
      .join('');
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
    cancel.dispose();
  }
}

interface RunAnswer {
  run: { id: string; status: string };
  finished: boolean;
  cursor: number;
}

function startRun(file: string): Promise<string> {
  return invoke('strategy_run', {
    agentId: AGENT_ID,
    strategy: 'single_worker',
    prompt: `[[scenario:write path=${file}]] Add ${file}.`,
    waitSeconds: 0,
  });
}

async function waitFinished(first: RunAnswer): Promise<RunAnswer> {
  let answer = first;
  const deadline = Date.now() + 120_000;
  while (!answer.finished && Date.now() < deadline) {
    answer = JSON.parse(
      await invoke('run_wait', {
        agentId: AGENT_ID,
        runId: answer.run.id,
        after: answer.cursor,
        timeoutSeconds: 25,
      }),
    ) as RunAnswer;
  }
  return answer;
}

describe('Tandem status bar and commands', function () {
  let api: TandemExtensionApi;

  before(async function () {
    this.timeout(60_000);
    const extension = vscode.extensions.getExtension<TandemExtensionApi>(EXTENSION_ID);
    assert.ok(extension);
    api = await extension.activate();
  });

  after(async () => {
    // Leave the workspace released whatever happened above.
    const services = await api.services();
    if (services.panic.engaged) await services.panic.release('human');
  });

  it('registers the four commands', async () => {
    const commands = await vscode.commands.getCommands(true);
    for (const name of [
      'tandem.engagePanic',
      'tandem.releasePanic',
      'tandem.copyMcpConfig',
      'tandem.showRunSummary',
    ]) {
      assert.ok(commands.includes(name), name);
    }
  });

  it('shows the idle status when nothing runs and panic is released', async () => {
    const services = await api.services();
    assert.equal(services.panic.engaged, false);
    assert.ok(await until(() => api.getStatusText() === IDLE, 5_000), api.getStatusText());
  });

  it('engagePanic engages panic as "human", the status bar shows PANIC and strategy_run is refused', async function () {
    this.timeout(60_000);
    const count = await vscode.commands.executeCommand('tandem.engagePanic', { reason: 'host test' });
    assert.equal(count, 1, 'one folder');
    const services = await api.services();
    const state = services.panic.status();
    assert.equal(state.engaged, true);
    assert.equal(state.engagedBy, 'human');
    assert.equal(state.reason, 'host test');
    assert.equal(api.getStatusText(), PANIC);

    const refused = await startRun('blocked.txt');
    // The refusal reaches the editor as the tool's answer, with the code and what to do.
    assert.match(refused, /PANIC_ENGAGED/, `strategy_run was not refused with PANIC_ENGAGED: ${refused}`);
    assert.ok(
      await until(
        () => api.logTail().some((line) => line.includes(`tool strategy_run by ${AGENT_ID}: PANIC_ENGAGED`)),
        5_000,
      ),
      api.logTail().slice(-10).join('\n'),
    );
    assert.equal(services.store.list({ owner: AGENT_ID }).length, 0, 'no run was created');
  });

  it('releasePanic with confirmed releases it, the status goes back, and strategy_run runs again', async function () {
    this.timeout(180_000);
    const count = await vscode.commands.executeCommand('tandem.releasePanic', { confirmed: true });
    assert.equal(count, 1);
    const services = await api.services();
    assert.equal(services.panic.engaged, false);
    assert.equal(services.panic.status().releasedBy, 'human');
    assert.equal(api.getStatusText(), IDLE);

    const first = JSON.parse(await startRun('unblocked.txt')) as RunAnswer;
    assert.ok(first.run.id, JSON.stringify(first));
    if (!first.finished) {
      // While the run is live the item counts it (unless it finished before the first look).
      const seen = await until(
        () =>
          /^\$\(sync~spin\) Tandem: 1 running$/.test(api.getStatusText()) ||
          services.orchestrator.runningCount === 0,
        5_000,
      );
      assert.ok(seen, api.getStatusText());
    }
    const done = await waitFinished(first);
    assert.equal(done.run.status, 'succeeded', JSON.stringify(done.run));
    assert.ok(readFileSync(path.join(workspacePath(), 'unblocked.txt'), 'utf8').length > 0);
    assert.ok(await until(() => api.getStatusText() === IDLE, 5_000), api.getStatusText());
  });

  it('notices panic engaged by another process within the 2 s status poll', async function () {
    this.timeout(30_000);
    // A second switch on the same folder stands for the CLI or another server: it only writes panic.json.
    const other = await PanicSwitch.open(workspacePath());
    await other.engage('other-process', 'engaged elsewhere');
    assert.ok(await until(() => api.getStatusText() === PANIC, 6_000), api.getStatusText());
    await vscode.commands.executeCommand('tandem.releasePanic', { confirmed: true });
    assert.equal(api.getStatusText(), IDLE);
    assert.equal((await other.reload()).engaged, false);
  });

  it('copyMcpConfig puts a JSON snippet for the folder on the clipboard', async () => {
    const returned = await vscode.commands.executeCommand<string>('tandem.copyMcpConfig');
    const text = await vscode.env.clipboard.readText();
    assert.equal(text, returned);
    const config = JSON.parse(text) as { mcpServers: { tandem: { command: string; args: string[] } } };
    assert.deepEqual(config, {
      mcpServers: {
        tandem: {
          command: 'node',
          args: [
            path.join(vscode.extensions.getExtension(EXTENSION_ID)?.extensionPath ?? '', 'dist', 'cli.js'),
            'serve',
            '--workspace',
            workspacePath(),
          ],
        },
      },
    });
  });

  it('showRunSummary with a runId opens a Markdown document about that run', async function () {
    this.timeout(30_000);
    const services = await api.services();
    const [run] = services.store.list({ owner: AGENT_ID });
    assert.ok(run, 'the run started above is in the store');
    await vscode.commands.executeCommand('tandem.showRunSummary', { runId: run.id });
    const document = vscode.workspace.textDocuments.find(
      (candidate) => candidate.languageId === 'markdown' && candidate.getText().includes(`# Run ${run.id}`),
    );
    assert.ok(
      document,
      `open documents: ${vscode.workspace.textDocuments.map((d) => d.uri.toString()).join(', ')}`,
    );
    assert.match(document.getText(), /\*\*Status:\*\* succeeded/);
  });
});
