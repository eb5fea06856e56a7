// Runs the real codex and gemini CLIs (the versions pinned in package.json) headless against the offline model
// server, with the command lines of REAL-CLI.md: proves the wire formats, the scenarios and the request log.
import * as assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runProcess, type ExecResult } from '../../src/core/exec';
import {
  DEFAULT_REPLY_TEXT,
  DEFAULT_WRITE_CONTENT,
  DEFAULT_WRITE_PATH,
  OfflineModelServer,
} from '../../src/offline/model-server';
import { CODEX_BIN, GEMINI_BIN, scratchDir } from '../support/real-cli';

type Json = Record<string, unknown>;

const CODEX = CODEX_BIN;
const GEMINI = GEMINI_BIN;
/** Shell syntax, a flag lookalike, quotes, a newline and a trailing backslash: none of it may be interpreted. */
const HOSTILE_PROMPT = '--help $(touch x) `id` ; "dq" \'sq\'\n\\';

interface CliRun {
  result: ExecResult;
  events: Json[];
  workspace: string;
  home: string;
}

function jsonLines(text: string): Json[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Json);
}

function describeRun(run: CliRun): string {
  return `exit ${run.result.exitCode}\nstdout:\n${run.result.stdout.text}\nstderr:\n${run.result.stderr.text}`;
}

describe('the real codex and gemini CLIs against the offline model', function () {
  this.timeout(60_000);
  let server: OfflineModelServer;
  let tempRoot: string;
  let runs = 0;

  before(async function () {
    tempRoot = scratchDir('offline-cli');
    // The hostile prompt carries no scenario tag (it must stay exactly as written), so it is echoed by script.
    server = await OfflineModelServer.start({
      script: (request) =>
        request.prompt === HOSTILE_PROMPT ? { kind: 'text', text: HOSTILE_PROMPT } : undefined,
    });
  });
  after(async () => {
    await server?.close();
    if (tempRoot) rmSync(tempRoot, { recursive: true, force: true });
  });
  beforeEach(() => server?.clearLog());

  /** A fresh HOME (with a tmp dir, so nothing lands in /tmp) and an empty workspace for one run. */
  function freshDirs(): { home: string; workspace: string } {
    runs += 1;
    const home = path.join(tempRoot, `run-${runs}`);
    const workspace = path.join(home, 'ws');
    mkdirSync(path.join(home, 'tmp'), { recursive: true });
    mkdirSync(workspace);
    return { home, workspace };
  }

  async function runCodex(
    prompt: string,
    { sandbox = 'workspace-write', streamIdleMs = 10_000 } = {},
  ): Promise<CliRun & { lastMessage: string }> {
    const { home, workspace } = freshDirs();
    const lastMessageFile = path.join(home, 'last-message.txt');
    const provider =
      `{name="mock",base_url="${server.openaiBaseUrl}",wire_api="responses",env_key="MOCK_API_KEY",` +
      `supports_websockets=false,request_max_retries=0,stream_max_retries=0,stream_idle_timeout_ms=${streamIdleMs}}`;
    const result = await runProcess({
      command: CODEX,
      args: [
        'exec',
        '--json',
        '--skip-git-repo-check',
        '--ephemeral',
        '--sandbox',
        sandbox,
        '-C',
        workspace,
        '-o',
        lastMessageFile,
        '-m',
        'gpt-5.5',
        '-c',
        'model_provider="mock"',
        '-c',
        `model_providers.mock=${provider}`,
        '-c',
        'analytics.enabled=false',
        '-c',
        'check_for_update_on_startup=false',
        '--disable',
        'plugins',
        '--',
        prompt,
      ],
      cwd: workspace,
      env: { set: { HOME: home, CODEX_HOME: home, TMPDIR: path.join(home, 'tmp'), MOCK_API_KEY: 'x' } },
      timeoutMs: 30_000,
      idleTimeoutMs: 20_000,
    });
    const lastMessage = existsSync(lastMessageFile) ? readFileSync(lastMessageFile, 'utf8') : '';
    return { result, events: jsonLines(result.stdout.text), workspace, home, lastMessage };
  }

  async function runGemini(prompt: string, { idleTimeoutMs = 20_000 } = {}): Promise<CliRun> {
    const { home, workspace } = freshDirs();
    mkdirSync(path.join(home, '.gemini'));
    const settings = {
      security: { auth: { selectedType: 'gemini-api-key' }, folderTrust: { enabled: false } },
      general: { disableAutoUpdate: true, disableUpdateNag: true, maxAttempts: 1 },
      privacy: { usageStatisticsEnabled: false },
      telemetry: { enabled: false },
      ide: { enabled: false },
      model: { name: 'gemini-2.5-flash' },
      advanced: { ignoreLocalEnv: true },
    };
    writeFileSync(path.join(home, '.gemini', 'settings.json'), JSON.stringify(settings, null, 2));
    const result = await runProcess({
      command: GEMINI,
      args: ['--skip-trust', '--approval-mode', 'yolo', '-o', 'stream-json', `--prompt=${prompt}`],
      cwd: workspace,
      env: {
        set: {
          HOME: home,
          // gemini writes its error reports to the temp dir.
          TMPDIR: path.join(home, 'tmp'),
          GEMINI_API_KEY: 'dummy',
          GOOGLE_GEMINI_BASE_URL: server.geminiBaseUrl,
          GEMINI_CLI_NO_RELAUNCH: 'true',
        },
      },
      timeoutMs: 30_000,
      idleTimeoutMs,
    });
    return { result, events: jsonLines(result.stdout.text), workspace, home };
  }

  function codexMessages(run: CliRun): string[] {
    return run.events
      .filter((event) => event.type === 'item.completed')
      .map((event) => event.item as Json)
      .filter((item) => item.type === 'agent_message')
      .map((item) => item.text as string);
  }

  function geminiReply(run: CliRun): string {
    return run.events
      .filter((event) => event.type === 'message' && event.role === 'assistant')
      .map((event) => event.content as string)
      .join('');
  }

  function geminiResult(run: CliRun): Json {
    const result = run.events.filter((event) => event.type === 'result');
    assert.equal(result.length, 1, describeRun(run));
    return result[0] as Json;
  }

  function reviewVerdict(text: string): Json {
    const match = /```json\n([\s\S]*?)\n```/.exec(text);
    assert.ok(match?.[1], text);
    return JSON.parse(match[1]) as Json;
  }

  describe('codex exec --json', () => {
    it('prints the reply as the final agent_message and in the -o file, after one request offering its tools', async () => {
      const run = await runCodex('[[scenario:reply]] Please do the task.');
      assert.equal(run.result.exitCode, 0, describeRun(run));
      assert.deepEqual(codexMessages(run), [DEFAULT_REPLY_TEXT]);
      assert.equal(run.lastMessage.trim(), DEFAULT_REPLY_TEXT);
      const completed = run.events.find((event) => event.type === 'turn.completed');
      assert.ok(((completed?.usage as Json | undefined)?.input_tokens as number) > 0);
      assert.equal(server.requests.length, 1);
      const [request] = server.requests;
      assert.equal(request?.api, 'openai-responses');
      assert.equal(request?.path, '/v1/responses');
      assert.equal(request?.prompt, '[[scenario:reply]] Please do the task.');
      for (const tool of ['exec_command', 'apply_patch']) assert.ok(request?.toolNames.includes(tool), tool);
    });

    it('writes the file through exec_command in workspace-write, and reports the tool output back', async () => {
      const run = await runCodex('[[scenario:write]] Please do the task.');
      assert.equal(run.result.exitCode, 0, describeRun(run));
      assert.equal(readFileSync(path.join(run.workspace, DEFAULT_WRITE_PATH), 'utf8'), DEFAULT_WRITE_CONTENT);
      const command = run.events
        .filter((event) => event.type === 'item.completed')
        .map((event) => event.item as Json)
        .find((item) => item.type === 'command_execution');
      assert.equal(command?.exit_code, 0, describeRun(run));
      assert.deepEqual(
        server.requests.map((request) => request.isFollowUp),
        [false, true],
      );
      assert.match(codexMessages(run).at(-1) ?? '', /Process exited with code 0/);
    });

    it('cannot write in the read-only sandbox; the refusal reaches the model as the tool output', async () => {
      const run = await runCodex('[[scenario:write]] Please do the task.', { sandbox: 'read-only' });
      assert.equal(run.result.exitCode, 0, describeRun(run));
      assert.deepEqual(readdirSync(run.workspace), []);
      assert.match(codexMessages(run).at(-1) ?? '', /Read-only file system/);
    });

    it('prints a review whose fenced json block holds the verdict and findings', async () => {
      const run = await runCodex('[[scenario:review verdict=request_changes]]');
      assert.equal(run.result.exitCode, 0, describeRun(run));
      const verdict = reviewVerdict(codexMessages(run).at(-1) ?? '');
      assert.equal(verdict.verdict, 'request_changes');
      assert.equal((verdict.findings as Json[])[0]?.severity, 'high');
    });

    for (const [scenario, message] of [
      ['http500', /high demand/],
      ['http429', /429 Too Many Requests/],
    ] as const) {
      it(`fails with exit 1 and turn.failed on ${scenario}, after a single request`, async () => {
        const run = await runCodex(`[[scenario:${scenario}]]`);
        assert.equal(run.result.exitCode, 1, describeRun(run));
        const failed = run.events.find((event) => event.type === 'turn.failed');
        assert.match(String((failed?.error as Json | undefined)?.message), message);
        assert.equal(server.requests.length, 1);
      });
    }

    it('delivers a hostile prompt byte for byte and runs none of it', async () => {
      const run = await runCodex(HOSTILE_PROMPT);
      assert.equal(run.result.exitCode, 0, describeRun(run));
      assert.equal(server.requests[0]?.prompt, HOSTILE_PROMPT);
      assert.deepEqual(codexMessages(run), [HOSTILE_PROMPT]);
      assert.deepEqual(readdirSync(run.workspace), []);
    });

    it('gives up on a stalled stream after its own stream_idle_timeout_ms', async () => {
      const run = await runCodex('[[scenario:hang]]', { streamIdleMs: 1000 });
      assert.equal(run.result.exitCode, 1, describeRun(run));
      const failed = run.events.find((event) => event.type === 'turn.failed');
      assert.match(String((failed?.error as Json | undefined)?.message), /idle timeout waiting for SSE/);
    });
  });

  describe('gemini -o stream-json', () => {
    it('prints the reply as assistant messages and a success result, after one request offering its tools', async () => {
      const run = await runGemini('[[scenario:reply]] Please do the task.');
      assert.equal(run.result.exitCode, 0, describeRun(run));
      assert.equal(geminiReply(run), DEFAULT_REPLY_TEXT);
      const result = geminiResult(run);
      assert.equal(result.status, 'success');
      assert.ok(((result.stats as Json).input_tokens as number) > 0);
      assert.equal(server.requests.length, 1);
      const [request] = server.requests;
      assert.equal(request?.api, 'gemini');
      assert.match(
        request?.path ?? '',
        /^\/v1beta\/models\/gemini-2\.5-flash:streamGenerateContent\?alt=sse$/,
      );
      assert.equal(request?.prompt, '[[scenario:reply]] Please do the task.');
      for (const tool of ['write_file', 'run_shell_command'])
        assert.ok(request?.toolNames.includes(tool), tool);
    });

    it('writes the file through write_file in yolo mode, and reports the tool output back', async () => {
      const run = await runGemini('[[scenario:write]] Please do the task.');
      assert.equal(run.result.exitCode, 0, describeRun(run));
      assert.equal(readFileSync(path.join(run.workspace, DEFAULT_WRITE_PATH), 'utf8'), DEFAULT_WRITE_CONTENT);
      const toolUse = run.events.find((event) => event.type === 'tool_use');
      assert.equal(toolUse?.tool_name, 'write_file');
      const toolResult = run.events.find((event) => event.type === 'tool_result');
      assert.equal(toolResult?.status, 'success');
      assert.deepEqual(
        server.requests.map((request) => request.isFollowUp),
        [false, true],
      );
      assert.match(geminiReply(run), /Successfully created and wrote to new file/);
    });

    it('prints a review whose fenced json block holds the verdict and findings', async () => {
      const run = await runGemini('[[scenario:review verdict=request_changes]]');
      assert.equal(geminiResult(run).status, 'success', describeRun(run));
      const verdict = reviewVerdict(geminiReply(run));
      assert.equal(verdict.verdict, 'request_changes');
      assert.equal((verdict.findings as Json[])[0]?.severity, 'high');
    });

    for (const scenario of ['http500', 'http429'] as const) {
      it(`ends with an error result and a non-zero exit on ${scenario}, after a single request (maxAttempts 1)`, async () => {
        const run = await runGemini(`[[scenario:${scenario}]]`);
        assert.notEqual(run.result.exitCode, 0, describeRun(run));
        const result = geminiResult(run);
        assert.equal(result.status, 'error');
        assert.match(String((result.error as Json | undefined)?.message), /API Error/);
        assert.equal(server.requests.length, 1);
      });
    }

    it('delivers a hostile prompt byte for byte and runs none of it', async () => {
      const run = await runGemini(HOSTILE_PROMPT);
      assert.equal(geminiResult(run).status, 'success', describeRun(run));
      assert.equal(server.requests[0]?.prompt, HOSTILE_PROMPT);
      assert.equal(geminiReply(run), HOSTILE_PROMPT);
      assert.deepEqual(readdirSync(run.workspace), []);
    });

    it('waits on a stalled stream until our idle timeout ends it', async () => {
      const run = await runGemini('[[scenario:hang]]', { idleTimeoutMs: 3000 });
      assert.equal(run.result.timedOut, true, describeRun(run));
      assert.equal(run.result.timeoutKind, 'idle');
      assert.equal(geminiReply(run), 'Working on it');
      assert.equal(
        run.events.some((event) => event.type === 'result'),
        false,
      );
    });
  });
});
