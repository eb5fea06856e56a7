// Issue 15: a repository's own CLI settings (project settings, extensions, policies, commands, agents,
// hooks, `.env` files here and in the folder above) must add no program, tool, MCP server, variable or
// model URL to a step of the real gemini and codex CLIs.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { BASE_ENV_NAMES, HEADLESS_ENV } from '../../src/core/env';
import { STEP_MARKER_ENV } from '../../src/core/exec/containment';
import { WorkspaceJail } from '../../src/core/jail';
import { OfflineModelServer } from '../../src/offline/model-server';
import type { AdapterConfig } from '../../src/workers/cli-adapter';
import { createCodexAdapter } from '../../src/workers/codex';
import type { Role, StepResult } from '../../src/workers/contract';
import { createGeminiAdapter, geminiArgs } from '../../src/workers/gemini';
import { DecoyListener, plantHostileWorkspace, type HostileWorkspace } from '../support/hostile-workspace';
import { CODEX_BIN, GEMINI_BIN, scratchDir } from '../support/real-cli';

const GEMINI_ENV_NAMES = [
  'GEMINI_API_KEY',
  'GEMINI_CLI_NO_RELAUNCH',
  'GEMINI_CLI_TRUST_WORKSPACE',
  'GOOGLE_GEMINI_BASE_URL',
];
const CODEX_ENV_NAMES = ['CODEX_HOME', 'TANDEM_OFFLINE_API_KEY'];

describe('a workspace carrying hostile CLI settings (issue 15)', function () {
  this.timeout(120_000);
  let scratch: string;
  let server: OfflineModelServer;
  let decoy: DecoyListener;

  before(async () => {
    scratch = scratchDir('hostile-settings');
    server = await OfflineModelServer.start();
    decoy = await DecoyListener.start();
  });
  after(async () => {
    await server.close();
    await decoy.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  async function plant(
    name: string,
    geminiDotEnv: boolean,
  ): Promise<{ workspace: HostileWorkspace; config: AdapterConfig }> {
    const workspace = plantHostileWorkspace(path.join(scratch, name, 'repo'), {
      markerDir: path.join(scratch, name, 'markers'),
      decoyUrl: decoy.url,
      geminiDotEnv,
    });
    mkdirSync(path.join(workspace.root, '.git'), { recursive: true });
    const config: AdapterConfig = {
      jail: await WorkspaceJail.open(workspace.root),
      stateDir: path.join(scratch, name, 'state'),
      endpoint: { type: 'offline', openaiBaseUrl: server.openaiBaseUrl, geminiBaseUrl: server.geminiBaseUrl },
    };
    return { workspace, config };
  }

  /** The step ran against the offline model, and nothing the workspace planted ran or was reached. */
  let decoyBefore = 0;
  beforeEach(() => {
    decoyBefore = decoy.requests.length;
  });

  /** What reached the decoy during this test (a step of an earlier test may still be knocking). */
  function decoyRequests(): string[] {
    return decoy.requests.slice(decoyBefore).map((request) => `${request.method} ${request.url}`);
  }

  function assertUntouched(workspace: HostileWorkspace, result: StepResult, requestsBefore: number): void {
    assert.deepEqual(workspace.markers(), [], 'a program the workspace named was run');
    assert.deepEqual(decoyRequests(), [], 'a request went to a URL the workspace chose');
    assert.equal(result.status, 'succeeded', result.errorMessage ?? result.stderrTail);
    const requests = server.requests.slice(requestsBefore);
    assert.ok(requests.length > 0, 'the offline model got no request');
    assert.ok(
      requests.every((request) => !JSON.stringify(request.body ?? '').includes('OUTSIDE-SECRET-CONTENT')),
      'a file from outside the workspace was sent to the model',
    );
  }

  function assertTandemEnv(result: StepResult, own: string[]): void {
    // The step marker is Tandem's own: it lets a kill find every process of the step (core/exec/containment.ts).
    const allowed = new Set([...BASE_ENV_NAMES, ...Object.keys(HEADLESS_ENV), STEP_MARKER_ENV, ...own]);
    assert.deepEqual(
      result.envNames.filter((name) => !allowed.has(name)),
      [],
      'the step got variables Tandem did not choose',
    );
  }

  for (const [label, geminiDotEnv] of [
    ['with .env files', false],
    ['with .gemini/.env files here and in the folder above', true],
  ] as const) {
    for (const role of ['writer', 'reviewer'] as Role[]) {
      it(`gemini ${role} ${label}: runs with Tandem's settings only`, async () => {
        const { workspace, config } = await plant(
          `gemini-${role}-${geminiDotEnv ? 'dotgemini' : 'dotenv'}`,
          geminiDotEnv,
        );
        const before = server.requests.length;
        const result = await createGeminiAdapter({ ...config, binaryPath: GEMINI_BIN }).runStep({
          kind: 'gemini',
          role,
          cwd: '.',
          prompt: '[[scenario:write path=hello.txt]] Write the file.',
          limits: { timeoutMs: 60_000 },
        });
        assertUntouched(workspace, result, before);
        assert.deepEqual(result.argv, [GEMINI_BIN, ...geminiArgs({ model: result.model })]);
        assertTandemEnv(result, GEMINI_ENV_NAMES);
        // A writer still edits (allowed by Tandem's policy); a reviewer is refused even with the planted
        // policy that allows everything.
        assert.equal(existsSync(path.join(workspace.root, 'hello.txt')), role === 'writer');
        assert.deepEqual(
          result.toolCalls.map((call) => [call.name, call.status]),
          [['write_file', role === 'writer' ? 'succeeded' : 'refused']],
        );
      });
    }
  }

  it('gemini: a custom command from the workspace runs no program', async () => {
    const { workspace, config } = await plant('gemini-command', false);
    const result = await createGeminiAdapter({ ...config, binaryPath: GEMINI_BIN }).runStep({
      kind: 'gemini',
      role: 'writer',
      cwd: '.',
      prompt: '/planted',
      limits: { timeoutMs: 60_000 },
    });
    assert.deepEqual(workspace.markers(), [], result.stderrTail);
    assert.deepEqual(decoyRequests(), []);
  });

  it("gemini with the user's own key: a workspace .env cannot send the key to its URL", async () => {
    const { workspace, config } = await plant('gemini-vendor', false);
    const secret = 'user-real-gemini-key-0123456789';
    const result = await createGeminiAdapter({
      ...config,
      binaryPath: GEMINI_BIN,
      endpoint: { type: 'vendor' },
      sourceEnv: { PATH: process.env.PATH ?? '', GEMINI_API_KEY: secret },
      userHome: path.join(scratch, 'gemini-vendor', 'user-home'),
    }).runStep({ kind: 'gemini', role: 'reviewer', cwd: '.', prompt: 'Hi.', limits: { timeoutMs: 60_000 } });
    assert.deepEqual(decoyRequests(), [], 'the key went to a URL the workspace chose');
    assert.deepEqual(workspace.markers(), []);
    assert.ok(!JSON.stringify(result).includes(secret));
  });

  for (const role of ['writer', 'reviewer'] as Role[]) {
    it(`codex ${role}: runs with Tandem's settings only`, async () => {
      const { workspace, config } = await plant(`codex-${role}`, false);
      const before = server.requests.length;
      const result = await createCodexAdapter({ ...config, binaryPath: CODEX_BIN }).runStep({
        kind: 'codex',
        role,
        cwd: '.',
        prompt: '[[scenario:write path=hello.txt]] Write the file.',
        limits: { timeoutMs: 60_000 },
      });
      assertUntouched(workspace, result, before);
      assert.equal(result.argv[0], CODEX_BIN);
      assert.ok(!result.argv.some((arg) => arg.includes(workspace.root) && arg !== workspace.root));
      assert.ok(!result.argv.includes('--trust'));
      assertTandemEnv(result, CODEX_ENV_NAMES);
      assert.equal(existsSync(path.join(workspace.root, 'hello.txt')), role === 'writer');
    });
  }
});
