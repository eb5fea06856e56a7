// Per-step overhead of each worker adapter over a bare spawn of the same CLI command: the real CLIs
// against the offline model, interleaved call by call so machine drift hits both alike.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { buildChildEnv } from '../src/core/env';
import { WorkspaceJail } from '../src/core/jail';
import { OfflineModelServer } from '../src/offline/model-server';
import { parseStepRequest } from '../src/workers/contract';
import { codexSpec, createCodexAdapter } from '../src/workers/codex';
import { createGeminiAdapter, geminiSpec } from '../src/workers/gemini';
import type { AdapterConfig, CliSpec, CliWorkerAdapter } from '../src/workers/cli-adapter';
import { percentile, round } from './stats';

export interface AdapterBenchRow {
  kind: string;
  bareP50: number;
  bareP95: number;
  adapterP50: number;
  adapterP95: number;
  runs: number;
}

function bareRun(
  command: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
  stdin: string,
): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.on('data', () => {});
    child.stderr.on('data', () => {});
    child.stdin.on('error', () => {});
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
    child.stdin.end(stdin);
  });
}

export async function benchAdapters(repoRoot: string, runs: number): Promise<AdapterBenchRow[]> {
  const scratchBase = path.join(repoRoot, '.tandem-test-tmp');
  mkdirSync(scratchBase, { recursive: true });
  const scratch = mkdtempSync(path.join(scratchBase, 'bench-'));
  const root = path.join(scratch, 'workspace');
  mkdirSync(root);
  const server = await OfflineModelServer.start();
  const rows: AdapterBenchRow[] = [];
  try {
    const jail = await WorkspaceJail.open(root);
    const base: AdapterConfig = {
      jail,
      stateDir: path.join(scratch, 'state'),
      endpoint: { type: 'offline', openaiBaseUrl: server.openaiBaseUrl, geminiBaseUrl: server.geminiBaseUrl },
    };
    const subjects: { spec: CliSpec; adapter: CliWorkerAdapter; binary: string }[] = [
      {
        spec: codexSpec,
        binary: path.join(repoRoot, 'node_modules', '.bin', 'codex'),
        adapter: createCodexAdapter({
          ...base,
          binaryPath: path.join(repoRoot, 'node_modules', '.bin', 'codex'),
        }),
      },
      {
        spec: geminiSpec,
        binary: path.join(repoRoot, 'node_modules', '.bin', 'gemini'),
        adapter: createGeminiAdapter({
          ...base,
          binaryPath: path.join(repoRoot, 'node_modules', '.bin', 'gemini'),
        }),
      },
    ];
    for (const { spec, adapter, binary } of subjects) {
      process.stderr.write(`bench: ${runs} steps of ${spec.kind}, bare spawn and adapter interleaved\n`);
      const prompt = '[[scenario:reply]] Say hello.';
      const request = parseStepRequest({ kind: spec.kind, role: 'reviewer', cwd: '.', prompt }, spec.kind);
      // The bare run gets the very command the adapter builds, prepared once and reused.
      const stepDir = mkdtempSync(path.join(scratch, `bare-${spec.kind}-`));
      const invocation = await spec.buildInvocation({
        request,
        model: adapter.defaultModel,
        cwd: jail.root,
        stepDir,
        config: base,
      });
      const env = buildChildEnv(invocation.env);
      const bare: number[] = [];
      const adapted: number[] = [];
      for (let i = 0; i < runs + 2; i++) {
        const order = i % 2 === 0 ? ['bare', 'adapter'] : ['adapter', 'bare'];
        for (const variant of order) {
          const started = performance.now();
          if (variant === 'bare') {
            const code = await bareRun(binary, invocation.args, env, jail.root, invocation.stdin);
            if (code !== 0) throw new Error(`bare ${spec.kind} exited with ${code}`);
          } else {
            const result = await adapter.runStep({ kind: spec.kind, role: 'reviewer', cwd: '.', prompt });
            if (result.status !== 'succeeded')
              throw new Error(`${spec.kind} step ${result.status}: ${result.errorMessage}`);
          }
          // The first two rounds warm the CLIs' caches and are not counted.
          if (i >= 2) (variant === 'bare' ? bare : adapted).push(performance.now() - started);
        }
      }
      rows.push({
        kind: spec.kind,
        bareP50: round(percentile(bare, 50)),
        bareP95: round(percentile(bare, 95)),
        adapterP50: round(percentile(adapted, 50)),
        adapterP95: round(percentile(adapted, 95)),
        runs,
      });
    }
  } finally {
    await server.close();
    rmSync(scratch, { recursive: true, force: true });
  }
  return rows;
}
