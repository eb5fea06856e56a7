// A restart of the folder servers reattaches to the state on disk, as an editor reload does: the history is read
// again, and a run a dead window left running becomes interrupted. Runs after every file that calls tools through
// the editor (file-name order): a restart cuts the editor's MCP connection to the old server.
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import * as vscode from 'vscode';
import type { TandemExtensionApi } from '../../../src/extension/extension';
import { EXTENSION_ID, until } from './helpers';

describe('Tandem restart', function () {
  let api: TandemExtensionApi;

  before(async function () {
    this.timeout(60_000);
    const extension = vscode.extensions.getExtension<TandemExtensionApi>(EXTENSION_ID);
    assert.ok(extension);
    api = await extension.activate();
  });

  it('a restart reattaches to the state on disk: a run a dead window left running shows as interrupted', async function () {
    this.timeout(60_000);
    const services = await api.services();
    // The record a window killed mid-run leaves behind: running, owned by a process that is gone.
    const id = 'run-20260101T000000Z-dead01';
    const now = new Date().toISOString();
    const record = {
      id,
      kind: 'playbook',
      strategy: null,
      playbook: { name: 'handoff', hash: '000000000000', source: 'builtin:handoff' },
      owner: 'agent-gone',
      prompt: 'Left running when the window died.',
      status: 'running',
      createdAt: now,
      startedAt: now,
      endedAt: null,
      workers: ['codex', 'gemini'],
      stepCount: 1,
      outcome: null,
      decision: null,
      applied: false,
      host: { pid: 4_194_000, startTime: '1' },
    };
    appendFileSync(services.store.indexPath, `${JSON.stringify(record)}\n`);
    const restarted = await vscode.commands.executeCommand<number>('tandem.restartServers', {
      confirmed: true,
    });
    assert.equal(restarted, 1);
    const fresh = await api.services();
    assert.notEqual(fresh, services, 'a new server with its own services');
    assert.equal(fresh.store.get(id).status, 'interrupted');
    assert.match(fresh.store.get(id).outcome ?? '', /Interrupted/);
    // The history from before the restart is all there, and the Runs view shows the interrupted run.
    assert.ok(fresh.store.size >= 5, `runs after restart: ${fresh.store.size}`);
    assert.ok(
      await until(
        async () =>
          (await api.trees().runLabels()).includes('playbook:handoff: Left running when the window died.'),
        5_000,
      ),
      `runs tree: ${(await api.trees().runLabels()).join(' | ')}`,
    );
  });
});
