// The orchestrator: starts runs (a dispatch to one worker, or one of the five strategies), returns their
// id at once and carries them out in the background through the dispatch queue, recording every step,
// event and decision in the run store. Writers always work in isolated copies; a change reaches the
// workspace only through a recorded decision.
import path from 'node:path';
import { KillAtOnce, bootId, findGroup, identify, isSameProcessAlive, signalTree } from '../core/exec';
import { assertOwner } from '../core/ownership';
import { Sandbox } from '../core/sandbox';
import {
  parseStepRequest,
  type Role,
  type StepLimits,
  type StepResult,
  type WorkerAdapter,
  type WorkerEvent,
  type WorkerKind,
} from '../workers/contract';
import { notStartedResult } from '../workers/cli-adapter';
import type { WorkerRegistry } from '../workers/registry';
import { WorkerError } from '../workers/registry';
import {
  changeRecordSchema,
  diffStatLine,
  isFinished,
  runWhat,
  stepRecordSchema,
  type RunEvent,
  type RunRecord,
  type RunStatus,
  type Severity,
  type StepRecord,
  type StrategyName,
} from './model';
import type { PanicSwitch } from './panic';
import { TRACE_FILE, runPlaybook, type PlaybookRunInput } from './playbook/engine';
import { builtinPlaybook } from './playbook/library';
import { backoffWait, nextMove } from './playbook/policy';
import { resolveInputs, type Resilience, type Step } from './playbook/schema';
import { parseReview, writerPrompt } from './prompts';
import type { CapturedChange, IsolatedCopy, Isolation } from './isolation';
import { DispatchQueue } from './queue';
import { steeringFiles } from './steering-files';
import type { RunStore } from './run-store';
import { SUMMARY_SCHEMA_VERSION, renderSummaryMarkdown, type ChangeRecord, type RunSummary } from './summary';

const STEPS_FILE = 'steps.json';
const CHANGES_FILE = 'changes.json';

/** How a run gets isolated copies of the workspace and applies a chosen change back. */
export type IsolationPort = Pick<Isolation, 'createCopy' | 'applyChange' | 'dispose'>;

export type ApplyPolicy = 'if_approved' | 'always' | 'never';

export interface OrchestratorOptions {
  store: RunStore;
  panic: PanicSwitch;
  adapters: Record<WorkerKind, WorkerAdapter>;
  workers: WorkerRegistry;
  /** Fresh per run (labelled with the run id): the base state is taken when the run starts. */
  isolation: (runId: string) => Promise<IsolationPort>;
  /** Removes isolated copies no live run owns (start-up recovery). */
  cleanupIsolation?: (liveRunIds: string[]) => Promise<string[]>;
  concurrency: number;
  limits?: Partial<StepLimits>;
  /** The OS sandbox of verification commands (default: mode "auto"). */
  sandbox?: Sandbox;
  /** Where notices go (recovery problems). */
  log?: (line: string) => void;
}

export type OrchestratorErrorCode = 'PANIC_ENGAGED' | 'RUN_FINISHED' | 'RUN_ELSEWHERE';

export class OrchestratorError extends Error {
  constructor(
    readonly code: OrchestratorErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OrchestratorError';
  }
}

export interface DispatchInput {
  owner: string;
  workerId: string;
  prompt: string;
  role: Role;
  apply?: ApplyPolicy;
  /** Folder to work in, relative to the workspace root (already checked against the jail). */
  cwd?: string;
  /**
   * Retries under the failure table (src/orchestrator/playbook/policy.ts): a rate limit is retried on the same
   * worker with doubling backoff. A dispatch names its worker, so it never goes to the other CLI.
   */
  resilience?: Pick<Resilience, 'retries' | 'backoffMs'>;
}

export interface StrategyOptions {
  /** The writer for single_worker and security_redteam_pass (default codex). */
  writer?: WorkerKind;
  /** When a change reaches the workspace (default: if the review approves). */
  apply?: ApplyPolicy;
  /** security_redteam_pass: a finding this severe or worse blocks the change (default high). */
  blockAt?: Severity;
  models?: Partial<Record<WorkerKind, string>>;
  /** Folder to work in, relative to the workspace root (already checked against the jail). */
  cwd?: string;
  /** Let a worker step that still fails after its retries go to the other CLI (once). */
  fallback?: boolean;
}

export interface StrategyInput extends StrategyOptions {
  owner: string;
  strategy: StrategyName;
  prompt: string;
}

/** What a run's body decides; the orchestrator records it and writes the summary. */
export interface RunOutcome {
  status: RunStatus;
  outcome: string;
  decision: string | null;
  applied: boolean;
}

interface LiveRun {
  controller: AbortController;
  done: Promise<void>;
  /** Set once the run's body starts. */
  context?: RunContext;
}

/** A step being carried out now, for views of what works right now. */
export interface ActiveStep {
  runId: string;
  owner: string;
  step: StepRecord;
}

/** The handle a strategy body uses to run steps and record changes in its run. */
export class RunContext {
  readonly steps: StepRecord[] = [];
  readonly changes: ChangeRecord[] = [];

  constructor(
    readonly run: RunRecord,
    readonly signal: AbortSignal,
    private readonly orchestrator: Orchestrator,
    readonly isolation: IsolationPort,
  ) {}

  get store(): RunStore {
    return this.orchestrator.store;
  }

  /** A progress event that could not be written (disk full): the step goes on, the record says less. */
  private readonly lostEvent = (): void => undefined;

  get limits(): Partial<StepLimits> {
    return this.orchestrator.limits;
  }

  get sandbox(): Sandbox {
    return this.orchestrator.sandbox;
  }

  adapter(kind: WorkerKind): WorkerAdapter {
    return this.orchestrator.adapters[kind];
  }

  /** Runs one CLI step through the dispatch queue and records it; never throws for the CLI's failures. */
  async step(options: {
    name: string;
    role: Role;
    kind: WorkerKind;
    prompt: string;
    cwd: string;
    model?: string;
    workerId?: string;
  }): Promise<{ result: StepResult; record: StepRecord }> {
    const index = this.steps.length + 1;
    const adapter = this.adapter(options.kind);
    const record: StepRecord = {
      index,
      name: options.name,
      role: options.role,
      workerKind: options.kind,
      workerId: options.workerId ?? null,
      model: options.model ?? adapter.defaultModel,
      status: 'running',
      startedAt: new Date().toISOString(),
      endedAt: null,
      durationMs: null,
      exitCode: null,
      signal: null,
      timedOut: false,
      argv: [],
      finalMessage: '',
      errorMessage: null,
      tokens: null,
      diffStats: null,
      filesChanged: [],
      verdict: null,
      findings: [],
      logDir: this.store.stepLogDir(this.run.id, index, options.name),
    };
    this.steps.push(record);
    await this.store.update(this.run.id, { stepCount: this.steps.length });
    await this.store.appendEvent(this.run.id, {
      type: 'step_started',
      step: index,
      message: `${options.name}: ${options.kind} as ${options.role} is queued.`,
      data: { name: options.name, role: options.role, kind: options.kind },
    });
    await this.saveSteps();
    this.orchestrator.stepChanged(this.run.id, record);
    // Made (and checked) here, through the run store: the worker's log files then land in a real folder.
    await this.store.ensureStepLogDir(this.run.id, index, options.name);
    const request = {
      kind: options.kind,
      role: options.role,
      cwd: options.cwd,
      prompt: options.prompt,
      limits: this.limits,
      ...(options.model === undefined ? {} : { model: options.model }),
    };
    // pid and start time let a restarted server kill the worker if this one dies. Read and queued for the
    // disk in the same tick as the spawn; the step is not finished before the write is, and a worker whose
    // record cannot be written is stopped, since nothing could find it after a crash.
    let identityWritten: Promise<void> = Promise.resolve();
    let identityLost: Error | undefined;
    const unrecorded = new AbortController();
    const stepOptions = {
      signal: AbortSignal.any([this.signal, unrecorded.signal]),
      logDir: record.logDir as string,
      onEvent: (event: WorkerEvent) => {
        if (event.type === 'started') {
          record.argv = event.argv;
          const startTime = event.pid === undefined ? null : (identify(event.pid).startTime ?? null);
          identityWritten = this.store
            .appendEvent(this.run.id, {
              type: 'step_progress',
              step: index,
              message: `${options.name}: ${options.kind} started${event.pid ? ` (pid ${event.pid})` : ''}.`,
              data: { pid: event.pid ?? null, startTime, bootId: bootId() ?? null },
            })
            .then(
              () => undefined,
              (error: unknown) => {
                identityLost = error instanceof Error ? error : new Error(String(error));
                unrecorded.abort();
              },
            );
        } else if (event.type === 'command' || event.type === 'tool' || event.type === 'error') {
          const text =
            event.type === 'command'
              ? `ran ${event.command} (${event.status})`
              : event.type === 'tool'
                ? `tool ${event.name}: ${event.status}`
                : `error: ${event.message}`;
          void this.store
            .appendEvent(this.run.id, {
              type: 'step_progress',
              step: index,
              message: `${options.name}: ${text}`,
            })
            .catch(this.lostEvent);
        }
      },
    };
    let result: StepResult;
    try {
      result = await this.orchestrator.queue.run(async () => {
        if (options.workerId !== undefined) {
          return this.orchestrator.workers.runStep(options.workerId, request, stepOptions);
        }
        return adapter.runStep(parseStepRequest(request, options.kind), stepOptions);
      }, this.signal);
    } catch (error) {
      if (!this.signal.aborted) throw error;
      result = notStartedResult(
        options.kind,
        options.role,
        record.model,
        'cancelled',
        'The run was cancelled before this step started.',
      );
    }
    await identityWritten;
    if (identityLost && !this.signal.aborted) {
      result = {
        ...result,
        status: 'failed',
        errorMessage: `Stopped: its process could not be recorded for crash recovery (${identityLost.message}).`,
      };
    }
    Object.assign(record, {
      status: result.status,
      endedAt: new Date().toISOString(),
      durationMs: result.durationMs,
      exitCode: result.exitCode,
      signal: result.signal,
      timedOut: result.timedOut,
      argv: result.argv.length > 0 ? result.argv : record.argv,
      finalMessage: result.finalMessage.slice(0, 64 * 1024),
      errorMessage: result.errorMessage ?? null,
      tokens: result.usage?.totalTokens ?? null,
      model: result.model,
    } satisfies Partial<StepRecord>);
    if (options.role !== 'writer') {
      const review = parseReview(result.finalMessage);
      record.verdict = result.status === 'succeeded' ? review.verdict : null;
      record.findings = review.findings;
    }
    await this.store.appendEvent(this.run.id, {
      type: 'step_finished',
      step: index,
      message: `${options.name}: ${options.kind} ${result.status}${result.errorMessage ? ` — ${result.errorMessage}` : ''}.`,
      data: {
        status: result.status,
        durationMs: result.durationMs,
        exitCode: result.exitCode,
        verdict: record.verdict,
        findings: record.findings.length,
      },
    });
    await this.saveSteps();
    this.orchestrator.stepChanged(this.run.id, record);
    return { result, record };
  }

  /** Records a writer's captured change, saving its patch in the run folder. */
  async recordChange(
    label: string,
    change: CapturedChange,
    step: StepRecord | undefined,
  ): Promise<ChangeRecord> {
    const patchFile = change.patch === '' ? null : `changes-${label.replace(/[^A-Za-z0-9_-]/g, '_')}.patch`;
    if (patchFile) await this.store.writeRunFile(this.run.id, patchFile, change.patch);
    const record: ChangeRecord = {
      label,
      stats: change.stats,
      files: change.files.map(({ path, change: kind, insertions, deletions }) => ({
        path,
        change: kind,
        insertions,
        deletions,
      })),
      steeringFiles: steeringFiles(change.files.map((file) => file.path)),
      patchFile,
      patchTruncated: change.patchTruncated,
      applied: false,
    };
    this.changes.push(record);
    await this.saveChanges();
    if (step) {
      step.diffStats = change.stats;
      step.filesChanged = change.files.map(({ path, change: kind }) => ({ path, change: kind }));
      await this.saveSteps();
    }
    return record;
  }

  async apply(change: CapturedChange, record: ChangeRecord): Promise<void> {
    await this.isolation.applyChange(change);
    record.applied = true;
    // The change is in the workspace now: a record that cannot be written must not make it look unapplied.
    await this.saveChanges().catch(() => undefined);
  }

  async decide(message: string, data?: Record<string, unknown>): Promise<void> {
    await this.store.appendEvent(this.run.id, { type: 'decision', message, ...(data ? { data } : {}) });
  }

  async saveSteps(): Promise<void> {
    await this.persist(STEPS_FILE, () => this.steps);
  }

  /** changes.json: what start-up recovery summarises if the server dies before the run ends. */
  async saveChanges(): Promise<void> {
    await this.persist(CHANGES_FILE, () => this.changes);
  }

  private writes: Promise<unknown> = Promise.resolve();

  /**
   * Parallel branches save at once: the writes are chained and each takes its snapshot when its turn comes,
   * so an older snapshot can never land after a newer one.
   */
  private persist(name: string, value: () => unknown): Promise<void> {
    const write = this.writes.then(async () => {
      await this.store.writeRunFile(this.run.id, name, JSON.stringify(value(), null, 2) + '\n');
    });
    this.writes = write.catch(() => undefined);
    return write;
  }
}

export class Orchestrator {
  readonly store: RunStore;
  readonly adapters: Record<WorkerKind, WorkerAdapter>;
  readonly workers: WorkerRegistry;
  readonly queue: DispatchQueue;
  readonly limits: Partial<StepLimits>;
  readonly sandbox: Sandbox;
  private readonly panic: PanicSwitch;
  private readonly isolation: (runId: string) => Promise<IsolationPort>;
  private readonly cleanupIsolation: ((liveRunIds: string[]) => Promise<string[]>) | undefined;
  private readonly live = new Map<string, LiveRun>();
  private readonly listeners = new Set<(run: RunRecord) => void>();
  private readonly log: ((line: string) => void) | undefined;
  private readonly stepListeners = new Set<(runId: string, step: StepRecord) => void>();

  constructor(options: OrchestratorOptions) {
    this.store = options.store;
    this.panic = options.panic;
    this.adapters = options.adapters;
    this.workers = options.workers;
    this.isolation = options.isolation;
    this.cleanupIsolation = options.cleanupIsolation;
    this.queue = new DispatchQueue(options.concurrency);
    this.limits = options.limits ?? {};
    this.sandbox = options.sandbox ?? new Sandbox();
    this.log = options.log;
  }

  /** Called with the run record on every status change (for views and status bars). */
  onRunChange(listener: (run: RunRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called when a step starts or ends (for views; a listener's failure is ignored). */
  onStepChange(listener: (runId: string, step: StepRecord) => void): () => void {
    this.stepListeners.add(listener);
    return () => this.stepListeners.delete(listener);
  }

  /** @internal Told by a run's context. */
  stepChanged(runId: string, step: StepRecord): void {
    for (const listener of this.stepListeners) {
      try {
        listener(runId, { ...step });
      } catch {
        // a view's failure must not change the run
      }
    }
  }

  /** The steps running now in this server's runs, oldest run first. */
  activeSteps(): ActiveStep[] {
    const active: ActiveStep[] = [];
    for (const [runId, live] of this.live) {
      for (const step of live.context?.steps ?? []) {
        if (step.status === 'running')
          active.push({ runId, owner: live.context?.run.owner ?? '', step: { ...step } });
      }
    }
    return active;
  }

  get runningCount(): number {
    return this.live.size;
  }

  private async refuseWhenPanicking(): Promise<void> {
    const state = await this.panic.reload();
    if (state.engaged) {
      throw new OrchestratorError(
        'PANIC_ENGAGED',
        `Panic is engaged (by ${state.engagedBy ?? 'unknown'}: ${state.reason ?? 'no reason given'}); no new work starts until a human releases it.`,
      );
    }
  }

  async startStrategy(input: StrategyInput): Promise<RunRecord> {
    await this.refuseWhenPanicking();
    // A strategy is its built-in playbook run by the engine; the record keeps the strategy's name.
    const loaded = builtinPlaybook(input.strategy);
    if (!loaded) throw new Error(`No built-in playbook carries out the strategy ${input.strategy}.`);
    const inputs = resolveInputs(loaded.playbook, strategyInputs(input), loaded.source);
    const run = await this.store.create({
      kind: 'strategy',
      strategy: input.strategy,
      playbook: { name: loaded.playbook.name, hash: loaded.hash, source: loaded.source },
      owner: input.owner,
      prompt: input.prompt,
      workers: strategyWorkers(input),
    });
    const playbookInput: PlaybookRunInput = {
      owner: input.owner,
      task: input.prompt,
      playbook: loaded.playbook,
      source: loaded.source,
      hash: loaded.hash,
      inputs,
      ...(input.apply ? { apply: input.apply } : {}),
      ...(input.models ? { models: input.models } : {}),
      ...(input.cwd ? { cwd: input.cwd } : {}),
      ...(input.fallback ? { resilience: { fallback: true } } : {}),
    };
    this.launch(run, (context) => runPlaybook(context, playbookInput), inputs);
    return run;
  }

  /** Starts a checked playbook (see playbook/library.ts for loading one and schema.ts for its inputs). */
  async startPlaybook(input: PlaybookRunInput): Promise<RunRecord> {
    await this.refuseWhenPanicking();
    const run = await this.store.create({
      kind: 'playbook',
      strategy: null,
      playbook: { name: input.playbook.name, hash: input.hash, source: input.source },
      owner: input.owner,
      prompt: input.task,
      workers: playbookWorkers(input),
    });
    this.launch(run, (context) => runPlaybook(context, input), input.inputs);
    return run;
  }

  async dispatch(input: DispatchInput): Promise<RunRecord> {
    await this.refuseWhenPanicking();
    const worker = this.workers.get(input.workerId);
    // Refused before a run is recorded, like a stopped worker below: the run would only fail its one step.
    assertOwner({ kind: 'worker', id: worker.id, owner: worker.owner }, input.owner, 'dispatch a task to');
    // A stopped worker would only fail the run's one step.
    if (worker.state === 'stopped') {
      throw new WorkerError('WORKER_STOPPED', `Worker ${worker.id} was stopped; spawn a new one.`);
    }
    const run = await this.store.create({
      kind: 'dispatch',
      strategy: null,
      owner: input.owner,
      prompt: input.prompt,
      workers: [worker.id],
    });
    this.launch(run, (context) => dispatchBody(context, input, worker.kind));
    return run;
  }

  private launch(
    run: RunRecord,
    body: (context: RunContext) => Promise<RunOutcome>,
    playbookInputs?: Record<string, unknown>,
  ): void {
    const controller = new AbortController();
    const live: LiveRun = { controller, done: Promise.resolve() };
    // The run leaves the live set before listeners hear it finished, so a count they read is already right.
    live.done = this.execute(run, controller, body, live, playbookInputs).then(
      (finished) => {
        this.live.delete(run.id);
        this.notify(finished);
      },
      (error: unknown) => {
        this.live.delete(run.id);
        throw error;
      },
    );
    this.live.set(run.id, live);
  }

  private async execute(
    run: RunRecord,
    controller: AbortController,
    body: (context: RunContext) => Promise<RunOutcome>,
    live: LiveRun,
    playbookInputs: Record<string, unknown> | undefined,
  ): Promise<RunRecord> {
    let context: RunContext | undefined;
    let isolation: IsolationPort | undefined;
    let outcome: RunOutcome;
    try {
      const started = await this.store.update(run.id, {
        status: 'running',
        startedAt: new Date().toISOString(),
      });
      this.notify(started);
      await this.store.appendEvent(run.id, {
        type: 'run_started',
        message: `Run started (${runWhat(run)}).`,
      });
      isolation = await this.isolation(run.id);
      context = new RunContext(started, controller.signal, this, isolation);
      live.context = context;
      outcome = await body(context);
      if (controller.signal.aborted && outcome.status !== 'cancelled') {
        outcome = { ...outcome, status: 'cancelled', outcome: `Cancelled. ${outcome.outcome}` };
      }
    } catch (error) {
      outcome = controller.signal.aborted
        ? { status: 'cancelled', outcome: 'Cancelled.', decision: null, applied: false }
        : {
            status: 'failed',
            outcome: `Tandem failed: ${(error as Error).message}`,
            decision: null,
            applied: false,
          };
    }
    await isolation?.dispose().catch(() => undefined);
    const finished = await this.store.update(run.id, {
      status: outcome.status,
      endedAt: new Date().toISOString(),
      outcome: outcome.outcome,
      decision: outcome.decision,
      applied: outcome.applied,
      stepCount: context?.steps.length ?? 0,
    });
    await this.writeSummary(finished, context?.steps ?? [], context?.changes ?? [], playbookInputs ?? null);
    await this.store.appendEvent(run.id, {
      type: 'run_finished',
      message: `Run ${outcome.status}: ${outcome.outcome}`,
      data: { status: outcome.status, applied: outcome.applied },
    });
    return finished;
  }

  /** summary.json and summary.md; written before run_finished, so whoever sees that event can read them. */
  private async writeSummary(
    run: RunRecord,
    steps: StepRecord[],
    changes: ChangeRecord[],
    playbookInputs: Record<string, unknown> | null,
  ): Promise<void> {
    const summary: RunSummary = {
      schemaVersion: SUMMARY_SCHEMA_VERSION,
      run,
      steps,
      changes,
      decisions: await this.decisionsOf(run.id),
      playbookInputs,
      warnings: await this.warningsOf(),
    };
    await this.store.writeRunFile(run.id, 'summary.json', JSON.stringify(summary, null, 2) + '\n');
    await this.store.writeRunFile(run.id, 'summary.md', renderSummaryMarkdown(summary));
  }

  /** What a reader of a run's summary must know about how it ran: steps that ran without the OS sandbox. */
  private async warningsOf(): Promise<string[]> {
    const warning = await this.sandbox
      .warning()
      .catch((error: unknown) => `The sandbox probe failed: ${(error as Error).message}`);
    return warning === null ? [] : [warning];
  }

  /** The decision events of a run, for its summary (a run has few; the cap only guards a runaway loop). */
  private async decisionsOf(runId: string): Promise<{ time: string; message: string }[]> {
    const events = await this.store.readEvents(runId, 0, 5000).catch(() => []);
    return events
      .filter((event) => event.type === 'decision')
      .slice(0, 500)
      .map((event) => ({ time: event.time, message: event.message }));
  }

  private notify(run: RunRecord): void {
    for (const listener of this.listeners) {
      try {
        listener(run);
      } catch {
        // a view's failure must not change the run
      }
    }
  }

  /** Cancels a run and kills its processes; only its owner or the human user may. */
  async cancel(runId: string, caller: string): Promise<RunRecord> {
    // A run of this server is known in memory: cancelling it waits on no read of the index.
    if (!this.live.has(runId)) await this.store.refresh();
    const run = this.store.get(runId);
    assertOwner({ kind: 'run', id: runId, owner: run.owner }, caller, 'cancel');
    const live = this.live.get(runId);
    if (!live) {
      if (isFinished(run.status)) {
        throw new OrchestratorError(
          'RUN_FINISHED',
          `Run ${runId} already ended (${run.status}); there is nothing to cancel.`,
        );
      }
      throw new OrchestratorError(
        'RUN_ELSEWHERE',
        `Run ${runId} is carried out by another Tandem server on this workspace (pid ${run.host.pid}); cancel it there, or engage panic to stop every run.`,
      );
    }
    live.controller.abort();
    await live.done;
    return this.store.get(runId);
  }

  /**
   * Panic: cancels everything in flight, whoever owns it. Every run is aborted before the first await; then
   * waits for them to record their end, at most `waitMs`. Resolves with how many were cancelled.
   */
  /** `atOnce` (panic): every worker gets SIGKILL at once, without the grace period SIGTERM gives. */
  async cancelAll(waitMs = Number.POSITIVE_INFINITY, options: { atOnce?: boolean } = {}): Promise<number> {
    const runs = [...this.live.values()];
    const reason = options.atOnce ? new KillAtOnce('panic') : undefined;
    for (const run of runs) run.controller.abort(reason);
    const ended = Promise.allSettled(runs.map((run) => run.done));
    if (!Number.isFinite(waitMs)) await ended;
    else {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ended, new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
      clearTimeout(timer);
    }
    return runs.length;
  }

  /** Resolves when the run has finished (for the CLI's `run` and for tests). */
  async finished(runId: string): Promise<RunRecord> {
    await this.live.get(runId)?.done;
    return this.store.get(runId);
  }

  /**
   * Start-up recovery: runs left unfinished by a server that is gone become `interrupted` with a summary,
   * and any step process they recorded that is still alive (same pid and start time) is killed with its
   * group; when it has exited, the members its group still has are (see endOrphanedGroup). A pid recorded
   * without a start time is left alone: it cannot be proven to be ours.
   */
  async recover(): Promise<RunRecord[]> {
    const recovered: RunRecord[] = [];
    for (const run of this.store.unfinished()) {
      if (this.live.has(run.id)) continue;
      try {
        const updated = await this.recoverRun(run);
        if (updated) recovered.push(updated);
      } catch (error) {
        // One damaged run must not keep the server from starting; it stays as it is, and says why.
        this.log?.(`recovery of ${run.id} failed: ${(error as Error).message}`);
      }
    }
    const live = [...this.store.unfinished().map((run) => run.id), ...this.live.keys()];
    await this.cleanupIsolation?.(live);
    return recovered;
  }

  private async recoverRun(run: RunRecord): Promise<RunRecord | undefined> {
    // Alive owners include this very process (another services object on the same workspace).
    // A host recorded in another boot is gone whatever now has its pid.
    const otherBoot = typeof run.host.bootId === 'string' && run.host.bootId !== bootId();
    const ownerAlive =
      !otherBoot &&
      isSameProcessAlive({
        pid: run.host.pid,
        startTime: run.host.startTime ?? undefined,
      });
    if (ownerAlive) return undefined;
    // All of them: a long run's later steps, whose processes are the likeliest to be alive, come last.
    const events = await this.store.readEvents(run.id, 0, Number.POSITIVE_INFINITY);
    const fates = new Map<number, LeftoverFate>();
    let killed = 0;
    let spared = 0;
    for (const event of events) {
      const pid = event.data?.pid;
      if (event.type !== 'step_progress' || typeof pid !== 'number') continue;
      const fate = endLeftover(pid, event.data?.startTime, event.data?.bootId);
      if (fate === 'killed') killed += 1;
      if (fate === 'spared') spared += 1;
      if (event.step !== undefined) fates.set(event.step, fate);
    }
    const steps = await this.recordedSteps(run.id);
    for (const step of steps) {
      if (step.status === 'running') step.errorMessage ??= interruptedStepMessage(fates.get(step.index));
    }
    const changes = await this.recordedChanges(run.id);
    // A dispatch's one decision is its apply decision; a playbook marks its apply decisions in their data.
    const applyDecisions = events.filter(
      (event) => event.type === 'decision' && (run.kind === 'dispatch' || event.data?.apply !== undefined),
    );
    const applied =
      run.applied ||
      changes.some((change) => change.applied) ||
      applyDecisions.some((event) => event.data?.applied === true);
    const outcome = `Interrupted: the server running it (pid ${run.host.pid}) stopped before it finished${killed ? `; ${killed} leftover process group(s) killed` : ''}${spared ? `; ${spared} recorded pid(s) left alone (not provably the step's process: reused, or no start time recorded)` : ''}.`;
    const updated = await this.store.update(run.id, {
      status: 'interrupted',
      endedAt: new Date().toISOString(),
      outcome,
      stepCount: Math.max(run.stepCount, steps.length),
      decision: run.decision ?? applyDecisionText(applyDecisions),
      applied,
    });
    await this.writeSummary(updated, steps, changes, await this.recordedInputs(updated));
    await this.store.appendEvent(run.id, {
      type: 'run_finished',
      message: outcome,
      data: { status: 'interrupted', killed, spared },
    });
    return updated;
  }

  /** steps.json as the dead server last wrote it; a record that does not read is left out. */
  private async recordedSteps(runId: string): Promise<StepRecord[]> {
    return recordedList(await this.store.readRunFile(runId, STEPS_FILE), (item) => {
      const parsed = stepRecordSchema.safeParse(item);
      return parsed.success ? parsed.data : undefined;
    });
  }

  private async recordedChanges(runId: string): Promise<ChangeRecord[]> {
    return recordedList(await this.store.readRunFile(runId, CHANGES_FILE), (item) => {
      const parsed = changeRecordSchema.safeParse(item);
      return parsed.success ? parsed.data : undefined;
    });
  }

  /** The inputs a playbook ran with, from its trace (written as it goes); null for dispatches. */
  private async recordedInputs(run: RunRecord): Promise<Record<string, unknown> | null> {
    if (run.kind === 'dispatch') return null;
    try {
      const trace = JSON.parse((await this.store.readRunFile(run.id, TRACE_FILE)) ?? 'null') as unknown;
      const inputs = (trace as { inputs?: unknown } | null)?.inputs;
      return typeof inputs === 'object' && inputs !== null && !Array.isArray(inputs)
        ? (inputs as Record<string, unknown>)
        : null;
    } catch {
      return null;
    }
  }

  /** Cancels everything and waits: for deactivate and server shutdown. */
  async shutdown(): Promise<void> {
    await this.cancelAll();
  }
}

/** What start-up recovery did with a step process a dead server recorded. */
type LeftoverFate = 'killed' | 'gone' | 'spared';

/**
 * Kills a recorded step process with its group when it is provably still that process: alive under the same
 * pid and start time. A pid alone proves nothing (the kernel reuses them), so a live pid whose start time
 * differs, or was never recorded, is left alone. When the leader has exited, what is left of its group
 * (grandchildren keep the group id) is killed member by member: only those that started no earlier than the
 * recorded leader, as older members cannot be of its making.
 */
function endLeftover(pid: number, startTime: unknown, recordedBoot: unknown): LeftoverFate {
  // 0 and 1 as process groups mean "our group" and "every process": never a worker's group.
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return 'spared';
  const pidAlive = isSameProcessAlive({ pid, startTime: undefined });
  // .tandem/ may come with the repository: only a record Tandem made in this boot of this machine (its boot
  // id, a real start time) can name a process to kill. Anything else is left alone.
  if (!recordedThisBoot(startTime, recordedBoot)) {
    return pidAlive || findGroup(pid).length > 0 ? 'spared' : 'gone';
  }
  if (!pidAlive) return endOrphanedGroup(pid, startTime);
  // Compared here, not by isSameProcessAlive: where /proc is absent that one cannot tell start times apart.
  const now = identify(pid).startTime;
  if (typeof startTime !== 'string' || now === undefined || now !== startTime) return 'spared';
  if (!isSameProcessAlive({ pid, startTime })) return endOrphanedGroup(pid, startTime);
  signalTree(pid, [{ pid, startTime }], 'SIGKILL');
  return 'killed';
}

/** True for a record with this boot's id and a start time after boot (never a missing or zero one). */
function recordedThisBoot(startTime: unknown, recordedBoot: unknown): boolean {
  const current = bootId();
  const ticks = clockTicks(startTime);
  return current !== undefined && recordedBoot === current && ticks !== undefined && ticks > 0n;
}

/** Rounds of /proc scans: a member may fork between a scan and its kill; the next scan finds the child. */
const ORPHAN_SCAN_ROUNDS = 5;

/**
 * The recorded leader is gone: kills the members of its process group that started at or after it, each by
 * pid and start time. Not kill(-pgid), which would also reach the members this rule spares. Linux only
 * (/proc); elsewhere a group without its leader is out of sight and counts as gone.
 */
function endOrphanedGroup(pgid: number, startTime: unknown): LeftoverFate {
  const leaderStart = clockTicks(startTime);
  const killed = new Set<number>();
  let spared = 0;
  for (let round = 0; round < ORPHAN_SCAN_ROUNDS; round++) {
    const members = findGroup(pgid).filter((member) => member.pid !== process.pid);
    const ours = members.filter((member) => {
      const memberStart = clockTicks(member.startTime);
      return leaderStart !== undefined && memberStart !== undefined && memberStart >= leaderStart;
    });
    spared = members.length - ours.length;
    // Just killed, a member may still be listed until the kernel has torn it down.
    const fresh = ours.filter((member) => !killed.has(member.pid));
    if (fresh.length === 0) break;
    signalTree(undefined, fresh, 'SIGKILL');
    for (const member of fresh) killed.add(member.pid);
  }
  if (killed.size > 0) return 'killed';
  return spared > 0 ? 'spared' : 'gone';
}

/** A /proc start time (clock ticks since boot) as a number to compare; undefined when there is none. */
function clockTicks(startTime: unknown): bigint | undefined {
  return typeof startTime === 'string' && /^\d+$/.test(startTime) ? BigInt(startTime) : undefined;
}

function interruptedStepMessage(fate: LeftoverFate | undefined): string {
  const what =
    fate === 'killed'
      ? 'its leftover process group was killed at the next start'
      : fate === 'spared'
        ? 'its recorded pid was left alone at the next start, as it could not be proven to be this step'
        : fate === 'gone'
          ? 'its process had already ended'
          : 'it had not started a process';
  return `Interrupted: the server stopped while this step ran; ${what}.`;
}

function applyDecisionText(decisions: RunEvent[]): string | null {
  return decisions.length > 0 ? decisions.map((event) => event.message).join(' ') : null;
}

/** The items of a JSON array file that read as records; a damaged file gives none. */
function recordedList<T>(text: string | undefined, read: (item: unknown) => T | undefined): T[] {
  if (text === undefined) return [];
  let items: unknown;
  try {
    items = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(items)) return [];
  return items.map(read).filter((item): item is T => item !== undefined);
}

/** The CLIs a playbook may use, as far as its steps and inputs tell before it runs. */
function playbookWorkers(input: PlaybookRunInput): string[] {
  const kinds = new Set<string>();
  const visit = (steps: readonly Step[]): void => {
    for (const step of steps) {
      if ('worker' in step) {
        const ref = step.worker;
        if (typeof ref === 'string') kinds.add(ref);
        else if ('input' in ref) kinds.add(String(input.inputs[ref.input]));
        else if ('otherThanInput' in ref)
          kinds.add(input.inputs[ref.otherThanInput] === 'codex' ? 'gemini' : 'codex');
        else {
          kinds.add('codex');
          kinds.add('gemini');
        }
      }
      if (step.type === 'parallel') step.branches.forEach(visit);
      else if (step.type === 'loop') visit(step.steps);
      else if (step.type === 'if') {
        visit(step.then);
        if (step.else) visit(step.else);
      }
    }
  };
  visit(input.playbook.steps);
  return ['codex', 'gemini'].filter((kind) => kinds.has(kind));
}

/** The strategy's options as its playbook's inputs (the writer only where the strategy lets one choose). */
function strategyInputs(input: StrategyInput): Record<string, unknown> {
  const writer = input.writer ? { writer: input.writer } : {};
  switch (input.strategy) {
    case 'single_worker':
      return writer;
    case 'security_redteam_pass':
      return { ...writer, ...(input.blockAt ? { block_at: input.blockAt } : {}) };
    default:
      return {};
  }
}

function strategyWorkers(input: StrategyInput): string[] {
  const writer = input.writer ?? 'codex';
  const other: WorkerKind = writer === 'codex' ? 'gemini' : 'codex';
  switch (input.strategy) {
    case 'single_worker':
      return [writer];
    case 'codex_writes_gemini_reviews':
      return ['codex', 'gemini'];
    case 'gemini_writes_codex_reviews':
      return ['gemini', 'codex'];
    case 'parallel_dual_write_review':
      return ['codex', 'gemini'];
    case 'security_redteam_pass':
      return [writer, other];
  }
}

/** task_dispatch: one step on a registered worker; a writer's change is applied per the apply policy. */
/**
 * One dispatch step under the failure table: while the attempt's class is retried (a rate limit, by default
 * twice), it waits the backoff and runs again as `NAME-retryN`, each attempt a step record of its own.
 */
async function dispatchStep(
  context: RunContext,
  input: DispatchInput,
  attempt: (name: string) => Promise<Parameters<RunContext['step']>[0]>,
): Promise<{ result: StepResult; record: StepRecord }> {
  const policy: Resilience = { ...input.resilience, fallback: false };
  const base = input.role === 'writer' ? 'write' : input.role;
  for (let retriesDone = 0; ; retriesDone++) {
    const name = retriesDone === 0 ? base : `${base}-retry${retriesDone}`;
    const { result, record } = await context.step(await attempt(name));
    if (result.status === 'succeeded' || context.signal.aborted) return { result, record };
    const next = nextMove(result.status, policy, { retriesDone, fellBack: false });
    if (next.move !== 'retry') return { result, record };
    await context.decide(`${name}: ${record.workerKind} ${result.status}; retrying in ${next.waitMs} ms.`);
    if (await backoffWait(next.waitMs, context.signal)) return { result, record };
  }
}

async function dispatchBody(
  context: RunContext,
  input: DispatchInput,
  kind: WorkerKind,
): Promise<RunOutcome> {
  const worker = input.workerId;
  const failed = (result: StepResult): RunOutcome => ({
    status: result.status === 'cancelled' || context.signal.aborted ? 'cancelled' : 'failed',
    outcome: `${kind} ${result.status}: ${result.errorMessage ?? 'no detail'}`,
    decision: null,
    applied: false,
  });
  if (input.role !== 'writer') {
    const { result } = await dispatchStep(context, input, async (name) => ({
      name,
      role: input.role,
      kind,
      prompt: input.prompt,
      cwd: input.cwd ?? '.',
      workerId: worker,
    }));
    if (result.status !== 'succeeded') return failed(result);
    return {
      status: 'succeeded',
      outcome: `${kind} answered as ${input.role}.`,
      decision: null,
      applied: false,
    };
  }
  // Each attempt writes in a fresh copy, so a retry never starts from what a failed attempt left.
  let copy: IsolatedCopy | undefined;
  try {
    const { result, record } = await dispatchStep(context, input, async (name) => {
      await copy?.dispose();
      const suffix = name === 'write' ? '' : `-${name}`;
      copy = await context.isolation.createCopy(`${context.run.id}-dispatch${suffix}`);
      return {
        name,
        role: 'writer',
        kind,
        prompt: writerPrompt(input.prompt),
        cwd: path.join(copy.dir, input.cwd ?? '.'),
        workerId: worker,
      };
    });
    if (result.status !== 'succeeded' || !copy) return failed(result);
    const change = await copy.captureChange();
    const changeRecord = await context.recordChange(kind, change, record);
    const apply = (input.apply ?? 'always') !== 'never' && change.stats.files > 0;
    if (apply) await context.apply(change, changeRecord);
    const decision = apply
      ? `Applied ${kind}'s change (${diffStatLine(change.stats)}).`
      : change.stats.files === 0
        ? 'No files changed.'
        : 'Not applied (apply=never); the patch is kept in the run folder.';
    await context.decide(decision);
    return { status: 'succeeded', outcome: `${kind} wrote the change.`, decision, applied: apply };
  } finally {
    await copy?.dispose();
  }
}
