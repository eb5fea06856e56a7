// Tandem's MCP tools. Read-only: probe, worker_list, run_list, run_get, run_wait, panic_status,
// playbook_list. Mutating (refused while panic is engaged): worker_spawn, worker_stop, task_dispatch,
// strategy_run, playbook_run, run_cancel. Always allowed: panic_engage. Long work returns a run id at once
// (or after an optional wait of at most 50 s) and run_wait follows it with an event cursor.
import * as z from 'zod';
import { JailError } from '../core/jail';
import { StateFileError } from '../core/state-file';
import { ExecError } from '../core/exec';
import { OwnershipError } from '../core/ownership';
import { sandboxWarning } from '../core/sandbox';
import { OrchestratorError } from '../orchestrator/orchestrator';
import { listPlaybooks, loadPlaybook, UnknownPlaybookError } from '../orchestrator/playbook/library';
import { PlaybookError, resolveInputs, type InputSpec } from '../orchestrator/playbook/schema';
import {
  RUN_STATUSES,
  STRATEGIES,
  isFinished,
  runWhat,
  SEVERITIES,
  type RunEvent,
  type RunRecord,
} from '../orchestrator/model';
import { RunStoreError } from '../orchestrator/run-store';
import {
  modelNameSchema,
  probeResultSchema,
  ROLES,
  StepRequestError,
  WORKER_KINDS,
} from '../workers/contract';
import { sandboxReportSchema } from '../workers/probe';
import { WorkerError } from '../workers/registry';
import type { TandemServices } from './services';
import { ToolError, ToolRegistry, type ToolContext, type ToolErrorCode } from './tool-registry';

export const MAX_WAIT_SECONDS = 50;
const MAX_EVENTS_RETURNED = 200;

const readOnly = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false };

const workerSchema = z.object({
  id: z.string(),
  kind: z.enum(WORKER_KINDS),
  model: z.string(),
  owner: z.string(),
  state: z.enum(['idle', 'busy', 'stopped']),
  createdAt: z.string(),
  stepsRun: z.number(),
  cliVersion: z.string().nullable(),
  cliPath: z.string().nullable(),
});

const runSchema = z.object({
  id: z.string(),
  kind: z.string(),
  strategy: z.string().nullable(),
  playbook: z
    .object({ name: z.string(), hash: z.string(), source: z.string() })
    .nullable()
    .describe('For playbook runs: its name, version hash and where it came from.'),
  owner: z.string(),
  prompt: z.string(),
  status: z.enum(RUN_STATUSES),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  workers: z.array(z.string()),
  stepCount: z.number(),
  outcome: z.string().nullable(),
  decision: z.string().nullable(),
  applied: z.boolean(),
});

const eventSchema = z.object({
  seq: z.number(),
  time: z.string(),
  type: z.string(),
  message: z.string(),
  step: z.number().optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});

const panicSchema = z.object({
  engaged: z.boolean(),
  engagedBy: z.string().nullable(),
  engagedAt: z.string().nullable(),
  reason: z.string().nullable(),
  releasedBy: z.string().nullable(),
  releasedAt: z.string().nullable(),
  persisted: z
    .boolean()
    .describe('False while this server holds panic in memory only: .tandem/panic.json could not be written.'),
  persistError: z.string().nullable(),
});

/** How long panic_engage waits for the cancelled runs to record their end before it answers. */
const PANIC_SETTLE_MS = 10_000;

function panicText(panic: z.infer<typeof panicSchema>): string {
  if (!panic.engaged) return 'Panic is not engaged.';
  const stored = panic.persisted
    ? ''
    : ` It holds in this server's memory only (other servers do not see it, a restart loses it): ${panic.persistError ?? 'not persisted'}.`;
  return `Panic is engaged by ${panic.engagedBy ?? 'unknown'}: ${panic.reason ?? 'no reason given'}.${stored}`;
}

const waitSecondsSchema = z
  .number()
  .min(0)
  .max(MAX_WAIT_SECONDS)
  .default(0)
  .describe(
    `Seconds to wait for the run to finish before returning (0-${MAX_WAIT_SECONDS}); follow up with run_wait.`,
  );

const cwdSchema = z
  .string()
  .min(1)
  .max(4096)
  .optional()
  .describe(
    'Folder to work in, relative to the workspace root (default: the root). Must stay inside the workspace.',
  );

const modelsSchema = z
  .object({ codex: modelNameSchema.optional(), gemini: modelNameSchema.optional() })
  .strict()
  .optional()
  .describe(
    'Model per CLI; default: the tandem.codexModel / tandem.geminiModel setting, else gpt-5.5 / gemini-2.5-flash.',
  );

const applySchema = z
  .enum(['if_approved', 'always', 'never'])
  .default('if_approved')
  .describe('When the change reaches the workspace: after an approving review (default), always, or never.');

const playbookInputSchema = z.object({
  type: z.enum(['worker', 'integer', 'severity', 'string', 'command']),
  default: z.unknown().describe('Used when the run gives no value.'),
  description: z.string().nullable(),
  min: z.number().nullable().describe('integer inputs: the smallest value allowed.'),
  max: z.number().nullable().describe('integer inputs: the largest value allowed.'),
});

const playbookSchema = z.object({
  name: z.string(),
  description: z.string(),
  source: z.string().describe('"builtin:NAME" or the file, relative to the workspace root.'),
  builtin: z.boolean(),
  hash: z.string().nullable().describe('Version hash; null when the file cannot be used.'),
  inputs: z.record(z.string(), playbookInputSchema),
  error: z
    .string()
    .nullable()
    .describe('Why the playbook cannot be used, with the path of the field at fault; null when it can.'),
});

function playbookInputView(spec: InputSpec): z.infer<typeof playbookInputSchema> {
  return {
    type: spec.type,
    default: spec.default,
    description: spec.description ?? null,
    min: spec.type === 'integer' ? spec.min : null,
    max: spec.type === 'integer' ? spec.max : null,
  };
}

const runStarted = {
  run: runSchema,
  finished: z.boolean(),
  cursor: z.number().describe('Pass as `after` to run_wait to get the events that follow.'),
  events: z.array(eventSchema),
  omittedEvents: z
    .number()
    .describe(
      'Older events of this wait left out to keep the answer small; read them with run_wait from an earlier cursor.',
    ),
};

function publicRun(run: RunRecord): z.infer<typeof runSchema> {
  const { host: _host, ...rest } = run;
  return rest;
}

/** The models a call names, without the CLIs it leaves to their default. */
function chosenModels(
  models: { codex?: string | undefined; gemini?: string | undefined } | undefined,
): Partial<Record<'codex' | 'gemini', string>> {
  const chosen: Partial<Record<'codex' | 'gemini', string>> = {};
  if (models?.codex) chosen.codex = models.codex;
  if (models?.gemini) chosen.gemini = models.gemini;
  return chosen;
}

/** Maps the typed errors of the layers below to tool error codes. */
export function mapError(error: unknown): ToolError | undefined {
  if (error instanceof OwnershipError) return new ToolError('NOT_OWNER', error.message);
  if (error instanceof JailError) return new ToolError('PATH_OUTSIDE_WORKSPACE', error.message);
  if (error instanceof WorkerError) {
    const codes: Record<string, ToolErrorCode> = {
      UNKNOWN_WORKER: 'UNKNOWN_WORKER',
      NOT_INSTALLED: 'NOT_INSTALLED',
      WORKER_BUSY: 'WORKER_BUSY',
      WORKER_STOPPED: 'UNKNOWN_WORKER',
      INVALID_MODEL: 'INVALID_INPUT',
    };
    return new ToolError(codes[error.code] ?? 'INVALID_INPUT', error.message);
  }
  if (error instanceof StateFileError) return new ToolError('UNSAFE_STATE', error.message);
  if (error instanceof RunStoreError)
    return new ToolError(error.code === 'UNKNOWN_RUN' ? 'UNKNOWN_RUN' : 'INVALID_INPUT', error.message);
  if (error instanceof OrchestratorError) return new ToolError(error.code, error.message);
  if (error instanceof StepRequestError) return new ToolError('INVALID_INPUT', error.message);
  if (error instanceof ExecError) return new ToolError('NOT_INSTALLED', error.message);
  if (error instanceof UnknownPlaybookError) return new ToolError('UNKNOWN_PLAYBOOK', error.message);
  // Its message starts with the file and names the field at fault: `.tandem/playbooks/x.json: steps[1].of: ...`.
  if (error instanceof PlaybookError) return new ToolError('INVALID_PLAYBOOK', error.message);
  return undefined;
}

/** Waits on a run's events, forwarding each as a progress notification, until it ends or time is up. */
async function follow(
  services: TandemServices,
  context: ToolContext,
  runId: string,
  after: number,
  waitSeconds: number,
  cancelRunOnAbort: boolean,
): Promise<{ run: RunRecord; events: RunEvent[]; omittedEvents: number; cursor: number; finished: boolean }> {
  const deadline = Date.now() + waitSeconds * 1000;
  const events: RunEvent[] = [];
  let cursor = after;
  const onAbort = (): void => {
    // A client that cancels the call that started a run cancels the run itself.
    if (cancelRunOnAbort) void services.orchestrator.cancel(runId, context.agentId).catch(() => undefined);
  };
  context.signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const remaining = deadline - Date.now();
      const batch = await services.store.waitForEvents(runId, cursor, Math.max(0, remaining), context.signal);
      for (const event of batch) {
        events.push(event);
        cursor = event.seq;
        await context.progress(event.seq, event.message);
      }
      // The run may belong to another server on this workspace: read its latest status from the index.
      await services.store.refresh();
      const run = services.store.get(runId);
      if (isFinished(run.status) || Date.now() >= deadline || context.signal.aborted) {
        if (isFinished(run.status) && cancelRunOnAbort) await services.orchestrator.finished(runId);
        return {
          run: services.store.get(runId),
          events: events.slice(-MAX_EVENTS_RETURNED),
          omittedEvents: Math.max(0, events.length - MAX_EVENTS_RETURNED),
          cursor,
          finished: isFinished(services.store.get(runId).status),
        };
      }
    }
  } finally {
    context.signal.removeEventListener('abort', onAbort);
  }
}

function runText(run: RunRecord, finished: boolean): string {
  const base = `Run ${run.id} (${runWhat(run)}) is ${run.status}.`;
  if (!finished) return `${base} Call run_wait with runId "${run.id}" to follow it.`;
  return `${base} ${run.outcome ?? ''}${run.decision ? ` Decision: ${run.decision}` : ''}`.trim();
}

/** The answer of a tool that started a run: the run, after following it for up to `waitSeconds`. */
async function startedReply(
  services: TandemServices,
  context: ToolContext,
  runId: string,
  waitSeconds: number,
) {
  const followed = await follow(services, context, runId, 0, waitSeconds, true);
  return {
    structured: { ...followed, run: publicRun(followed.run) },
    text: runText(followed.run, followed.finished),
  };
}

/** What every tool that starts a run changing files declares: its reply, and that it mutates. */
const startsWorkOnFiles = {
  output: runStarted,
  mutating: true,
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
} as const;

const taskSchema = z.string().min(1).max(1_000_000).describe('The task.');

/** For tools that start work: refused in an untrusted workspace; the caller's folder checked against the jail. */
async function workFolder(
  services: TandemServices,
  requested: string | undefined,
): Promise<string | undefined> {
  requireTrusted(services);
  return requested === undefined ? undefined : services.relativeCwd(requested);
}

function requireTrusted(services: TandemServices): void {
  if (!services.trusted) {
    throw new ToolError(
      'UNTRUSTED_WORKSPACE',
      'This workspace is not trusted, so Tandem starts no worker here. Trust the folder in the editor to allow it.',
    );
  }
}

export function defineTools(registry: ToolRegistry, services: TandemServices): void {
  registry.define({
    name: 'probe',
    title: 'Probe the worker CLIs',
    description:
      'Reports for codex and gemini: installed or not (with the install command), path, version and whether it is in the tested range, the auth mode detected (never secrets), and warnings.',
    input: {},
    output: { clis: z.array(probeResultSchema), sandbox: sandboxReportSchema },
    mutating: false,
    annotations: readOnly,
    handler: async () => {
      const [clis, status] = await Promise.all([services.probe(), services.sandbox.status()]);
      const sandbox = { ...status, warning: sandboxWarning(status) };
      const text = [
        ...clis.map(
          (cli) =>
            `${cli.kind}: ${cli.installed ? `${cli.version ?? 'unknown version'} (auth: ${cli.auth.mode})` : `not installed — ${cli.installHint}`}`,
        ),
        `sandbox (${sandbox.mode}): ${sandbox.works ? `${sandbox.tool ?? ''} ${sandbox.version ?? ''}`.trim() : (sandbox.warning ?? sandbox.problem ?? 'not available')}`,
      ].join('\n');
      return { structured: { clis, sandbox }, text };
    },
  });

  registry.define({
    name: 'worker_spawn',
    title: 'Spawn a worker',
    description:
      'Registers a named worker for the codex or gemini CLI after probing it. Returns its id for task_dispatch. Refused if the CLI is not installed.',
    input: {
      kind: z.enum(WORKER_KINDS).describe('Which CLI: codex or gemini.'),
      model: modelNameSchema
        .optional()
        .describe('Model name; default: the configured model for that CLI (gpt-5.5 / gemini-2.5-flash).'),
    },
    output: { worker: workerSchema },
    mutating: true,
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    handler: async (context, input) => {
      requireTrusted(services);
      const { worker } = await services.workers.spawn({
        kind: input.kind,
        owner: context.agentId,
        ...(input.model === undefined ? {} : { model: input.model }),
      });
      return {
        structured: { worker },
        text: `Spawned ${worker.kind} worker ${worker.id} (model ${worker.model}).`,
      };
    },
  });

  registry.define({
    name: 'worker_list',
    title: 'List workers',
    description: 'Lists the workers with their kind, model, owner and state.',
    input: { includeStopped: z.boolean().default(false).describe('Also list stopped workers.') },
    output: { workers: z.array(workerSchema) },
    mutating: false,
    annotations: readOnly,
    handler: async (_context, input) => {
      const workers = services.workers.list({ includeStopped: input.includeStopped });
      const text =
        workers.length === 0
          ? 'No workers. Spawn one with worker_spawn.'
          : workers.map((w) => `${w.id}: ${w.kind} ${w.model}, ${w.state}, owner ${w.owner}`).join('\n');
      return { structured: { workers }, text };
    },
  });

  registry.define({
    name: 'worker_stop',
    title: 'Stop a worker',
    description:
      'Cancels the worker’s step in flight (its processes are killed) and retires it. Only its owner (the agentId that spawned it) or the human at the editor may stop it.',
    input: { workerId: z.string().min(1).describe('Id from worker_spawn or worker_list.') },
    output: { worker: workerSchema },
    mutating: true,
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    handler: async (context, input) => {
      const worker = await services.workers.stop(input.workerId, context.agentId);
      return { structured: { worker }, text: `Stopped worker ${worker.id}.` };
    },
  });

  registry.define({
    name: 'task_dispatch',
    title: 'Dispatch a task to a worker',
    description:
      'Runs one task on a worker you spawned (the same agentId; another agent’s worker is refused with NOT_OWNER). A writer works in an isolated copy and its change is applied to the workspace (apply=always, the default) or kept as a patch (apply=never). Returns the run id at once, or after waitSeconds.',
    input: {
      workerId: z.string().min(1).describe('Id from worker_spawn.'),
      prompt: taskSchema,
      role: z.enum(ROLES).default('writer').describe('writer changes files; every other role is read-only.'),
      apply: z.enum(['always', 'never']).default('always'),
      cwd: cwdSchema,
      waitSeconds: waitSecondsSchema,
    },
    ...startsWorkOnFiles,
    handler: async (context, input) => {
      const cwd = await workFolder(services, input.cwd);
      const run = await services.orchestrator.dispatch({
        owner: context.agentId,
        workerId: input.workerId,
        prompt: input.prompt,
        role: input.role,
        apply: input.apply,
        ...(cwd === undefined ? {} : { cwd }),
      });
      return startedReply(services, context, run.id, input.waitSeconds);
    },
  });

  registry.define({
    name: 'strategy_run',
    title: 'Run a collaboration strategy',
    description:
      'Starts a strategy: single_worker, codex_writes_gemini_reviews, gemini_writes_codex_reviews, parallel_dual_write_review (both write in isolation, cross-review, the better change is applied), security_redteam_pass (a writer, then a read-only red team whose findings can block). Returns the run id at once, or after waitSeconds.',
    input: {
      strategy: z.enum(STRATEGIES),
      prompt: taskSchema,
      writer: z
        .enum(WORKER_KINDS)
        .optional()
        .describe('Writer for single_worker and security_redteam_pass (default codex).'),
      apply: applySchema,
      blockAt: z
        .enum(SEVERITIES)
        .default('high')
        .describe('security_redteam_pass: findings this severe block the change.'),
      fallback: z
        .boolean()
        .default(false)
        .describe(
          'Let a worker step that still fails after its retries go to the other CLI once (a reviewer is then never the CLI that wrote).',
        ),
      models: modelsSchema,
      cwd: cwdSchema,
      waitSeconds: waitSecondsSchema,
    },
    ...startsWorkOnFiles,
    handler: async (context, input) => {
      const cwd = await workFolder(services, input.cwd);
      const run = await services.orchestrator.startStrategy({
        owner: context.agentId,
        strategy: input.strategy,
        prompt: input.prompt,
        apply: input.apply,
        blockAt: input.blockAt,
        models: chosenModels(input.models),
        fallback: input.fallback,
        ...(input.writer === undefined ? {} : { writer: input.writer }),
        ...(cwd === undefined ? {} : { cwd }),
      });
      return startedReply(services, context, run.id, input.waitSeconds);
    },
  });

  registry.define({
    name: 'playbook_list',
    title: 'List playbooks',
    description:
      "Lists the playbooks playbook_run can start: the built-ins and the workspace's own JSON files in .tandem/playbooks/, each with its description, version hash and inputs (type, default, range). A file that cannot be used is listed with the reason and the path of the field at fault.",
    input: {},
    output: { playbooks: z.array(playbookSchema) },
    mutating: false,
    annotations: readOnly,
    handler: async () => {
      const entries = await listPlaybooks(services.jail);
      const playbooks = entries.map((entry) => ({
        ...entry,
        inputs: Object.fromEntries(
          Object.entries(entry.inputs).map(([name, spec]) => [name, playbookInputView(spec)]),
        ),
      }));
      const text = entries
        .map((entry) => {
          if (entry.error !== null) return `${entry.name} (${entry.source}): cannot be used: ${entry.error}`;
          const inputs = Object.entries(entry.inputs)
            .map(([name, spec]) => `${name}=${JSON.stringify(spec.default)}`)
            .join(', ');
          return `${entry.name} (${entry.source}${inputs ? `; inputs ${inputs}` : ''}): ${entry.description}`;
        })
        .join('\n');
      return { structured: { playbooks }, text };
    },
  });

  registry.define({
    name: 'playbook_run',
    title: 'Run a playbook',
    description:
      'Starts a playbook (see playbook_list): a checked step graph of plan, write, review, verify, adjudicate and apply steps with parallel branches, bounded loops and conditions, e.g. handoff (write, review, revise until approved). Every prompt, condition and decision is traced in the run folder for replay. Returns the run id at once, or after waitSeconds.',
    input: {
      playbook: z.string().min(1).max(200).describe('The playbook name, from playbook_list.'),
      task: z.string().min(1).max(1_000_000).describe('The task: {{task}} in the playbook.'),
      inputs: z
        .record(z.string(), z.unknown())
        .optional()
        .describe(
          "Values for the playbook's inputs by name (see playbook_list); the rest take their defaults.",
        ),
      apply: applySchema,
      fallback: z
        .boolean()
        .default(false)
        .describe(
          'Let a worker step that still fails after its retries go to the other CLI (steps with their own onFailure policy keep it).',
        ),
      models: modelsSchema,
      cwd: cwdSchema,
      waitSeconds: waitSecondsSchema,
    },
    ...startsWorkOnFiles,
    handler: async (context, input) => {
      const cwd = await workFolder(services, input.cwd);
      const loaded = await loadPlaybook(services.jail, input.playbook);
      let inputs: Record<string, unknown>;
      try {
        inputs = resolveInputs(loaded.playbook, input.inputs ?? {}, loaded.source);
      } catch (error) {
        // The playbook is sound; the values given for it are not (`builtin:handoff: inputs.rounds: ...`).
        if (error instanceof PlaybookError) throw new ToolError('INVALID_INPUT', error.message);
        throw error;
      }
      const run = await services.orchestrator.startPlaybook({
        owner: context.agentId,
        task: input.task,
        playbook: loaded.playbook,
        source: loaded.source,
        hash: loaded.hash,
        inputs,
        apply: input.apply,
        models: chosenModels(input.models),
        ...(input.fallback ? { resilience: { fallback: true } } : {}),
        ...(cwd === undefined ? {} : { cwd }),
      });
      return startedReply(services, context, run.id, input.waitSeconds);
    },
  });

  registry.define({
    name: 'run_list',
    title: 'List runs',
    description:
      'Lists runs newest first, with filters. Page with `before` = the last id of the previous page.',
    input: {
      status: z.enum(RUN_STATUSES).optional(),
      strategy: z.enum(STRATEGIES).optional(),
      mine: z.boolean().default(false).describe('Only runs started by this agentId.'),
      limit: z.number().int().min(1).max(200).default(20),
      before: z.string().optional().describe('Run id to page from.'),
    },
    output: { runs: z.array(runSchema), nextBefore: z.string().nullable() },
    mutating: false,
    annotations: readOnly,
    handler: async (context, input) => {
      await services.store.refresh();
      if (input.before !== undefined) services.store.get(input.before);
      // One more than asked tells whether another page follows.
      const found = services.store.list({
        limit: input.limit + 1,
        ...(input.status ? { status: input.status } : {}),
        ...(input.strategy ? { strategy: input.strategy } : {}),
        ...(input.mine ? { owner: context.agentId } : {}),
        ...(input.before ? { before: input.before } : {}),
      });
      const runs = found.slice(0, input.limit);
      const nextBefore = found.length > input.limit ? (runs[runs.length - 1]?.id ?? null) : null;
      const text =
        runs.length === 0
          ? 'No runs match.'
          : runs.map((run) => `${run.id} ${run.status} ${runWhat(run)} by ${run.owner}`).join('\n');
      return { structured: { runs: runs.map(publicRun), nextBefore }, text };
    },
  });

  registry.define({
    name: 'run_get',
    title: 'Get a run',
    description:
      'Returns a run with its steps (worker, role, status, duration, exit, verdict, findings, files changed) and, when finished, its summary in Markdown.',
    input: { runId: z.string().min(1) },
    output: {
      run: runSchema,
      steps: z.array(z.record(z.string(), z.unknown())),
      summaryMarkdown: z.string().nullable(),
    },
    mutating: false,
    annotations: readOnly,
    handler: async (_context, input) => {
      await services.store.refresh();
      const run = services.store.get(input.runId);
      const stepsText = await services.store.readRunFile(run.id, 'steps.json');
      const steps = stepsText ? (JSON.parse(stepsText) as Record<string, unknown>[]) : [];
      const summaryMarkdown = (await services.store.readRunFile(run.id, 'summary.md')) ?? null;
      return {
        structured: { run: publicRun(run), steps, summaryMarkdown },
        text: summaryMarkdown ?? runText(run, false),
      };
    },
  });

  registry.define({
    name: 'run_wait',
    title: 'Wait for a run',
    description: `Returns the run's events after the cursor \`after\`, waiting up to timeoutSeconds (max ${MAX_WAIT_SECONDS}) for new ones or for the run to finish. Sends progress notifications when asked. Cancelling this call stops the wait, not the run.`,
    input: {
      runId: z.string().min(1),
      after: z
        .number()
        .int()
        .min(0)
        .default(0)
        .describe('Cursor from the previous answer (0 for all events).'),
      timeoutSeconds: z.number().min(0).max(MAX_WAIT_SECONDS).default(25),
    },
    output: runStarted,
    mutating: false,
    annotations: readOnly,
    handler: async (context, input) => {
      await services.store.refresh();
      services.store.get(input.runId);
      const followed = await follow(services, context, input.runId, input.after, input.timeoutSeconds, false);
      return {
        structured: { ...followed, run: publicRun(followed.run) },
        text: runText(followed.run, followed.finished),
      };
    },
  });

  registry.define({
    name: 'run_cancel',
    title: 'Cancel a run',
    description:
      'Cancels a run you started (the same agentId; another agent’s run is refused with NOT_OWNER) and kills its worker processes.',
    input: { runId: z.string().min(1) },
    output: { run: runSchema },
    mutating: true,
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    handler: async (context, input) => {
      const run = await services.orchestrator.cancel(input.runId, context.agentId);
      return { structured: { run: publicRun(run) }, text: `Run ${run.id} is ${run.status}.` };
    },
  });

  registry.define({
    name: 'panic_engage',
    title: 'Engage panic',
    description:
      'Kill switch: cancels every run in flight and refuses every mutating tool until a human releases it in the editor or with `tandem-mcp panic release`. Any agent may engage it; none can release it.',
    input: { reason: z.string().min(1).max(500).describe('Why; shown to the human who releases it.') },
    output: { panic: panicSchema, cancelledRuns: z.number() },
    mutating: false,
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    handler: async (context, input) => {
      // In memory first, then every run is aborted, and only then is the disk touched: a workspace that
      // makes panic.json unwritable or slow cannot keep the runs going.
      services.panic.engageNow(context.agentId, input.reason);
      const cancelling = services.orchestrator.cancelAll(PANIC_SETTLE_MS, { atOnce: true });
      const panic = await services.panic.persist();
      const cancelledRuns = await cancelling;
      return {
        structured: { panic, cancelledRuns },
        text: `Panic engaged; ${cancelledRuns} run(s) cancelled. A human must release it.${panic.persisted ? '' : ` Engaged in this server's memory only (other servers do not see it, a restart loses it): ${panic.persistError ?? 'not persisted'}.`}`,
      };
    },
  });

  registry.define({
    name: 'panic_status',
    title: 'Panic status',
    description: 'Whether panic is engaged, by whom, when and why.',
    input: {},
    output: { panic: panicSchema },
    mutating: false,
    annotations: readOnly,
    handler: async () => {
      const panic = await services.panic.reload();
      return { structured: { panic }, text: panicText(panic) };
    },
  });
}
