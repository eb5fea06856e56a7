// The dashboard's run detail carries what summary.md shows: for a finished run it is built from the same
// summary.json, so every value `tandem-mcp runs show ID --markdown` prints (status, who asked, the playbook and
// its version, each step's worker, model, status, duration, exit, tokens, verdict, findings and command, the
// decisions, the changes with their files' line counts) is in the detail message with the same value. A live
// run's detail is built from the files it keeps so far, and without a summary it says the same.
import assert from 'node:assert/strict';
import { unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadRunDetail } from '../../src/extension/dashboard-detail';
import { parseToWebview, type DetailMessage, type StepView } from '../../src/extension/dashboard-protocol';
import type { RunRecord, StepRecord } from '../../src/orchestrator/model';
import { builtinPlaybook } from '../../src/orchestrator/playbook/library';
import { resolveInputs } from '../../src/orchestrator/playbook/schema';
import type { RunSummary } from '../../src/orchestrator/summary';
import type { StepRequestInput, StepRunOptions, WorkerEvent } from '../../src/workers/contract';
import type { FakeWorkerAdapter } from '../support/fake-adapter';
import { openHarness, type McpHarness } from '../support/mcp-harness';

const FOLDER_KEY = 'file:///workspace';
const SECRET = 'sk-proj-Q9w8E7r6T5y4U3i2O1p0Zx';
/** A config argument long enough to need the collapsible block, as real CLIs get with `-c` overrides. */
const LONG_ARG = `mcp_servers.tandem.url=http://127.0.0.1:1/mcp?${'segment/'.repeat(40)}end`;

/** Makes the fake report the command a real CLI gets: flags, a long config value and a key to redact. */
function reportCommand(adapter: FakeWorkerAdapter): void {
  const runStep = adapter.runStep.bind(adapter);
  adapter.runStep = async (input: StepRequestInput, options: StepRunOptions = {}) => {
    const argv = [
      `/opt/bin/${adapter.kind}`,
      'exec',
      '--model',
      input.model ?? adapter.defaultModel,
      '-c',
      LONG_ARG,
      '--api-key',
      SECRET,
    ];
    const onEvent = (event: WorkerEvent): void =>
      options.onEvent?.(event.type === 'started' ? { ...event, argv } : event);
    const result = await runStep(input, { ...options, onEvent });
    return { ...result, argv };
  };
}

/** The duration as summary.md prints it. */
function mdDuration(ms: number | null): string {
  if (ms === null) return '-';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The exit column of summary.md: the signal, else the exit code. */
function mdExit(step: StepView): string {
  return step.signal ?? (step.exitCode === null ? '-' : String(step.exitCode));
}

/** Lines of one `## Title` section of summary.md. */
function section(markdown: string, title: string): string[] {
  const lines = markdown.split('\n');
  const start = lines.indexOf(`## ${title}`);
  assert.ok(start >= 0, `summary.md has a ${title} section`);
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((line) => line.startsWith('## '));
  return (end < 0 ? rest : rest.slice(0, end)).filter((line) => line !== '');
}

async function runHandoff(harness: McpHarness): Promise<RunRecord> {
  const loaded = builtinPlaybook('handoff');
  assert.ok(loaded);
  const { orchestrator } = harness.services;
  const started = await orchestrator.startPlaybook({
    owner: 'agent-dashboard',
    task:
      '[[scenario:write path=README.md content=first%0Asecond%0Athird%0A]] ' +
      '[[role:reviewer verdict=approve findings=medium,low]] ' +
      'Rewrite the README in three lines.',
    playbook: loaded.playbook,
    source: loaded.source,
    hash: loaded.hash,
    inputs: resolveInputs(loaded.playbook, { rounds: 1 }, loaded.source),
    models: { codex: 'writer-model-a', gemini: 'reviewer-model-b' },
  });
  const finished = await orchestrator.finished(started.id);
  assert.equal(finished.status, 'succeeded', finished.outcome ?? '');
  return finished;
}

describe('the dashboard detail of a finished run', function () {
  this.timeout(30_000);
  let harness: McpHarness;
  let run: RunRecord;
  let summary: RunSummary;
  let markdown: string;
  let detail: DetailMessage;
  const logged: string[] = [];

  before(async function () {
    harness = await openHarness();
    reportCommand(harness.fakes.codex);
    reportCommand(harness.fakes.gemini);
    run = await runHandoff(harness);
    const { store } = harness.services;
    summary = JSON.parse((await store.readRunFile(run.id, 'summary.json')) ?? 'null') as RunSummary;
    markdown = (await store.readRunFile(run.id, 'summary.md')) ?? '';
    assert.ok(summary && markdown, 'the run wrote summary.json and summary.md');
    detail = await loadRunDetail(store, FOLDER_KEY, run.id, (line) => logged.push(line), new Date());
  });

  after(async function () {
    await harness?.close();
  });

  const summaryStep = (index: number): StepRecord => {
    const found = summary.steps.find((candidate) => candidate.index === index);
    assert.ok(found, `step ${index} in summary.json`);
    return found;
  };

  it('is built from summary.json and passes the protocol unchanged', function () {
    assert.equal(detail.source, 'summary');
    assert.deepEqual(logged, [], 'nothing was logged: every file read');
    assert.equal(detail.folderKey, FOLDER_KEY);
    assert.deepEqual(parseToWebview(JSON.parse(JSON.stringify(detail))), detail);
  });

  it('has the header summary.md shows: status, outcome, who asked, the playbook and version, times, decision', function () {
    const { run: view } = detail;
    assert.equal(view.id, summary.run.id);
    assert.equal(view.status, 'succeeded');
    assert.equal(view.outcome, summary.run.outcome);
    assert.equal(view.owner, 'agent-dashboard');
    assert.equal(view.strategy, 'playbook:handoff');
    assert.deepEqual(view.playbook, summary.run.playbook);
    assert.match(view.playbook?.hash ?? '', /^[0-9a-f]{12}$/);
    assert.equal(view.createdAt, summary.run.createdAt);
    assert.equal(view.endedAt, summary.run.endedAt);
    assert.equal(view.stepCount, summary.run.stepCount);
    assert.equal(view.decision, summary.run.decision);
    assert.equal(view.applied, true);
    assert.equal(view.task, summary.run.prompt);
    // summary.md's header, line by line, from the detail's values.
    const header = [
      `# Run ${view.id}`,
      `- **Status:** ${view.status} — ${view.outcome}`,
      `- **Asked by:** ${view.owner}`,
      `- **What:** ${view.strategy} (version ${view.playbook?.hash}, from ${view.playbook?.source})`,
      `- **Created:** ${view.createdAt}, ended ${view.endedAt}`,
      `- **Steps:** ${view.stepCount}`,
      `- **Decision:** ${view.decision}`,
      `- **Applied to the workspace:** ${view.applied ? 'yes' : 'no'}`,
      ['## Task', '', '````text', view.task, '````'].join('\n'),
    ];
    for (const line of header) assert.ok(markdown.includes(line), `summary.md has ${JSON.stringify(line)}`);
  });

  it("has each step's worker, model, status, duration, exit, tokens, verdict and findings, as summary.md's table", function () {
    assert.deepEqual(
      detail.steps.map((step) => [step.index, step.name, step.role, step.workerKind, step.model]),
      [
        [1, 'write', 'writer', 'codex', 'writer-model-a'],
        [2, 'review', 'reviewer', 'gemini', 'reviewer-model-b'],
      ],
    );
    const rows = section(markdown, 'Steps').filter((line) => /^\| \d+ \|/.test(line));
    assert.equal(rows.length, detail.steps.length, 'one table row per step, in both');
    for (const step of detail.steps) {
      const recorded = summaryStep(step.index);
      assert.equal(step.status, recorded.status);
      assert.equal(step.durationMs, recorded.durationMs);
      assert.equal(step.exitCode, recorded.exitCode);
      assert.equal(step.signal, recorded.signal);
      assert.equal(step.tokens, recorded.tokens);
      assert.equal(step.verdict, recorded.verdict);
      const row = [
        '',
        step.index,
        step.name,
        step.role,
        step.workerKind,
        step.model,
        step.status,
        mdDuration(step.durationMs),
        mdExit(step),
        step.tokens ?? '-',
        step.verdict ?? '-',
        step.findings.length,
        '',
      ]
        .join(' | ')
        .trim();
      assert.ok(rows.includes(row), `summary.md's table has the row ${row}; it has ${rows.join('\n')}`);
    }
    const review = detail.steps.find((step) => step.name === 'review');
    assert.equal(review?.verdict, 'approve');
    assert.equal(review?.tokens, 15);
  });

  it("has each step's findings with severity, title, file and detail, as summary.md lists them", function () {
    for (const step of detail.steps) {
      const recorded = summaryStep(step.index);
      assert.deepEqual(
        step.findings.map(({ severity, title, detail: more, file }) => ({
          severity,
          title,
          detail: more,
          file,
        })),
        recorded.findings.map(({ severity, title, detail: more, file }) => ({
          severity,
          title,
          detail: more,
          file,
        })),
        `the findings of ${step.name}, most severe first in both`,
      );
      for (const finding of step.findings) {
        const line = `- Finding (${finding.severity}): ${finding.title}${finding.file ? ` in ${finding.file}` : ''}${finding.detail ? ` — ${finding.detail}` : ''}`;
        assert.ok(markdown.includes(line), `summary.md has ${line}`);
      }
    }
    assert.deepEqual(
      detail.steps.find((step) => step.name === 'review')?.findings.map((finding) => finding.severity),
      ['medium', 'low'],
    );
  });

  it("has each step's whole command, redacted, as summary.md's Command line, and its reply", function () {
    for (const step of detail.steps) {
      const recorded = summaryStep(step.index);
      assert.deepEqual(step.argv, recorded.argv, `the command of ${step.name}, whole`);
      assert.ok(step.argv.includes(LONG_ARG), 'the long argument is not cut');
      assert.ok(step.argv.includes('[REDACTED]'), 'the key is masked');
      assert.ok(
        markdown.includes(`- Command: \`${step.argv.join(' ')}\``),
        `summary.md shows the same command for ${step.name}`,
      );
      assert.equal(step.reply, recorded.finalMessage.slice(0, 4000));
      if (step.reply) assert.ok(markdown.includes(['````text', step.reply, '````'].join('\n')));
      assert.equal(step.errorMessage, recorded.errorMessage);
    }
    assert.equal(JSON.stringify(detail).includes(SECRET), false, 'no secret reaches the webview');
  });

  it("has each writer's diff stats and the files it changed", function () {
    const write = detail.steps.find((step) => step.name === 'write');
    assert.deepEqual(write?.diffStats, summaryStep(1).diffStats);
    assert.deepEqual(write?.diffStats, { files: 1, insertions: 3, deletions: 1 });
    assert.deepEqual(write?.filesChanged, summaryStep(1).filesChanged);
    // The markdown says the same numbers.
    assert.match(markdown, /^- Changed: 1 file, \+3 -1$/m);
  });

  it('has the playbook inputs summary.md prints', function () {
    assert.deepEqual(detail.inputs, [
      { name: 'writer', value: '"codex"' },
      { name: 'rounds', value: '1' },
    ]);
    const inputs = Object.fromEntries(
      (detail.inputs ?? []).map(({ name, value }) => [name, JSON.parse(value) as unknown]),
    );
    assert.deepEqual(inputs, summary.playbookInputs);
    assert.ok(markdown.includes(`- Inputs: \`${JSON.stringify(inputs)}\``));
  });

  it('has every decision with its time and reason, in order, as the Decisions section', function () {
    assert.deepEqual(detail.decisions, summary.decisions);
    const lines = section(markdown, 'Decisions');
    assert.deepEqual(
      lines,
      detail.decisions.map((decision) => `- ${decision.time}: ${decision.message}`),
    );
    assert.ok(detail.decisions.length >= 1, 'the handoff decides on applying');
    // The apply decision names the review that allowed it and what it found.
    assert.equal(detail.decisions.at(-1)?.message, detail.run.decision);
    assert.match(
      detail.run.decision ?? '',
      /^Applied write by codex \(1 file, \+3 -1\): review by gemini approved/,
    );
  });

  it('has the changes with their stats, patch and applied flag, and each file with its + and -', function () {
    // The dashboard does not show steering files yet (summary.md and the reviewer's prompt do); none here.
    assert.deepEqual(
      summary.changes.map((change) => change.steeringFiles),
      [[]],
    );
    assert.deepEqual(
      detail.changes,
      summary.changes.map(({ steeringFiles: _steering, ...shown }) => shown),
    );
    assert.deepEqual(detail.changes, [
      {
        label: 'write',
        stats: { files: 1, insertions: 3, deletions: 1 },
        files: [{ path: 'README.md', change: 'modified', insertions: 3, deletions: 1 }],
        patchFile: 'changes-write.patch',
        patchTruncated: false,
        applied: true,
      },
    ]);
    const lines = section(markdown, 'Changes');
    const rows = lines.filter((line) => line.startsWith('| ') && !line.startsWith('| from'));
    const files = lines.filter((line) => line.startsWith('- '));
    assert.deepEqual(
      rows,
      detail.changes.map(
        (change) =>
          `| ${change.label} | ${change.stats.files} | ${change.stats.insertions} | ${change.stats.deletions} | ${change.applied ? 'yes' : 'no'} | ${change.patchFile ?? '-'}${change.patchTruncated ? ' (cut)' : ''} |`,
      ),
    );
    assert.deepEqual(
      files,
      detail.changes.flatMap((change) =>
        change.files.map(
          (file) =>
            `- ${change.label}: ${file.change} \`${file.path}\` (+${file.insertions} -${file.deletions})`,
        ),
      ),
    );
  });

  it('without summary.json, the live files give the same detail', async function () {
    const { store } = harness.services;
    const dir = store.runDir(run.id);
    const kept = await store.readRunFile(run.id, 'summary.json');
    await unlink(path.join(dir, 'summary.json'));
    try {
      const live = await loadRunDetail(store, FOLDER_KEY, run.id, (line) => logged.push(line), new Date());
      assert.equal(live.source, 'live');
      assert.deepEqual(
        { ...live, source: 'summary', run: { ...live.run, durationMs: detail.run.durationMs } },
        detail,
      );
    } finally {
      await writeFile(path.join(dir, 'summary.json'), kept ?? '');
    }
  });

  it('a summary.json that does not read is logged, and the live files are shown', async function () {
    const { store } = harness.services;
    const file = path.join(store.runDir(run.id), 'summary.json');
    const kept = await store.readRunFile(run.id, 'summary.json');
    await writeFile(file, JSON.stringify({ ...summary, steps: [{ index: 'one' }] }));
    const lines: string[] = [];
    try {
      const live = await loadRunDetail(store, FOLDER_KEY, run.id, (line) => lines.push(line), new Date());
      assert.equal(live.source, 'live');
      assert.deepEqual(live.decisions, detail.decisions);
      assert.equal(live.steps.length, 2);
      assert.match(
        lines.join('\n'),
        new RegExp(`summary\\.json of ${run.id} does not match its schema \\(steps\\.0`),
      );
    } finally {
      await writeFile(file, kept ?? '');
    }
  });
});

describe('the dashboard detail of a running run', function () {
  this.timeout(30_000);
  let harness: McpHarness;

  before(async function () {
    harness = await openHarness();
    reportCommand(harness.fakes.codex);
  });

  after(async function () {
    await harness?.close();
  });

  it('is built from its files so far and the step in flight, with its command; then from its summary', async function () {
    const { orchestrator, store } = harness.services;
    const started = await orchestrator.startStrategy({
      owner: 'agent-live',
      strategy: 'single_worker',
      prompt: '[[scenario:hang]] Wait until cancelled.',
    });
    try {
      let detail: DetailMessage | undefined;
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        // As the dashboard does: the orchestrator's records of the steps in flight, which know the command.
        const running = orchestrator
          .activeSteps()
          .filter(({ runId }) => runId === started.id)
          .map(({ step }) => step);
        detail = await loadRunDetail(store, FOLDER_KEY, started.id, () => undefined, new Date(), running);
        if (detail.steps[0]?.status === 'running' && detail.steps[0].argv.length > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(detail);
      assert.equal(detail.source, 'live');
      assert.equal(detail.run.status, 'running');
      assert.equal(detail.run.endedAt, null);
      assert.deepEqual(detail.run.playbook, started.playbook, 'a strategy runs its built-in playbook');
      assert.equal(detail.steps[0]?.status, 'running');
      assert.deepEqual(detail.steps[0]?.argv.slice(0, 2), ['/opt/bin/codex', 'exec']);
      assert.ok(detail.inputs !== null, 'the inputs come from playbook.json while it runs');
      assert.deepEqual(detail.changes, []);
      assert.deepEqual(parseToWebview(JSON.parse(JSON.stringify(detail))), detail);
    } finally {
      await orchestrator.cancel(started.id, 'agent-live');
      await orchestrator.finished(started.id);
    }
    const after = await loadRunDetail(store, FOLDER_KEY, started.id, () => undefined, new Date());
    assert.equal(after.source, 'summary', 'once it ends, the summary it wrote');
    assert.equal(after.run.status, 'cancelled');
  });
});
