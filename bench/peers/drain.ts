// The floor of the peers flood measure, in a process of its own so its memory is not the bench's: spawns
// the fake CLI bare (argv and environment given as JSON), writes the prompt to its stdin, counts and drops
// every byte of its stdout, and prints {bytes, exitCode, baselineBytes, peakBytes, elapsedMs}.
// Usage: node drain.js '{"command":...,"args":[...],"cwd":...,"env":{...}}' PROMPT
import { spawn } from 'node:child_process';
import type { FloorInvocation } from './servers';

async function main(): Promise<void> {
  const invocation = JSON.parse(process.argv[2] ?? '{}') as FloorInvocation;
  const prompt = process.argv[3] ?? '';
  // Settle the heap so the baseline is what the process needs before the flood starts.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const baselineBytes = process.memoryUsage().rss;
  let peakBytes = baselineBytes;
  const sampler = setInterval(() => {
    peakBytes = Math.max(peakBytes, process.memoryUsage().rss);
  }, 5);
  let bytes = 0;
  const started = performance.now();
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(invocation.command, invocation.args, {
      cwd: invocation.cwd,
      env: invocation.env,
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    child.stdout.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
    child.stdin.on('error', () => {});
    child.stdin.end(prompt);
  });
  const elapsedMs = performance.now() - started;
  clearInterval(sampler);
  // maxRSS is in KiB and covers the sampler's blind spots.
  peakBytes = Math.max(peakBytes, process.resourceUsage().maxRSS * 1024);
  process.stdout.write(JSON.stringify({ bytes, exitCode, baselineBytes, peakBytes, elapsedMs }) + '\n');
}

void main();
