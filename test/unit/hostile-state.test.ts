// A .tandem/ that came with the repository is attacker input (issue 15). Planted here for real: a runs.jsonl
// linked to a file outside the workspace, a FIFO where the index or a playbook should be, isolation folders
// linked outside, and a panic.json that cannot be written. Tandem must refuse each at once with an error that
// names the file, write nothing outside the workspace, block on nothing, and keep panic engaged in memory.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { openHarness, eventually, type McpHarness } from '../support/mcp-harness';

/** Fails when `work` has not settled within `ms`: the promptness the defect took away. */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

function mkfifo(file: string): void {
  const made = spawnSync('mkfifo', [file], { stdio: 'ignore' });
  assert.equal(made.status, 0, `mkfifo ${file}`);
}

/** Lets any reader blocked on the FIFO go (a writer opens and closes it), so a failure cannot hang the suite. */
function releaseReaders(fifo: string): void {
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // no reader is waiting
  }
}

function textOf(result: CallToolResult): string {
  return result.content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');
}

const PROMPTLY_MS = 10_000;

describe('a .tandem/ planted in the repository', function () {
  let root: string;
  let outside: string;
  let harness: McpHarness | undefined;
  const fifos: string[] = [];

  beforeEach(async function () {
    root = await mkdtemp(path.join(os.tmpdir(), 'tandem-planted-'));
    outside = await mkdtemp(path.join(os.tmpdir(), 'tandem-outside-'));
    await writeFile(path.join(root, 'README.md'), '# planted\n');
    await mkdir(path.join(root, '.tandem'));
  });

  afterEach(async function () {
    for (const fifo of fifos.splice(0)) releaseReaders(fifo);
    await harness?.close({ keepRoot: true }).catch(() => undefined);
    harness = undefined;
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('runs.jsonl linked to a file outside: nothing is written there, and the refusal names the file', async function () {
    const target = path.join(outside, 'collected.jsonl');
    await writeFile(target, 'kept\n');
    await symlink(target, path.join(root, '.tandem', 'runs.jsonl'));
    harness = await openHarness({ root });
    const started = (await harness.client.callTool({
      name: 'strategy_run',
      arguments: { agentId: 'agent-a', strategy: 'single_worker', prompt: 'The secret prompt.' },
    })) as CallToolResult;
    assert.equal(started.isError, true, textOf(started));
    assert.match(textOf(started), /^UNSAFE_STATE: \.tandem\/runs\.jsonl is a symbolic link\. .*remove it/);
    assert.equal(await readFile(target, 'utf8'), 'kept\n', 'the file outside is unchanged');
    assert.equal(await harness.callError('run_list', { agentId: 'agent-a' }), 'UNSAFE_STATE');
  });

  it('runs.jsonl a FIFO: start-up and run_list answer at once with an error that names it', async function () {
    const fifo = path.join(root, '.tandem', 'runs.jsonl');
    mkfifo(fifo);
    fifos.push(fifo);
    harness = await within(PROMPTLY_MS, 'start-up', openHarness({ root }));
    assert.match(harness.services.store.problem?.message ?? '', /\.tandem\/runs\.jsonl is a FIFO/);
    const listed = (await within(
      PROMPTLY_MS,
      'run_list',
      harness.client.callTool({ name: 'run_list', arguments: { agentId: 'agent-a' } }),
    )) as CallToolResult;
    assert.equal(listed.isError, true);
    assert.match(textOf(listed), /^UNSAFE_STATE: \.tandem\/runs\.jsonl is a FIFO \(named pipe\)\./);
  });

  it('a FIFO playbook: many playbook_list calls at once all answer with it refused, and panic_engage still answers', async function () {
    await mkdir(path.join(root, '.tandem', 'playbooks'));
    const fifo = path.join(root, '.tandem', 'playbooks', 'x.json');
    mkfifo(fifo);
    fifos.push(fifo);
    harness = await openHarness({ root });
    const { client } = harness;
    // More than libuv's four file-system threads: blocked reads would leave none for anything else.
    const calls = Array.from({ length: 6 }, () =>
      client.callTool({ name: 'playbook_list', arguments: { agentId: 'agent-a' } }),
    );
    const answers = (await within(
      PROMPTLY_MS,
      'six playbook_list calls',
      Promise.all(calls),
    )) as CallToolResult[];
    for (const answer of answers) {
      assert.notEqual(answer.isError, true, textOf(answer));
      const entries = (answer.structuredContent as { playbooks: { source: string; error: string | null }[] })
        .playbooks;
      const refused = entries.find((entry) => entry.source === '.tandem/playbooks/x.json');
      assert.match(refused?.error ?? '', /\.tandem\/playbooks\/x\.json is a FIFO/);
    }
    const panic = (await within(
      PROMPTLY_MS,
      'panic_engage',
      client.callTool({ name: 'panic_engage', arguments: { agentId: 'agent-a', reason: 'FIFO' } }),
    )) as CallToolResult;
    assert.notEqual(panic.isError, true, textOf(panic));
    assert.equal((panic.structuredContent as { panic: { engaged: boolean } }).panic.engaged, true);
  });

  it('isolation folders linked outside: recovery refuses them and removes nothing there', async function () {
    const precious = path.join(outside, 'precious');
    await mkdir(precious);
    await writeFile(path.join(precious, 'keep.txt'), 'keep\n');
    await mkdir(path.join(root, '.tandem', 'isolation'));
    await symlink(outside, path.join(root, '.tandem', 'isolation', 'copies'));
    await assert.rejects(
      openHarness({ root }),
      /\.tandem\/isolation\/copies is a symbolic link\. Tandem keeps its state only in regular files and folders/,
    );
    assert.equal(existsSync(path.join(precious, 'keep.txt')), true, 'the folder outside was not removed');
  });
});

describe('panic when panic.json cannot be written', function () {
  let harness: McpHarness;

  beforeEach(async function () {
    harness = await openHarness();
  });

  afterEach(async function () {
    await harness.close();
  });

  it('cancels every run, stays engaged in memory, says it is not persisted, and refuses mutating tools', async function () {
    const ids: string[] = [];
    for (const agentId of ['agent-a', 'agent-b']) {
      const started = await harness.callOk('strategy_run', {
        agentId,
        strategy: 'single_worker',
        prompt: '[[scenario:hang]]',
      });
      ids.push((started.run as { id: string }).id);
    }
    await eventually(() => harness.fakes.codex.prompts.length === 2, 'both writer steps to start');
    // As root, permissions stop no write: a folder where the file should be does.
    await mkdir(path.join(harness.root, '.tandem', 'panic.json'));

    const engaged = await within(
      PROMPTLY_MS,
      'panic_engage',
      harness.client.callTool({ name: 'panic_engage', arguments: { agentId: 'agent-p', reason: 'disk' } }),
    );
    assert.notEqual(engaged.isError, true, textOf(engaged as CallToolResult));
    const answer = engaged.structuredContent as {
      panic: { engaged: boolean; persisted: boolean; persistError: string | null; engagedBy: string };
    };
    assert.deepEqual(
      [answer.panic.engaged, answer.panic.persisted, answer.panic.engagedBy],
      [true, false, 'agent-p'],
    );
    assert.match(answer.panic.persistError ?? '', /\.tandem\/panic\.json could not be written/);
    assert.match(textOf(engaged as CallToolResult), /Engaged in this server's memory only/);
    for (const id of ids) assert.equal(harness.services.store.get(id).status, 'cancelled', id);

    const status = await harness.callOk('panic_status', { agentId: 'agent-a' });
    const panic = status.panic as { engaged: boolean; persisted: boolean; engagedBy: string; reason: string };
    assert.deepEqual(
      [panic.engaged, panic.persisted, panic.engagedBy, panic.reason],
      [true, false, 'agent-p', 'disk'],
    );
    assert.equal(
      await harness.callError('strategy_run', {
        agentId: 'agent-a',
        strategy: 'single_worker',
        prompt: 'More work.',
      }),
      'PANIC_ENGAGED',
    );
    assert.equal(
      await harness.callError('run_cancel', { agentId: 'agent-a', runId: ids[0] }),
      'PANIC_ENGAGED',
    );
  });
});
