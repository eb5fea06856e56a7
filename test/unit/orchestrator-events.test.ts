// What the editor's views hear from the orchestrator: a step starting and ending, the steps working right now,
// and a finished run already gone from the running count when its listeners are told.
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { eventually, openHarness, type McpHarness } from '../support/mcp-harness';

describe('orchestrator events for views', function () {
  let harness: McpHarness;

  beforeEach(async function () {
    harness = await openHarness();
  });

  afterEach(async function () {
    await harness?.close();
  });

  it('tells step listeners when a step starts and ends, and lists it as active while it runs', async function () {
    const { orchestrator } = harness.services;
    const seen: string[] = [];
    orchestrator.onStepChange((runId, step) =>
      seen.push(`${runId}:${step.index}:${step.name}:${step.status}`),
    );
    const run = await orchestrator.startStrategy({
      strategy: 'single_worker',
      owner: 'agent-a',
      prompt: '[[scenario:slow ms=150 chunks=2]] take a moment',
    });
    await eventually(() => orchestrator.activeSteps().length === 1, 'the step to be active');
    const [active] = orchestrator.activeSteps();
    assert.equal(active?.runId, run.id);
    assert.equal(active?.owner, 'agent-a');
    assert.equal(active?.step.workerKind, 'codex');
    assert.equal(active?.step.status, 'running');
    await orchestrator.finished(run.id);
    assert.deepEqual(orchestrator.activeSteps(), []);
    assert.deepEqual(seen, [`${run.id}:1:write:running`, `${run.id}:1:write:succeeded`]);
  });

  it('writes steps.json when a step starts, so views show it before it ends', async function () {
    const { orchestrator, store } = harness.services;
    const run = await orchestrator.startStrategy({
      strategy: 'single_worker',
      owner: 'agent-a',
      prompt: '[[scenario:slow ms=200 chunks=3]] take a moment',
    });
    // steps.json is written just after the step becomes active: poll it while the step (600 ms) still runs.
    let seen: string[] = [];
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && seen.length === 0) {
      const text = await store.readRunFile(run.id, 'steps.json');
      seen = text === undefined ? [] : (JSON.parse(text) as { status: string }[]).map((step) => step.status);
      if (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.deepEqual(seen, ['running']);
    assert.equal(orchestrator.activeSteps().length, 1, 'the step had not ended when steps.json showed it');
    await orchestrator.finished(run.id);
  });

  it('has taken a finished run out of the running count before its listeners hear of it', async function () {
    const { orchestrator } = harness.services;
    const counts: [string, number][] = [];
    orchestrator.onRunChange((run) => counts.push([run.status, orchestrator.runningCount]));
    const run = await orchestrator.startStrategy({
      strategy: 'single_worker',
      owner: 'agent-a',
      prompt: '[[scenario:reply text=done]] quick',
    });
    await orchestrator.finished(run.id);
    assert.deepEqual(counts, [
      ['running', 1],
      ['succeeded', 0],
    ]);
  });

  it('keeps the run going when a view listener throws', async function () {
    const { orchestrator } = harness.services;
    orchestrator.onRunChange(() => {
      throw new Error('run view broke');
    });
    orchestrator.onStepChange(() => {
      throw new Error('step view broke');
    });
    const run = await orchestrator.startStrategy({
      strategy: 'single_worker',
      owner: 'agent-a',
      prompt: '[[scenario:reply text=done]] quick',
    });
    assert.equal((await orchestrator.finished(run.id)).status, 'succeeded');
  });
});

describe('start-up recovery on damaged state', function () {
  it('marks a run left running by a dead process interrupted even when its folder is gone, and starts', async function () {
    const first = await openHarness();
    const root = first.root;
    const id = 'run-20260101T000000Z-dead02';
    const now = new Date().toISOString();
    const record = {
      id,
      kind: 'strategy',
      strategy: 'single_worker',
      owner: 'agent-gone',
      prompt: 'Left running.',
      status: 'running',
      createdAt: now,
      startedAt: now,
      endedAt: null,
      workers: ['codex'],
      stepCount: 0,
      outcome: null,
      decision: null,
      applied: false,
      host: { pid: 4_194_001, startTime: '1' },
    };
    appendFileSync(first.services.store.indexPath, `${JSON.stringify(record)}\n`);
    await first.close({ keepRoot: true });
    const second = await openHarness({ root });
    try {
      const recovered = second.services.store.get(id);
      assert.equal(recovered.status, 'interrupted');
      assert.equal(recovered.playbook, null, 'an older record without a playbook field reads as null');
      const events = await second.services.store.readEvents(id);
      assert.deepEqual(
        events.map((event) => event.type),
        ['run_finished'],
      );
    } finally {
      await second.close();
    }
  });
});
