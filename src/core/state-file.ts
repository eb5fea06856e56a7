// The one way Tandem reads and writes files under a workspace's .tandem/, which a repository can ship: no
// symlink is followed (the folders are checked with lstat from the workspace root down, the file is opened
// O_NOFOLLOW), only regular files are read or appended to (a FIFO or device is refused at once: opened
// O_NONBLOCK, then fstat), and every read is bounded in size and time. Writes go to a fresh temp file
// (O_CREAT|O_EXCL|O_NOFOLLOW) that is renamed over the target, appends to a file opened O_APPEND|O_NOFOLLOW.
import { constants, closeSync, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { lstat, mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Where O_NOFOLLOW is missing (Windows) the lstat of the folders still holds; the file's own lstat is added. */
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const NONBLOCK = constants.O_NONBLOCK ?? 0;
const READ_FLAGS = constants.O_RDONLY | NOFOLLOW | NONBLOCK;
const APPEND_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | NOFOLLOW | NONBLOCK;
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW | NONBLOCK;

/** A state read that takes longer than this (a hung file system) is given up with an error. */
export const STATE_READ_TIMEOUT_MS = 10_000;

export type StateFileProblem = 'SYMLINK' | 'NOT_REGULAR' | 'NOT_FOLDER' | 'TOO_LARGE' | 'TIMEOUT';

export class StateFileError extends Error {
  constructor(
    readonly code: StateFileProblem,
    /** The path as the user sees it: relative to the workspace. */
    readonly file: string,
    message: string,
  ) {
    super(message);
    this.name = 'StateFileError';
  }
}

const REMEDY =
  'Tandem keeps its state only in regular files and folders it made itself; remove it (or the whole .tandem folder, if it came with the repository) and try again.';

function shown(root: string, target: string): string {
  const relative = path.relative(root, target);
  return relative === '' ? target : relative.split(path.sep).join('/');
}

function refused(root: string, target: string, code: StateFileProblem, what: string): StateFileError {
  const name = shown(root, target);
  return new StateFileError(code, name, `${name} ${what}. ${REMEDY}`);
}

function kindOf(stats: Stats): string {
  if (stats.isSymbolicLink()) return 'is a symbolic link';
  if (stats.isFIFO()) return 'is a FIFO (named pipe)';
  if (stats.isSocket()) return 'is a socket';
  if (stats.isDirectory()) return 'is a folder';
  if (stats.isBlockDevice() || stats.isCharacterDevice()) return 'is a device';
  return 'is not a regular file';
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException)?.code;
}

/** The folders from just below `root` down to `dir`, outermost first; `dir` must be inside `root`. */
function foldersBelow(root: string, dir: string): string[] {
  const relative = path.relative(root, dir);
  if (relative === '') return [];
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new Error(`${dir} is not inside ${root}.`);
  }
  const out: string[] = [];
  let current = root;
  for (const part of relative.split(path.sep)) {
    current = path.join(current, part);
    out.push(current);
  }
  return out;
}

async function checkFolder(root: string, folder: string): Promise<boolean> {
  let stats: Stats;
  try {
    stats = await lstat(folder);
  } catch (error) {
    if (errno(error) === 'ENOENT') return false;
    if (errno(error) === 'ENOTDIR')
      throw refused(root, path.dirname(folder), 'NOT_FOLDER', 'is not a folder');
    throw error;
  }
  if (stats.isSymbolicLink()) throw refused(root, folder, 'SYMLINK', 'is a symbolic link');
  if (!stats.isDirectory()) {
    throw refused(
      root,
      folder,
      'NOT_FOLDER',
      `${stats.isFile() ? 'is a file' : kindOf(stats)}, not a folder`,
    );
  }
  return true;
}

/**
 * Checks that every folder from below `root` down to `dir` is a real folder (not a link); false when one
 * is missing. `root` is the workspace, already resolved and trusted.
 */
export async function checkStateFolders(root: string, dir: string): Promise<boolean> {
  for (const folder of foldersBelow(root, dir)) {
    if (!(await checkFolder(root, folder))) return false;
  }
  return true;
}

/** Makes each missing folder from below `root` down to `dir` (0700), one at a time, checking each. */
export async function ensureStateFolders(root: string, dir: string): Promise<string> {
  for (const folder of foldersBelow(root, dir)) {
    if (await checkFolder(root, folder)) continue;
    try {
      await mkdir(folder, { mode: 0o700 });
    } catch (error) {
      if (errno(error) !== 'EEXIST') throw error;
    }
    await checkFolder(root, folder);
  }
  return dir;
}

/** Opens a state file without following a link or blocking on a FIFO, and proves it is a regular file. */
async function openRegular(
  root: string,
  file: string,
  flags: number,
  mode?: number,
): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(file, flags, mode);
  } catch (error) {
    const code = errno(error);
    if (code === 'ELOOP' || code === 'EMLINK') throw refused(root, file, 'SYMLINK', 'is a symbolic link');
    // ENXIO: a FIFO without a reader (or a socket) opened for writing without blocking.
    if (code === 'ENXIO') throw refused(root, file, 'NOT_REGULAR', 'is a FIFO or socket');
    if (code === 'EISDIR') throw refused(root, file, 'NOT_REGULAR', 'is a folder');
    throw error;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw refused(root, file, 'NOT_REGULAR', kindOf(stats));
    if (NOFOLLOW === 0 && (await lstat(file)).isSymbolicLink()) {
      throw refused(root, file, 'SYMLINK', 'is a symbolic link');
    }
    return { handle, size: stats.size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

function withDeadline<T>(root: string, file: string, work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(refused(root, file, 'TIMEOUT', `could not be read within ${Math.round(timeoutMs / 1000)} s`)),
      timeoutMs,
    );
    timer.unref();
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

export interface ReadOptions {
  /** Larger files are refused (TOO_LARGE). */
  maxBytes: number;
  timeoutMs?: number;
}

/** The bytes of a state file from `offset`, at most `maxBytes` of them, and the file's size; undefined when missing. */
export async function readStateRange(
  root: string,
  file: string,
  offset: number,
  maxBytes: number,
  timeoutMs = STATE_READ_TIMEOUT_MS,
): Promise<{ size: number; bytes: Buffer } | undefined> {
  const work = async (): Promise<{ size: number; bytes: Buffer } | undefined> => {
    if (!(await checkStateFolders(root, path.dirname(file)))) return undefined;
    let opened;
    try {
      opened = await openRegular(root, file, READ_FLAGS);
    } catch (error) {
      if (errno(error) === 'ENOENT') return undefined;
      throw error;
    }
    const { handle, size } = opened;
    try {
      const length = Math.max(0, Math.min(size - offset, maxBytes));
      const bytes = Buffer.alloc(length);
      const { bytesRead } = length > 0 ? await handle.read(bytes, 0, length, offset) : { bytesRead: 0 };
      return { size, bytes: bytes.subarray(0, bytesRead) };
    } finally {
      await handle.close();
    }
  };
  return withDeadline(root, file, work(), timeoutMs);
}

/** A whole state file as text; undefined when it (or a folder above it) is missing. */
export async function readStateFile(
  root: string,
  file: string,
  options: ReadOptions,
): Promise<string | undefined> {
  const read = await readStateRange(root, file, 0, options.maxBytes + 1, options.timeoutMs);
  if (read === undefined) return undefined;
  if (read.size > options.maxBytes || read.bytes.length > options.maxBytes) {
    throw refused(root, file, 'TOO_LARGE', `is ${read.size} bytes; at most ${options.maxBytes} are read`);
  }
  return read.bytes.toString('utf8');
}

/** As readStateFile, for exit handlers that cannot wait: folders are not made, only the file is checked. */
export function readStateFileSync(root: string, file: string, maxBytes: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, READ_FLAGS);
  } catch (error) {
    if (errno(error) === 'ENOENT') return undefined;
    if (errno(error) === 'ELOOP') throw refused(root, file, 'SYMLINK', 'is a symbolic link');
    throw error;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw refused(root, file, 'NOT_REGULAR', kindOf(stats));
    if (stats.size > maxBytes) throw refused(root, file, 'TOO_LARGE', `is ${stats.size} bytes`);
    const bytes = Buffer.alloc(stats.size);
    const read = readSync(fd, bytes, 0, stats.size, 0);
    return bytes.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Appends to a state file (made 0600 when missing); its folders must exist and be real. */
export async function appendStateFile(root: string, file: string, text: string): Promise<void> {
  if (!(await checkStateFolders(root, path.dirname(file)))) {
    throw Object.assign(new Error(`ENOENT: ${shown(root, path.dirname(file))} is missing`), {
      code: 'ENOENT',
    });
  }
  const { handle } = await openRegular(root, file, APPEND_FLAGS, 0o600);
  try {
    await handle.appendFile(text, 'utf8');
  } finally {
    await handle.close();
  }
}

/**
 * Replaces a state file whole: the content goes to a new temp file beside it, which is renamed over the
 * target (rename replaces a link itself, never what it points to). Its folders must exist and be real.
 */
export async function writeStateFile(root: string, file: string, content: string): Promise<void> {
  if (!(await checkStateFolders(root, path.dirname(file)))) {
    throw Object.assign(new Error(`ENOENT: ${shown(root, path.dirname(file))} is missing`), {
      code: 'ENOENT',
    });
  }
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temp, CREATE_FLAGS, 0o600);
  try {
    try {
      await handle.writeFile(content, 'utf8');
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    if (errno(error) === 'EISDIR' || errno(error) === 'ENOTEMPTY' || errno(error) === 'EEXIST') {
      throw refused(root, file, 'NOT_REGULAR', 'is a folder');
    }
    throw error;
  }
}
