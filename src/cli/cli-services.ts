// Opens the shared services for the commands that start work (serve, run, demo): the built-in offline model
// when asked for, the services on the workspace (with start-up recovery), and one close() for both.
import { defaultProcessRegistry } from '../core/exec';
import type { SandboxMode } from '../core/sandbox';
import { openServices, type TandemServices } from '../mcp/services';
import { OfflineModelServer } from '../offline/model-server';
import type { StepLimits, WorkerKind } from '../workers/contract';

export interface CliServicesOptions {
  workspaceRoot: string;
  /** Start the offline model in this process and point both CLIs at it. */
  offline: boolean;
  cliPaths?: Partial<Record<WorkerKind, string>>;
  concurrency?: number;
  /** Per-step limits (wall and idle timeouts); the contract's defaults otherwise. */
  limits?: Partial<StepLimits>;
  /** The OS sandbox of gemini steps and verification commands (default "auto"), and bubblewrap's path. */
  sandbox?: SandboxMode;
  bwrapPath?: string;
  /** Where diagnostic lines go (stderr; never stdout, which may be the MCP channel). */
  log: (line: string) => void;
}

export interface CliServices {
  services: TandemServices;
  offline: OfflineModelServer | undefined;
  /** Cancels every run (their process trees are gone when it resolves), then stops the offline model. */
  close(): Promise<void>;
}

/**
 * How a command that starts work reaches the world: where it prints and how it opens its services. The
 * process's streams and openCliServices in `tandem-mcp`; collected text and services on fake CLIs in tests.
 */
export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
  open(options: CliServicesOptions): Promise<CliServices>;
}

export const processIo: CommandIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  open: (options) => openCliServices(options),
};

/** A second signal sooner than this after the first is the same request delivered twice. */
const REPEAT_SIGNAL_MS = 1000;

let exitHookInstalled = false;

/**
 * Tells a first stop signal from a user's insistent second one. One Ctrl-C often arrives twice: `npm run`
 * forwards the SIGINT its own group got, and supervisors signal a process group and its leader both.
 */
export class StopSignals {
  private firstAt: number | undefined;

  note(): 'first' | 'duplicate' | 'again' {
    const now = Date.now();
    if (this.firstAt === undefined) {
      this.firstAt = now;
      return 'first';
    }
    return now - this.firstAt < REPEAT_SIGNAL_MS ? 'duplicate' : 'again';
  }
}

/**
 * Whatever ends this process (an uncaught error, process.exit in a signal handler), no worker may outlive
 * it: the CLIs run in their own process groups, so nothing else would reach them.
 */
export function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => defaultProcessRegistry.killAllNow());
}

export async function openCliServices(options: CliServicesOptions): Promise<CliServices> {
  installExitHook();
  const offline = options.offline ? await OfflineModelServer.start() : undefined;
  let services: TandemServices;
  try {
    services = await openServices({
      workspaceRoot: options.workspaceRoot,
      ...(offline
        ? {
            endpoint: {
              type: 'offline',
              openaiBaseUrl: offline.openaiBaseUrl,
              geminiBaseUrl: offline.geminiBaseUrl,
            },
          }
        : {}),
      ...(options.cliPaths ? { cliPaths: options.cliPaths } : {}),
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.sandbox ? { sandbox: options.sandbox } : {}),
      ...(options.bwrapPath ? { bwrapPath: options.bwrapPath } : {}),
      log: options.log,
    });
    // "auto" without a working sandbox: said once at start, and in every run's summary.
    const warning = await services.sandbox.warning();
    if (warning !== null) options.log(`tandem: ${warning}`);
  } catch (error) {
    await offline?.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    services,
    offline,
    close: () => {
      closing ??= (async () => {
        try {
          await services.close();
        } finally {
          await offline?.close();
        }
      })();
      return closing;
    },
  };
}
