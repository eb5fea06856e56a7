// The OS sandbox for what the CLIs do not confine themselves (gemini steps, verification commands): wraps a
// command's argv in bubblewrap on Linux or sandbox-exec on macOS so the program sees its copy read-write, the
// system read-only, and nothing of the user's home, other workspaces or other runs. The process API is left as
// it is: the wrapped argv goes through startProcess like any other.
import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildChildEnv, type ChildEnvSpec } from './env';
import { ExecError, resolveBinary, runProcess } from './exec';

export const SANDBOX_MODES = ['required', 'auto', 'off'] as const;
export type SandboxMode = (typeof SANDBOX_MODES)[number];
export const DEFAULT_SANDBOX_MODE: SandboxMode = 'auto';

export const BWRAP_INSTALL_HINT =
  'Install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install bubblewrap; ' +
  'Arch: sudo pacman -S bubblewrap)';

const PROBE_TIMEOUT_MS = 15_000;

export function isSandboxMode(value: unknown): value is SandboxMode {
  return typeof value === 'string' && (SANDBOX_MODES as readonly string[]).includes(value);
}

export type SandboxTool = 'bubblewrap' | 'sandbox-exec';

/** What the probe found: whether steps can be sandboxed here, with what, and the mode they run under. */
export interface SandboxStatus {
  mode: SandboxMode;
  tool: SandboxTool | null;
  /** The sandbox program's absolute path, when one was found. */
  path: string | null;
  version: string | null;
  /** A sandbox was started once and ran a program: the tool is present and the kernel lets it work. */
  works: boolean;
  /** Why steps cannot be sandboxed here (null when they can). */
  problem: string | null;
}

/** Whether a step's program is sandboxed, said once for the probe and for run summaries. */
export function sandboxWarning(status: SandboxStatus): string | null {
  if (status.mode !== 'auto' || status.works) return null;
  return (
    `No OS sandbox: ${status.problem ?? 'the sandbox does not work here'}. Gemini steps and verification ` +
    `commands run without one (sandbox mode "auto"). ${BWRAP_INSTALL_HINT}.`
  );
}

/** What a sandboxed program may touch besides the read-only system. */
export interface SandboxPolicy {
  /** Folders it may change: its copy, its private home and temp folders. */
  writable: readonly string[];
  /** Files and folders it may read: a read-only working folder, login files. */
  readable?: readonly string[];
  /** false: no network at all (verification); true: the host's network (a CLI reaching its model). */
  network: boolean;
}

export class SandboxUnavailableError extends Error {
  override readonly name = 'SandboxUnavailableError';
  readonly code = 'SANDBOX_UNAVAILABLE';
}

export interface SandboxOptions {
  mode?: SandboxMode;
  /** bubblewrap's path; default: `bwrap` on this process's PATH. */
  bwrapPath?: string;
  platform?: NodeJS.Platform;
  /** The user's home: never made visible as a whole. Default: os.homedir(). */
  userHome?: string;
}

export interface WrapRequest {
  /** A bare name looked up on the child's PATH, or an absolute path. */
  command: string;
  args: readonly string[];
  cwd: string;
  /** The child's environment spec: its PATH finds the program, and file variables are made readable. */
  env?: ChildEnvSpec;
  policy: SandboxPolicy;
  installHint?: string;
}

export interface WrappedCommand {
  /** What to start: the sandbox program, or the program itself when it runs unsandboxed. */
  command: string;
  args: string[];
  /** The program inside, resolved to an absolute path (what a step record shows). */
  program: string;
  sandboxed: SandboxTool | null;
}

/** System folders every program needs, read-only. /etc has no secrets readable by a normal user. */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/opt'];

/** Variables naming a file or folder a program must read (certificates, a credentials file). */
const FILE_ENV_NAMES = [
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'NODE_EXTRA_CA_CERTS',
  'GOOGLE_APPLICATION_CREDENTIALS',
];

function under(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

function realOrSelf(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}

/** The folder a program's install lives in: its nearest `node_modules` (its dependencies), else its own folder. */
function installDir(realProgram: string): string {
  let dir = path.dirname(realProgram);
  for (;;) {
    if (path.basename(dir) === 'node_modules') return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return path.dirname(realProgram);
    dir = parent;
  }
}

type Mount = { kind: 'ro' | 'rw'; path: string } | { kind: 'mask'; path: string };

/** Builds the bubblewrap argv around a resolved program: exported for tests of the rules themselves. */
export function bubblewrapArgs(options: {
  program: string;
  args: readonly string[];
  cwd: string;
  policy: SandboxPolicy;
  readable: readonly string[];
  userHome: string;
}): string[] {
  const { policy } = options;
  const args = [
    '--die-with-parent',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    ...(policy.network ? [] : ['--unshare-net']),
    // No terminal to inject keystrokes into, no capabilities (a root caller would otherwise keep CAP_SYS_ADMIN
    // and could undo the mounts).
    '--new-session',
    '--cap-drop',
    'ALL',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--tmpfs',
    '/tmp',
  ];
  for (const dir of SYSTEM_DIRS) {
    let stat;
    try {
      stat = lstatSync(dir);
    } catch {
      continue;
    }
    if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else if (stat.isDirectory()) args.push('--ro-bind', dir, dir);
  }
  const visible = (target: string): boolean => SYSTEM_DIRS.some((dir) => under(target, dir));
  const home = realOrSelf(path.resolve(options.userHome));
  const mounts: Mount[] = [];
  const seen = new Set<string>();
  const add = (kind: 'ro' | 'rw', target: string): void => {
    // Mounted where it really is: a path through a symlink would not exist inside.
    const resolved = realOrSelf(path.resolve(target));
    // The root or the user's home (or a folder above it) as a whole would show everything the sandbox hides.
    if (resolved === '/' || under(home, resolved)) return;
    if (seen.has(`${kind}:${resolved}`) || !existsSync(resolved)) return;
    seen.add(`${kind}:${resolved}`);
    mounts.push({ kind, path: resolved });
    // Tandem's own state (other runs, their copies, the run store) is hidden inside any folder shown.
    const state = path.join(resolved, '.tandem');
    if (existsSync(state) && !seen.has(`mask:${state}`)) {
      seen.add(`mask:${state}`);
      mounts.push({ kind: 'mask', path: state });
    }
  };
  for (const target of options.readable) if (!visible(target)) add('ro', target);
  for (const target of policy.readable ?? []) add('ro', target);
  for (const target of policy.writable) add('rw', target);
  // Outer folders first, so a folder shown inside a hidden or read-only one is mounted over it.
  const depth = (target: string): number => target.split(path.sep).length;
  mounts.sort(
    (a, b) => depth(a.path) - depth(b.path) || (a.kind === 'mask' ? 1 : 0) - (b.kind === 'mask' ? 1 : 0),
  );
  for (const mount of mounts) {
    if (mount.kind === 'mask') args.push('--tmpfs', mount.path);
    else args.push(mount.kind === 'rw' ? '--bind' : '--ro-bind', mount.path, mount.path);
  }
  // The root bubblewrap builds (and the mount points it made there) is read-only too: only the writable
  // folders and the private /tmp take writes.
  args.push('--remount-ro', '/', '--chdir', realOrSelf(options.cwd), '--', options.program, ...options.args);
  return args;
}

/** A string in a sandbox-exec profile. */
function sbplString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * The sandbox-exec profile of the same rules on macOS: everything readable except the user's home (the
 * program's own files and its copy are allowed back), writes only in the writable folders, and no network
 * unless the policy allows it. macOS has no pid namespace: descendants are ended by Tandem's tree kill.
 */
export function sandboxExecProfile(options: {
  policy: SandboxPolicy;
  readable: readonly string[];
  userHome: string;
}): string {
  const { policy } = options;
  const subpaths = (targets: readonly string[]): string =>
    targets.map((target) => `(subpath ${sbplString(path.resolve(target))})`).join(' ');
  const readable = [...options.readable, ...(policy.readable ?? []), ...policy.writable];
  const lines = [
    '(version 1)',
    '(allow default)',
    // Home secrets (~/.ssh, ~/.aws, ~/.config and the rest) and other workspaces under the home are not readable.
    `(deny file-read* (subpath ${sbplString(path.resolve(options.userHome))}))`,
    // An allow without a filter would allow every read: only given when there is something to allow back.
    ...(readable.length > 0 ? [`(allow file-read* ${subpaths(readable)})`] : []),
    '(deny file-write*)',
    `(allow file-write* ${subpaths(policy.writable)} (literal "/dev/null") (literal "/dev/tty") (regex #"^/dev/fd/"))`,
  ];
  if (!policy.network) lines.push('(deny network*)');
  return lines.join('\n') + '\n';
}

interface ProbeCacheEntry {
  promise: Promise<Omit<SandboxStatus, 'mode'>>;
}

/** One probe per sandbox program path for the life of the process: trying it costs a process start. */
const probeCache = new Map<string, ProbeCacheEntry>();

export function clearSandboxProbeCache(): void {
  probeCache.clear();
}

async function tryTool(
  tool: SandboxTool,
  toolPath: string,
  platform: NodeJS.Platform,
): Promise<Omit<SandboxStatus, 'mode'>> {
  let version: string | null = null;
  if (tool === 'bubblewrap') {
    const result = await runProcess({
      command: toolPath,
      args: ['--version'],
      cwd: '/',
      timeoutMs: PROBE_TIMEOUT_MS,
    });
    version = result.stdout.text.match(/(\d+\.\d+(?:\.\d+)?)/)?.[1] ?? null;
  }
  const truePath = resolveBinary('true', '/usr/bin:/bin');
  const args =
    tool === 'bubblewrap'
      ? bubblewrapArgs({
          program: truePath,
          args: [],
          cwd: '/',
          policy: { writable: [], network: false },
          readable: [],
          userHome: os.homedir(),
        })
      : [
          '-p',
          sandboxExecProfile({
            policy: { writable: [], network: false },
            readable: [],
            userHome: os.homedir(),
          }),
          truePath,
        ];
  const result = await runProcess({ command: toolPath, args, cwd: '/', timeoutMs: PROBE_TIMEOUT_MS });
  const works = result.exitCode === 0;
  const detail = result.stderr.text.trim().split('\n').slice(-1)[0] ?? '';
  return {
    tool,
    path: toolPath,
    version,
    works,
    problem: works
      ? null
      : `${toolPath} is installed but could not start a sandbox (exit ${result.exitCode ?? result.signal}${detail ? `: ${detail}` : ''}); ` +
        (platform === 'linux' ? 'the kernel may forbid user namespaces' : 'sandbox-exec refused the profile'),
  };
}

async function probeTool(
  options: SandboxOptions,
  platform: NodeJS.Platform,
): Promise<Omit<SandboxStatus, 'mode'>> {
  const none = (problem: string): Omit<SandboxStatus, 'mode'> => ({
    tool: null,
    path: null,
    version: null,
    works: false,
    problem,
  });
  if (platform !== 'linux' && platform !== 'darwin') return none(`no sandbox is supported on ${platform}`);
  const tool: SandboxTool = platform === 'linux' ? 'bubblewrap' : 'sandbox-exec';
  let toolPath: string;
  try {
    toolPath =
      platform === 'linux'
        ? resolveBinary(options.bwrapPath ?? 'bwrap', process.env.PATH)
        : resolveBinary('/usr/bin/sandbox-exec', undefined);
  } catch (error) {
    const where = options.bwrapPath ?? (platform === 'linux' ? 'bwrap on PATH' : '/usr/bin/sandbox-exec');
    return none(
      error instanceof ExecError && error.code === 'BINARY_NOT_FOUND'
        ? `${tool} was not found (${where})`
        : `${tool} could not be looked up: ${(error as Error).message}`,
    );
  }
  let entry = probeCache.get(toolPath);
  if (!entry) {
    entry = {
      promise: tryTool(tool, toolPath, platform).catch((error: unknown) => ({
        tool,
        path: toolPath,
        version: null,
        works: false,
        problem: `${toolPath} could not be started: ${(error as Error).message}`,
      })),
    };
    probeCache.set(toolPath, entry);
  }
  return entry.promise;
}

/** One workspace's sandbox: its mode, the probed tool, and the wrapping of a step's command. */
export class Sandbox {
  readonly mode: SandboxMode;
  private readonly platform: NodeJS.Platform;
  private readonly userHome: string;
  private probed: Promise<SandboxStatus> | undefined;

  constructor(private readonly options: SandboxOptions = {}) {
    this.mode = options.mode ?? DEFAULT_SANDBOX_MODE;
    this.platform = options.platform ?? process.platform;
    this.userHome = options.userHome ?? os.homedir();
  }

  /** Probes once: whether a sandbox can be started here. In mode "off" nothing is tried. */
  status(): Promise<SandboxStatus> {
    this.probed ??=
      this.mode === 'off'
        ? Promise.resolve({
            mode: this.mode,
            tool: null,
            path: null,
            version: null,
            works: false,
            problem: 'the sandbox is turned off (sandbox mode "off")',
          })
        : probeTool(this.options, this.platform).then((found) => ({ mode: this.mode, ...found }));
    return this.probed;
  }

  /** The warning a run summary carries while steps run unsandboxed in mode "auto", or null. */
  async warning(): Promise<string | null> {
    return sandboxWarning(await this.status());
  }

  /**
   * The command to start for `request`: the program inside the sandbox, or the program itself when the mode is
   * "off" or "auto" and no sandbox works here. Throws SandboxUnavailableError in mode "required" when none
   * works, and ExecError when the program is not found.
   */
  async wrap(request: WrapRequest): Promise<WrappedCommand> {
    const env = buildChildEnv(request.env);
    const program = resolveBinary(request.command, env.PATH, request.installHint);
    const plain: WrappedCommand = { command: program, args: [...request.args], program, sandboxed: null };
    if (this.mode === 'off') return plain;
    const status = await this.status();
    if (!status.works || status.tool === null || status.path === null) {
      if (this.mode === 'auto') return plain;
      throw new SandboxUnavailableError(
        `The sandbox is required (sandbox mode "required") but cannot be used: ${status.problem ?? 'unknown'}. ` +
          `The step was not started. ${BWRAP_INSTALL_HINT}, or set the sandbox mode to "auto" or "off".`,
      );
    }
    // The program is started by its real path, so its install is found where it really is.
    const realProgram = realOrSelf(program);
    const readable = [installDir(realProgram), realProgram];
    // `#!/usr/bin/env node` scripts look node up on PATH.
    try {
      const node = resolveBinary('node', env.PATH);
      readable.push(path.dirname(node), path.dirname(realOrSelf(node)));
    } catch {
      // no node on PATH: the program does not need it
    }
    for (const name of FILE_ENV_NAMES) {
      const value = env[name];
      if (value !== undefined && path.isAbsolute(value)) readable.push(value);
    }
    // A resolver configuration linked elsewhere (systemd-resolved) keeps name lookups working.
    if (request.policy.network) readable.push(path.dirname(realOrSelf('/etc/resolv.conf')));
    if (status.tool === 'bubblewrap') {
      return {
        command: status.path,
        args: bubblewrapArgs({
          program: realProgram,
          args: request.args,
          cwd: request.cwd,
          policy: request.policy,
          readable,
          userHome: this.userHome,
        }),
        program,
        sandboxed: 'bubblewrap',
      };
    }
    return {
      command: status.path,
      args: [
        '-p',
        sandboxExecProfile({ policy: request.policy, readable, userHome: this.userHome }),
        realProgram,
        ...request.args,
      ],
      program,
      sandboxed: 'sandbox-exec',
    };
  }
}
