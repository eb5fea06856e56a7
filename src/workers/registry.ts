// The worker registry: `spawn` probes a CLI and registers a named worker for it, `list` shows them,
// `runStep` runs one step on a worker, `stop` cancels its in-flight step and retires it. The MCP server
// and the extension both drive workers through this one object.
import { randomUUID } from 'node:crypto';
import { HUMAN_CALLER, assertOwner } from '../core/ownership';
import {
  modelNameSchema,
  type ProbeResult,
  type StepRequestInput,
  type StepResult,
  type StepRunOptions,
  type WorkerAdapter,
  type WorkerKind,
} from './contract';

export type WorkerState = 'idle' | 'busy' | 'stopped';

export interface WorkerInfo {
  id: string;
  kind: WorkerKind;
  model: string;
  /** agentId of whoever spawned it. */
  owner: string;
  state: WorkerState;
  createdAt: string;
  stepsRun: number;
  cliVersion: string | null;
  cliPath: string | null;
}

export type WorkerErrorCode =
  'NOT_INSTALLED' | 'INVALID_MODEL' | 'UNKNOWN_WORKER' | 'WORKER_BUSY' | 'WORKER_STOPPED';

export class WorkerError extends Error {
  constructor(
    readonly code: WorkerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WorkerError';
  }
}

export { HUMAN_CALLER } from '../core/ownership';

interface Entry {
  info: WorkerInfo;
  adapter: WorkerAdapter;
  inFlight: AbortController | undefined;
  running: Promise<StepResult> | undefined;
}

export class WorkerRegistry {
  private readonly workers = new Map<string, Entry>();
  private readonly listeners = new Set<(worker: WorkerInfo) => void>();

  constructor(private readonly adapterFor: (kind: WorkerKind) => WorkerAdapter) {}

  /** Called with a copy of the worker on every change: spawned, busy, idle, stopped (for views). */
  onChange(listener: (worker: WorkerInfo) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(info: WorkerInfo): void {
    for (const listener of this.listeners) {
      try {
        listener({ ...info });
      } catch {
        // a view's failure must not change what the worker does
      }
    }
  }

  /** Probes the CLI and registers a worker; refuses a CLI that is not installed, with the install command. */
  async spawn(options: {
    kind: WorkerKind;
    owner: string;
    model?: string;
  }): Promise<{ worker: WorkerInfo; probe: ProbeResult }> {
    const adapter = this.adapterFor(options.kind);
    if (options.model !== undefined) {
      const check = modelNameSchema.safeParse(options.model);
      if (!check.success) {
        throw new WorkerError(
          'INVALID_MODEL',
          `Invalid model name "${options.model}": ${check.error.issues[0]?.message ?? 'bad format'}.`,
        );
      }
    }
    const probe = await adapter.probe();
    if (!probe.installed) {
      throw new WorkerError(
        'NOT_INSTALLED',
        `The ${options.kind} CLI is not installed${probe.error ? ` (${probe.error})` : ''}. Install it with: ${probe.installHint}`,
      );
    }
    const info: WorkerInfo = {
      id: `${options.kind}-${randomUUID().slice(0, 8)}`,
      kind: options.kind,
      model: options.model ?? adapter.defaultModel,
      owner: options.owner,
      state: 'idle',
      createdAt: new Date().toISOString(),
      stepsRun: 0,
      cliVersion: probe.version,
      cliPath: probe.path,
    };
    this.workers.set(info.id, { info, adapter, inFlight: undefined, running: undefined });
    this.notify(info);
    return { worker: { ...info }, probe };
  }

  list(options: { includeStopped?: boolean } = {}): WorkerInfo[] {
    return [...this.workers.values()]
      .map((entry) => ({ ...entry.info }))
      .filter((info) => options.includeStopped || info.state !== 'stopped');
  }

  get(id: string): WorkerInfo {
    return { ...this.entry(id).info };
  }

  private entry(id: string): Entry {
    const entry = this.workers.get(id);
    if (!entry) {
      throw new WorkerError(
        'UNKNOWN_WORKER',
        `No worker "${id}". List the workers (worker_list) and use one of their ids.`,
      );
    }
    return entry;
  }

  /** Runs one step on the worker; a worker runs one step at a time. */
  async runStep(
    id: string,
    request: Omit<StepRequestInput, 'kind' | 'model'> & { model?: string },
    options: StepRunOptions = {},
  ): Promise<StepResult> {
    const entry = this.entry(id);
    if (entry.info.state === 'stopped')
      throw new WorkerError('WORKER_STOPPED', `Worker ${id} was stopped; spawn a new one.`);
    if (entry.info.state === 'busy') {
      throw new WorkerError(
        'WORKER_BUSY',
        `Worker ${id} is running a step; wait for it or use another worker.`,
      );
    }
    const controller = new AbortController();
    // The caller's reason goes along (panic's asks for SIGKILL at once).
    const forward = (): void => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', forward, { once: true });
    if (options.signal?.aborted) controller.abort(options.signal.reason);
    entry.info.state = 'busy';
    entry.inFlight = controller;
    const running = entry.adapter.runStep(
      { ...request, kind: entry.info.kind, model: request.model ?? entry.info.model },
      { ...options, signal: controller.signal },
    );
    entry.running = running;
    this.notify(entry.info);
    try {
      return await running;
    } finally {
      options.signal?.removeEventListener('abort', forward);
      entry.inFlight = undefined;
      entry.running = undefined;
      entry.info.stepsRun += 1;
      if (entry.info.state === 'busy') entry.info.state = 'idle';
      this.notify(entry.info);
    }
  }

  /** Cancels the worker's in-flight step (its process tree is killed), waits for it, and retires the worker. */
  async stop(id: string, caller: string): Promise<WorkerInfo> {
    const entry = this.entry(id);
    assertOwner({ kind: 'worker', id, owner: entry.info.owner }, caller, 'stop');
    const wasStopped = entry.info.state === 'stopped';
    entry.info.state = 'stopped';
    if (!wasStopped) this.notify(entry.info);
    entry.inFlight?.abort();
    await entry.running?.catch(() => undefined);
    return { ...entry.info };
  }

  /** Stops every worker (shutdown). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.workers.keys()].map((id) => this.stop(id, HUMAN_CALLER)));
  }
}
