// The environment allowlist for child processes: nothing from the parent env reaches a child unless it is
// named here or by the caller. Also decides which variable names hold secrets, for redaction and logging.

/**
 * Names every child gets from the parent when present. TERM is left out on purpose: the CLIs run headless
 * on pipes, and a TERM inherited from the editor's terminal invites colour codes and cursor control that
 * would pollute the JSONL we parse. Instead every child gets NO_COLOR=1 (see HEADLESS_ENV), the
 * convention both CLIs' libraries honour.
 */
const POSIX_BASE_NAMES = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'LC_MESSAGES',
  'TZ',
  'TMPDIR',
] as const;

// Without SYSTEMROOT many Windows programs (Node among them) cannot even start; HOMEDRIVE/HOMEPATH and
// SYSTEMDRIVE are what older tools use to find the home directory when USERPROFILE is not consulted.
const WIN32_EXTRA_NAMES = [
  'SYSTEMROOT',
  'SYSTEMDRIVE',
  'WINDIR',
  'PATHEXT',
  'COMSPEC',
  'USERPROFILE',
  'HOMEDRIVE',
  'HOMEPATH',
  'APPDATA',
  'LOCALAPPDATA',
  'TEMP',
  'TMP',
] as const;

export function baseEnvNames(platform: NodeJS.Platform = process.platform): readonly string[] {
  return platform === 'win32' ? [...POSIX_BASE_NAMES, ...WIN32_EXTRA_NAMES] : [...POSIX_BASE_NAMES];
}

export const BASE_ENV_NAMES: readonly string[] = Object.freeze(baseEnvNames());

/**
 * Proxy and CA settings. Not in the base set because they are a deployment choice, but a worker adapter
 * behind a corporate proxy needs them to reach its API; pass them as extraNames. On POSIX both spellings
 * exist in the wild (curl reads the lower-case ones).
 */
export const NETWORK_ENV_NAMES: readonly string[] = Object.freeze([
  'HTTPS_PROXY',
  'HTTP_PROXY',
  'NO_PROXY',
  'https_proxy',
  'http_proxy',
  'no_proxy',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'NODE_EXTRA_CA_CERTS',
]);

/** Values every child gets unless the spec overrides or omits them (why: see POSIX_BASE_NAMES). */
export const HEADLESS_ENV: Readonly<Record<string, string>> = Object.freeze({ NO_COLOR: '1' });

export interface ChildEnvSpec {
  /** More names to pass through from the source env when present (e.g. OPENAI_API_KEY). */
  extraNames?: readonly string[];
  /** Explicit values; they win over anything passed through (e.g. HOME of an isolated dir, CODEX_HOME). */
  set?: Readonly<Record<string, string>>;
  /** Names to leave out of the pass-through and the headless defaults; `set` still applies. */
  omitNames?: readonly string[];
}

export class EnvNameError extends Error {
  override readonly name = 'EnvNameError';
  readonly code = 'INVALID_ENV_NAME';

  constructor(readonly envName: string) {
    super(
      `Invalid environment variable name ${JSON.stringify(envName)}: a name must start with a letter or ` +
        'an underscore and contain only ASCII letters, digits and underscores.',
    );
  }
}

/** A value that cannot be handed to a process. The message names the variable, never the value. */
export class EnvValueError extends Error {
  override readonly name = 'EnvValueError';
  readonly code = 'INVALID_ENV_VALUE';

  constructor(readonly envName: string) {
    super(
      `The value of environment variable ${envName} contains a NUL character, which no process ` +
        'environment can carry; remove it from the value.',
    );
  }
}

const VALID_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function assertEnvName(name: string): void {
  if (!VALID_NAME.test(name)) throw new EnvNameError(name);
}

/**
 * Looks a name up the way the platform does: Windows env names are case-insensitive (`Path` is `PATH`),
 * POSIX ones are not. An exact-case key wins over other spellings.
 */
export function lookupEnv(
  source: NodeJS.ProcessEnv,
  name: string,
  platform: NodeJS.Platform = process.platform,
): string | undefined {
  if (Object.prototype.hasOwnProperty.call(source, name)) return source[name];
  if (platform !== 'win32') return undefined;
  const wanted = name.toUpperCase();
  for (const key of Object.keys(source)) {
    if (key.toUpperCase() === wanted) return source[key];
  }
  return undefined;
}

/**
 * Builds a child's whole environment: the headless defaults, then the base names and `extraNames` copied
 * from `source` when present, then `set`. Throws EnvNameError for a malformed name anywhere in the spec
 * and EnvValueError for a value with a NUL byte.
 */
export function buildChildEnv(
  spec: ChildEnvSpec = {},
  source: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): Record<string, string> {
  const extraNames = spec.extraNames ?? [];
  const omitNames = spec.omitNames ?? [];
  const explicit = Object.entries(spec.set ?? {});
  for (const name of [...extraNames, ...omitNames]) assertEnvName(name);
  for (const [name, value] of explicit) {
    assertEnvName(name);
    assertEnvValue(name, value);
  }

  const env = new ChildEnvBuilder(platform);
  const omitted = new Set(omitNames.map((name) => env.keyOf(name)));
  for (const [name, value] of Object.entries(HEADLESS_ENV)) {
    if (!omitted.has(env.keyOf(name))) env.put(name, value);
  }
  for (const name of [...baseEnvNames(platform), ...extraNames]) {
    if (omitted.has(env.keyOf(name))) continue;
    const value = lookupEnv(source, name, platform);
    if (value === undefined) continue;
    assertEnvValue(name, value);
    env.put(name, value);
  }
  for (const [name, value] of explicit) env.put(name, value);
  return env.result;
}

function assertEnvValue(name: string, value: string): void {
  if (value.includes('\0')) throw new EnvValueError(name);
}

/** Keeps one key per variable, so `Path` and `PATH` never both reach a Windows child. */
class ChildEnvBuilder {
  readonly result: Record<string, string> = {};
  private readonly spelling = new Map<string, string>();

  constructor(private readonly platform: NodeJS.Platform) {}

  keyOf(name: string): string {
    return this.platform === 'win32' ? name.toUpperCase() : name;
  }

  put(name: string, value: string): void {
    const key = this.keyOf(name);
    const previous = this.spelling.get(key);
    if (previous !== undefined && previous !== name) delete this.result[previous];
    this.spelling.set(key, name);
    this.result[name] = value;
  }
}

// Words that make a name secret when they appear as a whole part of it. Matching parts rather than
// substrings keeps KEYBOARD_LAYOUT and MONKEY out. Left out on purpose: `session` (XDG_SESSION_TYPE,
// DESKTOP_SESSION=ubuntu and a CLI's session id are identifiers, and masking "ubuntu" everywhere would
// make logs unreadable; SESSION_TOKEN and friends still match through `token`), and plural `tokens`
// (max_tokens, input_tokens are counts that run records need).
const SECRET_PARTS = new Set([
  'key',
  'apikey',
  'accesskey',
  'secretkey',
  'privatekey',
  'token',
  'accesstoken',
  'refreshtoken',
  'authtoken',
  'idtoken',
  'secret',
  'secrets',
  'clientsecret',
  'password',
  'passwd',
  'passphrase',
  'pass',
  'credential',
  'credentials',
  'creds',
  'auth',
  'authorization',
  'bearer',
  'jwt',
  'pat',
  'cookie',
  'cookies',
  'private',
]);

// A final part that says the value is about a secret rather than the secret itself: totalTokenUsage,
// TOKEN_LIMIT, AUTH_TYPE, KEY_NAME, PASSWORD_FILE (a path; the file is what is secret).
const METADATA_PARTS = new Set([
  'usage',
  'count',
  'counts',
  'limit',
  'limits',
  'budget',
  'type',
  'types',
  'kind',
  'length',
  'len',
  'size',
  'name',
  'file',
  'path',
  'dir',
  'url',
  'uri',
  'endpoint',
]);

/** Splits OPENAI_API_KEY, x-api-key, apiKey and APIKey alike into lower-case parts without digits. */
function nameParts(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .map((part) => part.toLowerCase().replace(/[0-9]+$/, ''))
    .filter((part) => part.length > 0);
}

/**
 * True when a variable or field name says its value is a secret (OPENAI_API_KEY, GITHUB_TOKEN, apiKey,
 * Authorization). Case-insensitive, matched on whole parts. PWD alone is the working directory, so `pwd`
 * counts only next to other parts (DB_PWD).
 */
export function isSecretName(name: string): boolean {
  const parts = nameParts(name);
  const last = parts[parts.length - 1];
  if (last === undefined || METADATA_PARTS.has(last)) return false;
  if (parts.length > 1 && parts.includes('pwd')) return true;
  return parts.some((part) => SECRET_PARTS.has(part));
}

/** The names an env holds, sorted, for logging what a child received. Never the values. */
export function describeEnvNames(env: Readonly<Record<string, string>>): string[] {
  return Object.keys(env).sort();
}
