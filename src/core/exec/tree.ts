// Finds and signals a child's whole process tree. The process group catches everything that stays in
// it; on Linux /proc also finds descendants that moved to a group of their own. Each pid is kept with
// its start time so a pid the kernel has since reused is never signalled.
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessIdentity {
  pid: number;
  /** Start time in clock ticks since boot (/proc/<pid>/stat field 22); undefined where /proc is absent. */
  startTime: string | undefined;
}

interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  pgid: number;
  startTime: string;
}

const hasProc = process.platform === 'linux';

function readStat(pid: number): ProcStat | undefined {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or parentheses.
  const close = raw.lastIndexOf(')');
  if (close === -1) return undefined;
  const fields = raw.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); ppid is field 4, pgrp field 5, starttime field 22.
  const ppid = Number(fields[1]);
  const pgid = Number(fields[2]);
  const startTime = fields[19];
  if (!Number.isInteger(ppid) || !Number.isInteger(pgid) || startTime === undefined) return undefined;
  return { pid, state: fields[0] ?? '', ppid, pgid, startTime };
}

let bootIdCache: string | null | undefined;

/**
 * This boot of this machine (/proc/sys/kernel/random/boot_id); undefined where there is none. With a pid and
 * its start time it names one process uniquely, so a record can be told apart from one made elsewhere or
 * before a reboot (start times count from boot, and pids restart).
 */
export function bootId(): string | undefined {
  if (bootIdCache === undefined) {
    try {
      const text = hasProc ? readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() : '';
      bootIdCache = /^[0-9a-f-]{32,36}$/.test(text) ? text : null;
    } catch {
      bootIdCache = null;
    }
  }
  return bootIdCache ?? undefined;
}

export function identify(pid: number): ProcessIdentity {
  return { pid, startTime: hasProc ? readStat(pid)?.startTime : undefined };
}

/** Every process /proc lists now; empty where there is no /proc. */
function readAllStats(): ProcStat[] {
  if (!hasProc) return [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const stats: ProcStat[] = [];
  for (const name of entries) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const stat = readStat(pid);
    if (stat) stats.push(stat);
  }
  return stats;
}

/** Descendants of `rootPid` plus every member of process group `pgid`, found in one pass over /proc. */
export function findTree(rootPid: number, pgid: number): ProcessIdentity[] {
  const stats = readAllStats();
  if (stats.length === 0) return [];
  const children = new Map<number, ProcStat[]>();
  for (const stat of stats) {
    const list = children.get(stat.ppid);
    if (list) list.push(stat);
    else children.set(stat.ppid, [stat]);
  }
  const found = new Map<number, ProcStat>();
  const queue = [rootPid];
  while (queue.length > 0) {
    const parent = queue.pop() as number;
    for (const child of children.get(parent) ?? []) {
      if (!found.has(child.pid)) {
        found.set(child.pid, child);
        queue.push(child.pid);
      }
    }
  }
  for (const stat of stats) {
    if (stat.pgid === pgid && !found.has(stat.pid)) found.set(stat.pid, stat);
  }
  const self = readStat(rootPid);
  if (self) found.set(rootPid, self);
  return [...found.values()].map(({ pid, startTime }) => ({ pid, startTime }));
}

/**
 * Every live process whose environment holds `name=value` exactly, found by reading /proc/<pid>/environ
 * (the environment the process was started with, passed on to whatever it starts, through setsid and
 * double forks alike); empty where /proc is absent. Processes of other users cannot be read and are not
 * listed. This process is never listed.
 */
export function findByEnvironment(name: string, value: string): ProcessIdentity[] {
  if (!hasProc) return [];
  const entry = Buffer.from(`${name}=${value}\0`);
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const found: ProcessIdentity[] = [];
  for (const item of entries) {
    const pid = Number(item);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    let environ: Buffer;
    try {
      environ = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue;
    }
    // A whole entry: at the start, or right after the NUL that ends the one before.
    let at = environ.indexOf(entry);
    while (at > 0 && environ[at - 1] !== 0) at = environ.indexOf(entry, at + 1);
    if (at === -1) continue;
    const stat = readStat(pid);
    if (stat && stat.state !== 'Z' && stat.state !== 'X') found.push({ pid, startTime: stat.startTime });
  }
  return found;
}

/**
 * The live members of process group `pgid` (zombies left out), from /proc/<pid>/stat field 5; empty where
 * /proc is absent. Also finds a group whose leader has exited: kill(-pgid) reaches it, but cannot tell
 * which members to spare.
 */
export function findGroup(pgid: number): ProcessIdentity[] {
  return readAllStats()
    .filter((stat) => stat.pgid === pgid && stat.state !== 'Z' && stat.state !== 'X')
    .map(({ pid, startTime }) => ({ pid, startTime }));
}

/** True when the process is running and is still the one identified (not a reused pid). */
export function isSameProcessAlive(identity: ProcessIdentity): boolean {
  if (hasProc) {
    const stat = readStat(identity.pid);
    if (!stat) return false;
    if (identity.startTime !== undefined && stat.startTime !== identity.startTime) return false;
    // A zombie has exited; only its parent's wait() is missing.
    return stat.state !== 'Z' && stat.state !== 'X';
  }
  try {
    process.kill(identity.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True while any process is left in the group. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Signals the group and every tracked process that is still the one we saw; gone ones are ignored. */
export function signalTree(
  pgid: number | undefined,
  tracked: Iterable<ProcessIdentity>,
  signal: NodeJS.Signals,
): void {
  if (pgid !== undefined) {
    try {
      process.kill(-pgid, signal);
    } catch {
      // ESRCH: the group is already empty.
    }
  }
  for (const identity of tracked) {
    if (!isSameProcessAlive(identity)) continue;
    try {
      process.kill(identity.pid, signal);
    } catch {
      // It exited between the check and the signal.
    }
  }
}
