// Closing the window: the extension's deactivate() kills every worker process tree and closes the loopback
// servers (the MCP endpoint and the offline model), with the runs it cut short recorded as cancelled.
// Runs last (file-name order): after it this window's Tandem starts no server any more.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as vscode from 'vscode';
import type * as ExtensionModule from '../../../src/extension/extension';
import type { TandemExtensionApi } from '../../../src/extension/extension';
import type { RunRecord } from '../../../src/orchestrator/model';
import { EXTENSION_ID, processGroupAlive, stepPids, until } from './helpers';

/** Every live process whose group is `pgid`, from /proc/<pid>/stat (field 5). */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after its last ")".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(entry));
  }
  return members;
}

/** Resolves with the error's code (ECONNREFUSED...) when the connection fails, undefined when it is answered. */
async function connectionError(url: string): Promise<string | undefined> {
  try {
    await fetch(url, { method: 'POST', signal: AbortSignal.timeout(5_000) });
    return undefined;
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    return cause?.code ?? String(error);
  }
}

/** The last record of each run in the index file, as it is on disk. */
function recordsOnDisk(indexPath: string): Map<string, RunRecord> {
  const records = new Map<string, RunRecord>();
  for (const line of readFileSync(indexPath, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const record = JSON.parse(line) as RunRecord;
    records.set(record.id, record);
  }
  return records;
}

describe('Tandem when the window closes', function () {
  let extension: vscode.Extension<TandemExtensionApi>;
  let api: TandemExtensionApi;

  before(async function () {
    this.timeout(60_000);
    const found = vscode.extensions.getExtension<TandemExtensionApi>(EXTENSION_ID);
    assert.ok(found);
    extension = found;
    api = await extension.activate();
    const services = await api.services();
    if (services.panic.engaged) await services.panic.release('human');
  });

  it('deactivate kills every worker process group and closes the MCP and offline-model servers', async function () {
    this.timeout(120_000);
    const services = await api.services();
    const [server] = api.runningServers();
    assert.ok(server, 'the folder has a running server');

    // Three hanging CLIs: both writers of a parallel strategy, and a task on a named worker.
    const parallel = await vscode.commands.executeCommand<string>('tandem.runStrategy', {
      strategy: 'parallel_dual_write_review',
      prompt: '[[scenario:hang]] Hang until the window closes.',
    });
    assert.ok(parallel, 'the strategy started');
    const workerId = await vscode.commands.executeCommand<string>('tandem.spawnWorker', { kind: 'gemini' });
    assert.ok(workerId, 'the worker was spawned');
    const task = await vscode.commands.executeCommand<string>('tandem.dispatchTask', {
      workerId,
      prompt: '[[scenario:hang]] Hang on the named worker.',
    });
    assert.ok(task, 'the task started');

    let groups: number[] = [];
    assert.ok(
      await until(async () => {
        groups = [...(await stepPids(services.store, parallel)), ...(await stepPids(services.store, task))];
        return groups.length === 3;
      }, 60_000),
      `the three steps started their CLIs (pids ${groups.join(', ')})`,
    );
    const members = new Map(groups.map((pgid) => [pgid, groupMembers(pgid)]));
    for (const [pgid, pids] of members) {
      assert.ok(pids.includes(pgid), `worker ${pgid} leads its own live process group (${pids.join(', ')})`);
    }

    // The offline model's address, from the codex writer's command line (steps.json has it only once it ends).
    const commandLines = groups.map((pid) =>
      readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '),
    );
    const offlineUrl = commandLines
      .map((line) => /base_url="(http:\/\/127\.0\.0\.1:\d+[^"]*)"/.exec(line)?.[1])
      .find((url) => url !== undefined);
    assert.ok(offlineUrl, `the codex writer names the offline model: ${commandLines.join(' | ')}`);
    assert.equal(await connectionError(offlineUrl), undefined, 'the offline model answers before');
    assert.equal(services.orchestrator.runningCount, 2);

    // The function the extension host calls when the window closes, from the very module instance it loaded:
    // Node's module cache hands the loaded bundle back rather than evaluating a second copy.
    const load = createRequire(__filename);
    const bundle = path.join(extension.extensionPath, 'dist', 'extension.js');
    assert.ok(load.cache[bundle], 'the extension host loaded dist/extension.js through Node');
    const { deactivate } = load(bundle) as typeof ExtensionModule;
    const started = performance.now();
    await deactivate();
    console.log(
      `host-metric ${JSON.stringify({ name: 'deactivateMs', value: Math.round(performance.now() - started) })}`,
    );

    for (const [pgid, pids] of members) {
      assert.ok(
        await until(() => !processGroupAlive(pgid), 2_000),
        `worker group ${pgid} (was ${pids.join(', ')}) is gone; left: ${groupMembers(pgid).join(', ')}`,
      );
    }
    assert.equal(await connectionError(server.url), 'ECONNREFUSED', `${server.url} refuses connections`);
    assert.equal(await connectionError(offlineUrl), 'ECONNREFUSED', `${offlineUrl} refuses connections`);
    assert.deepEqual(api.runningServers(), []);

    // The runs it cut short say so on disk, and the named worker is retired.
    const onDisk = recordsOnDisk(services.store.indexPath);
    for (const runId of [parallel, task]) {
      assert.equal(onDisk.get(runId)?.status, 'cancelled', `${runId}: ${onDisk.get(runId)?.outcome ?? ''}`);
    }
    assert.equal(services.workers.get(workerId).state, 'stopped');
    // Nothing starts again in a window that is closing.
    await assert.rejects(api.services(), /shutting down/);
  });
});
