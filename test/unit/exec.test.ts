import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ExecError,
  KillAtOnce,
  ProcessRegistry,
  runProcess,
  startProcess,
  type ExecResult,
} from '../../src/core/exec';
import { Redactor } from '../../src/core/redact';
import { fixture, isProcessAlive, killQuietly, waitUntilGone } from '../support/processes';

const node = process.execPath;
const GRACE_MS = 300;

function parseJsonLine(result: ExecResult): Record<string, unknown> {
  // A grandchild sharing stdout may print its own lines first; the fixture's report is the JSON one.
  const line = result.stdout.text.split('\n').find((candidate) => candidate.startsWith('{'));
  return JSON.parse(line ?? 'null') as Record<string, unknown>;
}

describe('safe exec helper', () => {
  let work: string;
  const leftovers: number[] = [];

  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'tandem-exec-'));
  });
  after(() => {
    killQuietly(leftovers);
    rmSync(work, { recursive: true, force: true });
  });

  describe('arguments, stdin and environment', () => {
    const hostile =
      '--help $(touch pwned) `id` ; rm -rf / && echo "dq" \'sq\' \\ back\nsecond line\t|&>< * ~ 日本語';

    it('passes argv elements byte for byte, including a leading --flag and shell metacharacters', async () => {
      const result = await runProcess({
        command: node,
        args: [fixture('echo.cjs'), hostile, '--flag'],
        cwd: work,
      });
      assert.equal(result.exitCode, 0);
      assert.deepEqual(parseJsonLine(result).argv, [hostile, '--flag']);
      assert.throws(() => statSync(path.join(work, 'pwned')), /ENOENT/);
    });

    it('feeds stdin byte for byte and then closes it', async () => {
      const result = await runProcess({
        command: node,
        args: [fixture('echo.cjs')],
        cwd: work,
        stdin: hostile,
      });
      assert.equal(Buffer.from(parseJsonLine(result).stdin as string, 'base64').toString('utf8'), hostile);
    });

    it('gives the child a closed stdin when none is given, so a reader sees end of input at once', async () => {
      const result = await runProcess({
        command: node,
        args: [fixture('echo.cjs')],
        cwd: work,
        timeoutMs: 10_000,
      });
      assert.equal(result.timedOut, false);
      assert.equal(parseJsonLine(result).stdin, '');
    });

    it('does not let a variable off the allowlist, such as SECRET_TOKEN, reach the child', async () => {
      process.env.SECRET_TOKEN = 'do-not-leak-1234';
      process.env.TANDEM_EXTRA_NAME = 'extra-value';
      try {
        const result = await runProcess({
          command: node,
          args: [fixture('echo.cjs')],
          cwd: work,
          env: { extraNames: ['TANDEM_EXTRA_NAME'], set: { HOME: work } },
        });
        const env = parseJsonLine(result).env as Record<string, string>;
        assert.equal(env.SECRET_TOKEN, undefined);
        assert.ok(!result.stdout.text.includes('do-not-leak-1234'));
        assert.equal(env.TANDEM_EXTRA_NAME, 'extra-value');
        assert.equal(env.HOME, work);
        assert.ok(result.envNames.includes('TANDEM_EXTRA_NAME'));
        assert.ok(!result.envNames.includes('SECRET_TOKEN'));
      } finally {
        delete process.env.SECRET_TOKEN;
        delete process.env.TANDEM_EXTRA_NAME;
      }
    });

    it('runs in the given working directory', async () => {
      const result = await runProcess({ command: node, args: [fixture('echo.cjs')], cwd: work });
      assert.equal(parseJsonLine(result).cwd, work);
    });

    it('refuses an argument with a NUL byte before starting anything', () => {
      assert.throws(
        () => startProcess({ command: node, args: ['a\0b'], cwd: work }),
        (error: unknown) =>
          error instanceof ExecError && error.code === 'INVALID_ARGUMENT' && /NUL/.test(error.message),
      );
    });

    it('refuses a working directory that does not exist, naming it', () => {
      const missing = path.join(work, 'nope');
      assert.throws(
        () => startProcess({ command: node, args: [], cwd: missing }),
        (error: unknown) => error instanceof ExecError && error.message.includes(missing),
      );
    });
  });

  describe('binary resolution', () => {
    it('names a missing binary and says how to install it', () => {
      assert.throws(
        () =>
          startProcess({
            command: 'tandem-no-such-cli',
            cwd: work,
            installHint: 'Install it with: npm install -g tandem-no-such-cli',
          }),
        (error: unknown) =>
          error instanceof ExecError &&
          error.code === 'BINARY_NOT_FOUND' &&
          error.message.includes('"tandem-no-such-cli"') &&
          error.message.includes('npm install -g tandem-no-such-cli'),
      );
    });

    it('resolves a bare name on the PATH the child gets and reports the absolute path', async () => {
      const result = await runProcess({
        command: 'node',
        args: ['-e', 'process.stdout.write("hi")'],
        cwd: work,
        env: { set: { PATH: path.dirname(node) } },
      });
      assert.equal(result.command, path.join(path.dirname(node), 'node'));
      assert.equal(result.stdout.text, 'hi');
    });

    it('refuses a relative path with separators, which would depend on the cwd', () => {
      assert.throws(
        () => startProcess({ command: './bin/tool', cwd: work }),
        (error: unknown) => error instanceof ExecError && error.code === 'INVALID_ARGUMENT',
      );
    });
  });

  describe('results', () => {
    it('reports the exit code of a failing child without throwing', async () => {
      const result = await runProcess({
        command: node,
        args: [fixture('echo.cjs'), '--exit-code', '7'],
        cwd: work,
      });
      assert.equal(result.exitCode, 7);
      assert.equal(result.signal, null);
      assert.equal(result.timedOut, false);
      assert.equal(result.cancelled, false);
    });

    it('reports the signal that ended a child', async () => {
      const result = await runProcess({
        command: node,
        args: [fixture('self-signal.cjs'), 'SIGKILL'],
        cwd: work,
      });
      assert.equal(result.exitCode, null);
      assert.equal(result.signal, 'SIGKILL');
      assert.equal(result.treeKilled, false);
    });
  });

  describe('timeouts and the process tree', () => {
    it('ends a silent child on the idle timeout', async () => {
      const result = await runProcess({
        command: node,
        args: [fixture('hang.cjs')],
        cwd: work,
        idleTimeoutMs: 300,
        killGraceMs: GRACE_MS,
      });
      assert.equal(result.timedOut, true);
      assert.equal(result.timeoutKind, 'idle');
      assert.equal(result.signal, 'SIGTERM');
      assert.equal(result.cancelled, false);
    });

    it('ends a chatty child on the wall-clock timeout even though it is never idle', async () => {
      const result = await runProcess({
        command: node,
        args: [fixture('ticker.cjs')],
        cwd: work,
        timeoutMs: 500,
        idleTimeoutMs: 400,
        killGraceMs: GRACE_MS,
      });
      assert.equal(result.timeoutKind, 'wall');
      assert.match(result.stdout.text, /tick 3/);
    });

    it('uses SIGKILL after the grace period when the child ignores SIGTERM', async () => {
      const result = await runProcess({
        command: node,
        args: [fixture('hang.cjs'), '--ignore-sigterm'],
        cwd: work,
        timeoutMs: 300,
        killGraceMs: GRACE_MS,
      });
      assert.equal(result.timedOut, true);
      assert.equal(result.signal, 'SIGKILL');
      assert.ok(result.durationMs >= 300 + GRACE_MS - 50, `took ${result.durationMs} ms`);
    });

    for (const variant of [
      { name: 'in the same process group', args: [] as string[] },
      { name: 'in a session of its own', args: ['--detach'] },
    ]) {
      it(`kills the whole tree, including a SIGTERM-ignoring grandchild ${variant.name}, within timeout + grace`, async () => {
        const timeoutMs = 800;
        const result = await runProcess({
          command: node,
          args: [fixture('fork-grandchild.cjs'), '--ignore-sigterm', ...variant.args],
          cwd: work,
          timeoutMs,
          killGraceMs: GRACE_MS,
        });
        const { childPid, grandchildPid } = parseJsonLine(result) as {
          childPid: number;
          grandchildPid: number;
        };
        leftovers.push(childPid, grandchildPid);
        assert.equal(result.timedOut, true);
        assert.ok(result.durationMs < timeoutMs + GRACE_MS + 1500, `took ${result.durationMs} ms`);
        assert.deepEqual(await waitUntilGone([childPid, grandchildPid], 200), []);
      });
    }

    it('ends what a child left running in its group after it exited', async () => {
      const result = await runProcess({
        command: node,
        args: [fixture('fork-grandchild.cjs'), '--exit'],
        cwd: work,
        timeoutMs: 10_000,
        killGraceMs: GRACE_MS,
      });
      const { grandchildPid } = parseJsonLine(result) as { grandchildPid: number };
      leftovers.push(grandchildPid);
      assert.equal(result.exitCode, 0);
      assert.equal(result.treeKilled, true);
      assert.deepEqual(await waitUntilGone([grandchildPid], 200), []);
    });
  });

  describe('cancellation', () => {
    it('cancels through an AbortSignal and kills the tree', async () => {
      const controller = new AbortController();
      const running = startProcess({
        command: node,
        args: [fixture('fork-grandchild.cjs')],
        cwd: work,
        signal: controller.signal,
        killGraceMs: GRACE_MS,
        onStdout: (chunk) => {
          if (chunk.includes('grandchildPid')) controller.abort();
        },
      });
      const result = await running.result;
      const { grandchildPid } = parseJsonLine(result) as { grandchildPid: number };
      leftovers.push(grandchildPid);
      assert.equal(result.cancelled, true);
      assert.equal(result.timedOut, false);
      assert.deepEqual(await waitUntilGone([grandchildPid, running.pid as number], 200), []);
    });

    it('kills at once, without the grace period, when the abort reason is KillAtOnce (panic)', async () => {
      const controller = new AbortController();
      const running = startProcess({
        command: node,
        args: [fixture('fork-grandchild.cjs'), '--ignore-sigterm'],
        cwd: work,
        signal: controller.signal,
        // A grace period no test waits out: a plain cancel leaves both processes alive for a minute.
        killGraceMs: 60_000,
        onStdout: (chunk) => {
          if (chunk.includes('grandchildPid')) controller.abort(new KillAtOnce('panic'));
        },
      });
      const result = await running.result;
      const { childPid, grandchildPid } = parseJsonLine(result) as {
        childPid: number;
        grandchildPid: number;
      };
      leftovers.push(childPid, grandchildPid);
      assert.equal(result.cancelled, true);
      assert.equal(result.signal, 'SIGKILL');
      assert.deepEqual(await waitUntilGone([childPid, grandchildPid], 10_000), []);
    });

    it('does not start anything when the signal is already aborted', async () => {
      const controller = new AbortController();
      controller.abort();
      const result = await runProcess({
        command: node,
        args: [fixture('echo.cjs')],
        cwd: work,
        signal: controller.signal,
      });
      assert.equal(result.cancelled, true);
      assert.equal(result.pid, undefined);
      assert.equal(result.stdout.totalBytes, 0);
    });

    it('dispose resolves only once the child is gone', async () => {
      const running = startProcess({
        command: node,
        args: [fixture('hang.cjs'), '--ignore-sigterm'],
        cwd: work,
        killGraceMs: GRACE_MS,
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      await running.dispose();
      assert.equal(isProcessAlive(running.pid as number), false);
      assert.equal((await running.result).cancelled, true);
    });
  });

  describe('the registry of live children', () => {
    it('ends every live child on shutdown and refuses new starts once closed', async () => {
      const registry = new ProcessRegistry();
      const ready: Promise<void>[] = [];
      const runs = [0, 1, 2].map(() => {
        let markReady = (): void => {};
        ready.push(new Promise((resolve) => (markReady = resolve)));
        // Each child reports "ready" once its SIGTERM handler is installed, so SIGKILL is really needed.
        return startProcess({
          command: node,
          args: [fixture('hang.cjs'), '--ignore-sigterm'],
          cwd: work,
          registry,
          killGraceMs: GRACE_MS,
          onStdout: () => markReady(),
        });
      });
      await Promise.all(ready);
      const pids = runs.map((run) => run.pid as number);
      leftovers.push(...pids);
      assert.equal(registry.size, 3);
      await registry.close();
      assert.equal(registry.size, 0);
      assert.deepEqual(await waitUntilGone(pids, 200), []);
      const results = await Promise.all(runs.map((run) => run.result));
      assert.ok(results.every((result) => result.cancelled && result.signal === 'SIGKILL'));
      assert.throws(
        () => startProcess({ command: node, args: [fixture('echo.cjs')], cwd: work, registry }),
        (error: unknown) => error instanceof ExecError && error.code === 'REGISTRY_CLOSED',
      );
    });

    it('forgets a child once it has exited', async () => {
      const registry = new ProcessRegistry();
      await runProcess({ command: node, args: [fixture('echo.cjs')], cwd: work, registry });
      assert.equal(registry.size, 0);
    });
  });

  describe('bounded output', () => {
    it('keeps a 1 GiB flood within the capture cap and counts every byte', async function () {
      this.timeout(120_000);
      const total = 1024 * 1024 * 1024;
      const cap = 64 * 1024;
      let seen = 0;
      const result = await runProcess({
        command: node,
        args: [fixture('flood.cjs'), String(total)],
        cwd: work,
        maxCaptureBytes: cap,
        onStdout: (chunk) => {
          seen += chunk.length;
        },
      });
      assert.equal(result.exitCode, 0);
      assert.equal(result.stdout.totalBytes, total);
      assert.equal(seen, total);
      assert.ok(result.stdout.capturedBytes <= cap);
      assert.equal(result.stdout.head.length + result.stdout.tail.length, cap);
      assert.equal(result.stdout.truncated, true);
      assert.match(result.stdout.text, /bytes not kept in memory/);
    });

    it('spills the stream to a log file that stops at its own cap', async () => {
      const logPath = path.join(work, 'flood.log');
      const result = await runProcess({
        command: node,
        args: [fixture('flood.cjs'), String(8 * 1024 * 1024), '--stderr'],
        cwd: work,
        maxCaptureBytes: 1024,
        stderrLog: { path: logPath, maxBytes: 1024 * 1024, redactor: new Redactor() },
      });
      assert.equal(result.stderr.totalBytes, 8 * 1024 * 1024);
      assert.equal(statSync(logPath).size, 1024 * 1024);
      assert.deepEqual(result.stderr.logFile, { path: logPath, bytesWritten: 1024 * 1024, truncated: true });
      assert.equal(readFileSync(logPath, 'utf8').replace(/y/g, ''), '');
    });

    it('splits JSONL output into lines across chunk boundaries', async () => {
      const lines: string[] = [];
      const result = await runProcess({
        command: node,
        args: [fixture('flood.cjs'), String(4 * 1024 * 1024), '--lines'],
        cwd: work,
        onStdoutLine: (line) => lines.push(line.text),
      });
      const lineLength = JSON.stringify({ type: 'item', text: 'x'.repeat(1000) }).length + 1;
      assert.equal(lines.length, Math.ceil(result.stdout.totalBytes / lineLength));
      const complete = lines.slice(0, -1);
      assert.ok(complete.every((line) => (JSON.parse(line) as { type: string }).type === 'item'));
    });
  });
});
