// A serve process killed mid-run (SIGKILL: no cleanup of its own), then a restart on the same workspace:
// the run ends interrupted, its orphaned worker group is killed and its isolated copy removed, for both
// isolation backends (plain copies, and git worktrees in a repository of its own).
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { testGit } from '../support/git';
import { openServices } from '../../src/mcp/services';
import { fixture, isGroupAlive, killQuietly, waitUntilGone } from '../support/processes';
import { CODEX_BIN, GEMINI_BIN, REPO_ROOT, scratchDir } from '../support/real-cli';

interface CrashedRun {
  runId: string;
  workerPid: number;
}

/**
 * Starts `serve` on `root`, starts a single_worker run and waits until its worker's pid is recorded, then
 * kills the server with SIGKILL and checks that the worker's group outlived it.
 */
async function startRunAndCrash(root: string, codexPath: string, prompt: string): Promise<CrashedRun> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [
      path.join(REPO_ROOT, 'out', 'src', 'cli', 'main.js'),
      'serve',
      '--workspace',
      root,
      '--offline',
      '--codex-path',
      codexPath,
      '--gemini-path',
      GEMINI_BIN,
    ],
    stderr: 'ignore',
  });
  const client = new Client({ name: 'restart-test', version: '1' });
  await client.connect(transport);
  const serverPid = transport.pid as number;
  try {
    const started = await client.callTool({
      name: 'strategy_run',
      arguments: { agentId: 'agent-r', strategy: 'single_worker', prompt },
    });
    assert.notEqual(started.isError, true, JSON.stringify(started.content));
    const runId = (started.structuredContent as { run: { id: string } }).run.id;
    const eventsFile = path.join(root, '.tandem', 'runs', runId, 'events.jsonl');
    let workerPid: number | undefined;
    let events: string[] = [];
    for (let i = 0; i < 100 && workerPid === undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      events = existsSync(eventsFile) ? readFileSync(eventsFile, 'utf8').trim().split('\n') : [];
      for (const line of events) {
        const pid = (JSON.parse(line) as { data?: { pid?: unknown } }).data?.pid;
        if (typeof pid === 'number') workerPid = pid;
      }
    }
    assert.ok(workerPid !== undefined, `the worker started and its pid was recorded:\n${events.join('\n')}`);

    // A crash: no chance to clean up. The worker has a process group of its own, so it lives on.
    process.kill(serverPid, 'SIGKILL');
    assert.deepEqual(await waitUntilGone([serverPid], 5000), []);
    assert.equal(isGroupAlive(workerPid), true, 'the orphaned worker outlived the server');
    return { runId, workerPid };
  } finally {
    // Also when an assertion failed: a live server would keep mocha from ever exiting.
    killQuietly([serverPid]);
    await client.close().catch(() => undefined);
  }
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  return testGit(cwd, args);
}

describe('a server killed mid-run', function () {
  this.timeout(60_000);
  let scratch: string;
  const workerGroups: number[] = [];

  before(() => {
    scratch = scratchDir('restart');
  });
  after(() => {
    // What a failed test may leave: the groups are the fixtures' own, started by this test.
    for (const pgid of workerGroups) if (isGroupAlive(pgid)) killQuietly([-pgid]);
    rmSync(scratch, { recursive: true, force: true });
  });

  it('leaves the run interrupted and no process behind after a restart', async () => {
    const root = path.join(scratch, 'workspace');
    mkdirSync(root);
    writeFileSync(path.join(root, 'README.md'), '# restart\n');
    const { runId, workerPid } = await startRunAndCrash(
      root,
      CODEX_BIN,
      '[[scenario:hang]] Hang until killed.',
    );
    workerGroups.push(workerPid);
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

  describe('on a git repository of its own', function () {
    let root: string;

    beforeEach(async () => {
      // Under the system's temporary folder, outside this repository: isolation takes git worktrees here.
      root = mkdtempSync(path.join(os.tmpdir(), 'tandem-restart-git-'));
      writeFileSync(path.join(root, 'README.md'), '# restart on git\n');
      writeFileSync(path.join(root, '.gitignore'), '.tandem/\n');
      await git(root, 'init', '-q');
      await git(root, 'add', '-A');
      await git(root, 'commit', '-q', '-m', 'initial');
    });
    afterEach(() => rmSync(root, { recursive: true, force: true }));

    it("removes the crashed run's git worktree: gone from `git worktree list` and from the disk", async () => {
      // The worker hangs on its own (test/fixtures/hang-cli.cjs), not on the model that dies with the server.
      const { runId, workerPid } = await startRunAndCrash(
        root,
        fixture('hang-cli.cjs'),
        '[[scenario:hang]] Hang until killed.',
      );
      workerGroups.push(workerPid);
      const worktreesDir = path.join(root, '.tandem', 'isolation', 'worktrees');
      const left = readdirSync(worktreesDir).map((name) => path.join(worktreesDir, name));
      assert.equal(left.length, 1, 'the writer worktree was left');
      assert.ok(left[0]?.includes(runId), `the worktree is the run's (${left[0]})`);
      assert.equal(existsSync(path.join(root, '.tandem', 'isolation', 'copies')), false, 'no plain copy');
      // Worktrees belong to the shadow repository under the state dir, never to the user's.
      const shadows = path.join(root, '.tandem', 'isolation', 'repositories');
      const shadow = path.join(shadows, readdirSync(shadows)[0] ?? '');
      const before = await git(root, `--git-dir=${shadow}`, 'worktree', 'list', '--porcelain');
      assert.ok(before.includes(`worktree ${left[0]}\n`), `git lists the run's worktree:\n${before}`);
      const user = await git(root, 'worktree', 'list', '--porcelain');
      assert.equal(user.match(/^worktree /gm)?.length, 1, `only the user's own worktree:\n${user}`);

      const restarted = await openServices({
        workspaceRoot: root,
        cliPaths: { codex: fixture('hang-cli.cjs'), gemini: GEMINI_BIN },
      });
      try {
        const run = restarted.store.get(runId);
        assert.equal(run.status, 'interrupted');
        assert.match(run.outcome ?? '', /; 1 leftover process group\(s\) killed\.$/);
        assert.deepEqual(await waitUntilGone([workerPid], 5000), []);
        assert.equal(isGroupAlive(workerPid), false, 'the worker and its grandchild were killed');
        const after = await git(root, `--git-dir=${shadow}`, 'worktree', 'list', '--porcelain');
        assert.equal(after.includes(runId), false, `git no longer lists the run's worktree:\n${after}`);
        assert.equal(after.match(/^worktree /gm)?.length, 1, 'only the bare shadow itself is left');
        assert.equal(existsSync(left[0] as string), false, 'its folder is gone');
        assert.deepEqual(readdirSync(worktreesDir), []);
      } finally {
        await restarted.close();
      }
    });
  });
});
