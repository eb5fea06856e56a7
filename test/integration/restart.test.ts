import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { openServices } from '../../src/mcp/services';
import { isGroupAlive, waitUntilGone } from '../support/processes';
import { CODEX_BIN, GEMINI_BIN, REPO_ROOT, scratchDir } from '../support/real-cli';

describe('a server killed mid-run', function () {
  this.timeout(60_000);
  let scratch: string;

  before(() => {
    scratch = scratchDir('restart');
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('leaves the run interrupted and no process behind after a restart', async () => {
    const root = path.join(scratch, 'workspace');
    mkdirSync(root);
    writeFileSync(path.join(root, 'README.md'), '# restart\n');
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [
        path.join(REPO_ROOT, 'out', 'src', 'cli', 'main.js'),
        'serve',
        '--workspace',
        root,
        '--offline',
        '--codex-path',
        CODEX_BIN,
        '--gemini-path',
        GEMINI_BIN,
      ],
      stderr: 'ignore',
    });
    const client = new Client({ name: 'restart-test', version: '1' });
    await client.connect(transport);
    const serverPid = transport.pid as number;
    const started = await client.callTool({
      name: 'strategy_run',
      arguments: {
        agentId: 'agent-r',
        strategy: 'single_worker',
        prompt: '[[scenario:hang]] Hang until killed.',
      },
    });
    const runId = (started.structuredContent as { run: { id: string } }).run.id;
    const eventsFile = path.join(root, '.tandem', 'runs', runId, 'events.jsonl');
    let workerPid: number | undefined;
    for (let i = 0; i < 100 && workerPid === undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const events = existsSync(eventsFile) ? readFileSync(eventsFile, 'utf8').trim().split('\n') : [];
      for (const line of events) {
        const pid = (JSON.parse(line) as { data?: { pid?: unknown } }).data?.pid;
        if (typeof pid === 'number') workerPid = pid;
      }
    }
    assert.ok(workerPid !== undefined, 'the worker started and its pid was recorded');

    // A crash: no chance to clean up. The worker has a process group of its own, so it lives on.
    process.kill(serverPid, 'SIGKILL');
    assert.deepEqual(await waitUntilGone([serverPid], 5000), []);
    await client.close().catch(() => undefined);
    assert.equal(isGroupAlive(workerPid), true, 'the orphaned worker outlived the server');
    assert.ok(
      readdirSync(path.join(root, '.tandem', 'isolation', 'copies')).length > 0,
      'the writer copy was left',
    );

    const restarted = await openServices({
      workspaceRoot: root,
      cliPaths: { codex: CODEX_BIN, gemini: GEMINI_BIN },
    });
    try {
      const run = restarted.store.get(runId);
      assert.equal(run.status, 'interrupted');
      assert.match(run.outcome ?? '', /Interrupted: the server running it \(pid \d+\) stopped/);
      assert.match(run.outcome ?? '', /1 leftover process group\(s\) killed/);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(isGroupAlive(workerPid), false, 'the orphaned worker group was killed');
      assert.deepEqual(
        readdirSync(path.join(root, '.tandem', 'isolation', 'copies')),
        [],
        'the orphan copy was removed',
      );
      const last = (await restarted.store.readEvents(runId)).pop();
      assert.equal(last?.type, 'run_finished');
    } finally {
      await restarted.close();
    }
  });
});
