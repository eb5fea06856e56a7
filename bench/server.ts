// Benchmarks of the MCP server: run_list round trips (in memory, HTTP, stdio), run_list over 100k stored
// runs, dispatch overhead over a bare spawn of the same fake CLI, and 32 concurrent runs.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { buildChildEnv } from '../src/core/env';
import { generateToken, startHttpServer } from '../src/mcp/http-transport';
import { createServerFactory, createToolRegistry } from '../src/mcp/server';
import { openServices, type TandemServices } from '../src/mcp/services';
import type { RunRecord } from '../src/orchestrator/model';
import { STATE_DIR_NAME } from '../src/orchestrator/run-store';
import { percentile, round } from './stats';

export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  target?: string;
  pass?: boolean;
}

async function time(samples: number, work: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < samples + 5; i++) {
    const started = performance.now();
    await work();
    if (i >= 5) times.push(performance.now() - started);
  }
  return times;
}

function stats(name: string, times: number[], target?: { p50: number }): BenchRow[] {
  const p50 = percentile(times, 50);
  return [
    {
      name: `${name} p50`,
      value: round(p50),
      unit: 'ms',
      ...(target ? { target: `<= ${target.p50} ms`, pass: p50 <= target.p50 } : {}),
    },
    { name: `${name} p95`, value: round(percentile(times, 95)), unit: 'ms' },
  ];
}

/** Writes `count` finished runs straight into runs.jsonl, as a long-used workspace would have. */
function seedRuns(root: string, count: number): void {
  const dir = path.join(root, STATE_DIR_NAME);
  mkdirSync(path.join(dir, 'runs'), { recursive: true });
  writeFileSync(path.join(dir, '.gitignore'), '*\n');
  const lines: string[] = [];
  const start = Date.UTC(2026, 0, 1);
  for (let i = 0; i < count; i++) {
    const created = new Date(start + i * 1000);
    const stamp = created
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    const record: RunRecord = {
      id: `run-${stamp}-${(i % 0xffffff).toString(16).padStart(6, '0')}`,
      kind: 'strategy',
      strategy: i % 5 === 0 ? 'parallel_dual_write_review' : 'codex_writes_gemini_reviews',
      playbook: null,
      owner: `agent-${i % 7}`,
      prompt: `Task number ${i}: refactor the module and add tests for the edge cases.`,
      status: i % 1000 === 0 ? 'failed' : 'succeeded',
      createdAt: created.toISOString(),
      startedAt: created.toISOString(),
      endedAt: created.toISOString(),
      workers: ['codex', 'gemini'],
      stepCount: 2,
      outcome: 'codex wrote, gemini reviewed: approve.',
      decision: "Applied codex's change (2 files, +10 -3): gemini approved with no findings.",
      applied: true,
      host: { pid: 1, startTime: '1' },
    };
    lines.push(JSON.stringify(record));
  }
  writeFileSync(path.join(dir, 'runs.jsonl'), lines.join('\n') + '\n');
}

async function connectInMemory(services: TandemServices): Promise<Client> {
  const server = createServerFactory(createToolRegistry(services))();
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(clientSide);
  return client;
}

function bareSpawn(
  command: string,
  args: string[],
  stdin: string,
  env: Record<string, string>,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    child.stdout.on('data', () => {});
    child.stderr.on('data', () => {});
    child.on('error', reject);
    child.on('close', () => resolve());
    child.stdin.end(stdin);
  });
}

export async function benchServer(repoRoot: string, samples: number): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const base = path.join(repoRoot, '.tandem-test-tmp');
  mkdirSync(base, { recursive: true });
  const scratch = mkdtempSync(path.join(base, 'bench-server-'));
  const fakeCodex = path.join(repoRoot, 'test', 'fixtures', 'fake-codex.cjs');
  try {
    // run_list over 100k stored runs.
    const bigRoot = path.join(scratch, 'big');
    mkdirSync(bigRoot);
    seedRuns(bigRoot, 100_000);
    const openStarted = performance.now();
    const big = await openServices({ workspaceRoot: bigRoot, recover: false });
    rows.push({
      name: 'open a store of 100k runs',
      value: round(performance.now() - openStarted),
      unit: 'ms',
    });
    rows.push(
      ...stats(
        'RunStore.list newest 20 of 100k',
        await time(samples, async () => big.store.list({ limit: 20 })),
      ),
    );
    rows.push(
      ...stats(
        'RunStore.list status=failed (scans all 100k)',
        await time(samples, async () => big.store.list({ status: 'failed', limit: 200 })),
      ),
    );
    const token = generateToken();
    const http = await startHttpServer({ createServer: createServerFactory(createToolRegistry(big)), token });
    const httpClient = new Client({ name: 'bench', version: '1' });
    await httpClient.connect(
      new StreamableHTTPClientTransport(new URL(http.url), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    );
    rows.push(
      ...stats(
        'run_list over HTTP with 100k runs',
        await time(samples, () =>
          httpClient.callTool({ name: 'run_list', arguments: { agentId: 'bench', limit: 20 } }),
        ),
        { p50: 20 },
      ),
    );
    await httpClient.close();
    await http.close();
    await big.close();

    // Round trips with a small history, per transport, plus dispatch overhead on the fake CLI.
    const root = path.join(scratch, 'small');
    mkdirSync(root);
    writeFileSync(path.join(root, 'README.md'), '# bench\n');
    const services = await openServices({
      workspaceRoot: root,
      cliPaths: { codex: fakeCodex },
      concurrency: 4,
    });
    const client = await connectInMemory(services);
    rows.push(
      ...stats(
        'run_list round trip in memory',
        await time(samples, () => client.callTool({ name: 'run_list', arguments: { agentId: 'bench' } })),
      ),
    );
    const token2 = generateToken();
    const http2 = await startHttpServer({
      createServer: createServerFactory(createToolRegistry(services)),
      token: token2,
    });
    const httpClient2 = new Client({ name: 'bench', version: '1' });
    await httpClient2.connect(
      new StreamableHTTPClientTransport(new URL(http2.url), {
        requestInit: { headers: { Authorization: `Bearer ${token2}` } },
      }),
    );
    rows.push(
      ...stats(
        'run_list round trip over HTTP',
        await time(samples, () =>
          httpClient2.callTool({ name: 'run_list', arguments: { agentId: 'bench' } }),
        ),
      ),
    );
    await httpClient2.close();
    await http2.close();

    const cli = path.join(repoRoot, 'out', 'src', 'cli', 'main.js');
    const stdioClient = new Client({ name: 'bench', version: '1' });
    await stdioClient.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [cli, 'serve', '--workspace', root],
        stderr: 'ignore',
      }),
    );
    rows.push(
      ...stats(
        'run_list round trip over stdio',
        await time(samples, () =>
          stdioClient.callTool({ name: 'run_list', arguments: { agentId: 'bench' } }),
        ),
      ),
    );
    await stdioClient.close();

    const env = buildChildEnv();
    const prompt = 'Review the module.';
    const spawned = await client.callTool({
      name: 'worker_spawn',
      arguments: { agentId: 'bench', kind: 'codex' },
    });
    const workerId = (spawned.structuredContent as { worker: { id: string } }).worker.id;
    const steps = Math.max(20, Math.floor(samples / 5));
    const bare = await time(steps, () =>
      bareSpawn(process.execPath, [fakeCodex, 'exec', '--json'], prompt, env),
    );
    const dispatched = await time(steps, () =>
      client.callTool({
        name: 'task_dispatch',
        arguments: { agentId: 'bench', workerId, prompt, role: 'reviewer', waitSeconds: 30 },
      }),
    );
    rows.push(...stats('bare spawn of the fake CLI', bare));
    rows.push(...stats('task_dispatch (reviewer) to the fake CLI, until finished', dispatched));
    rows.push({
      name: 'dispatch overhead p50 over the bare spawn',
      value: round(percentile(dispatched, 50) - percentile(bare, 50)),
      unit: 'ms',
    });
    const writes = await time(steps, () =>
      client.callTool({
        name: 'strategy_run',
        arguments: { agentId: 'bench', strategy: 'single_worker', prompt: 'Write it.', waitSeconds: 30 },
      }),
    );
    rows.push(...stats('strategy_run single_worker (isolated copy + apply) on the fake CLI', writes));

    // 32 concurrent runs through the queue (4 worker processes at once) against 32 bare spawns at once.
    const bareStarted = performance.now();
    await Promise.all(
      Array.from({ length: 32 }, () =>
        bareSpawn(process.execPath, [fakeCodex, 'exec', '--json'], prompt, env),
      ),
    );
    rows.push({
      name: '32 concurrent bare spawns, wall',
      value: round(performance.now() - bareStarted),
      unit: 'ms',
    });
    const concurrentStarted = performance.now();
    const results = await Promise.all(
      Array.from({ length: 32 }, (_, i) =>
        client.callTool({
          name: 'strategy_run',
          arguments: { agentId: 'bench', strategy: 'single_worker', prompt: `Task ${i}`, waitSeconds: 50 },
        }),
      ),
    );
    const wall = performance.now() - concurrentStarted;
    const refused = results.filter((result) => result.isError === true);
    if (refused.length > 0) {
      const text = (refused[0]!.content as { type: string; text?: string }[])[0]?.text;
      throw new Error(`${refused.length} of the 32 concurrent strategy_run calls failed; the first: ${text}`);
    }
    const finished = results.filter(
      (result) => (result.structuredContent as { finished?: boolean }).finished,
    ).length;
    rows.push({
      name: `32 concurrent strategy_run single_worker, wall (${finished}/32 finished, concurrency 4, ${os.cpus().length} cores)`,
      value: round(wall),
      unit: 'ms',
    });
    await client.close();
    await services.close();
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return rows;
}
