// An in-process worker adapter for fast tests of the layers above the workers. It obeys the same
// contract as the real adapters (validation, jail, role permissions, timeouts, cancellation) and reads
// the same [[scenario:...]] tags the offline model server does, so one contract suite covers all three.
// Like the offline model, a prompt Tandem rendered for a role (`[tandem role=... step=...]`) is answered by
// role first (src/offline/roles.ts): a reviewer approves instead of replaying the writer's scenario.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { WorkspaceJail } from '../../src/core/jail';
import {
  DEFAULT_FLOOD_BYTES,
  DEFAULT_REPLY_TEXT,
  DEFAULT_WRITE_CONTENT,
  DEFAULT_WRITE_PATH,
  parseScenarioTag,
} from '../../src/offline/model-server';
import { roleScenario } from '../../src/offline/roles';
import { appendCapped } from '../../src/workers/cli-adapter';
import {
  parseStepRequest,
  type FileChange,
  roleCanWrite,
  type ProbeResult,
  type StepRequest,
  type StepRequestInput,
  type StepResult,
  type StepRunOptions,
  type StepStatus,
  type ToolCall,
  type WorkerAdapter,
  type WorkerKind,
} from '../../src/workers/contract';

export class FakeWorkerAdapter implements WorkerAdapter {
  readonly defaultModel: string;
  /** Every prompt received, byte for byte, in order. */
  readonly prompts: string[] = [];
  /**
   * Failures the next steps meet, first to last, whatever their prompt says (then the prompt's scenario plays):
   * for callers that cannot tag each attempt, e.g. a dispatch retried under the same prompt.
   */
  readonly failNext: ('rate_limited' | 'failed')[] = [];
  /** Runs in the step's folder after its scenario played: what a hostile worker leaves there (a FIFO, a link). */
  afterStep: ((cwd: string) => Promise<void>) | undefined;
  installed = true;

  constructor(
    readonly kind: WorkerKind,
    private readonly jail: WorkspaceJail,
  ) {
    this.defaultModel = `fake-${kind}`;
  }

  async probe(): Promise<ProbeResult> {
    return {
      kind: this.kind,
      installed: this.installed,
      installHint: `npm install -g fake-${this.kind}`,
      path: this.installed ? `/fake/bin/${this.kind}` : null,
      version: this.installed ? '1.0.0' : null,
      testedRange: '>=1.0.0 <2.0.0',
      versionInTestedRange: this.installed,
      auth: { mode: 'offline', source: null },
      features: { jsonEvents: true, sandboxModes: true, resume: false },
      warnings: [],
      error: this.installed ? null : 'not found on PATH',
    };
  }

  async runStep(input: StepRequestInput, options: StepRunOptions = {}): Promise<StepResult> {
    const request = parseStepRequest(input, this.kind);
    const cwd = await this.jail.resolve(request.cwd);
    const started = performance.now();
    this.prompts.push(request.prompt);
    options.onEvent?.({ type: 'started', pid: undefined, argv: [`fake-${this.kind}`] });
    const failure = this.failNext.shift();
    const outcome =
      failure === undefined
        ? await this.play(request, cwd, options.signal)
        : {
            status: failure,
            message: '',
            error: failure === 'rate_limited' ? 'HTTP 429 Too Many Requests' : 'HTTP 500 from the model',
            toolCalls: [],
          };
    await this.afterStep?.(cwd);
    const usage = {
      inputTokens: 10,
      outputTokens: 5,
      cachedInputTokens: 0,
      reasoningTokens: 0,
      totalTokens: 15,
    };
    const result: StepResult = {
      kind: this.kind,
      role: request.role,
      model: request.model ?? this.defaultModel,
      status: outcome.status,
      finalMessage: appendCapped('', outcome.message, request.limits.maxOutputBytes),
      commands: [],
      toolCalls: outcome.toolCalls,
      filesChanged: outcome.written ? [outcome.written] : [],
      filesChangedIncomplete: false,
      usage: outcome.status === 'succeeded' ? usage : null,
      eventCount: 3,
      malformedEventCount: 0,
      exitCode:
        outcome.status === 'succeeded'
          ? 0
          : outcome.status === 'timed_out' || outcome.status === 'cancelled'
            ? null
            : 1,
      signal: outcome.status === 'timed_out' || outcome.status === 'cancelled' ? 'SIGTERM' : null,
      timedOut: outcome.status === 'timed_out',
      durationMs: Math.round(performance.now() - started),
      argv: [`fake-${this.kind}`],
      envNames: [],
      stderrTail: '',
      stdoutBytes: outcome.message.length,
      stderrBytes: 0,
      logFiles: {},
    };
    if (outcome.error !== undefined) result.errorMessage = outcome.error;
    if (outcome.message !== '') options.onEvent?.({ type: 'message', text: result.finalMessage });
    return result;
  }

  private async play(
    request: StepRequest,
    cwd: string,
    signal: AbortSignal | undefined,
  ): Promise<{
    status: StepStatus;
    message: string;
    error?: string;
    toolCalls: ToolCall[];
    written?: FileChange;
  }> {
    const tag = roleScenario(request.prompt, this.kind) ??
      parseScenarioTag(request.prompt) ?? { name: 'reply', args: {} };
    const none: ToolCall[] = [];
    if (signal?.aborted)
      return { status: 'cancelled', message: '', error: 'The step was cancelled.', toolCalls: none };
    switch (tag.name) {
      case 'echo':
        return { status: 'succeeded', message: request.prompt, toolCalls: none };
      case 'write': {
        const relative = tag.args.path ?? DEFAULT_WRITE_PATH;
        if (!roleCanWrite(request.role)) {
          return {
            status: 'succeeded',
            message: `Could not write ${relative}: read-only role.`,
            toolCalls: [{ name: 'write_file', status: 'refused', detail: 'read-only role' }],
          };
        }
        const target = await this.jail.resolve(path.join(cwd, relative));
        const existed = existsSync(target);
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, tag.args.content ?? DEFAULT_WRITE_CONTENT);
        return {
          status: 'succeeded',
          message: `Wrote ${relative}.`,
          toolCalls: [{ name: 'write_file', status: 'succeeded' }],
          written: {
            path: path.relative(cwd, target).split(path.sep).join('/'),
            change: existed ? 'modified' : 'added',
          },
        };
      }
      case 'review': {
        const verdict = tag.args.verdict ?? 'approve';
        // As the offline model: `findings=high,low` scripts the severities; request_changes brings one high.
        const severities =
          tag.args.findings !== undefined
            ? tag.args.findings.split(',').filter((severity) => severity !== '')
            : verdict === 'approve'
              ? []
              : ['high'];
        const findings = severities.map((severity, index) => ({
          severity,
          title: `Scripted finding ${index + 1}`,
          detail: 'The fake adapter reports scripted findings.',
        }));
        const block = JSON.stringify({ verdict, findings });
        return {
          status: 'succeeded',
          message: `Review done.\n\`\`\`json\n${block}\n\`\`\``,
          toolCalls: none,
        };
      }
      case 'http429':
        return { status: 'rate_limited', message: '', error: 'HTTP 429 Too Many Requests', toolCalls: none };
      case 'http500':
        return { status: 'failed', message: '', error: 'HTTP 500 from the model', toolCalls: none };
      // Fake-only: the failure classes the offline model cannot cause over HTTP, or only after a real wait.
      case 'http401':
        return { status: 'auth_error', message: '', error: 'HTTP 401: not logged in', toolCalls: none };
      case 'clierror':
        return { status: 'cli_error', message: '', error: 'unknown flag --scripted', toolCalls: none };
      case 'timeout':
        return { status: 'timed_out', message: '', error: 'the step hit its time limit', toolCalls: none };
      case 'flood':
        return {
          status: 'succeeded',
          message: 'x'.repeat(Number(tag.args.bytes ?? DEFAULT_FLOOD_BYTES)),
          toolCalls: none,
        };
      case 'hang':
      case 'slow': {
        const waitMs =
          tag.name === 'hang'
            ? Math.min(request.limits.idleTimeoutMs, request.limits.timeoutMs)
            : Number(tag.args.ms ?? 200);
        const ended = await sleep(waitMs, signal);
        if (ended === 'aborted')
          return { status: 'cancelled', message: '', error: 'The step was cancelled.', toolCalls: none };
        if (tag.name === 'hang') {
          return {
            status: 'timed_out',
            message: '',
            error: 'no output before the idle timeout',
            toolCalls: none,
          };
        }
        return { status: 'succeeded', message: tag.args.text ?? DEFAULT_REPLY_TEXT, toolCalls: none };
      }
      default:
        return { status: 'succeeded', message: tag.args.text ?? DEFAULT_REPLY_TEXT, toolCalls: none };
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<'elapsed' | 'aborted'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve('elapsed');
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve('aborted');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
