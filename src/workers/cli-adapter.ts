// What every CLI adapter shares: validate the request, jail its working directory, give the step an
// isolated home, run the CLI's command template through the safe exec helper while parsing its JSONL
// incrementally, then classify the outcome and report what changed on disk.
import { access, mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ChildEnvSpec } from '../core/env';
import { ExecError, startProcess, type ExecResult, type ProcessRegistry } from '../core/exec';
import type { WorkspaceJail } from '../core/jail';
import { Redactor, redactCapturedText, redactCutText } from '../core/redact';
import { readStateRange } from '../core/state-file';
import { SandboxUnavailableError, type Sandbox } from '../core/sandbox';
import { diffSnapshots, takeSnapshot } from './changes';
import {
  parseStepRequest,
  roleCanWrite,
  type CommandRun,
  type ProbeResult,
  type Role,
  type StepRequest,
  type StepRequestInput,
  type StepResult,
  type StepRunOptions,
  type StepStatus,
  type TokenUsage,
  type ToolCall,
  type WorkerAdapter,
  type WorkerEvent,
  type WorkerKind,
} from './contract';
import { probeCli } from './probe';

/** Where the model lives: the vendor's API (real credentials), or Tandem's offline model server. */
export type ModelEndpoint =
  { type: 'vendor' } | { type: 'offline'; openaiBaseUrl: string; geminiBaseUrl: string };

export interface AdapterConfig {
  jail: WorkspaceJail;
  /** Scratch space for per-step homes (not under /tmp: codex refuses to put its helpers there). */
  stateDir: string;
  /** Configured binary; default: the bare name looked up on PATH. */
  binaryPath?: string;
  defaultModel?: string;
  endpoint?: ModelEndpoint;
  /** More variable names the user allows through (proxies, certificates). */
  extraEnvNames?: readonly string[];
  /** The user's real home, where login files are found. */
  userHome?: string;
  /** Where auth variables are looked up (names only are logged). Default: process.env. */
  sourceEnv?: NodeJS.ProcessEnv;
  registry?: ProcessRegistry;
  /** The OS sandbox for CLIs that do not confine their own tools (see CliSpec.sandboxed). */
  sandbox?: Sandbox;
}

export interface InvocationContext {
  request: StepRequest;
  model: string;
  cwd: string;
  /** A fresh directory for this step only: isolated HOME, CODEX_HOME, TMPDIR, output files. */
  stepDir: string;
  config: AdapterConfig;
}

export interface Invocation {
  args: string[];
  env: ChildEnvSpec;
  stdin: string;
  /** Literal values to mask wherever the command is shown (beyond the redactor's patterns). */
  secrets?: string[];
  /** Read after the process ends, e.g. the codex last-message file. */
  finalMessageFile?: string;
  /** Files outside the step's folders the CLI must read inside the OS sandbox (login files). */
  sandboxReadable?: string[];
}

/** Everything a CLI's event stream told us, before classification against the process outcome. */
export interface ParsedStream {
  eventCount: number;
  malformedEventCount: number;
  finalMessage: string;
  commands: CommandRun[];
  toolCalls: ToolCall[];
  usage: TokenUsage | null;
  /** The CLI reported the turn finished (codex turn.completed, gemini result success). */
  completed: boolean;
  /** The CLI's own final error, when it reported one. */
  errorMessage: string | undefined;
  /** Classification the CLI's error implies (rate_limited, auth_error, failed). */
  errorStatus: StepStatus | undefined;
}

export interface EventParser {
  /** One JSONL line; returns the normalised events it yields for live progress. */
  push(line: string, truncated: boolean): WorkerEvent[];
  result(): ParsedStream;
}

export interface CliSpec {
  readonly kind: WorkerKind;
  readonly defaultModel: string;
  readonly installHint: string;
  /**
   * Whether the step runs in Tandem's OS sandbox: true for a CLI whose tools are confined by nothing but itself.
   * codex confines its tools with its own bubblewrap sandbox, which cannot start inside ours (see the README).
   */
  readonly sandboxed: boolean;
  /** A reason to refuse the step before starting anything (e.g. a file that would bypass the env allowlist). */
  preflight(context: InvocationContext): Promise<string | undefined>;
  buildInvocation(context: InvocationContext): Promise<Invocation>;
  /** A parser that keeps at most `maxTextChars` of message text (a flood must not grow memory). */
  createParser(maxTextChars: number): EventParser;
  /**
   * Status when the stream ended without a final event of its own: from the exit code and stderr (whose
   * `text` is redacted already; its message is capped by the adapter).
   */
  classifyExit(exec: ExecResult, parsed: ParsedStream): { status: StepStatus; message: string | undefined };
}

/**
 * Matches error text to the statuses a retry policy cares about. A status code counts only as a number of
 * its own: not inside a version (1.429.0), a duration (1.401 s) or a stack position (chunk.js:429:12), which
 * gemini's stderr is full of; and `rate limit` / `quota` not inside words (accurate limits, quotation).
 */
export function classifyErrorText(text: string): StepStatus {
  if (
    /(?<![\w.])429(?!\w|[.:]\d)|too many requests|\brate.?limit|quota(?!tion)|resource.?exhausted/i.test(text)
  ) {
    return 'rate_limited';
  }
  if (
    /(?<![\w.])40[13](?!\w|[.:]\d)|unauthori[sz]ed|unauthenticated|invalid.{0,20}api.?key|api.?key.{0,40}(invalid|missing|not valid)|must specify the \w+ environment variable|not logged in|please log ?in/i.test(
      text,
    )
  ) {
    return 'auth_error';
  }
  // Google's API status, not a file system's "Permission denied".
  if (/\bPERMISSION_DENIED\b/.test(text)) return 'auth_error';
  return 'failed';
}

/** The result of a step that never started a process (refused, cancelled first, binary missing). */
export function notStartedResult(
  kind: WorkerKind,
  role: Role,
  model: string,
  status: StepStatus,
  message: string,
): StepResult {
  return {
    kind,
    role,
    model,
    status,
    finalMessage: '',
    errorMessage: message,
    commands: [],
    toolCalls: [],
    filesChanged: [],
    filesChangedIncomplete: false,
    usage: null,
    eventCount: 0,
    malformedEventCount: 0,
    exitCode: null,
    signal: null,
    timedOut: false,
    durationMs: 0,
    argv: [],
    envNames: [],
    stderrTail: '',
    stdoutBytes: 0,
    stderrBytes: 0,
    logFiles: {},
  };
}

/**
 * Reads one JSONL line of a CLI's event stream: a blank line is nothing, a line cut by the line cap or
 * that is not a JSON object with a string `type` counts as malformed, anything else counts as an event.
 */
export function decodeEventLine<T extends { type?: unknown }>(
  line: string,
  truncated: boolean,
  state: ParsedStream,
): (T & { type: string }) | undefined {
  if (line.trim() === '') return undefined;
  let event: unknown;
  try {
    event = truncated ? undefined : JSON.parse(line);
  } catch {
    event = undefined;
  }
  if (event === null || typeof event !== 'object' || typeof (event as T).type !== 'string') {
    state.malformedEventCount += 1;
    return undefined;
  }
  state.eventCount += 1;
  return event as T & { type: string };
}

/** A token count from a CLI's usage record: a non-negative integer, or 0 for anything else. */
export function tokenCount(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : 0;
}

export async function fileExists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/** Appends to a text kept under a cap; what is cut is replaced by one marker, once. */
export function appendCapped(current: string, addition: string, maxChars: number): string {
  if (current.length >= maxChars) return current;
  const room = maxChars - current.length;
  return addition.length <= room ? current + addition : current + addition.slice(0, room) + TRUNCATION_MARK;
}

export const TRUNCATION_MARK = '\n[... message cut at the output cap ...]';

/**
 * An error message goes into every record of its step (the step, its events, steps.json, the summaries, the
 * run's outcome, a playbook's trace): one line of stderr can be megabytes long, so it is capped where the
 * message is made.
 */
export const MAX_ERROR_MESSAGE_CHARS = 2000;

/** The message, redacted, cut at MAX_ERROR_MESSAGE_CHARS with a marker saying how much went. */
export function stepErrorMessage(message: string, redactor: Redactor): string {
  // Redacted before the cut: a cut through a secret would leave a half that no pattern knows.
  const text = redactor.redact(message);
  if (text.length <= MAX_ERROR_MESSAGE_CHARS) return text;
  let end = MAX_ERROR_MESSAGE_CHARS;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}… (cut, ${Buffer.byteLength(text.slice(end))} bytes)`;
}

export function emptyParsedStream(): ParsedStream {
  return {
    eventCount: 0,
    malformedEventCount: 0,
    finalMessage: '',
    commands: [],
    toolCalls: [],
    usage: null,
    completed: false,
    errorMessage: undefined,
    errorStatus: undefined,
  };
}

function lastLines(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : text.slice(text.length - maxChars);
}

export class CliWorkerAdapter implements WorkerAdapter {
  constructor(
    private readonly spec: CliSpec,
    private readonly config: AdapterConfig,
  ) {}

  get kind(): WorkerKind {
    return this.spec.kind;
  }

  get defaultModel(): string {
    return this.config.defaultModel ?? this.spec.defaultModel;
  }

  probe(): Promise<ProbeResult> {
    return probeCli(this.spec.kind, {
      ...(this.config.binaryPath === undefined ? {} : { binaryPath: this.config.binaryPath }),
      ...(this.config.sourceEnv === undefined ? {} : { env: this.config.sourceEnv }),
      ...(this.config.userHome === undefined ? {} : { homeDir: this.config.userHome }),
      workspaceDir: this.config.jail.root,
    });
  }

  async runStep(input: StepRequestInput, options: StepRunOptions = {}): Promise<StepResult> {
    const request = parseStepRequest(input, this.spec.kind);
    const cwd = await this.config.jail.resolve(request.cwd);
    const model = request.model ?? this.defaultModel;
    await mkdir(this.config.stateDir, { recursive: true });
    const stepDir = await mkdtemp(path.join(this.config.stateDir, `${this.spec.kind}-step-`));
    const context: InvocationContext = { request, model, cwd, stepDir, config: this.config };
    try {
      return await this.execute(context, options);
    } finally {
      await rm(stepDir, { recursive: true, force: true, maxRetries: 3 });
    }
  }

  private refused(context: InvocationContext, status: StepStatus, message: string): StepResult {
    return notStartedResult(this.spec.kind, context.request.role, context.model, status, message);
  }

  private async execute(context: InvocationContext, options: StepRunOptions): Promise<StepResult> {
    const { request } = context;
    if (options.signal?.aborted)
      return this.refused(context, 'cancelled', 'The step was cancelled before it started.');
    const refusal = await this.spec.preflight(context);
    if (refusal) return this.refused(context, 'cli_error', refusal);

    const invocation = await this.spec.buildInvocation(context);
    const redactor = new Redactor({
      secretValues: invocation.secrets ?? [],
      env: this.config.sourceEnv ?? process.env,
    });
    const parser = this.spec.createParser(request.limits.maxOutputBytes);
    const emit = (event: WorkerEvent): void => {
      if (!options.onEvent) return;
      try {
        // Listeners write events into the run's records: an event is redacted (and an error capped) as the
        // step's result is.
        options.onEvent(
          event.type === 'error'
            ? { type: 'error', message: stepErrorMessage(event.message, redactor) }
            : redactor.redactValue(event),
        );
      } catch {
        // A listener's bug must not end the step: this runs inside the child's stdout handler.
      }
    };
    const logs = options.logDir ? await this.logPaths(options.logDir) : undefined;
    const before = await takeSnapshot(context.cwd);

    let running;
    let program: string | undefined;
    try {
      const wrapped = await this.sandboxed(context, invocation);
      program = wrapped?.program;
      running = startProcess({
        command: wrapped?.command ?? this.config.binaryPath ?? this.spec.kind,
        args: wrapped?.args ?? invocation.args,
        cwd: context.cwd,
        env: invocation.env,
        stdin: invocation.stdin,
        // A worker is untrusted: whatever it starts, a daemon included, ends with the step.
        contain: true,
        timeoutMs: request.limits.timeoutMs,
        idleTimeoutMs: request.limits.idleTimeoutMs,
        killGraceMs: request.limits.killGraceMs,
        maxCaptureBytes: request.limits.maxOutputBytes,
        maxLineBytes: request.limits.maxEventBytes,
        installHint: `Install it with: ${this.spec.installHint}`,
        onStdoutLine: (line) => {
          for (const event of parser.push(line.text, line.truncated)) emit(event);
        },
        ...(options.signal ? { signal: options.signal } : {}),
        ...(logs && request.limits.maxLogBytes > 0
          ? {
              stdoutLog: { path: logs.stdout, maxBytes: request.limits.maxLogBytes, redactor },
              stderrLog: { path: logs.stderr, maxBytes: request.limits.maxLogBytes, redactor },
            }
          : {}),
        ...(this.config.registry ? { registry: this.config.registry } : {}),
      });
    } catch (error) {
      if (error instanceof ExecError) {
        const status = error.code === 'BINARY_NOT_FOUND' ? 'cli_error' : 'failed';
        return this.refused(context, status, error.message);
      }
      if (error instanceof SandboxUnavailableError) return this.refused(context, 'cli_error', error.message);
      throw error;
    }
    const shownArgv = [this.config.binaryPath ?? this.spec.kind, ...invocation.args].map((arg) =>
      redactor.redact(arg),
    );
    emit({ type: 'started', pid: running.pid, argv: shownArgv });
    const run = await running.result;
    // Everything below reads stderr from here: redacted, with the words cut at the capture's gap dropped.
    const exec: ExecResult = {
      ...run,
      stderr: { ...run.stderr, text: redactCapturedText(run.stderr, redactor) },
    };
    const after = await takeSnapshot(context.cwd);
    const parsed = parser.result();

    let finalMessage = parsed.finalMessage;
    if (finalMessage === '' && invocation.finalMessageFile) {
      finalMessage = appendCapped(
        '',
        await readSmallFile(invocation.finalMessageFile, request.limits.maxOutputBytes + 1),
        request.limits.maxOutputBytes,
      );
    }

    let status: StepStatus;
    let errorMessage: string | undefined;
    if (exec.timedOut) {
      status = 'timed_out';
      errorMessage =
        exec.timeoutKind === 'idle'
          ? `${this.spec.kind} printed nothing for ${request.limits.idleTimeoutMs} ms (a stalled model stream?) and was stopped.`
          : `${this.spec.kind} ran past the ${request.limits.timeoutMs} ms limit and was stopped.`;
    } else if (exec.cancelled) {
      status = 'cancelled';
      errorMessage = 'The step was cancelled.';
    } else if (parsed.errorStatus !== undefined) {
      status = parsed.errorStatus;
      errorMessage = parsed.errorMessage;
    } else if (parsed.completed) {
      status = 'succeeded';
    } else {
      const verdict = this.spec.classifyExit(exec, parsed);
      status = verdict.status;
      errorMessage = verdict.message;
    }
    if (errorMessage !== undefined) {
      emit({ type: 'error', message: errorMessage });
      errorMessage = stepErrorMessage(errorMessage, redactor);
    }

    return {
      kind: this.spec.kind,
      role: request.role,
      model: context.model,
      status,
      finalMessage: finalMessage.endsWith(TRUNCATION_MARK)
        ? redactCutText(finalMessage.slice(0, -TRUNCATION_MARK.length), redactor) + TRUNCATION_MARK
        : redactor.redact(finalMessage),
      ...(errorMessage === undefined ? {} : { errorMessage }),
      commands: parsed.commands.map((run) => ({ ...run, command: redactor.redact(run.command) })),
      toolCalls: parsed.toolCalls.map((call) =>
        call.detail === undefined ? call : { ...call, detail: redactor.redact(call.detail) },
      ),
      filesChanged: diffSnapshots(before, after).map((change) => ({
        ...change,
        path: path.relative(context.cwd, path.join(context.cwd, change.path)).split(path.sep).join('/'),
      })),
      filesChangedIncomplete: before.incomplete || after.incomplete,
      usage: parsed.usage,
      eventCount: parsed.eventCount,
      malformedEventCount: parsed.malformedEventCount,
      exitCode: exec.exitCode,
      signal: exec.signal,
      timedOut: exec.timedOut,
      durationMs: exec.durationMs,
      argv: [program ?? exec.command, ...invocation.args].map((arg) => redactor.redact(arg)),
      envNames: exec.envNames,
      stderrTail: lastLines(exec.stderr.text, 4000),
      stdoutBytes: exec.stdout.totalBytes,
      stderrBytes: exec.stderr.totalBytes,
      logFiles: logs ? { stdout: logs.stdout, stderr: logs.stderr } : {},
    };
  }

  /** The sandboxed command for a CLI that needs one; undefined runs the CLI as configured. */
  private async sandboxed(
    context: InvocationContext,
    invocation: Invocation,
  ): Promise<Awaited<ReturnType<Sandbox['wrap']>> | undefined> {
    const { sandbox } = this.config;
    if (!this.spec.sandboxed || sandbox === undefined) return undefined;
    // Its copy read-write for a writer (read-only for every other role), its own home and temp folders, and
    // the host's network: the CLI must reach its model, and bubblewrap cannot filter by host.
    const writable = [context.stepDir];
    const readable = [...(invocation.sandboxReadable ?? [])];
    if (roleCanWrite(context.request.role)) writable.push(context.cwd);
    else readable.push(context.cwd);
    return sandbox.wrap({
      command: this.config.binaryPath ?? this.spec.kind,
      args: invocation.args,
      cwd: context.cwd,
      env: invocation.env,
      policy: { writable, readable, network: true },
      installHint: `Install it with: ${this.spec.installHint}`,
    });
  }

  private async logPaths(logDir: string): Promise<{ stdout: string; stderr: string }> {
    await mkdir(logDir, { recursive: true });
    return {
      stdout: path.join(logDir, `${this.spec.kind}.stdout.log`),
      stderr: path.join(logDir, `${this.spec.kind}.stderr.log`),
    };
  }
}

/** The worker wrote it, in its step folder: a link or a FIFO put in its place is not read (or waited on). */
async function readSmallFile(file: string, maxBytes: number): Promise<string> {
  try {
    const read = await readStateRange(path.dirname(file), file, 0, maxBytes);
    return read === undefined ? '' : read.bytes.toString('utf8').trimEnd();
  } catch {
    return '';
  }
}
