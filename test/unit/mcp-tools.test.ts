// Specification of Tandem's fourteen MCP tools (the playbook tools in detail in mcp-playbooks.test.ts), black box through the SDK client over an in-memory link,
// with the fake worker adapters standing in for the codex and gemini CLIs.
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import { STRATEGIES } from '../../src/orchestrator/model';
import { DEFAULT_WRITE_CONTENT } from '../../src/offline/model-server';
import { eventually, openHarness, type McpHarness, type Structured } from '../support/mcp-harness';

const AGENT = 'agent-a';
const OTHER = 'agent-b';

const READ_ONLY_TOOLS = [
  'probe',
  'worker_list',
  'run_list',
  'run_get',
  'run_wait',
  'panic_status',
  'playbook_list',
];
const WRITING_TOOLS = [
  'worker_spawn',
  'worker_stop',
  'task_dispatch',
  'strategy_run',
  'playbook_run',
  'run_cancel',
  'panic_engage',
];

interface RunView {
  id: string;
  kind: string;
  strategy: string | null;
  owner: string;
  status: string;
  applied: boolean;
  decision: string | null;
  outcome: string | null;
  stepCount: number;
}

interface EventView {
  seq: number;
  type: string;
  message: string;
}

interface StepView {
  name: string;
  role: string;
  workerKind: string;
  status: string;
  verdict: string | null;
  findings: unknown[];
}

interface Started {
  run: RunView;
  finished: boolean;
  cursor: number;
  events: EventView[];
}

function started(structured: Structured): Started {
  return structured as unknown as Started;
}

function promptCount(harness: McpHarness): number {
  return harness.fakes.codex.prompts.length + harness.fakes.gemini.prompts.length;
}

async function spawn(harness: McpHarness, kind: 'codex' | 'gemini', agentId = AGENT): Promise<string> {
  const { worker } = await harness.callOk('worker_spawn', { agentId, kind });
  return (worker as { id: string }).id;
}

async function stepsOf(harness: McpHarness, runId: string): Promise<StepView[]> {
  const got = await harness.callOk('run_get', { agentId: AGENT, runId });
  return got.steps as unknown as StepView[];
}

describe('MCP tools', function () {
  let harness: McpHarness;

  beforeEach(async function () {
    harness = await openHarness();
  });

  afterEach(async function () {
    await harness?.close();
  });

  describe('tools/list', function () {
    it('lists exactly the fourteen tools', async function () {
      const { tools } = await harness.client.listTools();
      assert.deepEqual(tools.map((tool) => tool.name).sort(), [...READ_ONLY_TOOLS, ...WRITING_TOOLS].sort());
    });

    it('annotates honestly: read-only tools readOnlyHint true, the others false', async function () {
      const { tools } = await harness.client.listTools();
      const hints = Object.fromEntries(tools.map((tool) => [tool.name, tool.annotations?.readOnlyHint]));
      for (const name of READ_ONLY_TOOLS) assert.equal(hints[name], true, name);
      for (const name of WRITING_TOOLS) assert.equal(hints[name], false, name);
      for (const tool of tools) {
        if (tool.annotations?.readOnlyHint) assert.equal(tool.annotations.destructiveHint, false, tool.name);
        assert.ok(tool.title ?? tool.annotations?.title, `${tool.name} has no title`);
        assert.ok((tool.description ?? '').length > 20, `${tool.name} has no real description`);
      }
      // Panic guards exactly the tools that change things, except the kill switch itself.
      const mutating = harness.registry
        .list()
        .filter((tool) => tool.mutating)
        .map((tool) => tool.name);
      assert.deepEqual(mutating.sort(), WRITING_TOOLS.filter((name) => name !== 'panic_engage').sort());
    });

    it('gives every tool an object outputSchema', async function () {
      const { tools } = await harness.client.listTools();
      for (const tool of tools) {
        assert.equal(tool.outputSchema?.type, 'object', `${tool.name} has no outputSchema`);
        assert.ok(Object.keys(tool.outputSchema?.properties ?? {}).length > 0, tool.name);
      }
    });
  });

  describe('probe', function () {
    it('reports both CLIs from the configured adapters', async function () {
      const { clis } = await harness.callOk('probe', { agentId: AGENT });
      const list = clis as {
        kind: string;
        installed: boolean;
        path: string | null;
        version: string | null;
      }[];
      assert.deepEqual(
        list.map(({ kind, installed, path: cliPath, version }) => ({
          kind,
          installed,
          path: cliPath,
          version,
        })),
        [
          { kind: 'codex', installed: true, path: '/fake/bin/codex', version: '1.0.0' },
          { kind: 'gemini', installed: true, path: '/fake/bin/gemini', version: '1.0.0' },
        ],
      );
    });

    it('reports the OS sandbox: its mode, bubblewrap, and whether it works', async function () {
      const { sandbox } = await harness.callOk('probe', { agentId: AGENT });
      const report = sandbox as { mode: string; tool: string | null; works: boolean; warning: string | null };
      assert.equal(report.mode, 'auto');
      assert.equal(report.tool, 'bubblewrap');
      assert.equal(report.works, true);
      assert.equal(report.warning, null);
    });

    it('tells that a CLI is missing, with its install command', async function () {
      harness.fakes.gemini.installed = false;
      const { clis } = await harness.callOk('probe', { agentId: AGENT });
      const gemini = (clis as { kind: string; installed: boolean; installHint: string }[])[1];
      assert.deepEqual(
        { kind: gemini?.kind, installed: gemini?.installed, hint: gemini?.installHint },
        { kind: 'gemini', installed: false, hint: 'npm install -g fake-gemini' },
      );
      assert.equal(
        await harness.callError('worker_spawn', { agentId: AGENT, kind: 'gemini' }),
        'NOT_INSTALLED',
      );
      assert.equal(harness.services.workers.list({ includeStopped: true }).length, 0);
    });
  });

  describe('workers', function () {
    it('spawns, lists and stops a worker', async function () {
      const spawned = await harness.callOk('worker_spawn', {
        agentId: AGENT,
        kind: 'codex',
        model: 'gpt-test-1',
      });
      const worker = spawned.worker as {
        id: string;
        kind: string;
        model: string;
        owner: string;
        state: string;
      };
      assert.deepEqual(
        { kind: worker.kind, model: worker.model, owner: worker.owner, state: worker.state },
        { kind: 'codex', model: 'gpt-test-1', owner: AGENT, state: 'idle' },
      );
      const defaulted = await harness.callOk('worker_spawn', { agentId: AGENT, kind: 'gemini' });
      assert.equal((defaulted.worker as { model: string }).model, 'fake-gemini');

      const listed = await harness.callOk('worker_list', { agentId: OTHER });
      assert.deepEqual(
        (listed.workers as { id: string }[]).map((entry) => entry.id).sort(),
        [worker.id, (defaulted.worker as { id: string }).id].sort(),
      );

      const stopped = await harness.callOk('worker_stop', { agentId: AGENT, workerId: worker.id });
      assert.equal((stopped.worker as { state: string }).state, 'stopped');
      const after = await harness.callOk('worker_list', { agentId: AGENT });
      assert.ok(!(after.workers as { id: string }[]).some((entry) => entry.id === worker.id));
      const all = await harness.callOk('worker_list', { agentId: AGENT, includeStopped: true });
      const entry = (all.workers as { id: string; state: string }[]).find((w) => w.id === worker.id);
      assert.equal(entry?.state, 'stopped');
      // A stopped worker takes no more tasks, and no run is recorded for the attempt.
      const runsBefore = harness.services.store.size;
      assert.equal(
        await harness.callError('task_dispatch', { agentId: AGENT, workerId: worker.id, prompt: 'hi' }),
        'UNKNOWN_WORKER',
      );
      assert.equal(harness.services.store.size, runsBefore);
    });
  });

  describe('task_dispatch', function () {
    it('applies a writer’s change to the workspace and returns the finished run with its events', async function () {
      const workerId = await spawn(harness, 'codex');
      const result = started(
        await harness.callOk('task_dispatch', {
          agentId: AGENT,
          workerId,
          prompt: 'Create x.txt [[scenario:write path=x.txt]]',
          waitSeconds: 5,
        }),
      );
      assert.equal(result.finished, true);
      assert.equal(result.run.status, 'succeeded');
      assert.equal(result.run.kind, 'dispatch');
      assert.equal(result.run.owner, AGENT);
      assert.equal(result.run.applied, true);
      assert.equal(await readFile(path.join(harness.root, 'x.txt'), 'utf8'), DEFAULT_WRITE_CONTENT);
      const types = result.events.map((event) => event.type);
      assert.equal(types[0], 'run_queued');
      assert.equal(types.at(-1), 'run_finished');
      assert.ok(types.includes('step_started') && types.includes('decision'), types.join(','));
      assert.equal(result.cursor, result.events.at(-1)?.seq);
      assert.equal(harness.fakes.codex.prompts.length, 1);
    });

    it('retries a rate-limited writer on the same worker after the backoff, in a fresh copy, and applies the retry', async function () {
      const workerId = await spawn(harness, 'codex');
      harness.fakes.codex.failNext.push('rate_limited');
      const result = started(
        await harness.callOk('task_dispatch', {
          agentId: AGENT,
          workerId,
          prompt: 'Create r.txt [[scenario:write path=r.txt]]',
          waitSeconds: 10,
        }),
      );
      assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
      assert.equal(result.run.applied, true);
      assert.equal(await readFile(path.join(harness.root, 'r.txt'), 'utf8'), DEFAULT_WRITE_CONTENT);
      const steps = await stepsOf(harness, result.run.id);
      assert.deepEqual(
        steps.map((step) => `${step.name}:${step.workerKind}:${step.status}`),
        ['write:codex:rate_limited', 'write-retry1:codex:succeeded'],
      );
      assert.ok(
        result.events.some(
          (event) =>
            event.type === 'decision' && event.message === 'write: codex rate_limited; retrying in 1000 ms.',
        ),
        JSON.stringify(result.events.map((event) => event.message)),
      );
    });

    it('stops retrying a dispatch when the retries run out, and never hands it to the other CLI', async function () {
      const { worker } = await harness.services.workers.spawn({ kind: 'gemini', owner: AGENT });
      harness.fakes.gemini.failNext.push('rate_limited', 'rate_limited', 'rate_limited', 'rate_limited');
      const run = await harness.services.orchestrator.dispatch({
        owner: AGENT,
        workerId: worker.id,
        prompt: 'Review this.',
        role: 'reviewer',
        resilience: { backoffMs: 10 },
      });
      const finished = await harness.services.orchestrator.finished(run.id);
      assert.equal(finished.status, 'failed');
      assert.match(finished.outcome ?? '', /^gemini rate_limited: HTTP 429/);
      const steps = await stepsOf(harness, run.id);
      assert.deepEqual(
        steps.map((step) => step.name),
        ['reviewer', 'reviewer-retry1', 'reviewer-retry2'],
      );
      assert.equal(harness.fakes.codex.prompts.length, 0);
      assert.equal(harness.fakes.gemini.failNext.length, 1, 'a fourth attempt was made');
    });

    it('does not retry a dispatch that failed for another reason', async function () {
      const workerId = await spawn(harness, 'codex');
      harness.fakes.codex.failNext.push('failed');
      const result = started(
        await harness.callOk('task_dispatch', {
          agentId: AGENT,
          workerId,
          prompt: 'Create f.txt [[scenario:write path=f.txt]]',
          waitSeconds: 5,
        }),
      );
      assert.equal(result.run.status, 'failed');
      assert.deepEqual(
        (await stepsOf(harness, result.run.id)).map((step) => step.name),
        ['write'],
      );
      assert.equal(existsSync(path.join(harness.root, 'f.txt')), false);
    });

    it('keeps a writer’s change out of the workspace with apply=never', async function () {
      const workerId = await spawn(harness, 'gemini');
      const result = started(
        await harness.callOk('task_dispatch', {
          agentId: AGENT,
          workerId,
          prompt: '[[scenario:write path=kept.txt]]',
          apply: 'never',
          waitSeconds: 5,
        }),
      );
      assert.deepEqual(
        { finished: result.finished, status: result.run.status, applied: result.run.applied },
        { finished: true, status: 'succeeded', applied: false },
      );
      assert.equal(existsSync(path.join(harness.root, 'kept.txt')), false);
    });

    it('works in the folder given as cwd', async function () {
      await mkdir(path.join(harness.root, 'pkg'));
      const workerId = await spawn(harness, 'codex');
      const result = started(
        await harness.callOk('task_dispatch', {
          agentId: AGENT,
          workerId,
          prompt: '[[scenario:write path=inner.txt]]',
          cwd: 'pkg',
          waitSeconds: 5,
        }),
      );
      assert.equal(result.run.status, 'succeeded');
      assert.equal(existsSync(path.join(harness.root, 'pkg', 'inner.txt')), true);
      assert.equal(existsSync(path.join(harness.root, 'inner.txt')), false);
    });

    it('lets a reviewer write nothing', async function () {
      const workerId = await spawn(harness, 'gemini');
      const result = started(
        await harness.callOk('task_dispatch', {
          agentId: AGENT,
          workerId,
          prompt: '[[scenario:write path=y.txt]]',
          role: 'reviewer',
          waitSeconds: 5,
        }),
      );
      assert.equal(result.finished, true);
      assert.equal(result.run.status, 'succeeded');
      assert.equal(result.run.applied, false);
      assert.equal(existsSync(path.join(harness.root, 'y.txt')), false);
      const [step] = await stepsOf(harness, result.run.id);
      assert.deepEqual({ role: step?.role, kind: step?.workerKind }, { role: 'reviewer', kind: 'gemini' });
    });

    it('returns at once with waitSeconds 0 and a run still going', async function () {
      const workerId = await spawn(harness, 'codex');
      const before = Date.now();
      const result = started(
        await harness.callOk('task_dispatch', {
          agentId: AGENT,
          workerId,
          prompt: '[[scenario:slow ms=3000]]',
        }),
      );
      assert.ok(Date.now() - before < 1500);
      assert.equal(result.finished, false);
      assert.ok(['queued', 'running'].includes(result.run.status), result.run.status);
    });
  });

  describe('strategy_run', function () {
    const expectedSteps: Record<string, string[]> = {
      single_worker: ['writer/codex'],
      codex_writes_gemini_reviews: ['reviewer/gemini', 'writer/codex'],
      gemini_writes_codex_reviews: ['reviewer/codex', 'writer/gemini'],
      parallel_dual_write_review: ['reviewer/codex', 'reviewer/gemini', 'writer/codex', 'writer/gemini'],
      security_redteam_pass: ['redteam/gemini', 'writer/codex'],
    };

    it('covers every strategy here', function () {
      assert.deepEqual(Object.keys(expectedSteps).sort(), [...STRATEGIES].sort());
    });

    for (const strategy of STRATEGIES) {
      it(`runs ${strategy} to the end and applies the approved change`, async function () {
        const file = `f-${strategy}.txt`;
        const result = started(
          await harness.callOk('strategy_run', {
            agentId: AGENT,
            strategy,
            prompt: `Write the file. [[scenario:write path=${file}]]`,
            waitSeconds: 10,
          }),
        );
        assert.equal(result.finished, true);
        assert.deepEqual(
          { strategy: result.run.strategy, status: result.run.status, applied: result.run.applied },
          { strategy, status: 'succeeded', applied: true },
          `${result.run.outcome} / ${result.run.decision}`,
        );
        assert.equal(await readFile(path.join(harness.root, file), 'utf8'), DEFAULT_WRITE_CONTENT);
        const steps = await stepsOf(harness, result.run.id);
        assert.deepEqual(
          steps.map((step) => `${step.role}/${step.workerKind}`).sort(),
          expectedSteps[strategy],
        );
        for (const step of steps) {
          assert.equal(step.status, 'succeeded', step.name);
          if (step.role !== 'writer') assert.equal(step.verdict, 'approve', step.name);
        }
      });
    }

    it('keeps the change out when the reviewer requests changes', async function () {
      const result = started(
        await harness.callOk('strategy_run', {
          agentId: AGENT,
          strategy: 'codex_writes_gemini_reviews',
          prompt: '[[scenario:write path=rejected.txt]] [[role:reviewer verdict=request_changes]]',
          waitSeconds: 10,
        }),
      );
      assert.deepEqual(
        { finished: result.finished, status: result.run.status, applied: result.run.applied },
        { finished: true, status: 'succeeded', applied: false },
      );
      assert.match(result.run.decision ?? '', /Not applied/);
      assert.equal(existsSync(path.join(harness.root, 'rejected.txt')), false);
      const review = (await stepsOf(harness, result.run.id)).find((step) => step.role === 'reviewer');
      assert.equal(review?.verdict, 'request_changes');
    });

    it('blocks the change when the red team finds something at or above blockAt', async function () {
      const result = started(
        await harness.callOk('strategy_run', {
          agentId: AGENT,
          strategy: 'security_redteam_pass',
          prompt: '[[scenario:write path=risky.txt]] [[role:redteam findings=high]]',
          blockAt: 'high',
          waitSeconds: 10,
        }),
      );
      assert.equal(result.run.status, 'succeeded');
      assert.equal(result.run.applied, false);
      assert.match(
        result.run.decision ?? '',
        /^Not applied: .*redteam by gemini found 1 finding\(s\) at or above high/,
      );
      assert.equal(existsSync(path.join(harness.root, 'risky.txt')), false);
    });

    it('with fallback: true, hands a failing writer to the other CLI, and the review to the CLI that did not write', async function () {
      const result = started(
        await harness.callOk('strategy_run', {
          agentId: AGENT,
          strategy: 'codex_writes_gemini_reviews',
          prompt: '[[role:writer cli=codex scenario=http500]] [[scenario:write path=fb.txt]] Add fb.txt.',
          fallback: true,
          waitSeconds: 10,
        }),
      );
      assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
      assert.equal(result.run.applied, true);
      assert.ok(existsSync(path.join(harness.root, 'fb.txt')));
      assert.deepEqual(
        (await stepsOf(harness, result.run.id)).map(
          (step) => `${step.name}:${step.workerKind}:${step.status}`,
        ),
        ['write:codex:failed', 'write-fallback:gemini:succeeded', 'review:codex:succeeded'],
      );
    });

    it('without fallback, a failing writer ends the run failed on its own CLI', async function () {
      const result = started(
        await harness.callOk('strategy_run', {
          agentId: AGENT,
          strategy: 'codex_writes_gemini_reviews',
          prompt: '[[role:writer cli=codex scenario=http500]] [[scenario:write path=nofb.txt]] Add nofb.txt.',
          waitSeconds: 10,
        }),
      );
      assert.equal(result.run.status, 'failed', result.run.outcome ?? '');
      assert.equal(harness.fakes.gemini.prompts.length, 0);
      assert.equal(existsSync(path.join(harness.root, 'nofb.txt')), false);
    });

    it('fails the run when the writer’s model fails', async function () {
      const result = started(
        await harness.callOk('strategy_run', {
          agentId: AGENT,
          strategy: 'single_worker',
          writer: 'gemini',
          prompt: '[[scenario:http500]]',
          waitSeconds: 10,
        }),
      );
      assert.equal(result.finished, true);
      assert.equal(result.run.status, 'failed');
      assert.equal(result.run.applied, false);
      assert.equal(harness.fakes.gemini.prompts.length, 1);
      assert.equal(harness.fakes.codex.prompts.length, 0);
    });

    it('sends progress notifications while it waits, when the client asks for them', async function () {
      const progress: Progress[] = [];
      const result = started(
        await harness.callOk(
          'strategy_run',
          {
            agentId: AGENT,
            strategy: 'codex_writes_gemini_reviews',
            prompt: '[[scenario:write path=p.txt]]',
            waitSeconds: 10,
          },
          { onprogress: (update) => progress.push(update) },
        ),
      );
      assert.equal(result.finished, true);
      assert.ok(progress.length >= result.events.length, `${progress.length} notifications`);
      for (let i = 1; i < progress.length; i++) {
        assert.ok((progress[i]?.progress ?? 0) > (progress[i - 1]?.progress ?? 0), 'progress must increase');
      }
      assert.ok(progress.some((update) => /review/.test(update.message ?? '')));
      assert.equal(progress.at(-1)?.progress, result.cursor);
    });

    it('cancels the run when the client cancels the call that waits on it', async function () {
      const controller = new AbortController();
      const call = harness.callOk(
        'strategy_run',
        { agentId: AGENT, strategy: 'single_worker', prompt: '[[scenario:slow ms=20000]]', waitSeconds: 30 },
        { signal: controller.signal },
      );
      await eventually(() => harness.fakes.codex.prompts.length === 1, 'the writer to start');
      const [run] = harness.services.store.list({ limit: 1 });
      assert.ok(run);
      controller.abort('the user gave up');
      await assert.rejects(call);
      await eventually(
        () => harness.services.store.get(run.id).status === 'cancelled',
        'the run to be cancelled',
      );
      const got = await harness.callOk('run_get', { agentId: AGENT, runId: run.id });
      assert.equal((got.run as RunView).status, 'cancelled');
    });
  });

  describe('runs', function () {
    async function seedRuns(): Promise<{ mine: string[]; theirs: string[]; failed: string }> {
      const one = started(
        await harness.callOk('strategy_run', {
          agentId: AGENT,
          strategy: 'single_worker',
          prompt: 'one',
          waitSeconds: 10,
        }),
      );
      const two = started(
        await harness.callOk('strategy_run', {
          agentId: OTHER,
          strategy: 'codex_writes_gemini_reviews',
          prompt: 'two [[scenario:http500]]',
          waitSeconds: 10,
        }),
      );
      const workerId = await spawn(harness, 'gemini');
      const three = started(
        await harness.callOk('task_dispatch', {
          agentId: AGENT,
          workerId,
          prompt: 'three',
          role: 'planner',
          waitSeconds: 10,
        }),
      );
      assert.deepEqual(
        [one.run.status, two.run.status, three.run.status],
        ['succeeded', 'failed', 'succeeded'],
      );
      return { mine: [three.run.id, one.run.id], theirs: [two.run.id], failed: two.run.id };
    }

    function ids(structured: Structured): string[] {
      return (structured.runs as RunView[]).map((run) => run.id);
    }

    it('lists runs newest first, with status, strategy and mine filters', async function () {
      const seeded = await seedRuns();
      const all = await harness.callOk('run_list', { agentId: AGENT });
      assert.deepEqual(ids(all), [seeded.mine[0], seeded.theirs[0], seeded.mine[1]]);
      assert.equal(all.nextBefore, null);
      assert.deepEqual(ids(await harness.callOk('run_list', { agentId: AGENT, status: 'failed' })), [
        seeded.failed,
      ]);
      assert.deepEqual(ids(await harness.callOk('run_list', { agentId: AGENT, strategy: 'single_worker' })), [
        seeded.mine[1],
      ]);
      assert.deepEqual(ids(await harness.callOk('run_list', { agentId: AGENT, mine: true })), seeded.mine);
      assert.deepEqual(ids(await harness.callOk('run_list', { agentId: OTHER, mine: true })), seeded.theirs);
    });

    it('pages with limit and nextBefore', async function () {
      const seeded = await seedRuns();
      const first = await harness.callOk('run_list', { agentId: AGENT, limit: 2 });
      assert.deepEqual(ids(first), [seeded.mine[0], seeded.theirs[0]]);
      assert.equal(first.nextBefore, seeded.theirs[0]);
      const second = await harness.callOk('run_list', { agentId: AGENT, limit: 2, before: first.nextBefore });
      assert.deepEqual(ids(second), [seeded.mine[1]]);
      assert.equal(second.nextBefore, null);
    });

    it('gets a run with its steps and its Markdown summary', async function () {
      const result = started(
        await harness.callOk('strategy_run', {
          agentId: AGENT,
          strategy: 'gemini_writes_codex_reviews',
          prompt: '[[scenario:write path=g.txt]]',
          waitSeconds: 10,
        }),
      );
      const got = await harness.callOk('run_get', { agentId: OTHER, runId: result.run.id });
      assert.equal((got.run as RunView).id, result.run.id);
      assert.equal((got.run as RunView).stepCount, 2);
      const steps = got.steps as unknown as StepView[];
      assert.deepEqual(
        steps.map((step) => [step.name, step.role, step.workerKind, step.verdict]),
        [
          ['write', 'writer', 'gemini', null],
          ['review', 'reviewer', 'codex', 'approve'],
        ],
      );
      assert.equal(typeof got.summaryMarkdown, 'string');
      assert.match(got.summaryMarkdown as string, new RegExp(`^# Run ${result.run.id}`));
      assert.match(got.summaryMarkdown as string, /Applied to the workspace:\*\* yes/);
    });

    it('waits with a cursor: only newer events, and whether the run finished', async function () {
      const result = started(
        await harness.callOk('strategy_run', {
          agentId: AGENT,
          strategy: 'single_worker',
          prompt: '[[scenario:write path=w.txt]]',
          waitSeconds: 10,
        }),
      );
      const all = started(await harness.callOk('run_wait', { agentId: AGENT, runId: result.run.id }));
      assert.equal(all.finished, true);
      assert.deepEqual(
        all.events.map((event) => event.seq),
        result.events.map((event) => event.seq),
      );
      const middle = all.events[2]?.seq as number;
      const later = started(
        await harness.callOk('run_wait', { agentId: AGENT, runId: result.run.id, after: middle }),
      );
      assert.deepEqual(
        later.events.map((event) => event.seq),
        all.events.filter((event) => event.seq > middle).map((event) => event.seq),
      );
      assert.equal(later.finished, true);
      assert.equal(later.cursor, all.cursor);
      const none = started(
        await harness.callOk('run_wait', { agentId: AGENT, runId: result.run.id, after: all.cursor }),
      );
      assert.deepEqual(none.events, []);
      assert.equal(none.cursor, all.cursor);
    });

    it('returns from run_wait on a slow run when its timeout ends, not finished', async function () {
      const result = started(
        await harness.callOk('strategy_run', {
          agentId: AGENT,
          strategy: 'single_worker',
          prompt: '[[scenario:slow ms=2000]]',
        }),
      );
      await eventually(() => harness.fakes.codex.prompts.length === 1, 'the writer to start');
      const first = started(
        await harness.callOk('run_wait', { agentId: AGENT, runId: result.run.id, timeoutSeconds: 0 }),
      );
      const before = Date.now();
      const waited = started(
        await harness.callOk('run_wait', {
          agentId: AGENT,
          runId: result.run.id,
          after: first.cursor,
          timeoutSeconds: 0.5,
        }),
      );
      const elapsed = Date.now() - before;
      assert.equal(waited.finished, false);
      assert.ok(elapsed >= 400 && elapsed < 1500, `${elapsed} ms`);
      assert.equal(waited.run.status, 'running');
      // Following it to the end works from the cursor.
      const end = started(
        await harness.callOk('run_wait', {
          agentId: AGENT,
          runId: result.run.id,
          after: waited.cursor,
          timeoutSeconds: 10,
        }),
      );
      assert.equal(end.finished, true);
      assert.equal(end.events.at(-1)?.type, 'run_finished');
    });

    it('follows a run started by another server on the same workspace', async function () {
      // A second server on the same folder, as `tandem-mcp serve` next to the editor's.
      const second = await openHarness({ root: harness.root, recover: false });
      try {
        const result = started(
          await harness.callOk('strategy_run', {
            agentId: AGENT,
            strategy: 'single_worker',
            prompt: '[[scenario:slow ms=1000]]',
          }),
        );
        const waited = started(
          await second.callOk('run_wait', { agentId: OTHER, runId: result.run.id, timeoutSeconds: 10 }),
        );
        assert.equal(waited.finished, true);
        assert.equal(waited.run.status, 'succeeded');
        assert.equal(waited.events.at(-1)?.type, 'run_finished');
        const got = await second.callOk('run_get', { agentId: OTHER, runId: result.run.id });
        assert.equal((got.run as RunView).status, 'succeeded');
      } finally {
        await second.close({ keepRoot: true });
      }
    });

    it('cancels a run with run_cancel, and says so when it already ended', async function () {
      const result = started(
        await harness.callOk('strategy_run', {
          agentId: AGENT,
          strategy: 'codex_writes_gemini_reviews',
          prompt: '[[scenario:slow ms=20000]]',
        }),
      );
      await eventually(() => harness.fakes.codex.prompts.length === 1, 'the writer to start');
      const before = Date.now();
      const cancelled = await harness.callOk('run_cancel', { agentId: AGENT, runId: result.run.id });
      assert.ok(Date.now() - before < 5000);
      assert.equal((cancelled.run as RunView).status, 'cancelled');
      assert.equal(harness.fakes.gemini.prompts.length, 0, 'the reviewer ran after the cancel');
      assert.equal(
        await harness.callError('run_cancel', { agentId: AGENT, runId: result.run.id }),
        'RUN_FINISHED',
      );
    });
  });

  describe('bad input changes nothing', function () {
    let workerId: string;

    beforeEach(async function () {
      workerId = await spawn(harness, 'codex');
    });

    afterEach(function () {
      assert.equal(harness.services.store.size, 0, 'a run was created');
      assert.equal(promptCount(harness), 0, 'a worker step ran');
      assert.deepEqual(
        harness.services.workers.list({ includeStopped: true }).map((worker) => [worker.id, worker.state]),
        [[workerId, 'idle']],
      );
    });

    it('refuses an unknown worker with UNKNOWN_WORKER', async function () {
      assert.equal(
        await harness.callError('task_dispatch', { agentId: AGENT, workerId: 'codex-nope', prompt: 'hi' }),
        'UNKNOWN_WORKER',
      );
      assert.equal(
        await harness.callError('worker_stop', { agentId: AGENT, workerId: 'codex-nope' }),
        'UNKNOWN_WORKER',
      );
    });

    for (const cwd of ['../outside', '/etc', '.tandem', '.tandem/runs', 'a/../../b']) {
      it(`refuses cwd ${cwd} with PATH_OUTSIDE_WORKSPACE`, async function () {
        assert.equal(
          await harness.callError('task_dispatch', { agentId: AGENT, workerId, prompt: 'hi', cwd }),
          'PATH_OUTSIDE_WORKSPACE',
        );
        assert.equal(
          await harness.callError('strategy_run', {
            agentId: AGENT,
            strategy: 'single_worker',
            prompt: 'hi',
            cwd,
          }),
          'PATH_OUTSIDE_WORKSPACE',
        );
      });
    }

    it('refuses a model name that looks like a flag', async function () {
      assert.match(
        await harness.callInvalid('worker_spawn', { agentId: AGENT, kind: 'gemini', model: '--x' }),
        /model/,
      );
      assert.match(
        await harness.callInvalid('strategy_run', {
          agentId: AGENT,
          strategy: 'single_worker',
          prompt: 'hi',
          models: { codex: '--x' },
        }),
        /models/,
      );
    });

    it('refuses an unknown strategy, kind or role', async function () {
      await harness.callInvalid('strategy_run', { agentId: AGENT, strategy: 'yolo', prompt: 'hi' });
      await harness.callInvalid('worker_spawn', { agentId: AGENT, kind: 'claude' });
      await harness.callInvalid('task_dispatch', { agentId: AGENT, workerId, prompt: 'hi', role: 'admin' });
    });

    it('refuses an unknown run id with UNKNOWN_RUN', async function () {
      for (const tool of ['run_get', 'run_wait', 'run_cancel']) {
        assert.equal(
          await harness.callError(tool, { agentId: AGENT, runId: 'run-nope' }),
          'UNKNOWN_RUN',
          tool,
        );
      }
    });

    it('refuses waitSeconds above 50', async function () {
      assert.match(
        await harness.callInvalid('strategy_run', {
          agentId: AGENT,
          strategy: 'single_worker',
          prompt: 'hi',
          waitSeconds: 51,
        }),
        /waitSeconds/,
      );
      await harness.callInvalid('task_dispatch', { agentId: AGENT, workerId, prompt: 'hi', waitSeconds: 51 });
      await harness.callInvalid('strategy_run', {
        agentId: AGENT,
        strategy: 'single_worker',
        prompt: 'hi',
        waitSeconds: -1,
      });
    });

    it('refuses an empty prompt', async function () {
      await harness.callInvalid('strategy_run', { agentId: AGENT, strategy: 'single_worker', prompt: '' });
      await harness.callInvalid('task_dispatch', { agentId: AGENT, workerId, prompt: '' });
    });
  });

  describe('an untrusted workspace', function () {
    let untrusted: McpHarness;

    beforeEach(async function () {
      untrusted = await openHarness({ trusted: false });
    });

    afterEach(async function () {
      await untrusted?.close();
    });

    it('starts no worker and no run, but keeps its history readable', async function () {
      assert.equal(
        await untrusted.callError('worker_spawn', { agentId: AGENT, kind: 'codex' }),
        'UNTRUSTED_WORKSPACE',
      );
      assert.equal(
        await untrusted.callError('strategy_run', {
          agentId: AGENT,
          strategy: 'single_worker',
          prompt: 'hi',
        }),
        'UNTRUSTED_WORKSPACE',
      );
      assert.equal(
        await untrusted.callError('task_dispatch', { agentId: AGENT, workerId: 'codex-x', prompt: 'hi' }),
        'UNTRUSTED_WORKSPACE',
      );
      const listed = await untrusted.callOk('run_list', { agentId: AGENT });
      assert.deepEqual(listed.runs, []);
      await untrusted.callOk('worker_list', { agentId: AGENT });
      await untrusted.callOk('panic_status', { agentId: AGENT });
      assert.equal(untrusted.services.store.size, 0);
      assert.equal(untrusted.services.workers.list({ includeStopped: true }).length, 0);
      assert.equal(promptCount(untrusted), 0);
    });
  });
});
