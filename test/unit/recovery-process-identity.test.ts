// Start-up recovery kills a dead server's leftover worker only when it is provably that worker: the recorded
// pid is alive AND has the recorded start time. A reused pid, or a pid recorded without a start time, is a
// process of someone else as far as Tandem can tell, and is left alone. A leader that has exited leaves its
// group to recovery by start time: members no older than the recorded leader are killed, older ones are not.
// The processes here are real.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bootId, findGroup, identify } from '../../src/core/exec';
import type { RunRecord } from '../../src/orchestrator/model';
import { RunStore } from '../../src/orchestrator/run-store';
import { deadHost, leftRunningRecord } from '../support/dead-runs';
import { openHarness, type McpHarness } from '../support/mcp-harness';
import { fixture, isProcessAlive, killQuietly, waitUntilGone } from '../support/processes';

interface Started {
  child: ChildProcess;
  pid: number;
  startTime: string;
  /** Every pid the fixture reported (itself and a grandchild in its group). */
  pids: number[];
}

/** A real node process in a process group of its own, as a worker is; resolves once it has said it is ready. */
async function startFixture(name: string, args: string[] = []): Promise<Started> {
  const child = spawn(process.execPath, [fixture(name), ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  // Read at once, as the orchestrator does: with --exit the leader is gone soon after it reports.
  const startTime = identify(child.pid as number).startTime;
  const pids = await new Promise<number[]>((resolve, reject) => {
    let seen = '';
    child.once('error', reject);
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      const json = seen.split('\n').find((line) => line.startsWith('{'));
      if (json) {
        const { childPid, grandchildPid } = JSON.parse(json) as { childPid: number; grandchildPid: number };
        resolve([childPid, grandchildPid]);
      } else if (name === 'hang.cjs' && /^ready \d+/m.test(seen)) resolve([child.pid as number]);
    });
  });
  assert.ok(startTime, 'a start time from /proc');
  return { child, pid: child.pid as number, startTime, pids };
}

/** A worker group whose leader has exited: only its grandchild is left, in the leader's process group. */
async function startLeaderlessGroup(): Promise<Started> {
  const group = await startFixture('fork-grandchild.cjs', ['--exit']);
  if (group.child.exitCode === null) await new Promise((resolve) => group.child.once('exit', resolve));
  assert.equal(isProcessAlive(group.pid), false, 'the leader has exited');
  assert.deepEqual(
    findGroup(group.pid).map((member) => member.pid),
    [group.pids[1]],
    'its grandchild is the one member left in its group',
  );
  return group;
}

/**
 * Writes a run the way a server that died mid-step leaves it: running, with its step's pid recorded. Without
 * `planted`, as Tandem records it (this boot's id); with it, the data a repository's .tandem/ could carry.
 */
async function seedInterruptedRun(
  root: string,
  worker: { pid: number; startTime: string | null },
  planted?: Record<string, unknown>,
): Promise<string> {
  const host = await deadHost();
  const store = await RunStore.open(root);
  const id = `run-20260101T000000Z-${Math.floor(Math.random() * 0xffffff)
    .toString(16)
    .padStart(6, '0')}`;
  const record = leftRunningRecord(id, host, 1);
  appendFileSync(store.indexPath, `${JSON.stringify(record)}\n`);
  await store.refresh();
  await store.appendEvent(id, {
    type: 'step_started',
    step: 1,
    message: 'write: codex as writer is queued.',
  });
  await store.appendEvent(id, {
    type: 'step_progress',
    step: 1,
    message: `write: codex started (pid ${worker.pid}).`,
    // As the orchestrator records it: with this boot's id.
    data: planted ?? { pid: worker.pid, startTime: worker.startTime, bootId: bootId() ?? null },
  });
  return id;
}

describe('start-up recovery and recorded worker processes', function () {
  let root: string;
  let harness: McpHarness | undefined;
  let started: Started[];

  beforeEach(async function () {
    root = await mkdtemp(path.join(os.tmpdir(), 'tandem-recovery-'));
    await writeFile(path.join(root, 'README.md'), '# recovery\n');
    started = [];
  });

  afterEach(async function () {
    killQuietly(started.flatMap((one) => one.pids));
    await harness?.close({ keepRoot: true });
    harness = undefined;
    await rm(root, { recursive: true, force: true });
  });

  async function recover(): Promise<RunRecord[]> {
    harness = await openHarness({ root, recover: false });
    return harness.services.orchestrator.recover();
  }

  describe('in a workspace whose .tandem/ came with the repository (issue 15)', function () {
    it('leaves alone the groups a planted record names with a start time of "0" or none', async function () {
      const zero = await startLeaderlessGroup();
      const missing = await startLeaderlessGroup();
      started.push(zero, missing);
      // "0" would make every member of the group look no older than its leader.
      await seedInterruptedRun(root, zero, { pid: zero.pid, startTime: '0', bootId: bootId() });
      await seedInterruptedRun(root, missing, { pid: missing.pid, bootId: bootId() });
      const recovered = await recover();
      assert.equal(recovered.length, 2);
      for (const run of recovered) {
        assert.equal(run.status, 'interrupted');
        assert.doesNotMatch(run.outcome ?? '', /killed/);
      }
      assert.equal(isProcessAlive(zero.pids[1] as number), true, 'the "0" group member was not killed');
      assert.equal(
        isProcessAlive(missing.pids[1] as number),
        true,
        'the group without a start time was not killed',
      );
    });

    it("leaves alone a live process recorded with its right start time but another boot's id", async function () {
      const worker = await startFixture('fork-grandchild.cjs');
      started.push(worker);
      const otherBoot = '00000000-0000-4000-8000-000000000000';
      assert.notEqual(bootId(), otherBoot);
      const id = await seedInterruptedRun(root, worker, {
        pid: worker.pid,
        startTime: worker.startTime,
        bootId: otherBoot,
      });
      const [recovered] = await recover();
      assert.equal(recovered?.id, id);
      assert.doesNotMatch(recovered?.outcome ?? '', /killed/);
      assert.equal(isProcessAlive(worker.pid), true, 'the process was not killed');
      assert.equal(identify(worker.pid).startTime, worker.startTime);
      assert.match(recovered?.outcome ?? '', /1 recorded pid\(s\) left alone/);
    });

    it("leaves alone a live process recorded without a boot id (not provably this machine's)", async function () {
      const worker = await startFixture('hang.cjs');
      started.push(worker);
      await seedInterruptedRun(root, worker, { pid: worker.pid, startTime: worker.startTime });
      const [recovered] = await recover();
      assert.doesNotMatch(recovered?.outcome ?? '', /killed/);
      assert.equal(isProcessAlive(worker.pid), true, 'the process was not killed');
    });

    it('runs no recovery at all in an untrusted workspace: the recorded worker lives, the run stays as it was', async function () {
      const worker = await startFixture('hang.cjs');
      started.push(worker);
      // A record in every way as Tandem writes it: only trust may allow acting on it.
      const id = await seedInterruptedRun(root, worker);
      harness = await openHarness({ root, trusted: false });
      assert.equal(harness.services.store.get(id).status, 'running');
      assert.equal(isProcessAlive(worker.pid), true, 'the process was not killed');
      assert.equal(identify(worker.pid).startTime, worker.startTime);
    });
  });

  it('kills a live worker group whose pid and start time both match what was recorded', async function () {
    const worker = await startFixture('fork-grandchild.cjs');
    started.push(worker);
    const id = await seedInterruptedRun(root, { pid: worker.pid, startTime: worker.startTime });
    const [recovered] = await recover();
    assert.equal(recovered?.id, id);
    assert.equal(recovered?.status, 'interrupted');
    assert.match(recovered?.outcome ?? '', /; 1 leftover process group\(s\) killed\.$/);
    // The grandchild in the worker's group goes as well.
    assert.deepEqual(await waitUntilGone(worker.pids, 5000), []);
    const last = (await harness?.services.store.readEvents(id))?.at(-1);
    assert.deepEqual(last?.data, { status: 'interrupted', killed: 1, spared: 0 });
  });

  it('leaves alone a live process whose pid matches but whose start time differs (a reused pid)', async function () {
    const other = await startFixture('hang.cjs');
    started.push(other);
    const reusedFrom = String(Number(other.startTime) + 37);
    const id = await seedInterruptedRun(root, { pid: other.pid, startTime: reusedFrom });
    const [recovered] = await recover();
    assert.equal(recovered?.status, 'interrupted');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(isProcessAlive(other.pid), true, 'the process that now has the pid was not killed');
    assert.equal(identify(other.pid).startTime, other.startTime);
    assert.doesNotMatch(recovered?.outcome ?? '', /killed/);
    assert.match(recovered?.outcome ?? '', /1 recorded pid\(s\) left alone/);
    const last = (await harness?.services.store.readEvents(id))?.at(-1);
    assert.deepEqual(last?.data, { status: 'interrupted', killed: 0, spared: 1 });
  });

  it('leaves alone a live process when the start time was recorded as null: a pid alone proves nothing', async function () {
    const other = await startFixture('hang.cjs');
    started.push(other);
    const id = await seedInterruptedRun(root, { pid: other.pid, startTime: null });
    const [recovered] = await recover();
    assert.equal(recovered?.status, 'interrupted');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(isProcessAlive(other.pid), true, 'a pid without a start time was not killed');
    assert.match(recovered?.outcome ?? '', /1 recorded pid\(s\) left alone/);
    const last = (await harness?.services.store.readEvents(id))?.at(-1);
    assert.deepEqual(last?.data, { status: 'interrupted', killed: 0, spared: 1 });
  });

  it('kills what is left of a worker group whose leader has exited, and no process outside it', async function () {
    const worker = await startLeaderlessGroup();
    started.push(worker);
    // Started after the leader, in a group of its own: recovery must not reach it.
    const unrelated = await startFixture('hang.cjs');
    started.push(unrelated);
    const grandchild = worker.pids[1] as number;
    const id = await seedInterruptedRun(root, { pid: worker.pid, startTime: worker.startTime });
    const [recovered] = await recover();
    assert.equal(recovered?.id, id);
    assert.match(recovered?.outcome ?? '', /; 1 leftover process group\(s\) killed\.$/);
    assert.deepEqual(await waitUntilGone([grandchild], 5000), [], 'the grandchild was killed');
    assert.equal(isProcessAlive(unrelated.pid), true, 'the unrelated process was not killed');
    assert.equal(identify(unrelated.pid).startTime, unrelated.startTime);
    const last = (await harness?.services.store.readEvents(id))?.at(-1);
    assert.deepEqual(last?.data, { status: 'interrupted', killed: 1, spared: 0 });
  });

  it('leaves alone the members of a leaderless group that started before the recorded leader', async function () {
    const worker = await startLeaderlessGroup();
    started.push(worker);
    const grandchild = worker.pids[1] as number;
    // As if the recorded leader had started 100 s later: members older than it cannot be of its making.
    const laterLeader = String(Number(worker.startTime) + 10_000);
    const id = await seedInterruptedRun(root, { pid: worker.pid, startTime: laterLeader });
    const [recovered] = await recover();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(isProcessAlive(grandchild), true, 'the older member was not killed');
    assert.doesNotMatch(recovered?.outcome ?? '', /killed/);
    assert.match(recovered?.outcome ?? '', /1 recorded pid\(s\) left alone/);
    const last = (await harness?.services.store.readEvents(id))?.at(-1);
    assert.deepEqual(last?.data, { status: 'interrupted', killed: 0, spared: 1 });
  });

  it('leaves alone the members of a leaderless group when no start time was recorded', async function () {
    const worker = await startLeaderlessGroup();
    started.push(worker);
    const id = await seedInterruptedRun(root, { pid: worker.pid, startTime: null });
    const [recovered] = await recover();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(
      isProcessAlive(worker.pids[1] as number),
      true,
      'a group without a start time was not killed',
    );
    assert.match(recovered?.outcome ?? '', /1 recorded pid\(s\) left alone/);
    const last = (await harness?.services.store.readEvents(id))?.at(-1);
    assert.deepEqual(last?.data, { status: 'interrupted', killed: 0, spared: 1 });
  });

  it('counts a recorded worker that has already ended as neither killed nor left alone', async function () {
    const gone = await deadHost();
    const id = await seedInterruptedRun(root, gone);
    const [recovered] = await recover();
    assert.equal(
      recovered?.outcome,
      `Interrupted: the server running it (pid ${harness?.services.store.get(id).host.pid}) stopped before it finished.`,
    );
  });
});
