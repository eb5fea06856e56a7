// Masks secrets in any text that is written to a log or shown to a person: values we know (API keys from
// the env, the transport's bearer token) and values that merely look like credentials. Whole texts go through
// Redactor.redact, streams (a child's output spilled to a log) through StreamRedactor, which gives the same
// guarantee however the stream is cut into chunks.
import { StringDecoder } from 'node:string_decoder';
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

// Each stage below first looks for a character its pattern cannot match without (indexOf is many times
// faster than a scan with lookbehinds): a log is redacted as it streams, and most of it holds none.
function maskUrlCredentials(text: string): string {
  if (!text.includes('://')) return text;
  return text.replace(URL_CREDENTIALS, (_match, prefix: string) => prefix + REDACTED);
}

function maskAuthSchemeTokens(text: string): string {
  return text.replace(AUTH_SCHEME_TOKEN, (match, scheme: string, gap: string, token: string) =>
    looksLikeCredential(token) ? scheme + gap + REDACTED : match,
  );
}

function maskQueryParameters(text: string): string {
  if (!text.includes('=') || !(text.includes('?') || text.includes('&') || text.includes(';'))) return text;
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
  if (!text.includes('=') && !text.includes(':')) return text;
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

interface PrivateKeyBlock {
  begin: number;
  bodyStart: number;
  /** Where the END line starts; -1 when the text ends inside the block. */
  endAt: number;
  endMarker: string;
}

/** The next PEM private key block at or after `from`, found with indexOf (linear, see TOKEN_PATTERNS). */
function findPrivateKeyBlock(text: string, from: number): PrivateKeyBlock | undefined {
  for (let at = from; ;) {
    const begin = text.indexOf(PEM_BEGIN, at);
    if (begin < 0) return undefined;
    const labelStart = begin + PEM_BEGIN.length;
    const labelEnd = text.indexOf(PEM_DASHES, labelStart);
    const label = labelEnd < 0 ? '' : text.slice(labelStart, labelEnd);
    if (labelEnd < 0 || labelEnd - labelStart > PEM_MAX_LABEL || !label.includes('PRIVATE KEY')) {
      at = labelStart;
      continue;
    }
    const bodyStart = labelEnd + PEM_DASHES.length;
    const endMarker = `-----END ${label}-----`;
    return { begin, bodyStart, endAt: text.indexOf(endMarker, bodyStart), endMarker };
  }
}

/**
 * Masks the body of PEM private key blocks and keeps the armour lines. A block cut short (say by a log's
 * head limit) is masked to the end of the text.
 */
function maskPemPrivateKeys(text: string): string {
  let result = '';
  let from = 0;
  for (let block = findPrivateKeyBlock(text, 0); block; block = findPrivateKeyBlock(text, from)) {
    const { bodyStart, endAt, endMarker } = block;
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
  private longest = 0;

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
    this.longest = Math.max(this.longest, value.length);
    this.literalPattern = undefined;
    // A log is redacted a line at a time (StreamRedactor), and a cut can fall between the lines of a
    // multi-line value (a key file in a variable): each line is a secret of its own. PEM armour lines are
    // left to the PEM stage, which would no longer find a block whose BEGIN line was masked.
    if (value.includes('\n')) {
      for (const line of value.split(/\r?\n/)) {
        if (line !== value && !line.startsWith(PEM_DASHES)) this.addSecret(line);
      }
    }
  }

  /** Length of the longest value masked literally (0 when none). */
  get longestSecretLength(): number {
    return this.longest;
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

/**
 * The process-wide redactor, built from process.env and brought up to date with it each time it is asked for
 * (a variable set after the first call is masked too). Add runtime secrets to it here.
 */
export function getDefaultRedactor(): Redactor {
  // Reads the values of secret-named variables, to mask them: nothing is passed on to a child.
  const ownEnvironment = process.env;
  defaultRedactor ??= new Redactor();
  for (const [name, value] of Object.entries(ownEnvironment)) {
    if (value !== undefined && isSecretName(name)) defaultRedactor.addSecret(value);
  }
  return defaultRedactor;
}

export function redact(text: string): string {
  return getDefaultRedactor().redact(text);
}

/** Characters of one line held back before it is cut without its newline (a flood with no line breaks). */
export const STREAM_MAX_PENDING_CHARS = 64 * 1024;
/** A forced cut leaves at least this much after it for the next piece: more than any credential we know. */
const STREAM_WINDOW_CHARS = 4 * 1024;

/**
 * Redacts a stream given in chunks of any size, cut anywhere (inside a secret, a line or a UTF-8 character),
 * so that no secret the Redactor would mask in the whole text gets out in two halves. Text is given back a
 * line at a time: no pattern spans a line break and a multi-line known value is masked line by line too, so
 * a line is final once it is whole. A private key block is held back until its END line (within the pending
 * limit: a longer one is not a real key). A line longer than the pending limit is cut where redacting the
 * two parts apart gives what redacting them together does, with at least a window of text after the cut.
 * Memory: the pending limit plus a chunk.
 */
export class StreamRedactor {
  private pending = '';
  private readonly decoder = new StringDecoder('utf8');
  /** A forced cut fell inside a run that was masked: the rest of the run is dropped. */
  private insideMaskedRun = false;

  private readonly windowChars: number;

  constructor(
    private readonly redactor: Redactor,
    private readonly maxPendingChars = STREAM_MAX_PENDING_CHARS,
  ) {
    this.windowChars = Math.min(STREAM_WINDOW_CHARS, Math.floor(maxPendingChars / 4));
  }

  /** Redacted text that nothing later in the stream can change; may be empty. */
  push(chunk: Buffer | string): string {
    this.pending += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    return this.drain();
  }

  /** Everything still held, redacted: the stream has ended. */
  end(): string {
    this.pending += this.decoder.end();
    let out = this.drain();
    this.dropMaskedRun();
    out += this.redactor.redact(this.pending);
    this.pending = '';
    return out;
  }

  private drain(): string {
    let out = '';
    for (;;) {
      this.dropMaskedRun();
      const cut = finalLinesEnd(this.pending);
      if (cut > 0) {
        out += this.redactor.redact(this.pending.slice(0, cut));
        this.pending = this.pending.slice(cut);
      }
      if (this.pending.length <= this.maxPendingChars) return out;
      out += this.forcedCut();
    }
  }

  private dropMaskedRun(): void {
    if (!this.insideMaskedRun) return;
    const end = this.pending.search(/\s/);
    if (end < 0) {
      this.pending = '';
      return;
    }
    this.pending = this.pending.slice(end);
    this.insideMaskedRun = false;
  }

  private forcedCut(): string {
    const text = this.pending;
    const window = Math.max(this.windowChars, this.redactor.longestSecretLength + 1);
    const half = Math.floor(text.length / 2);
    const target = Math.max(half, text.length - window);
    const whole = this.redactor.redact(text);
    const candidates = cutCandidates(text, half, target, window);
    if (whole === text) {
      // Nothing to mask in all of it, so nothing straddles any cut: no need to redact the parts again.
      const cut = surrogateSafe(text, candidates[0] ?? target);
      this.pending = text.slice(cut);
      return text.slice(0, cut);
    }
    // Never before half the text, so the work stays linear in the stream's length.
    for (const candidate of candidates) {
      const cut = surrogateSafe(text, candidate);
      const first = this.redactor.redact(text.slice(0, cut));
      const rest = text.slice(cut);
      if (whole === first + this.redactor.redact(rest)) {
        this.pending = rest;
        return first;
      }
    }
    // A match straddles every candidate (a credential-like run or a key block longer than the window, or
    // many values close together). The cut goes through it with both sides masked: the word before the cut
    // (up to a window, longer than any known value) and what continues it after the cut, up to whitespace.
    const cut = surrogateSafe(text, target);
    const first = this.redactor.redact(text.slice(0, cut));
    this.pending = text.slice(cut);
    this.insideMaskedRun = true;
    return first.slice(0, first.length - partialWordLength(first, true, window)) + REDACTED;
  }
}

/**
 * Where a long line may be cut, best first: after whitespace (words stay whole), after a few of the last
 * punctuation marks (between tokens), then points a window apart (no known value straddles two of them).
 */
function cutCandidates(text: string, from: number, to: number, window: number): number[] {
  const found: number[] = [];
  const afterSpace = lastWhitespaceEnd(text, from, to);
  if (afterSpace > 0) found.push(afterSpace);
  for (let at = to - 1; at >= from && found.length < 6; at--) {
    if (isPunctuation(text.charCodeAt(at))) found.push(at + 1);
  }
  for (let at = to; at >= from && found.length < 10; at -= window) found.push(at);
  return found.filter((at) => at > 0);
}

/** End of the last whole line that can be redacted on its own: before an unclosed private key block. */
function finalLinesEnd(text: string): number {
  const end = text.lastIndexOf('\n') + 1;
  if (end === 0) return 0;
  for (let from = 0; ;) {
    const block = findPrivateKeyBlock(text, from);
    if (!block || block.begin >= end) return end;
    if (block.endAt < 0 || block.endAt + block.endMarker.length > end) {
      return text.lastIndexOf('\n', block.begin) + 1;
    }
    from = block.endAt + block.endMarker.length;
  }
}

function lastWhitespaceEnd(text: string, from: number, to: number): number {
  for (let at = to - 1; at >= from; at--) {
    const code = text.charCodeAt(at);
    if (code === 0x20 || code === 0x09) return at + 1;
  }
  return 0;
}

/** Printable ASCII that is neither a letter, a digit, `_`, `-` nor a space: never inside a token. */
function isPunctuation(code: number): boolean {
  if (code <= 0x20 || code >= 0x7f || code === 0x5f || code === 0x2d) return false;
  return !(
    (code >= 0x30 && code <= 0x39) ||
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a)
  );
}

/** `at`, or one before it when `at` would split a surrogate pair. */
function surrogateSafe(text: string, at: number): number {
  const code = text.charCodeAt(at - 1);
  return code >= 0xd800 && code <= 0xdbff ? at - 1 : at;
}

/** Characters dropped at each side of the gap in a capture: more than any credential we know. */
const CAPTURE_EDGE_CHARS = 4 * 1024;

/**
 * The text of a bounded capture (head and tail of a stream), redacted. The head ends and the tail starts at
 * an arbitrary byte, perhaps inside a secret whose halves no pattern would know: each side is redacted
 * apart, then the word cut at the gap (up to CAPTURE_EDGE_CHARS) is dropped, so what is left can only be cut
 * inside a mask.
 */
export function redactCapturedText(
  output: { head: string; tail: string; truncated: boolean; totalBytes: number; capturedBytes: number },
  redactor: Redactor,
): string {
  if (!output.truncated) return redactor.redact(output.head + output.tail);
  const head = redactor.redact(output.head);
  const tail = redactor.redact(output.tail);
  const headEnd = head.length - partialWordLength(head, true, CAPTURE_EDGE_CHARS);
  const tailStart = partialWordLength(tail, false, CAPTURE_EDGE_CHARS);
  const dropped = output.totalBytes - output.capturedBytes;
  return `${head.slice(0, headEnd)}\n[... ${dropped} bytes not kept in memory ...]\n${tail.slice(tailStart)}`;
}

/** Length of the word at the end (or start) of `text`, up to `maxChars`: a word a cut may have split. */
/**
 * Text whose end was cut at a cap, redacted, without the word the cut may have split (up to
 * CAPTURE_EDGE_CHARS): a half of a secret that no pattern would know.
 */
export function redactCutText(text: string, redactor: Redactor): string {
  const redacted = redactor.redact(text);
  return redacted.slice(0, redacted.length - partialWordLength(redacted, true, CAPTURE_EDGE_CHARS));
}

function partialWordLength(text: string, atEnd: boolean, maxChars: number): number {
  const limit = Math.min(text.length, maxChars);
  for (let n = 0; n < limit; n++) {
    const code = text.charCodeAt(atEnd ? text.length - 1 - n : n);
    if (code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d) return n;
  }
  return limit;
}
