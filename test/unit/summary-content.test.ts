// What a finished run's summary.json and summary.md must tell an auditor: who asked, which playbook at which
// version, and for every step the worker, model, command (secrets masked), duration, exit, tokens, verdict and
// findings, then the files changed with their line counts and the decision with its reason.
import assert from 'node:assert/strict';
import type { RunRecord, StepRecord } from '../../src/orchestrator/model';
import { builtinPlaybook } from '../../src/orchestrator/playbook/library';
import { resolveInputs } from '../../src/orchestrator/playbook/schema';
import { renderSummaryMarkdown, type RunSummary } from '../../src/orchestrator/summary';
import type { StepRequestInput, StepRunOptions, WorkerEvent } from '../../src/workers/contract';
import type { FakeWorkerAdapter } from '../support/fake-adapter';
import { openHarness, type McpHarness } from '../support/mcp-harness';

// Both look like credentials to the redactor: an OpenAI-style key, and any value of a secret-named variable.
const KEY_IN_ARGV = 'sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2';
const ENV_VALUE_IN_ARGV = 'Zq7nOtAWord8812xyQ';
const KEY_IN_TASK = 'sk-test-9f8e7d6c5b4a3f2e1d0c9b8a';
const SECRETS = [KEY_IN_ARGV, ENV_VALUE_IN_ARGV, KEY_IN_TASK];

/**
 * The fake reports a command without secrets; this one reports the kind a CLI may be given (a key flag and
 * an env assignment), as an adapter that forgot to redact would. Whatever reaches the record must be masked.
 */
function reportSecretsInArgv(adapter: FakeWorkerAdapter): void {
  const runStep = adapter.runStep.bind(adapter);
  adapter.runStep = async (input: StepRequestInput, options: StepRunOptions = {}) => {
    const argv = [
      `fake-${adapter.kind}`,
      '--model',
      input.model ?? adapter.defaultModel,
      '--api-key',
      KEY_IN_ARGV,
      `OPENAI_API_KEY=${ENV_VALUE_IN_ARGV}`,
    ];
    const onEvent = (event: WorkerEvent): void =>
      options.onEvent?.(event.type === 'started' ? { ...event, argv } : event);
    const result = await runStep(input, { ...options, onEvent });
    return { ...result, argv };
  };
}

interface Summary {
  schemaVersion: number;
  run: RunRecord;
  steps: StepRecord[];
  changes: {
    label: string;
    stats: { files: number; insertions: number; deletions: number };
    files: { path: string; change: string; insertions: number; deletions: number }[];
    patchFile: string | null;
    applied: boolean;
  }[];
  decisions: { time: string; message: string }[];
  playbookInputs: Record<string, unknown> | null;
}

describe('summary content of a writer/reviewer run', function () {
  let harness: McpHarness;
  let summary: Summary;
  let json: string;
  let markdown: string;
  let hash: string;

  before(async function () {
    harness = await openHarness();
    reportSecretsInArgv(harness.fakes.codex);
    reportSecretsInArgv(harness.fakes.gemini);
    const loaded = builtinPlaybook('handoff');
    assert.ok(loaded);
    hash = loaded.hash;
    const { orchestrator, store } = harness.services;
    const started = await orchestrator.startPlaybook({
      owner: 'agent-auditor',
      task:
        '[[scenario:write path=README.md content=line%20one%0Aline%20two%0A]] ' +
        '[[role:reviewer verdict=approve findings=low]] ' +
        `Rewrite the README; the deploy key is ${KEY_IN_TASK}.`,
      playbook: loaded.playbook,
      source: loaded.source,
      hash: loaded.hash,
      inputs: resolveInputs(loaded.playbook, { rounds: 1 }, loaded.source),
      models: { codex: 'writer-model-1', gemini: 'reviewer-model-2' },
    });
    const finished = await orchestrator.finished(started.id);
    assert.equal(finished.status, 'succeeded', finished.outcome ?? '');
    json = (await store.readRunFile(started.id, 'summary.json')) ?? '';
    markdown = (await store.readRunFile(started.id, 'summary.md')) ?? '';
    summary = JSON.parse(json) as Summary;
  });

  after(async function () {
    await harness?.close();
  });

  const step = (name: string): StepRecord => {
    const found = summary.steps.find((candidate) => candidate.name === name);
    assert.ok(found, `step ${name} in summary.json`);
    return found;
  };

  it('names who asked and the playbook with its version hash, in both files', function () {
    assert.equal(summary.schemaVersion, 2);
    assert.equal(summary.run.owner, 'agent-auditor');
    assert.match(hash, /^[0-9a-f]{12}$/);
    assert.deepEqual(summary.run.playbook, { name: 'handoff', hash, source: 'builtin:handoff' });
    assert.deepEqual(summary.playbookInputs, { writer: 'codex', rounds: 1 });
    assert.match(markdown, /^- \*\*Asked by:\*\* agent-auditor$/m);
    assert.ok(
      markdown.includes(`- **What:** playbook:handoff (version ${hash}, from builtin:handoff)`),
      markdown,
    );
  });

  it('records every step with its worker, model, status, duration, exit code and tokens', function () {
    assert.deepEqual(
      summary.steps.map((s) => [
        s.index,
        s.name,
        s.role,
        s.workerKind,
        s.model,
        s.status,
        s.exitCode,
        s.tokens,
      ]),
      [
        [1, 'write', 'writer', 'codex', 'writer-model-1', 'succeeded', 0, 15],
        [2, 'review', 'reviewer', 'gemini', 'reviewer-model-2', 'succeeded', 0, 15],
      ],
    );
    for (const s of summary.steps) {
      assert.equal(typeof s.durationMs, 'number', s.name);
      assert.ok((s.durationMs as number) >= 0 && (s.durationMs as number) < 60_000, s.name);
      assert.ok(s.endedAt !== null && Date.parse(s.endedAt) >= Date.parse(s.startedAt), s.name);
    }
    // The table row carries the same values; the fake's steps are quick, so the duration reads in ms.
    for (const s of summary.steps) {
      const row = `| ${s.index} | ${s.name} | ${s.role} | ${s.workerKind} | ${s.model} | succeeded | ${Math.round(s.durationMs as number)} ms | 0 | 15 |`;
      assert.ok(markdown.includes(row), `summary.md has the row ${row}`);
    }
    assert.match(markdown, /^### 1\. write \(codex, writer\)$/m);
    assert.match(markdown, /^### 2\. review \(gemini, reviewer\)$/m);
  });

  it('keeps each command with its secrets masked, and no secret anywhere in either file', function () {
    for (const s of summary.steps) {
      assert.deepEqual(s.argv, [
        `fake-${s.workerKind}`,
        '--model',
        s.model,
        '--api-key',
        '[REDACTED]',
        'OPENAI_API_KEY=[REDACTED]',
      ]);
      assert.ok(
        markdown.includes(
          `- Command: \`fake-${s.workerKind} --model ${s.model} --api-key [REDACTED] OPENAI_API_KEY=[REDACTED]\``,
        ),
        `summary.md shows the masked command of ${s.name}`,
      );
    }
    // The task kept its words around the masked key.
    assert.match(summary.run.prompt, /the deploy key is \[REDACTED\]\.$/);
    assert.match(markdown, /the deploy key is \[REDACTED\]\./);
    for (const secret of SECRETS) {
      assert.equal(json.includes(secret), false, `summary.json holds ${secret}`);
      assert.equal(markdown.includes(secret), false, `summary.md holds ${secret}`);
    }
  });

  it('records the review verdict and its findings with severity, title and detail', function () {
    const review = step('review');
    assert.equal(review.verdict, 'approve');
    assert.deepEqual(review.findings, [
      {
        severity: 'low',
        title: 'Scripted finding 1',
        detail: 'The fake adapter reports scripted findings.',
      },
    ]);
    assert.equal(step('write').verdict, null);
    assert.match(markdown, /^\| 2 \| review \| .* \| approve \| 1 \|$/m);
    assert.match(markdown, /^\| 1 \| write \| .* \| - \| 0 \|$/m);
    assert.ok(
      markdown.includes('- Finding (low): Scripted finding 1 — The fake adapter reports scripted findings.'),
      markdown,
    );
  });

  it('lists the files changed with insertions and deletions per file', function () {
    const write = step('write');
    assert.deepEqual(write.diffStats, { files: 1, insertions: 2, deletions: 1 });
    assert.deepEqual(write.filesChanged, [{ path: 'README.md', change: 'modified' }]);
    assert.equal(summary.changes.length, 1);
    const [change] = summary.changes;
    assert.equal(change?.label, 'write');
    assert.deepEqual(change?.stats, { files: 1, insertions: 2, deletions: 1 });
    assert.deepEqual(change?.files, [{ path: 'README.md', change: 'modified', insertions: 2, deletions: 1 }]);
    assert.equal(change?.applied, true);
    assert.equal(change?.patchFile, 'changes-write.patch');
    assert.match(markdown, /^- Changed: 1 file, \+2 -1$/m);
    assert.match(markdown, /^\| write \| 1 \| 2 \| 1 \| yes \| changes-write\.patch \|$/m);
    assert.match(markdown, /^- write: modified `README\.md` \(\+2 -1\)$/m);
  });

  it('states the decision with its reason, in the run and in the decisions', function () {
    const decision = summary.run.decision ?? '';
    // The reason names the review that allowed it and what it found.
    assert.equal(
      decision,
      'Applied write by codex (1 file, +2 -1): review by gemini approved with 1 finding (worst: low).',
    );
    assert.equal(summary.run.applied, true);
    assert.equal(summary.decisions.at(-1)?.message, decision);
    assert.ok(markdown.includes(`- **Decision:** ${decision}`), markdown);
    assert.match(markdown, /^- \*\*Applied to the workspace:\*\* yes$/m);
    assert.ok(markdown.includes(`: ${decision}`), 'the decision is in the Decisions section');
  });
});

describe('renderSummaryMarkdown', function () {
  const base: RunRecord = {
    id: 'run-20260101T000000Z-abcdef',
    kind: 'dispatch',
    strategy: null,
    playbook: null,
    owner: 'agent-x',
    prompt: 'Fix it.',
    status: 'failed',
    createdAt: '2026-01-01T00:00:00.000Z',
    startedAt: '2026-01-01T00:00:00.000Z',
    endedAt: '2026-01-01T00:00:05.000Z',
    workers: ['w-1'],
    stepCount: 1,
    outcome: 'codex timed_out: no output',
    decision: null,
    applied: false,
    host: { pid: 1234, startTime: '99' },
  };
  const timedOut: StepRecord = {
    index: 1,
    name: 'write',
    role: 'writer',
    workerKind: 'codex',
    workerId: 'w-1',
    model: 'm|odel',
    status: 'timed_out',
    startedAt: '2026-01-01T00:00:00.000Z',
    endedAt: '2026-01-01T00:00:01.500Z',
    durationMs: 1500,
    exitCode: null,
    signal: 'SIGTERM',
    timedOut: true,
    argv: ['codex', 'exec'],
    finalMessage: '',
    errorMessage: 'no output before the idle timeout',
    tokens: null,
    diffStats: null,
    filesChanged: [],
    verdict: null,
    findings: [{ severity: 'high', title: 'A | B', detail: 'line one\nline two', file: 'src/a.ts' }],
    logDir: null,
  };
  const render = (steps: StepRecord[]): string =>
    renderSummaryMarkdown({
      schemaVersion: 2,
      run: base,
      steps,
      changes: [],
      decisions: [],
      playbookInputs: null,
      warnings: [],
    } satisfies RunSummary);

  it('shows the signal in the exit column, seconds past one second, and dashes for what is unknown', function () {
    assert.match(
      render([timedOut]),
      /^\| 1 \| write \| writer \| codex \| m\\\|odel \| timed_out \| 1\.5 s \| SIGTERM \| - \| - \| 1 \|$/m,
    );
    const unfinished = { ...timedOut, durationMs: null, signal: null, exitCode: 3 };
    assert.match(render([unfinished]), /\| timed_out \| - \| 3 \| - \| - \| 1 \|$/m);
  });

  it('keeps a finding on one line with its file and detail, and the error', function () {
    const markdown = render([timedOut]);
    assert.match(markdown, /^- Finding \(high\): A \\\| B in src\/a\.ts — line one line two$/m);
    assert.match(markdown, /^- Error: no output before the idle timeout$/m);
    assert.match(markdown, /^- \*\*Status:\*\* failed — codex timed_out: no output$/m);
    assert.match(markdown, /^- \*\*Decision:\*\* none$/m);
  });
});
