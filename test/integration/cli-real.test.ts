// The `tandem-mcp` commands that start workers, as the compiled CLI with the real codex and gemini CLIs on the
// offline model: `run`, the `demo` end to end, and `serve --http` reached by an MCP client, then stopped.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { isSameProcessAlive, runProcess, startProcess, type ProcessIdentity } from '../../src/core/exec';
import type { RunEvent } from '../../src/orchestrator/model';
import { RunStore } from '../../src/orchestrator/run-store';
import { REPO_ROOT, scratchDir } from '../support/real-cli';

const MAIN = path.join(REPO_ROOT, 'out', 'src', 'cli', 'main.js');
const REAL_BIN = path.join(REPO_ROOT, 'node_modules', '.bin');
const SEARCH_PATH = [REAL_BIN, process.env.PATH ?? ''].join(path.delimiter);

async function until<T>(what: string, limitMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('tandem-mcp with the real CLIs on the offline model', function () {
  this.timeout(60_000);

  let scratch: string;
  let home: string;
  const env = (): { set: Record<string, string> } => ({
    // XDG_CACHE_HOME keeps the demo's workspace in the scratch area instead of the real ~/.cache.
    set: { PATH: SEARCH_PATH, HOME: home, XDG_CACHE_HOME: path.join(scratch, 'cache') },
  });

  before(() => {
    scratch = scratchDir('cli-real');
    home = path.join(scratch, 'home');
    mkdirSync(home);
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('run: codex writes, gemini reviews, the change lands; exit 0 and the summary on stdout', async () => {
    const workspace = path.join(scratch, 'run-ws');
    mkdirSync(workspace);
    const result = await runProcess({
      command: process.execPath,
      args: [
        MAIN,
        'run',
        '--offline',
        '--strategy',
        'codex_writes_gemini_reviews',
        '--prompt',
        '[[scenario:write path=a.txt content=written%20by%20codex]] Write a.txt.',
        '--workspace',
        workspace,
      ],
      cwd: scratch,
      env: env(),
      timeoutMs: 50_000,
    });
    assert.equal(result.exitCode, 0, result.stderr.text);
    assert.equal(readFileSync(path.join(workspace, 'a.txt'), 'utf8'), 'written by codex');
    assert.match(result.stdout.text, /^# Run run-\S+\n/);
    assert.match(result.stdout.text, /^- \*\*Status:\*\* succeeded/m);
    assert.match(result.stdout.text, /^- \*\*Applied to the workspace:\*\* yes$/m);
    // Progress went to stderr, one `[seq] message` line per event, ending with the run's end.
    assert.match(result.stderr.text, /^\[1\] Run queued by human\.$/m);
    assert.match(result.stderr.text, /^\[\d+\] Run succeeded: .*$/m);
  });

  it('demo: fixes the sample project offline, prints the summary, and keeps the workspace', async () => {
    const result = await runProcess({
      command: process.execPath,
      args: [MAIN, 'demo'],
      cwd: scratch,
      env: env(),
      timeoutMs: 50_000,
    });
    assert.equal(result.exitCode, 0, `${result.stdout.text}\n${result.stderr.text}`);
    const out = result.stdout.text;
    assert.match(out, /^# Run run-\S+$/m);
    assert.match(out, /^- \*\*Status:\*\* succeeded/m);
    assert.match(out, /^Result: succeeded; the change was applied to the workspace\.$/m);
    assert.match(out, /^Its tests after the run: 3 of 3 pass \(before: 1 of 3\)\.$/m);
    const workspace = /^The workspace is kept: (.+)$/m.exec(out)?.[1] ?? '';
    assert.ok(workspace.startsWith(path.join(scratch, 'cache', 'tandem', 'demo')), workspace);
    assert.match(readFileSync(path.join(workspace, 'src', 'greet.js'), 'utf8'), /name\.trim\(\)/);
  });

  it('serve --http: a client connects with the token from http.json; SIGTERM ends the server and its workers', async () => {
    const workspace = path.join(scratch, 'serve-ws');
    mkdirSync(workspace);
    let stderr = '';
    const server = startProcess({
      command: process.execPath,
      args: [MAIN, 'serve', '--workspace', workspace, '--http', '0', '--offline'],
      cwd: workspace,
      env: env(),
      killGraceMs: 15_000,
      timeoutMs: 50_000,
      onStderr: (chunk) => {
        stderr += chunk.toString('utf8');
      },
    });
    try {
      const url = await until(
        'the URL on stderr',
        15_000,
        () => /serving MCP at (http:\S+) for /.exec(stderr)?.[1],
      );
      const infoFile = path.join(workspace, '.tandem', 'http.json');
      const info = JSON.parse(readFileSync(infoFile, 'utf8')) as { url: string; token: string; pid: number };
      assert.deepEqual([info.url, info.pid], [url, server.pid]);
      assert.equal(statSync(infoFile).mode & 0o777, 0o600);
      assert.equal(stderr.includes(info.token), false, 'the token is never logged');

      const client = new Client({ name: 'cli-real-test', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(info.url), {
          requestInit: { headers: { Authorization: `Bearer ${info.token}` } },
        }),
      );
      const tools = (await client.listTools()).tools.map((tool) => tool.name);
      assert.ok(tools.includes('strategy_run') && tools.includes('panic_engage'), tools.join(', '));

      // A run whose model never answers: its codex process is alive when the server is told to stop.
      const started = await client.callTool({
        name: 'strategy_run',
        arguments: { agentId: 'cli-test', strategy: 'single_worker', prompt: '[[scenario:hang]] Wait.' },
      });
      const runId = (started.structuredContent as { run: { id: string } }).run.id;
      const store = await RunStore.open(workspace);
      const eventsFile = path.join(store.runDir(runId), 'events.jsonl');
      const worker = await until<ProcessIdentity>('the worker pid', 15_000, () => {
        if (!existsSync(eventsFile)) return undefined;
        const events = readFileSync(eventsFile, 'utf8')
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as RunEvent);
        const data = events.find((event) => typeof event.data?.pid === 'number')?.data;
        if (typeof data?.pid !== 'number') return undefined;
        return { pid: data.pid, startTime: typeof data.startTime === 'string' ? data.startTime : undefined };
      });
      assert.equal(isSameProcessAlive(worker), true);
      await client.close();

      // To the server alone: the exec helper's cancel() would also signal the worker, a descendant, itself.
      process.kill(server.pid as number, 'SIGTERM');
      const result = await server.result;
      assert.deepEqual([result.exitCode, result.signal], [0, null], stderr);
      assert.match(stderr, /shutting down \(SIGTERM\)/);
      assert.equal(existsSync(infoFile), false, 'http.json is removed on exit');
      assert.equal(isSameProcessAlive(worker), false, 'no worker outlives the server');
      await store.refresh();
      assert.equal(store.get(runId).status, 'cancelled');
    } finally {
      await server.dispose();
    }
  });
});
