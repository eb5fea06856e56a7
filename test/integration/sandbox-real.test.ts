// gemini steps inside Tandem's OS sandbox (bubblewrap): the real CLI on the offline model still writes its file
// in its copy, and a gemini step's process cannot read a key planted in the user's ~/.ssh (HOME pointed at a
// temporary folder), which it can without the sandbox.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkspaceJail } from '../../src/core/jail';
import { Sandbox, type SandboxMode } from '../../src/core/sandbox';
import { OfflineModelServer } from '../../src/offline/model-server';
import type { StepResult } from '../../src/workers/contract';
import { CliWorkerAdapter } from '../../src/workers/cli-adapter';
import { codexSpec } from '../../src/workers/codex';
import { createGeminiAdapter } from '../../src/workers/gemini';
import { fixture } from '../support/processes';
import { CODEX_BIN, GEMINI_BIN, scratchDir } from '../support/real-cli';

const SECRET = 'PLANTED-SSH-KEY-4242';

describe('real gemini in the OS sandbox (bubblewrap)', function () {
  this.timeout(120_000);
  let server: OfflineModelServer;
  let scratch: string;
  let home: string;
  let savedHome: string | undefined;

  before(async () => {
    scratch = scratchDir('sandbox');
    home = path.join(scratch, 'home');
    mkdirSync(path.join(home, '.ssh'), { recursive: true });
    writeFileSync(path.join(home, '.ssh', 'id_ed25519'), `${SECRET}\n`);
    savedHome = process.env.HOME;
    process.env.HOME = home;
    // A read of `leak` (a symlink the workspace carries) reports what it read in the final message.
    server = await OfflineModelServer.start({
      script: (request) => {
        if (!request.prompt?.includes('[[read-leak]]')) return undefined;
        return request.isFollowUp
          ? {
              kind: 'text',
              text: `read: ${JSON.stringify(request.body ?? '').includes(SECRET) ? SECRET : 'nothing'}`,
            }
          : { kind: 'functionCall', name: 'read_file', args: { file_path: 'leak' } };
      },
    });
  });
  after(async () => {
    process.env.HOME = savedHome;
    await server.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  async function gemini(
    mode: SandboxMode,
    name: string,
    prompt: string,
  ): Promise<{ result: StepResult; root: string }> {
    const root = path.join(scratch, name);
    mkdirSync(root);
    symlinkSync(path.join(home, '.ssh', 'id_ed25519'), path.join(root, 'leak'));
    const adapter = createGeminiAdapter({
      jail: await WorkspaceJail.open(root),
      stateDir: path.join(scratch, `state-${name}`),
      endpoint: { type: 'offline', openaiBaseUrl: server.openaiBaseUrl, geminiBaseUrl: server.geminiBaseUrl },
      binaryPath: GEMINI_BIN,
      sandbox: new Sandbox({ mode, userHome: home }),
    });
    const result = await adapter.runStep({ kind: 'gemini', role: 'writer', cwd: '.', prompt });
    return { result, root };
  }

  it('a sandboxed gemini writer still writes its file in its copy', async () => {
    const { result, root } = await gemini(
      'required',
      'writes',
      '[[scenario:write path=sandboxed.txt content=inside]] Write it.',
    );
    assert.equal(result.status, 'succeeded', `${result.errorMessage ?? ''}\n${result.stderrTail}`);
    assert.equal(readFileSync(path.join(root, 'sandboxed.txt'), 'utf8'), 'inside');
    assert.equal(result.argv[0], GEMINI_BIN, 'the record shows the CLI, not the sandbox program');
  });

  it("a gemini step's process cannot read the user's ~/.ssh: the sandbox holds where gemini's own checks do not", async () => {
    // gemini's read_file refuses the planted symlink itself; the sandbox is for whatever gets past gemini, so
    // a stand-in binary reads the key directly, through the same adapter and the same sandbox policy.
    const reads = async (mode: SandboxMode): Promise<{ result: StepResult; root: string }> => {
      const root = path.join(scratch, `stand-in-${mode}`);
      mkdirSync(root);
      writeFileSync(path.join(root, 'target.txt'), path.join(home, '.ssh', 'id_ed25519'));
      const adapter = createGeminiAdapter({
        jail: await WorkspaceJail.open(root),
        stateDir: path.join(scratch, `state-stand-in-${mode}`),
        endpoint: {
          type: 'offline',
          openaiBaseUrl: server.openaiBaseUrl,
          geminiBaseUrl: server.geminiBaseUrl,
        },
        binaryPath: fixture('gemini-reads-home.cjs'),
        sandbox: new Sandbox({ mode, userHome: home }),
      });
      return {
        result: await adapter.runStep({ kind: 'gemini', role: 'writer', cwd: '.', prompt: 'Read.' }),
        root,
      };
    };
    const sandboxed = await reads('required');
    assert.equal(sandboxed.result.status, 'succeeded', sandboxed.result.stderrTail);
    assert.match(sandboxed.result.finalMessage, /^read: refused:ENOENT$/);
    assert.equal(readFileSync(path.join(sandboxed.root, 'written.txt'), 'utf8'), 'inside\n');
    const open = await reads('off');
    assert.match(
      open.result.finalMessage,
      new RegExp(`read: ${SECRET}`),
      'without the sandbox the key is read',
    );
  });

  it("gemini's own read_file refuses a planted symlink to ~/.ssh inside the sandbox too", async () => {
    const { result } = await gemini('required', 'reads', '[[read-leak]] Read the file leak.');
    assert.equal(result.status, 'succeeded', `${result.errorMessage ?? ''}\n${result.stderrTail}`);
    assert.match(result.finalMessage, /^read: nothing/);
  });

  it('codex is not wrapped: inside bubblewrap its own sandbox (bubblewrap again) cannot start, so its tools fail', async () => {
    // Why codexSpec.sandboxed is false. codex 0.169 confines each tool command with its own bubblewrap; in ours
    // (capabilities dropped) that one cannot map its user namespace, and its legacy Landlock mode refuses to
    // run without bubblewrap. If a codex release changes this, this test says so.
    const root = path.join(scratch, 'codex-nested');
    mkdirSync(root);
    const adapter = new CliWorkerAdapter(
      { ...codexSpec, sandboxed: true },
      {
        jail: await WorkspaceJail.open(root),
        stateDir: path.join(scratch, 'state-codex-nested'),
        endpoint: {
          type: 'offline',
          openaiBaseUrl: server.openaiBaseUrl,
          geminiBaseUrl: server.geminiBaseUrl,
        },
        binaryPath: CODEX_BIN,
        sandbox: new Sandbox({ mode: 'required', userHome: home }),
      },
    );
    const result = await adapter.runStep({
      kind: 'codex',
      role: 'writer',
      cwd: '.',
      prompt: '[[scenario:write path=nested.txt content=hi]] Write it.',
    });
    assert.equal(existsSync(path.join(root, 'nested.txt')), false);
    assert.match(result.finalMessage, /bwrap: setting up uid map: Operation not permitted/);
  });
});
