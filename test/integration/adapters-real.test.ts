import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { WorkspaceJail } from '../../src/core/jail';
import { OfflineModelServer } from '../../src/offline/model-server';
import type { AdapterConfig, CliWorkerAdapter } from '../../src/workers/cli-adapter';
import { createCodexAdapter } from '../../src/workers/codex';
import type { WorkerKind } from '../../src/workers/contract';
import { createGeminiAdapter } from '../../src/workers/gemini';
import { WorkerRegistry } from '../../src/workers/registry';
import { isGroupAlive } from '../support/processes';
import { CODEX_BIN, GEMINI_BIN, scratchDir } from '../support/real-cli';

describe('real adapters beyond the shared contract', function () {
  this.timeout(60_000);
  let server: OfflineModelServer;
  let scratch: string;
  let root: string;
  let adapters: Record<WorkerKind, CliWorkerAdapter>;

  before(async () => {
    scratch = scratchDir('adapters');
    root = path.join(scratch, 'workspace');
    mkdirSync(root);
    server = await OfflineModelServer.start();
    const config: Omit<AdapterConfig, 'binaryPath'> = {
      jail: await WorkspaceJail.open(root),
      stateDir: path.join(scratch, 'state'),
      endpoint: { type: 'offline', openaiBaseUrl: server.openaiBaseUrl, geminiBaseUrl: server.geminiBaseUrl },
    };
    adapters = {
      codex: createCodexAdapter({ ...config, binaryPath: CODEX_BIN }),
      gemini: createGeminiAdapter({ ...config, binaryPath: GEMINI_BIN }),
    };
  });
  after(async () => {
    await server.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  for (const kind of ['codex', 'gemini'] as const) {
    it(`${kind}: a writer cannot write outside its working directory`, async () => {
      const outside = path.join(scratch, `escape-${kind}.txt`);
      const result = await adapters[kind].runStep({
        kind,
        role: 'writer',
        cwd: '.',
        prompt: `[[scenario:write path=../escape-${kind}.txt]] Write it.`,
      });
      assert.equal(existsSync(outside), false, `${outside} was written`);
      assert.deepEqual(result.filesChanged, []);
      // The attempt was made and refused by the CLI's own sandbox or path check, not skipped.
      if (kind === 'codex') assert.match(result.finalMessage, /Read-only file system/);
      else
        assert.deepEqual(
          result.toolCalls.map((call) => [call.name, call.status]),
          [['write_file', 'refused']],
        );
    });

    it(`${kind}: the whole process group is gone after a hang is stopped`, async () => {
      let pid: number | undefined;
      const result = await adapters[kind].runStep(
        {
          kind,
          role: 'writer',
          cwd: '.',
          prompt: '[[scenario:hang]]',
          limits: { idleTimeoutMs: kind === 'gemini' ? 8000 : 3000, killGraceMs: 500 },
        },
        { onEvent: (event) => void (event.type === 'started' && (pid = event.pid)) },
      );
      assert.equal(result.status, 'timed_out');
      assert.ok(pid !== undefined);
      assert.equal(isGroupAlive(pid), false);
    });

    it(`${kind}: records the command with the prompt kept out of argv, and only allowlisted variable names`, async () => {
      process.env.TANDEM_TEST_SECRET_TOKEN = 'tandem-secret-value-123';
      try {
        const result = await adapters[kind].runStep({
          kind,
          role: 'reviewer',
          cwd: '.',
          prompt: '[[scenario:reply]] unique-prompt-text',
        });
        assert.equal(result.status, 'succeeded', result.errorMessage);
        assert.ok(path.isAbsolute(result.argv[0] ?? ''));
        assert.ok(!result.argv.some((arg) => arg.includes('unique-prompt-text')));
        assert.ok(!result.envNames.includes('TANDEM_TEST_SECRET_TOKEN'));
        assert.ok(result.envNames.includes('HOME'));
      } finally {
        delete process.env.TANDEM_TEST_SECRET_TOKEN;
      }
    });
  }

  it('codex: the verdict of a reviewer comes back in the final message', async () => {
    const result = await adapters.codex.runStep({
      kind: 'codex',
      role: 'reviewer',
      cwd: '.',
      prompt: '[[scenario:review verdict=request_changes]]',
    });
    assert.equal(result.status, 'succeeded');
    assert.match(result.finalMessage, /"verdict":\s*"request_changes"/);
  });

  it('a registry of real workers: spawn probes the CLI, stop kills the step in flight', async () => {
    const registry = new WorkerRegistry((kind) => adapters[kind]);
    const { worker, probe } = await registry.spawn({ kind: 'codex', owner: 'agent-x' });
    assert.equal(probe.version, '0.169.0');
    let pid: number | undefined;
    const running = registry.runStep(
      worker.id,
      {
        role: 'writer',
        cwd: '.',
        prompt: '[[scenario:hang]]',
        limits: { idleTimeoutMs: 60_000, killGraceMs: 500 },
      },
      { onEvent: (event) => void (event.type === 'started' && (pid = event.pid)) },
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await registry.stop(worker.id, 'agent-x');
    const result = await running;
    assert.equal(result.status, 'cancelled');
    assert.ok(pid !== undefined && !isGroupAlive(pid));
  });
});
