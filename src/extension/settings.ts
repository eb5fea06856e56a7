// The `tandem.*` settings as the server needs them: read through a getter (the editor's configuration in the
// extension, a plain object in tests) and checked, so a hand-edited settings.json cannot start a broken server.
import { MAX_SESSIONS_SETTING, MAX_SESSION_IDLE_MS } from '../mcp/http-transport';
import { DEFAULT_SANDBOX_MODE, SANDBOX_MODES, isSandboxMode, type SandboxMode } from '../core/sandbox';
import { modelNameSchema, stepLimitsSchema, type StepLimits, type WorkerKind } from '../workers/contract';

export const SETTINGS_SECTION = 'tandem';
export const MIN_CONCURRENCY = 1;
export const MAX_CONCURRENCY = 16;
export const DEFAULT_CONCURRENCY = 4;

export interface TandemSettings {
  /** Configured binaries; absent: the bare name looked up on PATH. */
  cliPaths: Partial<Record<WorkerKind, string>>;
  concurrency: number;
  /** Point both CLIs at the built-in offline model instead of the vendors' APIs. */
  offlineModel: boolean;
  /** Default model per CLI; absent: the adapter's own default. */
  models: Partial<Record<WorkerKind, string>>;
  /** Only the limits the user set; the rest keep the step defaults. */
  limits: Partial<StepLimits>;
  /** Environment variables passed to the CLIs beyond the built-in allowlist. */
  extraEnvNames: string[];
  /** The MCP server's session lifetime, only what the user set; the rest keep the server's defaults. */
  mcpSessions: { idleMs?: number; maxSessions?: number };
  /** The OS sandbox of gemini steps and verification commands. */
  sandbox: SandboxMode;
  /** bubblewrap's path; absent: `bwrap` on PATH. */
  bwrapPath?: string;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** A setting in seconds (or bytes) checked against the step-limit schema; out of range or not a number: warned and left out. */
function readLimit(
  source: SettingsSource,
  key: string,
  field: 'timeoutMs' | 'idleTimeoutMs' | 'maxOutputBytes',
  scale: number,
  warn: (line: string) => void,
): number | undefined {
  const value = source.get<unknown>(key);
  if (value === undefined || value === null || value === 0) return undefined;
  const shape = stepLimitsSchema.shape[field];
  const parsed = typeof value === 'number' ? shape.safeParse(Math.round(value * scale)) : undefined;
  if (parsed?.success) return parsed.data;
  warn(
    `tandem.${key} ${JSON.stringify(value)} is not valid (${parsed?.error.issues[0]?.message ?? 'expected a number'}); using the default`,
  );
  return undefined;
}

/** What both `vscode.WorkspaceConfiguration` and a test's stand-in offer. */
export interface SettingsSource {
  get<T>(key: string): T | undefined;
}

export function readSettings(
  source: SettingsSource,
  warn: (line: string) => void = () => undefined,
): TandemSettings {
  const cliPaths: Partial<Record<WorkerKind, string>> = {};
  for (const [kind, key] of [
    ['codex', 'codexPath'],
    ['gemini', 'geminiPath'],
  ] as const) {
    const value = source.get<unknown>(key);
    if (typeof value === 'string' && value.trim() !== '') cliPaths[kind] = value.trim();
    else if (value !== undefined && value !== '' && value !== null) {
      warn(`tandem.${key} must be a path string; using "${kind}" from PATH`);
    }
  }

  let concurrency = DEFAULT_CONCURRENCY;
  const requested = source.get<unknown>('concurrency');
  if (requested !== undefined && requested !== null) {
    if (typeof requested === 'number' && Number.isInteger(requested)) {
      concurrency = Math.min(MAX_CONCURRENCY, Math.max(MIN_CONCURRENCY, requested));
      if (concurrency !== requested) {
        warn(
          `tandem.concurrency ${requested} is outside ${MIN_CONCURRENCY}-${MAX_CONCURRENCY}; using ${concurrency}`,
        );
      }
    } else {
      warn(`tandem.concurrency must be a whole number; using ${DEFAULT_CONCURRENCY}`);
    }
  }

  const models: Partial<Record<WorkerKind, string>> = {};
  for (const [kind, key] of [
    ['codex', 'codexModel'],
    ['gemini', 'geminiModel'],
  ] as const) {
    const value = source.get<unknown>(key);
    if (value === undefined || value === null || value === '') continue;
    const parsed = modelNameSchema.safeParse(typeof value === 'string' ? value.trim() : value);
    if (parsed.success) models[kind] = parsed.data;
    else warn(`tandem.${key} ${JSON.stringify(value)} is not a model name; using ${kind}'s default`);
  }

  const limits: Partial<StepLimits> = {};
  const timeoutMs = readLimit(source, 'stepTimeoutSeconds', 'timeoutMs', 1000, warn);
  if (timeoutMs !== undefined) limits.timeoutMs = timeoutMs;
  const idleTimeoutMs = readLimit(source, 'idleTimeoutSeconds', 'idleTimeoutMs', 1000, warn);
  if (idleTimeoutMs !== undefined) limits.idleTimeoutMs = idleTimeoutMs;
  const maxOutputBytes = readLimit(source, 'maxOutputKiB', 'maxOutputBytes', 1024, warn);
  if (maxOutputBytes !== undefined) limits.maxOutputBytes = maxOutputBytes;

  const extraEnvNames: string[] = [];
  const names = source.get<unknown>('extraEnvNames');
  if (Array.isArray(names)) {
    for (const name of names) {
      if (typeof name === 'string' && ENV_NAME.test(name)) extraEnvNames.push(name);
      else warn(`tandem.extraEnvNames: ${JSON.stringify(name)} is not a variable name; left out`);
    }
  } else if (names !== undefined && names !== null) {
    warn('tandem.extraEnvNames must be a list of variable names; none passed');
  }

  const mcpSessions: TandemSettings['mcpSessions'] = {};
  const idleSeconds = wholeNumberSetting(source, 'sessionIdleSeconds', 1, MAX_SESSION_IDLE_MS / 1000, warn);
  if (idleSeconds !== undefined) mcpSessions.idleMs = idleSeconds * 1000;
  const maxSessions = wholeNumberSetting(source, 'maxSessions', 1, MAX_SESSIONS_SETTING, warn);
  if (maxSessions !== undefined) mcpSessions.maxSessions = maxSessions;
  let sandbox = DEFAULT_SANDBOX_MODE;
  const requestedSandbox = source.get<unknown>('sandbox');
  if (isSandboxMode(requestedSandbox)) sandbox = requestedSandbox;
  else if (requestedSandbox !== undefined && requestedSandbox !== null) {
    warn(`tandem.sandbox must be one of ${SANDBOX_MODES.join(', ')}; using ${DEFAULT_SANDBOX_MODE}`);
  }
  const bwrapPath = source.get<unknown>('bwrapPath');

  return {
    ...(typeof bwrapPath === 'string' && bwrapPath.trim() !== '' ? { bwrapPath: bwrapPath.trim() } : {}),
    sandbox,
    cliPaths,
    concurrency,
    offlineModel: source.get<unknown>('offlineModel') === true,
    models,
    limits,
    extraEnvNames,
    mcpSessions,
  };
}

/** A whole number within [min, max]; anything else is warned about and left to the default. */
function wholeNumberSetting(
  source: SettingsSource,
  key: string,
  min: number,
  max: number,
  warn: (line: string) => void,
): number | undefined {
  const value = source.get<unknown>(key);
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
  warn(
    `tandem.${key} ${JSON.stringify(value)} is not a whole number from ${min} to ${max}; using the default`,
  );
  return undefined;
}
