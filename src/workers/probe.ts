// Finds out whether the codex / gemini CLI is installed, which version it is, whether Tandem was tested
// against it and how it would authenticate, without reading a credential or writing to the user's home.
import { SANDBOX_MODES, sandboxWarning, type SandboxStatus } from '../core/sandbox';
import { mkdtempSync, realpathSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as z from 'zod';
import { baseEnvNames, buildChildEnv, HEADLESS_ENV, lookupEnv } from '../core/env';
import { describeContainment, ExecError, resolveBinary, runProcess, type ExecResult } from '../core/exec';
import { Redactor } from '../core/redact';
import { probeResultSchema, type AuthMode, type ProbeResult, type WorkerKind } from './contract';

export const CODEX_TESTED_RANGE = '>=0.169.0 <0.170.0';
export const GEMINI_TESTED_RANGE = '>=0.61.0 <0.62.0';

export const TESTED_RANGES: Readonly<Record<WorkerKind, string>> = Object.freeze({
  codex: CODEX_TESTED_RANGE,
  gemini: GEMINI_TESTED_RANGE,
});

export const INSTALL_HINTS: Readonly<Record<WorkerKind, string>> = Object.freeze({
  codex: 'npm install -g @openai/codex',
  gemini: 'npm install -g @google/gemini-cli',
});

/** The version of each CLI the contract suite pins; named in "install the tested version" advice. */
const TESTED_VERSIONS: Readonly<Record<WorkerKind, string>> = { codex: '0.169.0', gemini: '0.61.0' };

/** `gemini --version` takes seconds; 15 s leaves room for a cold disk without hanging a tool call. */
export const DEFAULT_PROBE_TIMEOUT_MS = 15_000;

/** Version output is one short line; anything longer is garbage and need not sit in memory. */
const MAX_VERSION_OUTPUT_BYTES = 16 * 1024;
/** How much of unexpected output an error message quotes. */
const MAX_QUOTED_CHARS = 120;

export interface ProbeOptions {
  /** The configured binary (an absolute path). Absent: the bare name `codex` / `gemini` looked up on PATH. */
  binaryPath?: string;
  /** Where PATH and the auth variable names are looked up. Default: process.env. Values are never reported. */
  env?: NodeJS.ProcessEnv;
  /** Where login files are looked for. Default: os.homedir(). */
  homeDir?: string;
  /** The workspace folder, for warnings about files in it that the CLI would read. */
  workspaceDir?: string;
  /** Limit on `--version`. Default: DEFAULT_PROBE_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** The stable document `tandem-mcp probe --json` prints; see docs/probe.md. */
export const PROBE_SCHEMA_VERSION = 1;
export const sandboxReportSchema = z.object({
  mode: z.enum(SANDBOX_MODES),
  tool: z.enum(['bubblewrap', 'sandbox-exec']).nullable(),
  path: z.string().nullable(),
  version: z.string().nullable(),
  works: z.boolean(),
  problem: z.string().nullable(),
  warning: z.string().nullable(),
});
export const probeReportSchema = z.object({
  schemaVersion: z.literal(PROBE_SCHEMA_VERSION),
  clis: z.array(probeResultSchema),
  /** How every step's processes are held, so that cancel and timeouts end daemons too (docs/probe.md). */
  processContainment: z.object({
    mechanism: z.enum(['cgroup', 'environment-scan', 'process-group']),
    detail: z.string(),
  }),
  sandbox: sandboxReportSchema.optional(),
});
export type ProbeReport = z.infer<typeof probeReportSchema>;

export function buildProbeReport(results: readonly ProbeResult[], sandbox?: SandboxStatus): ProbeReport {
  return {
    schemaVersion: PROBE_SCHEMA_VERSION,
    clis: [...results],
    processContainment: describeContainment(),
    ...(sandbox ? { sandbox: { ...sandbox, warning: sandboxWarning(sandbox) } } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------
// A tiny semver: X.Y.Z with an optional -prerelease, which is all either CLI prints. No dependency for this.

export interface Version {
  major: number;
  minor: number;
  patch: number;
  /** Dot-separated prerelease identifiers; empty for a release. */
  prerelease: string[];
}

const VERSION_PATTERN = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

export function parseVersion(text: string): Version | null {
  const match = text.match(VERSION_PATTERN);
  if (!match) return null;
  const [, major = '', minor = '', patch = '', prerelease] = match;
  const numbers = [major, minor, patch].map(Number);
  if (!numbers.every(Number.isSafeInteger)) return null;
  return {
    major: numbers[0] ?? 0,
    minor: numbers[1] ?? 0,
    patch: numbers[2] ?? 0,
    prerelease: prerelease === undefined ? [] : prerelease.split('.'),
  };
}

function compareIdentifiers(a: string, b: string): number {
  const aNumeric = /^\d+$/.test(a);
  const bNumeric = /^\d+$/.test(b);
  if (aNumeric && bNumeric) return Math.sign(Number(a) - Number(b));
  // Numeric identifiers rank below alphanumeric ones (semver 2.0.0, rule 11).
  if (aNumeric !== bNumeric) return aNumeric ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Semver precedence: negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: Version, b: Version): number {
  const core = Math.sign(a.major - b.major) || Math.sign(a.minor - b.minor) || Math.sign(a.patch - b.patch);
  if (core !== 0) return core;
  // A release ranks above its own prereleases: 1.0.0-rc.1 < 1.0.0.
  if (a.prerelease.length === 0 || b.prerelease.length === 0) {
    return Math.sign(b.prerelease.length - a.prerelease.length);
  }
  for (let i = 0; i < Math.min(a.prerelease.length, b.prerelease.length); i++) {
    const order = compareIdentifiers(a.prerelease[i] ?? '', b.prerelease[i] ?? '');
    if (order !== 0) return order;
  }
  return Math.sign(a.prerelease.length - b.prerelease.length);
}

const COMPARATOR_PATTERN = /^(>=|<=|>|<|=)?(.+)$/;

/**
 * True when `version` meets every comparator of a space-separated range such as ">=0.169.0 <0.170.0".
 * Like npm's semver, a prerelease satisfies a range only when a comparator names the same X.Y.Z with a
 * prerelease: nobody tested 0.170.0-alpha just because it sorts below 0.170.0.
 */
export function satisfiesRange(version: Version, range: string): boolean {
  const comparators = range
    .trim()
    .split(/\s+/)
    .map((part) => {
      const [, operator = '=', bound = ''] = part.match(COMPARATOR_PATTERN) ?? [];
      const parsed = parseVersion(bound);
      if (!parsed) throw new RangeError(`Invalid version range "${range}".`);
      return { operator, bound: parsed };
    });
  const holds = comparators.every(({ operator, bound }) => {
    const order = compareVersions(version, bound);
    switch (operator) {
      case '>=':
        return order >= 0;
      case '>':
        return order > 0;
      case '<=':
        return order <= 0;
      case '<':
        return order < 0;
      default:
        return order === 0;
    }
  });
  if (!holds || version.prerelease.length === 0) return holds;
  return comparators.some(
    ({ bound }) =>
      bound.prerelease.length > 0 &&
      bound.major === version.major &&
      bound.minor === version.minor &&
      bound.patch === version.patch,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Features by version.
//
// The rule: a feature is claimed only from the version where we know the CLI has it. For everything the
// tested versions do, that is the bottom of the tested range: older versions are unknown to the contract
// suite, newer ones are assumed to keep the feature (and carry an "outside the tested range" warning). The
// one earlier fact we rely on: codex's `exec --json` events took the names Tandem parses in 0.144.
// An unknown version claims nothing.

type Features = ProbeResult['features'];

const FEATURES_SINCE: Readonly<Record<WorkerKind, Readonly<Record<keyof Features, string>>>> = {
  codex: { jsonEvents: '0.144.0', sandboxModes: '0.169.0', resume: '0.169.0' },
  gemini: { jsonEvents: '0.61.0', sandboxModes: '0.61.0', resume: '0.61.0' },
};

function featuresOf(kind: WorkerKind, version: Version | null): Features {
  const has = (feature: keyof Features): boolean => {
    const since = parseVersion(FEATURES_SINCE[kind][feature]);
    return version !== null && since !== null && compareVersions(version, since) >= 0;
  };
  return { jsonEvents: has('jsonEvents'), sandboxModes: has('sandboxModes'), resume: has('resume') };
}

// ---------------------------------------------------------------------------------------------------------
// Authentication, from variable NAMES and file PRESENCE only. No value is read except the two switches
// that decide the mode (GOOGLE_GENAI_USE_VERTEXAI=true), and nothing read here is ever reported.

interface AuthFinding {
  auth: ProbeResult['auth'];
  warnings: string[];
}

function isSet(env: NodeJS.ProcessEnv, name: string): boolean {
  return (lookupEnv(env, name) ?? '').trim().length > 0;
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function found(mode: AuthMode, source: string, warnings: string[] = []): AuthFinding {
  return { auth: { mode, source }, warnings };
}

function detectCodexAuth(env: NodeJS.ProcessEnv, homeDir: string): AuthFinding {
  for (const name of ['CODEX_API_KEY', 'OPENAI_API_KEY']) {
    if (isSet(env, name)) return found('api_key', `${name} is set`);
  }
  // codex keeps its login under CODEX_HOME when that is set and never falls back to ~/.codex then.
  const codexHome = lookupEnv(env, 'CODEX_HOME')?.trim();
  const [authFile, shown] = codexHome
    ? [path.join(path.resolve(codexHome), 'auth.json'), '$CODEX_HOME/auth.json']
    : [path.join(homeDir, '.codex', 'auth.json'), '~/.codex/auth.json'];
  if (isFile(authFile)) return found('login', `${shown} exists`);
  return {
    auth: { mode: 'none', source: null },
    warnings: [
      'No codex credentials found: set OPENAI_API_KEY or run `codex login`. ' +
        "(Offline runs against Tandem's local model server need none.)",
    ],
  };
}

// The order follows gemini 0.61's own choice when its settings name no auth type (getAuthTypeFromEnv):
// GOOGLE_GENAI_USE_VERTEXAI=true wins over GEMINI_API_KEY. GOOGLE_API_KEY on its own is not enough:
// gemini reads it only for Vertex AI express mode and otherwise exits 41 asking for GEMINI_API_KEY.
function detectGeminiAuth(env: NodeJS.ProcessEnv, homeDir: string): AuthFinding {
  const warnings: string[] = [];
  if (lookupEnv(env, 'GOOGLE_GENAI_USE_VERTEXAI')?.trim() === 'true') {
    if (isSet(env, 'GOOGLE_CLOUD_PROJECT')) {
      const needsLocation = !isSet(env, 'GOOGLE_CLOUD_LOCATION') && !isSet(env, 'GOOGLE_API_KEY');
      return found(
        'vertex',
        'GOOGLE_GENAI_USE_VERTEXAI=true and GOOGLE_CLOUD_PROJECT is set',
        needsLocation
          ? ['Vertex AI needs GOOGLE_CLOUD_LOCATION next to GOOGLE_CLOUD_PROJECT: set it too.']
          : [],
      );
    }
    if (isSet(env, 'GOOGLE_API_KEY')) {
      return found('vertex', 'GOOGLE_GENAI_USE_VERTEXAI=true and GOOGLE_API_KEY is set (express mode)');
    }
    warnings.push(
      'GOOGLE_GENAI_USE_VERTEXAI=true makes gemini use Vertex AI, but neither GOOGLE_CLOUD_PROJECT (with ' +
        'GOOGLE_CLOUD_LOCATION) nor GOOGLE_API_KEY is set: set them, or unset GOOGLE_GENAI_USE_VERTEXAI.',
    );
  } else if (isSet(env, 'GEMINI_API_KEY')) {
    return found('api_key', 'GEMINI_API_KEY is set');
  } else if (isSet(env, 'GOOGLE_API_KEY')) {
    warnings.push(
      'GOOGLE_API_KEY is set, but gemini reads it only for Vertex AI (GOOGLE_GENAI_USE_VERTEXAI=true): ' +
        'for the Gemini API set GEMINI_API_KEY instead.',
    );
  }
  if (isFile(path.join(homeDir, '.gemini', 'oauth_creds.json'))) {
    return found('login', '~/.gemini/oauth_creds.json exists', warnings);
  }
  warnings.push(
    'No gemini credentials found: set GEMINI_API_KEY or run `gemini` once to log in. ' +
      "(Offline runs against Tandem's local model server need none.)",
  );
  return { auth: { mode: 'none', source: null }, warnings };
}

// ---------------------------------------------------------------------------------------------------------
// Running `<bin> --version`, with a cache.

type VersionOutcome = { ok: true; version: string } | { ok: false; error: string };

// In-flight and finished successful `--version` runs, keyed by the binary's identity. Only successes are
// kept: a failure can depend on the environment (no `node` on PATH) or on load (a timeout), so it is
// worth trying again. The promise itself is stored so that two probes at once spawn once.
const versionCache = new Map<string, Promise<VersionOutcome>>();

/** Forgets every cached `--version` answer (tests, or after the user reinstalls a CLI). */
export function clearProbeCache(): void {
  versionCache.clear();
}

function cacheKey(kind: WorkerKind, binary: string): string {
  // stat follows a symlink, so an npm update behind node_modules/.bin/gemini changes the key.
  const stat = statSync(binary);
  return [kind, realpathSync(binary), stat.mtimeMs, stat.size].join('\0');
}

const VERSION_LINE: Readonly<Record<WorkerKind, RegExp>> = {
  codex: /^codex-cli (\S+)$/,
  gemini: /^(\S+)$/,
};

const EXPECTED_FORMAT: Readonly<Record<WorkerKind, string>> = {
  codex: '`codex-cli X.Y.Z`',
  gemini: '`X.Y.Z`',
};

function parseVersionOutput(kind: WorkerKind, stdout: string): string | null {
  const match = stdout.trim().match(VERSION_LINE[kind]);
  const version = match?.[1];
  return version !== undefined && parseVersion(version) ? version : null;
}

// Control characters, DEL, C1 controls, U+FFFD (what undecodable bytes become) and lone surrogates: a quote
// of binary garbage should read as "???", not as a wall of \u escapes or a broken terminal.
const UNPRINTABLE = /(?![\n\t])\p{Cc}|\p{Cs}|\ufffd/gu;

/** A short, redacted quote of unexpected output with unprintable characters replaced, safe to show and log. */
function quoteOutput(text: string, redactor: Redactor): string {
  // Redact before cutting: a cut could leave half a key that no pattern recognises any more.
  const redacted = redactor.redact(text.trim()).replace(UNPRINTABLE, '?');
  const cut = redacted.length > MAX_QUOTED_CHARS ? `${redacted.slice(0, MAX_QUOTED_CHARS)}…` : redacted;
  return JSON.stringify(cut);
}

function describeFailure(
  kind: WorkerKind,
  binary: string,
  result: ExecResult,
  timeoutMs: number,
  redactor: Redactor,
): string {
  const command = `\`${binary} --version\``;
  const reinstall = `reinstall it with \`${INSTALL_HINTS[kind]}\``;
  if (result.timedOut) {
    return (
      `${command} gave no answer within ${timeoutMs / 1000} s and was stopped. ` +
      `Run it in a terminal to see what it waits for, or ${reinstall}.`
    );
  }
  if (result.exitCode !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
    const said = result.stderr.text.trim() || result.stdout.text.trim();
    const quote = said ? ` and printed ${quoteOutput(said, redactor)}` : '';
    return `${command} ${how}${quote}. Check that it runs in a terminal, or ${reinstall}.`;
  }
  const printed = result.stdout.text.trim()
    ? `printed ${quoteOutput(result.stdout.text, redactor)} (${result.stdout.totalBytes} bytes)`
    : 'printed nothing';
  return (
    `${command} ${printed}, which is not a ${kind} version (expected ${EXPECTED_FORMAT[kind]}). ` +
    `Check that the path points at the ${kind} CLI, or ${reinstall}.`
  );
}

/**
 * The child's whole environment: PATH and the locale from the caller's env (the npm launchers need `node`
 * on PATH), and a scratch HOME. Both CLIs write into their home even for `--version` (gemini leaves temp
 * files in ~/.gemini, codex installs helpers in CODEX_HOME), and a probe should leave the user's home as
 * it found it. No credential is passed: `--version` needs none.
 */
function versionEnv(
  kind: WorkerKind,
  source: NodeJS.ProcessEnv,
  scratchHome: string,
): Record<string, string> {
  const set: Record<string, string> = { HOME: scratchHome };
  if (process.platform === 'win32') set.USERPROFILE = scratchHome;
  // gemini otherwise re-executes itself in a second node process (for heap flags); skipping that halves
  // the time `--version` takes, and `--version` needs no big heap.
  if (kind === 'gemini') set.GEMINI_CLI_NO_RELAUNCH = 'true';
  if (kind === 'codex') set.CODEX_HOME = path.join(scratchHome, '.codex');
  return buildChildEnv({ set }, source);
}

async function runVersion(
  kind: WorkerKind,
  binary: string,
  source: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<VersionOutcome> {
  const scratchHome = mkdtempSync(path.join(os.tmpdir(), `tandem-probe-${kind}-`));
  try {
    const env = versionEnv(kind, source, scratchHome);
    const result = await runProcess({
      command: binary,
      args: ['--version'],
      cwd: scratchHome,
      // Exactly the environment built above: nothing passes through from this process's own env.
      env: { omitNames: [...baseEnvNames(), ...Object.keys(HEADLESS_ENV)], set: env },
      timeoutMs,
      killGraceMs: 1000,
      maxCaptureBytes: MAX_VERSION_OUTPUT_BYTES,
      installHint: INSTALL_HINTS[kind],
    });
    const version = result.exitCode === 0 ? parseVersionOutput(kind, result.stdout.text) : null;
    if (version !== null) return { ok: true, version };
    return {
      ok: false,
      error: describeFailure(kind, binary, result, timeoutMs, new Redactor({ env: source })),
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, error: `Could not run \`${binary} --version\`: ${message}` };
  } finally {
    rmSync(scratchHome, { recursive: true, force: true });
  }
}

function cachedVersion(
  kind: WorkerKind,
  binary: string,
  source: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<VersionOutcome> {
  const key = cacheKey(kind, binary);
  const cached = versionCache.get(key);
  if (cached) return cached;
  const pending = runVersion(kind, binary, source, timeoutMs)
    .catch((error: unknown): VersionOutcome => {
      // No scratch directory, say: still a result, never a rejection shared by every waiting probe.
      const message = error instanceof Error ? error.message : String(error);
      return { ok: false, error: `Could not run \`${binary} --version\`: ${message}` };
    })
    .then((outcome) => {
      if (!outcome.ok) versionCache.delete(key);
      return outcome;
    });
  versionCache.set(key, pending);
  return pending;
}

// ---------------------------------------------------------------------------------------------------------

function notInstalledError(kind: WorkerKind, binaryPath: string | undefined, error: unknown): string {
  const install = `Install it with \`${INSTALL_HINTS[kind]}\``;
  if (error instanceof ExecError && error.code === 'INVALID_ARGUMENT') {
    return `The configured ${kind} path "${binaryPath}" is not usable: ${error.message}`;
  }
  if (binaryPath !== undefined) {
    return `No executable file at the configured ${kind} path "${binaryPath}". ${install}, or fix the path.`;
  }
  return `${kind} was not found on PATH. ${install}, or configure the path to its binary.`;
}

/**
 * Probes one CLI. Never throws: a missing binary is `installed: false` with the install hint, and a binary
 * that misbehaves on `--version` is `installed: true, version: null` with an error that says what to do.
 */
export async function probeCli(kind: WorkerKind, options: ProbeOptions = {}): Promise<ProbeResult> {
  const env = options.env ?? process.env;
  const homeDir = options.homeDir ?? os.homedir();
  const { auth, warnings: authWarnings } =
    kind === 'codex' ? detectCodexAuth(env, homeDir) : detectGeminiAuth(env, homeDir);
  const base = {
    kind,
    installHint: INSTALL_HINTS[kind],
    testedRange: TESTED_RANGES[kind],
    auth,
  };
  const laterWarnings = [...authWarnings];

  let binary: string;
  try {
    binary = resolveBinary(options.binaryPath ?? kind, lookupEnv(env, 'PATH'), INSTALL_HINTS[kind]);
  } catch (error) {
    return probeResultSchema.parse({
      ...base,
      installed: false,
      path: null,
      version: null,
      versionInTestedRange: false,
      features: featuresOf(kind, null),
      warnings: laterWarnings,
      error: notInstalledError(kind, options.binaryPath, error),
    });
  }

  let outcome: VersionOutcome;
  try {
    outcome = await cachedVersion(kind, binary, env, options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS);
  } catch (error) {
    // The binary vanished between the lookup and the stat, or similar: report it, do not throw.
    outcome = {
      ok: false,
      error: `Could not inspect ${binary}: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
  const versionText = outcome.ok ? outcome.version : null;
  const version = versionText === null ? null : parseVersion(versionText);
  const inRange = version !== null && satisfiesRange(version, TESTED_RANGES[kind]);
  const warnings: string[] = [];
  if (version !== null && !inRange) {
    warnings.push(
      `${kind} ${versionText} is outside the tested range ${TESTED_RANGES[kind]}: its ` +
        'event stream may differ from what Tandem parses. Install the tested version with ' +
        `\`${INSTALL_HINTS[kind]}@${TESTED_VERSIONS[kind]}\`.`,
    );
  }
  return probeResultSchema.parse({
    ...base,
    installed: true,
    path: binary,
    version: versionText,
    versionInTestedRange: inRange,
    features: featuresOf(kind, version),
    warnings: [...warnings, ...laterWarnings],
    error: outcome.ok ? null : outcome.error,
  });
}

export interface ProbeAllOptions extends Omit<ProbeOptions, 'binaryPath'> {
  /** Configured codex binary; absent: `codex` on PATH. */
  codexPath?: string;
  /** Configured gemini binary; absent: `gemini` on PATH. */
  geminiPath?: string;
}

/** Probes codex and gemini in parallel; the result is always [codex, gemini]. */
export async function probeAll(options: ProbeAllOptions = {}): Promise<[ProbeResult, ProbeResult]> {
  const { codexPath, geminiPath, ...shared } = options;
  return Promise.all([
    probeCli('codex', codexPath === undefined ? shared : { ...shared, binaryPath: codexPath }),
    probeCli('gemini', geminiPath === undefined ? shared : { ...shared, binaryPath: geminiPath }),
  ]);
}
