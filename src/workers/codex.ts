// The codex adapter: the strict `codex exec --json` command template, its JSONL event parser and the
// classification of how a run ended. Tested against codex-cli 0.169.x (event names changed in 0.144).
import { mkdir, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { lookupEnv } from '../core/env';
import type { ExecResult } from '../core/exec';
import {
  CliWorkerAdapter,
  appendCapped,
  classifyErrorText,
  decodeEventLine,
  fileExists,
  tokenCount,
  emptyParsedStream,
  type AdapterConfig,
  type CliSpec,
  type EventParser,
  type Invocation,
  type InvocationContext,
  type ParsedStream,
} from './cli-adapter';
import { roleCanWrite, type StepStatus, type WorkerEvent } from './contract';

export const CODEX_DEFAULT_MODEL = 'gpt-5.5';
export const CODEX_INSTALL_HINT = 'npm install -g @openai/codex';
/** Variables codex reads for API-key auth; passed by name when present. */
export const CODEX_AUTH_ENV_NAMES = ['OPENAI_API_KEY', 'CODEX_API_KEY'] as const;
const OFFLINE_KEY_NAME = 'TANDEM_OFFLINE_API_KEY';
const OFFLINE_PROVIDER = 'tandem_offline';

/** Only loopback URLs reach the TOML we build, so no caller text can alter the provider table. */
const LOOPBACK_URL = /^http:\/\/127\.0\.0\.1:\d{1,5}(\/[A-Za-z0-9/_-]*)?$/;

export type CodexSandbox = 'read-only' | 'workspace-write';

export function codexSandboxFor(role: InvocationContext['request']['role']): CodexSandbox {
  return roleCanWrite(role) ? 'workspace-write' : 'read-only';
}

/**
 * The whole argv after the binary. Fixed flags only; the variable parts are typed (sandbox from the
 * role, a validated model name, absolute jail paths) and the prompt goes through stdin (`-`), so it can
 * never be read as a flag and has no argv size limit.
 */
export function codexArgs(options: {
  sandbox: CodexSandbox;
  cwd: string;
  model: string;
  lastMessageFile: string;
  offlineBaseUrl?: string;
  streamIdleTimeoutMs?: number;
}): string[] {
  const args = [
    'exec',
    '--json',
    '--skip-git-repo-check',
    '--ephemeral',
    '--sandbox',
    options.sandbox,
    '-C',
    options.cwd,
    '-o',
    options.lastMessageFile,
    '-m',
    options.model,
    '-c',
    'approval_policy="never"',
    '-c',
    'analytics.enabled=false',
    '-c',
    'check_for_update_on_startup=false',
    '--disable',
    'plugins',
  ];
  if (options.sandbox === 'workspace-write') {
    // Writers may write inside their working directory only: not /tmp, not $TMPDIR, no network.
    args.push(
      '-c',
      'sandbox_workspace_write.exclude_slash_tmp=true',
      '-c',
      'sandbox_workspace_write.exclude_tmpdir_env_var=true',
      '-c',
      'sandbox_workspace_write.network_access=false',
    );
  }
  if (options.offlineBaseUrl !== undefined) {
    if (!LOOPBACK_URL.test(options.offlineBaseUrl)) {
      throw new Error(
        `The offline model URL must be http://127.0.0.1:PORT/..., got ${options.offlineBaseUrl}`,
      );
    }
    const idle = Math.max(1000, Math.floor(options.streamIdleTimeoutMs ?? 300_000));
    args.push(
      '-c',
      `model_provider="${OFFLINE_PROVIDER}"`,
      '-c',
      `model_providers.${OFFLINE_PROVIDER}={name="Tandem offline model",base_url="${options.offlineBaseUrl}",` +
        `wire_api="responses",env_key="${OFFLINE_KEY_NAME}",supports_websockets=false,request_max_retries=0,` +
        `stream_max_retries=0,stream_idle_timeout_ms=${idle}}`,
    );
  }
  args.push('--', '-');
  return args;
}

interface CodexItem {
  id?: string;
  type?: string;
  text?: string;
  command?: string;
  exit_code?: number | null;
  status?: string;
  changes?: { path?: string; kind?: string }[];
  server?: string;
  tool?: string;
  query?: string;
  message?: string;
}

interface CodexEvent {
  type?: string;
  item?: CodexItem;
  usage?: {
    input_tokens?: number;
    cached_input_tokens?: number;
    output_tokens?: number;
    reasoning_output_tokens?: number;
  };
  error?: { message?: string };
  message?: string;
}

export class CodexEventParser implements EventParser {
  private readonly state: ParsedStream = emptyParsedStream();

  constructor(private readonly maxTextChars: number) {}

  private turnFailed = false;
  private lastError: string | undefined;

  push(line: string, truncated: boolean): WorkerEvent[] {
    const event = decodeEventLine<CodexEvent>(line, truncated, this.state);
    if (!event) return [];
    switch (event.type) {
      case 'item.completed':
        return this.onItem(event.item ?? {});
      case 'turn.completed': {
        const usage = event.usage ?? {};
        const input = tokenCount(usage.input_tokens);
        const output = tokenCount(usage.output_tokens);
        this.state.usage = {
          inputTokens: input,
          outputTokens: output,
          cachedInputTokens: tokenCount(usage.cached_input_tokens),
          reasoningTokens: tokenCount(usage.reasoning_output_tokens),
          totalTokens: input + output,
        };
        this.state.completed = true;
        return [{ type: 'usage', usage: this.state.usage }];
      }
      case 'turn.failed': {
        this.turnFailed = true;
        const message = event.error?.message ?? this.lastError ?? 'codex reported a failed turn';
        this.lastError = message;
        return [{ type: 'error', message }];
      }
      case 'error': {
        // Transient notices ("Reconnecting...") arrive as errors too; the last one explains a failure.
        if (typeof event.message === 'string') this.lastError = event.message;
        return [];
      }
      default:
        return [];
    }
  }

  private onItem(item: CodexItem): WorkerEvent[] {
    switch (item.type) {
      case 'agent_message': {
        const text = appendCapped('', item.text ?? '', this.maxTextChars);
        this.state.finalMessage = text;
        return [{ type: 'message', text }];
      }
      case 'command_execution': {
        const run = {
          command: item.command ?? '',
          exitCode: item.exit_code ?? null,
          status: item.status ?? 'unknown',
        };
        this.state.commands.push(run);
        return [{ type: 'command', ...run }];
      }
      case 'file_change': {
        const ok = item.status === 'completed';
        const detail = (item.changes ?? [])
          .map((change) => `${change.kind ?? 'change'} ${change.path ?? '?'}`)
          .join(', ');
        const call = {
          name: 'file_change',
          status: ok ? ('succeeded' as const) : ('failed' as const),
          detail,
        };
        this.state.toolCalls.push(call);
        return [{ type: 'tool', ...call }];
      }
      case 'mcp_tool_call': {
        const ok = item.status === 'completed';
        const call = {
          name: `${item.server ?? 'mcp'}.${item.tool ?? 'tool'}`,
          status: ok ? ('succeeded' as const) : ('failed' as const),
        };
        this.state.toolCalls.push(call);
        return [{ type: 'tool', ...call }];
      }
      case 'web_search': {
        const call = { name: 'web_search', status: 'succeeded' as const, detail: item.query ?? '' };
        this.state.toolCalls.push(call);
        return [{ type: 'tool', ...call }];
      }
      case 'error': {
        if (item.message) this.lastError = item.message;
        return [];
      }
      default:
        return [];
    }
  }

  result(): ParsedStream {
    const failed = this.turnFailed || (!this.state.completed && this.lastError !== undefined);
    return {
      ...this.state,
      commands: [...this.state.commands],
      toolCalls: [...this.state.toolCalls],
      errorMessage: failed ? this.lastError : undefined,
      errorStatus: failed && this.lastError !== undefined ? classifyErrorText(this.lastError) : undefined,
    };
  }
}

function classifyCodexExit(
  exec: ExecResult,
  parsed: ParsedStream,
): { status: StepStatus; message: string | undefined } {
  // The whole capture (head, marker, tail): the tail alone is only what came after the head's half.
  const stderr = exec.stderr.text.trim();
  const lines = stderr.split('\n').filter((line) => line.trim() !== '');
  // A clap usage error ends with "For more information, try '--help'."; its "error:" line says what is wrong.
  const lastLine = lines.findLast((line) => /^error:/i.test(line.trim())) ?? lines.pop() ?? '';
  if (parsed.eventCount === 0) {
    const status = classifyErrorText(stderr) === 'auth_error' ? 'auth_error' : 'cli_error';
    return {
      status,
      message: `codex exited with ${exec.signal ?? `code ${exec.exitCode}`} before printing any event${lastLine ? `: ${lastLine}` : ''}.`,
    };
  }
  return {
    status: 'cli_error',
    message: `codex ended (${exec.signal ?? `code ${exec.exitCode}`}) without completing its turn${lastLine ? `: ${lastLine}` : ''}.`,
  };
}

export const codexSpec: CliSpec = {
  kind: 'codex',
  defaultModel: CODEX_DEFAULT_MODEL,
  installHint: CODEX_INSTALL_HINT,
  sandboxed: false,

  async preflight(): Promise<string | undefined> {
    return undefined;
  },

  async buildInvocation(context: InvocationContext): Promise<Invocation> {
    const { config, request, stepDir } = context;
    const codexHome = path.join(stepDir, 'codex-home');
    const tmp = path.join(stepDir, 'tmp');
    await mkdir(codexHome, { recursive: true });
    await mkdir(tmp, { recursive: true });
    const endpoint = config.endpoint ?? { type: 'vendor' };
    const sourceEnv = config.sourceEnv ?? process.env;
    const set: Record<string, string> = { HOME: codexHome, CODEX_HOME: codexHome, TMPDIR: tmp };
    const extraNames = [...(config.extraEnvNames ?? [])];
    if (endpoint.type === 'offline') {
      set[OFFLINE_KEY_NAME] = 'offline';
    } else {
      extraNames.push(...CODEX_AUTH_ENV_NAMES);
      // A user's `codex login` keeps working: point the isolated home at their auth file, nothing else.
      const userCodexHome =
        lookupEnv(sourceEnv, 'CODEX_HOME') ?? path.join(config.userHome ?? os.homedir(), '.codex');
      const authFile = path.join(userCodexHome, 'auth.json');
      if (await fileExists(authFile)) await symlink(authFile, path.join(codexHome, 'auth.json'));
    }
    const lastMessageFile = path.join(stepDir, 'last-message.txt');
    return {
      args: codexArgs({
        sandbox: codexSandboxFor(request.role),
        cwd: context.cwd,
        model: context.model,
        lastMessageFile,
        ...(endpoint.type === 'offline'
          ? { offlineBaseUrl: endpoint.openaiBaseUrl, streamIdleTimeoutMs: request.limits.idleTimeoutMs * 2 }
          : {}),
      }),
      env: { set, extraNames },
      stdin: request.prompt,
      finalMessageFile: lastMessageFile,
    };
  },

  createParser: (maxTextChars) => new CodexEventParser(maxTextChars),
  classifyExit: classifyCodexExit,
};

export function createCodexAdapter(config: AdapterConfig): CliWorkerAdapter {
  return new CliWorkerAdapter(codexSpec, config);
}
