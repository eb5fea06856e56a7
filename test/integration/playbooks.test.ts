// The playbook engine with the real codex and gemini CLIs against the offline model: every built-in that matters
// end to end, the failure classes (writer handed to the other CLI, a failed reviewer ending partial with the change
// kept, a rate limit retried), a serve process killed mid-playbook and recovered by the next one, and a replay
// from the recorded playbook.json giving the same trace signature (steps, verdicts, decisions and prompts).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { identify, isSameProcessAlive, runProcess, type ProcessIdentity } from '../../src/core/exec';
import { openServices, type TandemServices } from '../../src/mcp/services';
import type { RunEvent, RunRecord } from '../../src/orchestrator/model';
import type { ApplyPolicy } from '../../src/orchestrator/orchestrator';
import {
  TRACE_FILE,
  traceSignature,
  type PlaybookTrace,
  type TraceEntry,
} from '../../src/orchestrator/playbook/engine';
import { builtinPlaybook } from '../../src/orchestrator/playbook/library';
import { resolveInputs, type Playbook, type Resilience } from '../../src/orchestrator/playbook/schema';
import type { RunSummary } from '../../src/orchestrator/summary';
import { OfflineModelServer } from '../../src/offline/model-server';
import { isGroupAlive, waitUntilGone } from '../support/processes';
import { CODEX_BIN, GEMINI_BIN, REPO_ROOT, scratchDir } from '../support/real-cli';

async function git(cwd: string, ...args: string[]): Promise<string> {
  const result = await runProcess({
    command: 'git',
    args: ['-c', 'user.name=Test', '-c', 'user.email=test@example.invalid', ...args],
    cwd,
    env: { set: { GIT_CONFIG_NOSYSTEM: '1' } },
  });
  assert.equal(result.exitCode, 0, result.stderr.text);
  return result.stdout.text;
}

interface StepRow {
  name: string;
  workerKind: string;
  role: string;
  status: string;
  verdict: string | null;
  findings: unknown[];
}

interface Finished {
  run: RunRecord;
  trace: PlaybookTrace;
  steps: StepRow[];
  summary: RunSummary;
}

const sequence = (steps: readonly StepRow[]): string[] =>
  steps.map((step) => `${step.name}:${step.workerKind}:${step.status}`);

const entry = (trace: PlaybookTrace, name: string): TraceEntry | undefined =>
  trace.entries.find((candidate) => candidate.name === name || candidate.id === name);

/** For a replay that differs: the prompt lines of each step that are not the same in both runs. */
function promptDifferences(first: PlaybookTrace, second: PlaybookTrace): string {
  const out: string[] = [];
  for (const a of first.entries) {
    if (a.kind !== 'step') continue;
    const b = second.entries.find((candidate) => candidate.name === a.name);
    if (!b || a.promptSha256 === b.promptSha256) continue;
    const left = (a.prompt ?? '').split('\n');
    const right = (b.prompt ?? '').split('\n');
    out.push(`${a.name}: the prompts differ`);
    for (let i = 0; i < Math.max(left.length, right.length); i++) {
      if (left[i] !== right[i])
        out.push(`  line ${i + 1}: ${JSON.stringify(left[i])} vs ${JSON.stringify(right[i])}`);
    }
  }
  return `the replay's trace differs.\n${out.join('\n')}`;
}

describe('playbooks with the real CLIs against the offline model', function () {
  this.timeout(120_000);
  let scratch: string;
  let root: string;
  let model: OfflineModelServer;
  let services: TandemServices;

  before(async () => {
    scratch = scratchDir('playbooks');
    root = path.join(scratch, 'workspace');
    mkdirSync(path.join(root, 'src'), { recursive: true });
    writeFileSync(path.join(root, 'README.md'), '# playbooks\n');
    writeFileSync(path.join(root, 'src', 'app.js'), 'module.exports = 1;\n');
    // A git repository: writers get worktrees.
    await git(root, 'init', '-q');
    await git(root, 'add', '-A');
    await git(root, 'commit', '-q', '-m', 'initial');
    model = await OfflineModelServer.start();
    services = await openServices({
      workspaceRoot: root,
      endpoint: { type: 'offline', openaiBaseUrl: model.openaiBaseUrl, geminiBaseUrl: model.geminiBaseUrl },
      cliPaths: { codex: CODEX_BIN, gemini: GEMINI_BIN },
      // A stalled CLI is killed long before mocha gives up on the test.
      limits: { timeoutMs: 60_000, idleTimeoutMs: 30_000 },
    });
  });

  after(async () => {
    await services?.close();
    await model?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  async function start(
    playbook: Playbook,
    source: string,
    hash: string,
    task: string,
    options: { inputs?: Record<string, unknown>; apply?: ApplyPolicy; resilience?: Resilience },
  ): Promise<Finished> {
    const started = await services.orchestrator.startPlaybook({
      owner: 'tester',
      task,
      playbook,
      source,
      hash,
      inputs: resolveInputs(playbook, options.inputs ?? {}, source),
      ...(options.apply ? { apply: options.apply } : {}),
      ...(options.resilience ? { resilience: options.resilience } : {}),
    });
    assert.equal(started.kind, 'playbook');
    const run = await services.orchestrator.finished(started.id);
    const read = async (name: string): Promise<string> => {
      const text = await services.store.readRunFile(run.id, name);
      assert.ok(text, `${name} was written for run ${run.id}`);
      return text;
    };
    const trace = JSON.parse(await read(TRACE_FILE)) as PlaybookTrace;
    const steps = JSON.parse(await read('steps.json')) as StepRow[];
    const summary = JSON.parse(await read('summary.json')) as RunSummary;
    return { run, trace, steps, summary };
  }

  function run(
    name: string,
    task: string,
    options: { inputs?: Record<string, unknown>; apply?: ApplyPolicy; resilience?: Resilience } = {},
  ): Promise<Finished> {
    const loaded = builtinPlaybook(name);
    assert.ok(loaded, `built-in playbook ${name}`);
    return start(loaded.playbook, loaded.source, loaded.hash, task, options);
  }

  const file = (name: string): string => path.join(root, name);
  const read = (name: string): string => readFileSync(file(name), 'utf8');

  describe('the built-in playbooks end to end', function () {
    it('handoff: gemini requests changes once, codex revises in the same copy, review-2 approves, the revision is applied', async () => {
      const result = await run(
        'handoff',
        '[[role:reviewer step=review verdict=request_changes findings=medium]] ' +
          '[[role:writer step=revise-2 scenario=write path=handoff.txt content=v2]] ' +
          '[[scenario:write path=handoff.txt content=v1]] Add handoff.txt.',
      );
      assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
      assert.equal(result.run.playbook?.name, 'handoff');
      assert.equal(result.run.playbook?.source, 'builtin:handoff');
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
      // The revision prompt carries the reviewer's findings; the second review sees the revised file.
      assert.match(entry(result.trace, 'revise-2')?.prompt ?? '', /\[medium\] User input reaches a shell/);
      assert.match(entry(result.trace, 'review-2')?.prompt ?? '', /^\+v2$/m);
      assert.equal(result.run.applied, true);
      assert.equal(read('handoff.txt'), 'v2');
      assert.match(result.run.decision ?? '', /Applied write by codex/);
    });

    it('plan_then_write: gemini plans, the plan reaches codex in its prompt, gemini checks against it', async () => {
      const result = await run(
        'plan_then_write',
        '[[role:planner scenario=reply text=1.Create-plan.txt-holding-planned]] ' +
          '[[scenario:write path=plan.txt content=planned]] Add plan.txt.',
      );
      assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
      assert.deepEqual(sequence(result.steps), [
        'plan:gemini:succeeded',
        'write:codex:succeeded',
        'check:gemini:succeeded',
      ]);
      assert.deepEqual(
        result.steps.map((step) => step.role),
        ['planner', 'writer', 'reviewer'],
      );
      const write = entry(result.trace, 'write');
      assert.match(write?.prompt ?? '', /Implement this plan:\n1\.Create-plan\.txt-holding-planned\n/);
      // The model got the same prompt the trace recorded.
      const codexSaw = model.requests.find(
        (request) => request.api === 'openai-responses' && request.prompt === write?.prompt,
      );
      assert.ok(codexSaw, 'codex sent the recorded writer prompt to the model byte for byte');
      assert.match(
        entry(result.trace, 'check')?.prompt ?? '',
        /carries out the plan you wrote, step by step:\n1\.Create-plan\.txt-holding-planned/,
      );
      assert.equal(result.run.applied, true);
      assert.equal(read('plan.txt'), 'planned');
    });

    it('plan_then_write: a percent-encoded role tag value reaches the writer decoded', async () => {
      const result = await run(
        'plan_then_write',
        '[[role:planner scenario=reply text=1.%20Create%20plan2.txt%0A2.%20Done]] ' +
          '[[scenario:write path=plan2.txt content=planned]] Add plan2.txt.',
        { apply: 'never' },
      );
      assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
      const prompt = entry(result.trace, 'write')?.prompt ?? '';
      const plan = prompt.slice(prompt.indexOf('Implement this plan:'), prompt.indexOf('The task:'));
      assert.match(
        plan,
        /Implement this plan:\n1\. Create plan2\.txt\n2\. Done\n/,
        `role tag values should be percent-decoded like scenario tag values; the writer got ${JSON.stringify(plan)}`,
      );
    });

    it('parallel_adjudicate: both CLIs write a.txt, the verify command decides, gemini wins and the decision says why', async () => {
      const result = await run(
        'parallel_adjudicate',
        '[[role:writer cli=codex scenario=write path=a.txt content=broken]] ' +
          '[[role:writer cli=gemini scenario=write path=a.txt content=fixed]] Fix a.txt.',
        {
          inputs: {
            verify: [
              process.execPath,
              '-e',
              "process.exit(require('fs').readFileSync('a.txt','utf8') === 'fixed' ? 0 : 1)",
            ],
          },
        },
      );
      assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
      assert.deepEqual(sequence(result.steps).sort(), [
        'codex_solution:codex:succeeded',
        'gemini_solution:gemini:succeeded',
        'review_codex:gemini:succeeded',
        'review_gemini:codex:succeeded',
      ]);
      assert.equal(read('a.txt'), 'fixed');
      assert.equal(result.run.applied, true);
      assert.match(result.run.decision ?? '', /Applied gemini_solution by gemini/);
      const adjudication = entry(result.trace, 'adjudicate');
      assert.equal(adjudication?.kind, 'decision');
      assert.match(
        adjudication?.message ?? '',
        /gemini_solution ranked first: gemini_solution \(gemini\): verification passed.*codex_solution \(codex\): verification failed/,
      );
      assert.deepEqual(
        result.trace.entries.filter((e) => e.kind === 'verify').map((e) => [e.id, e.status]),
        [
          ['verify_codex', 'failed'],
          ['verify_gemini', 'passed'],
        ],
      );
      const codexLog = await services.store.readRunFile(result.run.id, 'verify-verify_codex.log');
      assert.match(codexLog ?? '', /\(exit 1\)/);
      // The loser's patch stays in the run folder.
      const loser = await services.store.readRunFile(result.run.id, 'changes-codex_solution.patch');
      assert.match(loser ?? '', /\+broken/);
    });

    it('single_worker: gemini writes and its change is applied', async () => {
      const result = await run(
        'single_worker',
        '[[scenario:write path=single.txt content=one]] Add single.txt.',
        { inputs: { writer: 'gemini' } },
      );
      assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
      assert.deepEqual(sequence(result.steps), ['write:gemini:succeeded']);
      assert.equal(result.run.applied, true);
      assert.equal(read('single.txt'), 'one');
      assert.deepEqual(result.run.workers, ['gemini']);
    });

    it('security_redteam_pass: a critical finding of the gemini red team blocks the change, a low one does not', async () => {
      const blocked = await run(
        'security_redteam_pass',
        '[[scenario:write path=risky.txt content=risky]] [[role:redteam findings=critical]] Add risky.txt.',
      );
      assert.equal(blocked.run.status, 'succeeded', blocked.run.outcome ?? '');
      assert.deepEqual(sequence(blocked.steps), ['write:codex:succeeded', 'redteam:gemini:succeeded']);
      assert.equal(blocked.steps[1]?.role, 'redteam');
      assert.equal(blocked.steps[1]?.findings.length, 1);
      assert.equal(blocked.run.applied, false);
      assert.equal(existsSync(file('risky.txt')), false);
      assert.match(
        blocked.run.decision ?? '',
        /Not applied: redteam by gemini succeeded; redteam by gemini found 1 finding\(s\) at or above high/,
      );

      const passed = await run(
        'security_redteam_pass',
        '[[scenario:write path=safe.txt content=safe]] [[role:redteam findings=low]] Add safe.txt.',
      );
      assert.equal(passed.run.status, 'succeeded', passed.run.outcome ?? '');
      assert.equal(passed.run.applied, true);
      assert.equal(read('safe.txt'), 'safe');
    });
  });

  describe('failure classes', function () {
    it('a writer that fails (codex: HTTP 500) is handed to gemini when fallback is allowed', async () => {
      const result = await run(
        'single_worker',
        '[[role:writer cli=codex scenario=http500]] [[scenario:write path=fallback.txt content=fb]] Add fallback.txt.',
        { resilience: { fallback: true, backoffMs: 50 } },
      );
      assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
      assert.deepEqual(sequence(result.steps), ['write:codex:failed', 'write-fallback:gemini:succeeded']);
      assert.equal(read('fallback.txt'), 'fb');
      const events = await services.store.readEvents(result.run.id);
      assert.ok(
        events.some((event) => /write: codex failed; handing the step to gemini/.test(event.message)),
        'the hand-over is a recorded decision',
      );
    });

    for (const name of ['handoff', 'codex_writes_gemini_reviews']) {
      it(`${name}: after the writer falls back to gemini, codex reviews (never the CLI that wrote)`, async () => {
        const result = await run(
          name,
          `[[role:writer cli=codex scenario=http500]] [[scenario:write path=${name}-fb.txt content=fb]] Add ${name}-fb.txt.`,
          {
            resilience: { fallback: true, backoffMs: 50 },
            ...(name === 'handoff' ? { inputs: { rounds: 1 } } : {}),
          },
        );
        assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
        assert.deepEqual(sequence(result.steps), [
          'write:codex:failed',
          'write-fallback:gemini:succeeded',
          'review:codex:succeeded',
        ]);
        const review = result.trace.entries.find((e) => e.kind === 'step' && e.name === 'review');
        assert.match(review?.prompt ?? '', /gemini wrote/);
        const choice = result.trace.entries.find((e) => e.kind === 'decision' && e.id === 'review');
        assert.equal(choice?.worker, 'codex', JSON.stringify(choice));
        const events = await services.store.readEvents(result.run.id);
        assert.ok(
          events.some((event) => event.message === choice?.message),
          'the choice of reviewer is a recorded decision',
        );
        assert.equal(result.run.applied, true);
        assert.equal(read(`${name}-fb.txt`), 'fb');
      });
    }

    it('a reviewer that fails (gemini: HTTP 500) ends the run partial; the patch is kept, not applied', async () => {
      const result = await run(
        'codex_writes_gemini_reviews',
        '[[role:reviewer scenario=http500]] [[scenario:write path=kept.txt content=kept]] Add kept.txt.',
      );
      assert.equal(result.run.status, 'partial', result.run.outcome ?? '');
      assert.deepEqual(sequence(result.steps), ['write:codex:succeeded', 'review:gemini:failed']);
      assert.match(
        result.run.outcome ?? '',
        /the reviewer \(gemini\) failed in review: .*What was written is kept in the run folder/,
      );
      assert.equal(result.run.applied, false);
      assert.equal(existsSync(file('kept.txt')), false);
      const patch = await services.store.readRunFile(result.run.id, 'changes-write.patch');
      assert.match(patch ?? '', /\+\+\+ b\/kept\.txt/);
      assert.equal(entry(result.trace, 'run')?.kind, 'stop');
    });

    for (const writer of ['codex', 'gemini'] as const) {
      it(`a rate-limited ${writer} writer (HTTP 429) is classified rate_limited and retried; the retry succeeds`, async () => {
        const result = await run(
          'single_worker',
          `[[role:writer step=write scenario=http429]] [[scenario:write path=retry-${writer}.txt content=r]] Add retry-${writer}.txt.`,
          { inputs: { writer }, resilience: { backoffMs: 50 } },
        );
        assert.equal(result.run.status, 'succeeded', result.run.outcome ?? '');
        assert.deepEqual(sequence(result.steps), [
          `write:${writer}:rate_limited`,
          `write-retry1:${writer}:succeeded`,
        ]);
        assert.equal(read(`retry-${writer}.txt`), 'r');
        // Both attempts sit at their own position in the trace, with the retry decision between them.
        assert.deepEqual(
          result.trace.entries
            .filter((e) => e.id === 'write')
            .map((e) => [e.position.join('.'), e.kind, e.status ?? null]),
          [
            ['0.0', 'step', 'rate_limited'],
            ['0.1', 'decision', null],
            ['0.2', 'step', 'succeeded'],
          ],
        );
        // A fast failure: the CLI does not sit in its own retry loop on a 429.
        const first = result.summary.steps[0];
        assert.ok((first?.durationMs ?? Infinity) < 20_000, `the 429 took ${first?.durationMs} ms`);
      });
    }
  });

  describe('replay', function () {
    let first: Finished | undefined;
    let second: Finished | undefined;

    it('handoff run again from its recorded playbook.json takes the same steps, verdicts, conditions and decisions', async () => {
      first = await run(
        'handoff',
        '[[role:reviewer step=review verdict=request_changes]] [[scenario:write path=replay.txt content=same]] Add replay.txt.',
        { apply: 'never' },
      );
      assert.equal(first.run.status, 'succeeded', first.run.outcome ?? '');
      assert.equal(first.run.applied, false);
      assert.equal(existsSync(file('replay.txt')), false);
      const recorded = first.trace;
      assert.equal(recorded.apply, 'never');
      assert.equal(recorded.source, 'builtin:handoff');
      assert.deepEqual(recorded.inputs, { writer: 'codex', rounds: 3 });

      second = await start(recorded.playbook, recorded.source, recorded.hash, recorded.task, {
        inputs: recorded.inputs,
        apply: recorded.apply,
      });
      assert.equal(second.run.status, 'succeeded', second.run.outcome ?? '');
      assert.equal(second.run.playbook?.hash, first.run.playbook?.hash);
      assert.deepEqual(sequence(second.steps), sequence(first.steps));
      // The signature without the prompt hashes (its last field).
      const withoutPrompts = (trace: PlaybookTrace): string[] =>
        traceSignature(trace.entries).map((line) => line.replace(/ [0-9a-f]{64}$/, ' '));
      const a = withoutPrompts(first.trace);
      assert.ok(a.length >= 6, `a full trace: ${a.join(' | ')}`);
      assert.deepEqual(withoutPrompts(second.trace), a);
    });

    it('...and with the same prompts: traceSignature of the replay deep-equals the original', () => {
      assert.ok(first && second, 'the previous test ran both runs');
      const a = traceSignature(first.trace.entries);
      const b = traceSignature(second.trace.entries);
      assert.deepEqual(b, a, promptDifferences(first.trace, second.trace));
    });
  });
});

/** The serve entry point: the bundle when it is current, else the tsc output of the same sources. */
async function serveEntry(): Promise<string> {
  const bundle = path.join(REPO_ROOT, 'dist', 'cli.js');
  if (!existsSync(bundle)) {
    const built = await runProcess({
      command: process.execPath,
      args: [path.join(REPO_ROOT, 'esbuild.mjs')],
      cwd: REPO_ROOT,
      timeoutMs: 120_000,
    });
    assert.equal(built.exitCode, 0, `npm run build failed: ${built.stderr.text}`);
  }
  const newest = newestMtime(path.join(REPO_ROOT, 'src'));
  // A bundle older than the sources would test yesterday's server; the tsc output was just built from them.
  return statSync(bundle).mtimeMs >= newest ? bundle : path.join(REPO_ROOT, 'out', 'src', 'cli', 'main.js');
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, name.name);
    if (name.isDirectory()) newest = Math.max(newest, newestMtime(full));
    else if (name.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

function isolationLeftovers(root: string): string[] {
  const base = path.join(root, '.tandem', 'isolation');
  return ['worktrees', 'copies', 'bases'].flatMap((area) => {
    const dir = path.join(base, area);
    return existsSync(dir) ? readdirSync(dir).map((name) => `${area}/${name}`) : [];
  });
}

describe('a serve process killed mid-playbook and restarted', function () {
  this.timeout(90_000);
  // The reviewer: a gemini stand-in that hangs without asking a model. The real gemini talks to the offline
  // model inside the serve process and may give up once that dies, before the restart could kill it.
  const hangingGemini = path.join(REPO_ROOT, 'test', 'fixtures', 'hang-cli.cjs');
  let scratch: string;
  let entryPoint: string;
  // What a failed test may leave: killed only while the same process (pid and start time) still runs.
  const leftovers: ProcessIdentity[] = [];

  before(async function () {
    this.timeout(150_000);
    scratch = scratchDir('playbook-restart');
    entryPoint = await serveEntry();
  });
  after(() => {
    for (const identity of leftovers) {
      if (!isSameProcessAlive(identity)) continue;
      try {
        process.kill(identity.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('leaves the run interrupted, its worker killed and no isolation copy behind', async () => {
    const root = path.join(scratch, 'workspace');
    mkdirSync(root);
    writeFileSync(path.join(root, 'README.md'), '# restart\n');
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [
        entryPoint,
        'serve',
        '--workspace',
        root,
        '--offline',
        '--codex-path',
        CODEX_BIN,
        '--gemini-path',
        hangingGemini,
        // Recovery of a worker that outlives its server is what this tests; a sandboxed step cannot outlive
        // it (bubblewrap's --die-with-parent ends it with the server), so the stand-in runs unsandboxed.
        '--sandbox',
        'off',
      ],
      stderr: 'ignore',
    });
    const client = new Client({ name: 'playbook-restart-test', version: '1' });
    await client.connect(transport);
    const serverPid = transport.pid as number;
    leftovers.push(identify(serverPid));

    const { tools } = await client.listTools();
    assert.ok(
      tools.some((tool) => tool.name === 'playbook_run'),
      `playbook_run is a tool of serve (${tools.map((tool) => tool.name).join(', ')})`,
    );
    // handoff: the real codex writes (and finishes), then gemini's review hangs until the crash.
    const started = await client.callTool({
      name: 'playbook_run',
      arguments: {
        agentId: 'agent-r',
        playbook: 'handoff',
        task: '[[role:reviewer scenario=hang]] [[scenario:write path=crash.txt content=crash]] Add crash.txt.',
      },
    });
    assert.notEqual(started.isError, true, JSON.stringify(started.content));
    const runId = (started.structuredContent as { run: { id: string } }).run.id;

    const eventsFile = path.join(root, '.tandem', 'runs', runId, 'events.jsonl');
    const workers = new Map<number, { pid: number; startTime: string | undefined }>();
    for (let i = 0; i < 300 && !workers.has(2); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const lines = existsSync(eventsFile) ? readFileSync(eventsFile, 'utf8').trim().split('\n') : [];
      for (const line of lines) {
        if (line === '') continue;
        const event = JSON.parse(line) as RunEvent;
        const pid = event.data?.pid;
        if (event.type === 'step_progress' && typeof pid === 'number' && event.step !== undefined) {
          const startTime = event.data?.startTime;
          workers.set(event.step, { pid, startTime: typeof startTime === 'string' ? startTime : undefined });
        }
      }
    }
    const reviewer = workers.get(2);
    assert.ok(reviewer, 'the reviewer (step 2) started and its pid was recorded in events.jsonl');
    leftovers.push(reviewer);
    assert.ok(reviewer.startTime, 'the start time was recorded with the pid');
    // Let the stand-in start its grandchild before the crash.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(isSameProcessAlive(reviewer), true, 'the reviewer hangs');
    assert.ok(isolationLeftovers(root).length > 0, "the writer's isolated copy is there");

    // A crash: no chance to clean up.
    process.kill(serverPid, 'SIGKILL');
    assert.deepEqual(await waitUntilGone([serverPid], 5000), []);
    await client.close().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(isSameProcessAlive(reviewer), true, 'the reviewer outlived the server');

    const restarted = await openServices({
      workspaceRoot: root,
      cliPaths: { codex: CODEX_BIN, gemini: hangingGemini },
    });
    try {
      const run = restarted.store.get(runId);
      assert.equal(run.kind, 'playbook');
      assert.equal(run.playbook?.name, 'handoff');
      assert.equal(run.status, 'interrupted');
      assert.match(run.outcome ?? '', /Interrupted: the server running it \(pid \d+\) stopped/);
      assert.match(run.outcome ?? '', /; 1 leftover process group\(s\) killed\.$/);
      assert.deepEqual(
        await waitUntilGone([reviewer.pid], 5000),
        [],
        'the reviewer process is gone after the restart',
      );
      assert.equal(isSameProcessAlive(reviewer), false);
      assert.equal(isGroupAlive(reviewer.pid), false, 'nothing is left in its process group');
      assert.deepEqual(isolationLeftovers(root), [], 'no orphan isolation copy or base remains');
      assert.equal(existsSync(path.join(root, 'crash.txt')), false, 'nothing was applied');
      const last = (await restarted.store.readEvents(runId)).pop();
      assert.equal(last?.type, 'run_finished');
      assert.equal(last?.data?.status, 'interrupted');
      // The trace holds what the playbook did before the crash: the write, not the hung review.
      const trace = JSON.parse(
        readFileSync(path.join(root, '.tandem', 'runs', runId, TRACE_FILE), 'utf8'),
      ) as PlaybookTrace;
      assert.deepEqual(
        trace.entries.map((e) => [e.kind, e.name ?? e.id, e.status ?? '']),
        [
          ['step', 'write', 'succeeded'],
          ['condition', 'needs_revision', ''],
        ],
      );
    } finally {
      await restarted.close();
    }
  });
});
