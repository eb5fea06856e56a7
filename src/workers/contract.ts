// The worker contract: what a step asks of a CLI worker and the normalised result every adapter returns,
// as zod schemas (validated at every boundary) plus the WorkerAdapter interface the layers above call.
import * as z from 'zod';

export const WORKER_KINDS = ['codex', 'gemini'] as const;
export const workerKindSchema = z.enum(WORKER_KINDS);
export type WorkerKind = z.infer<typeof workerKindSchema>;

/** Who does what in a step. Only writers may change files; the others run read-only. */
export const ROLES = ['writer', 'reviewer', 'planner', 'adjudicator', 'redteam'] as const;
export const roleSchema = z.enum(ROLES);
export type Role = z.infer<typeof roleSchema>;

export function roleCanWrite(role: Role): boolean {
  return role === 'writer';
}

export const STEP_STATUSES = [
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
  'auth_error',
  'rate_limited',
  'cli_error',
] as const;
export const stepStatusSchema = z.enum(STEP_STATUSES);
export type StepStatus = z.infer<typeof stepStatusSchema>;

/**
 * A model name as the CLIs take it (`gpt-5.5`, `gemini-2.5-flash`, `models/x`, `org/model:tag`). It goes
 * into argv, so it may not start with `-` (it could be read as a flag) and may hold no spaces or quotes.
 */
export const modelNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/,
    'a model name starts with a letter or digit and holds only letters, digits and . _ : / - (at most 100)',
  );

export const MAX_PROMPT_BYTES = 1024 * 1024;

export const stepLimitsSchema = z
  .object({
    /** Wall-clock limit of the whole step. */
    timeoutMs: z
      .number()
      .int()
      .min(1_000)
      .max(6 * 60 * 60 * 1000)
      .default(15 * 60 * 1000),
    /** No output for this long ends the step (a stalled model stream). */
    idleTimeoutMs: z
      .number()
      .int()
      .min(1_000)
      .max(60 * 60 * 1000)
      .default(5 * 60 * 1000),
    /** Between SIGTERM and SIGKILL. */
    killGraceMs: z.number().int().min(0).max(60_000).default(3_000),
    /** Bytes of each output stream kept in memory (head + tail). */
    maxOutputBytes: z
      .number()
      .int()
      .min(4 * 1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
    /** Bytes of each output stream spilled to the step's log files. */
    maxLogBytes: z
      .number()
      .int()
      .min(0)
      .max(1024 * 1024 * 1024)
      .default(64 * 1024 * 1024),
    /** One JSONL event longer than this is cut and counted as malformed. */
    maxEventBytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(4 * 1024 * 1024),
  })
  .strict();
export type StepLimits = z.infer<typeof stepLimitsSchema>;

export const stepRequestSchema = z
  .object({
    kind: workerKindSchema,
    role: roleSchema,
    /** Absent: the adapter's default model for its kind. */
    model: modelNameSchema.optional(),
    /** Working directory: a path inside the workspace jail (relative to its root, or absolute inside it). */
    cwd: z.string().min(1),
    prompt: z
      .string()
      .min(1, 'the prompt is empty')
      .refine((prompt) => Buffer.byteLength(prompt) <= MAX_PROMPT_BYTES, 'the prompt is larger than 1 MiB')
      .refine((prompt) => !prompt.includes('\0'), 'the prompt contains a NUL byte'),
    limits: stepLimitsSchema.default(() => stepLimitsSchema.parse({})),
  })
  .strict();
export type StepRequest = z.infer<typeof stepRequestSchema>;
export type StepRequestInput = z.input<typeof stepRequestSchema>;

export class StepRequestError extends Error {
  readonly code = 'INVALID_STEP_REQUEST';
  constructor(message: string) {
    super(message);
    this.name = 'StepRequestError';
  }
}

/** Validates a step request for an adapter of `kind`; throws StepRequestError saying what to fix. */
export function parseStepRequest(input: StepRequestInput, kind: WorkerKind): StepRequest {
  const parsed = stepRequestSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` (at ${issue.path.join('.')})` : '';
    throw new StepRequestError(`Invalid step request${where}: ${issue?.message ?? 'unknown problem'}.`);
  }
  if (parsed.data.kind !== kind) {
    throw new StepRequestError(`This is the ${kind} adapter; the request asks for ${parsed.data.kind}.`);
  }
  return parsed.data;
}

export const commandRunSchema = z.object({
  command: z.string(),
  exitCode: z.number().int().nullable(),
  status: z.string(),
});
export type CommandRun = z.infer<typeof commandRunSchema>;

export const toolCallSchema = z.object({
  name: z.string(),
  status: z.enum(['succeeded', 'failed', 'refused']),
  detail: z.string().optional(),
});
export type ToolCall = z.infer<typeof toolCallSchema>;

export const fileChangeSchema = z.object({
  /** Relative to the step's working directory, with / separators. */
  path: z.string(),
  change: z.enum(['added', 'modified', 'deleted']),
});
export type FileChange = z.infer<typeof fileChangeSchema>;

export const tokenUsageSchema = z.object({
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  cachedInputTokens: z.number().int().nonnegative(),
  reasoningTokens: z.number().int().nonnegative(),
  totalTokens: z.number().int().nonnegative(),
});
export type TokenUsage = z.infer<typeof tokenUsageSchema>;

export const stepResultSchema = z.object({
  kind: workerKindSchema,
  role: roleSchema,
  model: z.string(),
  status: stepStatusSchema,
  /** The worker's last message to the caller (for a reviewer: its review). */
  finalMessage: z.string(),
  /** Why the step did not succeed, in a sentence a person can act on. */
  errorMessage: z.string().optional(),
  commands: z.array(commandRunSchema),
  toolCalls: z.array(toolCallSchema),
  /** Observed on disk (before/after snapshot of the working directory), not taken from the CLI's word. */
  filesChanged: z.array(fileChangeSchema),
  /** The snapshot hit its file limit; filesChanged may be incomplete. */
  filesChangedIncomplete: z.boolean(),
  usage: tokenUsageSchema.nullable(),
  eventCount: z.number().int().nonnegative(),
  /** JSONL lines that were not valid events (cut by the line cap, or garbage). */
  malformedEventCount: z.number().int().nonnegative(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  timedOut: z.boolean(),
  durationMs: z.number().nonnegative(),
  /** The command as run: absolute binary + argv, secrets and the prompt redacted. */
  argv: z.array(z.string()),
  /** Names (never values) of the environment variables the CLI received. */
  envNames: z.array(z.string()),
  stderrTail: z.string(),
  stdoutBytes: z.number().int().nonnegative(),
  stderrBytes: z.number().int().nonnegative(),
  /** Full stdout / stderr logs on disk, when a log directory was given. */
  logFiles: z.object({ stdout: z.string().optional(), stderr: z.string().optional() }),
});
export type StepResult = z.infer<typeof stepResultSchema>;

/** Live progress of a step, normalised across CLIs, for run event streams and the dashboard. */
export type WorkerEvent =
  | { type: 'started'; pid: number | undefined; argv: string[] }
  | { type: 'message'; text: string }
  | { type: 'command'; command: string; exitCode: number | null; status: string }
  | { type: 'tool'; name: string; status: ToolCall['status']; detail?: string }
  | { type: 'usage'; usage: TokenUsage }
  | { type: 'error'; message: string };

export interface StepRunOptions {
  signal?: AbortSignal;
  onEvent?: (event: WorkerEvent) => void;
  /** Where the step's stdout/stderr logs go (created if missing). Absent: no log files. */
  logDir?: string;
}

export const AUTH_MODES = ['api_key', 'login', 'vertex', 'offline', 'none'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

export const probeResultSchema = z.object({
  kind: workerKindSchema,
  installed: z.boolean(),
  /** Exact command to install the CLI when it is missing. */
  installHint: z.string(),
  path: z.string().nullable(),
  version: z.string().nullable(),
  /** The versions Tandem's contract suite ran against, as a semver range. */
  testedRange: z.string(),
  versionInTestedRange: z.boolean(),
  /** How the CLI would authenticate; detected from variable names and file presence, never values. */
  auth: z.object({
    mode: z.enum(AUTH_MODES),
    /** e.g. "OPENAI_API_KEY is set", "~/.codex/auth.json exists". */
    source: z.string().nullable(),
  }),
  features: z.object({
    jsonEvents: z.boolean(),
    sandboxModes: z.boolean(),
    resume: z.boolean(),
  }),
  /** Things a user should know (version outside the tested range, a workspace .env, ...). */
  warnings: z.array(z.string()),
  /** Why the probe failed, when it did (binary missing, garbage version output). */
  error: z.string().nullable(),
});
export type ProbeResult = z.infer<typeof probeResultSchema>;

/** One CLI behind one interface. Adapters never throw for a CLI's own failure: it is in the result. */
export interface WorkerAdapter {
  readonly kind: WorkerKind;
  readonly defaultModel: string;
  probe(): Promise<ProbeResult>;
  runStep(request: StepRequestInput, options?: StepRunOptions): Promise<StepResult>;
}
