// What the OS sandbox (bubblewrap) costs: a verification command and a real gemini writer step on the offline
// model, each with and without the sandbox, interleaved run by run in the same process so load hits both alike.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { runProcess } from '../src/core/exec';
import { WorkspaceJail } from '../src/core/jail';
import { Sandbox } from '../src/core/sandbox';
import { OfflineModelServer } from '../src/offline/model-server';
import { createGeminiAdapter } from '../src/workers/gemini';
import { percentile, round } from './stats';

export interface SandboxBenchRow {
  name: string;
  value: number;
  unit: string;
}

/** Runs `measure(sandboxed)` in alternating order, the first two rounds as warm-up; p50 and p95 of each. */
async function interleaved(
  runs: number,
  measure: (sandboxed: boolean) => Promise<void>,
): Promise<{ plain: number[]; sandboxed: number[] }> {
  const plain: number[] = [];
  const sandboxed: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    for (const variant of i % 2 === 0 ? [false, true] : [true, false]) {
      const started = performance.now();
      await measure(variant);
      if (i >= 2) (variant ? sandboxed : plain).push(performance.now() - started);
    }
  }
  return { plain, sandboxed };
}

function rowsOf(label: string, samples: { plain: number[]; sandboxed: number[] }): SandboxBenchRow[] {
  const figure = (values: number[], p: number): number => round(percentile(values, p));
  return [
    { name: `${label} p50, no sandbox`, value: figure(samples.plain, 50), unit: 'ms' },
    { name: `${label} p50, bubblewrap`, value: figure(samples.sandboxed, 50), unit: 'ms' },
    {
      name: `${label} sandbox cost p50`,
      value: round(figure(samples.sandboxed, 50) - figure(samples.plain, 50)),
      unit: 'ms',
    },
    { name: `${label} p95, no sandbox`, value: figure(samples.plain, 95), unit: 'ms' },
    { name: `${label} p95, bubblewrap`, value: figure(samples.sandboxed, 95), unit: 'ms' },
  ];
}

export async function benchSandbox(repoRoot: string, runs: number): Promise<SandboxBenchRow[]> {
  const sandbox = new Sandbox({ mode: 'required' });
  const status = await sandbox.status();
  if (!status.works) throw new Error(`the sandbox bench needs bubblewrap: ${status.problem}`);
  const scratchBase = path.join(repoRoot, '.tandem-test-tmp');
  mkdirSync(scratchBase, { recursive: true });
  const scratch = mkdtempSync(path.join(scratchBase, 'bench-sandbox-'));
  const copy = path.join(scratch, 'copy');
  const home = path.join(scratch, 'verify-home');
  mkdirSync(copy);
  mkdirSync(home);
  const server = await OfflineModelServer.start();
  const rows: SandboxBenchRow[] = [];
  try {
    process.stderr.write(`bench: ${runs} verification commands (node -e), with and without bubblewrap\n`);
    const verifyArgs = ['-e', "require('fs').readdirSync('.')"];
    const env = { set: { HOME: home } };
    const verify = await interleaved(runs, async (sandboxed) => {
      const wrapped = sandboxed
        ? await sandbox.wrap({
            command: 'node',
            args: verifyArgs,
            cwd: copy,
            env,
            policy: { writable: [copy, home], network: false },
          })
        : { command: 'node', args: verifyArgs };
      const result = await runProcess({
        command: wrapped.command,
        args: wrapped.args,
        cwd: copy,
        env,
        timeoutMs: 60_000,
      });
      if (result.exitCode !== 0)
        throw new Error(`verification exited with ${result.exitCode}: ${result.stderr.text}`);
    });
    rows.push(...rowsOf('verification command (node -e)', verify));

    const geminiRuns = Math.max(3, Math.ceil(runs / 2));
    process.stderr.write(`bench: ${geminiRuns} gemini writer steps, with and without bubblewrap\n`);
    const jail = await WorkspaceJail.open(copy);
    const gemini = (withSandbox: boolean): ReturnType<typeof createGeminiAdapter> =>
      createGeminiAdapter({
        jail,
        stateDir: path.join(scratch, 'state'),
        endpoint: {
          type: 'offline',
          openaiBaseUrl: server.openaiBaseUrl,
          geminiBaseUrl: server.geminiBaseUrl,
        },
        binaryPath: path.join(repoRoot, 'node_modules', '.bin', 'gemini'),
        ...(withSandbox ? { sandbox } : {}),
      });
    const adapters = { plain: gemini(false), sandboxed: gemini(true) };
    let step = 0;
    const steps = await interleaved(geminiRuns, async (sandboxed) => {
      step += 1;
      const result = await (sandboxed ? adapters.sandboxed : adapters.plain).runStep({
        kind: 'gemini',
        role: 'writer',
        cwd: '.',
        prompt: `[[scenario:write path=bench-${step}.txt content=x]] Write it.`,
      });
      if (result.status !== 'succeeded')
        throw new Error(`gemini step ${result.status}: ${result.errorMessage}`);
    });
    rows.push(...rowsOf('gemini writer step (offline model)', steps));
  } finally {
    await server.close();
    rmSync(scratch, { recursive: true, force: true });
  }
  return rows;
}
