// The workspace jail: turns a path a caller asked for into a real path inside one workspace folder, or
// refuses it with a JailError that says why. Every file path that comes from a caller goes through here.
import * as fs from 'node:fs';
import * as path from 'node:path';

export type JailErrorCode =
  | 'EMPTY_PATH'
  | 'NUL_BYTE'
  | 'WINDOWS_DRIVE'
  | 'UNC_PATH'
  | 'OUTSIDE_WORKSPACE'
  | 'SYMLINK_ESCAPE'
  | 'ROOT_INVALID';

export class JailError extends Error {
  override readonly name = 'JailError';

  constructor(
    readonly code: JailErrorCode,
    readonly requestedPath: string,
    readonly root: string,
    message: string,
  ) {
    super(message);
  }
}

// Linux gives up after 40 links (MAXSYMLINKS); following more than the kernel would gains nothing.
const MAX_SYMLINK_HOPS = 40;

// `C:\x`, `c:/x` and the drive-relative `C:x`.
const WINDOWS_DRIVE = /^[A-Za-z]:/;
// `\\server\share`, `//server/share`, `\\?\C:\`, `\\.\pipe\x`: two separators of either kind up front.
const UNC_OR_DEVICE = /^[\\/]{2}/;

/**
 * One workspace folder and the rule that caller paths stay inside it. A check, not a lock: use the path
 * that resolve() returns (never the one you asked about), and use it promptly.
 */
export class WorkspaceJail {
  private constructor(
    /** The real path of the workspace folder. */
    readonly root: string,
    /** The folder as the opener spelled it (absolute), so absolute paths written that way are accepted. */
    private readonly declaredRoot: string,
  ) {}

  static async open(root: string): Promise<WorkspaceJail> {
    try {
      return await answerAsync(WorkspaceJail.openSteps(root));
    } catch (error) {
      throw rootError(root, error);
    }
  }

  static openSync(root: string): WorkspaceJail {
    try {
      return answerSync(WorkspaceJail.openSteps(root));
    } catch (error) {
      throw rootError(root, error);
    }
  }

  private static *openSteps(root: string): Resolution<WorkspaceJail> {
    if (root === '') throw new JailError('ROOT_INVALID', root, root, 'The workspace folder path is empty.');
    const declaredRoot = path.resolve(root);
    const real = yield { kind: 'realpath', path: declaredRoot };
    if (real === null) {
      throw new JailError('ROOT_INVALID', root, root, `Workspace folder ${quote(root)} does not exist.`);
    }
    const kind = yield { kind: 'lstat', path: real };
    if (kind !== 'directory') {
      throw new JailError(
        'ROOT_INVALID',
        root,
        root,
        `Workspace folder ${quote(root)} is not a directory (it resolves to ${real}). Open a folder instead.`,
      );
    }
    return new WorkspaceJail(real, declaredRoot);
  }

  async resolve(requested: string): Promise<string> {
    return answerAsync(this.resolveSteps(requested));
  }

  resolveSync(requested: string): string {
    return answerSync(this.resolveSteps(requested));
  }

  /** Lexical: says nothing about symlinks, so only use it on paths that came out of resolve(). */
  contains(absolutePath: string): boolean {
    return path.isAbsolute(absolutePath) && isWithin(this.root, absolutePath);
  }

  relative(absolutePath: string): string {
    if (!this.contains(absolutePath)) {
      throw new JailError(
        'OUTSIDE_WORKSPACE',
        absolutePath,
        this.root,
        `Path ${quote(absolutePath)} is outside the workspace ${this.root}, so it has no workspace-relative form. ` +
          'Use a path inside the workspace folder.',
      );
    }
    const relative = path.relative(this.root, absolutePath);
    return relative === '' ? '.' : relative.split(path.sep).join('/');
  }

  private *resolveSteps(requested: string): Resolution<string> {
    this.refuseMalformed(requested);
    const segments = this.lexicalSegments(requested);
    const real = yield* realLocation(this.root, segments);
    if (real === null) {
      throw this.refusal(
        'SYMLINK_ESCAPE',
        requested,
        `Path ${quote(requested)} passes through more than ${MAX_SYMLINK_HOPS} symlinks (most likely a loop), ` +
          'so the workspace jail cannot tell where it leads. Fix the links or use another path.',
      );
    }
    if (!this.contains(real)) {
      throw this.refusal(
        'SYMLINK_ESCAPE',
        requested,
        `Path ${quote(requested)} leads outside the workspace ${this.root} through a symlink ` +
          `(it resolves to ${real}). Use a path whose symlinks stay inside the workspace folder.`,
      );
    }
    return real;
  }

  private refuseMalformed(requested: string): void {
    if (requested === '') {
      throw this.refusal(
        'EMPTY_PATH',
        requested,
        `The path is empty. Give a path inside the workspace ${this.root} ("." names the workspace folder itself).`,
      );
    }
    if (requested.includes('\0')) {
      throw this.refusal(
        'NUL_BYTE',
        requested,
        `Path ${quote(requested)} contains a NUL byte, which no file name can hold. Remove it and try again.`,
      );
    }
    // UNC before drive letters: `\\?\C:\` is a device path that happens to contain a drive.
    if (UNC_OR_DEVICE.test(requested)) {
      throw this.refusal(
        'UNC_PATH',
        requested,
        `Path ${quote(requested)} is a UNC or device path, which the workspace jail does not accept. ` +
          `Use a path inside the workspace ${this.root}.`,
      );
    }
    if (WINDOWS_DRIVE.test(requested)) {
      throw this.refusal(
        'WINDOWS_DRIVE',
        requested,
        `Path ${quote(requested)} names a Windows drive, which the workspace jail does not accept. ` +
          `Use a path relative to the workspace ${this.root}.`,
      );
    }
  }

  /** Normalises `.` and `..` and returns the path's names below the root, refusing what lands outside. */
  private lexicalSegments(requested: string): string[] {
    const absolute = path.resolve(this.root, requested);
    const base = this.contains(absolute)
      ? this.root
      : isWithin(this.declaredRoot, absolute)
        ? this.declaredRoot
        : undefined;
    if (base === undefined) {
      throw this.refusal(
        'OUTSIDE_WORKSPACE',
        requested,
        `Path ${quote(requested)} is outside the workspace ${this.root} (it resolves to ${absolute}). ` +
          'Use a path inside the workspace folder.',
      );
    }
    // On POSIX `..\..\x` is one odd file name, but a Windows-minded worker or tool reading the same string
    // would climb out, so the backslashes-as-separators reading has to stay inside too.
    if (path.sep === '/' && requested.includes('\\')) {
      const asSeparators = path.resolve(this.root, requested.replaceAll('\\', '/'));
      if (!this.contains(asSeparators) && !isWithin(this.declaredRoot, asSeparators)) {
        throw this.refusal(
          'OUTSIDE_WORKSPACE',
          requested,
          `Path ${quote(requested)} is outside the workspace ${this.root} when its backslashes are read as ` +
            `separators (it resolves to ${asSeparators}). Use a path inside the workspace folder, with forward slashes.`,
        );
      }
    }
    const relative = path.relative(base, absolute);
    return relative === '' ? [] : relative.split(path.sep);
  }

  private refusal(code: JailErrorCode, requested: string, message: string): JailError {
    return new JailError(code, requested, this.root, message);
  }
}

// The file-system questions a resolution asks. The logic is written once, as a generator of these
// questions, so that the sync and async entry points cannot drift apart: one driver answers with fs,
// the other with fs.promises.
type FsQuestion =
  /** Answer: the real path, or null when it does not resolve (missing, dangling, looping). */
  | { kind: 'realpath'; path: string }
  /** Answer: 'missing' | 'symlink' | 'directory' | 'other', without following a final symlink. */
  | { kind: 'lstat'; path: string }
  /** Answer: the link's text. */
  | { kind: 'readlink'; path: string };
type FsAnswer = string | null;
type Resolution<T> = Generator<FsQuestion, T, FsAnswer>;

function answerSync<T>(steps: Resolution<T>): T {
  let answer: FsAnswer = null;
  for (;;) {
    const step = steps.next(answer);
    if (step.done === true) return step.value;
    try {
      answer = askSync(step.value);
    } catch (error) {
      answer = unanswerable(step.value, error);
    }
  }
}

async function answerAsync<T>(steps: Resolution<T>): Promise<T> {
  let answer: FsAnswer = null;
  for (;;) {
    const step = steps.next(answer);
    if (step.done === true) return step.value;
    try {
      answer = await askAsync(step.value);
    } catch (error) {
      answer = unanswerable(step.value, error);
    }
  }
}

function askSync(question: FsQuestion): FsAnswer {
  switch (question.kind) {
    case 'realpath':
      return fs.realpathSync.native(question.path);
    case 'lstat':
      return statKind(fs.lstatSync(question.path));
    case 'readlink':
      return fs.readlinkSync(question.path);
  }
}

async function askAsync(question: FsQuestion): Promise<FsAnswer> {
  switch (question.kind) {
    case 'realpath':
      return fs.promises.realpath(question.path);
    case 'lstat':
      return statKind(await fs.promises.lstat(question.path));
    case 'readlink':
      return fs.promises.readlink(question.path);
  }
}

function statKind(stats: fs.Stats): FsAnswer {
  if (stats.isSymbolicLink()) return 'symlink';
  return stats.isDirectory() ? 'directory' : 'other';
}

/** Turns "there is nothing there" into an answer; any other failure (EACCES, ...) is the caller's to see. */
function unanswerable(question: FsQuestion, error: unknown): FsAnswer {
  const code = errnoCode(error);
  // ENOTDIR: a name below a plain file, which cannot exist either.
  const missing = code === 'ENOENT' || code === 'ENOTDIR';
  if (question.kind === 'lstat' && missing) return 'missing';
  // realpath also gives up on loops; the step-by-step walk then finds the loop and counts its hops.
  if (question.kind === 'realpath' && (missing || code === 'ELOOP')) return null;
  throw error;
}

function rootError(root: string, error: unknown): JailError {
  if (error instanceof JailError) return error;
  const reason = errnoCode(error) ?? (error instanceof Error ? error.message : String(error));
  return new JailError(
    'ROOT_INVALID',
    root,
    root,
    `Workspace folder ${quote(root)} cannot be opened (${reason}).`,
  );
}

/**
 * Where `segments` below the real directory `start` really lead, following symlinks one at a time the way
 * the kernel does, including dangling ones (a write through a dangling link creates its target). Names
 * past the first missing one are appended as they are: what does not exist cannot be a symlink yet.
 * Returns null after MAX_SYMLINK_HOPS links.
 */
function* realLocation(start: string, segments: readonly string[]): Resolution<string | null> {
  const whole = yield { kind: 'realpath', path: path.join(start, ...segments) };
  if (whole !== null) return whole;

  // Invariant: `current` is a real path (no symlink in it), so dirname() of it is a true `..`.
  let current = start;
  const pending = [...segments].reverse();
  let hops = 0;
  for (let segment = pending.pop(); segment !== undefined; segment = pending.pop()) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      current = path.dirname(current);
      continue;
    }
    const next = path.join(current, segment);
    const kind = yield { kind: 'lstat', path: next };
    if (kind === 'missing') {
      // The rest may still hold `..` taken from a link's text; resolving it lexically is where it
      // would lead once the missing directories were created.
      const existing = (yield { kind: 'realpath', path: current }) ?? current;
      return path.resolve(existing, segment, ...pending.reverse());
    }
    if (kind === 'symlink') {
      hops += 1;
      if (hops > MAX_SYMLINK_HOPS) return null;
      const target = (yield { kind: 'readlink', path: next }) ?? '';
      if (path.isAbsolute(target)) current = path.parse(target).root;
      pending.push(...splitSegments(target).reverse());
      continue;
    }
    current = next;
  }
  return (yield { kind: 'realpath', path: current }) ?? current;
}

function splitSegments(linkText: string): string[] {
  return linkText.split(path.sep === '\\' ? /[\\/]/ : '/');
}

function isWithin(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return (
    relative === '' ||
    (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative))
  );
}

function errnoCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/g;

/** Quotes a path for a message, making control characters (NUL above all) visible. */
function quote(value: string): string {
  const visible = value.replace(
    CONTROL_CHARACTER,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return `"${visible}"`;
}
