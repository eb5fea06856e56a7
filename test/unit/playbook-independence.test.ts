// A reviewer never reviews its own change, on the fake CLIs: after a writer falls back, the reviewer is chosen
// from who actually wrote (`otherThan`), a fixed reviewer that took the change over goes to the other CLI, a
// reviewer's own fallback never lands on the writer, and with no independent CLI left the run ends partial.
// Every such choice is a recorded decision at a fixed trace position, so replays stay identical.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { RunRecord } from '../../src/orchestrator/model';
import {
  TRACE_FILE,
  traceSignature,
  type PlaybookTrace,
  type TraceEntry,
} from '../../src/orchestrator/playbook/engine';
import { builtinPlaybook } from '../../src/orchestrator/playbook/library';
import {
  parsePlaybook,
  playbookHash,
  resolveInputs,
  type Playbook,
} from '../../src/orchestrator/playbook/schema';
import { openHarness, type McpHarness } from '../support/mcp-harness';

interface StepRow {
  name: string;
  workerKind: string;
  status: string;
  verdict: string | null;
}

interface Finished {
  run: RunRecord;
  trace: PlaybookTrace;
  steps: StepRow[];
  events: string[];
}

const sequence = (steps: readonly StepRow[]): string[] =>
  steps.map((step) => `${step.name}:${step.workerKind}:${step.status}`);

const decisions = (trace: PlaybookTrace): TraceEntry[] =>
  trace.entries.filter((entry) => entry.kind === 'decision');

describe('playbook independence: a CLI never reviews its own change (fake CLIs)', function () {
  let harness: McpHarness;

  beforeEach(async function () {
    harness = await openHarness();
  });

  afterEach(async function () {
    await harness?.close();
  });

  async function start(
    playbook: Playbook,
    source: string,
    task: string,
    options: { inputs?: Record<string, unknown>; fallback?: boolean; apply?: 'never' } = {},
  ): Promise<Finished> {
    const { orchestrator, store } = harness.services;
    const started = await orchestrator.startPlaybook({
      owner: 'agent-a',
      task,
      playbook,
      source,
      hash: playbookHash(playbook),
      inputs: resolveInputs(playbook, options.inputs ?? {}, source),
      ...(options.apply ? { apply: options.apply } : {}),
      resilience: options.fallback === false ? { backoffMs: 10 } : { fallback: true, backoffMs: 10 },
    });
    const run = await orchestrator.finished(started.id);
    const trace = JSON.parse((await store.readRunFile(run.id, TRACE_FILE)) ?? '{}') as PlaybookTrace;
    const steps = JSON.parse((await store.readRunFile(run.id, 'steps.json')) ?? '[]') as StepRow[];
    const events = (await store.readEvents(run.id)).map((event) => event.message);
    return { run, trace, steps, events };
  }

  function builtin(
    name: string,
    task: string,
    options: { inputs?: Record<string, unknown>; fallback?: boolean; apply?: 'never' } = {},
  ): Promise<Finished> {
    const loaded = builtinPlaybook(name);
    assert.ok(loaded, name);
    return start(loaded.playbook, loaded.source, task, options);
  }

  function custom(steps: unknown[], task: string): Promise<Finished> {
    const playbook = parsePlaybook(
      { format: 1, name: 'custom', description: 'a test playbook', steps },
      'custom.json',
    );
    return start(playbook, 'custom.json', task);
  }

  const file = (name: string): string => path.join(harness.services.workspaceRoot, name);

  /** Who worked each step record, by name. */
  const workers = (steps: readonly StepRow[]): Map<string, string> =>
    new Map(steps.map((step) => [step.name, step.workerKind]));

  it('handoff: after write falls back to gemini, codex reviews, gemini revises, codex reviews again', async function () {
    const result = await builtin(
      'handoff',
      '[[role:writer cli=codex scenario=http500]] [[role:reviewer step=review verdict=request_changes]] ' +
        '[[scenario:write path=handoff.txt]] Add handoff.txt.',
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), [
      'write:codex:failed',
      'write-fallback:gemini:succeeded',
      'review:codex:succeeded',
      'revise-2:gemini:succeeded',
      'review-2:codex:succeeded',
    ]);
    // Every review is by the other CLI than every CLI that wrote the change before it.
    const who = workers(result.steps);
    assert.notEqual(who.get('review'), who.get('write-fallback'));
    assert.notEqual(who.get('review-2'), who.get('revise-2'));
    assert.equal(result.run.applied, true);
    assert.ok(existsSync(file('handoff.txt')));
    // The choice the fallback shaped is a decision, recorded and traced at the review's own position.
    const [choice] = decisions(result.trace).filter((entry) => entry.id === 'review');
    assert.deepEqual(choice?.position, [1, 1, 1]);
    assert.equal(choice?.worker, 'codex');
    assert.equal(
      choice?.message,
      'review: write was written by gemini after a fallback, so codex works review (the other CLI than write).',
    );
    assert.ok(result.events.includes(choice?.message ?? ''), 'the choice is a run decision too');
    const reviewPrompt = result.trace.entries.find((entry) => entry.name === 'review')?.prompt ?? '';
    assert.match(reviewPrompt, /gemini wrote/);
  });

  it('handoff: a revision that fails is not handed to the reviewer; the run ends partial with the change kept', async function () {
    const result = await builtin(
      'handoff',
      '[[role:writer step=revise-2 scenario=http500]] [[role:reviewer step=review verdict=request_changes]] ' +
        '[[scenario:write path=revise.txt]] Add revise.txt.',
    );
    assert.equal(result.run.status, 'partial', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), [
      'write:codex:succeeded',
      'review:gemini:succeeded',
      'revise-2:codex:failed',
    ]);
    assert.match(
      result.run.outcome ?? '',
      /the writer \(codex\) failed in revise: HTTP 500 from the model; not handed to gemini: revise must be worked by the other CLI than review \(gemini\)\./,
    );
    const refusal = decisions(result.trace).find((entry) => entry.id === 'revise');
    assert.match(refusal?.message ?? '', /^revise-2: codex failed; not handing the step to gemini: /);
    assert.equal(result.run.applied, false);
  });

  for (const [name, writer, reviewer] of [
    ['codex_writes_gemini_reviews', 'codex', 'gemini'],
    ['gemini_writes_codex_reviews', 'gemini', 'codex'],
  ] as const) {
    it(`${name}: when the write falls back to ${reviewer}, ${writer} reviews instead, as a traced decision`, async function () {
      const result = await builtin(
        name,
        `[[role:writer cli=${writer} scenario=http500]] [[scenario:write path=fixed.txt]] Add fixed.txt.`,
      );
      assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
      assert.deepEqual(sequence(result.steps), [
        `write:${writer}:failed`,
        `write-fallback:${reviewer}:succeeded`,
        `review:${writer}:succeeded`,
      ]);
      assert.notEqual(workers(result.steps).get('review'), workers(result.steps).get('write-fallback'));
      const choice = decisions(result.trace).find((entry) => entry.id === 'review');
      assert.deepEqual(choice?.position, [1]);
      assert.equal(choice?.worker, writer);
      assert.equal(
        choice?.message,
        `review: ${reviewer} wrote write after a fallback, and the reviewer would review its own change, so ${writer} works review instead.`,
      );
      assert.ok(result.events.includes(choice?.message ?? ''));
      assert.match(
        result.run.decision ?? '',
        new RegExp(`^Applied write by ${reviewer} .*review by ${writer} approved`),
      );
    });
  }

  it('codex_writes_gemini_reviews: a failed review is not handed to codex, which wrote the change', async function () {
    const result = await builtin(
      'codex_writes_gemini_reviews',
      '[[role:reviewer scenario=http500]] [[scenario:write path=own.txt]] Add own.txt.',
    );
    assert.equal(result.run.status, 'partial', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), ['write:codex:succeeded', 'review:gemini:failed']);
    assert.match(
      result.run.outcome ?? '',
      /the reviewer \(gemini\) failed in review: HTTP 500 from the model; not handed to codex: codex wrote write: the reviewer would review its own change\. What was written is kept/,
    );
    const refusal = decisions(result.trace).find((entry) => entry.id === 'review');
    assert.deepEqual(refusal?.position, [1, 1]);
    assert.equal(result.run.applied, false);
    assert.equal(existsSync(file('own.txt')), false);
  });

  it('security_redteam_pass: after the write falls back, the red team is the other CLI than the one that wrote', async function () {
    const result = await builtin(
      'security_redteam_pass',
      '[[role:writer cli=codex scenario=http500]] [[scenario:write path=safe.txt]] Add safe.txt.',
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), [
      'write:codex:failed',
      'write-fallback:gemini:succeeded',
      'redteam:codex:succeeded',
    ]);
  });

  it('plan_then_write: after the write falls back to the planner, the check goes to the other CLI', async function () {
    const result = await builtin(
      'plan_then_write',
      '[[role:writer cli=codex scenario=http500]] [[scenario:write path=plan.txt]] Add plan.txt.',
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), [
      'plan:gemini:succeeded',
      'write:codex:failed',
      'write-fallback:gemini:succeeded',
      'check:codex:succeeded',
    ]);
  });

  it('parallel_dual_write_review: each review is by the other CLI than whoever wrote its change', async function () {
    const result = await builtin(
      'parallel_dual_write_review',
      '[[role:writer cli=codex scenario=http500]] [[scenario:write path=dual.txt]] Add dual.txt.',
      { apply: 'never' },
    );
    const who = workers(result.steps);
    assert.equal(who.get('write_codex-fallback'), 'gemini');
    assert.equal(who.get('review_codex'), 'codex');
    assert.equal(who.get('review_gemini'), 'codex');
  });

  it('ends partial, "the reviewer would review its own change", when both CLIs wrote the change', async function () {
    const result = await custom(
      [
        { type: 'write', id: 'write', worker: 'codex' },
        { type: 'write', id: 'more', worker: 'gemini', continue: 'write' },
        { type: 'review', id: 'review', worker: { otherThan: 'write' }, of: 'write' },
      ],
      '[[scenario:write path=both.txt]] Add both.txt.',
    );
    assert.equal(result.run.status, 'partial', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), ['write:codex:succeeded', 'more:gemini:succeeded']);
    assert.equal(
      result.run.outcome,
      'custom stopped: the reviewer would review its own change in review: both codex and gemini wrote write. What was written is kept in the run folder.',
    );
    const stop = decisions(result.trace).find((entry) => entry.id === 'review');
    assert.deepEqual(stop?.position, [2]);
  });

  it('{ sameAs } keeps a revision with the CLI that actually wrote, so the review stays independent', async function () {
    const result = await custom(
      [
        { type: 'write', id: 'fix', worker: 'codex' },
        { type: 'write', id: 'revise', worker: { sameAs: 'fix' }, continue: 'fix' },
        { type: 'review', id: 'review', worker: { otherThan: 'fix' }, of: 'fix' },
      ],
      '[[role:writer cli=codex step=fix scenario=http500]] [[scenario:write path=same.txt]] Add same.txt.',
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), [
      'fix:codex:failed',
      'fix-fallback:gemini:succeeded',
      'revise:gemini:succeeded',
      'review:codex:succeeded',
    ]);
    assert.equal(
      decisions(result.trace).find((entry) => entry.id === 'revise')?.message,
      'revise: fix was written by gemini after a fallback, so gemini works revise too (the same CLI as fix).',
    );
  });

  it('leaves a self-review the playbook declared alone', async function () {
    const result = await custom(
      [
        { type: 'write', id: 'write', worker: 'codex' },
        { type: 'review', id: 'review', worker: 'codex', of: 'write' },
      ],
      '[[scenario:write path=self.txt]] Add self.txt.',
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), ['write:codex:succeeded', 'review:codex:succeeded']);
    assert.deepEqual(decisions(result.trace), []);
  });

  it('gives the same trace, decisions included, when a fallback run is made again', async function () {
    const task =
      '[[role:writer cli=codex scenario=http500]] [[role:reviewer step=review verdict=request_changes]] ' +
      '[[scenario:write path=again.txt]] Add again.txt.';
    const first = await builtin('handoff', task, { apply: 'never' });
    const second = await builtin('handoff', task, { apply: 'never' });
    assert.ok(
      decisions(first.trace).some((entry) => entry.id === 'review'),
      'the choice is traced',
    );
    assert.deepEqual(traceSignature(second.trace.entries), traceSignature(first.trace.entries));
    assert.deepEqual(
      decisions(second.trace).map((entry) => entry.message),
      decisions(first.trace).map((entry) => entry.message),
    );
  });
});
