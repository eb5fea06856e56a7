// The shared state behind every MCP session on one workspace: jail, run store, panic switch, worker
// adapters and registry, orchestrator. Built once per workspace by `tandem-mcp serve` or the editor,
// and handed to a new McpServer per session.
import path from 'node:path';
import { sweepDeadServerCgroups } from '../core/exec';
import { JailError, WorkspaceJail } from '../core/jail';
import { checkStateFolders, ensureStateFolders } from '../core/state-file';
import { Sandbox, type SandboxMode } from '../core/sandbox';
import { cleanupIsolation, createIsolationPort } from '../orchestrator/isolation-port';
import { Orchestrator } from '../orchestrator/orchestrator';
import { PanicSwitch } from '../orchestrator/panic';
import { RunStore, STATE_DIR_NAME } from '../orchestrator/run-store';
import type { AdapterConfig, ModelEndpoint } from '../workers/cli-adapter';
import { createCodexAdapter } from '../workers/codex';
import type { ProbeResult, StepLimits, WorkerAdapter, WorkerKind } from '../workers/contract';
import { createGeminiAdapter } from '../workers/gemini';
import { WorkerRegistry } from '../workers/registry';

const PANIC_POLL_MS = 1000;

export interface ServicesOptions {
  workspaceRoot: string;
  /** Where the models are: the vendors' APIs (default) or the built-in offline model. */
  endpoint?: ModelEndpoint;
  cliPaths?: Partial<Record<WorkerKind, string>>;
  models?: Partial<Record<WorkerKind, string>>;
  /** Worker processes running at once across all runs (default 4). */
  concurrency?: number;
  limits?: Partial<StepLimits>;
  extraEnvNames?: readonly string[];
  /** The OS sandbox of gemini steps and verification commands: "required", "auto" (default) or "off". */
  sandbox?: SandboxMode;
  /** bubblewrap's path (default: `bwrap` on PATH). */
  bwrapPath?: string;
  /** An untrusted workspace keeps its history readable but starts no worker. Default true. */
  trusted?: boolean;
  /** Replaces the CLI adapters (tests of the layers above use the fake adapter). */
  adapters?: Record<WorkerKind, WorkerAdapter>;
  /**
   * Run start-up recovery (interrupted runs, orphan processes and copies). Default true in a trusted
   * workspace; an untrusted one never gets it (its .tandem/ may have come with the repository).
   */
  recover?: boolean;
  /** Where notices go (stderr for the CLI, the output channel in the editor). */
  log?: (line: string) => void;
}

export interface TandemServices {
  readonly workspaceRoot: string;
  readonly jail: WorkspaceJail;
  readonly store: RunStore;
  readonly panic: PanicSwitch;
  readonly adapters: Record<WorkerKind, WorkerAdapter>;
  readonly workers: WorkerRegistry;
  readonly orchestrator: Orchestrator;
  readonly trusted: boolean;
  readonly sandbox: Sandbox;
  probe(): Promise<ProbeResult[]>;
  /** A caller's folder as a path relative to the workspace root; refuses escapes and Tandem's own state. */
  relativeCwd(requested: string): Promise<string>;
  /** Cancels every run, stops every worker. */
  close(): Promise<void>;
}

export async function openServices(options: ServicesOptions): Promise<TandemServices> {
  const jail = await WorkspaceJail.open(options.workspaceRoot);
  const root = jail.root;
  const store = await RunStore.open(root);
  const panic = await PanicSwitch.open(root);
  const stateDir = path.join(root, STATE_DIR_NAME);
  if (store.problem) options.log?.(`tandem: the run history cannot be read: ${store.problem.message}`);
  // The adapters make their step folders under tmp/: it must be a real folder of ours, not a link out.
  await ensureStateFolders(root, path.join(stateDir, 'tmp'));
  const sandbox = new Sandbox({
    mode: options.sandbox ?? 'auto',
    ...(options.bwrapPath === undefined ? {} : { bwrapPath: options.bwrapPath }),
  });
  const base: AdapterConfig = {
    jail,
    sandbox,
    stateDir: path.join(stateDir, 'tmp'),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.extraEnvNames ? { extraEnvNames: options.extraEnvNames } : {}),
  };
  const adapters: Record<WorkerKind, WorkerAdapter> = options.adapters ?? {
    codex: createCodexAdapter({
      ...base,
      ...(options.cliPaths?.codex ? { binaryPath: options.cliPaths.codex } : {}),
      ...(options.models?.codex ? { defaultModel: options.models.codex } : {}),
    }),
    gemini: createGeminiAdapter({
      ...base,
      ...(options.cliPaths?.gemini ? { binaryPath: options.cliPaths.gemini } : {}),
      ...(options.models?.gemini ? { defaultModel: options.models.gemini } : {}),
    }),
  };
  const workers = new WorkerRegistry((kind) => adapters[kind]);
  const isolationDir = path.join(stateDir, 'isolation');
  // The copies' folders are removed wholesale at recovery: each must be a real folder, never a link out.
  const checkIsolationFolders = async (): Promise<boolean> => {
    if (!(await checkStateFolders(root, isolationDir))) return false;
    for (const area of ['worktrees', 'copies', 'bases', 'repositories']) {
      await checkStateFolders(root, path.join(isolationDir, area));
    }
    return true;
  };
  const orchestrator = new Orchestrator({
    store,
    panic,
    adapters,
    workers,
    isolation: async (runId) => {
      await ensureStateFolders(root, isolationDir);
      await checkIsolationFolders();
      return createIsolationPort(root, isolationDir, runId);
    },
    cleanupIsolation: async (live) =>
      (await checkIsolationFolders()) ? cleanupIsolation(isolationDir, live) : [],
    concurrency: options.concurrency ?? 4,
    sandbox,
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  const trusted = options.trusted ?? true;
  if (options.recover !== false && trusted) {
    await orchestrator.recover();
    // What crashed Tandem servers on this machine left in their step cgroups (daemons included) goes too.
    await sweepDeadServerCgroups();
  } else if (!trusted) {
    options.log?.(
      'tandem: start-up recovery waits until the workspace is trusted (it kills and removes what runs left)',
    );
  }
  // Panic may be engaged by another process on this workspace (the CLI, another server): notice it
  // within a second and cancel what runs here too.
  let cancelling = false;
  const panicWatch = setInterval(() => {
    if (cancelling || orchestrator.runningCount === 0) return;
    void panic
      .reload()
      .then(async (state) => {
        if (!state.engaged || cancelling) return;
        cancelling = true;
        options.log?.(
          `tandem: panic engaged by ${state.engagedBy ?? 'unknown'} (${state.reason ?? 'no reason'}): cancelling every run`,
        );
        await orchestrator.cancelAll(undefined, { atOnce: true }).finally(() => (cancelling = false));
      })
      .catch((error: unknown) => options.log?.(`tandem: panic watch failed: ${(error as Error).message}`));
  }, PANIC_POLL_MS);
  panicWatch.unref();

  return {
    workspaceRoot: root,
    jail,
    store,
    panic,
    adapters,
    workers,
    orchestrator,
    trusted,
    sandbox,
    // The adapters' own probes: the same answer worker_spawn gets (and the fakes' when they replace the CLIs).
    probe: () => Promise.all([adapters.codex.probe(), adapters.gemini.probe()]),
    async relativeCwd(requested: string): Promise<string> {
      const resolved = await jail.resolve(requested);
      const relative = jail.relative(resolved);
      if (relative === STATE_DIR_NAME || relative.startsWith(`${STATE_DIR_NAME}/`)) {
        throw new JailError(
          'OUTSIDE_WORKSPACE',
          requested,
          root,
          `Path "${requested}" is Tandem's own state folder; choose a folder of the project.`,
        );
      }
      return relative;
    },
    async close(): Promise<void> {
      clearInterval(panicWatch);
      await orchestrator.shutdown();
      await workers.stopAll();
    },
  };
}
