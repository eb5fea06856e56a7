// A step that daemonizes (setsid, then a double fork, so the daemon has neither the step's process group nor
// a parent chain back to it) must still die with the step: on cancel, on either timeout, on shutdown, when
// the step ends, through the real run path, and on a machine without cgroups (the environment scan).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  describeContainment,
  ProcessRegistry,
  startProcess,
  STEP_MARKER_ENV,
  sweepDeadServerCgroups,
  type ExecOptions,
  type ExecResult,
  type RunningProcess,
} from '../../src/core/exec';
import { cgroupHost, killCgroup } from '../../src/core/exec/cgroup';
import { identify } from '../../src/core/exec/tree';
import { createToolRegistry } from '../../src/mcp/server';
import { openServices } from '../../src/mcp/services';
import { fixture, isProcessAlive, killQuietly, waitUntilGone } from '../support/processes';

const node = process.execPath;
const GRACE_MS = 300;
/** Generous: the machine running the tests may be loaded. Passing tests end as soon as the pid is gone. */
const GONE_WITHIN_MS = 15_000;
const READY_WITHIN_MS = 30_000;

async function waitFor<T>(read: () => T | undefined, what: string, timeoutMs = READY_WITHIN_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8'));
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Tandem's cgroups of this process (none where the machine offers no cgroup). */
function ownCgroups(): string[] {
  const host = cgroupHost();
  if (!host) return [];
  const name = path.basename(host.serverDir);
  return readdirSync(host.base).filter((entry) => entry === name);
}

describe('a step that daemonizes', function () {
  let work: string;
  const leftovers: number[] = [];

  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'tandem-daemon-'));
  });
  const runs: RunningProcess[] = [];
  // A failed assertion must not leave its step running (mocha would wait for it forever).
  afterEach(async () => {
    await Promise.all(runs.splice(0).map((running) => running.dispose()));
  });
  after(() => {
    killQuietly(leftovers);
    rmSync(work, { recursive: true, force: true });
  });

  let counter = 0;
  /** Starts the daemonizing fixture; resolves with the daemon's pid once it runs. */
  async function startDaemonStep(
    options: Partial<ExecOptions> = {},
    flags: string[] = [],
  ): Promise<{ running: RunningProcess; daemonPid: number }> {
    const pidFile = path.join(work, `daemon-${++counter}.pid`);
    const running = startProcess({
      command: node,
      args: [fixture('daemonize.cjs'), pidFile, ...flags],
      cwd: work,
      killGraceMs: GRACE_MS,
      // As a worker step or a verification is started.
      contain: true,
      ...options,
    });
    runs.push(running);
    const daemonPid = await waitFor(() => readPid(pidFile), 'the daemon to write its pid');
    leftovers.push(daemonPid);
    return { running, daemonPid };
  }

  async function assertGone(daemonPid: number): Promise<void> {
    assert.deepEqual(await waitUntilGone([daemonPid], GONE_WITHIN_MS), [], `daemon ${daemonPid} survived`);
  }

  it('really leaves the step: the daemon is in no process group or parent chain of the step', async () => {
    const controller = new AbortController();
    const { running, daemonPid } = await startDaemonStep({ signal: controller.signal });
    const stat = readFileSync(`/proc/${daemonPid}/stat`, 'utf8');
    const [, ppid, pgid, sid] = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    assert.notEqual(pgid, running.pid);
    assert.notEqual(sid, running.pid);
    assert.notEqual(ppid, running.pid);
    controller.abort();
    await running.result;
    await assertGone(daemonPid);
  });

  it('dies on cancel through the abort signal', async () => {
    const controller = new AbortController();
    const { running, daemonPid } = await startDaemonStep({ signal: controller.signal });
    controller.abort();
    const result = await running.result;
    assert.equal(result.cancelled, true);
    await assertGone(daemonPid);
  });

  it('dies on the wall-clock timeout', async () => {
    // Long enough for the daemon to be up first on a loaded machine; the fixture stays silent meanwhile.
    const { running, daemonPid } = await startDaemonStep({ timeoutMs: 5000 });
    const result = await running.result;
    assert.equal(result.timedOut, true);
    assert.equal(result.timeoutKind, 'wall');
    await assertGone(daemonPid);
  });

  it('dies on the idle timeout', async () => {
    // Silent after the line naming the daemon, so the idle clock starts once the daemon is up.
    const { running, daemonPid } = await startDaemonStep({ idleTimeoutMs: 500 });
    const result = await running.result;
    assert.equal(result.timedOut, true);
    assert.equal(result.timeoutKind, 'idle');
    await assertGone(daemonPid);
  });

  it('dies when the registry shuts down (deactivate, server close)', async () => {
    const registry = new ProcessRegistry();
    const { running, daemonPid } = await startDaemonStep({ registry });
    await registry.close();
    assert.equal((await running.result).cancelled, true);
    await assertGone(daemonPid);
  });

  it('dies on the synchronous kill of a process exit handler', async () => {
    const registry = new ProcessRegistry();
    const { running, daemonPid } = await startDaemonStep({ registry });
    registry.killAllNow();
    await assertGone(daemonPid);
    await running.result;
  });

  it('dies when the step itself ends, and the step says it had to kill', async () => {
    const { running, daemonPid } = await startDaemonStep({}, ['--exit']);
    const result = await running.result;
    assert.equal(result.exitCode, 0);
    assert.equal(result.treeKilled, true);
    await assertGone(daemonPid);
  });

  it('marks every process of the step with TANDEM_STEP_ID, recorded among the names the child got', async () => {
    const controller = new AbortController();
    const { running, daemonPid } = await startDaemonStep({ signal: controller.signal });
    const environ = readFileSync(`/proc/${daemonPid}/environ`, 'utf8').split('\0');
    assert.ok(
      environ.some((entry) => entry.startsWith(`${STEP_MARKER_ENV}=`)),
      'the daemon carries the mark',
    );
    controller.abort();
    const result: ExecResult = await running.result;
    assert.ok(result.envNames.includes(STEP_MARKER_ENV));
    await assertGone(daemonPid);
  });

  describe('without a cgroup (the environment scan)', () => {
    it('still kills the daemon on cancel', async () => {
      const controller = new AbortController();
      const { running, daemonPid } = await startDaemonStep({ signal: controller.signal, cgroup: false });
      controller.abort();
      assert.equal((await running.result).cancelled, true);
      await assertGone(daemonPid);
    });

    it('still kills the daemon on the idle timeout and when the step ends', async () => {
      const idle = await startDaemonStep({ idleTimeoutMs: 500, cgroup: false });
      assert.equal((await idle.running.result).timeoutKind, 'idle');
      await assertGone(idle.daemonPid);
      const ended = await startDaemonStep({ cgroup: false }, ['--exit']);
      assert.equal((await ended.running.result).treeKilled, true);
      await assertGone(ended.daemonPid);
    });

    it('spares a process that carries another step’s mark', async () => {
      const other = spawn(node, [fixture('hang.cjs')], {
        stdio: 'ignore',
        env: { PATH: process.env.PATH ?? '', [STEP_MARKER_ENV]: 'another-step' },
      });
      leftovers.push(other.pid as number);
      const { running, daemonPid } = await startDaemonStep({ cgroup: false }, ['--exit']);
      await running.result;
      await assertGone(daemonPid);
      assert.equal(isProcessAlive(other.pid as number), true);
      other.kill('SIGKILL');
    });
  });

  it('dies on run_cancel of a real run whose CLI daemonized', async function () {
    this.timeout(60_000);
    const root = await mkdtemp(path.join(os.tmpdir(), 'tandem-daemon-run-'));
    await writeFile(path.join(root, 'README.md'), '# daemon\n');
    const services = await openServices({
      workspaceRoot: root,
      cliPaths: { codex: fixture('daemonize-cli.cjs'), gemini: fixture('daemonize-cli.cjs') },
      recover: false,
    });
    try {
      const registry = createToolRegistry(services, () => undefined);
      const pidFile = path.join(work, 'run-daemon.pid');
      const started = await registry.callTool('strategy_run', {
        agentId: 'agent-a',
        strategy: 'single_worker',
        prompt: `Start the service. PIDFILE=${pidFile}`,
      });
      assert.notEqual(started.isError, true, JSON.stringify(started.content));
      const runId = (started.structuredContent as { run: { id: string } }).run.id;
      const daemonPid = await waitFor(() => readPid(pidFile), 'the daemon of the run');
      leftovers.push(daemonPid);
      const cancelled = await registry.callTool('run_cancel', { agentId: 'agent-a', runId });
      assert.notEqual(cancelled.isError, true, JSON.stringify(cancelled.content));
      await assertGone(daemonPid);
    } finally {
      await services.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('the process containment report', () => {
  it('names the mechanism steps get on this machine', () => {
    const report = describeContainment();
    assert.equal(report.mechanism, cgroupHost() ? 'cgroup' : 'environment-scan');
    assert.ok(report.detail.length > 20);
  });
});

// Only where the machine offers a writable cgroup v2 (Linux with a delegated or writable hierarchy).
const host = cgroupHost();
if (host) {
  describe('step cgroups', () => {
    let work: string;
    const leftovers: number[] = [];

    before(() => {
      work = mkdtempSync(path.join(os.tmpdir(), 'tandem-cgroup-'));
    });
    after(() => {
      killQuietly(leftovers);
      rmSync(work, { recursive: true, force: true });
    });

    /** Starts the daemonizing fixture outside Tandem; resolves with the step's and the daemon's pid. */
    async function daemonOutsideTandem(): Promise<{ stepPid: number; daemonPid: number }> {
      const pidFile = path.join(work, `outside-${Date.now()}-${Math.random()}.pid`);
      const step = spawn(node, [fixture('daemonize.cjs'), pidFile], { stdio: 'ignore' });
      leftovers.push(step.pid as number);
      const daemonPid = await waitFor(() => readPid(pidFile), 'the daemon to write its pid');
      leftovers.push(daemonPid);
      return { stepPid: step.pid as number, daemonPid };
    }

    it('kills a cgroup by freezing it and killing every member where there is no cgroup.kill', async () => {
      const step = host.createStep();
      assert.ok(step, 'a step cgroup');
      let outside: { stepPid: number; daemonPid: number } | undefined;
      try {
        assert.equal(step.enter(), true);
        const pidFile = path.join(work, 'frozen.pid');
        let stepPid: number | undefined;
        try {
          stepPid = spawn(node, [fixture('daemonize.cjs'), pidFile], { stdio: 'ignore' }).pid;
        } finally {
          step.leave();
        }
        leftovers.push(stepPid as number);
        const daemonPid = await waitFor(() => readPid(pidFile), 'the daemon to write its pid');
        leftovers.push(daemonPid);
        outside = await daemonOutsideTandem();
        killCgroup(step.dir, { killFile: false });
        assert.deepEqual(await waitUntilGone([stepPid as number, daemonPid], GONE_WITHIN_MS), []);
        assert.equal(isProcessAlive(outside.daemonPid), true, 'a process outside the cgroup is spared');
      } finally {
        await step.release();
        if (outside) killQuietly([outside.stepPid, outside.daemonPid]);
      }
    });

    it('ends and removes the cgroups of a Tandem server that died, and only those', async () => {
      // A server that is gone: a real process, identified while alive, then ended.
      const gone = spawn(node, [fixture('hang.cjs')], { stdio: 'ignore' });
      const identity = await waitFor(() => identify(gone.pid as number).startTime, 'the start time');
      gone.kill('SIGKILL');
      await waitUntilGone([gone.pid as number], GONE_WITHIN_MS);
      const deadDir = path.join(host.base, `tandem-${gone.pid}-${identity}`);
      const stepDir = path.join(deadDir, 'step-1');
      // A look-alike that Tandem did not name must be left alone.
      const foreignDir = path.join(host.base, `tandem-not-a-server-${process.pid}`);
      mkdirSync(stepDir, { recursive: true });
      mkdirSync(foreignDir);
      const orphan = await daemonOutsideTandem();
      try {
        writeFileSync(path.join(stepDir, 'cgroup.procs'), String(orphan.daemonPid));
        const removed = await sweepDeadServerCgroups(host);
        assert.ok(removed >= 1);
        await assertGoneHere(orphan.daemonPid);
        assert.equal(readdirSync(host.base).includes(path.basename(deadDir)), false);
        assert.equal(readdirSync(host.base).includes(path.basename(foreignDir)), true);
      } finally {
        killQuietly([orphan.stepPid, orphan.daemonPid]);
        rmdirSync(foreignDir);
      }
    });

    async function assertGoneHere(pid: number): Promise<void> {
      assert.deepEqual(await waitUntilGone([pid], GONE_WITHIN_MS), [], `${pid} survived`);
    }
  });
}

describe('after every step above', () => {
  it('leaves no cgroup of this process behind', () => {
    assert.deepEqual(ownCgroups(), []);
  });
});
