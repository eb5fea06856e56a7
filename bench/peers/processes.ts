// Linux /proc helpers for the peers bench: find the fake CLI processes a server left behind (by the script
// path they run), kill them by pid, and sample a server's resident memory.
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

export interface FoundProcess {
  pid: number;
  args: string[];
}

function isZombie(pid: number): boolean {
  try {
    // The state follows the command name in parentheses, which may itself hold spaces or parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/**
 * Live processes whose script (argv[1], as `#!/usr/bin/env node` runs it) lies under `dir`. Only the
 * script is looked at, so a server that merely names the directory in its own argv is not counted.
 */
export function findScriptProcesses(dir: string): FoundProcess[] {
  const found: FoundProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue;
    }
    const script = args[1];
    if (script !== undefined && script.startsWith(dir) && !isZombie(pid)) found.push({ pid, args });
  }
  return found;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !isZombie(pid);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until no process runs a script under `dir`, or `limitMs` passes; the ms it took, or undefined. */
export async function waitUntilGone(dir: string, limitMs: number): Promise<number | undefined> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    if (findScriptProcesses(dir).length === 0) return performance.now() - started;
    await sleep(50);
  }
  return undefined;
}

/** SIGKILLs, pid by pid, every process running a script under `dir`; returns how many there were. */
export async function killScriptProcesses(dir: string): Promise<number> {
  const found = findScriptProcesses(dir);
  for (const { pid } of found) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await waitUntilGone(dir, 5_000);
  return found.length;
}

async function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Samples VmRSS every `intervalMs`; the peak is the larger of the sampled maximum and VmHWM at stop. */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private peakKiB = 0;
  private baselineKiB = 0;

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 50,
  ) {}

  async start(): Promise<void> {
    this.baselineKiB = (await statusKiB(this.pid, 'VmRSS')) ?? 0;
    this.peakKiB = this.baselineKiB;
    this.timer = setInterval(() => {
      void statusKiB(this.pid, 'VmRSS').then((kib) => {
        if (kib !== undefined && kib > this.peakKiB) this.peakKiB = kib;
      });
    }, this.intervalMs);
  }

  /** Bytes: resident before the work, and the peak during it. */
  async stop(): Promise<{ baselineBytes: number; peakBytes: number }> {
    clearInterval(this.timer);
    const hwm = await statusKiB(this.pid, 'VmHWM');
    const peak = Math.max(this.peakKiB, hwm ?? 0);
    return { baselineBytes: this.baselineKiB * 1024, peakBytes: peak * 1024 };
  }
}
