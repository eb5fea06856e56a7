// The `tandem-mcp` commands that need no worker, run as the compiled CLI in a child process: runs list/show
// over a store filled here, the panic round trip, and usage errors; plus the shared argument parser itself.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, UsageError } from '../../src/cli/args';
import { runProcess, type ExecResult } from '../../src/core/exec';
import { PanicSwitch } from '../../src/orchestrator/panic';
import { RunStore } from '../../src/orchestrator/run-store';
import type { RunRecord } from '../../src/orchestrator/model';

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
          [running?.id, 'running', 'dispatch', 'human'],
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
      ['serve'],
      ['serve', '--workspace', '.', '--http', '70000'],
      ['serve', '--workspace', '.', '--concurrency', '0'],
      ['serve', '--workspace', '.', '--idle-timeout', '0'],
      ['serve', '--workspace', '.', '--step-timeout', 'soon'],
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
    for (const command of ['serve', 'run', 'runs list', 'runs show', 'panic engage', 'demo', 'probe']) {
      assert.match(result.stdout.text, new RegExp(`^  ${command}\\b`, 'm'), command);
    }
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
