// The one way the product starts a process: argv only (never a shell), an allowlisted environment,
// stdin closed or fed then closed, wall and idle timeouts, cancellation that ends the whole process
// tree (SIGTERM, then SIGKILL after a grace period; daemons included, see containment.ts), and output
// bounded in memory and on disk.
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { buildChildEnv, describeEnvNames, type ChildEnvSpec } from '../env';
import type { Redactor } from '../redact';
import { CappedLogFile, HeadTailBuffer, type CapturedOutput } from './capture';
import { STEP_MARKER_ENV, StepContainment } from './containment';
import { ExecError } from './errors';
import { LineSplitter, type SplitLine } from './lines';
import { defaultProcessRegistry, type ProcessRegistry, type TrackedProcess } from './registry';
import { resolveBinary } from './resolve';
import { findGroup, findTree, groupAlive, identify, signalTree, type ProcessIdentity } from './tree';

export const DEFAULT_KILL_GRACE_MS = 2000;
export const DEFAULT_MAX_CAPTURE_BYTES = 1024 * 1024;
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;
/** After the direct child exits, how long its output pipes may stay open before we stop reading. */
const PIPE_DRAIN_AFTER_KILL_MS = 1000;
/** How often a step that was signalled is looked at until nothing of it is left. */
const LEFTOVER_POLL_MS = 20;

export interface LogSpill {
  path: string;
  /** Cap on the redacted text written. */
  maxBytes: number;
  /** Every byte of the log goes through it: a log is never written raw. */
  redactor: Redactor;
}

export interface ExecOptions {
  /** Absolute path, or a bare name looked up on the child's PATH. */
  command: string;
  args?: readonly string[];
  cwd: string;
  /** Which variables reach the child; nothing else from this process's environment does. */
  env?: ChildEnvSpec;
  /** Written to the child's stdin, which is then closed. Absent: stdin is closed from the start. */
  stdin?: string | Buffer;
  /** Wall-clock limit in ms (0 or absent: none). */
  timeoutMs?: number;
  /** Limit in ms on silence: no byte on stdout or stderr for this long ends the process. */
  idleTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  signal?: AbortSignal;
  /** Bytes of each stream kept in memory (head + tail). */
  maxCaptureBytes?: number;
  stdoutLog?: LogSpill;
  stderrLog?: LogSpill;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** stdout split into lines (JSONL), each capped at `maxLineBytes`. */
  onStdoutLine?: (line: SplitLine) => void;
  maxLineBytes?: number;
  /** Appended to the "not found" error, e.g. "Install it with: npm install -g @openai/codex". */
  installHint?: string;
  registry?: ProcessRegistry;
  /**
   * Hold everything the process starts, daemons included, so that a kill ends all of it (containment.ts): a
   * cgroup of its own where the machine offers one, else a marker in its environment. For what runs untrusted
   * code (a worker step, a verification); Tandem's own short commands (git, a version probe) go without, since
   * moving a process between cgroups costs milliseconds of kernel locking on each call.
   */
  contain?: boolean;
  /**
   * With `contain`, false: no cgroup even where the machine offers one, so the fallback (the environment scan
   * of containment.ts) holds the descendants. Only tests of that fallback set it.
   */
  cgroup?: boolean;
}

export type TimeoutKind = 'wall' | 'idle';

/**
 * An abort reason for the exec helper's `signal` that skips the grace period: the process tree gets SIGKILL at
 * once instead of SIGTERM first. For panic, where a worker's orderly shutdown (a CLI waiting on its model)
 * must not keep it running.
 */
export class KillAtOnce extends Error {
  override readonly name = 'KillAtOnce';
}

export interface ExecResult {
  /** Absolute path of the binary that ran. */
  command: string;
  args: string[];
  cwd: string;
  /** Names (never values) of the variables the child received. */
  envNames: string[];
  pid: number | undefined;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  timeoutKind: TimeoutKind | undefined;
  cancelled: boolean;
  /** We had to signal the tree: timeout, cancellation, shutdown, or leftovers after the child exited. */
  treeKilled: boolean;
  startedAt: string;
  durationMs: number;
  stdout: CapturedOutput;
  stderr: CapturedOutput;
  /** The child closed stdin before taking all of it (e.g. EPIPE). */
  stdinError: string | undefined;
}

export interface RunningProcess {
  readonly pid: number | undefined;
  readonly result: Promise<ExecResult>;
  /** Ends the whole tree (SIGTERM, then SIGKILL) and marks the result cancelled. */
  cancel(): void;
  /** Same as cancel, and resolves once the process tree is gone and the result is settled. */
  dispose(): Promise<void>;
}

function positive(value: number | undefined, name: string): number {
  if (value === undefined) return 0;
  if (!Number.isFinite(value) || value < 0) {
    throw new ExecError('INVALID_ARGUMENT', `${name} must be a non-negative number of ms, got ${value}.`);
  }
  return value;
}

function checkArguments(options: ExecOptions): string[] {
  const args = [...(options.args ?? [])];
  args.forEach((arg, index) => {
    if (typeof arg !== 'string') {
      throw new ExecError('INVALID_ARGUMENT', `Argument ${index} is not a string.`);
    }
    if (arg.includes('\0')) {
      throw new ExecError('INVALID_ARGUMENT', `Argument ${index} contains a NUL byte; remove it.`);
    }
  });
  let isDirectory: boolean;
  try {
    isDirectory = statSync(options.cwd).isDirectory();
  } catch {
    isDirectory = false;
  }
  if (!isDirectory) {
    throw new ExecError(
      'INVALID_ARGUMENT',
      `The working directory "${options.cwd}" does not exist or is not a directory.`,
    );
  }
  return args;
}

/**
 * Starts a process. Throws ExecError at once for a missing binary, a bad argument or a closed registry;
 * everything after the start is reported in the result, which never rejects for the child's own failures.
 */
export function startProcess(options: ExecOptions): RunningProcess {
  const registry = options.registry ?? defaultProcessRegistry;
  if (registry.isClosed) {
    throw new ExecError('REGISTRY_CLOSED', 'Shutting down: no new process can be started.');
  }
  const args = checkArguments(options);
  const env = buildChildEnv(options.env);
  const command = resolveBinary(options.command, env.PATH ?? env.Path, options.installHint);
  const timeoutMs = positive(options.timeoutMs, 'timeoutMs');
  const idleTimeoutMs = positive(options.idleTimeoutMs, 'idleTimeoutMs');
  const killGraceMs =
    options.killGraceMs === undefined ? DEFAULT_KILL_GRACE_MS : positive(options.killGraceMs, 'killGraceMs');
  const maxCaptureBytes = options.maxCaptureBytes ?? DEFAULT_MAX_CAPTURE_BYTES;
  const stdoutBuffer = new HeadTailBuffer(maxCaptureBytes);
  const stderrBuffer = new HeadTailBuffer(maxCaptureBytes);
  return new ChildRun(options, registry, command, args, env, {
    timeoutMs,
    idleTimeoutMs,
    killGraceMs,
    stdoutBuffer,
    stderrBuffer,
  });
}

/** startProcess, then wait for the result. */
export async function runProcess(options: ExecOptions): Promise<ExecResult> {
  return startProcess(options).result;
}

interface Limits {
  timeoutMs: number;
  idleTimeoutMs: number;
  killGraceMs: number;
  stdoutBuffer: HeadTailBuffer;
  stderrBuffer: HeadTailBuffer;
}

class ChildRun implements RunningProcess, TrackedProcess {
  readonly result: Promise<ExecResult>;
  private readonly child: ChildProcess | undefined;
  private readonly containment: StepContainment | undefined;
  private readonly startedAt = new Date();
  private readonly startedMs = performance.now();
  private readonly tracked = new Map<number, ProcessIdentity>();
  private timedOut: TimeoutKind | undefined;
  private cancelled = false;
  private treeKilled = false;
  private terminating: Promise<void> | undefined;
  /** The SIGKILL that ends a termination has gone out. */
  private killSent = false;
  private wallTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private stdinError: string | undefined;
  private settled = false;
  /** Ended by a KillAtOnce abort: SIGKILL went out already, no grace period is waited for. */
  private killedAtOnce = false;
  private readonly abortListener = (): void => {
    // Panic does not wait out the grace period: the whole tree gets SIGKILL at once.
    if (this.options.signal?.reason instanceof KillAtOnce) {
      this.cancelled = true;
      this.killedAtOnce = true;
      this.killNow();
    }
    this.cancel();
  };

  constructor(
    private readonly options: ExecOptions,
    private readonly registry: ProcessRegistry,
    private readonly command: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    private readonly limits: Limits,
  ) {
    if (options.signal?.aborted) {
      // Cancelled before it began: nothing is started at all.
      this.cancelled = true;
      this.child = undefined;
      this.containment = undefined;
      this.result = Promise.resolve(this.buildResult(null, null, undefined));
      return;
    }
    const containment =
      options.contain === true ? StepContainment.create({ cgroup: options.cgroup !== false }) : undefined;
    // Inherited by everything the step starts: how the fallback finds its daemons (containment.ts).
    if (containment) env[STEP_MARKER_ENV] = containment.marker;
    const start = (): ChildProcess =>
      spawn(command, args, {
        cwd: options.cwd,
        env,
        stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        shell: false,
        // A process group of its own, so the whole tree can be signalled at once.
        detached: process.platform !== 'win32',
        windowsHide: true,
      });
    let child: ChildProcess;
    try {
      child = containment ? containment.spawn(start) : start();
    } catch (error) {
      void containment?.release();
      throw error;
    }
    this.containment = containment;
    this.child = child;
    if (child.pid !== undefined) this.tracked.set(child.pid, identify(child.pid));
    registry.add(this);
    this.result = this.supervise(child);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  cancel(): void {
    if (this.settled) return;
    this.cancelled = true;
    void this.terminate('cancelled');
  }

  async dispose(): Promise<void> {
    this.cancel();
    await this.result.catch(() => undefined);
  }

  terminate(reason: 'cancelled' | 'shutdown'): Promise<void> {
    if (reason === 'cancelled' || reason === 'shutdown') this.cancelled = true;
    this.killTree();
    return this.result.then(
      () => undefined,
      () => undefined,
    );
  }

  killNow(): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    this.snapshotTree(pid);
    signalTree(this.groupId(), this.tracked.values(), 'SIGKILL');
    this.containment?.kill();
  }

  private groupId(): number | undefined {
    return process.platform === 'win32' ? undefined : this.child?.pid;
  }

  private snapshotTree(pid: number): void {
    for (const identity of findTree(pid, pid)) {
      if (!this.tracked.has(identity.pid)) this.tracked.set(identity.pid, identity);
    }
  }

  /** SIGTERM to the tree now, SIGKILL after the grace period; idempotent. */
  private killTree(): Promise<void> {
    if (this.terminating) return this.terminating;
    const pid = this.child?.pid;
    if (pid === undefined || this.settled) return Promise.resolve();
    this.treeKilled = true;
    this.clearActivityTimers();
    this.snapshotTree(pid);
    signalTree(this.groupId(), this.tracked.values(), 'SIGTERM');
    this.containment?.signal('SIGTERM');
    this.terminating = new Promise((resolve) => {
      this.killTimer = setTimeout(() => {
        this.snapshotTree(pid);
        signalTree(this.groupId(), this.tracked.values(), 'SIGKILL');
        this.containment?.kill();
        this.killSent = true;
        resolve();
      }, this.limits.killGraceMs);
    });
    return this.terminating;
  }

  /**
   * Resolves once no live process of the step is left (zombies waiting for a reaper do not count, and a
   * container's init may never reap them): what ended on SIGTERM need not wait out the grace period.
   */
  private async nothingLiveLeft(): Promise<void> {
    const pid = this.child?.pid;
    const live = (): boolean =>
      (pid !== undefined &&
        process.platform !== 'win32' &&
        groupAlive(pid) &&
        // Only /proc tells a zombie from a live member; elsewhere the group counts until the SIGKILL.
        (process.platform !== 'linux' || findGroup(pid).length > 0)) ||
      (this.containment?.hasLeftovers() ?? false);
    while (!this.killSent && live()) await new Promise((resolve) => setTimeout(resolve, LEFTOVER_POLL_MS));
  }

  /** Something of the step still runs: in the child's process group, or held by its containment. */
  private leftovers(): boolean {
    const pid = this.child?.pid;
    if (pid !== undefined && process.platform !== 'win32' && groupAlive(pid)) return true;
    return this.containment?.hasLeftovers() ?? false;
  }

  private clearActivityTimers(): void {
    if (this.wallTimer) clearTimeout(this.wallTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.wallTimer = undefined;
    this.idleTimer = undefined;
  }

  private onTimeout(kind: TimeoutKind): void {
    if (this.timedOut || this.cancelled || this.settled) return;
    this.timedOut = kind;
    void this.killTree();
  }

  private touch(): void {
    if (this.limits.idleTimeoutMs <= 0 || this.terminating) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.onTimeout('idle'), this.limits.idleTimeoutMs);
  }

  private supervise(child: ChildProcess): Promise<ExecResult> {
    const { options, limits } = this;
    options.signal?.addEventListener('abort', this.abortListener, { once: true });
    if (limits.timeoutMs > 0) this.wallTimer = setTimeout(() => this.onTimeout('wall'), limits.timeoutMs);
    this.touch();

    const openLog = (spill: LogSpill | undefined): CappedLogFile | undefined =>
      spill && new CappedLogFile(spill.path, spill.maxBytes, spill.redactor);
    const stdoutLog = openLog(options.stdoutLog);
    const stderrLog = openLog(options.stderrLog);
    const splitter = options.onStdoutLine
      ? new LineSplitter(options.onStdoutLine, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES)
      : undefined;

    const wire = (
      stream: NodeJS.ReadableStream & { pause(): void; resume(): void },
      buffer: HeadTailBuffer,
      log: CappedLogFile | undefined,
      onChunk: ((chunk: Buffer) => void) | undefined,
      afterChunk: ((chunk: Buffer) => void) | undefined,
    ): void => {
      stream.on('data', (chunk: Buffer) => {
        buffer.push(chunk);
        this.touch();
        onChunk?.(chunk);
        afterChunk?.(chunk);
        if (log && !log.write(chunk)) {
          // Backpressure: the disk is slower than the child; stop reading so memory stays flat.
          stream.pause();
          if (this.idleTimer) clearTimeout(this.idleTimer);
          void log.drained().then(() => {
            stream.resume();
            this.touch();
          });
        }
      });
    };
    if (child.stdout)
      wire(child.stdout, limits.stdoutBuffer, stdoutLog, options.onStdout, (c) => splitter?.push(c));
    if (child.stderr) wire(child.stderr, limits.stderrBuffer, stderrLog, options.onStderr, undefined);

    if (child.stdin && options.stdin !== undefined) {
      child.stdin.on('error', (error: NodeJS.ErrnoException) => {
        this.stdinError = error.code ?? error.message;
      });
      child.stdin.end(options.stdin);
    }

    return new Promise<ExecResult>((resolve, reject) => {
      let exitCode: number | null = null;
      let exitSignal: NodeJS.Signals | null = null;
      let exited = false;
      let drainTimer: NodeJS.Timeout | undefined;

      const finish = async (spawnError?: Error): Promise<void> => {
        if (this.settled) return;
        this.settled = true;
        this.clearActivityTimers();
        if (drainTimer) clearTimeout(drainTimer);
        // The child is gone but something that ignored SIGTERM may not be (a daemon holds no pipe): the
        // tree is gone only after the SIGKILL at the end of the grace period.
        if (this.terminating && !this.killSent && this.leftovers()) {
          await Promise.race([this.terminating, this.nothingLiveLeft()]);
        }
        if (this.killTimer) clearTimeout(this.killTimer);
        // A step that had to be ended is over only when nothing of it is left. One that ended by itself with
        // nothing left (checked at its exit) does not wait for the kernel to let go of its empty cgroup: that
        // takes a few polls after the last exit, on every call.
        const released = this.containment?.release();
        if (this.terminating) await released;
        else void released?.catch(() => undefined);
        options.signal?.removeEventListener('abort', this.abortListener);
        // Anything still holding the pipes open gets no more reading.
        child.stdout?.destroy();
        child.stderr?.destroy();
        splitter?.flush();
        const [outLog, errLog] = await Promise.all([stdoutLog?.close(), stderrLog?.close()]);
        this.registry.delete(this);
        if (spawnError) {
          reject(
            new ExecError('SPAWN_FAILED', `Could not start "${this.command}": ${spawnError.message}`, {
              cause: spawnError,
            }),
          );
          return;
        }
        resolve(this.buildResult(exitCode, exitSignal, { outLog, errLog }));
      };

      child.once('error', (error) => {
        // Only spawn failures arrive here before 'exit' (e.g. EACCES); a later error is a kill failure.
        if (!exited) void finish(error);
      });
      child.once('exit', (code, signal) => {
        exited = true;
        exitCode = code;
        exitSignal = signal;
        // The step is over: whatever it left running is ended too. (Its own children were reparented when
        // it died, so only the group and the containment can still find them: a syscall and a read.)
        if (this.leftovers()) void this.killTree();
        const waitMs =
          (this.terminating && !this.killedAtOnce ? limits.killGraceMs : 0) + PIPE_DRAIN_AFTER_KILL_MS;
        drainTimer = setTimeout(() => void finish(), waitMs);
      });
      child.once('close', () => {
        if (exited) void finish();
      });
    });
  }

  private buildResult(
    exitCode: number | null,
    signal: NodeJS.Signals | null,
    logs:
      | {
          outLog: Awaited<ReturnType<CappedLogFile['close']>> | undefined;
          errLog: Awaited<ReturnType<CappedLogFile['close']>> | undefined;
        }
      | undefined,
  ): ExecResult {
    const stdout = this.limits.stdoutBuffer.result();
    const stderr = this.limits.stderrBuffer.result();
    if (logs?.outLog) stdout.logFile = logs.outLog;
    if (logs?.errLog) stderr.logFile = logs.errLog;
    return {
      command: this.command,
      args: this.args,
      cwd: this.options.cwd,
      envNames: describeEnvNames(this.env),
      pid: this.child?.pid,
      exitCode,
      signal,
      timedOut: this.timedOut !== undefined,
      timeoutKind: this.timedOut,
      cancelled: this.cancelled && this.timedOut === undefined,
      treeKilled: this.treeKilled,
      startedAt: this.startedAt.toISOString(),
      durationMs: Math.round((performance.now() - this.startedMs) * 10) / 10,
      stdout,
      stderr,
      stdinError: this.stdinError,
    };
  }
}
