// The gemini adapter: the strict `gemini -o stream-json` command template with an isolated HOME and our
// own settings.json, its JSONL event parser, and classification from the final `result` event (gemini
// can exit 0 after an error). Tested against gemini-cli 0.61.x.
import { mkdir, symlink, writeFile } from 'node:fs/promises';
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
import { roleCanWrite, type Role, type StepStatus, type ToolCall, type WorkerEvent } from './contract';

export const GEMINI_DEFAULT_MODEL = 'gemini-2.5-flash';
export const GEMINI_INSTALL_HINT = 'npm install -g @google/gemini-cli';
export const GEMINI_AUTH_ENV_NAMES = [
  'GEMINI_API_KEY',
  'GOOGLE_API_KEY',
  'GOOGLE_GENAI_USE_VERTEXAI',
  'GOOGLE_CLOUD_PROJECT',
  'GOOGLE_CLOUD_LOCATION',
  'GOOGLE_APPLICATION_CREDENTIALS',
] as const;
/** Login files copied by reference into the isolated home so a user's `gemini` login keeps working. */
const GEMINI_LOGIN_FILES = ['oauth_creds.json', 'google_accounts.json'] as const;
const LOOPBACK_URL = /^http:\/\/127\.0\.0\.1:\d{1,5}\/?$/;

/** Exit codes of gemini-cli's fatal errors (packages/core FatalError subclasses). */
export const GEMINI_EXIT_CODES: Readonly<Record<number, { status: StepStatus; meaning: string }>> = {
  41: { status: 'auth_error', meaning: 'authentication failed' },
  42: { status: 'cli_error', meaning: 'invalid input' },
  44: { status: 'cli_error', meaning: 'sandbox error' },
  52: { status: 'cli_error', meaning: 'invalid configuration' },
  53: { status: 'failed', meaning: 'the turn limit was reached' },
  54: { status: 'failed', meaning: 'a tool failed fatally' },
  55: { status: 'cli_error', meaning: 'the workspace is not trusted' },
  130: { status: 'cancelled', meaning: 'cancelled' },
};

/**
 * gemini is told the workspace is not trusted (GEMINI_CLI_TRUST_WORKSPACE=false): then it reads no
 * project settings (MCP servers, tool discovery and call commands, hooks, sandbox, env overrides), no
 * project policies, skills, hooks or GEMINI.md, no `.gemini/.env`, and starts no stdio MCP server. An
 * untrusted workspace also forces the `default` approval mode, in which headless gemini offers only
 * the tools a policy allows; Tandem's own user-tier policy (in the step's home, which a workspace
 * cannot reach) decides what each role may do.
 */
export const GEMINI_UNTRUSTED_ENV: Readonly<Record<string, string>> = Object.freeze({
  GEMINI_CLI_TRUST_WORKSPACE: 'false',
});

export type GeminiToolPolicy = 'edit' | 'read-only';

export function geminiToolPolicyFor(role: Role): GeminiToolPolicy {
  return roleCanWrite(role) ? 'edit' : 'read-only';
}

/** Tools that run programs, fetch URLs or load workspace skills: no role gets them headless. */
const GEMINI_DENIED_TOOLS = ['run_shell_command', 'activate_skill', 'web_fetch'] as const;
const GEMINI_EDIT_TOOLS = ['write_file', 'replace'] as const;

/**
 * Tandem's policy file for gemini's user tier, which outranks the default, extension and workspace
 * tiers. A writer may edit files (each path checked by gemini's allowed-path checker, as in
 * auto_edit); no role may run a shell command, fetch a URL or activate a skill; a read-only role may
 * not edit either, not even the plan files plan mode would allow.
 */
export function geminiPolicy(policy: GeminiToolPolicy): string {
  const list = (names: readonly string[]) => `[${names.map((name) => JSON.stringify(name)).join(', ')}]`;
  const denied = policy === 'edit' ? GEMINI_DENIED_TOOLS : [...GEMINI_EDIT_TOOLS, ...GEMINI_DENIED_TOOLS];
  const lines = [
    '# Written by Tandem for one step; rebuilt for every step.',
    '[[rule]]',
    `toolName = ${list(denied)}`,
    'decision = "deny"',
    'priority = 900',
  ];
  if (policy === 'edit') {
    for (const tool of GEMINI_EDIT_TOOLS) {
      lines.push(
        '',
        '[[rule]]',
        `toolName = ${JSON.stringify(tool)}`,
        'decision = "allow"',
        'priority = 100',
        '',
        '[[safety_checker]]',
        `toolName = ${JSON.stringify(tool)}`,
        'priority = 100',
        '[safety_checker.checker]',
        'type = "in-process"',
        'name = "allowed-path"',
        'required_context = ["environment"]',
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

export function geminiArgs(options: { model: string }): string[] {
  // No --prompt: the prompt is read from stdin, so it is never parsed as a flag. No --skip-trust: it
  // would trust the workspace (see GEMINI_UNTRUSTED_ENV); the approval mode is the one gemini allows an
  // untrusted workspace, and the policy file decides the rest.
  return ['--approval-mode', 'default', '--output-format', 'stream-json', '--model', options.model];
}

export function geminiSettings(options: { model: string; authType: string }): Record<string, unknown> {
  return {
    // Folder trust stays off: with it on, an untrusted workspace is a fatal error headless.
    security: { auth: { selectedType: options.authType }, folderTrust: { enabled: false } },
    general: { disableAutoUpdate: true, disableUpdateNag: true, maxAttempts: 1 },
    privacy: { usageStatisticsEnabled: false },
    telemetry: { enabled: false },
    ide: { enabled: false },
    model: { name: options.model },
    // A workspace .env would otherwise inject variables past Tandem's environment allowlist.
    advanced: { ignoreLocalEnv: true },
    // gemini loads `.gemini/agents/*.md` even from an untrusted workspace when folder trust is off, and
    // such an agent can declare its own MCP servers.
    experimental: { enableAgents: false },
    hooksConfig: { enabled: false },
  };
}

interface GeminiEvent {
  type?: string;
  role?: string;
  content?: string;
  delta?: boolean;
  tool_name?: string;
  tool_id?: string;
  parameters?: Record<string, unknown>;
  status?: string;
  output?: string;
  error?: { type?: string; message?: string };
  message?: string;
  severity?: string;
  stats?: { input_tokens?: number; output_tokens?: number; cached?: number; total_tokens?: number };
}

const REFUSAL_TYPES = new Set([
  'policy_violation',
  'tool_not_registered',
  'permission_denied',
  'user_cancelled',
]);

export class GeminiEventParser implements EventParser {
  private readonly state: ParsedStream = emptyParsedStream();
  /** Assistant text since the last tool call: the final answer is what came after the last tool. */
  private segment = '';
  private allText = '';
  private readonly pendingTools = new Map<string, { name: string; command: string | undefined }>();

  constructor(private readonly maxTextChars: number) {}

  push(line: string, truncated: boolean): WorkerEvent[] {
    const event = decodeEventLine<GeminiEvent>(line, truncated, this.state);
    if (!event) return [];
    switch (event.type) {
      case 'message': {
        if (event.role !== 'assistant' || typeof event.content !== 'string') return [];
        this.segment = appendCapped(this.segment, event.content, this.maxTextChars);
        this.allText = appendCapped(this.allText, event.content, this.maxTextChars);
        return [{ type: 'message', text: event.content }];
      }
      case 'tool_use': {
        this.segment = '';
        const name = event.tool_name ?? 'tool';
        const command = typeof event.parameters?.command === 'string' ? event.parameters.command : undefined;
        if (event.tool_id) this.pendingTools.set(event.tool_id, { name, command });
        return [];
      }
      case 'tool_result':
        return this.onToolResult(event);
      case 'result': {
        const stats = event.stats ?? {};
        const input = tokenCount(stats.input_tokens);
        const output = tokenCount(stats.output_tokens);
        this.state.usage = {
          inputTokens: input,
          outputTokens: output,
          cachedInputTokens: tokenCount(stats.cached),
          reasoningTokens: 0,
          totalTokens: tokenCount(stats.total_tokens) || input + output,
        };
        if (event.status === 'success') {
          this.state.completed = true;
        } else {
          const message = event.error?.message ?? `gemini reported status ${event.status ?? 'unknown'}`;
          this.state.errorMessage = message;
          this.state.errorStatus = classifyErrorText(`${event.error?.type ?? ''} ${message}`);
        }
        return [{ type: 'usage', usage: this.state.usage }];
      }
      case 'error': {
        const message = event.message ?? event.error?.message;
        return message ? [{ type: 'error', message }] : [];
      }
      default:
        return [];
    }
  }

  private onToolResult(event: GeminiEvent): WorkerEvent[] {
    const pending = event.tool_id ? this.pendingTools.get(event.tool_id) : undefined;
    if (event.tool_id) this.pendingTools.delete(event.tool_id);
    const name = pending?.name ?? 'tool';
    let status: ToolCall['status'];
    if (event.status === 'success') status = 'succeeded';
    else if (
      REFUSAL_TYPES.has(event.error?.type ?? '') ||
      /denied by policy|plan mode|not in workspace|outside the allowed workspace/i.test(
        event.error?.message ?? '',
      )
    )
      status = 'refused';
    else status = 'failed';
    const detail = event.error?.message;
    const call: ToolCall = detail === undefined ? { name, status } : { name, status, detail };
    this.state.toolCalls.push(call);
    const events: WorkerEvent[] = [{ type: 'tool', ...call }];
    if (pending?.command !== undefined) {
      const run = { command: pending.command, exitCode: null, status: event.status ?? 'unknown' };
      this.state.commands.push(run);
      events.push({ type: 'command', ...run });
    }
    return events;
  }

  result(): ParsedStream {
    return {
      ...this.state,
      finalMessage: this.segment !== '' ? this.segment : this.allText,
      commands: [...this.state.commands],
      toolCalls: [...this.state.toolCalls],
    };
  }
}

function classifyGeminiExit(
  exec: ExecResult,
  parsed: ParsedStream,
): { status: StepStatus; message: string | undefined } {
  // The whole capture (head, marker, tail): the tail alone is only what came after the head's half.
  const stderr = exec.stderr.text.trim();
  const meaningful = stderr
    .split('\n')
    .filter(
      (line) => line.trim() !== '' && !/256-color|YOLO mode|Ripgrep is not available|^\s+at /.test(line),
    );
  const detail = meaningful.slice(-3).join(' ').slice(0, 500);
  const known = exec.exitCode === null ? undefined : GEMINI_EXIT_CODES[exec.exitCode];
  if (known) {
    return {
      status: known.status,
      message: `gemini exited with code ${exec.exitCode} (${known.meaning})${detail ? `: ${detail}` : ''}.`,
    };
  }
  if (classifyErrorText(stderr) === 'auth_error') {
    return { status: 'auth_error', message: `gemini could not authenticate${detail ? `: ${detail}` : ''}.` };
  }
  const how = exec.signal ?? `code ${exec.exitCode}`;
  return {
    status: 'cli_error',
    message:
      parsed.eventCount === 0
        ? `gemini exited with ${how} before printing any event${detail ? `: ${detail}` : ''}.`
        : `gemini ended (${how}) without a final result event${detail ? `: ${detail}` : ''}.`,
  };
}

export const geminiSpec: CliSpec = {
  kind: 'gemini',
  defaultModel: GEMINI_DEFAULT_MODEL,
  installHint: GEMINI_INSTALL_HINT,
  // gemini's file tools are confined by gemini alone: its steps run in Tandem's OS sandbox.
  sandboxed: true,

  async preflight(): Promise<string | undefined> {
    // Nothing in the workspace needs refusing: gemini is told not to trust it (GEMINI_UNTRUSTED_ENV).
    return undefined;
  },

  async buildInvocation(context: InvocationContext): Promise<Invocation> {
    const { config, request, stepDir } = context;
    const home = path.join(stepDir, 'home');
    const tmp = path.join(stepDir, 'tmp');
    const geminiDir = path.join(home, '.gemini');
    await mkdir(geminiDir, { recursive: true });
    await mkdir(tmp, { recursive: true });
    const endpoint = config.endpoint ?? { type: 'vendor' };
    const sourceEnv = config.sourceEnv ?? process.env;
    const set: Record<string, string> = {
      HOME: home,
      TMPDIR: tmp,
      GEMINI_CLI_NO_RELAUNCH: 'true',
      ...GEMINI_UNTRUSTED_ENV,
    };
    const extraNames = [...(config.extraEnvNames ?? [])];
    const loginFiles: string[] = [];
    let authType = 'gemini-api-key';
    if (endpoint.type === 'offline') {
      if (!LOOPBACK_URL.test(endpoint.geminiBaseUrl)) {
        throw new Error(`The offline model URL must be http://127.0.0.1:PORT, got ${endpoint.geminiBaseUrl}`);
      }
      set.GEMINI_API_KEY = 'offline';
      set.GOOGLE_GEMINI_BASE_URL = endpoint.geminiBaseUrl.replace(/\/$/, '');
    } else {
      extraNames.push(...GEMINI_AUTH_ENV_NAMES);
      // gemini uses GOOGLE_API_KEY only for Vertex AI; headless API-key auth needs GEMINI_API_KEY.
      const hasKey = (lookupEnv(sourceEnv, 'GEMINI_API_KEY') ?? '') !== '';
      const vertex = (lookupEnv(sourceEnv, 'GOOGLE_GENAI_USE_VERTEXAI') ?? '').toLowerCase() === 'true';
      const userGemini = path.join(config.userHome ?? os.homedir(), '.gemini');
      if (vertex) authType = 'vertex-ai';
      else if (!hasKey && (await fileExists(path.join(userGemini, 'oauth_creds.json')))) {
        authType = 'oauth-personal';
        for (const file of GEMINI_LOGIN_FILES) {
          const source = path.join(userGemini, file);
          if (!(await fileExists(source))) continue;
          await symlink(source, path.join(geminiDir, file));
          loginFiles.push(source);
        }
      }
    }
    await writeFile(
      path.join(geminiDir, 'settings.json'),
      JSON.stringify(geminiSettings({ model: context.model, authType }), null, 2),
      { mode: 0o600 },
    );
    await mkdir(path.join(geminiDir, 'policies'));
    await writeFile(
      path.join(geminiDir, 'policies', 'tandem.toml'),
      geminiPolicy(geminiToolPolicyFor(request.role)),
      { mode: 0o600 },
    );
    return {
      args: geminiArgs({ model: context.model }),
      env: { set, extraNames },
      stdin: request.prompt,
      sandboxReadable: loginFiles,
    };
  },

  createParser: (maxTextChars) => new GeminiEventParser(maxTextChars),
  classifyExit: classifyGeminiExit,
};

export function createGeminiAdapter(config: AdapterConfig): CliWorkerAdapter {
  return new CliWorkerAdapter(geminiSpec, config);
}
