// Test helpers for start-up recovery: the identity of a server process that died, and the index record of a
// run such a server left running.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { identify } from '../../src/core/exec';
import type { RunRecord } from '../../src/orchestrator/model';
import { fixture } from './processes';

/** The identity (pid and start time) of a real process that has ended: the host of a server that died. */
export async function deadHost(): Promise<{ pid: number; startTime: string }> {
  const child = spawn(process.execPath, [fixture('hang.cjs')], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  const startTime = identify(child.pid as number).startTime;
  assert.ok(startTime, 'a start time from /proc');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return { pid: child.pid as number, startTime };
}

/** A single_worker run as its dead server left it in the index: running, owned by `agent-gone`. */
export function leftRunningRecord(
  id: string,
  host: { pid: number; startTime: string },
  stepCount: number,
): RunRecord {
  const now = new Date().toISOString();
  return {
    id,
    kind: 'strategy',
    strategy: 'single_worker',
    playbook: null,
    owner: 'agent-gone',
    prompt: 'Left running.',
    status: 'running',
    createdAt: now,
    startedAt: now,
    endedAt: null,
    workers: ['codex'],
    stepCount,
    outcome: null,
    decision: null,
    applied: false,
    host,
  };
}
