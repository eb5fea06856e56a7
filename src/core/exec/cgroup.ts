// A cgroup (v2) per step where the machine offers a writable one. A cgroup holds every process a step ever
// starts, whatever it does afterwards (setsid, double fork, a process group of its own), and `cgroup.kill`
// ends them all in one write. Found once per process; a machine without one (macOS, most containers, a
// cgroup tree not delegated to the user) gets no error, only the fallback in containment.ts.
import {
  accessSync,
  constants,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { identify, isSameProcessAlive } from './tree';

/** Every cgroup Tandem creates is named `tandem-<server pid>-<server start time>`; steps are `step-<n>`. */
const SERVER_PREFIX = 'tandem-';
const SERVER_NAME = /^tandem-(\d+)-(\d+)$/;
const STEP_NAME = /^step-\d+$/;
/** How long a release waits for a killed cgroup to empty (a process in uninterruptible sleep lingers). */
const RELEASE_LIMIT_MS = 5000;
const RELEASE_POLL_MS = 10;

interface CgroupMount {
  /** Where the v2 hierarchy is mounted, e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified. */
  mountPoint: string;
  /** Which cgroup of the hierarchy the mount shows at its top ("/" unless a container bind-mounted a part). */
  root: string;
}

/** mountinfo: `id parent major:minor root mountpoint options [optional...] - fstype source superoptions`. */
function findV2Mount(mountinfo: string): CgroupMount | undefined {
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (right === undefined || right.split(' ')[0] !== 'cgroup2') continue;
    const fields = (left ?? '').split(' ');
    const root = fields[3];
    const mountPoint = fields[4];
    if (root === undefined || mountPoint === undefined) continue;
    // mountinfo escapes spaces and other bytes as \ooo octal.
    const unescape = (text: string): string =>
      text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    return { mountPoint: unescape(mountPoint), root: unescape(root) };
  }
  return undefined;
}

/** This process's cgroup directory in the v2 hierarchy, or undefined when there is none to reach. */
function ownCgroupDir(): string | undefined {
  let membership: string;
  let mountinfo: string;
  try {
    membership = readFileSync('/proc/self/cgroup', 'utf8');
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  const line = membership.split('\n').find((candidate) => candidate.startsWith('0::'));
  const mount = findV2Mount(mountinfo);
  if (line === undefined || mount === undefined) return undefined;
  const own = line.slice(3);
  // A cgroup outside what the mount shows (e.g. "/../x" from another cgroup namespace) cannot be reached.
  const relative = path.posix.relative(mount.root, own);
  if (relative.startsWith('..') || path.posix.isAbsolute(relative)) return undefined;
  return path.join(mount.mountPoint, relative);
}

function writable(file: string): boolean {
  try {
    accessSync(file, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The cgroup dir Tandem's own subtree goes under: this process's cgroup, else its parent, when writable. */
function findBase(own: string): string | undefined {
  // Moving ourselves back out of a step's cgroup needs our own cgroup.procs (see StepCgroup.enter).
  if (!writable(path.join(own, 'cgroup.procs'))) return undefined;
  for (const candidate of [own, path.dirname(own)]) {
    if (writable(candidate) && writable(path.join(candidate, 'cgroup.procs'))) return candidate;
  }
  return undefined;
}

function populated(dir: string): boolean {
  try {
    return /^populated 1$/m.test(readFileSync(path.join(dir, 'cgroup.events'), 'utf8'));
  } catch {
    return false;
  }
}

function procs(dir: string): number[] {
  try {
    return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map(Number);
  } catch {
    return [];
  }
}

function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, signal);
    } catch {
      // gone already
    }
  }
}

export interface KillCgroupOptions {
  /** Use `cgroup.kill` when the kernel has it (5.14+). false: freeze and SIGKILL, as on older kernels. */
  killFile?: boolean;
}

/**
 * SIGKILL to every process in the cgroup and its descendants, synchronously. `cgroup.kill` does it in the
 * kernel, racing no fork. Without it, the cgroup is frozen first so nothing in it can fork while its pids
 * are read and killed (a frozen process still dies of SIGKILL); a few rounds cover a fork that was under
 * way when the freeze was asked for.
 */
export function killCgroup(dir: string, options: KillCgroupOptions = {}): void {
  if (options.killFile !== false) {
    try {
      writeFileSync(path.join(dir, 'cgroup.kill'), '1');
      return;
    } catch {
      // No cgroup.kill (kernel before 5.14), or the dir is gone: the slower way below.
    }
  }
  const frozen = (() => {
    try {
      writeFileSync(path.join(dir, 'cgroup.freeze'), '1');
      return true;
    } catch {
      return false;
    }
  })();
  const subtree = (): string[] => {
    const dirs = [dir];
    for (let i = 0; i < dirs.length; i++) {
      try {
        for (const entry of readdirSync(dirs[i] as string, { withFileTypes: true })) {
          if (entry.isDirectory()) dirs.push(path.join(dirs[i] as string, entry.name));
        }
      } catch {
        // removed meanwhile
      }
    }
    return dirs;
  };
  for (let round = 0; round < 5; round++) {
    const pids = subtree().flatMap(procs);
    if (pids.length === 0) break;
    signalAll(pids, 'SIGKILL');
  }
  if (frozen) {
    try {
      writeFileSync(path.join(dir, 'cgroup.freeze'), '0');
    } catch {
      // gone with its processes
    }
  }
}

/** Waits (bounded) until nothing is left in the cgroup, then removes it. False when it stayed. */
async function removeWhenEmpty(dir: string, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    try {
      rmdirSync(dir);
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return true;
      if (code !== 'EBUSY' || Date.now() >= deadline) return false;
    }
    await new Promise((resolve) => setTimeout(resolve, RELEASE_POLL_MS));
  }
}

/** The cgroup of one step: the child is started inside it and everything it ever starts stays there. */
export class StepCgroup {
  private released: Promise<void> | undefined;

  constructor(
    private readonly host: CgroupHost,
    readonly dir: string,
  ) {}

  /**
   * Moves this process into the step's cgroup, so a child spawned now is born there: no window in which it
   * could fork out before being moved, as a move after spawn would leave. Node's spawn forks synchronously
   * on this thread and nothing else of ours runs in between; the only other processes that could be born
   * here meanwhile are ones another thread of this process forks in those few microseconds (Node itself
   * forks from no other thread). False when the move was refused: then spawn outside and call nothing else.
   */
  enter(): boolean {
    try {
      writeFileSync(path.join(this.dir, 'cgroup.procs'), String(process.pid));
      return true;
    } catch {
      this.host.disable();
      return false;
    }
  }

  /** Back to this process's own cgroup, right after the spawn. */
  leave(): void {
    this.host.returnHome();
  }

  /** Anything left running in the step's cgroup. */
  get populated(): boolean {
    return populated(this.dir);
  }

  /** Sends `signal` to every process in the cgroup (SIGTERM lets them end in order before the kill). */
  signal(signal: NodeJS.Signals): void {
    signalAll(procs(this.dir), signal);
  }

  kill(): void {
    const members = procs(this.dir);
    // Only if this process failed to leave (see CgroupHost.returnHome): then everything but itself.
    if (members.includes(process.pid)) signalAll(members, 'SIGKILL');
    else killCgroup(this.dir, this.host.killOptions);
  }

  /** Kills whatever is left, waits until the cgroup is empty and removes it; idempotent. */
  release(): Promise<void> {
    this.released ??= (async () => {
      if (this.populated) this.kill();
      await removeWhenEmpty(this.dir, RELEASE_LIMIT_MS);
      this.host.stepReleased();
    })();
    return this.released;
  }
}

/** Where the steps' cgroups go, for this process. */
export class CgroupHost {
  private nextStep = 1;
  private liveSteps = 0;
  /** Set when the kernel refused a move: no more steps get a cgroup. */
  private disabled = false;
  readonly serverDir: string;

  constructor(
    /** The writable cgroup under which this process's own `tandem-…` cgroup is created. */
    readonly base: string,
    /** This process's own cgroup, where it returns after each spawn. */
    private readonly home: string,
    readonly killOptions: KillCgroupOptions = {},
  ) {
    const self = identify(process.pid);
    this.serverDir = path.join(base, `${SERVER_PREFIX}${process.pid}-${self.startTime ?? '0'}`);
  }

  get usable(): boolean {
    return !this.disabled;
  }

  disable(): void {
    this.disabled = true;
  }

  /** A fresh cgroup for one step, or undefined (never an error) when one cannot be made. */
  createStep(): StepCgroup | undefined {
    if (this.disabled) return undefined;
    const dir = path.join(this.serverDir, `step-${this.nextStep++}`);
    try {
      mkdirSync(this.serverDir, { recursive: true });
      mkdirSync(dir);
    } catch {
      return undefined;
    }
    this.liveSteps++;
    return new StepCgroup(this, dir);
  }

  returnHome(): void {
    try {
      writeFileSync(path.join(this.home, 'cgroup.procs'), String(process.pid));
    } catch {
      // Stuck in a step's cgroup: StepCgroup.kill spares this process, and no further step gets one.
      this.disabled = true;
    }
  }

  stepReleased(): void {
    this.liveSteps--;
    // The server's own cgroup goes with its last step, so nothing is left behind between runs or at exit.
    if (this.liveSteps === 0) {
      try {
        rmdirSync(this.serverDir);
      } catch {
        // a step is being created, or it is gone already
      }
    }
  }
}

let cachedHost: CgroupHost | null | undefined;

/** The cgroup host of this process, found on first use; undefined where there is no writable cgroup v2. */
export function cgroupHost(): CgroupHost | undefined {
  if (cachedHost === undefined) {
    const own = process.platform === 'linux' ? ownCgroupDir() : undefined;
    const base = own === undefined ? undefined : findBase(own);
    cachedHost = own !== undefined && base !== undefined ? new CgroupHost(base, own) : null;
  }
  return cachedHost === null || !cachedHost.usable ? undefined : cachedHost;
}

/**
 * Ends and removes what Tandem servers that are no longer running left in the cgroup tree (a crash, a
 * SIGKILL, an exit that could not wait for the cgroups to empty). Only cgroups named like Tandem's, whose
 * server pid is not alive with the same start time, are touched. Returns how many were removed.
 */
export async function sweepDeadServerCgroups(host: CgroupHost | undefined = cgroupHost()): Promise<number> {
  if (host === undefined) return 0;
  let names: string[];
  try {
    names = readdirSync(host.base);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const match = name.match(SERVER_NAME);
    if (!match || name === path.basename(host.serverDir)) continue;
    if (isSameProcessAlive({ pid: Number(match[1]), startTime: match[2] })) continue;
    const serverDir = path.join(host.base, name);
    killCgroup(serverDir, host.killOptions);
    let steps: string[] = [];
    try {
      steps = readdirSync(serverDir).filter((entry) => STEP_NAME.test(entry));
    } catch {
      // removed by someone else meanwhile
    }
    for (const step of steps) await removeWhenEmpty(path.join(serverDir, step), RELEASE_LIMIT_MS);
    if (await removeWhenEmpty(serverDir, RELEASE_LIMIT_MS)) removed++;
  }
  return removed;
}
