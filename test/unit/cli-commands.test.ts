// The `tandem-mcp` commands that need no worker, run as the compiled CLI in a child process: runs list/show
// over a store filled here, playbooks, the panic round trip, and usage errors; the commands that start work
// (`run --playbook`, `runs replay`) in this process on the fake CLIs; plus the shared argument parser itself.
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, UsageError } from '../../src/cli/args';
import type { CommandIo } from '../../src/cli/cli-services';
import { inputValue, parseInputFlags, runCommand } from '../../src/cli/run';
import { runsCommand } from '../../src/cli/runs';
import { runProcess, type ExecResult } from '../../src/core/exec';
import { DEFAULT_WRITE_CONTENT } from '../../src/offline/model-server';
import { PanicSwitch } from '../../src/orchestrator/panic';
import { TRACE_FILE, type PlaybookTrace } from '../../src/orchestrator/playbook/engine';
import { builtinPlaybook, PLAYBOOKS_DIR } from '../../src/orchestrator/playbook/library';
import { RunStore } from '../../src/orchestrator/run-store';
import type { RunRecord } from '../../src/orchestrator/model';
import { openHarness, type McpHarness } from '../support/mcp-harness';

const REPO = path.resolve(__dirname, '..', '..', '..');
const MAIN = path.join(REPO, 'out', 'src', 'cli', 'main.js');
const NODE_DIR = path.dirname(process.execPath);
const LONG_DECISION =
  'Applied codex change after gemini approved it with two low findings about naming and one about tests.';

describe('tandem-mcp commands without workers', function () {
  this.timeout(30_000);

  let home: string;
  let workspace: string;

  beforeEach(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'tandem-cli-home-'));
    workspace = mkdtempSync(path.join(os.tmpdir(), 'tandem-cli-ws-'));
  });
  afterEach(() => {
    rmSync(home, { recursive: true, force: true });
    rmSync(workspace, { recursive: true, force: true });
  });

  /** The CLI with stdin closed (so never a TTY) and only PATH and HOME from us. */
  function cli(args: string[], set: Record<string, string> = {}): Promise<ExecResult> {
    return runProcess({
      command: process.execPath,
      args: [MAIN, ...args],
      cwd: workspace,
      env: { set: { PATH: NODE_DIR, HOME: home, ...set } },
      timeoutMs: 20_000,
    });
  }

  /** Three runs: a finished one with a summary, a failed one, a running one; oldest first. */
  async function fillStore(): Promise<RunRecord[]> {
    const store = await RunStore.open(workspace);
    const done = await store.create({
      kind: 'strategy',
      strategy: 'codex_writes_gemini_reviews',
      owner: 'agent-a',
      prompt: 'fix the greeting',
      workers: ['codex', 'gemini'],
    });
    await store.update(done.id, {
      status: 'succeeded',
      outcome: 'codex wrote, gemini approved.',
      decision: LONG_DECISION,
      applied: true,
    });
    await store.writeRunFile(done.id, 'summary.md', '# Run summary written by the orchestrator\n');
    await store.writeRunFile(done.id, 'summary.json', JSON.stringify({ schemaVersion: 1, marker: 'json' }));
    const failed = await store.create({
      kind: 'strategy',
      strategy: 'single_worker',
      owner: 'agent-b',
      prompt: 'break it',
      workers: ['codex'],
    });
    await store.update(failed.id, { status: 'failed', outcome: 'codex failed: exit 1' });
    const running = await store.create({
      kind: 'dispatch',
      strategy: null,
      owner: 'human',
      prompt: 'still going',
      workers: ['w1'],
    });
    await store.update(running.id, { status: 'running' });
    return [store.get(done.id), store.get(failed.id), store.get(running.id)];
  }

  describe('runs list', () => {
    it('prints a table newest first, with the decision cut to 60 characters', async () => {
      const [done, failed, running] = await fillStore();
      const result = await cli(['runs', 'list', '--workspace', workspace]);
      assert.equal(result.exitCode, 0, result.stderr.text);
      const lines = result.stdout.text.trimEnd().split('\n');
      assert.match(lines[0] ?? '', /^ID +STATUS +STRATEGY +OWNER +CREATED +DECISION$/);
      assert.deepEqual(
        lines.slice(1).map((line) => line.split(/ +/).slice(0, 4)),
        [
          [running?.id, 'running', 'task', 'human'],
          [failed?.id, 'failed', 'single_worker', 'agent-b'],
          [done?.id, 'succeeded', 'codex_writes_gemini_reviews', 'agent-a'],
        ],
      );
      const decision = (lines[3] ?? '').slice((lines[0] ?? '').indexOf('DECISION'));
      assert.equal(decision, `${LONG_DECISION.slice(0, 59)}…`);
    });

    it('filters by status and strategy, limits, and prints JSON records', async () => {
      const [done, failed] = await fillStore();
      const byStatus = await cli(['runs', 'list', '--workspace', workspace, '--status', 'failed', '--json']);
      assert.equal(byStatus.exitCode, 0, byStatus.stderr.text);
      assert.deepEqual(
        (JSON.parse(byStatus.stdout.text) as RunRecord[]).map((run) => run.id),
        [failed?.id],
      );
      const byStrategy = await cli([
        'runs',
        'list',
        `--workspace=${workspace}`,
        '--strategy',
        'codex_writes_gemini_reviews',
        '--json',
      ]);
      const records = JSON.parse(byStrategy.stdout.text) as RunRecord[];
      assert.deepEqual(
        records.map((run) => [run.id, run.decision]),
        [[done?.id, LONG_DECISION]],
      );
      const limited = await cli(['runs', 'list', '--workspace', workspace, '--limit', '1', '--json']);
      assert.equal((JSON.parse(limited.stdout.text) as RunRecord[]).length, 1);
    });

    it('says there are no runs, and creates nothing, in a folder without Tandem state', async () => {
      const result = await cli(['runs', 'list']);
      assert.equal(result.exitCode, 0, result.stderr.text);
      assert.match(result.stdout.text, /^No runs in /);
      assert.equal(existsSync(path.join(workspace, '.tandem')), false);
    });
  });

  describe('runs show', () => {
    it('prints summary.md by default and summary.json with --json', async () => {
      const [done] = await fillStore();
      const markdown = await cli(['runs', 'show', done?.id as string, '--workspace', workspace]);
      assert.equal(markdown.exitCode, 0, markdown.stderr.text);
      assert.equal(markdown.stdout.text, '# Run summary written by the orchestrator\n');
      const explicit = await cli(['runs', 'show', '--markdown', done?.id as string]);
      assert.equal(explicit.stdout.text, markdown.stdout.text);
      const json = await cli(['runs', 'show', done?.id as string, '--json']);
      assert.deepEqual(JSON.parse(json.stdout.text), { schemaVersion: 1, marker: 'json' });
    });

    it('renders the record of a run that has no summary yet', async () => {
      const [, , running] = await fillStore();
      const result = await cli(['runs', 'show', running?.id as string]);
      assert.equal(result.exitCode, 0, result.stderr.text);
      assert.match(result.stdout.text, new RegExp(`^# Run ${running?.id}\n`));
      assert.match(result.stdout.text, /^- \*\*Status:\*\* running$/m);
      assert.match(result.stdout.text, /^still going$/m);
      const json = await cli(['runs', 'show', running?.id as string, '--json']);
      assert.equal((JSON.parse(json.stdout.text) as { run: RunRecord }).run.status, 'running');
    });

    it('exits 1 with the store message for an unknown id', async () => {
      await fillStore();
      const result = await cli(['runs', 'show', 'run-20000101T000000Z-abcdef']);
      assert.equal(result.exitCode, 1);
      assert.equal(result.stdout.text, '');
      assert.match(result.stderr.text, /No run "run-20000101T000000Z-abcdef" in this workspace/);
    });
  });

  describe('playbooks', () => {
    it('lists the built-ins and the workspace files, a broken one with the exact path of its fault (exit 0)', async () => {
      mkdirSync(path.join(workspace, PLAYBOOKS_DIR), { recursive: true });
      writeFileSync(
        path.join(workspace, PLAYBOOKS_DIR, 'mine.json'),
        JSON.stringify({
          format: 1,
          name: 'mine',
          description: 'My own writer.',
          inputs: { writer: { type: 'worker', default: 'gemini' } },
          steps: [
            { type: 'write', id: 'write', worker: { input: 'writer' } },
            { type: 'apply', id: 'apply', of: 'write' },
          ],
        }),
      );
      writeFileSync(
        path.join(workspace, PLAYBOOKS_DIR, 'broken.json'),
        JSON.stringify({
          format: 1,
          name: 'broken',
          description: 'x',
          steps: [
            { type: 'write', id: 'w1', worker: 'codex' },
            { type: 'review', id: 'r1', worker: 'gemini', of: 'w2' },
          ],
        }),
      );
      const result = await cli(['playbooks']);
      assert.equal(result.exitCode, 0, result.stderr.text);
      const lines = result.stdout.text.trimEnd().split('\n');
      assert.match(lines[0] ?? '', /^NAME +SOURCE +HASH +INPUTS +DESCRIPTION$/);
      assert.equal(lines.length, 1 + 8 + 2);
      assert.match(
        lines[1] ?? '',
        /^handoff +builtin +[0-9a-f]{12} +writer=codex rounds=3 +Writer\/reviewer handoff/,
      );
      assert.match(
        lines.find((line) => line.startsWith('mine ')) ?? '',
        /^mine +\.tandem\/playbooks\/mine\.json +[0-9a-f]{12} +writer=gemini +My own writer\.$/,
      );
      assert.match(
        lines.find((line) => line.startsWith('broken ')) ?? '',
        / - +- +ERROR \.tandem\/playbooks\/broken\.json: steps\[1\]\.of: no step has the id "w2"$/,
      );

      const json = await cli(['playbooks', '--json', '--workspace', workspace]);
      const entries = JSON.parse(json.stdout.text) as { name: string; error: string | null }[];
      assert.deepEqual(
        entries.filter((entry) => entry.error !== null).map((entry) => [entry.name, entry.error]),
        [['broken', '.tandem/playbooks/broken.json: steps[1].of: no step has the id "w2"']],
      );
    });

    it('lists the built-ins and creates nothing in a folder without Tandem state', async () => {
      const result = await cli(['playbooks', '--json']);
      assert.equal(result.exitCode, 0, result.stderr.text);
      assert.equal((JSON.parse(result.stdout.text) as unknown[]).length, 8);
      assert.equal(existsSync(path.join(workspace, '.tandem')), false);
    });
  });

  describe('commands that start work, in this process on the fake CLIs', () => {
    let harness: McpHarness;
    let root: string;

    beforeEach(async () => {
      harness = await openHarness();
      root = harness.root;
    });
    afterEach(async () => {
      await harness.close();
    });

    /** What a command printed, and an io that opens the harness's services instead of the real CLIs. */
    function io(): CommandIo & { stdout: string; stderr: string } {
      const collected = {
        stdout: '',
        stderr: '',
        out: (text: string) => void (collected.stdout += text),
        err: (text: string) => void (collected.stderr += text),
        open: async (options: { workspaceRoot: string; offline: boolean }) => {
          assert.equal(realpathSync(options.workspaceRoot), root);
          return { services: harness.services, offline: undefined, close: async () => undefined };
        },
      };
      return collected;
    }

    const HANDOFF_TASK =
      '[[role:reviewer step=review verdict=request_changes]] [[scenario:write path=h.txt]] Add h.txt.';

    async function runHandoff(extra: string[] = []): Promise<{ code: number; out: ReturnType<typeof io> }> {
      const out = io();
      const code = await runCommand(
        ['--playbook', 'handoff', '--apply', 'never', '--workspace', root, ...extra, HANDOFF_TASK],
        out,
      );
      return { code, out };
    }

    it('run --playbook: runs it to the end, events to stderr, summary.md to stdout', async () => {
      const { code, out } = await runHandoff(['--input', 'rounds=2', '--input', 'writer=codex']);
      assert.equal(code, 0, out.stderr);
      const [run] = harness.services.store.list({ limit: 1 });
      assert.ok(run);
      assert.deepEqual(
        [run.kind, run.owner, run.status, run.applied, run.playbook?.name],
        ['playbook', 'human', 'succeeded', false, 'handoff'],
      );
      assert.match(out.stderr, new RegExp(`^tandem-mcp: run ${run.id} \\(playbook:handoff\\) in `, 'm'));
      assert.match(
        out.stderr,
        /^\[\d+\] Run succeeded: write by codex succeeded, revise-2 by codex succeeded, review-2 by gemini: approve\.$/m,
      );
      assert.equal(out.stdout, await harness.services.store.readRunFile(run.id, 'summary.md'));
      assert.equal(existsSync(path.join(root, 'h.txt')), false, 'apply never');
      const trace = JSON.parse(
        (await harness.services.store.readRunFile(run.id, TRACE_FILE)) ?? '{}',
      ) as PlaybookTrace;
      assert.deepEqual(
        [trace.task, trace.apply, trace.inputs],
        [HANDOFF_TASK, 'never', { writer: 'codex', rounds: 2 }],
      );

      // The history shows it: runs list names the playbook, runs show --markdown prints its summary.md.
      const listed = await cli(['runs', 'list', '--workspace', root]);
      assert.match(listed.stdout.text, new RegExp(`^${run.id} +succeeded +playbook:handoff +human `, 'm'));
      const shown = await cli(['runs', 'show', run.id, '--markdown', '--workspace', root]);
      assert.equal(shown.exitCode, 0, shown.stderr.text);
      assert.equal(shown.stdout.text, out.stdout);
      const json = await cli(['runs', 'show', run.id, '--json', '--workspace', root]);
      assert.equal((JSON.parse(json.stdout.text) as { run: RunRecord }).run.playbook?.name, 'handoff');
    });

    it('run --playbook --fallback: a failed writer goes to the other CLI; --json prints summary.json', async () => {
      const out = io();
      const code = await runCommand(
        [
          '--playbook',
          'single_worker',
          '--fallback',
          '--json',
          '--workspace',
          root,
          '--prompt',
          '[[role:writer cli=codex scenario=http500]] [[scenario:write path=f.txt]] Add f.txt.',
        ],
        out,
      );
      assert.equal(code, 0, out.stderr);
      const summary = JSON.parse(out.stdout) as {
        run: RunRecord;
        steps: { name: string; workerKind: string }[];
      };
      assert.deepEqual(
        summary.steps.map((step) => `${step.name}:${step.workerKind}`),
        ['write:codex', 'write-fallback:gemini'],
      );
      assert.equal(summary.run.applied, true);
      assert.equal(readFileSync(path.join(root, 'f.txt'), 'utf8'), DEFAULT_WRITE_CONTENT);
    });

    it('run --strategy --fallback: the writer goes to the other CLI, and the review to the CLI that did not write', async () => {
      const out = io();
      const code = await runCommand(
        [
          '--strategy',
          'gemini_writes_codex_reviews',
          '--fallback',
          '--json',
          '--workspace',
          root,
          '[[role:writer cli=gemini scenario=http500]] [[scenario:write path=g.txt]] Add g.txt.',
        ],
        out,
      );
      assert.equal(code, 0, out.stderr);
      const summary = JSON.parse(out.stdout) as { steps: { name: string; workerKind: string }[] };
      assert.deepEqual(
        summary.steps.map((step) => `${step.name}:${step.workerKind}`),
        ['write:gemini', 'write-fallback:codex', 'review:gemini'],
      );
      assert.equal(readFileSync(path.join(root, 'g.txt'), 'utf8'), DEFAULT_WRITE_CONTENT);
    });

    it('run --playbook: a playbook file that cannot be used is reported with its path, exit 1, nothing started', async () => {
      mkdirSync(path.join(root, PLAYBOOKS_DIR), { recursive: true });
      writeFileSync(path.join(root, PLAYBOOKS_DIR, 'bad.json'), '{"format": 1, "name": "bad"}');
      const out = io();
      const code = await runCommand(['--playbook', 'bad', '--workspace', root, 'do it'], out);
      assert.equal(code, 1);
      assert.match(
        out.stderr,
        /^tandem-mcp: playbook "bad" cannot be used: \.tandem\/playbooks\/bad\.json: description: /,
      );
      assert.equal(harness.services.store.size, 0);
    });

    /** A handoff run made with `run --playbook`, and its trace. */
    async function recordedHandoff(): Promise<{ recorded: RunRecord; trace: PlaybookTrace }> {
      const first = await runHandoff();
      assert.equal(first.code, 0, first.out.stderr);
      const [recorded] = harness.services.store.list({ limit: 1 });
      assert.ok(recorded);
      const trace = JSON.parse(
        (await harness.services.store.readRunFile(recorded.id, TRACE_FILE)) ?? '{}',
      ) as PlaybookTrace;
      return { recorded, trace };
    }

    it('runs replay: the same playbook, task, inputs and apply policy give an identical trace (exit 0)', async () => {
      const { recorded, trace } = await recordedHandoff();
      assert.ok(trace.entries.length >= 6);

      const out = io();
      const code = await runsCommand(['replay', recorded.id, '--workspace', root], out);
      assert.equal(code, 0, out.stderr);
      assert.equal(out.stdout, `replay: identical (${trace.entries.length} entries)\n`);
      const [replay] = harness.services.store.list({ limit: 1 });
      assert.ok(replay && replay.id !== recorded.id);
      assert.deepEqual(
        [replay.status, replay.owner, replay.playbook?.hash, replay.prompt],
        ['succeeded', 'human', recorded.playbook?.hash, HANDOFF_TASK],
      );
      assert.match(out.stderr, new RegExp(`\\(playbook:handoff, replay of ${recorded.id}\\) in `));
    });

    it('runs replay: names the first entry that differs, with the line where the prompts part (exit 1)', async () => {
      const { recorded, trace } = await recordedHandoff();
      // As if the reviewer had been sent another prompt the first time.
      const review = trace.entries.findIndex((entry) => entry.name === 'review');
      const entry = trace.entries[review];
      assert.ok(entry?.prompt);
      entry.prompt = entry.prompt.replace('Task:', 'The task:');
      entry.promptSha256 = 'f'.repeat(64);
      await harness.services.store.writeRunFile(recorded.id, TRACE_FILE, JSON.stringify(trace));

      const out = io();
      const code = await runsCommand(['replay', recorded.id, '--workspace', root], out);
      assert.equal(code, 1, out.stderr);
      const lines = out.stdout.trimEnd().split('\n');
      assert.equal(
        lines[0],
        `replay: differs at entry ${review + 1} (recorded ${trace.entries.length} entries, replayed ${trace.entries.length})`,
      );
      assert.match(
        lines[1] ?? '',
        /^ {2}recorded: [\d.]+ step review gemini succeeded request_changes {2}f{64}$/,
      );
      assert.match(
        lines[2] ?? '',
        /^ {2}replayed: [\d.]+ step review gemini succeeded request_changes {2}[0-9a-f]{64}$/,
      );
      assert.match(lines[3] ?? '', /^ {2}the prompts part at line \d+:$/);
      assert.deepEqual(lines.slice(4), ['    recorded: The task:', '    replayed: Task:']);
    });

    it('runs replay: refuses a trace of an older format, saying how to get one it can replay (exit 1)', async () => {
      const { recorded, trace } = await recordedHandoff();
      assert.equal(trace.schemaVersion, 2);
      await harness.services.store.writeRunFile(
        recorded.id,
        TRACE_FILE,
        JSON.stringify({ ...trace, schemaVersion: 1 }),
      );
      const before = harness.services.store.size;
      const out = io();
      assert.equal(await runsCommand(['replay', recorded.id, '--workspace', root], out), 1);
      assert.match(
        out.stderr,
        /schemaVersion: trace format 1; this Tandem replays format 2 \(run the playbook again with this version/,
      );
      assert.equal(harness.services.store.size, before, 'no replay was started');
    });

    it('runs replay: refuses a run that is not a playbook run, and an unknown run (exit 1)', async () => {
      // A dispatch runs no playbook (strategies do: they are built-in playbooks).
      const { worker } = await harness.services.workers.spawn({ kind: 'codex', owner: 'agent-a' });
      const strategyRun = await harness.services.orchestrator.dispatch({
        owner: 'agent-a',
        workerId: worker.id,
        prompt: 'say hello',
        role: 'writer',
      });
      await harness.services.orchestrator.finished(strategyRun.id);
      const out = io();
      assert.equal(await runsCommand(['replay', strategyRun.id, '--workspace', root], out), 1);
      assert.equal(out.stdout, '');
      assert.equal(
        out.stderr,
        `tandem-mcp: run ${strategyRun.id} (task) has no playbook.json: only playbook runs can be replayed\n`,
      );
      const unknown = io();
      assert.equal(
        await runsCommand(['replay', 'run-20000101T000000Z-abcdef', '--workspace', root], unknown),
        1,
      );
      assert.match(unknown.stderr, /No run "run-20000101T000000Z-abcdef"/);
      assert.equal(harness.services.store.size, 1, 'a replay was started');
    });
  });

  describe('panic', () => {
    it('engages as the human, shows the status, and releases with --yes', async () => {
      const before = await cli(['panic', 'status', '--json']);
      assert.equal(before.exitCode, 0, before.stderr.text);
      assert.equal((JSON.parse(before.stdout.text) as { engaged: boolean }).engaged, false);

      const engage = await cli(['panic', 'engage', '--reason', 'runaway writer', '--workspace', workspace]);
      assert.equal(engage.exitCode, 0, engage.stderr.text);
      assert.match(engage.stdout.text, /^Panic is ENGAGED by human at .*: runaway writer$/m);
      const engaged = (await PanicSwitch.open(workspace)).status();
      assert.deepEqual(
        [engaged.engaged, engaged.engagedBy, engaged.reason],
        [true, 'human', 'runaway writer'],
      );

      const status = await cli(['panic', 'status']);
      assert.match(status.stdout.text, /ENGAGED by human/);

      const release = await cli(['panic', 'release', '--yes']);
      assert.equal(release.exitCode, 0, release.stderr.text);
      assert.match(release.stdout.text, /^Panic is not engaged \(released by human at /);
      const released = (await PanicSwitch.open(workspace)).status();
      assert.deepEqual([released.engaged, released.releasedBy], [false, 'human']);
    });

    it('says panic was not engaged (exit 1) when panic.json cannot be written: the CLI holds no memory', async () => {
      mkdirSync(path.join(workspace, '.tandem', 'panic.json'), { recursive: true });
      const engage = await cli(['panic', 'engage', '--reason', 'disk full', '--workspace', workspace]);
      assert.equal(engage.exitCode, 1);
      assert.equal(engage.stdout.text, '');
      assert.match(
        engage.stderr.text,
        /^tandem-mcp: panic not engaged: \.tandem\/panic\.json could not be written \(.*\)\. Engage it in the editor/,
      );
    });

    it('refuses to release without --yes when there is no terminal to confirm on (exit 2)', async () => {
      await (await PanicSwitch.open(workspace)).engage('agent-a', 'stop everything');
      const result = await cli(['panic', 'release']);
      assert.equal(result.exitCode, 2);
      assert.match(result.stderr.text, /no terminal to confirm on; pass --yes/);
      assert.equal((await PanicSwitch.open(workspace)).status().engaged, true);
    });
  });

  it('exits 2 with the usage on stderr and nothing on stdout for wrong usage', async () => {
    const cases: string[][] = [
      ['bogus'],
      ['runs'],
      ['runs', 'bogus'],
      ['runs', 'list', '--limit', '0'],
      ['runs', 'list', '--status', 'sleeping'],
      ['runs', 'show'],
      ['runs', 'show', 'a', 'b'],
      ['runs', 'show', 'x', '--json', '--markdown'],
      ['panic'],
      ['panic', 'engage'],
      ['panic', 'release', '--yes=no'],
      ['run', '--prompt', 'x'],
      ['run', '--strategy', 'nope', '--prompt', 'x'],
      ['run', '--strategy', 'single_worker'],
      ['run', '--strategy', 'single_worker', '--prompt', 'x', '--writer', 'claude'],
      ['run', '--strategy', 'single_worker', '--prompt', 'x', '--workspace', path.join(workspace, 'missing')],
      ['run', '--strategy', 'single_worker', '--prompt', 'x', 'y'],
      ['run', '--strategy', 'single_worker', '--input', 'writer=codex', 'x'],
      ['run', '--playbook', 'handoff'],
      ['run', '--playbook', 'handoff', '--strategy', 'single_worker', 'x'],
      ['run', '--playbook', 'handoff', '--writer', 'gemini', 'x'],
      ['run', '--playbook', 'nope', 'x'],
      ['run', '--playbook', 'handoff', '--input', 'rounds=99', 'x'],
      ['run', '--playbook', 'handoff', '--input', 'rounds', 'x'],
      ['run', '--playbook', 'handoff', '--input', 'rounds=2', '--input', 'rounds=3', 'x'],
      ['run', '--playbook', 'handoff', '--input', 'colour=blue', 'x'],
      ['playbooks', '--bogus'],
      ['playbooks', 'extra'],
      ['runs', 'replay'],
      ['runs', 'replay', 'a', 'b'],
      ['serve'],
      ['serve', '--workspace', '.', '--http', '70000'],
      ['serve', '--workspace', '.', '--concurrency', '0'],
      ['serve', '--workspace', '.', '--idle-timeout', '0'],
      ['serve', '--workspace', '.', '--step-timeout', 'soon'],
      ['serve', '--workspace', '.', '--http', '0', '--max-sessions', '0'],
      ['serve', '--workspace', '.', '--http', '0', '--session-idle-timeout', 'soon'],
      ['serve', '--workspace', '.', '--max-sessions', '8'],
      ['demo', '--keep', '--clean'],
      ['demo', '--bogus'],
    ];
    // Children in parallel: each is a cold node start.
    const results = await Promise.all(cases.map((args) => cli(args)));
    for (const [index, result] of results.entries()) {
      const args = cases[index] as string[];
      assert.equal(result.exitCode, 2, `${args.join(' ')}: ${result.stderr.text}`);
      assert.equal(result.stdout.text, '', args.join(' '));
      assert.match(result.stderr.text, /^tandem-mcp: .+\n\nUsage: tandem-mcp/, args.join(' '));
    }
    assert.equal(existsSync(path.join(workspace, '.tandem')), false);
  });

  it('refuses a TANDEM_MCP_TOKEN shorter than 32 characters for serve --http (exit 2)', async () => {
    const result = await cli(['serve', '--workspace', workspace, '--http'], {
      TANDEM_MCP_TOKEN: 'too-short',
    });
    assert.equal(result.exitCode, 2);
    assert.match(result.stderr.text, /TANDEM_MCP_TOKEN must be at least 32 characters/);
  });

  it('serve over stdio shuts down with exit 0 when the client closes stdin, writing only MCP to stdout', async () => {
    const initialize = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    };
    const result = await runProcess({
      command: process.execPath,
      args: [MAIN, 'serve', '--workspace', workspace],
      cwd: workspace,
      env: { set: { PATH: NODE_DIR, HOME: home } },
      // Fed, then closed: the client is gone as soon as it has spoken.
      stdin: `${JSON.stringify(initialize)}\n`,
      timeoutMs: 20_000,
    });
    assert.equal(result.exitCode, 0, result.stderr.text);
    assert.match(result.stderr.text, /serving MCP on stdio for /);
    assert.match(result.stderr.text, /shutting down \(the client closed stdin\)/);
    for (const line of result.stdout.text.split('\n').filter((text) => text !== '')) {
      assert.equal((JSON.parse(line) as { jsonrpc: string }).jsonrpc, '2.0', line);
    }
  });

  it('lists every command in help', async () => {
    const result = await cli(['help']);
    assert.equal(result.exitCode, 0);
    for (const command of [
      'serve',
      'run',
      'playbooks',
      'runs list',
      'runs show',
      'runs replay',
      'panic engage',
      'demo',
      'probe',
    ]) {
      assert.match(result.stdout.text, new RegExp(`^  ${command}\\b`, 'm'), command);
    }
  });
});

describe('playbook inputs on the command line', () => {
  const handoff = builtinPlaybook('handoff');
  assert.ok(handoff);

  it('reads repeated --input key=value flags, splitting at the first =', () => {
    assert.deepEqual(
      [...parseInputFlags('run', ['rounds=2', 'verify=["node","-e","a=b"]'])],
      [
        ['rounds', '2'],
        ['verify', '["node","-e","a=b"]'],
      ],
    );
    for (const flags of [['rounds'], ['=2'], ['a=1', 'a=2']]) {
      assert.throws(() => parseInputFlags('run', flags), UsageError, flags.join(' '));
    }
  });

  it('parses a value as JSON when it can (numbers, arrays), as text otherwise, and a string input as text', () => {
    const playbook = {
      ...handoff.playbook,
      inputs: { ...handoff.playbook.inputs, note: { type: 'string' as const, default: '' } },
    };
    assert.equal(inputValue(playbook, 'rounds', '2'), 2);
    assert.equal(inputValue(playbook, 'writer', 'gemini'), 'gemini');
    assert.deepEqual(inputValue(playbook, 'verify', '["npm","test"]'), ['npm', 'test']);
    assert.equal(inputValue(playbook, 'note', '42'), '42');
    assert.equal(inputValue(playbook, 'note', '"quoted"'), '"quoted"');
    assert.equal(inputValue(playbook, 'unknown', 'true'), true);
  });
});

describe('the CLI argument parser', () => {
  const spec = {
    flags: { http: 'optional', json: 'boolean', workspace: 'value' },
    positionals: ['ID'],
  } as const;

  it('reads --flag value, --flag=value, booleans and positionals', () => {
    const parsed = parseArgs('t', ['--workspace', '/w', 'run-1', '--json'], spec);
    assert.equal(parsed.string('workspace'), '/w');
    assert.equal(parsed.has('json'), true);
    assert.deepEqual(parsed.positionals, ['run-1']);
    assert.equal(parseArgs('t', ['--workspace=/x=y', 'id'], spec).string('workspace'), '/x=y');
  });

  it('gives an optional flag the next argument only when it is not another flag', () => {
    assert.equal(parseArgs('t', ['id', '--http', '8080'], spec).int('http', 0, 65535), 8080);
    const bare = parseArgs('t', ['id', '--http', '--json'], spec);
    assert.deepEqual([bare.has('http'), bare.string('http'), bare.has('json')], [true, undefined, true]);
  });

  it('takes a value that looks like a flag for a flag that needs one', () => {
    assert.equal(parseArgs('t', ['id', '--workspace', '--json'], spec).string('workspace'), '--json');
  });

  it('collects a repeated flag and takes an optional positional when it is there', () => {
    const repeated = {
      flags: { input: 'repeated', json: 'boolean' },
      optionalPositionals: ['TASK'],
    } as const;
    const parsed = parseArgs('t', ['--input', 'a=1', 'the task', '--input=b=2', '--json'], repeated);
    assert.deepEqual(parsed.all('input'), ['a=1', 'b=2']);
    assert.deepEqual(parsed.positionals, ['the task']);
    assert.equal(parsed.has('input'), true);
    const bare = parseArgs('t', [], repeated);
    assert.deepEqual([bare.all('input'), bare.positionals, bare.has('input')], [[], [], false]);
    assert.throws(() => parseArgs('t', ['one', 'two'], repeated), UsageError);
    assert.throws(() => parseArgs('t', ['--input'], repeated), UsageError);
  });

  it('refuses unknown, repeated and valueless flags and extra or missing positionals', () => {
    for (const args of [
      ['id', '--nope'],
      ['id', '--json', '--json'],
      ['id', '--workspace'],
      ['id', '--json=1'],
      ['id', 'extra'],
      [],
    ]) {
      assert.throws(() => parseArgs('t', args, spec), UsageError, args.join(' '));
    }
  });
});
