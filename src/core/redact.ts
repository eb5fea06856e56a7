// Masks secrets in any text that is written to a log or shown to a person: values we know (API keys from
// the env, the transport's bearer token) and values that merely look like credentials.
import { isSecretName } from './env';

/**
 * The mask. Deliberately carries no hint of the secret (no prefix, no length) and has no overlap with
 * itself, so text around one mask can never join with another into something that matches again.
 */
export const REDACTED = '[REDACTED]';

/** Shorter known values would hit ordinary words and numbers far more often than they would hide a secret. */
export const MIN_SECRET_LENGTH = 6;

export interface RedactorOptions {
  /** Literal values to mask wherever they appear. */
  secretValues?: Iterable<string>;
  /** Values of its secret-named variables (see isSecretName) become literal secrets. */
  env?: NodeJS.ProcessEnv;
}

type Stage = (text: string) => string;

// Every pattern below is built to run in linear time on hostile input: a run of token characters can only
// start a match at its beginning (the lookbehinds), quantified groups never overlap in what they accept,
// and PEM blocks are found with indexOf rather than a lazy [\s\S]*? that would rescan to the end.
const TOKEN_PATTERNS: readonly { pattern: RegExp; accept?: (token: string) => boolean }[] = [
  // OpenAI (sk-, sk-proj-, sk-svcacct-) and Anthropic (sk-ant-). Real keys always have a digit somewhere;
  // requiring one keeps kebab-case words such as sk-learn-style names out.
  { pattern: /(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}/g, accept: (token) => /[0-9]/.test(token) },
  { pattern: /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35,}/g },
  { pattern: /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})/g },
  { pattern: /(?<![A-Za-z0-9_-])xox[abprs]-[A-Za-z0-9-]{10,}/g },
  { pattern: /(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])/g },
  { pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g },
];

// scheme://user:password@ — only the password is masked; the user name says whose credentials they were.
const URL_CREDENTIALS = /(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s/?#@:]*:)([^\s/?#@]+)(?=@)/g;

// Bearer/Basic outside a header we recognise: prose says "the bearer token", so the credential has to
// look like one (see looksLikeCredential).
const AUTH_SCHEME_TOKEN = /(?<![A-Za-z0-9_-])(bearer|basic)([ \t]+)([A-Za-z0-9._~+/-]+=*)/gi;

// ?token=...&key=... ; the value stops where the URL's next parameter or fragment starts.
const QUERY_PARAMETER = /(?<=[?&;])([A-Za-z0-9_.-]+=)([^&#\s"'<>]+)/g;

// NAME=value, NAME: value, "name": "value", {\"name\":\"value\"} (JSON inside a JSON string), --name=value.
// Groups: 1 quote before the name, 2 name, 3 quote after it and the separator, 4 auth scheme,
// 5 "double", 6 \"escaped\", 7 'single', 8 bare value.
const ASSIGNMENT = new RegExp(
  [
    /(?<![A-Za-z0-9_.-])(\\?["']?)(-{0,2}[A-Za-z_][A-Za-z0-9_.-]*)(\\?["']?[ \t]*[:=][ \t]*)/.source,
    /((?:bearer|basic|token|digest)[ \t]+)?/.source,
    /(?:"((?:[^"\\\n]|\\.)*)"|\\"((?:[^"\\\n]|\\[^"\n])*)\\"|'([^'\n]*)'|([^\s"'`,;&<>()[\]{}\\]+))/.source,
  ].join(''),
  'gi',
);
const AUTH_SCHEME_WORD = /^(?:bearer|basic|token|digest)$/i;
const PLAIN_WORD = /^[A-Za-z]{1,15}$/;

// Long, or not a word: a digit or symbol, or a capital inside it (base64 of "user:pass" is dXNlcjpwYXNz).
function looksLikeCredential(token: string): boolean {
  return token.length >= 8 && (token.length >= 20 || /[^A-Za-z]|[a-z][A-Z]/.test(token));
}

function maskTokenPatterns(text: string): string {
  let result = text;
  for (const { pattern, accept } of TOKEN_PATTERNS) {
    result = result.replace(pattern, (token) => (accept === undefined || accept(token) ? REDACTED : token));
  }
  return result;
}

function maskUrlCredentials(text: string): string {
  return text.replace(URL_CREDENTIALS, (_match, prefix: string) => prefix + REDACTED);
}

function maskAuthSchemeTokens(text: string): string {
  return text.replace(AUTH_SCHEME_TOKEN, (match, scheme: string, gap: string, token: string) =>
    looksLikeCredential(token) ? scheme + gap + REDACTED : match,
  );
}

function maskQueryParameters(text: string): string {
  return text.replace(QUERY_PARAMETER, (match, nameAndEquals: string) =>
    isSecretName(nameAndEquals.slice(0, -1)) ? nameAndEquals + REDACTED : match,
  );
}

/**
 * Masks the value of every NAME=value whose name is secret-named. Values of other names are not skipped
 * blindly: a JSON string may hold JSON of its own (a tool call's arguments) and `--env=API_KEY=x` holds an
 * assignment in its value, so those are looked into, each in one more linear pass at most.
 */
function maskAssignments(text: string): string {
  let result = '';
  let copiedUpTo = 0;
  ASSIGNMENT.lastIndex = 0;
  for (let match = ASSIGNMENT.exec(text); match !== null; match = ASSIGNMENT.exec(text)) {
    const [whole, openQuote = '', name = '', separator = '', scheme = ''] = match;
    const [doubleQuoted, escapedQuoted, singleQuoted, bare] = match.slice(5) as (string | undefined)[];
    const head = openQuote + name + separator + scheme;
    let replacement: string | undefined;
    if (isSecretName(name)) {
      if (doubleQuoted) replacement = `${head}"${REDACTED}"`;
      else if (escapedQuoted) replacement = `${head}\\"${REDACTED}\\"`;
      else if (singleQuoted) replacement = `${head}'${REDACTED}'`;
      else if (bare !== undefined && isCredentialValue(bare, separator, scheme)) {
        // A bare JSON value ("key": 12345) becomes a string so the line stays valid JSON.
        const quote = openQuote.endsWith('"') && separator.startsWith(openQuote) ? openQuote : '';
        replacement = head + quote + REDACTED + quote;
      }
    } else if (doubleQuoted !== undefined || escapedQuoted !== undefined) {
      ASSIGNMENT.lastIndex = match.index + head.length + (doubleQuoted !== undefined ? 1 : 2);
    } else if (bare !== undefined) {
      const nested = maskNestedAssignment(bare);
      if (nested !== bare) replacement = head + nested;
    }
    if (replacement !== undefined) {
      result += text.slice(copiedUpTo, match.index) + replacement;
      copiedUpTo = match.index + whole.length;
    }
  }
  return result + text.slice(copiedUpTo);
}

function isCredentialValue(bare: string, separator: string, scheme: string): boolean {
  if (scheme !== '') return true;
  // "Authorization: Bearer" whose token was masked already, and "Session: started" in prose.
  if (AUTH_SCHEME_WORD.test(bare)) return false;
  return !(separator.includes(':') && PLAIN_WORD.test(bare));
}

// Inside a bare value every later character belongs to the same value, so the first secret-named
// assignment found masks the rest of it.
const NESTED_NAME = /(?<=^|[=:])(-{0,2}[A-Za-z_][A-Za-z0-9_.-]*)([:=])/g;

function maskNestedAssignment(value: string): string {
  for (const match of value.matchAll(NESTED_NAME)) {
    const [head, name = '', separator = ''] = match;
    if (!isSecretName(name)) continue;
    const restAt = match.index + head.length;
    const rest = value.slice(restAt);
    if (rest !== '' && isCredentialValue(rest, separator, '')) return value.slice(0, restAt) + REDACTED;
  }
  return value;
}

const PEM_BEGIN = '-----BEGIN ';
const PEM_DASHES = '-----';
const PEM_MAX_LABEL = 64;

/**
 * Masks the body of PEM private key blocks and keeps the armour lines. A block cut short (say by a log's
 * head limit) is masked to the end of the text.
 */
function maskPemPrivateKeys(text: string): string {
  let result = '';
  let from = 0;
  for (;;) {
    const begin = text.indexOf(PEM_BEGIN, from);
    if (begin < 0) break;
    const labelStart = begin + PEM_BEGIN.length;
    const labelEnd = text.indexOf(PEM_DASHES, labelStart);
    const label = labelEnd < 0 ? '' : text.slice(labelStart, labelEnd);
    if (labelEnd < 0 || labelEnd - labelStart > PEM_MAX_LABEL || !label.includes('PRIVATE KEY')) {
      result += text.slice(from, labelStart);
      from = labelStart;
      continue;
    }
    const bodyStart = labelEnd + PEM_DASHES.length;
    const endMarker = `-----END ${label}-----`;
    const endAt = text.indexOf(endMarker, bodyStart);
    const bodyEnd = endAt < 0 ? text.length : endAt;
    result += text.slice(from, bodyStart) + maskKeepingEdgeWhitespace(text.slice(bodyStart, bodyEnd));
    if (endAt < 0) return result;
    result += endMarker;
    from = endAt + endMarker.length;
  }
  return result + text.slice(from);
}

function maskKeepingEdgeWhitespace(body: string): string {
  let start = 0;
  let end = body.length;
  while (start < end && isWhitespace(body.charCodeAt(start))) start++;
  while (end > start && isWhitespace(body.charCodeAt(end - 1))) end--;
  if (start === end) return body;
  return body.slice(0, start) + REDACTED + body.slice(end);
}

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

/**
 * Runs a stage on the text between existing masks only. A mask is never re-read, so what it hid cannot
 * be half-matched again, and redacting twice gives the same text as redacting once.
 */
function outsideMasks(text: string, stage: Stage): string {
  if (!text.includes(REDACTED)) return stage(text);
  return text.split(REDACTED).map(stage).join(REDACTED);
}

const PATTERN_STAGES: readonly Stage[] = [
  maskPemPrivateKeys,
  maskTokenPatterns,
  maskUrlCredentials,
  maskAuthSchemeTokens,
  maskQueryParameters,
  maskAssignments,
];

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class Redactor {
  private readonly secrets = new Set<string>();
  private literalPattern: RegExp | undefined;

  constructor(options: RedactorOptions = {}) {
    for (const value of options.secretValues ?? []) this.addSecret(value);
    for (const [name, value] of Object.entries(options.env ?? {})) {
      if (value !== undefined && isSecretName(name)) this.addSecret(value);
    }
  }

  /**
   * Masks `value` wherever it appears from now on. Ignored when shorter than MIN_SECRET_LENGTH, or when it
   * is part of the mask itself (it could not be told apart from the mask).
   */
  addSecret(value: string): void {
    if (value.length < MIN_SECRET_LENGTH || REDACTED.includes(value) || this.secrets.has(value)) return;
    this.secrets.add(value);
    this.literalPattern = undefined;
  }

  redact(text: string): string {
    // Known values first: a pattern masking half of a known value would leave the other half readable.
    let result = outsideMasks(text, (piece) => this.maskKnownSecrets(piece));
    for (const stage of PATTERN_STAGES) result = outsideMasks(result, stage);
    return result;
  }

  /**
   * A deep copy of JSON-like data with every string redacted (keys too) and anything under a secret-named
   * key masked whole. Booleans and null under such keys are kept: `"private": true` holds no secret.
   * Errors become plain copies of their prototype with redacted message and stack; other class instances
   * are returned as they are, so serialise them first.
   */
  redactValue<T>(value: T): T {
    return this.redactAny(value, new WeakMap()) as T;
  }

  private redactAny(value: unknown, seen: WeakMap<object, unknown>): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (typeof value !== 'object' || value === null) return value;
    const copied = seen.get(value);
    if (copied !== undefined) return copied;
    if (Array.isArray(value)) {
      const copy: unknown[] = [];
      seen.set(value, copy);
      for (const item of value) copy.push(this.redactAny(item, seen));
      return copy;
    }
    const prototype: unknown = Object.getPrototypeOf(value);
    const isError = value instanceof Error;
    if (!isError && prototype !== Object.prototype && prototype !== null) return value;
    const copy = Object.create(prototype as object | null) as Record<string, unknown>;
    seen.set(value, copy);
    if (isError) {
      for (const key of ['name', 'message', 'stack'] as const) {
        const field: unknown = value[key];
        if (typeof field === 'string') {
          Object.defineProperty(copy, key, { value: this.redact(field), writable: true, configurable: true });
        }
      }
    }
    for (const [key, field] of Object.entries(value)) {
      const masked = isSecretName(key) && field !== null && field !== undefined && typeof field !== 'boolean';
      // defineProperty, not assignment: a "__proto__" key from parsed JSON must stay plain data.
      Object.defineProperty(copy, this.redact(key), {
        value: masked ? REDACTED : this.redactAny(field, seen),
        writable: true,
        enumerable: true,
        configurable: true,
      });
    }
    return copy;
  }

  private maskKnownSecrets(text: string): string {
    if (this.secrets.size === 0) return text;
    // One alternation, longest first, so a secret that contains another is masked whole.
    this.literalPattern ??= new RegExp(
      [...this.secrets]
        .sort((a, b) => b.length - a.length)
        .map(escapeRegExp)
        .join('|'),
      'g',
    );
    return text.replace(this.literalPattern, REDACTED);
  }
}

let defaultRedactor: Redactor | undefined;

/** The process-wide redactor, built on first use from process.env. Add runtime secrets to it here. */
export function getDefaultRedactor(): Redactor {
  // Reads the values of secret-named variables, to mask them: nothing is passed on to a child.
  const ownEnvironment = process.env;
  defaultRedactor ??= new Redactor({ env: ownEnvironment });
  return defaultRedactor;
}

export function redact(text: string): string {
  return getDefaultRedactor().redact(text);
}
