// A run whose server died gets the same summary.json and summary.md as a run that ended, written by the
// next server's start-up recovery from what the run folder kept (steps.json, changes.json, events, trace):
// status interrupted, the reason, the steps as far as they got, the changes and any apply decision made.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bootId, identify } from '../../src/core/exec';
import type { RunRecord, StepRecord } from '../../src/orchestrator/model';
import { builtinPlaybook } from '../../src/orchestrator/playbook/library';
import { resolveInputs } from '../../src/orchestrator/playbook/schema';
import type { RunSummary } from '../../src/orchestrator/summary';
import { deadHost, leftRunningRecord } from '../support/dead-runs';
import { openHarness, type McpHarness } from '../support/mcp-harness';
import { fixture, killQuietly, waitUntilGone } from '../support/processes';

function runFolder(harness: McpHarness, id: string): string {
  return harness.services.store.runDir(id);
}

function readSummary(harness: McpHarness, id: string): { json: RunSummary; markdown: string } {
  const dir = runFolder(harness, id);
  return {
    json: JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8')) as RunSummary,
    markdown: readFileSync(path.join(dir, 'summary.md'), 'utf8'),
  };
}

describe('start-up recovery writes the summary of an interrupted run', function () {
  let second: McpHarness | undefined;
  const roots: string[] = [];
  const leftovers: number[] = [];

  afterEach(async function () {
    killQuietly(leftovers.splice(0));
    await second?.close({ keepRoot: true });
    second = undefined;
    for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
  });

  /** A first server on a new workspace, closed by the caller as if it had died. */
  async function firstServer(): Promise<McpHarness> {
    const harness = await openHarness();
    roots.push(harness.root);
    return harness;
  }

  /** The last index line a server that died while the run was running would have left, on a pid that is gone. */
  async function leftRunning(indexPath: string, record: RunRecord): Promise<void> {
    const line: RunRecord = { ...record, status: 'running', endedAt: null, host: await deadHost() };
    appendFileSync(indexPath, `${JSON.stringify(line)}\n`);
  }

  /**
   * Runs the handoff playbook to its end, then puts the run folder back the way a crash would have left it
   * (the events from the first one `keepEvents` refuses on, and the summary, never written; `tamper` undoes
   * what came later in the other files), and opens a second server on the workspace, which recovers it.
   */
  async function crashAfter(
    task: string,
    keepEvents: (event: { type: string; message: string }) => boolean,
    tamper: (dir: string) => void = () => undefined,
  ): Promise<{ id: string; original: RunSummary }> {
    const first = await firstServer();
    const loaded = builtinPlaybook('handoff');
    assert.ok(loaded);
    const started = await first.services.orchestrator.startPlaybook({
      owner: 'agent-crashed',
      task,
      playbook: loaded.playbook,
      source: loaded.source,
      hash: loaded.hash,
      inputs: resolveInputs(loaded.playbook, { rounds: 1 }, loaded.source),
    });
    const finished = await first.services.orchestrator.finished(started.id);
    assert.equal(finished.status, 'succeeded', finished.outcome ?? '');
    const original = readSummary(first, started.id).json;
    const dir = runFolder(first, started.id);
    const eventLines = readFileSync(path.join(dir, 'events.jsonl'), 'utf8').trim().split('\n');
    const kept: string[] = [];
    for (const line of eventLines) {
      if (!keepEvents(JSON.parse(line) as { type: string; message: string })) break;
      kept.push(line);
    }
    writeFileSync(path.join(dir, 'events.jsonl'), kept.map((line) => `${line}\n`).join(''));
    unlinkSync(path.join(dir, 'summary.json'));
    unlinkSync(path.join(dir, 'summary.md'));
    tamper(dir);
    await first.close({ keepRoot: true });
    await leftRunning(first.services.store.indexPath, { ...started, startedAt: started.createdAt });
    second = await openHarness({ root: first.root });
    return { id: started.id, original };
  }

  it('after the writer applied its change: the summary says interrupted, why, and that the change is in', async function () {
    const { id, original } = await crashAfter(
      '[[scenario:write path=README.md content=crashed%0A]] [[role:reviewer verdict=approve]] Rewrite it.',
      // Everything up to and with the apply decision: the server died before the run ended.
      (event) => event.type !== 'run_finished',
    );
    assert.ok(second);
    const run = second.services.store.get(id);
    assert.equal(run.status, 'interrupted');
    const { json, markdown } = readSummary(second, id);
    assert.equal(json.schemaVersion, 2);
    assert.deepEqual(json.run, run, 'summary.json carries the run as the index has it');
    assert.match(
      run.outcome ?? '',
      /^Interrupted: the server running it \(pid \d+\) stopped before it finished\.$/,
    );
    assert.ok(run.endedAt !== null);
    // What the run folder kept is what the run's own summary would have said.
    assert.deepEqual(json.steps, original.steps);
    assert.deepEqual(json.changes, original.changes);
    assert.deepEqual(json.decisions, original.decisions);
    assert.deepEqual(json.playbookInputs, { writer: 'codex', rounds: 1 });
    assert.equal(json.changes[0]?.applied, true);
    assert.equal(run.applied, true, 'the change reached the workspace before the crash');
    assert.equal(run.decision, original.run.decision);
    assert.equal(run.stepCount, 2);
    assert.match(markdown, /^- \*\*Status:\*\* interrupted — Interrupted: the server running it/m);
    assert.match(markdown, /^- \*\*Applied to the workspace:\*\* yes$/m);
    assert.ok(markdown.includes(`- **Decision:** ${run.decision ?? ''}`));
    assert.match(markdown, /^- write: modified `README\.md` \(\+1 -1\)$/m);
    // The summary is written before run_finished, as for a run that ends.
    const events = await second.services.store.readEvents(id);
    assert.equal(events.at(-1)?.type, 'run_finished');
    assert.equal(events.filter((event) => event.type === 'run_finished').length, 1);
  });

  it('mid-review: the running step is kept, says it was interrupted, and nothing counts as applied', async function () {
    const { id, original } = await crashAfter(
      '[[scenario:write path=README.md content=crashed%0A]] [[role:reviewer verdict=approve]] Rewrite it.',
      // The reviewer was at work when the server died: nothing from its end on was written.
      (event) => !(event.type === 'step_finished' && /^review:/.test(event.message)),
      (dir) => {
        const steps = JSON.parse(readFileSync(path.join(dir, 'steps.json'), 'utf8')) as StepRecord[];
        Object.assign(steps[1] as StepRecord, {
          status: 'running',
          endedAt: null,
          durationMs: null,
          exitCode: null,
          finalMessage: '',
          tokens: null,
          verdict: null,
          findings: [],
        });
        writeFileSync(path.join(dir, 'steps.json'), JSON.stringify(steps, null, 2));
        const changes = JSON.parse(readFileSync(path.join(dir, 'changes.json'), 'utf8')) as object[];
        const unapplied = changes.map((change) => ({ ...change, applied: false }));
        writeFileSync(path.join(dir, 'changes.json'), JSON.stringify(unapplied));
      },
    );
    assert.ok(second);
    const run = second.services.store.get(id);
    assert.equal(run.status, 'interrupted');
    assert.equal(run.applied, false);
    assert.equal(run.decision, null, 'no apply decision was made before the crash');
    const { json, markdown } = readSummary(second, id);
    assert.equal(json.steps.length, 2);
    assert.deepEqual(json.steps[0], original.steps[0], 'the finished writer step as it ended');
    assert.equal(json.steps[1]?.status, 'running');
    assert.equal(json.steps[1]?.endedAt, null);
    // The fake worker reports no pid, so there was no process to kill.
    assert.equal(
      json.steps[1]?.errorMessage,
      'Interrupted: the server stopped while this step ran; it had not started a process.',
    );
    assert.deepEqual(
      json.changes.map((change) => [change.label, change.applied, change.files]),
      [['write', false, [{ path: 'README.md', change: 'modified', insertions: 1, deletions: 1 }]]],
    );
    assert.deepEqual(json.decisions, []);
    assert.match(
      markdown,
      /^\| 2 \| review \| reviewer \| gemini \| fake-gemini \| running \| - \| - \| - \| - \| 0 \|$/m,
    );
    assert.match(markdown, /^- Error: Interrupted: the server stopped while this step ran/m);
    assert.match(markdown, /^- \*\*Applied to the workspace:\*\* no$/m);
  });

  it('with a live leftover worker: kills it and says so in the step and the run', async function () {
    const first = await firstServer();
    const store = first.services.store;
    const worker = spawn(process.execPath, [fixture('hang.cjs')], {
      detached: true,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    await new Promise((resolve) => worker.stdout.once('data', resolve));
    const pid = worker.pid as number;
    leftovers.push(pid);
    const run = await store.create({
      kind: 'dispatch',
      strategy: null,
      owner: 'agent-crashed',
      prompt: 'Review it.',
      workers: ['worker-1'],
    });
    const step: StepRecord = {
      index: 1,
      name: 'reviewer',
      role: 'reviewer',
      workerKind: 'gemini',
      workerId: 'worker-1',
      model: 'gemini-x',
      status: 'running',
      startedAt: new Date().toISOString(),
      endedAt: null,
      durationMs: null,
      exitCode: null,
      signal: null,
      timedOut: false,
      argv: ['gemini', '--model', 'gemini-x'],
      finalMessage: '',
      errorMessage: null,
      tokens: null,
      diffStats: null,
      filesChanged: [],
      verdict: null,
      findings: [],
      logDir: null,
    };
    await store.writeRunFile(run.id, 'steps.json', JSON.stringify([step]));
    await store.appendEvent(run.id, {
      type: 'step_progress',
      step: 1,
      message: `reviewer: gemini started (pid ${pid}).`,
      data: { pid, startTime: identify(pid).startTime ?? null, bootId: bootId() ?? null },
    });
    await first.close({ keepRoot: true });
    await leftRunning(store.indexPath, { ...store.get(run.id), stepCount: 1 });
    second = await openHarness({ root: first.root });
    assert.deepEqual(await waitUntilGone([pid], 5000), []);
    const { json, markdown } = readSummary(second, run.id);
    assert.equal(json.run.status, 'interrupted');
    assert.match(json.run.outcome ?? '', /; 1 leftover process group\(s\) killed\.$/);
    assert.equal(
      json.steps[0]?.errorMessage,
      'Interrupted: the server stopped while this step ran; its leftover process group was killed at the next start.',
    );
    assert.equal(json.playbookInputs, null);
    assert.deepEqual(json.changes, []);
    assert.match(markdown, /^### 1\. reviewer \(gemini, reviewer\)$/m);
    assert.match(markdown, /^- Command: `gemini --model gemini-x`$/m);
  });

  it('when the run folder is gone: writes the summary anyway, with no steps', async function () {
    const first = await firstServer();
    const id = 'run-20260101T000000Z-dead03';
    appendFileSync(
      first.services.store.indexPath,
      `${JSON.stringify(leftRunningRecord(id, await deadHost(), 0))}\n`,
    );
    await first.close({ keepRoot: true });
    second = await openHarness({ root: first.root });
    assert.ok(existsSync(path.join(second.services.store.runDir(id), 'summary.md')));
    const { json, markdown } = readSummary(second, id);
    assert.equal(json.run.status, 'interrupted');
    assert.deepEqual([json.steps, json.changes, json.decisions, json.playbookInputs], [[], [], [], null]);
    assert.match(markdown, /^- \*\*Status:\*\* interrupted — Interrupted: /m);
  });
});
