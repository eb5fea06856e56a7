// Runs one 1 GiB flood in a fresh process and reports its peak RSS growth, so the measurement is not
// polluted by the benchmark's own heap. Usage: node flood-worker.js helper|bare BYTES
import { spawn } from 'node:child_process';
import path from 'node:path';
import { runProcess } from '../src/core/exec';

const FIXTURES = path.resolve(__dirname, '..', '..', 'test', 'fixtures');

async function main(): Promise<void> {
  const mode = process.argv[2];
  const bytes = Number(process.argv[3]);
  const flood = path.join(FIXTURES, 'flood.cjs');
  // Settle the heap so the baseline is what the process needs before the flood starts.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  const started = performance.now();
  let total = 0;
  if (mode === 'helper') {
    const result = await runProcess({
      command: process.execPath,
      args: [flood, String(bytes)],
      cwd: FIXTURES,
    });
    total = result.stdout.totalBytes;
  } else {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [flood, String(bytes)], { stdio: ['ignore', 'pipe', 'ignore'] });
      child.stdout.on('data', (chunk: Buffer) => {
        total += chunk.length;
      });
      child.on('error', reject);
      child.on('close', () => resolve());
    });
  }
  clearInterval(sampler);
  const elapsedMs = performance.now() - started;
  // maxRSS is in KiB and covers the sampler's blind spots.
  peak = Math.max(peak, process.resourceUsage().maxRSS * 1024);
  process.stdout.write(
    JSON.stringify({ mode, bytes: total, rssGrowthBytes: peak - before, elapsedMs }) + '\n',
  );
}

void main();
