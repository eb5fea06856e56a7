// The engine's failure policy: the FAILURE_POLICY table (one rule per failure class of the worker contract), the
// merge of a step's onFailure over the run's resilience, each class on the fake CLIs (retried, handed to the other
// CLI, or stopping the run as the table says), a cancel during the backoff, and a replay signature that tells
// which candidate was chosen and applied.
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
  FAILURE_POLICY,
  mergeResilience,
  nextMove,
  type FailureClass,
} from '../../src/orchestrator/playbook/policy';
import {
  parsePlaybook,
  playbookHash,
  resolveInputs,
  type Playbook,
  type Resilience,
} from '../../src/orchestrator/playbook/schema';
import { STEP_STATUSES } from '../../src/workers/contract';
import { eventually, openHarness, type McpHarness } from '../support/mcp-harness';

interface StepRow {
  name: string;
  workerKind: string;
  status: string;
}

interface Finished {
  run: RunRecord;
  trace: PlaybookTrace;
  steps: StepRow[];
}

const sequence = (steps: readonly StepRow[]): string[] =>
  steps.map((step) => `${step.name}:${step.workerKind}:${step.status}`);

/** The fake CLIs' scenario for each failure class a worker can report (cancelled is the run's doing). */
const SCENARIO: Record<Exclude<FailureClass, 'cancelled'>, string> = {
  rate_limited: 'http429',
  timed_out: 'timeout',
  failed: 'http500',
  auth_error: 'http401',
  cli_error: 'clierror',
};

/** One write by codex, then apply; `onFailure` on the write when given. */
function oneWrite(onFailure?: Resilience): Playbook {
  return parsePlaybook(
    {
      format: 1,
      name: 'one_write',
      description: 'codex writes; the change is applied',
      steps: [
        { type: 'write', id: 'write', worker: 'codex', ...(onFailure ? { onFailure } : {}) },
        { type: 'apply', id: 'apply', of: 'write' },
      ],
    },
    'one_write.json',
  );
}

describe('playbook failure policy: the table', function () {
  it('has one rule for every status of the worker contract but succeeded', function () {
    const classes = STEP_STATUSES.filter((status) => status !== 'succeeded');
    assert.deepEqual(Object.keys(FAILURE_POLICY).sort(), [...classes].sort());
  });

  it('retries rate limits (2 by default) and timeouts (only when retries are set), and nothing else', function () {
    const first = { retriesDone: 0, fellBack: false };
    assert.equal(nextMove('rate_limited', {}, first).move, 'retry');
    assert.equal(nextMove('rate_limited', {}, { retriesDone: 2, fellBack: false }).move, 'stop');
    assert.equal(nextMove('rate_limited', { retries: 0 }, first).move, 'stop');
    assert.equal(nextMove('timed_out', {}, first).move, 'stop');
    assert.equal(nextMove('timed_out', { retries: 1 }, first).move, 'retry');
    for (const status of ['failed', 'auth_error', 'cli_error', 'cancelled'] as const) {
      assert.equal(nextMove(status, { retries: 5 }, first).move, 'stop', status);
    }
  });

  it('doubles the wait from backoffMs (1000 ms by default) for each retry', function () {
    const waits = [0, 1, 2].map((retriesDone) =>
      nextMove('rate_limited', { retries: 3, backoffMs: 10 }, { retriesDone, fellBack: false }),
    );
    assert.deepEqual(waits, [
      { move: 'retry', waitMs: 10 },
      { move: 'retry', waitMs: 20 },
      { move: 'retry', waitMs: 40 },
    ]);
    assert.deepEqual(nextMove('rate_limited', {}, { retriesDone: 1, fellBack: false }), {
      move: 'retry',
      waitMs: 2000,
    });
  });

  it('hands every class but cancelled to the other CLI once, and only when fallback is allowed', function () {
    const spent = { retriesDone: 5, fellBack: false };
    for (const status of ['rate_limited', 'timed_out', 'failed', 'auth_error', 'cli_error'] as const) {
      assert.equal(nextMove(status, { fallback: true }, spent).move, 'fallback', status);
      assert.equal(nextMove(status, {}, spent).move, 'stop', status);
      assert.equal(nextMove(status, { fallback: true }, { ...spent, fellBack: true }).move, 'stop', status);
    }
    assert.equal(nextMove('cancelled', { fallback: true }, spent).move, 'stop');
    assert.equal(FAILURE_POLICY.cancelled.stops, 'run');
  });

  it("merges a step's onFailure over the run's resilience field by field", function () {
    assert.deepEqual(mergeResilience({ retries: 1 }, { fallback: true, backoffMs: 10 }), {
      retries: 1,
      backoffMs: 10,
      fallback: true,
    });
    assert.deepEqual(mergeResilience({ fallback: false, retries: 0 }, { fallback: true, retries: 3 }), {
      retries: 0,
      fallback: false,
    });
    assert.deepEqual(mergeResilience(undefined, undefined), {});
  });
});

describe('playbook failure policy on the fake CLIs', function () {
  let harness: McpHarness;

  beforeEach(async function () {
    harness = await openHarness();
  });

  afterEach(async function () {
    await harness?.close();
  });

  async function begin(
    playbook: Playbook,
    task: string,
    options: { resilience?: Resilience; inputs?: Record<string, unknown>; apply?: 'never' } = {},
  ): Promise<RunRecord> {
    return harness.services.orchestrator.startPlaybook({
      owner: 'agent-a',
      task,
      playbook,
      source: `${playbook.name}.json`,
      hash: playbookHash(playbook),
      inputs: resolveInputs(playbook, options.inputs ?? {}, playbook.name),
      ...(options.apply ? { apply: options.apply } : {}),
      resilience: options.resilience ?? { backoffMs: 10 },
    });
  }

  async function outcome(id: string): Promise<Finished> {
    const { orchestrator, store } = harness.services;
    const run = await orchestrator.finished(id);
    const trace = JSON.parse((await store.readRunFile(id, TRACE_FILE)) ?? '{}') as PlaybookTrace;
    const steps = JSON.parse((await store.readRunFile(id, 'steps.json')) ?? '[]') as StepRow[];
    return { run, trace, steps };
  }

  async function run(
    playbook: Playbook,
    task: string,
    options: { resilience?: Resilience; inputs?: Record<string, unknown>; apply?: 'never' } = {},
  ): Promise<Finished> {
    return outcome((await begin(playbook, task, options)).id);
  }

  const file = (name: string): string => path.join(harness.services.workspaceRoot, name);

  for (const [failure, scenario] of Object.entries(SCENARIO) as [keyof typeof SCENARIO, string][]) {
    it(`${failure}: retried and handed to the other CLI as FAILURE_POLICY says (retries 1, fallback on)`, async function () {
      const rule = FAILURE_POLICY[failure];
      const result = await run(
        oneWrite(),
        `[[role:writer cli=codex scenario=${scenario}]] [[scenario:write path=${failure}.txt]] Add it.`,
        { resilience: { retries: 1, backoffMs: 10, fallback: true } },
      );
      const expected = [`write:codex:${failure}`];
      if (rule.retries !== 'never') expected.push(`write-retry1:codex:${failure}`);
      if (rule.fallback) expected.push('write-fallback:gemini:succeeded');
      assert.deepEqual(sequence(result.steps), expected);
      assert.equal(result.run.status, rule.fallback ? 'succeeded' : 'failed', result.run.outcome ?? '');
    });
  }

  it('auth_error: not retried even when retries are set; with fallback allowed, gemini takes the step', async function () {
    const result = await run(
      oneWrite({ retries: 3, fallback: true }),
      '[[role:writer cli=codex scenario=http401]] [[scenario:write path=auth.txt]] Add auth.txt.',
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), ['write:codex:auth_error', 'write-fallback:gemini:succeeded']);
    assert.ok(existsSync(file('auth.txt')));
  });

  it('auth_error without fallback: one attempt, the run fails saying the CLI is not logged in', async function () {
    const result = await run(oneWrite({ retries: 3 }), '[[role:writer scenario=http401]] Add nothing.');
    assert.equal(result.run.status, 'failed');
    assert.deepEqual(sequence(result.steps), ['write:codex:auth_error']);
    assert.match(
      result.run.outcome ?? '',
      /^one_write stopped: the writer \(codex\) auth_error in write: HTTP 401: not logged in\.$/,
    );
  });

  it('cli_error: not retried; handed to the other CLI when the run allows fallback', async function () {
    const result = await run(
      oneWrite(),
      '[[role:writer cli=codex scenario=clierror]] [[scenario:write path=cli.txt]] Add cli.txt.',
      { resilience: { retries: 2, backoffMs: 10, fallback: true } },
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), ['write:codex:cli_error', 'write-fallback:gemini:succeeded']);
  });

  it('timed_out with retries set: retried on the same CLI, and goes on when the retry succeeds', async function () {
    const result = await run(
      oneWrite({ retries: 1, backoffMs: 10 }),
      '[[role:writer step=write scenario=timeout]] [[scenario:write path=slow.txt]] Add slow.txt.',
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), ['write:codex:timed_out', 'write-retry1:codex:succeeded']);
    assert.ok(existsSync(file('slow.txt')));
  });

  it('timed_out without retries: not retried, and the run fails', async function () {
    const result = await run(
      oneWrite(),
      '[[role:writer step=write scenario=timeout]] [[scenario:write path=never.txt]] Add never.txt.',
    );
    assert.equal(result.run.status, 'failed');
    assert.deepEqual(sequence(result.steps), ['write:codex:timed_out']);
    assert.equal(existsSync(file('never.txt')), false);
  });

  it('rate_limited: retried twice with backoff, then handed to the other CLI once the retries run out', async function () {
    const result = await run(
      oneWrite(),
      '[[role:writer cli=codex scenario=http429]] [[scenario:write path=quota.txt]] Add quota.txt.',
      { resilience: { backoffMs: 10, fallback: true } },
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), [
      'write:codex:rate_limited',
      'write-retry1:codex:rate_limited',
      'write-retry2:codex:rate_limited',
      'write-fallback:gemini:succeeded',
    ]);
    // Each retry and the hand-over are traced between the attempts, with the worker that takes the step.
    assert.deepEqual(
      result.trace.entries
        .filter((entry) => entry.id === 'write')
        .map((entry) => [entry.position, entry.kind, entry.name ?? entry.worker]),
      [
        [[0, 0], 'step', 'write'],
        [[0, 1], 'decision', undefined],
        [[0, 2], 'step', 'write-retry1'],
        [[0, 3], 'decision', undefined],
        [[0, 4], 'step', 'write-retry2'],
        [[0, 5], 'decision', 'gemini'],
        [[0, 6], 'step', 'write-fallback'],
      ],
    );
    assert.deepEqual(
      result.trace.entries.filter((entry) => entry.kind === 'decision').map((entry) => entry.message),
      [
        'write: codex rate_limited; retrying in 10 ms.',
        'write-retry1: codex rate_limited; retrying in 20 ms.',
        'write-retry2: codex rate_limited; handing the step to gemini.',
        'Applied write by gemini (1 file, +1 -0): no review was asked for.',
      ],
    );
    // Every attempt's prompt is kept whole in the run folder, and the trace names its file.
    for (const entry of result.trace.entries.filter((item) => item.kind === 'step')) {
      assert.equal(entry.promptFile, `prompt-${entry.name}.txt`);
      const whole = await harness.services.store.readRunFile(result.run.id, entry.promptFile ?? '');
      assert.ok(whole?.startsWith(entry.prompt ?? '(none)'), entry.name);
    }
  });

  it('both CLIs fail: the run ends failed with both attempts recorded and both failures in the outcome', async function () {
    const result = await run(oneWrite(), '[[role:writer scenario=http500]] Add nothing.', {
      resilience: { backoffMs: 10, fallback: true },
    });
    assert.equal(result.run.status, 'failed');
    assert.deepEqual(sequence(result.steps), ['write:codex:failed', 'write-fallback:gemini:failed']);
    assert.deepEqual(
      result.trace.entries.filter((entry) => entry.kind === 'step').map((entry) => entry.worker),
      ['codex', 'gemini'],
    );
    assert.match(
      result.run.outcome ?? '',
      /^one_write stopped: the writer \(gemini\) failed in write: HTTP 500 from the model \(after codex failed: HTTP 500 from the model\)\.$/,
    );
  });

  it("keeps the run's fallback for a step whose onFailure sets only retries", async function () {
    const result = await run(
      oneWrite({ retries: 1 }),
      '[[role:writer cli=codex scenario=http429]] [[scenario:write path=merged.txt]] Add merged.txt.',
      { resilience: { backoffMs: 10, fallback: true } },
    );
    assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
    assert.deepEqual(sequence(result.steps), [
      'write:codex:rate_limited',
      'write-retry1:codex:rate_limited',
      'write-fallback:gemini:succeeded',
    ]);
  });

  it("lets a step's fallback: false override the run's fallback: true", async function () {
    const result = await run(oneWrite({ fallback: false }), '[[role:writer scenario=http500]] Add nothing.', {
      resilience: { backoffMs: 10, fallback: true },
    });
    assert.equal(result.run.status, 'failed');
    assert.deepEqual(sequence(result.steps), ['write:codex:failed']);
  });

  it('a cancel during the backoff starts no further attempt, and the run ends cancelled', async function () {
    const { orchestrator, store } = harness.services;
    const started = Date.now();
    const begun = await begin(oneWrite(), '[[role:writer scenario=http429]] Add nothing.', {
      resilience: { backoffMs: 60_000 },
    });
    await eventually(
      async () => (await store.readEvents(begun.id)).some((event) => /retrying in/.test(event.message)),
      'the retry decision',
    );
    await orchestrator.cancel(begun.id, 'agent-a');
    const result = await outcome(begun.id);
    assert.ok(Date.now() - started < 10_000, 'the backoff sleep woke on the cancel');
    assert.equal(result.run.status, 'cancelled');
    assert.deepEqual(sequence(result.steps), ['write:codex:rate_limited']);
    assert.deepEqual(
      result.trace.entries.filter((entry) => entry.kind === 'step').map((entry) => entry.name),
      ['write'],
    );
    assert.match(result.run.outcome ?? '', /cancelled while write waited to be retried/);
  });

  describe('the replay signature', function () {
    const adjudicated = async (apply?: 'never'): Promise<Finished> => {
      const loaded = builtinPlaybook('parallel_adjudicate');
      assert.ok(loaded);
      return run(
        loaded.playbook,
        '[[role:writer cli=codex scenario=write path=a.txt content=broken]] [[role:writer cli=gemini scenario=write path=a.txt content=fixed]] Fix a.txt.',
        {
          inputs: {
            verify: [
              'node',
              '-e',
              "process.exit(require('fs').readFileSync('a.txt','utf8').includes('fixed') ? 0 : 1)",
            ],
          },
          ...(apply ? { apply } : {}),
        },
      );
    };

    it('differs when another candidate is chosen and applied, all else equal', async function () {
      const result = await adjudicated();
      const entries = result.trace.entries;
      const chosen = (trace: readonly TraceEntry[], id: string): string | undefined =>
        trace.find((entry) => entry.id === id)?.chosen;
      assert.equal(chosen(entries, 'adjudicate'), 'gemini_solution');
      assert.equal(chosen(entries, 'apply'), 'gemini_solution');
      // The same trace, but the codex candidate won and was applied.
      const other = entries.map((entry) =>
        entry.chosen === 'gemini_solution' ? { ...entry, chosen: 'codex_solution' } : entry,
      );
      const signature = traceSignature(entries);
      const otherSignature = traceSignature(other);
      assert.notDeepEqual(otherSignature, signature);
      const differing = signature.filter((line, i) => line !== otherSignature[i]);
      assert.equal(differing.length, 2, differing.join('\n'));
      assert.ok(differing.every((line) => line.includes('chose:gemini_solution')));
    });

    it('is the same when the same adjudicated run is made again', async function () {
      // apply=never leaves the workspace as it was, so the second run starts from the same state.
      const first = await adjudicated('never');
      const second = await adjudicated('never');
      const signature = traceSignature(first.trace.entries);
      assert.ok(signature.some((line) => line.includes('chose:gemini_solution')));
      assert.deepEqual(traceSignature(second.trace.entries), signature);
    });
  });

  describe('parallel branches', function () {
    function twoWrites(): Playbook {
      return parsePlaybook(
        {
          format: 1,
          name: 'two_writes',
          description: "codex and gemini write in parallel; gemini's change is applied",
          steps: [
            {
              type: 'parallel',
              id: 'both',
              branches: [
                [{ type: 'write', id: 'a', worker: 'codex' }],
                [{ type: 'write', id: 'b', worker: 'gemini' }],
              ],
            },
            { type: 'apply', id: 'apply', of: 'b' },
          ],
        },
        'two_writes.json',
      );
    }

    it('run at the same time: each branch starts before the other ends', async function () {
      const result = await run(twoWrites(), '[[role:writer scenario=slow ms=1000]] Think about it.');
      const steps = result.steps as unknown as { name: string; startedAt: string; endedAt: string }[];
      const [a, b] = ['a', 'b'].map((name) => steps.find((step) => step.name === name));
      assert.ok(a && b, JSON.stringify(steps));
      const time = (iso: string): number => Date.parse(iso);
      assert.ok(time(a.startedAt) < time(b.endedAt), `a started ${a.startedAt}, b ended ${b.endedAt}`);
      assert.ok(time(b.startedAt) < time(a.endedAt), `b started ${b.startedAt}, a ended ${a.endedAt}`);
      // Positions, not timing, order the trace: branch 0 before branch 1 whichever ended first.
      assert.deepEqual(
        result.trace.entries
          .filter((entry) => entry.kind === 'step')
          .map((entry) => [entry.position, entry.id]),
        [
          [[0, 0, 0, 0], 'a'],
          [[0, 1, 0, 0], 'b'],
        ],
      );
    });

    it('one branch stopping leaves the other standing: the run ends partial, and the trace has the stop', async function () {
      const result = await run(
        twoWrites(),
        '[[role:writer cli=codex scenario=http500]] [[role:writer cli=gemini scenario=write path=b.txt]] Add b.txt.',
      );
      assert.equal(result.run.status, 'partial', result.run.outcome ?? '');
      assert.match(result.run.outcome ?? '', /A branch of both stopped: .*codex.*HTTP 500/);
      assert.equal(result.run.applied, true, 'the standing branch is applied');
      assert.ok(existsSync(file('b.txt')));
      const stop = result.trace.entries.find((entry) => entry.kind === 'stop');
      assert.deepEqual(stop?.position, [0, 0, 1]);
      assert.equal(stop?.id, 'both');
      assert.match(stop?.message ?? '', /^A branch of both stopped: /);
    });
  });
});
