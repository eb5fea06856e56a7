// The verify command's jail: shells and launchers refused as the program, no absolute path and no climb out of
// the workspace in any part (lexical, checked when a playbook is read), and every path-like part resolved
// through the candidate copy's jail before the command runs, so a symlink cannot lead it out.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { RunRecord } from '../../src/orchestrator/model';
import { TRACE_FILE, type PlaybookTrace } from '../../src/orchestrator/playbook/engine';
import { builtinPlaybook } from '../../src/orchestrator/playbook/library';
import { resolveInputs } from '../../src/orchestrator/playbook/schema';
import {
  REFUSED_PROGRAMS,
  VerifyCommandError,
  jailVerifyCommand,
  verifyCommandProblem,
} from '../../src/orchestrator/playbook/verify-command';
import { openHarness, type McpHarness } from '../support/mcp-harness';

const safeSegment = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,11}$/).filter((s) => s !== '..');
const safeRelative = fc.array(safeSegment, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('/'));
const program = fc
  .constantFrom('npm', 'node', 'make', 'pytest', 'cargo', 'go', './node_modules/.bin/mocha')
  .filter((name) => !REFUSED_PROGRAMS.has(name));
const safeArgument = fc.oneof(
  safeRelative,
  fc.constantFrom('test', '--silent', '-x', '--reporter=dot', '--grep=a b', '-e', ''),
  safeRelative.map((value) => `--config=${value}`),
);

describe('verify command jail', function () {
  describe('the lexical rules', function () {
    it('accepts a program with relative arguments that stay inside the workspace', function () {
      fc.assert(
        fc.property(program, fc.array(safeArgument, { maxLength: 8 }), (name, args) => {
          assert.equal(verifyCommandProblem([name, ...args]), undefined);
        }),
      );
      assert.equal(verifyCommandProblem(['npm', 'test', '--silent']), undefined);
      assert.equal(verifyCommandProblem(['node', 'test/../scripts/check.js']), undefined);
    });

    it('refuses every shell and launcher as the program, however it is spelled', function () {
      const spelled = fc
        .tuple(
          fc.constantFrom(...REFUSED_PROGRAMS),
          fc.constantFrom('', '/bin/', '/usr/bin/', 'C:\\Windows\\System32\\', 'tools/'),
          fc.boolean(),
          fc.constantFrom('', '.exe', '.EXE', '.cmd'),
        )
        .map(([name, dir, upper, suffix]) => `${dir}${upper ? name.toUpperCase() : name}${suffix}`);
      fc.assert(
        fc.property(spelled, fc.array(safeArgument, { maxLength: 4 }), (name, args) => {
          const problem = verifyCommandProblem([name, ...args]);
          assert.ok(problem, `${name} was accepted`);
          assert.match(problem, /would run a command string or another program/);
        }),
      );
      assert.match(verifyCommandProblem(['sh', '-c', 'npm test']) ?? '', /\["npm", "test"\]/);
    });

    it('refuses an absolute path in any part, an --option=value included', function () {
      const absolute = fc.oneof(
        safeRelative.map((rest) => `/${rest}`),
        safeRelative.map((rest) => `C:\\${rest}`),
        safeRelative.map((rest) => `\\\\server\\${rest}`),
        safeRelative.map((rest) => `--config=/${rest}`),
      );
      fc.assert(
        fc.property(
          program,
          fc.array(safeArgument, { maxLength: 4 }),
          absolute,
          fc.nat(),
          (name, args, bad, at) => {
            const argv = [name, ...args];
            const index = 1 + (at % (args.length + 1));
            argv.splice(index, 0, bad);
            const problem = verifyCommandProblem(argv);
            assert.ok(problem, JSON.stringify(argv));
            assert.match(problem, new RegExp(`^part ${index} .* is an absolute path`));
          },
        ),
      );
      // The program itself may be given by an absolute path: a name on PATH reaches the same programs.
      assert.equal(verifyCommandProblem([process.execPath, 'test/run.js']), undefined);
      assert.equal(verifyCommandProblem(['/usr/bin/make', 'check']), undefined);
      assert.match(verifyCommandProblem(['/bin/sh', '-c', 'x']) ?? '', /would run a command string/);
    });

    it('refuses a part that climbs out of the workspace, and only those', function () {
      const climbing = fc
        .tuple(fc.array(safeSegment, { maxLength: 3 }), fc.integer({ min: 1, max: 3 }), safeRelative)
        .map(([down, extra, rest]) => [...down, ...Array(down.length + extra).fill('..'), rest].join('/'));
      fc.assert(
        fc.property(program, climbing, (name, bad) => {
          assert.match(verifyCommandProblem([name, bad]) ?? '', /^part 1 .* leads out of the workspace/);
          assert.match(verifyCommandProblem([name, `--prefix=${bad}`]) ?? '', /leads out/);
        }),
      );
      assert.match(verifyCommandProblem(['npm', 'test', '--prefix=../other']) ?? '', /part 2/);
      assert.equal(verifyCommandProblem(['npm', 'run', 'a..b']), undefined);
    });
  });

  describe('at run time, in the candidate copy', function () {
    let root: string;
    let copy: string;
    let outside: string;

    beforeEach(function () {
      root = mkdtempSync(path.join(os.tmpdir(), 'tandem-verify-jail-'));
      copy = path.join(root, 'copy');
      outside = path.join(root, 'outside');
      mkdirSync(path.join(copy, 'test'), { recursive: true });
      mkdirSync(outside);
      writeFileSync(path.join(copy, 'test', 'run.js'), '');
      writeFileSync(path.join(outside, 'run.js'), '');
    });

    afterEach(function () {
      rmSync(root, { recursive: true, force: true });
    });

    it('lets paths inside the copy through, existing or not', async function () {
      await jailVerifyCommand(['node', 'test/run.js', '--out=reports/x.xml'], copy);
      await jailVerifyCommand(['./test/run.js'], copy);
      await jailVerifyCommand([process.execPath, 'test/run.js'], copy);
    });

    it('refuses a program or an argument that a symlink leads out of the copy', async function () {
      symlinkSync(outside, path.join(copy, 'escape'));
      for (const argv of [
        ['node', 'escape/run.js'],
        ['./escape/run.js'],
        ['node', '--require=escape/run.js', 'test/run.js'],
      ]) {
        await assert.rejects(
          jailVerifyCommand(argv, copy),
          (error: unknown) =>
            error instanceof VerifyCommandError &&
            /resolves outside the candidate's copy of the workspace \(SYMLINK_ESCAPE\)/.test(error.message),
          JSON.stringify(argv),
        );
      }
    });

    it('refuses a lexical problem before looking at the copy', async function () {
      await assert.rejects(
        jailVerifyCommand(['bash', '-c', 'true'], path.join(root, 'missing')),
        /The verify command is refused: the program "bash"/,
      );
    });
  });

  describe('in a playbook run (fake CLIs)', function () {
    let harness: McpHarness;

    beforeEach(async function () {
      harness = await openHarness();
    });

    afterEach(async function () {
      await harness?.close();
    });

    /** parallel_adjudicate on a task where both CLIs write a.txt, verified by `verify`; the finished run. */
    async function adjudicated(verify: string[], apply?: 'never'): Promise<RunRecord> {
      const { orchestrator } = harness.services;
      const loaded = builtinPlaybook('parallel_adjudicate');
      assert.ok(loaded);
      const started = await orchestrator.startPlaybook({
        owner: 'agent-a',
        task: '[[role:writer scenario=write path=a.txt content=x]] Write a.txt.',
        playbook: loaded.playbook,
        source: loaded.source,
        hash: loaded.hash,
        inputs: resolveInputs(loaded.playbook, { verify }, loaded.source),
        resilience: { backoffMs: 10 },
        ...(apply ? { apply } : {}),
      });
      return orchestrator.finished(started.id);
    }

    it('runs the command with a HOME and TMPDIR of its own in the run folder, and no secret of the environment', async function () {
      const { store } = harness.services;
      const planted = 'verify-secret-0f1e2d';
      const saved = process.env.SECRET_TOKEN;
      process.env.SECRET_TOKEN = planted;
      try {
        const finished = await adjudicated(
          [
            'node',
            '-e',
            'console.log(JSON.stringify({ home: process.env.HOME, tmp: process.env.TMPDIR, secret: process.env.SECRET_TOKEN ?? null }))',
          ],
          'never',
        );
        const log = (await store.readRunFile(finished.id, 'verify-verify_codex.log')) ?? '';
        const line = log.split('\n').find((text) => text.startsWith('{'));
        assert.ok(line, log);
        const seen = JSON.parse(line) as { home: string; tmp: string; secret: string | null };
        const scratch = path.join(store.runDir(finished.id), 'verify', 'verify_codex');
        assert.equal(seen.home, scratch);
        assert.equal(seen.tmp, path.join(scratch, 'tmp'));
        assert.equal(seen.secret, null, 'SECRET_TOKEN reached the verify command');
        assert.ok(!log.includes(planted));
      } finally {
        if (saved === undefined) delete process.env.SECRET_TOKEN;
        else process.env.SECRET_TOKEN = saved;
      }
    });

    it('fails the verification of a candidate whose copy leads the command out, and never runs it', async function () {
      const { store, workspaceRoot } = harness.services;
      const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'tandem-verify-elsewhere-'));
      try {
        const marker = path.join(elsewhere, 'ran');
        writeFileSync(
          path.join(elsewhere, 'check.js'),
          `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran');`,
        );
        symlinkSync(elsewhere, path.join(workspaceRoot, 'tools'));
        const finished = await adjudicated(['node', 'tools/check.js']);
        assert.equal(existsSync(marker), false, 'the command outside the copy ran');
        const log = await store.readRunFile(finished.id, 'verify-verify_codex.log');
        assert.match(log ?? '', /resolves outside the candidate's copy of the workspace/);
        const trace = JSON.parse((await store.readRunFile(finished.id, TRACE_FILE)) ?? '{}') as PlaybookTrace;
        const verifies = trace.entries.filter((entry) => entry.kind === 'verify');
        assert.equal(verifies.length, 2, JSON.stringify(trace.entries));
        assert.ok(
          verifies.every((entry) => entry.status === 'failed'),
          JSON.stringify(verifies),
        );
        assert.equal(finished.applied, false, finished.outcome ?? '');
      } finally {
        rmSync(elsewhere, { recursive: true, force: true });
      }
    });
  });
});
