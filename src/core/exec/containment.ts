// Holds every process a step starts together, so cancel, timeouts and shutdown end all of them even when
// one leaves the step's process group and parent chain (setsid, then a double fork: a daemon).
//
// Where the machine offers a writable cgroup v2, each step gets a cgroup (cgroup.ts). Elsewhere Node has no
// prctl(PR_SET_CHILD_SUBREAPER) to keep orphans in the tree, and a pid namespace (`unshare --pid`) needs
// privileges or a user namespace that many containers refuse, costs a process per step and changes what the
// step sees (its uid, /proc). So the fallback marks each step's environment with TANDEM_STEP_ID, which every
// descendant inherits through setsid and double forks, and finds the marked processes in /proc when the step
// ends. It misses a descendant that replaced its whole environment (an `env -i` exec), which a cgroup does
// not; without /proc (macOS) only the process group and the tree seen at the kill are reached.
import { cgroupHost, type StepCgroup } from './cgroup';
import { findByEnvironment, identify, signalTree } from './tree';

export const STEP_MARKER_ENV = 'TANDEM_STEP_ID';

export type ContainmentMechanism = 'cgroup' | 'environment-scan' | 'process-group';

export interface ContainmentReport {
  mechanism: ContainmentMechanism;
  /** One sentence for people: where the cgroups go, or why there are none. */
  detail: string;
}

const hasProc = process.platform === 'linux';
const serverMarker = `${process.pid}-${identify(process.pid).startTime ?? '0'}`;
let nextStep = 1;

/** What a step's processes are held by. */
export class StepContainment {
  /** The value of TANDEM_STEP_ID in the step's environment. */
  readonly marker = `${serverMarker}-${nextStep++}`;

  /** The step has been signalled: marked processes may still be dying. */
  private signalled = false;

  private constructor(private cgroup: StepCgroup | undefined) {}

  /** `cgroup: false` skips the cgroup even where the machine offers one (tests of the fallback). */
  static create(options: { cgroup?: boolean } = {}): StepContainment {
    return new StepContainment(options.cgroup === false ? undefined : cgroupHost()?.createStep());
  }

  get mechanism(): ContainmentMechanism {
    if (this.cgroup) return 'cgroup';
    return hasProc ? 'environment-scan' : 'process-group';
  }

  /** Runs `spawn` (which must fork synchronously, as child_process.spawn does) so its child is held. */
  spawn<T>(spawn: () => T): T {
    const cgroup = this.cgroup;
    if (!cgroup) return spawn();
    if (!cgroup.enter()) {
      this.cgroup = undefined;
      void cgroup.release();
      return spawn();
    }
    try {
      return spawn();
    } finally {
      cgroup.leave();
    }
  }

  /** Signals every process of the step that is still running. */
  signal(signal: NodeJS.Signals): void {
    this.signalled = true;
    if (this.cgroup) this.cgroup.signal(signal);
    else signalTree(undefined, this.findMarked(), signal);
  }

  /** SIGKILL to every process of the step, synchronously (usable in a process 'exit' handler). */
  kill(): void {
    this.signalled = true;
    if (this.cgroup) {
      this.cgroup.kill();
      return;
    }
    // A marked process forking between the scan and the kill has a marked child: a few rounds end it.
    for (let round = 0; round < 3; round++) {
      const marked = this.findMarked();
      if (marked.length === 0) return;
      signalTree(undefined, marked, 'SIGKILL');
    }
  }

  /** Any process of the step still running. A cgroup answers in one read; the scan reads all of /proc. */
  hasLeftovers(): boolean {
    return this.cgroup ? this.cgroup.populated : this.findMarked().length > 0;
  }

  /**
   * Kills what is left and gives back the cgroup once it is empty (bounded wait). Without a cgroup, a step
   * that was never signalled is not scanned again: its child exited with no marked process left (see the
   * exit check in process.ts), and only a marked process can start another.
   */
  async release(): Promise<void> {
    if (this.cgroup) await this.cgroup.release();
    else if (this.signalled && this.hasLeftovers()) this.kill();
  }

  private findMarked(): ReturnType<typeof findByEnvironment> {
    return findByEnvironment(STEP_MARKER_ENV, this.marker);
  }
}

/** Which mechanism steps started now get, for the probe. */
export function describeContainment(): ContainmentReport {
  const host = cgroupHost();
  if (host) {
    return {
      mechanism: 'cgroup',
      detail: `Each step runs in a cgroup of its own under ${host.base}; cancel, timeouts and shutdown kill the whole cgroup.`,
    };
  }
  if (hasProc) {
    return {
      mechanism: 'environment-scan',
      detail:
        'No writable cgroup v2 here: each step is marked with TANDEM_STEP_ID in its environment and every ' +
        'process carrying the mark is killed with it (a process that clears its environment escapes).',
    };
  }
  return {
    mechanism: 'process-group',
    detail:
      'No cgroups and no /proc here: a step is ended through its process group; a descendant that starts a ' +
      'session of its own (a daemon) escapes.',
  };
}
