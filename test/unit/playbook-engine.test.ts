// The playbook engine on the fake CLIs: each built-in playbook end to end, the failure policies (rate limit
// retried, writer handed to the other CLI, reviewer failure ending partial with the change kept), loops bounded,
// and the trace that makes a run replayable.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RunRecord } from '../../src/orchestrator/model';
import { TRACE_FILE, traceSignature, type PlaybookTrace } from '../../src/orchestrator/playbook/engine';
import { builtinPlaybook } from '../../src/orchestrator/playbook/library';
import { resolveInputs } from '../../src/orchestrator/playbook/schema';
import { openHarness, type McpHarness } from '../support/mcp-harness';

describe('playbook engine (fake CLIs)', function () {
  let harness: McpHarness;

  beforeEach(async function () {
    harness = await openHarness();
  });

  afterEach(async function () {
    await harness?.close();
  });

  async function run(
    name: string,
    task: string,
    options: { inputs?: Record<string, unknown>; fallback?: boolean; apply?: 'never' | 'always' } = {},
  ): Promise<{
    run: RunRecord;
    trace: PlaybookTrace;
    steps: { name: string; workerKind: string; status: string; verdict: string | null }[];
  }> {
    const loaded = builtinPlaybook(name);
    assert.ok(loaded, name);
    const { orchestrator, store } = harness.services;
    const started = await orchestrator.startPlaybook({
      owner: 'agent-a',
      task,
      playbook: loaded.playbook,
      source: loaded.source,
      hash: loaded.hash,
      inputs: resolveInputs(loaded.playbook, options.inputs ?? {}, loaded.source),
      ...(options.apply ? { apply: options.apply } : {}),
      ...(options.fallback
        ? { resilience: { fallback: true, backoffMs: 10 } }
        : { resilience: { backoffMs: 10 } }),
    });
    const finished = await orchestrator.finished(started.id);
    const trace = JSON.parse((await store.readRunFile(started.id, TRACE_FILE)) ?? '{}') as PlaybookTrace;
    const steps = JSON.parse((await store.readRunFile(started.id, 'steps.json')) ?? '[]') as {
      name: string;
      workerKind: string;
      status: string;
      verdict: string | null;
    }[];
    return { run: finished, trace, steps };
  }

  const file = (name: string): string => path.join(harness.services.workspaceRoot, name);
  const sequence = (steps: { name: string; workerKind: string; status: string }[]): string[] =>
    steps.map((step) => `${step.name}:${step.workerKind}:${step.status}`);

  it('handoff: the reviewer asks for changes once, the writer revises in the same copy, the second review approves', async function () {
    const result = await run(
      'handoff',
      '[[role:reviewer step=review verdict=request_changes findings=medium]] [[scenario:write path=handoff.txt]] Add handoff.txt.',
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), [
      'write:codex:succeeded',
      'review:gemini:succeeded',
      'revise-2:codex:succeeded',
      'review-2:gemini:succeeded',
    ]);
    assert.deepEqual(
      result.steps.map((step) => step.verdict),
      [null, 'request_changes', null, 'approve'],
    );
    assert.equal(result.run.applied, true);
    assert.ok(existsSync(file('handoff.txt')));
    assert.equal(result.run.playbook?.name, 'handoff');
    assert.match(result.run.playbook?.hash ?? '', /^[0-9a-f]{12}$/);
    // The revision prompt carried the reviewer's findings.
    const revise = result.trace.entries.find((entry) => entry.name === 'revise-2');
    assert.match(revise?.prompt ?? '', /\[medium\] Scripted finding 1/);
  });

  it('writes a summary naming the playbook, its version and inputs, with every decision in order', async function () {
    const result = await run('handoff', '[[scenario:write path=summary.txt]] Add summary.txt.', {
      inputs: { rounds: 2 },
    });
    const json = JSON.parse(
      (await harness.services.store.readRunFile(result.run.id, 'summary.json')) ?? '{}',
    ) as {
      schemaVersion: number;
      run: { playbook: { name: string; hash: string } };
      playbookInputs: Record<string, unknown>;
      decisions: { message: string }[];
    };
    assert.equal(json.schemaVersion, 2);
    assert.equal(json.run.playbook.name, 'handoff');
    assert.deepEqual(json.playbookInputs, { writer: 'codex', rounds: 2 });
    assert.match(
      json.decisions.at(-1)?.message ?? '',
      /^Applied write by codex \(1 file, \+1 -0\): review by gemini approved with no findings\.$/,
    );
    const markdown = (await harness.services.store.readRunFile(result.run.id, 'summary.md')) ?? '';
    assert.match(
      markdown,
      new RegExp(
        `\\*\\*What:\\*\\* playbook:handoff \\(version ${json.run.playbook.hash}, from builtin:handoff\\)`,
      ),
    );
    assert.match(markdown, /## Decisions\n\n- \S+: Applied write by codex/);
    assert.match(markdown, /- Inputs: `\{"writer":"codex","rounds":2\}`/);
  });

  it('handoff stops after its rounds when the reviewer never approves, and applies nothing', async function () {
    const result = await run(
      'handoff',
      '[[role:reviewer verdict=request_changes]] [[scenario:write path=never.txt]] Add never.txt.',
      { inputs: { rounds: 2 } },
    );
    assert.deepEqual(sequence(result.steps), [
      'write:codex:succeeded',
      'review:gemini:succeeded',
      'revise-2:codex:succeeded',
      'review-2:gemini:succeeded',
    ]);
    assert.equal(result.run.applied, false);
    assert.equal(existsSync(file('never.txt')), false);
    assert.match(
      result.run.decision ?? '',
      /^Not applied: review-2 by gemini requested changes with 1 finding \(worst: high\)\. The patch is kept in the run folder \(changes-revise-2\.patch\)\.$/,
    );
  });

  it('plan_then_write: the other CLI plans, the writer gets the plan, the check reviews against it', async function () {
    const result = await run(
      'plan_then_write',
      '[[role:planner scenario=reply text=1.Create-plan.txt]] [[scenario:write path=plan.txt]] Add plan.txt.',
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), [
      'plan:gemini:succeeded',
      'write:codex:succeeded',
      'check:gemini:succeeded',
    ]);
    const write = result.trace.entries.find((entry) => entry.name === 'write');
    assert.match(write?.prompt ?? '', /Implement this plan:\n1\.Create-plan\.txt/);
    const check = result.trace.entries.find((entry) => entry.name === 'check');
    assert.match(check?.prompt ?? '', /carries out the plan you wrote/);
    assert.equal(result.run.applied, true);
  });

  it('parallel_adjudicate: both write, the verification command decides between them, the reason is recorded', async function () {
    const result = await run(
      'parallel_adjudicate',
      '[[role:writer cli=codex scenario=write path=a.txt content=broken]] [[role:writer cli=gemini scenario=write path=a.txt content=fixed]] Fix a.txt.',
      {
        inputs: {
          verify: [
            'node',
            '-e',
            "process.exit(require('fs').readFileSync('a.txt','utf8').includes('fixed') ? 0 : 1)",
          ],
        },
      },
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.equal(readFileSync(file('a.txt'), 'utf8'), 'fixed');
    assert.match(result.run.decision ?? '', /Applied gemini_solution by gemini/);
    const adjudication = result.trace.entries.find((entry) => entry.id === 'adjudicate');
    assert.match(
      adjudication?.message ?? '',
      /gemini_solution ranked first: gemini_solution \(gemini\): verification passed.*codex_solution \(codex\): verification failed/,
    );
    const log = await harness.services.store.readRunFile(result.run.id, 'verify-verify_codex.log');
    assert.match(log ?? '', /\(exit 1\)/);
  });

  it('retries a rate-limited step with backoff and goes on when the retry succeeds', async function () {
    const result = await run(
      'single_worker',
      '[[role:writer step=write scenario=http429]] [[scenario:write path=retry.txt]] Add retry.txt.',
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), ['write:codex:rate_limited', 'write-retry1:codex:succeeded']);
    assert.ok(existsSync(file('retry.txt')));
  });

  it('hands a failed writer step to the other CLI when fallback is allowed', async function () {
    const result = await run(
      'single_worker',
      '[[role:writer cli=codex scenario=http500]] [[scenario:write path=fallback.txt]] Add fallback.txt.',
      { fallback: true },
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), ['write:codex:failed', 'write-fallback:gemini:succeeded']);
    assert.ok(existsSync(file('fallback.txt')));
  });

  it('fails the run, nothing written, when the writer fails and no fallback is allowed', async function () {
    const result = await run('single_worker', '[[role:writer scenario=http500]] Add nothing.');
    assert.equal(result.run.status, 'failed');
    assert.match(
      result.run.outcome ?? '',
      /^single_worker stopped: the writer \(codex\) failed in write: HTTP 500 from the model\.$/,
    );
  });

  it("ends partial when the reviewer fails, keeping the writer's change in the run folder (not applied)", async function () {
    const result = await run(
      'codex_writes_gemini_reviews',
      '[[role:reviewer scenario=http500]] [[scenario:write path=kept.txt]] Add kept.txt.',
    );
    assert.equal(result.run.status, 'partial');
    assert.match(
      result.run.outcome ?? '',
      /the reviewer \(gemini\) failed in review: .*\. What was written is kept in the run folder\./,
    );
    assert.equal(result.run.applied, false);
    assert.equal(existsSync(file('kept.txt')), false);
    const patch = await harness.services.store.readRunFile(result.run.id, 'changes-write.patch');
    assert.match(patch ?? '', /kept\.txt/);
  });

  it('security_redteam_pass blocks a change with findings at or above block_at', async function () {
    const blocked = await run(
      'security_redteam_pass',
      '[[role:redteam verdict=request_changes findings=high]] [[scenario:write path=vuln.txt]] Add vuln.txt.',
    );
    assert.equal(blocked.run.applied, false);
    const lowered = await run(
      'security_redteam_pass',
      '[[role:redteam verdict=request_changes findings=high]] [[scenario:write path=vuln2.txt]] Add vuln2.txt.',
      { inputs: { block_at: 'critical' } },
    );
    assert.equal(lowered.run.applied, true);
  });

  it('gives the same step sequence, prompts and decisions when the same run is made again', async function () {
    const task =
      '[[role:reviewer step=review verdict=request_changes]] [[scenario:write path=same.txt]] Add same.txt.';
    // apply=never leaves the workspace as it was, so the second run starts from the same state.
    const first = await run('handoff', task, { apply: 'never' });
    const second = await run('handoff', task, { apply: 'never' });
    assert.deepEqual(traceSignature(second.trace.entries), traceSignature(first.trace.entries));
    assert.ok(first.trace.entries.length >= 6);
  });
});
