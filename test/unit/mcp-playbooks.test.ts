// Specification of playbook_list and playbook_run, black box through the SDK client with the fake CLIs: the
// built-ins and the workspace's own files listed (a broken file with the exact path of its fault), a playbook
// run to its end, and every refusal (unknown playbook, broken file, bad input, panic, untrusted workspace)
// leaving no run and no worker step behind.
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { DEFAULT_WRITE_CONTENT } from '../../src/offline/model-server';
import { TRACE_FILE, type PlaybookTrace } from '../../src/orchestrator/playbook/engine';
import { BUILTIN_PLAYBOOKS } from '../../src/orchestrator/playbook/builtin';
import { PLAYBOOKS_DIR } from '../../src/orchestrator/playbook/library';
import { callRaw, openHarness, type McpHarness, type Structured } from '../support/mcp-harness';

const AGENT = 'agent-a';

const MINE = {
  format: 1,
  name: 'mine',
  description: 'One CLI writes, the change is applied.',
  inputs: {
    writer: { type: 'worker', default: 'gemini', description: 'Who writes.' },
    note: { type: 'string', default: 'none' },
  },
  steps: [
    { type: 'write', id: 'write', worker: { input: 'writer' } },
    { type: 'apply', id: 'apply', of: 'write' },
  ],
};

/** Reviews a step that does not exist: refused by the reference check, at steps[1].of. */
const BROKEN = {
  format: 1,
  name: 'broken',
  description: 'Refers to a step that does not exist.',
  steps: [
    { type: 'write', id: 'w1', worker: 'codex' },
    { type: 'review', id: 'r1', worker: 'gemini', of: 'w2' },
  ],
};
const BROKEN_ERROR = `${PLAYBOOKS_DIR}/broken.json: steps[1].of: no step has the id "w2"`;

/**
 * A worker that is not a CLI and a verdict no review gives: refused by the shape check, each inside its field of
 * several forms. Its file is `shaky-draft.json`, the name written in it `shaky`.
 */
const SHAKY = {
  format: 1,
  name: 'shaky',
  description: 'Names a CLI Tandem does not run and a verdict no review gives.',
  steps: [
    { type: 'write', id: 'w1', worker: 'claude' },
    { type: 'review', id: 'r1', worker: 'gemini', of: 'w1' },
    { type: 'apply', id: 'a1', of: 'w1', when: { verdict: { step: 'r1', is: 'yes' } } },
  ],
};
const SHAKY_ERROR =
  `${PLAYBOOKS_DIR}/shaky-draft.json: ` +
  'steps[0].worker: expected "codex", "gemini", { "input": INPUT }, { "otherThan": STEP }, { "sameAs": STEP } ' +
  'or { "otherThanInput": INPUT }, got the string "claude"; ' +
  'steps[2].when.verdict.is: expected "approve" or "request_changes", got the string "yes"';

interface PlaybookView {
  name: string;
  description: string;
  source: string;
  builtin: boolean;
  hash: string | null;
  inputs: Record<
    string,
    { type: string; default: unknown; description: string | null; min: number | null; max: number | null }
  >;
  error: string | null;
}

interface RunView {
  id: string;
  kind: string;
  strategy: string | null;
  playbook: { name: string; hash: string; source: string } | null;
  owner: string;
  status: string;
  applied: boolean;
  outcome: string | null;
  decision: string | null;
}

function textOf(result: CallToolResult): string {
  return result.content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');
}

function promptCount(harness: McpHarness): number {
  return harness.fakes.codex.prompts.length + harness.fakes.gemini.prompts.length;
}

async function writePlaybook(harness: McpHarness, file: string, content: unknown): Promise<void> {
  await mkdir(path.join(harness.root, PLAYBOOKS_DIR), { recursive: true });
  await writeFile(
    path.join(harness.root, PLAYBOOKS_DIR, file),
    typeof content === 'string' ? content : JSON.stringify(content, null, 2),
  );
}

describe('MCP playbook tools', function () {
  let harness: McpHarness;

  beforeEach(async function () {
    harness = await openHarness();
  });

  afterEach(async function () {
    await harness?.close();
  });

  describe('playbook_list', function () {
    it('lists the eight built-ins with their inputs, hash and description', async function () {
      const { playbooks } = await harness.callOk('playbook_list', { agentId: AGENT });
      const list = playbooks as PlaybookView[];
      assert.equal(BUILTIN_PLAYBOOKS.length, 8);
      assert.deepEqual(
        list.map((entry) => entry.name),
        BUILTIN_PLAYBOOKS.map((playbook) => playbook.name),
      );
      for (const entry of list) {
        assert.equal(entry.builtin, true, entry.name);
        assert.equal(entry.source, `builtin:${entry.name}`);
        assert.match(entry.hash ?? '', /^[0-9a-f]{12}$/, entry.name);
        assert.equal(entry.error, null, entry.name);
        assert.ok(entry.description.length > 20, entry.name);
      }
      const handoff = list.find((entry) => entry.name === 'handoff');
      assert.deepEqual(handoff?.inputs.rounds, {
        type: 'integer',
        default: 3,
        description: 'Review rounds at most (the first review plus up to rounds-1 revisions).',
        min: 1,
        max: 6,
      });
      assert.deepEqual(handoff?.inputs.writer, {
        type: 'worker',
        default: 'codex',
        description: 'Who writes; the other CLI reviews.',
        min: null,
        max: null,
      });
      const adjudicate = list.find((entry) => entry.name === 'parallel_adjudicate');
      assert.deepEqual(adjudicate?.inputs.verify?.default, []);
    });

    it("lists the workspace's own playbook, and a broken one with the exact path of its fault", async function () {
      await writePlaybook(harness, 'mine.json', MINE);
      await writePlaybook(harness, 'broken.json', BROKEN);
      await writePlaybook(harness, 'garbled.json', '{ "format": 1,');
      const result = await callRaw(harness.client, 'playbook_list', { agentId: AGENT });
      assert.notEqual(result.isError, true, textOf(result));
      const list = (result.structuredContent as Structured).playbooks as PlaybookView[];
      assert.equal(list.length, 11);
      const byName = new Map(list.map((entry) => [entry.name, entry]));

      const mine = byName.get('mine');
      assert.deepEqual(
        { source: mine?.source, builtin: mine?.builtin, error: mine?.error },
        { source: `${PLAYBOOKS_DIR}/mine.json`, builtin: false, error: null },
      );
      assert.match(mine?.hash ?? '', /^[0-9a-f]{12}$/);
      assert.deepEqual(Object.keys(mine?.inputs ?? {}), ['writer', 'note']);
      assert.equal(mine?.inputs.writer?.default, 'gemini');

      const broken = byName.get('broken');
      assert.deepEqual(
        { source: broken?.source, hash: broken?.hash, error: broken?.error },
        { source: `${PLAYBOOKS_DIR}/broken.json`, hash: null, error: BROKEN_ERROR },
      );
      const garbled = byName.get('garbled');
      assert.match(garbled?.error ?? '', /^\.tandem\/playbooks\/garbled\.json: \(top\): not valid JSON/);

      // The text: one line per playbook, a broken one saying why.
      const lines = textOf(result).split('\n');
      assert.equal(lines.length, 11);
      assert.ok(lines.includes(`broken (${PLAYBOOKS_DIR}/broken.json): cannot be used: ${BROKEN_ERROR}`));
      assert.ok(
        lines.some((line) => line.startsWith('handoff (builtin:handoff; inputs writer="codex", rounds=3)')),
      );
      assert.ok(
        lines.some((line) => line.startsWith(`mine (${PLAYBOOKS_DIR}/mine.json; inputs writer="gemini"`)),
      );
    });

    it('lists a file with a shape error under its file name, with the exact path of each fault', async function () {
      await writePlaybook(harness, 'shaky-draft.json', SHAKY);
      const result = await callRaw(harness.client, 'playbook_list', { agentId: AGENT });
      assert.notEqual(result.isError, true, textOf(result));
      const list = (result.structuredContent as Structured).playbooks as PlaybookView[];
      const shaky = list.filter((entry) => !entry.builtin);
      assert.deepEqual(
        shaky.map((entry) => ({
          name: entry.name,
          source: entry.source,
          hash: entry.hash,
          error: entry.error,
        })),
        [
          {
            name: 'shaky-draft',
            source: `${PLAYBOOKS_DIR}/shaky-draft.json`,
            hash: null,
            error: SHAKY_ERROR,
          },
        ],
      );
      assert.ok(
        textOf(result)
          .split('\n')
          .includes(`shaky-draft (${PLAYBOOKS_DIR}/shaky-draft.json): cannot be used: ${SHAKY_ERROR}`),
        textOf(result),
      );
    });

    it('answers in an untrusted workspace and under panic: it only reads', async function () {
      const untrusted = await openHarness({ trusted: false });
      try {
        const { playbooks } = await untrusted.callOk('playbook_list', { agentId: AGENT });
        assert.equal((playbooks as unknown[]).length, 8);
      } finally {
        await untrusted.close();
      }
      await harness.services.panic.engage(AGENT, 'testing');
      const { playbooks } = await harness.callOk('playbook_list', { agentId: AGENT });
      assert.equal((playbooks as unknown[]).length, 8);
    });
  });

  describe('playbook_run', function () {
    it('runs handoff to the end: review asks for changes, the revision is approved and applied', async function () {
      const result = await harness.callOk('playbook_run', {
        agentId: AGENT,
        playbook: 'handoff',
        task: '[[role:reviewer step=review verdict=request_changes]] [[scenario:write path=h.txt]] Add h.txt.',
        waitSeconds: 20,
      });
      const run = result.run as RunView;
      assert.equal(result.finished, true);
      assert.deepEqual(
        {
          kind: run.kind,
          strategy: run.strategy,
          owner: run.owner,
          status: run.status,
          applied: run.applied,
        },
        { kind: 'playbook', strategy: null, owner: AGENT, status: 'succeeded', applied: true },
        `${run.outcome} / ${run.decision}`,
      );
      assert.equal(run.playbook?.name, 'handoff');
      assert.equal(run.playbook?.source, 'builtin:handoff');
      assert.match(run.playbook?.hash ?? '', /^[0-9a-f]{12}$/);
      assert.equal(await readFile(path.join(harness.root, 'h.txt'), 'utf8'), DEFAULT_WRITE_CONTENT);

      const got = await harness.callOk('run_get', { agentId: AGENT, runId: run.id });
      const steps = got.steps as {
        name: string;
        workerKind: string;
        status: string;
        verdict: string | null;
      }[];
      assert.deepEqual(
        steps.map((step) => `${step.name}:${step.workerKind}:${step.status}:${step.verdict}`),
        [
          'write:codex:succeeded:null',
          'review:gemini:succeeded:request_changes',
          'revise-2:codex:succeeded:null',
          'review-2:gemini:succeeded:approve',
        ],
      );
      const trace = JSON.parse(
        (await harness.services.store.readRunFile(run.id, TRACE_FILE)) ?? '{}',
      ) as PlaybookTrace;
      assert.deepEqual(
        { task: trace.task, apply: trace.apply, inputs: trace.inputs, hash: trace.hash },
        {
          task: '[[role:reviewer step=review verdict=request_changes]] [[scenario:write path=h.txt]] Add h.txt.',
          apply: 'if_approved',
          inputs: { writer: 'codex', rounds: 3 },
          hash: run.playbook?.hash,
        },
      );
    });

    it("runs the workspace's own playbook with the inputs given, keeping the change with apply=never", async function () {
      await writePlaybook(harness, 'mine.json', MINE);
      const result = await harness.callOk('playbook_run', {
        agentId: AGENT,
        playbook: 'mine',
        task: '[[scenario:write path=m.txt]] Add m.txt.',
        inputs: { writer: 'codex', note: 'from the test' },
        apply: 'never',
        waitSeconds: 20,
      });
      const run = result.run as RunView;
      assert.equal(run.status, 'succeeded', run.outcome ?? '');
      assert.equal(run.applied, false);
      assert.equal(run.playbook?.source, `${PLAYBOOKS_DIR}/mine.json`);
      assert.equal(existsSync(path.join(harness.root, 'm.txt')), false);
      assert.deepEqual([harness.fakes.codex.prompts.length, harness.fakes.gemini.prompts.length], [1, 0]);
    });

    it('hands a failed writer to the other CLI with fallback: true', async function () {
      const result = await harness.callOk('playbook_run', {
        agentId: AGENT,
        playbook: 'single_worker',
        task: '[[role:writer cli=codex scenario=http500]] [[scenario:write path=f.txt]] Add f.txt.',
        fallback: true,
        waitSeconds: 20,
      });
      const run = result.run as RunView;
      assert.equal(run.status, 'succeeded', run.outcome ?? '');
      const got = await harness.callOk('run_get', { agentId: AGENT, runId: run.id });
      assert.deepEqual(
        (got.steps as { name: string; workerKind: string; status: string }[]).map(
          (step) => `${step.name}:${step.workerKind}:${step.status}`,
        ),
        ['write:codex:failed', 'write-fallback:gemini:succeeded'],
      );
      assert.ok(existsSync(path.join(harness.root, 'f.txt')));
    });

    it('fails the run without fallback when the writer fails', async function () {
      const result = await harness.callOk('playbook_run', {
        agentId: AGENT,
        playbook: 'single_worker',
        task: '[[role:writer cli=codex scenario=http500]] [[scenario:write path=f.txt]] Add f.txt.',
        waitSeconds: 20,
      });
      assert.equal((result.run as RunView).status, 'failed');
      assert.equal(harness.fakes.gemini.prompts.length, 0);
    });

    it('returns at once with waitSeconds 0 and the run still going', async function () {
      const result = await harness.callOk('playbook_run', {
        agentId: AGENT,
        playbook: 'single_worker',
        task: '[[scenario:slow ms=2000]]',
      });
      assert.equal(result.finished, false);
      const run = result.run as RunView;
      assert.ok(['queued', 'running'].includes(run.status), run.status);
      assert.match(
        textOf(await callRaw(harness.client, 'run_get', { agentId: AGENT, runId: run.id })),
        /playbook:single_worker/,
      );
    });

    it('runs as an MCP Task too: the task id is the run id, its result the finished run', async function () {
      const stream = harness.client.experimental.tasks.callToolStream(
        {
          name: 'playbook_run',
          arguments: { agentId: AGENT, playbook: 'single_worker', task: '[[scenario:write path=t.txt]]' },
        },
        CallToolResultSchema,
        { task: {} },
      );
      let taskId: string | undefined;
      let result: CallToolResult | undefined;
      for await (const message of stream) {
        if (message.type === 'taskCreated') taskId = message.task.taskId;
        else if (message.type === 'result') result = message.result as CallToolResult;
        else if (message.type === 'error') assert.fail(message.error.message);
      }
      assert.ok(taskId && harness.services.store.has(taskId), 'the task id is a run id');
      const run = (result?.structuredContent as { run: RunView }).run;
      assert.deepEqual([run.id, run.status, run.playbook?.name], [taskId, 'succeeded', 'single_worker']);
      const { tasks } = await harness.client.experimental.tasks.listTasks();
      assert.deepEqual(
        tasks.map((task) => [task.taskId, task.status]),
        [[taskId, 'completed']],
      );
    });

    describe('refusals leave no run and no worker step', function () {
      afterEach(function () {
        assert.equal(harness.services.store.size, 0, 'a run was created');
        assert.equal(promptCount(harness), 0, 'a worker step ran');
      });

      async function refusal(args: Record<string, unknown>): Promise<{ code: string; text: string }> {
        const code = await harness.callError('playbook_run', { agentId: AGENT, task: 'do it', ...args });
        const result = await callRaw(harness.client, 'playbook_run', {
          agentId: AGENT,
          task: 'do it',
          ...args,
        });
        return { code, text: textOf(result) };
      }

      it('refuses an unknown playbook with UNKNOWN_PLAYBOOK, naming the known ones', async function () {
        const { code, text } = await refusal({ playbook: 'nope' });
        assert.equal(code, 'UNKNOWN_PLAYBOOK');
        assert.match(text, /No playbook "nope"\. Known: handoff, plan_then_write, /);
      });

      it('refuses a broken playbook file with INVALID_PLAYBOOK and the exact path of its fault', async function () {
        await writePlaybook(harness, 'broken.json', BROKEN);
        const { code, text } = await refusal({ playbook: 'broken' });
        assert.equal(code, 'INVALID_PLAYBOOK');
        assert.equal(text, `INVALID_PLAYBOOK: ${BROKEN_ERROR}`);
      });

      it('refuses a file with a shape error by its file name and by the name written in it, at the exact paths', async function () {
        await writePlaybook(harness, 'shaky-draft.json', SHAKY);
        for (const playbook of ['shaky-draft', 'shaky']) {
          const { code, text } = await refusal({ playbook });
          assert.deepEqual(
            { code, text },
            { code: 'INVALID_PLAYBOOK', text: `INVALID_PLAYBOOK: ${SHAKY_ERROR}` },
          );
        }
      });

      it('answers the name written in an unreadable file with UNKNOWN_PLAYBOOK: none can be read', async function () {
        await writePlaybook(harness, 'garbled.json', '{ "name": "garbled_inside", ');
        const { code, text } = await refusal({ playbook: 'garbled_inside' });
        assert.equal(code, 'UNKNOWN_PLAYBOOK');
        assert.match(text, /No playbook "garbled_inside"/);
        assert.equal((await refusal({ playbook: 'garbled' })).code, 'INVALID_PLAYBOOK');
      });

      it('refuses a verify command input that leaves the jail with INVALID_INPUT, before anything runs', async function () {
        const { code, text } = await refusal({
          playbook: 'parallel_adjudicate',
          inputs: { verify: ['sh', '-c', 'npm test'] },
        });
        assert.equal(code, 'INVALID_INPUT');
        assert.match(
          text,
          /^INVALID_INPUT: builtin:parallel_adjudicate: inputs\.verify: the program "sh" would run a command string/,
        );
      });

      it('refuses an input out of range with INVALID_INPUT naming inputs.rounds', async function () {
        const { code, text } = await refusal({ playbook: 'handoff', inputs: { rounds: 99 } });
        assert.equal(code, 'INVALID_INPUT');
        assert.equal(
          text,
          'INVALID_INPUT: builtin:handoff: inputs.rounds: expected a whole number from 1 to 6',
        );
      });

      it('refuses an input the playbook does not take, and a value of the wrong type', async function () {
        const unknown = await refusal({ playbook: 'handoff', inputs: { colour: 'blue' } });
        assert.equal(unknown.code, 'INVALID_INPUT');
        assert.match(unknown.text, /inputs\.colour: handoff has no input "colour"; it takes writer, rounds/);
        const wrong = await refusal({ playbook: 'handoff', inputs: { writer: 'claude' } });
        assert.match(wrong.text, /inputs\.writer: expected "codex" or "gemini"/);
      });

      it('refuses a cwd outside the workspace, an empty task and a bad apply policy', async function () {
        const { code } = await refusal({ playbook: 'handoff', cwd: '../outside' });
        assert.equal(code, 'PATH_OUTSIDE_WORKSPACE');
        await harness.callInvalid('playbook_run', { agentId: AGENT, playbook: 'handoff', task: '' });
        await harness.callInvalid('playbook_run', {
          agentId: AGENT,
          playbook: 'handoff',
          task: 'x',
          apply: 'sometimes',
        });
        await harness.callInvalid('playbook_run', { agentId: AGENT, task: 'x' });
      });

      it('refuses under panic with PANIC_ENGAGED', async function () {
        await harness.services.panic.engage('someone', 'stop');
        const { code, text } = await refusal({ playbook: 'handoff' });
        assert.equal(code, 'PANIC_ENGAGED');
        assert.match(text, /playbook_run is refused until a human releases it/);
      });
    });

    it('refuses in an untrusted workspace with UNTRUSTED_WORKSPACE', async function () {
      const untrusted = await openHarness({ trusted: false });
      try {
        assert.equal(
          await untrusted.callError('playbook_run', { agentId: AGENT, playbook: 'handoff', task: 'do it' }),
          'UNTRUSTED_WORKSPACE',
        );
        assert.equal(untrusted.services.store.size, 0);
        assert.equal(promptCount(untrusted), 0);
      } finally {
        await untrusted.close();
      }
    });
  });
});
