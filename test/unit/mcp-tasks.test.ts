// MCP Tasks for strategy_run, playbook_run and task_dispatch (experimental SDK API): a plain call answers as before, a
// task call gets a task whose id is the run id, and the guardrails hold for both.
import * as assert from 'node:assert/strict';
import { CallToolResultSchema, type CallToolResult, type Task } from '@modelcontextprotocol/sdk/types.js';
import { eventually, openHarness, type McpHarness, type ToolArgs } from '../support/mcp-harness';
import { taskStatusOf } from '../../src/mcp/tasks';

const AGENT = 'agent-a';

interface StreamOutcome {
  created?: Task;
  statuses: string[];
  result?: CallToolResult;
  error?: Error;
}

/** A task-augmented tools/call followed to its end (or only until the task exists). */
async function callAsTask(
  harness: McpHarness,
  name: string,
  args: ToolArgs,
  options: { untilCreated?: boolean; ttl?: number } = {},
): Promise<StreamOutcome> {
  const outcome: StreamOutcome = { statuses: [] };
  const stream = harness.client.experimental.tasks.callToolStream(
    { name, arguments: args },
    CallToolResultSchema,
    { task: options.ttl === undefined ? {} : { ttl: options.ttl } },
  );
  for await (const message of stream) {
    if (message.type === 'taskCreated') {
      outcome.created = message.task;
      outcome.statuses.push(message.task.status);
      if (options.untilCreated) break;
    } else if (message.type === 'taskStatus') {
      outcome.statuses.push(message.task.status);
    } else if (message.type === 'result') {
      outcome.result = message.result as CallToolResult;
    } else if (message.type === 'error') {
      outcome.error = message.error;
    }
  }
  return outcome;
}

function runOf(result: CallToolResult | undefined): { id: string; status: string } {
  return (result?.structuredContent as { run: { id: string; status: string } }).run;
}

describe('MCP Tasks (strategy_run, task_dispatch)', function () {
  let harness: McpHarness;

  beforeEach(async function () {
    harness = await openHarness();
  });

  afterEach(async function () {
    await harness.close();
  });

  it('offers exactly the three long tools as optional tasks', async function () {
    const { tools } = await harness.client.listTools();
    const offered = tools.filter((tool) => tool.execution?.taskSupport === 'optional').map((t) => t.name);
    assert.deepEqual(offered.sort(), ['playbook_run', 'strategy_run', 'task_dispatch']);
    assert.ok(harness.client.getServerCapabilities()?.tasks?.requests?.tools?.call);
  });

  it('answers a plain tools/call of strategy_run as before, and lists no task for it', async function () {
    const quick = await harness.callOk('strategy_run', {
      agentId: AGENT,
      strategy: 'single_worker',
      prompt: '[[scenario:slow ms=3000]]',
    });
    const run = quick.run as { id: string; status: string };
    assert.match(run.id, /^run-/);
    assert.equal(quick.finished, false, 'waitSeconds=0 still returns at once');
    const waited = await harness.callOk('strategy_run', {
      agentId: AGENT,
      strategy: 'single_worker',
      prompt: 'hello [[scenario:reply]]',
      waitSeconds: 20,
    });
    assert.equal(waited.finished, true);
    assert.equal((waited.run as { status: string }).status, 'succeeded');
    const { tasks } = await harness.client.experimental.tasks.listTasks();
    assert.deepEqual(tasks, []);
    await harness.callInvalid('strategy_run', { agentId: AGENT, strategy: 'nope', prompt: 'x' });
  });

  it('runs strategy_run as a task: task id = run id, working then completed, result = the run', async function () {
    const outcome = await callAsTask(
      harness,
      'strategy_run',
      { agentId: AGENT, strategy: 'single_worker', prompt: '[[scenario:slow ms=1500]]' },
      { ttl: 60_000 },
    );
    assert.equal(outcome.error, undefined, outcome.error?.message);
    const taskId = outcome.created?.taskId as string;
    assert.ok(harness.services.store.has(taskId), 'the task id is a run id');
    assert.equal(outcome.created?.ttl, 60_000);
    assert.equal(outcome.statuses[0], 'working');
    assert.equal(outcome.statuses[outcome.statuses.length - 1], 'completed');
    assert.equal(runOf(outcome.result).id, taskId);
    assert.equal(runOf(outcome.result).status, 'succeeded');
    assert.equal(outcome.result?.structuredContent?.finished, true);

    const again = (await harness.client.experimental.tasks.getTaskResult(
      taskId,
      CallToolResultSchema,
    )) as CallToolResult;
    assert.deepEqual(again.structuredContent, outcome.result?.structuredContent);
    const task = await harness.client.experimental.tasks.getTask(taskId);
    assert.equal(task.status, 'completed');

    const { tasks } = await harness.client.experimental.tasks.listTasks();
    assert.deepEqual(
      tasks.map((t) => [t.taskId, t.status]),
      [[taskId, 'completed']],
    );
  });

  it('runs task_dispatch as a task too', async function () {
    const { worker } = await harness.callOk('worker_spawn', { agentId: AGENT, kind: 'gemini' });
    const outcome = await callAsTask(harness, 'task_dispatch', {
      agentId: AGENT,
      workerId: (worker as { id: string }).id,
      role: 'reviewer',
      prompt: 'look [[scenario:reply]]',
    });
    assert.equal(outcome.error, undefined, outcome.error?.message);
    assert.equal(runOf(outcome.result).id, outcome.created?.taskId);
    assert.equal(outcome.created?.ttl, null);
  });

  it('cancels the run when the task is cancelled, aborting the worker step', async function () {
    const outcome = await callAsTask(
      harness,
      'strategy_run',
      { agentId: AGENT, strategy: 'single_worker', prompt: '[[scenario:hang]]' },
      { untilCreated: true },
    );
    const taskId = outcome.created?.taskId as string;
    await eventually(() => harness.fakes.codex.prompts.length === 1, 'the writer to start');
    const cancelled = await harness.client.experimental.tasks.cancelTask(taskId);
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(harness.services.store.get(taskId).status, 'cancelled');
    const got = await harness.callOk('run_get', { agentId: AGENT, runId: taskId });
    const steps = got.steps as { status: string }[];
    assert.equal(steps[0]?.status, 'cancelled', 'the fake step saw the abort');
    assert.equal((await harness.client.experimental.tasks.getTask(taskId)).status, 'cancelled');
  });

  it('refuses a task call without agentId, starting nothing', async function () {
    const before = harness.services.store.size;
    const outcome = await callAsTask(harness, 'strategy_run', {
      strategy: 'single_worker',
      prompt: '[[scenario:reply]]',
    });
    assert.equal(outcome.created, undefined);
    // The SDK validates the input before any task exists; its "Input validation error" tool result is
    // not a task, so the server itself answers with JSON-RPC error -32602 "Invalid task creation result".
    assert.match(String(outcome.error?.message), /-32602.*Invalid task creation result/);
    assert.equal(harness.services.store.size, before);
    assert.equal(harness.fakes.codex.prompts.length, 0);
  });

  it('refuses a task call while panic is engaged, with PANIC_ENGAGED', async function () {
    await harness.callOk('panic_engage', { agentId: AGENT, reason: 'test' });
    const before = harness.services.store.size;
    const outcome = await callAsTask(harness, 'strategy_run', {
      agentId: AGENT,
      strategy: 'single_worker',
      prompt: '[[scenario:reply]]',
    });
    // The refusal is the tool's answer, as on a plain call: a completed task whose result is the error.
    assert.equal(outcome.created?.status, 'completed');
    assert.match(String(outcome.created?.statusMessage), /^PANIC_ENGAGED: /);
    const refusal = (await harness.client.experimental.tasks.getTaskResult(
      outcome.created?.taskId as string,
      CallToolResultSchema,
    )) as CallToolResult;
    assert.equal(refusal.isError, true);
    assert.equal(refusal._meta?.['tandem/errorCode'], 'PANIC_ENGAGED');
    assert.equal(harness.services.store.size, before);
    // The plain call is refused exactly as before.
    assert.equal(
      await harness.callError('strategy_run', {
        agentId: AGENT,
        strategy: 'single_worker',
        prompt: '[[scenario:reply]]',
      }),
      'PANIC_ENGAGED',
    );
  });

  it('keeps tasks across a server restart, because runs are kept', async function () {
    const outcome = await callAsTask(harness, 'strategy_run', {
      agentId: AGENT,
      strategy: 'single_worker',
      prompt: '[[scenario:reply]]',
    });
    const taskId = outcome.created?.taskId as string;
    const root = harness.root;
    await harness.close({ keepRoot: true });
    harness = await openHarness({ root });
    assert.equal((await harness.client.experimental.tasks.getTask(taskId)).status, 'completed');
    const result = (await harness.client.experimental.tasks.getTaskResult(
      taskId,
      CallToolResultSchema,
    )) as CallToolResult;
    assert.equal(runOf(result).id, taskId);
  });
});

describe('task status of a run', () => {
  it('completes the task for every finished run but a cancelled one: a failed run is a result, not an error', () => {
    assert.deepEqual(
      (['queued', 'running', 'succeeded', 'partial', 'failed', 'interrupted', 'cancelled'] as const).map(
        taskStatusOf,
      ),
      ['working', 'working', 'completed', 'completed', 'completed', 'completed', 'cancelled'],
    );
  });
});
