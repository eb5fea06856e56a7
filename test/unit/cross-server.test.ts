import * as assert from 'node:assert/strict';
import { PanicSwitch } from '../../src/orchestrator/panic';
import { eventually, openHarness, type McpHarness, type Structured } from '../support/mcp-harness';

const AGENT = 'agent-a';

function runId(structured: Structured): string {
  return (structured.run as { id: string }).id;
}

describe('two Tandem servers on one workspace', function () {
  this.timeout(20_000);
  let first: McpHarness;
  let second: McpHarness;

  beforeEach(async () => {
    first = await openHarness();
    second = await openHarness({ root: first.root });
  });
  afterEach(async () => {
    await second.close({ keepRoot: true });
    await first.close();
  });

  it('panic engaged elsewhere (e.g. by the CLI) cancels the runs of this server within seconds', async () => {
    const id = runId(
      await first.callOk('strategy_run', {
        agentId: AGENT,
        strategy: 'single_worker',
        prompt: '[[scenario:hang]]',
      }),
    );
    await eventually(() => first.fakes.codex.prompts.length === 1, 'the writer to start');
    const external = await PanicSwitch.open(first.root);
    await external.engage('human', 'stop everything');
    await eventually(
      () => first.services.store.get(id).status === 'cancelled',
      'the run to be cancelled',
      5000,
    );
  });

  it('refuses run_cancel for a run another server carries out, saying where it runs', async () => {
    const id = runId(
      await first.callOk('strategy_run', {
        agentId: AGENT,
        strategy: 'single_worker',
        prompt: '[[scenario:hang]]',
      }),
    );
    assert.equal(await second.callError('run_cancel', { agentId: AGENT, runId: id }), 'RUN_ELSEWHERE');
    await first.callOk('run_cancel', { agentId: AGENT, runId: id });
  });

  it('does not mark the live runs of another server in the same process as interrupted on start-up', async () => {
    const id = runId(
      await first.callOk('strategy_run', {
        agentId: AGENT,
        strategy: 'single_worker',
        prompt: '[[scenario:hang]]',
      }),
    );
    const third = await openHarness({ root: first.root, recover: true });
    try {
      assert.equal(first.services.store.get(id).status, 'running');
      await third.services.store.refresh();
      assert.equal(third.services.store.get(id).status, 'running');
    } finally {
      await third.close({ keepRoot: true });
      await first.callOk('run_cancel', { agentId: AGENT, runId: id });
    }
  });
});

describe('run_list paging', () => {
  let harness: McpHarness;
  beforeEach(async () => {
    harness = await openHarness();
  });
  afterEach(async () => harness.close());

  it('sets nextBefore only when another page follows, and refuses an unknown cursor', async () => {
    for (let i = 0; i < 3; i++) {
      await harness.callOk('strategy_run', {
        agentId: AGENT,
        strategy: 'single_worker',
        prompt: `[[scenario:reply]] ${i}`,
        waitSeconds: 5,
      });
    }
    const page1 = await harness.callOk('run_list', { agentId: AGENT, limit: 2 });
    assert.equal((page1.runs as unknown[]).length, 2);
    assert.equal(typeof page1.nextBefore, 'string');
    const page2 = await harness.callOk('run_list', { agentId: AGENT, limit: 2, before: page1.nextBefore });
    assert.equal((page2.runs as unknown[]).length, 1);
    assert.equal(page2.nextBefore, null);
    const exact = await harness.callOk('run_list', { agentId: AGENT, limit: 3 });
    assert.equal(exact.nextBefore, null);
    assert.equal(
      await harness.callError('run_list', { agentId: AGENT, before: 'run-20200101T000000Z-000000' }),
      'UNKNOWN_RUN',
    );
  });
});
