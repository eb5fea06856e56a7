// Issue 15, "a reviewer can be blinded": a writer's change to a file that steers git, an agent or a tool is
// named to the reviewer and in the run summary, and the reviewer reads the text of the whole change even when
// the writer adds a .gitattributes that marks everything -diff.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { builtinPlaybook } from '../../src/orchestrator/playbook/library';
import { resolveInputs } from '../../src/orchestrator/playbook/schema';
import { reviewerPrompt } from '../../src/orchestrator/prompts';
import { steeringFiles, steeringReason } from '../../src/orchestrator/steering-files';
import { testGit } from '../support/git';
import { openHarness, type McpHarness } from '../support/mcp-harness';

describe('steering files', function () {
  it('names the files that steer git, an agent CLI, Tandem, an editor or a tool, at any depth', function () {
    const steering = [
      '.gitattributes',
      'sub/dir/.gitattributes',
      '.gitmodules',
      '.gitignore',
      '.github/workflows/ci.yml',
      '.gemini/settings.json',
      'pkg/.gemini/settings.json',
      '.codex/config.toml',
      '.tandem/playbooks/p.json',
      '.env',
      '.env.local',
      '.envrc',
      '.vscode/tasks.json',
      'team.code-workspace',
      'AGENTS.md',
      'docs/GEMINI.md',
      '.mcp.json',
      '.npmrc',
      '.husky/pre-commit',
    ];
    for (const file of steering) assert.ok(steeringReason(file), `${file} steers something`);
    const plain = [
      'src/app.ts',
      'README.md',
      'docs/env.md',
      'environment.ts',
      'src/git.ts',
      'gitattributes.md',
    ];
    for (const file of plain) assert.equal(steeringReason(file), undefined, `${file} is plain content`);
    assert.deepEqual(
      steeringFiles(['src/app.ts', '.gitattributes']).map((file) => file.path),
      ['.gitattributes'],
    );
  });

  it("puts the steering files of a change ahead of the diff in a reviewer's prompt, and nothing for plain code", function () {
    const options = { task: 't', writerKind: 'codex', writerMessage: 'm', diff: 'd', diffTruncated: false };
    const prompt = reviewerPrompt({ ...options, changedPaths: ['src/a.ts', '.gemini/settings.json'] });
    const attention = prompt.indexOf('Attention:');
    assert.ok(attention > 0 && attention < prompt.indexOf('The change:'), prompt);
    assert.match(prompt, /^- \.gemini\/settings\.json: settings or instructions of an agent CLI$/m);
    assert.ok(!prompt.includes('- src/a.ts'), prompt);
    assert.ok(!reviewerPrompt({ ...options, changedPaths: ['src/a.ts'] }).includes('Attention:'));
  });

  it("names the files a reviewer's diff carries as binary, whose content it cannot read there", function () {
    const options = { task: 't', writerKind: 'codex', writerMessage: 'm', diff: 'd', diffTruncated: false };
    const prompt = reviewerPrompt({ ...options, changedPaths: ['src/nul.js'], binaryPaths: ['src/nul.js'] });
    assert.ok(prompt.indexOf('binary data') < prompt.indexOf('The change:'), prompt);
    assert.match(prompt, /^- src\/nul\.js$/m);
    assert.ok(!reviewerPrompt({ ...options, binaryPaths: [] }).includes('binary data'));
  });

  describe('a writer that adds a .gitattributes marking everything -diff (git workspace, handoff)', function () {
    this.timeout(60_000);
    const ATTRIBUTES = '* -diff\n';
    let root = '';
    let harness: McpHarness;
    let reviewPrompt = '';
    let summary: { changes: { steeringFiles: { path: string; reason: string }[] }[] };
    let markdown = '';

    before(async function () {
      root = await realpath(await mkdtemp(path.join(os.tmpdir(), 'tandem-steering-')));
      await testGit(root, ['init', '-q']);
      await writeFile(path.join(root, 'README.md'), '# Test workspace\n');
      await testGit(root, ['add', '-A']);
      await testGit(root, ['commit', '-q', '-m', 'initial']);
      harness = await openHarness({ root });
      const { store } = harness.services;
      const started = await handoff(`.gitattributes content=${encodeURIComponent(ATTRIBUTES)}`);
      reviewPrompt = await reviewPromptOf(started.id);
      summary = JSON.parse((await store.readRunFile(started.id, 'summary.json')) ?? '{}') as typeof summary;
      markdown = (await store.readRunFile(started.id, 'summary.md')) ?? '';
      // The git backend made the writer's copy (its shadow repository is there).
      assert.ok(existsSync(path.join(root, '.tandem', 'isolation', 'repositories')));
    });

    async function handoff(write: string): Promise<{ id: string }> {
      const loaded = builtinPlaybook('handoff');
      assert.ok(loaded);
      const { orchestrator } = harness.services;
      const started = await orchestrator.startPlaybook({
        owner: 'agent-auditor',
        task: `[[scenario:write path=${write}]] [[role:reviewer verdict=approve]] Do it.`,
        playbook: loaded.playbook,
        source: loaded.source,
        hash: loaded.hash,
        inputs: resolveInputs(loaded.playbook, { rounds: 1 }, loaded.source),
      });
      const finished = await orchestrator.finished(started.id);
      assert.equal(finished.status, 'succeeded', finished.outcome ?? '');
      return started;
    }

    async function reviewPromptOf(runId: string): Promise<string> {
      const { store } = harness.services;
      const steps = JSON.parse((await store.readRunFile(runId, 'steps.json')) ?? '[]') as {
        name: string;
        role: string;
      }[];
      const review = steps.find((step) => step.role === 'reviewer');
      assert.ok(review, JSON.stringify(steps));
      return (await store.readRunFile(runId, `prompt-${review.name}.txt`)) ?? '';
    }

    after(async function () {
      await harness?.close({ keepRoot: true });
      await rm(root, { recursive: true, force: true });
    });

    it('shows the reviewer the text of the .gitattributes, not a binary patch', function () {
      assert.ok(!reviewPrompt.includes('GIT binary patch'), reviewPrompt);
      assert.ok(reviewPrompt.includes('+++ b/.gitattributes\n@@ -0,0 +1 @@\n+* -diff\n'), reviewPrompt);
    });

    it('calls the .gitattributes out in the prompt, in summary.json and in summary.md', function () {
      assert.match(reviewPrompt, /^- \.gitattributes: git reads it/m);
      assert.deepEqual(
        summary.changes.flatMap((change) => change.steeringFiles.map((file) => file.path)),
        ['.gitattributes'],
      );
      assert.match(
        markdown,
        /### Files that steer git, an agent or a tool\n\n- write: `\.gitattributes` — git reads it/,
      );
    });

    it('applies what the reviewer approved', async function () {
      assert.equal(await readFile(path.join(root, '.gitattributes'), 'utf8'), ATTRIBUTES);
    });

    it('names to the reviewer a source file a NUL byte turned binary, in the workspace that now has * -diff', async function () {
      const started = await handoff(`src/run.js content=${encodeURIComponent('// \0\nrun();\n')}`);
      const prompt = await reviewPromptOf(started.id);
      assert.ok(prompt.includes('GIT binary patch'), 'a NUL byte makes it binary by content');
      assert.match(prompt, /binary data, not as text[\s\S]*^- src\/run\.js$/m);
    });
  });
});
