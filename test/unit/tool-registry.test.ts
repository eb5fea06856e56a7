// Specification of the tool registry's guardrails, seen through an SDK client: every tool requires an
// agentId and hands it to its handler, panic refuses every mutating tool and changes nothing, a tool name
// cannot be registered twice, and an agent can stop or cancel only what it owns.
import * as assert from 'node:assert/strict';
import { DuplicateToolError, ToolRegistry } from '../../src/mcp/tool-registry';
import { createToolRegistry } from '../../src/mcp/server';
import { defineTools } from '../../src/mcp/tools';
import {
  callRaw,
  eventually,
  openHarness,
  type McpHarness,
  type Structured,
  type ToolArgs,
} from '../support/mcp-harness';

const AGENT = 'agent-a';
const OTHER = 'agent-b';

interface RunView {
  id: string;
  status: string;
}

function runOf(structured: Structured): RunView {
  return structured.run as RunView;
}

function workerIdOf(structured: Structured): string {
  return (structured.worker as { id: string }).id;
}

/** Total of prompts the fake CLIs received: a step that ran leaves one. */
function promptCount(harness: McpHarness): number {
  return harness.fakes.codex.prompts.length + harness.fakes.gemini.prompts.length;
}

async function waitForRunStatus(harness: McpHarness, runId: string, status: string): Promise<void> {
  await eventually(() => harness.services.store.get(runId).status === status, `run ${runId} to be ${status}`);
}

describe('tool registry guardrails', function () {
  let harness: McpHarness;

  beforeEach(async function () {
    harness = await openHarness();
  });

  afterEach(async function () {
    await harness?.close();
  });

  describe('agentId parity', function () {
    it('lists agentId as required in the input schema of every registered tool, as the client sees it', async function () {
      const { tools } = await harness.client.listTools();
      const registered = harness.registry.list().map((tool) => tool.name);
      assert.ok(registered.length > 0);
      assert.deepEqual(tools.map((tool) => tool.name).sort(), [...registered].sort());
      for (const tool of tools) {
        assert.ok(tool.inputSchema.required?.includes('agentId'), `${tool.name} does not require agentId`);
        assert.ok(tool.inputSchema.properties?.agentId, `${tool.name} has no agentId property`);
      }
    });

    it('hands every tool’s handler the agentId it was called with', async function () {
      // Minimal valid input for each tool, in an order where each one succeeds.
      const spawned = await harness.callOk('worker_spawn', { agentId: 'setup', kind: 'codex' });
      const setupWorker = workerIdOf(spawned);
      const finished = runOf(
        await harness.callOk('task_dispatch', {
          agentId: 'setup',
          workerId: setupWorker,
          prompt: 'say hello',
          role: 'reviewer',
          waitSeconds: 5,
        }),
      );
      harness.calls.length = 0;

      let workerId = '';
      let runId = '';
      const plan: [string, (agentId: string) => ToolArgs][] = [
        ['probe', (agentId) => ({ agentId })],
        ['worker_list', (agentId) => ({ agentId })],
        ['run_list', (agentId) => ({ agentId })],
        ['run_get', (agentId) => ({ agentId, runId: finished.id })],
        ['run_wait', (agentId) => ({ agentId, runId: finished.id, timeoutSeconds: 0 })],
        ['panic_status', (agentId) => ({ agentId })],
        ['worker_spawn', (agentId) => ({ agentId, kind: 'gemini' })],
        ['task_dispatch', (agentId) => ({ agentId, workerId, prompt: '[[scenario:slow ms=3000]]' })],
        ['strategy_run', (agentId) => ({ agentId, strategy: 'single_worker', prompt: 'say hello' })],
        ['playbook_list', (agentId) => ({ agentId })],
        ['playbook_run', (agentId) => ({ agentId, playbook: 'single_worker', task: 'say hello' })],
        ['run_cancel', (agentId) => ({ agentId, runId })],
        ['worker_stop', (agentId) => ({ agentId, workerId })],
        ['panic_engage', (agentId) => ({ agentId, reason: 'parity test' })],
      ];
      const planned = plan.map(([name]) => name).sort();
      assert.deepEqual(
        harness.registry
          .list()
          .map((tool) => tool.name)
          .sort(),
        planned,
        'a tool was added or removed: give it a minimal valid input in this test',
      );

      // Each call has its own agentId, except that only the owner may dispatch to its worker, cancel its run or
      // stop its worker.
      const ownerOf: Record<string, string> = {
        task_dispatch: 'worker_spawn',
        run_cancel: 'worker_spawn',
        worker_stop: 'worker_spawn',
      };
      const idFor = (name: string): string =>
        `parity-${plan.findIndex(([planned]) => planned === (ownerOf[name] ?? name))}.${ownerOf[name] ?? name}:x@y`;
      for (const [name, args] of plan) {
        const agentId = idFor(name);
        const structured = await harness.callOk(name, args(agentId));
        if (name === 'worker_spawn') workerId = workerIdOf(structured);
        if (name === 'task_dispatch') runId = runOf(structured).id;
        assert.deepEqual(
          harness.calls.at(-1),
          { tool: name, agentId, ok: true },
          `${name} did not reach its handler with agentId ${agentId}`,
        );
      }
      // What the handlers recorded carries the agentId too.
      assert.equal(harness.services.workers.get(workerId).owner, idFor('worker_spawn'));
      assert.equal(harness.services.store.get(runId).owner, idFor('task_dispatch'));
      assert.equal(harness.services.panic.status().engagedBy, idFor('panic_engage'));
    });

    it('refuses a call without agentId, naming agentId, before any handler runs', async function () {
      for (const tool of harness.registry.list()) {
        const text = await harness.callInvalid(tool.name, {});
        assert.match(text, /agentId/, `${tool.name}: ${text}`);
      }
      assert.equal(harness.calls.length, 0);
      assert.equal(harness.services.workers.list({ includeStopped: true }).length, 0);
      assert.equal(harness.services.panic.status().engaged, false);
    });

    for (const agentId of ['human', 'bad id with spaces', '', '-leading-dash', 'x'.repeat(65), 42]) {
      it(`refuses agentId ${JSON.stringify(agentId).slice(0, 20)} from a client`, async function () {
        const text = await harness.callInvalid('worker_spawn', { agentId, kind: 'codex' });
        assert.match(text, /agentId/);
        assert.equal(harness.services.workers.list({ includeStopped: true }).length, 0);
      });
    }

    it('refuses the reserved agentId "human" on the in-process path too, with INVALID_INPUT', async function () {
      const spawn = harness.registry.list().find((tool) => tool.name === 'worker_spawn');
      assert.ok(spawn);
      const noop = async (): Promise<void> => undefined;
      const result = await harness.registry.call(
        spawn,
        { agentId: 'human', kind: 'codex' },
        { signal: new AbortController().signal, sendNotification: noop },
      );
      assert.equal(result.isError, true);
      assert.equal(result._meta?.['tandem/errorCode'], 'INVALID_INPUT');
      assert.match(JSON.stringify(result.content), /reserved/);
      assert.deepEqual(harness.calls.at(-1), {
        tool: 'worker_spawn',
        agentId: 'human',
        ok: false,
        code: 'INVALID_INPUT',
      });
      assert.equal(harness.services.workers.list({ includeStopped: true }).length, 0);
    });

    it('refuses unknown input keys instead of silently dropping them', async function () {
      const text = await harness.callInvalid('worker_list', { agentId: AGENT, sneaky: true });
      assert.match(text, /sneaky|unrecognized/i);
    });
  });

  describe('panic', function () {
    it('refuses every mutating tool with PANIC_ENGAGED and changes nothing; read-only tools still answer', async function () {
      const workerId = workerIdOf(await harness.callOk('worker_spawn', { agentId: AGENT, kind: 'codex' }));
      const done = runOf(
        await harness.callOk('task_dispatch', {
          agentId: AGENT,
          workerId,
          prompt: 'hello',
          role: 'reviewer',
          waitSeconds: 5,
        }),
      );
      assert.equal(done.status, 'succeeded');

      const engaged = await harness.callOk('panic_engage', { agentId: AGENT, reason: 'stop everything' });
      assert.equal((engaged.panic as { engaged: boolean }).engaged, true);

      const workersBefore = JSON.stringify(harness.services.workers.list({ includeStopped: true }));
      const runsBefore = harness.services.store.size;
      const promptsBefore = promptCount(harness);
      const mutatingArgs: Record<string, ToolArgs> = {
        worker_spawn: { kind: 'gemini' },
        worker_stop: { workerId },
        task_dispatch: { workerId, prompt: '[[scenario:write path=panic.txt]]', waitSeconds: 1 },
        strategy_run: {
          strategy: 'single_worker',
          prompt: '[[scenario:write path=panic.txt]]',
          waitSeconds: 1,
        },
        playbook_run: {
          playbook: 'single_worker',
          task: '[[scenario:write path=panic.txt]]',
          waitSeconds: 1,
        },
        run_cancel: { runId: done.id },
      };
      const mutating = harness.registry.list().filter((tool) => tool.mutating);
      assert.deepEqual(mutating.map((tool) => tool.name).sort(), Object.keys(mutatingArgs).sort());
      for (const tool of mutating) {
        const code = await harness.callError(tool.name, { agentId: AGENT, ...mutatingArgs[tool.name] });
        assert.equal(code, 'PANIC_ENGAGED', tool.name);
      }
      assert.equal(JSON.stringify(harness.services.workers.list({ includeStopped: true })), workersBefore);
      assert.equal(harness.services.store.size, runsBefore);
      assert.equal(promptCount(harness), promptsBefore, 'a worker step ran while panic was engaged');
      assert.equal(harness.services.store.get(done.id).status, 'succeeded');

      const readArgs: Record<string, ToolArgs> = {
        probe: {},
        worker_list: {},
        run_list: {},
        run_get: { runId: done.id },
        run_wait: { runId: done.id, timeoutSeconds: 0 },
        panic_status: {},
        playbook_list: {},
      };
      const readOnly = harness.registry
        .list()
        .filter((tool) => !tool.mutating && tool.name !== 'panic_engage');
      assert.deepEqual(readOnly.map((tool) => tool.name).sort(), Object.keys(readArgs).sort());
      for (const tool of readOnly) {
        await harness.callOk(tool.name, { agentId: OTHER, ...readArgs[tool.name] });
      }
      const status = await harness.callOk('panic_status', { agentId: OTHER });
      assert.deepEqual(
        {
          engaged: (status.panic as { engaged: boolean }).engaged,
          by: (status.panic as { engagedBy: string }).engagedBy,
        },
        { engaged: true, by: AGENT },
      );

      // Engaging again while engaged still works (and records the new caller).
      const again = await harness.callOk('panic_engage', { agentId: OTHER, reason: 'me too' });
      assert.equal((again.panic as { engagedBy: string }).engagedBy, OTHER);
      assert.equal(again.cancelledRuns, 0);
    });

    it('panic_engage cancels a run in flight', async function () {
      const started = runOf(
        await harness.callOk('strategy_run', {
          agentId: AGENT,
          strategy: 'single_worker',
          prompt: '[[scenario:hang]]',
        }),
      );
      await eventually(() => promptCount(harness) === 1, 'the writer step to start');
      assert.equal(harness.services.store.get(started.id).status, 'running');

      const engaged = await harness.callOk('panic_engage', { agentId: OTHER, reason: 'runaway worker' });
      assert.equal(engaged.cancelledRuns, 1);
      const got = await harness.callOk('run_get', { agentId: AGENT, runId: started.id });
      assert.equal(runOf(got).status, 'cancelled');
    });

    it('offers no tool that releases panic', async function () {
      const { tools } = await harness.client.listTools();
      assert.deepEqual(
        tools.filter((tool) => /release/i.test(tool.name)),
        [],
      );
      assert.deepEqual(
        harness.registry.list().filter((tool) => /release/i.test(tool.name)),
        [],
      );
      await harness.callOk('panic_engage', { agentId: AGENT, reason: 'test' });
      const result = await harness.client.callTool({ name: 'panic_release', arguments: { agentId: AGENT } });
      assert.equal(result.isError, true);
      assert.equal(harness.services.panic.status().engaged, true);
    });

    it('lets mutating tools work again after a human releases panic', async function () {
      await harness.callOk('panic_engage', { agentId: AGENT, reason: 'test' });
      assert.equal(
        await harness.callError('worker_spawn', { agentId: AGENT, kind: 'codex' }),
        'PANIC_ENGAGED',
      );
      await harness.services.panic.release('human');
      const spawned = await harness.callOk('worker_spawn', { agentId: AGENT, kind: 'codex' });
      assert.equal(harness.services.workers.get(workerIdOf(spawned)).owner, AGENT);
    });

    it('stays engaged when the services are reopened on the same workspace', async function () {
      await harness.callOk('panic_engage', { agentId: AGENT, reason: 'survive a restart' });
      const root = harness.root;
      await harness.close({ keepRoot: true });
      harness = await openHarness({ root });
      const status = await harness.callOk('panic_status', { agentId: OTHER });
      assert.deepEqual(
        status.panic && (status.panic as { engaged: boolean; reason: string }).reason,
        'survive a restart',
      );
      assert.equal((status.panic as { engaged: boolean }).engaged, true);
      assert.equal(
        await harness.callError('worker_spawn', { agentId: AGENT, kind: 'codex' }),
        'PANIC_ENGAGED',
      );
      assert.equal(harness.services.workers.list({ includeStopped: true }).length, 0);
    });
  });

  describe('in-process calls (the editor commands)', function () {
    it('checks the input against the same strict schema a client gets, agentId included', async function () {
      const missing = await harness.registry.callTool('worker_spawn', { kind: 'codex' });
      assert.equal(missing.isError, true);
      assert.match(JSON.stringify(missing.content), /INVALID_INPUT: agentId/);
      const extra = await harness.registry.callTool('worker_spawn', {
        agentId: AGENT,
        kind: 'codex',
        shell: 'x',
      });
      assert.equal(extra.isError, true);
      assert.match(JSON.stringify(extra.content), /INVALID_INPUT/);
      const wrongKind = await harness.registry.callTool('worker_spawn', { agentId: AGENT, kind: 'bash' });
      assert.match(JSON.stringify(wrongKind.content), /INVALID_INPUT: kind/);
      assert.equal(harness.services.workers.list().length, 0);
    });

    it('refuses "human" as an agentId but offers the editor user its own path, through the panic switch', async function () {
      const claimed = await harness.registry.callTool('worker_spawn', { agentId: 'human', kind: 'codex' });
      assert.match(JSON.stringify(claimed.content), /reserved/);
      const smuggled = await harness.registry.callTool(
        'worker_spawn',
        { agentId: AGENT, kind: 'codex' },
        { asHuman: true },
      );
      assert.match(JSON.stringify(smuggled.content), /INVALID_INPUT/);
      await harness.services.panic.engage('human', 'test');
      const refused = await harness.registry.callTool('worker_spawn', { kind: 'codex' }, { asHuman: true });
      assert.equal(refused._meta?.['tandem/errorCode'], 'PANIC_ENGAGED');
      assert.equal(harness.services.workers.list().length, 0);
      await harness.services.panic.release('human');
      const spawned = await harness.registry.callTool('worker_spawn', { kind: 'codex' }, { asHuman: true });
      assert.equal(spawned.isError, undefined);
      assert.equal(harness.services.workers.list()[0]?.owner, 'human');
      assert.deepEqual(harness.calls.at(-1), { tool: 'worker_spawn', agentId: 'human', ok: true });
    });
  });

  describe('duplicate tool names', function () {
    it('refuses a tool defined twice, naming it', function () {
      const registry = createToolRegistry(harness.services);
      const first = registry.list()[0];
      assert.ok(first);
      assert.throws(
        () => registry.define(first),
        (error: unknown) =>
          error instanceof DuplicateToolError &&
          error.toolName === first.name &&
          error.message.includes(`"${first.name}"`),
      );
      assert.equal(registry.list().length, harness.registry.list().length);
    });

    it('fails start-up when the tool set is defined twice on one registry', function () {
      const registry = new ToolRegistry({
        panicEngaged: async () => ({ engaged: false, by: null, reason: null }),
      });
      defineTools(registry, harness.services);
      assert.throws(() => defineTools(registry, harness.services), DuplicateToolError);
    });
  });

  describe('ownership (the owner rule)', function () {
    /** Every tool that takes a worker or run id, by what it does with someone else's. */
    const ACTS_ON_OWNED = ['run_cancel', 'task_dispatch', 'worker_stop'];
    const READS = ['run_get', 'run_wait'];

    /** The text of a refusal: the code, the owner, the rule and what to do instead. */
    async function refusal(tool: string, args: ToolArgs): Promise<string> {
      const result = await callRaw(harness.client, tool, args);
      assert.equal(result.isError, true, `${tool} by ${String(args.agentId)} should have been refused`);
      assert.equal(result._meta?.['tandem/errorCode'], 'NOT_OWNER');
      return result.content.map((part) => (part.type === 'text' ? part.text : '')).join('');
    }

    async function startSlowRun(): Promise<string> {
      const run = runOf(
        await harness.callOk('strategy_run', {
          agentId: AGENT,
          strategy: 'single_worker',
          prompt: '[[scenario:slow ms=5000]]',
        }),
      );
      await waitForRunStatus(harness, run.id, 'running');
      return run.id;
    }

    it('classifies every tool that takes a worker or run id: acting ones are owner-only, the rest only read', function () {
      const takesId = harness.registry
        .list()
        .filter((tool) => 'workerId' in tool.input || 'runId' in tool.input)
        .map((tool) => tool.name)
        .sort();
      assert.deepEqual(takesId, [...ACTS_ON_OWNED, ...READS].sort());
      for (const tool of harness.registry.list()) {
        if (READS.includes(tool.name)) assert.equal(tool.mutating, false, tool.name);
        if (ACTS_ON_OWNED.includes(tool.name)) {
          assert.equal(tool.mutating, true, tool.name);
          assert.match(tool.description, /owner|you spawned|you started/, tool.name);
        }
      }
    });

    it('refuses worker_stop on a foreign worker, naming its owner and the rule; the owner may stop it', async function () {
      const workerId = workerIdOf(await harness.callOk('worker_spawn', { agentId: AGENT, kind: 'gemini' }));
      const text = await refusal('worker_stop', { agentId: OTHER, workerId });
      assert.match(
        text,
        new RegExp(`^NOT_OWNER: Worker ${workerId} belongs to agentId "${AGENT}", not "${OTHER}"`),
      );
      assert.match(
        text,
        /Owner rule: only the agent that spawned it, or the human at the editor, may stop it/,
      );
      assert.match(text, /worker_spawn/);
      assert.equal(harness.services.workers.get(workerId).state, 'idle');
      const stopped = await harness.callOk('worker_stop', { agentId: AGENT, workerId });
      assert.equal((stopped.worker as { state: string }).state, 'stopped');
      assert.equal(harness.services.workers.get(workerId).state, 'stopped');
    });

    it('refuses task_dispatch to a foreign worker before recording a run; the owner may dispatch', async function () {
      const workerId = workerIdOf(await harness.callOk('worker_spawn', { agentId: AGENT, kind: 'codex' }));
      const prompts = promptCount(harness);
      const text = await refusal('task_dispatch', {
        agentId: OTHER,
        workerId,
        prompt: 'take over',
        role: 'reviewer',
      });
      assert.match(text, new RegExp(`Worker ${workerId} belongs to agentId "${AGENT}", not "${OTHER}"`));
      assert.match(text, /may dispatch a task to it/);
      assert.equal(promptCount(harness), prompts, 'the foreign dispatch reached the worker');
      assert.deepEqual(harness.services.store.list({ limit: 10 }), []);
      const own = runOf(
        await harness.callOk('task_dispatch', {
          agentId: AGENT,
          workerId,
          prompt: 'review it',
          role: 'reviewer',
          waitSeconds: 10,
        }),
      );
      assert.equal(own.status, 'succeeded');
    });

    it('refuses run_cancel on a foreign run, naming its owner and the rule; the owner may cancel it', async function () {
      const runId = await startSlowRun();
      const text = await refusal('run_cancel', { agentId: OTHER, runId });
      assert.match(text, new RegExp(`Run ${runId} belongs to agentId "${AGENT}", not "${OTHER}"`));
      assert.match(text, /only the agent that started it, or the human at the editor, may cancel it/);
      assert.equal(harness.services.store.get(runId).status, 'running');
      const cancelled = await harness.callOk('run_cancel', { agentId: AGENT, runId });
      assert.equal(runOf(cancelled).status, 'cancelled');
      assert.equal(harness.services.store.get(runId).status, 'cancelled');
    });

    it('lets any agent read a foreign run (run_get, run_wait)', async function () {
      const run = runOf(
        await harness.callOk('strategy_run', {
          agentId: AGENT,
          strategy: 'single_worker',
          prompt: 'done soon',
          waitSeconds: 10,
        }),
      );
      for (const tool of READS) {
        const read = await harness.callOk(tool, { agentId: OTHER, runId: run.id });
        assert.equal(runOf(read).id, run.id, tool);
      }
    });

    it('lets the human at the editor stop, dispatch to and cancel what an agent owns', async function () {
      const workerId = workerIdOf(await harness.callOk('worker_spawn', { agentId: AGENT, kind: 'codex' }));
      const dispatched = await harness.registry.callTool(
        'task_dispatch',
        { workerId, prompt: 'check it', role: 'reviewer', waitSeconds: 10 },
        { asHuman: true },
      );
      assert.notEqual(dispatched.isError, true, JSON.stringify(dispatched.content));
      const runId = await startSlowRun();
      const cancelled = await harness.registry.callTool('run_cancel', { runId }, { asHuman: true });
      assert.notEqual(cancelled.isError, true, JSON.stringify(cancelled.content));
      assert.equal(harness.services.store.get(runId).status, 'cancelled');
      const stopped = await harness.registry.callTool('worker_stop', { workerId }, { asHuman: true });
      assert.notEqual(stopped.isError, true, JSON.stringify(stopped.content));
      assert.equal(harness.services.workers.get(workerId).state, 'stopped');
    });
  });
});
