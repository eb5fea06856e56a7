import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkspaceJail } from '../../src/core/jail';
import { OwnershipError } from '../../src/core/ownership';
import type { WorkerKind } from '../../src/workers/contract';
import { HUMAN_CALLER, WorkerError, WorkerRegistry } from '../../src/workers/registry';
import { FakeWorkerAdapter } from '../support/fake-adapter';

function isWorkerError(code: string): (error: unknown) => boolean {
  return (error: unknown) => error instanceof WorkerError && error.code === code;
}

describe('worker registry', () => {
  let root: string;
  let adapters: Record<WorkerKind, FakeWorkerAdapter>;
  let registry: WorkerRegistry;

  beforeEach(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'tandem-registry-'));
    const jail = await WorkspaceJail.open(root);
    adapters = { codex: new FakeWorkerAdapter('codex', jail), gemini: new FakeWorkerAdapter('gemini', jail) };
    registry = new WorkerRegistry((kind) => adapters[kind]);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('spawns a worker after probing its CLI and lists it with its owner, model and CLI version', async () => {
    const { worker, probe } = await registry.spawn({ kind: 'codex', owner: 'agent-a', model: 'gpt-5.5' });
    assert.equal(probe.installed, true);
    assert.match(worker.id, /^codex-[0-9a-f]{8}$/);
    assert.deepEqual(
      registry.list().map((w) => [w.id, w.owner, w.model, w.state, w.cliVersion]),
      [[worker.id, 'agent-a', 'gpt-5.5', 'idle', '1.0.0']],
    );
  });

  it('uses the adapter default model when none is given', async () => {
    const { worker } = await registry.spawn({ kind: 'gemini', owner: 'agent-a' });
    assert.equal(worker.model, 'fake-gemini');
  });

  it('refuses to spawn a worker for a CLI that is not installed, saying how to install it', async () => {
    adapters.gemini.installed = false;
    await assert.rejects(
      registry.spawn({ kind: 'gemini', owner: 'agent-a' }),
      (error: unknown) =>
        isWorkerError('NOT_INSTALLED')(error) && /npm install -g fake-gemini/.test((error as Error).message),
    );
    assert.deepEqual(registry.list(), []);
  });

  it('refuses an invalid model name and registers nothing', async () => {
    await assert.rejects(
      registry.spawn({ kind: 'codex', owner: 'a', model: '--yolo' }),
      isWorkerError('INVALID_MODEL'),
    );
    assert.deepEqual(registry.list(), []);
  });

  it('runs a step on a worker with its kind and model, and counts it', async () => {
    const { worker } = await registry.spawn({ kind: 'codex', owner: 'a', model: 'm-1' });
    const result = await registry.runStep(worker.id, {
      role: 'writer',
      cwd: '.',
      prompt: '[[scenario:reply text=ok]]',
    });
    assert.equal(result.status, 'succeeded');
    assert.equal(result.model, 'm-1');
    assert.equal(registry.get(worker.id).stepsRun, 1);
    assert.equal(registry.get(worker.id).state, 'idle');
  });

  it('tells listeners of every change: spawned, busy, idle, stopped (once), and stops after unsubscribing', async () => {
    const seen: string[] = [];
    const off = registry.onChange((worker) => seen.push(`${worker.kind}:${worker.state}:${worker.stepsRun}`));
    const { worker } = await registry.spawn({ kind: 'codex', owner: 'a' });
    await registry.runStep(worker.id, { role: 'writer', cwd: '.', prompt: '[[scenario:reply text=ok]]' });
    await registry.stop(worker.id, HUMAN_CALLER);
    await registry.stop(worker.id, HUMAN_CALLER);
    off();
    await registry.spawn({ kind: 'gemini', owner: 'a' });
    assert.deepEqual(seen, ['codex:idle:0', 'codex:busy:0', 'codex:idle:1', 'codex:stopped:1']);
  });

  it('keeps running a step when a listener throws', async () => {
    registry.onChange(() => {
      throw new Error('view broke');
    });
    const { worker } = await registry.spawn({ kind: 'codex', owner: 'a' });
    const result = await registry.runStep(worker.id, {
      role: 'writer',
      cwd: '.',
      prompt: '[[scenario:reply text=ok]]',
    });
    assert.equal(result.status, 'succeeded');
  });

  it('refuses a second step while the worker is busy', async () => {
    const { worker } = await registry.spawn({ kind: 'codex', owner: 'a' });
    const first = registry.runStep(worker.id, {
      role: 'writer',
      cwd: '.',
      prompt: '[[scenario:slow ms=300]]',
    });
    await assert.rejects(
      registry.runStep(worker.id, { role: 'writer', cwd: '.', prompt: 'again' }),
      isWorkerError('WORKER_BUSY'),
    );
    assert.equal((await first).status, 'succeeded');
  });

  it('stop cancels the in-flight step, waits for it and retires the worker', async () => {
    const { worker } = await registry.spawn({ kind: 'codex', owner: 'a' });
    const running = registry.runStep(worker.id, {
      role: 'writer',
      cwd: '.',
      prompt: '[[scenario:hang]]',
      limits: { idleTimeoutMs: 60_000 },
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const stopped = await registry.stop(worker.id, 'a');
    assert.equal(stopped.state, 'stopped');
    assert.equal((await running).status, 'cancelled');
    assert.deepEqual(registry.list(), []);
    assert.equal(registry.list({ includeStopped: true }).length, 1);
    await assert.rejects(
      registry.runStep(worker.id, { role: 'writer', cwd: '.', prompt: 'more' }),
      isWorkerError('WORKER_STOPPED'),
    );
  });

  it('lets only the owner or the human user stop a worker', async () => {
    const { worker } = await registry.spawn({ kind: 'codex', owner: 'agent-a' });
    await assert.rejects(
      registry.stop(worker.id, 'agent-b'),
      (error: unknown) =>
        error instanceof OwnershipError && error.owner === 'agent-a' && error.caller === 'agent-b',
    );
    assert.equal(registry.get(worker.id).state, 'idle');
    assert.equal((await registry.stop(worker.id, HUMAN_CALLER)).state, 'stopped');
  });

  it('names an unknown worker and says how to find a valid one', async () => {
    await assert.rejects(registry.stop('codex-00000000', 'a'), (error: unknown) => {
      return isWorkerError('UNKNOWN_WORKER')(error) && /worker_list/.test((error as Error).message);
    });
  });

  it('stopAll retires every worker and cancels what they run', async () => {
    const a = await registry.spawn({ kind: 'codex', owner: 'a' });
    const b = await registry.spawn({ kind: 'gemini', owner: 'b' });
    const running = registry.runStep(a.worker.id, {
      role: 'writer',
      cwd: '.',
      prompt: '[[scenario:hang]]',
      limits: { idleTimeoutMs: 60_000 },
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await registry.stopAll();
    assert.equal((await running).status, 'cancelled');
    assert.deepEqual(
      registry.list({ includeStopped: true }).map((w) => w.state),
      ['stopped', 'stopped'],
    );
    assert.ok(b.worker.id.startsWith('gemini-'));
  });
});
