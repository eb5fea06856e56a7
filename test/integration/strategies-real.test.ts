import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runProcess } from '../../src/core/exec';
import { openServices, type TandemServices } from '../../src/mcp/services';
import type { RunRecord, StrategyName } from '../../src/orchestrator/model';
import type { StrategyOptions } from '../../src/orchestrator/orchestrator';
import type { RunSummary } from '../../src/orchestrator/summary';
import { OfflineModelServer } from '../../src/offline/model-server';
import { CODEX_BIN, GEMINI_BIN, scratchDir } from '../support/real-cli';
import { isGroupAlive } from '../support/processes';

async function git(cwd: string, ...args: string[]): Promise<string> {
  const result = await runProcess({
    command: 'git',
    args: ['-c', 'user.name=Test', '-c', 'user.email=test@example.invalid', ...args],
    cwd,
    env: { set: { GIT_CONFIG_NOSYSTEM: '1' } },
  });
  assert.equal(result.exitCode, 0, result.stderr.text);
  return result.stdout.text;
}

describe('the five strategies with the real CLIs against the offline model', function () {
  this.timeout(90_000);
  let scratch: string;
  let root: string;
  let model: OfflineModelServer;
  let services: TandemServices;
  let initialHead = '';

  before(async () => {
    scratch = scratchDir('strategies');
    root = path.join(scratch, 'workspace');
    mkdirSync(path.join(root, 'src'), { recursive: true });
    writeFileSync(path.join(root, 'README.md'), '# sample\n');
    writeFileSync(path.join(root, 'src', 'app.js'), 'module.exports = 1;\n');
    // A git repository: writers get worktrees, and the user's index and HEAD must stay untouched.
    await git(root, 'init', '-q');
    await git(root, 'add', '-A');
    await git(root, 'commit', '-q', '-m', 'initial');
    initialHead = (await git(root, 'rev-parse', 'HEAD')).trim();
    model = await OfflineModelServer.start();
    services = await openServices({
      workspaceRoot: root,
      endpoint: { type: 'offline', openaiBaseUrl: model.openaiBaseUrl, geminiBaseUrl: model.geminiBaseUrl },
      cliPaths: { codex: CODEX_BIN, gemini: GEMINI_BIN },
    });
  });
  after(async () => {
    await services.close();
    await model.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  async function run(
    strategy: StrategyName,
    prompt: string,
    options: StrategyOptions = {},
  ): Promise<{ record: RunRecord; summary: RunSummary }> {
    const started = await services.orchestrator.startStrategy({
      owner: 'tester',
      strategy,
      prompt,
      ...options,
    });
    const record = await services.orchestrator.finished(started.id);
    const summaryText = await services.store.readRunFile(record.id, 'summary.json');
    assert.ok(summaryText, 'summary.json was written');
    assert.ok(existsSync(path.join(services.store.runDir(record.id), 'summary.md')));
    return { record, summary: JSON.parse(summaryText) as RunSummary };
  }

  it('single_worker: codex writes and the change lands in the workspace', async () => {
    const { record, summary } = await run(
      'single_worker',
      '[[scenario:write path=single.txt content=one]] Add single.txt.',
    );
    assert.equal(record.status, 'succeeded', record.outcome ?? '');
    assert.equal(record.applied, true);
    assert.equal(readFileSync(path.join(root, 'single.txt'), 'utf8'), 'one');
    assert.deepEqual(
      summary.steps.map((step) => [step.name, step.workerKind, step.role, step.status]),
      [['write', 'codex', 'writer', 'succeeded']],
    );
    assert.deepEqual(summary.steps[0]?.filesChanged, [{ path: 'single.txt', change: 'added' }]);
  });

  it('codex_writes_gemini_reviews: gemini reviews the diff, approves, and the change is applied', async () => {
    model.clearLog();
    const { record, summary } = await run(
      'codex_writes_gemini_reviews',
      '[[scenario:write path=reviewed.txt content=two]] Add reviewed.txt.',
    );
    assert.equal(record.status, 'succeeded', record.outcome ?? '');
    assert.equal(record.applied, true);
    assert.equal(readFileSync(path.join(root, 'reviewed.txt'), 'utf8'), 'two');
    assert.deepEqual(
      summary.steps.map((step) => [step.workerKind, step.role, step.verdict]),
      [
        ['codex', 'writer', null],
        ['gemini', 'reviewer', 'approve'],
      ],
    );
    const reviewRequest = model.requests.find(
      (request) => request.api === 'gemini' && request.prompt?.includes('role=reviewer'),
    );
    assert.match(
      reviewRequest?.prompt ?? '',
      /diff --git a\/reviewed\.txt b\/reviewed\.txt/,
      'the reviewer got the diff',
    );
  });

  it('gemini_writes_codex_reviews: a review that requests changes keeps the change out of the workspace', async () => {
    const { record, summary } = await run(
      'gemini_writes_codex_reviews',
      '[[scenario:write path=rejected.txt content=three]] [[role:reviewer verdict=request_changes]] Add rejected.txt.',
    );
    assert.equal(record.status, 'succeeded', record.outcome ?? '');
    assert.equal(record.applied, false);
    assert.equal(existsSync(path.join(root, 'rejected.txt')), false);
    assert.match(record.decision ?? '', /requested changes/);
    assert.equal(summary.steps[1]?.findings[0]?.severity, 'high');
    const patch = await services.store.readRunFile(record.id, 'changes-write.patch');
    assert.match(patch ?? '', /rejected\.txt/);
  });

  it('parallel_dual_write_review: both write in isolation, cross-review, and the approved change wins', async () => {
    const { record, summary } = await run(
      'parallel_dual_write_review',
      '[[role:writer cli=codex scenario=write path=both.txt content=from-codex]] ' +
        '[[role:writer cli=gemini scenario=write path=both.txt content=from-gemini]] ' +
        '[[role:reviewer of=codex verdict=request_changes]] Add both.txt.',
    );
    assert.equal(record.status, 'succeeded', record.outcome ?? '');
    assert.equal(record.applied, true);
    assert.equal(readFileSync(path.join(root, 'both.txt'), 'utf8'), 'from-gemini');
    assert.match(record.decision ?? '', /gemini/);
    assert.deepEqual(summary.changes.map((change) => [change.label, change.applied]).sort(), [
      ['write_codex', false],
      ['write_gemini', true],
    ]);
    assert.match(
      (await services.store.readRunFile(record.id, 'changes-write_codex.patch')) ?? '',
      /from-codex/,
    );
    assert.equal(summary.steps.length, 4);
  });

  it('security_redteam_pass: a critical finding blocks the change, a low one does not', async () => {
    const blocked = await run(
      'security_redteam_pass',
      '[[scenario:write path=risky.txt content=risky]] [[role:redteam findings=critical]] Add risky.txt.',
    );
    assert.equal(blocked.record.applied, false);
    assert.equal(existsSync(path.join(root, 'risky.txt')), false);
    assert.match(blocked.record.decision ?? '', /found 1 finding\(s\) at or above high/);
    assert.deepEqual(
      blocked.summary.steps.map((step) => [step.workerKind, step.role]),
      [
        ['codex', 'writer'],
        ['gemini', 'redteam'],
      ],
    );
    const passed = await run(
      'security_redteam_pass',
      '[[scenario:write path=safe.txt content=safe]] [[role:redteam findings=low]] Add safe.txt.',
    );
    assert.equal(passed.record.applied, true);
    assert.equal(readFileSync(path.join(root, 'safe.txt'), 'utf8'), 'safe');
  });

  it('a writer that fails ends the run failed with nothing applied', async () => {
    const { record } = await run(
      'codex_writes_gemini_reviews',
      '[[role:writer scenario=http500]] Add nothing.',
    );
    assert.equal(record.status, 'failed');
    assert.equal(record.applied, false);
    assert.match(record.outcome ?? '', /writer \(codex\) failed/);
  });

  it('a reviewer that fails ends the run partial, keeping the writer result', async () => {
    const { record, summary } = await run(
      'codex_writes_gemini_reviews',
      '[[scenario:write path=kept.txt content=kept]] [[role:reviewer scenario=http429]] Add kept.txt.',
    );
    assert.equal(record.status, 'partial');
    assert.equal(record.applied, false);
    assert.equal(summary.steps[1]?.status, 'rate_limited');
    assert.match((await services.store.readRunFile(record.id, 'changes-write.patch')) ?? '', /kept\.txt/);
  });

  it('cancellation kills every worker process of the run', async () => {
    const started = await services.orchestrator.startStrategy({
      owner: 'tester',
      strategy: 'parallel_dual_write_review',
      prompt: '[[role:writer scenario=hang]] Hang.',
    });
    // Wait until both writers have a process.
    let pids: number[] = [];
    for (let i = 0; i < 100 && pids.length < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const events = await services.store.readEvents(started.id);
      pids = events.flatMap((event) => (typeof event.data?.pid === 'number' ? [event.data.pid] : []));
    }
    assert.equal(pids.length, 2, 'both writers started');
    const cancelled = await services.orchestrator.cancel(started.id, 'tester');
    assert.equal(cancelled.status, 'cancelled');
    for (const pid of pids)
      assert.equal(isGroupAlive(pid), false, `the process group of ${pid} is still alive`);
  });

  it('leaves the user repository index, HEAD and branches as they were', async () => {
    const branches = (await git(root, 'branch', '--list')).trim().split('\n');
    assert.equal((await git(root, 'rev-parse', 'HEAD')).trim(), initialHead);
    assert.equal(branches.length, 1, `one branch only, got ${branches.join(', ')}`);
    assert.equal(
      (await git(root, 'worktree', 'list')).trim().split('\n').length,
      1,
      'no worktree left behind',
    );
    assert.equal(
      (await git(root, 'diff', '--cached', '--name-only')).trim(),
      '',
      'nothing staged in the user index',
    );
  });
});
