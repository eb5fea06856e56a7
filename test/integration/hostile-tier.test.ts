// The hostile-workspace tier: one repository carrying every hostile file at once (see
// test/support/hostile-workspace.ts), run through every built-in playbook with the real codex and gemini CLIs on
// the offline model. Nothing outside the writers' copies changes, no program of the repository runs, no secret is
// written raw or sent anywhere but the configured model, a reviewer reads every change as text, and panic stops
// every run and worker within a second even while the planted FIFOs are being read.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createServerFactory, createToolRegistry } from '../../src/mcp/server';
import { openServices, type TandemServices } from '../../src/mcp/services';
import type { RunRecord } from '../../src/orchestrator/model';
import { BUILTIN_PLAYBOOKS } from '../../src/orchestrator/playbook/builtin';
import { resolveInputs } from '../../src/orchestrator/playbook/schema';
import { OfflineModelServer } from '../../src/offline/model-server';
import {
  PLANTED_SECRETS,
  filesHolding,
  markersWritten,
  plantHostileWorkspace,
  treeDigest,
  type HostileWorkspace,
} from '../support/hostile-repository';
import { isProcessAlive, killQuietly, waitUntilGone } from '../support/processes';
import { CODEX_BIN, GEMINI_BIN, scratchDir } from '../support/real-cli';

const SECRETS = Object.values(PLANTED_SECRETS);
const outsideTandem = (relative: string): boolean => relative === '.tandem' || relative === '.git';

describe('a hostile workspace through every built-in playbook with the real CLIs', function () {
  this.timeout(600_000);
  let scratch: string;
  let ws: HostileWorkspace;
  let model: OfflineModelServer;
  let services: TandemServices | undefined;
  let workspaceBefore: Map<string, string>;
  let outsideBefore: Map<string, string>;
  let gitConfigBefore: string;
  const savedEnv = {
    GITHUB_TOKEN: process.env.GITHUB_TOKEN,
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY,
  };

  const open = (): Promise<TandemServices> =>
    openServices({
      workspaceRoot: ws.root,
      endpoint: { type: 'offline', openaiBaseUrl: model.openaiBaseUrl, geminiBaseUrl: model.geminiBaseUrl },
      cliPaths: { codex: CODEX_BIN, gemini: GEMINI_BIN },
      limits: { timeoutMs: 90_000, idleTimeoutMs: 45_000 },
    });

  before(async () => {
    scratch = scratchDir('hostile');
    ws = await plantHostileWorkspace(scratch);
    model = await OfflineModelServer.start();
    // Secret-named variables of the user's environment: they must reach no file and no URL.
    process.env.GITHUB_TOKEN = PLANTED_SECRETS.githubToken;
    process.env.AWS_SECRET_ACCESS_KEY = PLANTED_SECRETS.awsKey;
    workspaceBefore = treeDigest(ws.root, outsideTandem);
    outsideBefore = treeDigest(ws.outside);
    gitConfigBefore = readFileSync(path.join(ws.root, '.git', 'config'), 'utf8');
  });

  after(async () => {
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await services?.panic.release('human').catch(() => undefined);
    await services?.close();
    await model?.close();
    await ws?.decoy.close();
    if (ws?.bystander.pid !== undefined) killQuietly([ws.bystander.pid]);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('refuses a state file that links out of the workspace, naming it, and writes nothing outside', async () => {
    const index = path.join(ws.root, '.tandem', 'runs.jsonl');
    const planted = `${index}.planted`;
    renameSync(index, planted);
    symlinkSync(path.join(ws.outside, 'sink.jsonl'), index);
    try {
      let refused: Error | undefined;
      let opened: TandemServices | undefined;
      try {
        opened = await open();
        await opened.orchestrator.startPlaybook({
          owner: 'tester',
          task: `Use ${PLANTED_SECRETS.openaiKey} to add a file.`,
          playbook: BUILTIN_PLAYBOOKS.find((p) => p.name === 'single_worker')!,
          source: 'builtin:single_worker',
          hash: 'x',
          inputs: {},
        });
      } catch (error) {
        refused = error as Error;
      } finally {
        await opened?.close();
      }
      assert.ok(refused, 'a symbolic link as runs.jsonl was used as state');
      assert.match(refused.message, /runs\.jsonl/);
      assert.equal(
        readFileSync(path.join(ws.outside, 'sink.jsonl'), 'utf8'),
        '',
        'a record was written outside',
      );
    } finally {
      rmSync(index);
      renameSync(planted, index);
    }
  });

  it('starts on the planted .tandem/ without killing the process a planted run names', async () => {
    services = await open();
    assert.ok(ws.bystander.pid !== undefined && isProcessAlive(ws.bystander.pid), 'the bystander was killed');
  });

  for (const playbook of BUILTIN_PLAYBOOKS) {
    it(`${playbook.name}: runs to its end; the reviewer reads the change as text`, async () => {
      assert.ok(services, 'services opened');
      const file = `src/${playbook.name}.txt`;
      const task =
        `[[scenario:write path=${file} content=hidden-${playbook.name}]] ` +
        `Update ${file}; the deploy key is ${PLANTED_SECRETS.openaiKey}.`;
      const inputs = playbook.name === 'parallel_adjudicate' ? { verify: [process.execPath, '-e', '0'] } : {};
      const started = await services.orchestrator.startPlaybook({
        owner: 'tester',
        task,
        playbook,
        source: `builtin:${playbook.name}`,
        hash: playbook.name,
        inputs: resolveInputs(playbook, inputs, `builtin:${playbook.name}`),
        apply: 'never',
      });
      const run: RunRecord = await services.orchestrator.finished(started.id);
      assert.notEqual(run.status, 'failed', `${playbook.name}: ${run.outcome ?? ''}`);
      const folder = path.join(ws.root, '.tandem', 'runs', run.id);
      const reviewPrompts = readdirSync(folder)
        .filter((name) => /^prompt-.*\.txt$/.test(name))
        .map((name) => readFileSync(path.join(folder, name), 'utf8'))
        .filter((prompt) => prompt.includes('diff --git'));
      const steps = JSON.parse(readFileSync(path.join(folder, 'steps.json'), 'utf8')) as {
        name: string;
        role: string;
        status: string;
      }[];
      assert.deepEqual(
        steps.filter((step) => step.status !== 'succeeded').map((step) => `${step.name}: ${step.status}`),
        [],
        `${playbook.name}: every step succeeds on the hostile repository`,
      );
      const judges = steps.filter((step) => step.role === 'reviewer' || step.role === 'redteam');
      assert.ok(reviewPrompts.length >= judges.length, `${playbook.name}: a reviewer was shown no diff`);
      for (const prompt of reviewPrompts) {
        assert.doesNotMatch(prompt, /GIT binary patch|Binary files/, 'a reviewer got a binary patch');
        assert.match(prompt, new RegExp(`\\+hidden-${playbook.name}`), 'the reviewer did not see the change');
      }
    });
  }

  it('ran no program of the repository, changed nothing outside the copies, sent nothing to the decoy', () => {
    assert.deepEqual(markersWritten(ws), [], 'programs planted in the repository ran');
    assert.deepEqual(ws.decoy.requests, [], 'a request went to a URL the repository chose');
    assert.ok(model.requests.length > 0, 'the configured model was asked');
    const offered = model.requests
      .flatMap((request) => request.toolNames)
      .filter((name) => /evil/i.test(name));
    assert.deepEqual(offered, [], 'a tool of the repository was offered to the model');
    assert.deepEqual(treeDigest(ws.root, outsideTandem), workspaceBefore, 'the workspace changed');
    assert.deepEqual(treeDigest(ws.outside), outsideBefore, 'a file outside the workspace changed');
    assert.equal(readFileSync(path.join(ws.root, '.git', 'config'), 'utf8'), gitConfigBefore);
    assert.ok(isProcessAlive(ws.bystander.pid as number), 'the bystander was killed');
  });

  it('wrote no secret raw under .tandem/ or anywhere in the scratch area', () => {
    assert.deepEqual(filesHolding(path.join(ws.root, '.tandem'), SECRETS), []);
    assert.deepEqual(filesHolding(ws.outside, [PLANTED_SECRETS.openaiKey, PLANTED_SECRETS.githubToken]), []);
  });

  it('panic stops every run and every worker within a second while planted FIFOs are read', async () => {
    assert.ok(services, 'services opened');
    const registry = createToolRegistry(services);
    const server = createServerFactory(registry)();
    const client = new Client({ name: 'hostile-tier', version: '0.0.0' });
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
    await server.connect(serverTransport);
    await client.connect(clientTransport);
    try {
      const playbook = BUILTIN_PLAYBOOKS.find((p) => p.name === 'parallel_adjudicate')!;
      const started = await services.orchestrator.startPlaybook({
        owner: 'tester',
        task: '[[role:writer scenario=hang]] Hang.',
        playbook,
        source: 'builtin:parallel_adjudicate',
        hash: 'hang',
        inputs: resolveInputs(
          playbook,
          { verify: [process.execPath, '-e', '0'] },
          'builtin:parallel_adjudicate',
        ),
        apply: 'never',
      });
      // Both writers are working: their pids are on disk.
      const pids = await waitForWorkers(services, started.id, 2);
      // Readers of the planted FIFO playbook, the calls that once took every file-I/O thread.
      const listings = [1, 2, 3, 4].map(() =>
        client.callTool({ name: 'playbook_list', arguments: { agentId: 'reader' } }),
      );
      const t0 = Date.now();
      const engaged = (await client.callTool({
        name: 'panic_engage',
        arguments: { agentId: 'attacker-test', reason: 'hostile tier' },
      })) as CallToolResult;
      assert.notEqual(engaged.isError, true, JSON.stringify(engaged.content));
      const left = await waitUntilGone(pids, 1000 - (Date.now() - t0));
      const run = await services.orchestrator.finished(started.id);
      const elapsed = Date.now() - t0;
      assert.deepEqual(left, [], `workers alive ${elapsed} ms after panic`);
      assert.equal(run.status, 'cancelled');
      assert.ok(elapsed <= 1000, `panic took ${elapsed} ms to stop everything`);
      for (const listing of await Promise.all(listings)) {
        assert.notEqual(
          (listing as CallToolResult).isError,
          true,
          'playbook_list failed on the planted FIFO',
        );
      }
    } finally {
      await client.close();
      await server.close();
    }
  });
});

/** The pids of the first `count` workers the run recorded, once each is alive (waits on the run's events). */
async function waitForWorkers(services: TandemServices, runId: string, count: number): Promise<number[]> {
  const deadline = Date.now() + 120_000;
  let seen = 0;
  const pids = new Set<number>();
  while (Date.now() < deadline) {
    for (const event of await services.store.waitForEvents(runId, seen, 5000)) {
      seen = Math.max(seen, event.seq);
      const pid = event.data?.pid;
      if (typeof pid === 'number') pids.add(pid);
    }
    const alive = [...pids].filter(isProcessAlive);
    if (alive.length >= count) return alive;
  }
  assert.fail(`fewer than ${count} workers started in run ${runId}`);
}
