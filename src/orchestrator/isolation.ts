// Isolated copies of a workspace for writers, the change a writer made in one (measured against a base taken
// once per run), and applying a chosen change back. Git worktrees when the workspace is a git repository and
// git is installed, plain copies otherwise; both backends give the same types.
//
// The git backend never runs git inside the user's repository for anything that could start a program: a
// shadow repository of our own under the state dir (its objects borrowed from the user's through
// alternates) holds the bases and the worktrees, so the repository's config, hooks, fsmonitor and filters
// are never read, and its info/attributes outranks every .gitattributes the workspace or a writer carries.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExecError, runProcess, type ExecResult } from '../core/exec';
import { WorkspaceJail } from '../core/jail';

export type IsolationBackend = 'git' | 'copy';
export type FileChangeKind = 'added' | 'modified' | 'deleted';

export interface ChangedFile {
  /** Relative to the workspace root, with forward slashes. */
  path: string;
  change: FileChangeKind;
  insertions: number;
  deletions: number;
  /** No line counts and no hunk (the git backend still carries the bytes in its `--binary` patch). */
  binary: boolean;
}

export interface DiffStats {
  files: number;
  insertions: number;
  deletions: number;
}

/** Copy backend: where capture saved the new content of each added or modified file. */
export interface SavedContents {
  dir: string;
  files: SavedFile[];
}

export interface SavedFile {
  path: string;
  /** Name of the saved copy inside `SavedContents.dir`. */
  file: string;
  sha256: string;
  /** Git-style mode: 0o100644, 0o100755 or 0o120000 (symlink). */
  mode: number;
}

export interface CapturedChange {
  backend: IsolationBackend;
  /** The base it was measured against: a commit id (git) or the base label (copy). */
  baseId: string;
  /** The copy it came from. */
  label: string;
  /** Unified diff, git style; cut at a line end after `maxPatchBytes` when `patchTruncated`. */
  patch: string;
  /**
   * How `patch` turns back into the exact bytes git apply needs: 'latin1' only when the diff held bytes that
   * are not UTF-8 (a Latin-1 source file, say), because a lossy UTF-8 decode would corrupt the apply.
   */
  patchEncoding: 'utf8' | 'latin1';
  /** Size of the whole patch, also when it was cut. */
  patchBytes: number;
  patchTruncated: boolean;
  files: ChangedFile[];
  stats: DiffStats;
  /** Copy backend only. */
  contents?: SavedContents;
}

export interface AppliedChange {
  files: ChangedFile[];
  stats: DiffStats;
}

export interface IsolatedCopy {
  readonly label: string;
  readonly backend: IsolationBackend;
  /** Where the writer runs (cwd). Holds the base state of the workspace. */
  readonly dir: string;
  /** What changed in `dir` since the base. May be called more than once; each call looks again. */
  captureChange(): Promise<CapturedChange>;
  /** Removes the copy. Idempotent. */
  dispose(): Promise<void>;
}

export interface IsolationOptions {
  /** Default `<workspace>/.tandem/isolation`. */
  stateDir?: string;
  /** Default 'auto': git when the workspace is in a git repository and git is installed. */
  backend?: IsolationBackend | 'auto';
  /** Names the base (its files under `bases/` in the copy backend); default `base-<time>-<random>`. */
  label?: string;
  /** Patches above this are cut and marked truncated. Default 2 MiB. */
  maxPatchBytes?: number;
  /** Copy backend: refuse workspaces bigger than this. Default 1 GiB. */
  maxCopyBytes?: number;
  /** Per git command. Default 120 s. */
  gitTimeoutMs?: number;
}

export type IsolationErrorCode =
  | 'INVALID_OPTION'
  | 'INVALID_LABEL'
  | 'LABEL_IN_USE'
  | 'GIT_UNAVAILABLE'
  | 'GIT_FAILED'
  | 'TOO_LARGE'
  | 'DISPOSED'
  | 'WRONG_BASE'
  | 'PATCH_TRUNCATED'
  | 'CONFLICT'
  | 'APPLY_FAILED';

export class IsolationError extends Error {
  override readonly name = 'IsolationError';

  constructor(
    readonly code: IsolationErrorCode,
    message: string,
    /** CONFLICT: the workspace files that changed since the base. */
    readonly paths: readonly string[] = [],
  ) {
    super(message);
  }
}

export const DEFAULT_MAX_PATCH_BYTES = 2 * 1024 * 1024;
const DEFAULT_MAX_COPY_BYTES = 1024 * 1024 * 1024;
const DEFAULT_GIT_TIMEOUT_MS = 120_000;
/** File lists (numstat, name-status) can be long but never this long for a change anyone would review. */
const LIST_CAPTURE_BYTES = 32 * 1024 * 1024;
/** Copy backend: bigger files are reported as binary rather than diffed line by line in memory. */
const MAX_TEXT_DIFF_BYTES = 4 * 1024 * 1024;
/** Myers costs O(D²) memory for its trace; past this many edits a file is shown as replaced whole. */
const DEFAULT_MAX_EDIT_DISTANCE = 2000;
const COPY_CONCURRENCY = 16;
const LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const MODE_FILE = 0o100644;
const MODE_EXECUTABLE = 0o100755;
const MODE_SYMLINK = 0o120000;

/**
 * Never copied by the copy backend, at any depth. `.git` is version control internals (and a worktree's
 * `.git` file); `.tandem` is our own state, which holds the copies themselves. `node_modules` is left out
 * because it is large, regenerable from the lock file and full of links (pnpm's point outside the folder):
 * copying it for every writer would cost minutes and gigabytes. A writer that needs it installs it in its
 * copy; git worktrees lack it too, since it is ignored there.
 */
const SKIPPED_NAMES = new Set(['.git', '.tandem', 'node_modules']);

/** One snapshot of a workspace, and the factory for writers' copies of that snapshot. */
export class Isolation {
  private disposed = false;
  private readonly liveCopies = new Set<IsolatedCopy>();
  private readonly usedLabels = new Set<string>();
  private captures = 0;
  // Worktree changes and applies go one at a time: git takes locks in the shared repository.
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly backend: IsolationBackend,
    /** Real path of the workspace folder. */
    readonly workspaceRoot: string,
    readonly stateDir: string,
    readonly label: string,
    /** The base commit (git) or the base label (copy). */
    readonly baseId: string,
    private readonly settings: Settings,
    private readonly state: GitBaseState | CopyBaseState,
  ) {}

  /** Takes the base: the workspace as it is now, including uncommitted and untracked (not ignored) files. */
  static async snapshotBase(workspaceRoot: string, options: IsolationOptions = {}): Promise<Isolation> {
    const jail = await WorkspaceJail.open(workspaceRoot);
    const root = jail.root;
    const label = options.label ?? newBaseLabel();
    checkLabel(label);
    const stateDir = await prepareStateDir(options.stateDir ?? path.join(root, '.tandem', 'isolation'), root);
    const stateRelative = isWithin(root, stateDir) ? toPosix(path.relative(root, stateDir)) : undefined;
    const settings: Settings = {
      maxPatchBytes: positiveOption(options.maxPatchBytes, DEFAULT_MAX_PATCH_BYTES, 'maxPatchBytes'),
      maxCopyBytes: positiveOption(options.maxCopyBytes, DEFAULT_MAX_COPY_BYTES, 'maxCopyBytes'),
      git: new GitRunner(
        positiveOption(options.gitTimeoutMs, DEFAULT_GIT_TIMEOUT_MS, 'gitTimeoutMs'),
        stateDir,
      ),
      // The state dir must never become content: the base, the captures and the copies all leave it out.
      excludes: [
        '.tandem',
        ...(stateRelative !== undefined && !isWithin('.tandem', stateRelative) ? [stateRelative] : []),
      ],
    };
    const wanted = options.backend ?? 'auto';
    if (wanted !== 'copy') {
      const repo = await settings.git.detect(root);
      if (repo) {
        const gitDir = await prepareShadowRepository(settings.git, stateDir, repo);
        const commit = await snapshotGit(root, stateDir, label, settings, { ...repo, gitDir });
        return new Isolation('git', root, stateDir, label, commit, settings, {
          kind: 'git',
          ...repo,
          gitDir,
          commit,
        });
      }
      if (wanted === 'git') {
        throw new IsolationError(
          'GIT_UNAVAILABLE',
          `${root} is not inside a git repository, or git is not installed; use the copy backend instead.`,
        );
      }
    }
    const state = await snapshotCopy(root, stateDir, label, settings);
    return new Isolation('copy', root, stateDir, label, label, settings, state);
  }

  /**
   * Removes what a crashed run left under `stateDir`: every worktree, copy and base whose name is not a live
   * label and does not start with `<live label>-` (so a run id keeps all of that run's copies). Returns the
   * removed directories.
   */
  static async cleanupOrphans(
    stateDir: string,
    liveLabels: Iterable<string>,
    options: { gitTimeoutMs?: number } = {},
  ): Promise<string[]> {
    const live = [...liveLabels];
    const isLive = (name: string): boolean =>
      live.some((label) => name === label || name.startsWith(`${label}-`));
    const git = new GitRunner(options.gitTimeoutMs ?? DEFAULT_GIT_TIMEOUT_MS, path.resolve(stateDir));
    const removed: string[] = [];
    for (const area of ['worktrees', 'copies', 'bases']) {
      const areaDir = path.join(stateDir, area);
      for (const name of await listDir(areaDir)) {
        if (isLive(name)) continue;
        const dir = path.join(areaDir, name);
        if (area === 'worktrees') await removeWorktree(git, dir, undefined);
        else await removeTree(dir);
        removed.push(dir);
      }
    }
    return removed;
  }

  /** A fresh directory holding the base state, for one writer. Labels are unique per state dir. */
  async createCopy(label: string): Promise<IsolatedCopy> {
    this.assertLive();
    checkLabel(label);
    if (this.usedLabels.has(label)) {
      throw new IsolationError('LABEL_IN_USE', `A copy labelled "${label}" was already made from this base.`);
    }
    this.usedLabels.add(label);
    const copy =
      this.state.kind === 'git'
        ? await this.serial(() => this.createWorktree(label, this.state as GitBaseState))
        : await this.createPlainCopy(label, this.state);
    this.liveCopies.add(copy);
    return copy;
  }

  /** Same as the exported applyChange; by default to this base's own workspace. */
  async applyChange(change: CapturedChange, workspaceRoot: string = this.workspaceRoot): Promise<void> {
    this.assertLive();
    const jail = await WorkspaceJail.open(workspaceRoot);
    if (jail.root !== this.workspaceRoot) {
      throw new IsolationError(
        'WRONG_BASE',
        `This base was taken of ${this.workspaceRoot}, not ${jail.root}; take a base of the workspace you apply to.`,
      );
    }
    if (change.backend !== this.backend || change.baseId !== this.baseId) {
      throw new IsolationError(
        'WRONG_BASE',
        `The change from copy "${change.label}" was measured against another base (${change.backend} ` +
          `${change.baseId}), not this one (${this.backend} ${this.baseId}).`,
      );
    }
    if (change.patchTruncated) {
      // Reviewers saw only part of it: a change nobody could read in full does not reach the workspace.
      throw new IsolationError(
        'PATCH_TRUNCATED',
        `The change from copy "${change.label}" is ${change.patchBytes} bytes, more than the ` +
          `${this.settings.maxPatchBytes}-byte patch limit, so it was cut and is not applied. ` +
          'Ask for a smaller change or raise maxPatchBytes.',
      );
    }
    if (change.files.length === 0) return;
    // Refuses any path that would leave the workspace before anything is touched. The last name is not
    // followed: a symlink the change replaces or deletes may point anywhere.
    for (const file of change.files) {
      checkChangePath(file.path);
      await jail.resolve(path.posix.dirname(file.path));
    }
    const state = this.state;
    await this.serial(() =>
      state.kind === 'git' ? this.applyWithGit(change, state) : this.applyCopied(change, state, jail),
    );
  }

  /** Removes every copy still live and the base's own files. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const copy of [...this.liveCopies]) await copy.dispose();
    await removeTree(path.join(this.stateDir, 'bases', this.label));
  }

  private assertLive(): void {
    if (this.disposed) {
      throw new IsolationError('DISPOSED', `Isolation base "${this.label}" was disposed; take a new base.`);
    }
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  // --- git backend -----------------------------------------------------------------------------------

  private async createWorktree(label: string, state: GitBaseState): Promise<IsolatedCopy> {
    const { git } = this.settings;
    const worktree = path.join(this.stateDir, 'worktrees', label);
    if (await exists(worktree)) {
      throw new IsolationError(
        'LABEL_IN_USE',
        `${worktree} already exists; pick another label or clean up orphans.`,
      );
    }
    await fs.promises.mkdir(path.dirname(worktree), { recursive: true });
    // Detached: no branch is created, and the user's HEAD and branches are never involved.
    await git.run(this.stateDir, ['worktree', 'add', '--detach', worktree, state.commit], {
      repository: { gitDir: state.gitDir },
    });
    // Read now, before a writer runs: the copy's `.git` file is the writer's to rewrite, and one pointing
    // at a planted git dir would bring that dir's config and attributes back into our commands.
    const repository = { gitDir: await worktreeAdminDir(worktree, state.gitDir), workTree: worktree };
    const dir = path.join(worktree, state.prefix);
    // A workspace subfolder with nothing but ignored files has no place in the base tree.
    await fs.promises.mkdir(dir, { recursive: true });
    let disposed = false;
    const copy: IsolatedCopy = {
      label,
      backend: 'git',
      dir,
      captureChange: () => this.captureGit(label, dir, state, repository),
      dispose: async () => {
        if (disposed) return;
        disposed = true;
        this.liveCopies.delete(copy);
        await this.serial(() => removeWorktree(git, worktree, state.gitDir));
      },
    };
    return copy;
  }

  private async captureGit(
    label: string,
    dir: string,
    state: GitBaseState,
    repository: { gitDir: string; workTree: string },
  ): Promise<CapturedChange> {
    this.assertLive();
    const { git, maxPatchBytes, excludes } = this.settings;
    // The worktree's own index, which no user command reads.
    await addAllBut(git, dir, excludes, { repository });
    const diff = [
      'diff',
      '--cached',
      '--no-renames',
      '--no-ext-diff',
      '--no-textconv',
      '--no-color',
      '--src-prefix=a/',
      '--dst-prefix=b/',
      // Paths relative to the workspace when it is a subfolder of the repository.
      '--relative',
    ];
    const where = [state.commit, '--', '.'];
    const kinds = await git.list(dir, [...diff, '--name-status', '-z', ...where], { repository });
    const counts = await git.list(dir, [...diff, '--numstat', '-z', ...where], { repository });
    const patch = new BoundedBytes(maxPatchBytes);
    await git.run(dir, [...diff, '--binary', '--full-index', ...where], {
      repository,
      onStdout: (chunk) => patch.push(chunk),
    });
    const files = parseGitChanges(kinds, counts);
    return {
      backend: 'git',
      baseId: state.commit,
      label,
      ...decodePatch(patch),
      patchBytes: patch.total,
      patchTruncated: patch.truncated,
      files,
      stats: sumStats(files),
    };
  }

  private async applyWithGit(change: CapturedChange, state: GitBaseState): Promise<void> {
    const { git } = this.settings;
    const root = this.workspaceRoot;
    const scratch = path.join(this.stateDir, 'bases', this.label);
    await fs.promises.mkdir(scratch, { recursive: true });
    const indexFile = path.join(scratch, `apply-${randomBytes(4).toString('hex')}.index`);
    let changedSinceBase: string[];
    try {
      const tree = await writeWorkspaceTree(git, root, state, indexFile, this.settings.excludes);
      const out = await git.list(
        root,
        [
          'diff',
          '--no-renames',
          '--no-ext-diff',
          '--name-only',
          '-z',
          '--relative',
          state.commit,
          tree,
          '--',
          '.',
        ],
        shadowOf(state),
      );
      changedSinceBase = out.split('\0').filter((name) => name !== '');
    } finally {
      await removeTree(indexFile);
    }
    throwOnConflict(change, new Set(changedSinceBase));
    const patch = Buffer.from(change.patch, change.patchEncoding);
    // Run at the repository top with the workspace's subfolder prepended: run from the subfolder itself,
    // git apply silently skips every path it takes to lie outside it. Without --index it writes the
    // working tree only, so the user's index stays as it was.
    const prefix = state.prefix.replace(/\/$/, '');
    const args = ['apply', '--whitespace=nowarn', ...(prefix === '' ? [] : [`--directory=${prefix}`])];
    const repository = { gitDir: state.gitDir, workTree: state.toplevel };
    const listed = await git.run(state.toplevel, [...args, '--numstat', '-z'], {
      repository,
      stdin: patch,
      maxCaptureBytes: LIST_CAPTURE_BYTES,
      allowFailure: true,
    });
    const expected = change.files.map((file) => state.prefix + file.path).sort(comparePaths);
    const seen = [...new Set(parseGitChanges('', listed.stdout.text).map((file) => file.path))].sort(
      comparePaths,
    );
    if (listed.exitCode !== 0 || JSON.stringify(seen) !== JSON.stringify(expected)) {
      // Anything git would skip or add on its own is a patch we do not understand: apply nothing.
      throw new IsolationError(
        'APPLY_FAILED',
        `git apply reads the patch of copy "${change.label}" as touching ${seen.length} file(s), not the ` +
          `${expected.length} captured; nothing was changed. ${firstLines(listed.stderr.text)}`,
      );
    }
    const check = await git.run(state.toplevel, [...args, '--check'], {
      repository,
      stdin: patch,
      allowFailure: true,
    });
    if (check.exitCode !== 0) {
      throw new IsolationError(
        'CONFLICT',
        `The change from copy "${change.label}" does not apply to the workspace; nothing was changed. ` +
          `git said: ${firstLines(check.stderr.text)}`,
      );
    }
    const applied = await git.run(state.toplevel, args, { repository, stdin: patch, allowFailure: true });
    if (applied.exitCode !== 0) {
      throw new IsolationError(
        'APPLY_FAILED',
        `git apply failed after its check passed (the workspace changed in between?); check the files of ` +
          `copy "${change.label}" in the workspace. git said: ${firstLines(applied.stderr.text)}`,
      );
    }
  }

  // --- copy backend ----------------------------------------------------------------------------------

  private async createPlainCopy(label: string, state: CopyBaseState): Promise<IsolatedCopy> {
    const dir = path.join(this.stateDir, 'copies', label);
    if (await exists(dir)) {
      throw new IsolationError(
        'LABEL_IN_USE',
        `${dir} already exists; pick another label or clean up orphans.`,
      );
    }
    await fs.promises.mkdir(dir, { recursive: true });
    try {
      await forEachLimit([...state.manifest], COPY_CONCURRENCY, async ([relative, entry]) => {
        const target = path.join(dir, relative);
        await fs.promises.mkdir(path.dirname(target), { recursive: true });
        await copyEntry(path.join(state.treeDir, relative), target, entry.mode);
        // Keep the workspace's times, so build tools in the copy see what they would see at home.
        if (entry.mode !== MODE_SYMLINK)
          await fs.promises.utimes(target, entry.mtimeMs / 1000, entry.mtimeMs / 1000);
      });
    } catch (error) {
      await removeTree(dir);
      throw error;
    }
    let disposed = false;
    const copy: IsolatedCopy = {
      label,
      backend: 'copy',
      dir,
      captureChange: () => this.captureCopied(label, dir, state),
      dispose: async () => {
        if (disposed) return;
        disposed = true;
        this.liveCopies.delete(copy);
        await removeTree(dir);
      },
    };
    return copy;
  }

  private async captureCopied(label: string, dir: string, state: CopyBaseState): Promise<CapturedChange> {
    this.assertLive();
    const now = await walkFiles(dir, undefined);
    const paths = [...new Set([...state.manifest.keys(), ...now.keys()])].sort(comparePaths);
    const saveDir = path.join(this.stateDir, 'bases', this.label, 'captures', `${label}-${++this.captures}`);
    await fs.promises.mkdir(saveDir, { recursive: true });

    // Every file is hashed: without git there is no index of trustworthy stat data, and a copy without
    // node_modules is small enough that reading it is cheaper than being wrong about a same-size edit.
    const current = new Map<string, { mode: number; sha256: string; size: number }>();
    await forEachLimit([...now], COPY_CONCURRENCY, async ([relative, entry]) => {
      const mode = gitMode(entry);
      const sha256 = await hashEntry(path.join(dir, relative), mode);
      current.set(relative, { mode, sha256, size: entry.size });
    });

    const patch = new PatchBuilder(this.settings.maxPatchBytes);
    const files: ChangedFile[] = [];
    const saved: SavedFile[] = [];
    for (const relative of paths) {
      const before = state.manifest.get(relative);
      const after = current.get(relative);
      if (before && after && before.mode === after.mode && before.sha256 === after.sha256) continue;
      let newSide: Side | undefined;
      if (after) {
        // The saved copy is what apply writes, so the patch is made from it too.
        const file = String(saved.length);
        const savedPath = path.join(saveDir, file);
        await copyEntry(path.join(dir, relative), savedPath, after.mode);
        const sha256 = await hashEntry(savedPath, after.mode);
        saved.push({ path: relative, file, sha256, mode: after.mode });
        newSide = { mode: after.mode, content: await readSide(savedPath, after.mode, after.size) };
      }
      const oldSide: Side | undefined = before && {
        mode: before.mode,
        content: await readSide(path.join(state.treeDir, relative), before.mode, before.size),
      };
      const rendered = renderFileDiff(relative, oldSide, newSide);
      patch.append(rendered.text);
      files.push({
        path: relative,
        change: !before ? 'added' : !after ? 'deleted' : 'modified',
        insertions: rendered.insertions,
        deletions: rendered.deletions,
        binary: rendered.binary,
      });
    }
    return {
      backend: 'copy',
      baseId: this.label,
      label,
      patch: patch.text,
      patchEncoding: 'utf8',
      patchBytes: patch.totalBytes,
      patchTruncated: patch.truncated,
      files,
      stats: sumStats(files),
      contents: { dir: saveDir, files: saved },
    };
  }

  private async applyCopied(
    change: CapturedChange,
    state: CopyBaseState,
    jail: WorkspaceJail,
  ): Promise<void> {
    const savedByPath = new Map((change.contents?.files ?? []).map((file) => [file.path, file]));
    const savedDir = change.contents?.dir ?? '';
    const targets = new Map<string, string>();
    const conflicts: string[] = [];
    for (const file of change.files) {
      if (file.change !== 'deleted' && !savedByPath.has(file.path)) {
        throw new IsolationError(
          'APPLY_FAILED',
          `The change from copy "${change.label}" has no saved content for ${file.path}; capture it again.`,
        );
      }
      // The parent is resolved through the jail; the last name is not followed, so a symlink in the
      // workspace is compared and replaced as a link.
      const target = path.join(
        await jail.resolve(path.posix.dirname(file.path)),
        path.posix.basename(file.path),
      );
      targets.set(file.path, target);
      const base = state.manifest.get(file.path);
      const now = await currentEntry(target);
      const unchanged = base ? now?.mode === base.mode && now.sha256 === base.sha256 : now === undefined;
      if (!unchanged) conflicts.push(file.path);
    }
    if (conflicts.length > 0) throw conflictError(change, conflicts);

    // Stage every new file next to its target first, so a failure leaves the workspace as it was; only
    // renames and deletions remain once staging worked.
    const staged: { temp: string; target: string }[] = [];
    const createdDirs: string[] = [];
    try {
      for (const file of change.files) {
        if (file.change === 'deleted') continue;
        const saved = savedByPath.get(file.path) as SavedFile;
        const target = targets.get(file.path) as string;
        const made = await fs.promises.mkdir(path.dirname(target), { recursive: true });
        if (made !== undefined) createdDirs.push(made);
        const temp = path.join(path.dirname(target), `.tandem-apply-${randomBytes(6).toString('hex')}`);
        await copyEntry(path.join(savedDir, saved.file), temp, saved.mode);
        staged.push({ temp, target });
        if ((await hashEntry(temp, saved.mode)) !== saved.sha256) {
          throw new IsolationError(
            'APPLY_FAILED',
            `The saved content of ${file.path} changed after capture; capture the change again.`,
          );
        }
      }
    } catch (error) {
      for (const { temp } of staged) await removeTree(temp);
      for (const dir of createdDirs.reverse()) await removeTree(dir);
      throw error;
    }
    for (const { temp, target } of staged) await fs.promises.rename(temp, target);
    for (const file of change.files) {
      if (file.change !== 'deleted') continue;
      const target = targets.get(file.path) as string;
      await fs.promises.rm(target, { force: true });
      await removeEmptyParents(path.dirname(target), jail.root);
    }
  }
}

/** Applies a captured change to the workspace; refuses, changing nothing, on conflict or a truncated patch. */
export async function applyChange(
  workspaceRoot: string,
  change: CapturedChange,
  base: Isolation,
): Promise<AppliedChange> {
  await base.applyChange(change, workspaceRoot);
  return { files: change.files, stats: change.stats };
}

// --- shared internals ------------------------------------------------------------------------------------

interface Settings {
  maxPatchBytes: number;
  maxCopyBytes: number;
  git: GitRunner;
  /** Workspace-relative folders that are never content. */
  excludes: string[];
}

interface GitRepo {
  /** The repository's working tree root. */
  toplevel: string;
  /** The workspace's path inside the repository, '' or ending in '/'. */
  prefix: string;
  /** The user's index file: only ever read, to seed a temporary index. */
  indexPath: string;
  /** The user's object store, which the shadow repository borrows from. */
  objectsDir: string;
  /** The user's info/exclude, copied into the shadow repository so it ignores what the user ignores. */
  excludeFile: string;
  objectFormat: string;
}

interface ShadowedRepo extends GitRepo {
  /** Our shadow repository: every git command that reads attributes or config, or writes, runs in it. */
  gitDir: string;
}

interface GitBaseState extends ShadowedRepo {
  kind: 'git';
  commit: string;
}

/** Where a command on the workspace runs: our shadow repository over the user's working tree. */
function shadowOf(repo: ShadowedRepo): { repository: { gitDir: string; workTree: string } } {
  return { repository: { gitDir: repo.gitDir, workTree: repo.toplevel } };
}

interface ManifestEntry {
  mode: number;
  size: number;
  mtimeMs: number;
  sha256: string;
}

interface CopyBaseState {
  kind: 'copy';
  /** The pristine base: copies are made from it and diffs are taken against it. */
  treeDir: string;
  manifest: Map<string, ManifestEntry>;
}

function newBaseLabel(): string {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `base-${stamp}-${randomBytes(3).toString('hex')}`;
}

function checkLabel(label: string): void {
  if (!LABEL_PATTERN.test(label)) {
    throw new IsolationError(
      'INVALID_LABEL',
      `Label "${label}" is not allowed: use 1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit.`,
    );
  }
}

function checkChangePath(relative: string): void {
  const names = relative.split('/');
  if (
    relative.includes('\0') ||
    relative.startsWith('/') ||
    names.some((name) => ['', '.', '..'].includes(name))
  ) {
    throw new IsolationError(
      'APPLY_FAILED',
      `The change names the path "${relative}", which is not a plain workspace path.`,
    );
  }
}

function positiveOption(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) {
    throw new IsolationError('INVALID_OPTION', `${name} must be a positive integer, got ${value}.`);
  }
  return value;
}

async function prepareStateDir(requested: string, root: string): Promise<string> {
  const absolute = path.resolve(root, requested);
  await fs.promises.mkdir(absolute, { recursive: true });
  const real = await fs.promises.realpath(absolute);
  if (isWithin(real, root)) {
    throw new IsolationError(
      'INVALID_OPTION',
      `The isolation state dir ${real} contains the workspace ${root}; use a folder inside .tandem instead.`,
    );
  }
  // Keeps our copies out of `git status` even when nothing else has ignored the state dir yet.
  await fs.promises
    .writeFile(path.join(real, '.gitignore'), '*\n', { flag: 'wx' })
    .catch((error: unknown) => {
      if (errnoCode(error) !== 'EEXIST') throw error;
    });
  return real;
}

function isWithin(parent: string, candidate: string): boolean {
  const relative = path.relative(parent, candidate);
  return (
    relative === '' ||
    (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative))
  );
}

function toPosix(relative: string): string {
  return relative.split(path.sep).join('/');
}

function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.promises.lstat(file);
    return true;
  } catch {
    return false;
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await fs.promises.readdir(dir)).sort();
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
}

/** rm -rf that also gets through folders a writer made read-only. */
async function removeTree(target: string): Promise<void> {
  try {
    await fs.promises.rm(target, { recursive: true, force: true, maxRetries: 3 });
  } catch (error) {
    const code = errnoCode(error);
    if (code !== 'EACCES' && code !== 'EPERM') throw error;
    await makeWritable(target);
    await fs.promises.rm(target, { recursive: true, force: true, maxRetries: 3 });
  }
}

async function makeWritable(target: string): Promise<void> {
  const stat = await fs.promises.lstat(target).catch(() => undefined);
  if (!stat?.isDirectory()) return;
  await fs.promises.chmod(target, 0o700).catch(() => undefined);
  for (const name of await listDir(target)) await makeWritable(path.join(target, name));
}

async function removeEmptyParents(dir: string, root: string): Promise<void> {
  for (let current = dir; current !== root && isWithin(root, current); current = path.dirname(current)) {
    try {
      await fs.promises.rmdir(current);
    } catch {
      return;
    }
  }
}

async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function sumStats(files: readonly ChangedFile[]): DiffStats {
  return files.reduce(
    (stats, file) => ({
      files: stats.files + 1,
      insertions: stats.insertions + file.insertions,
      deletions: stats.deletions + file.deletions,
    }),
    { files: 0, insertions: 0, deletions: 0 },
  );
}

function throwOnConflict(change: CapturedChange, changedSinceBase: ReadonlySet<string>): void {
  const conflicts = change.files.map((file) => file.path).filter((file) => changedSinceBase.has(file));
  if (conflicts.length > 0) throw conflictError(change, conflicts);
}

function conflictError(change: CapturedChange, conflicts: readonly string[]): IsolationError {
  const shown =
    conflicts.slice(0, 10).join(', ') + (conflicts.length > 10 ? `, and ${conflicts.length - 10} more` : '');
  return new IsolationError(
    'CONFLICT',
    `The workspace changed since the base in ${conflicts.length === 1 ? 'a file' : 'files'} the change from ` +
      `copy "${change.label}" touches: ${shown}. Nothing was applied; run the task again on the current workspace.`,
    conflicts,
  );
}

function firstLines(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > 600 ? `${trimmed.slice(0, 600)}…` : trimmed || '(no message)';
}

/** Keeps the first `limit` bytes of a stream and counts the rest. */
class BoundedBytes {
  private readonly parts: Buffer[] = [];
  private kept = 0;
  total = 0;

  constructor(private readonly limit: number) {}

  get truncated(): boolean {
    return this.total > this.limit;
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    const room = this.limit - this.kept;
    if (room <= 0) return;
    const part = Buffer.from(chunk.subarray(0, room));
    this.parts.push(part);
    this.kept += part.length;
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts, this.kept);
  }
}

function decodeUtf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function decodePatch(patch: BoundedBytes): { patch: string; patchEncoding: 'utf8' | 'latin1' } {
  let bytes = patch.bytes();
  // A cut patch ends at a line end, so it never ends in half a character.
  if (patch.truncated) bytes = bytes.subarray(0, bytes.lastIndexOf(0x0a) + 1);
  const text = decodeUtf8(bytes);
  return text === undefined
    ? { patch: bytes.toString('latin1'), patchEncoding: 'latin1' }
    : { patch: text, patchEncoding: 'utf8' };
}

// --- git ---------------------------------------------------------------------------------------------

/** Runs git through the exec helper with settings that make its behaviour independent of the user's config. */
class GitRunner {
  private readonly config: string[];

  constructor(
    private readonly timeoutMs: number,
    stateDir: string,
  ) {
    const settings = [
      'user.name=Tandem',
      'user.email=tandem@localhost',
      // Raw names in patches: a reviewer should read "docs/ü.md", not "docs/\303\274.md".
      'core.quotePath=false',
      // A split index would write shared-index files into the user's .git.
      'core.splitIndex=false',
      'core.fsmonitor=false',
      'commit.gpgSign=false',
      // A folder that never exists: no hook runs, not even one a global config names.
      `core.hooksPath=${path.join(stateDir, 'no-hooks')}`,
      // Attributes come from the shadow repository's info/attributes only (see NEUTRAL_ATTRIBUTES).
      `core.attributesFile=${os.devNull}`,
      'submodule.recurse=false',
      'color.ui=false',
      'diff.noprefix=false',
      'apply.ignoreWhitespace=no',
      'advice.detachedHead=false',
    ];
    this.config = settings.flatMap((setting) => ['-c', setting]);
  }

  /** The repository around `root`, or undefined when there is none or git is not installed. */
  async detect(root: string): Promise<GitRepo | undefined> {
    let result: ExecResult;
    try {
      result = await this.run(
        root,
        [
          'rev-parse',
          '--show-toplevel',
          '--show-prefix',
          '--git-path',
          'index',
          '--git-path',
          'objects',
          '--git-path',
          'info/exclude',
          '--show-object-format',
        ],
        {
          allowFailure: true,
        },
      );
    } catch (error) {
      if (error instanceof ExecError && error.code === 'BINARY_NOT_FOUND') return undefined;
      throw error;
    }
    if (result.exitCode !== 0) return undefined;
    const [toplevel = '', prefix = '', indexPath = '', objectsDir = '', excludeFile = '', objectFormat = ''] =
      result.stdout.text.split('\n');
    if (toplevel === '' || indexPath === '' || objectsDir === '' || !/^[a-z0-9]+$/.test(objectFormat)) {
      return undefined;
    }
    if (prefix !== '') {
      // A workspace inside a folder its enclosing repository ignores is not part of that repository's
      // content: snapshotting it with git would fail, so it gets the copy backend.
      const ignored = await this.run(
        toplevel,
        ['check-ignore', '-q', '--no-index', '--', prefix.replace(/\/$/, '')],
        {
          allowFailure: true,
        },
      );
      if (ignored.exitCode === 0) return undefined;
    }
    return {
      toplevel,
      prefix,
      indexPath: path.resolve(root, indexPath),
      objectsDir: path.resolve(root, objectsDir),
      excludeFile: path.resolve(root, excludeFile),
      objectFormat,
    };
  }

  async run(
    cwd: string,
    args: readonly string[],
    options: {
      /** Our shadow repository (and the working tree it works on); default: the repository around cwd. */
      repository?: { gitDir: string; workTree?: string };
      indexFile?: string;
      stdin?: Buffer;
      onStdout?: (chunk: Buffer) => void;
      maxCaptureBytes?: number;
      allowFailure?: boolean;
    } = {},
  ): Promise<ExecResult> {
    const repository = options.repository;
    const where =
      repository === undefined
        ? []
        : [
            `--git-dir=${repository.gitDir}`,
            ...(repository.workTree === undefined ? [] : [`--work-tree=${repository.workTree}`]),
          ];
    const result = await runProcess({
      command: 'git',
      args: [...this.config, ...where, ...args],
      cwd,
      env: {
        set: {
          GIT_CONFIG_NOSYSTEM: '1',
          GIT_ATTR_NOSYSTEM: '1',
          GIT_TERMINAL_PROMPT: '0',
          // No opportunistic index refresh: read-only commands leave the user's index file alone.
          GIT_OPTIONAL_LOCKS: '0',
          ...(options.indexFile !== undefined ? { GIT_INDEX_FILE: options.indexFile } : {}),
        },
      },
      ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
      ...(options.onStdout !== undefined ? { onStdout: options.onStdout } : {}),
      timeoutMs: this.timeoutMs,
      maxCaptureBytes: options.maxCaptureBytes ?? 64 * 1024,
    });
    if (result.timedOut) {
      throw new IsolationError(
        'GIT_FAILED',
        `git ${args[0]} timed out after ${this.timeoutMs} ms in ${cwd}.`,
      );
    }
    if (result.exitCode !== 0 && options.allowFailure !== true) {
      throw new IsolationError(
        'GIT_FAILED',
        `git ${args[0]} failed in ${cwd} (exit ${result.exitCode ?? result.signal}): ${firstLines(result.stderr.text)}`,
      );
    }
    return result;
  }

  /** A command whose whole output is needed (file lists); refuses rather than work from half a list. */
  async list(
    cwd: string,
    args: readonly string[],
    options: { repository?: { gitDir: string; workTree?: string } } = {},
  ): Promise<string> {
    const result = await this.run(cwd, args, { ...options, maxCaptureBytes: LIST_CAPTURE_BYTES });
    if (result.stdout.truncated) {
      throw new IsolationError(
        'TOO_LARGE',
        `git ${args[0]} listed more than ${LIST_CAPTURE_BYTES} bytes of file names; the change is too big to handle.`,
      );
    }
    return result.stdout.text;
  }
}

function excludePathspecs(excludes: readonly string[]): string[] {
  return excludes.map((relative) => `:(exclude,literal)${relative}`);
}

/**
 * `git add -A` of everything under `cwd` but `excludes`. An exclude git already ignores stays out of the
 * pathspecs: git refuses a pathspec naming an ignored path ("paths are ignored", exit 1), and add -A leaves
 * ignored files out anyway. A workspace whose own .gitignore lists `.tandem/` is the common case.
 */
async function addAllBut(
  git: GitRunner,
  cwd: string,
  excludes: readonly string[],
  withIndex: { indexFile?: string; repository: { gitDir: string; workTree?: string } },
): Promise<void> {
  const checked = await git.run(cwd, ['check-ignore', '--stdin', '-z'], {
    ...withIndex,
    stdin: Buffer.from(excludes.map((relative) => `${relative}\0`).join('')),
    allowFailure: true,
  });
  // Exit 1: none of them is ignored; anything but 0 and 1 is an error, reported by the add below if it
  // persists, so every exclude stays.
  const ignored = new Set(checked.exitCode === 0 ? checked.stdout.text.split('\0') : []);
  const kept = excludes.filter((relative) => !ignored.has(relative));
  await git.run(cwd, ['add', '-A', '--', '.', ...excludePathspecs(kept)], withIndex);
}

/**
 * The workspace's current content as a tree object, without touching the user's index: a temporary index
 * seeded from the user's (so unchanged files are not hashed again, and skip-worktree entries of a sparse
 * checkout stay), then `add -A` and `write-tree`.
 */
async function writeWorkspaceTree(
  git: GitRunner,
  root: string,
  repo: ShadowedRepo,
  indexFile: string,
  excludes: readonly string[],
): Promise<string> {
  const userIndex = repo.indexPath;
  try {
    await fs.promises.copyFile(userIndex, indexFile);
    // Git trusts cached stat data only for files older than the index file; a copy stamped "now" would
    // make a file edited in the same instant as the user's last index write look unchanged. Rounding down
    // keeps the copy at most as old as the original.
    const stat = await fs.promises.stat(userIndex, { bigint: true });
    const seconds = Number(stat.mtimeNs / 1000n) / 1e6;
    await fs.promises.utimes(indexFile, seconds, seconds);
  } catch (error) {
    // No index yet (a fresh repository): start from an empty one.
    if (errnoCode(error) !== 'ENOENT') throw error;
    await removeTree(indexFile);
  }
  await addAllBut(git, root, excludes, { indexFile, ...shadowOf(repo) });
  const tree = (await git.run(root, ['write-tree'], { indexFile, ...shadowOf(repo) })).stdout.text.trim();
  return tree;
}

async function snapshotGit(
  root: string,
  stateDir: string,
  label: string,
  settings: Settings,
  repo: ShadowedRepo,
): Promise<string> {
  const { git } = settings;
  const scratch = path.join(stateDir, 'bases', label);
  if (await exists(scratch)) {
    throw new IsolationError('LABEL_IN_USE', `${scratch} already exists; pick another base label.`);
  }
  await fs.promises.mkdir(scratch, { recursive: true });
  try {
    const tree = await writeWorkspaceTree(git, root, repo, path.join(scratch, 'index'), settings.excludes);
    const head = await git.run(root, ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], {
      allowFailure: true,
    });
    const parent = head.exitCode === 0 ? ['-p', head.stdout.text.trim()] : [];
    // A commit object no ref points at, written into the shadow repository, where no gc of the user's
    // runs; the user's own repository gains no object.
    const commit = await git.run(
      root,
      ['commit-tree', '--no-gpg-sign', tree, ...parent, '-m', `Tandem isolation base ${label}`],
      shadowOf(repo),
    );
    return commit.stdout.text.trim();
  } finally {
    await removeTree(scratch);
  }
}

/**
 * Outranks every other source of attributes (info/attributes comes first), so no .gitattributes can pick a
 * filter, a diff driver, a textconv, an end-of-line or encoding conversion, or mark a text file binary:
 * git stores, shows and applies a file's bytes as they are, and tells binary from text by content alone.
 * `!` (unspecified) is what a repository without attributes has; `-text` turns conversion off outright.
 */
const NEUTRAL_ATTRIBUTES = '* !diff !merge -text !eol !crlf !filter !ident !working-tree-encoding\n';
const MAX_EXCLUDE_BYTES = 1024 * 1024;

/**
 * Our own bare repository for the user's repository, under the state dir: no hooks, no config of the
 * user's repository, our info/attributes, the user's objects through alternates. New objects (bases,
 * untracked files) are written here, so the user's repository is only ever read.
 */
async function prepareShadowRepository(git: GitRunner, stateDir: string, repo: GitRepo): Promise<string> {
  const objectsDir = await fs.promises.realpath(repo.objectsDir);
  const name = createHash('sha256').update(objectsDir).digest('hex').slice(0, 16);
  const gitDir = path.join(stateDir, 'repositories', `${name}.git`);
  await fs.promises.mkdir(path.dirname(gitDir), { recursive: true });
  if (!(await exists(path.join(gitDir, 'HEAD')))) {
    // Made aside and renamed into place: two runs starting at once must not both init (and lock) one dir.
    const temp = `${gitDir}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      // An empty template: no sample hooks, no info/exclude of git's own.
      await git.run(stateDir, [
        'init',
        '--quiet',
        '--bare',
        '--template=',
        `--object-format=${repo.objectFormat}`,
        temp,
      ]);
      await fs.promises.rename(temp, gitDir).catch((error: unknown) => {
        const code = errnoCode(error);
        if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw error;
      });
    } finally {
      await removeTree(temp);
    }
  }
  await fs.promises.mkdir(path.join(gitDir, 'info'), { recursive: true });
  // A shadow found in place may have been planted with the repository (a shipped .tandem/): its config and
  // hooks are rewritten to ours every time, so nothing in it can name a program for a git call.
  await replaceFile(path.join(gitDir, 'config'), shadowConfig(repo.objectFormat));
  await removeTree(path.join(gitDir, 'hooks'));
  await replaceFile(path.join(gitDir, 'objects', 'info', 'alternates'), `${objectsDir}\n`);
  await replaceFile(path.join(gitDir, 'info', 'attributes'), NEUTRAL_ATTRIBUTES);
  await replaceFile(path.join(gitDir, 'info', 'exclude'), await readExcludeFile(repo.excludeFile));
  return gitDir;
}

/** What `git init --bare --template=` writes, and nothing a repository could add. */
function shadowConfig(objectFormat: string): string {
  const sha1 = objectFormat === 'sha1';
  return [
    '[core]',
    `\trepositoryformatversion = ${sha1 ? 0 : 1}`,
    '\tfilemode = true',
    '\tbare = true',
    ...(sha1 ? [] : ['[extensions]', `\tobjectformat = ${objectFormat}`]),
    '',
  ].join('\n');
}

/** The user's info/exclude when it is a regular file of sane size; ignore patterns only, never a program. */
async function readExcludeFile(file: string): Promise<string> {
  let handle: fs.promises.FileHandle;
  try {
    // O_NONBLOCK: a FIFO planted in its place does not hang the open.
    handle = await fs.promises.open(
      file,
      fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
    );
  } catch {
    return '';
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.size > MAX_EXCLUDE_BYTES) return '';
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** Writes beside the target, then renames: two runs preparing the same shadow never see half a file. */
async function replaceFile(target: string, content: string): Promise<void> {
  const temp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.promises.writeFile(temp, content);
  await fs.promises.rename(temp, target);
}

function parseGitChanges(nameStatus: string, numstat: string): ChangedFile[] {
  const kinds = new Map<string, FileChangeKind>();
  const statusParts = nameStatus.split('\0');
  for (let i = 0; i + 1 < statusParts.length; i += 2) {
    const status = statusParts[i] ?? '';
    const file = statusParts[i + 1] ?? '';
    // --no-renames leaves A, D, M and T (a type change, e.g. file to symlink).
    kinds.set(file, status.startsWith('A') ? 'added' : status.startsWith('D') ? 'deleted' : 'modified');
  }
  const files: ChangedFile[] = [];
  for (const record of numstat.split('\0')) {
    const match = record.match(/^(-|\d+)\t(-|\d+)\t(.*)$/s);
    if (!match) continue;
    const [, added = '', deleted = '', file = ''] = match;
    const binary = added === '-';
    files.push({
      path: file,
      change: kinds.get(file) ?? 'modified',
      insertions: binary ? 0 : Number(added),
      deletions: binary ? 0 : Number(deleted),
      binary,
    });
  }
  return files;
}

/** The admin dir `git worktree add` just made in our shadow repository for `worktree`. */
async function worktreeAdminDir(worktree: string, gitDir: string): Promise<string> {
  const pointer = await fs.promises.readFile(path.join(worktree, '.git'), 'utf8');
  const adminDir = path.resolve(worktree, pointer.match(/^gitdir: (.+)$/m)?.[1]?.trim() ?? '');
  if (!isWithin(path.join(gitDir, 'worktrees'), adminDir) || adminDir === path.join(gitDir, 'worktrees')) {
    throw new IsolationError(
      'GIT_FAILED',
      `git made the worktree ${worktree} outside ${gitDir}; nothing runs in it.`,
    );
  }
  return adminDir;
}

async function worktreeCommonDir(worktree: string): Promise<string | undefined> {
  try {
    const pointer = await fs.promises.readFile(path.join(worktree, '.git'), 'utf8');
    const match = pointer.match(/^gitdir: (.+)$/m);
    if (!match?.[1]) return undefined;
    const adminDir = path.resolve(worktree, match[1].trim());
    const common = await fs.promises.readFile(path.join(adminDir, 'commondir'), 'utf8').catch(() => '../..');
    return path.resolve(adminDir, common.trim());
  } catch {
    return undefined;
  }
}

/**
 * Deletes one of our worktrees, then lets its repository forget it (`worktree prune` runs no checkout, no
 * filter and no hook). `gitDir` is our shadow repository; an orphan's is found through its `.git` file.
 */
async function removeWorktree(git: GitRunner, worktree: string, gitDir: string | undefined): Promise<void> {
  const commonDir = gitDir ?? (await worktreeCommonDir(worktree));
  await removeTree(worktree);
  const cwd = path.dirname(worktree);
  if (commonDir !== undefined && (await exists(cwd))) {
    await git.run(cwd, ['--git-dir', commonDir, 'worktree', 'prune'], { allowFailure: true });
  }
}

// --- copy backend internals ---------------------------------------------------------------------------

interface WalkEntry {
  symlink: boolean;
  size: number;
  mode: number;
  mtimeMs: number;
}

/** Regular files and symlinks under root (not followed), by posix relative path; see SKIPPED_NAMES. */
async function walkFiles(root: string, stateDir: string | undefined): Promise<Map<string, WalkEntry>> {
  const found = new Map<string, WalkEntry>();
  const pending = [''];
  for (let relativeDir = pending.pop(); relativeDir !== undefined; relativeDir = pending.pop()) {
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(path.join(root, relativeDir), { withFileTypes: true });
    } catch (error) {
      if (errnoCode(error) === 'ENOENT' && relativeDir !== '') continue;
      throw error;
    }
    for (const entry of entries) {
      if (SKIPPED_NAMES.has(entry.name)) continue;
      const relative = relativeDir === '' ? entry.name : `${relativeDir}/${entry.name}`;
      const absolute = path.join(root, relative);
      if (entry.isDirectory()) {
        if (absolute !== stateDir) pending.push(relative);
        continue;
      }
      if (!entry.isFile() && !entry.isSymbolicLink()) continue;
      const stat = await fs.promises.lstat(absolute).catch(() => undefined);
      if (!stat) continue;
      found.set(relative, {
        symlink: stat.isSymbolicLink(),
        size: stat.size,
        mode: stat.mode,
        mtimeMs: stat.mtimeMs,
      });
    }
  }
  return found;
}

function gitMode(entry: WalkEntry): number {
  if (entry.symlink) return MODE_SYMLINK;
  return (entry.mode & 0o111) !== 0 ? MODE_EXECUTABLE : MODE_FILE;
}

async function copyEntry(source: string, target: string, mode: number): Promise<void> {
  if (mode === MODE_SYMLINK) {
    await fs.promises.symlink(await fs.promises.readlink(source), target);
    return;
  }
  // A reflink where the file system has them, a plain copy elsewhere.
  await fs.promises.copyFile(source, target, fs.constants.COPYFILE_FICLONE);
  await fs.promises.chmod(target, mode === MODE_EXECUTABLE ? 0o755 : 0o644);
}

/** sha256 of a file's bytes, or of a symlink's target text. */
async function hashEntry(file: string, mode: number): Promise<string> {
  if (mode === MODE_SYMLINK) {
    return createHash('sha256')
      .update(await fs.promises.readlink(file, { encoding: 'buffer' }))
      .digest('hex');
  }
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function currentEntry(target: string): Promise<{ mode: number; sha256: string } | undefined> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.lstat(target);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
  if (!stat.isFile() && !stat.isSymbolicLink()) return { mode: 0, sha256: '' };
  const mode = gitMode({
    symlink: stat.isSymbolicLink(),
    size: stat.size,
    mode: stat.mode,
    mtimeMs: stat.mtimeMs,
  });
  return { mode, sha256: await hashEntry(target, mode) };
}

async function snapshotCopy(
  root: string,
  stateDir: string,
  label: string,
  settings: Settings,
): Promise<CopyBaseState> {
  const baseDir = path.join(stateDir, 'bases', label);
  if (await exists(baseDir)) {
    throw new IsolationError('LABEL_IN_USE', `${baseDir} already exists; pick another base label.`);
  }
  const treeDir = path.join(baseDir, 'tree');
  const found = await walkFiles(root, stateDir);
  const totalBytes = [...found.values()].reduce((sum, entry) => sum + entry.size, 0);
  if (totalBytes > settings.maxCopyBytes) {
    throw new IsolationError(
      'TOO_LARGE',
      `${root} holds ${totalBytes} bytes outside .git and node_modules, more than the ${settings.maxCopyBytes}-byte ` +
        'limit for plain copies. Make it a git repository (worktrees share objects) or raise maxCopyBytes.',
    );
  }
  await fs.promises.mkdir(treeDir, { recursive: true });
  const manifest = new Map<string, ManifestEntry>();
  try {
    await forEachLimit([...found], COPY_CONCURRENCY, async ([relative, entry]) => {
      const target = path.join(treeDir, relative);
      await fs.promises.mkdir(path.dirname(target), { recursive: true });
      const mode = gitMode(entry);
      try {
        await copyEntry(path.join(root, relative), target, mode);
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') return; // deleted while we walked
        throw error;
      }
      // Hash what was stored, not the live file, so the manifest always describes the pristine copy.
      const stored = await fs.promises.lstat(target);
      manifest.set(relative, {
        mode,
        size: stored.size,
        mtimeMs: entry.mtimeMs,
        sha256: await hashEntry(target, mode),
      });
    });
  } catch (error) {
    await removeTree(baseDir);
    throw error;
  }
  return { kind: 'copy', treeDir, manifest: new Map([...manifest].sort(([a], [b]) => comparePaths(a, b))) };
}

interface Side {
  mode: number;
  /** Text, or undefined for binary (NUL bytes, not UTF-8, or too big to diff in memory). */
  content: string | undefined;
}

async function readSide(file: string, mode: number, size: number): Promise<string | undefined> {
  if (mode === MODE_SYMLINK) return fs.promises.readlink(file);
  if (size > MAX_TEXT_DIFF_BYTES) return undefined;
  const bytes = await fs.promises.readFile(file);
  // Git's own test for binary is a NUL in the first 8000 bytes; a non-UTF-8 file is binary here too,
  // since the patch is a string.
  if (bytes.subarray(0, 8000).includes(0)) return undefined;
  return decodeUtf8(bytes);
}

/** Collects the patch text up to a byte limit, cut at a line end, counting the whole size. */
class PatchBuilder {
  private readonly parts: string[] = [];
  private kept = 0;
  totalBytes = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  get text(): string {
    return this.parts.join('');
  }

  append(text: string): void {
    const size = Buffer.byteLength(text);
    this.totalBytes += size;
    if (this.truncated) return;
    if (this.kept + size <= this.limit) {
      this.parts.push(text);
      this.kept += size;
      return;
    }
    this.truncated = true;
    const room = Buffer.from(text).subarray(0, this.limit - this.kept);
    const cut = room.subarray(0, room.lastIndexOf(0x0a) + 1).toString('utf8');
    this.parts.push(cut);
    this.kept += Buffer.byteLength(cut);
  }
}

// eslint-disable-next-line no-control-regex -- control characters are what git quotes
const NEEDS_QUOTING = /["\\\u0000-\u001f\u007f]/;

/** Git's C-style quoting of a path in a patch header (as with core.quotePath=false). */
function quotePath(name: string): string {
  if (!NEEDS_QUOTING.test(name)) return name;
  const escapes: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
  const body = [...name]
    .map(
      (c) =>
        escapes[c] ??
        (c.charCodeAt(0) < 0x20 || c === '\u007f' ? `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}` : c),
    )
    .join('');
  return `"${body}"`;
}

function renderFileDiff(
  relative: string,
  before: Side | undefined,
  after: Side | undefined,
): { text: string; insertions: number; deletions: number; binary: boolean } {
  // A file that became a symlink (or back) is two changes in git's format: a deletion and an addition.
  if (before && after && (before.mode === MODE_SYMLINK) !== (after.mode === MODE_SYMLINK)) {
    const removed = renderFileDiff(relative, before, undefined);
    const added = renderFileDiff(relative, undefined, after);
    return {
      text: removed.text + added.text,
      insertions: added.insertions,
      deletions: removed.deletions,
      binary: removed.binary || added.binary,
    };
  }
  const a = quotePath(`a/${relative}`);
  const b = quotePath(`b/${relative}`);
  let text = `diff --git ${a} ${b}\n`;
  if (!before && after) text += `new file mode ${after.mode.toString(8)}\n`;
  else if (before && !after) text += `deleted file mode ${before.mode.toString(8)}\n`;
  else if (before && after && before.mode !== after.mode) {
    text += `old mode ${before.mode.toString(8)}\nnew mode ${after.mode.toString(8)}\n`;
  }
  const from = before ? a : '/dev/null';
  const to = after ? b : '/dev/null';
  if ((before && before.content === undefined) || (after && after.content === undefined)) {
    return {
      text: `${text}Binary files ${from} and ${to} differ\n`,
      insertions: 0,
      deletions: 0,
      binary: true,
    };
  }
  const diff = unifiedDiffHunks(before?.content ?? '', after?.content ?? '');
  // Like git: an empty file added or removed, or a mode change alone, has no ---/+++ lines.
  if (diff.hunks !== '') text += `--- ${from}\n+++ ${to}\n${diff.hunks}`;
  return { text, insertions: diff.insertions, deletions: diff.deletions, binary: false };
}

// --- line diff -------------------------------------------------------------------------------------------

export interface LineDiff {
  /** The `@@` hunks of a unified diff, each line ending in "\n"; '' when the texts are equal. */
  hunks: string;
  insertions: number;
  deletions: number;
}

const EQUAL = 0;
const DELETE = 1;
const INSERT = 2;

/**
 * A line-based unified diff (Myers, after trimming the common head and tail). Past `maxEditDistance` edits
 * the changed middle is shown as removed and re-added whole: still a correct diff, only not minimal.
 * A last line without "\n" gets git's "\ No newline at end of file" marker.
 */
export function unifiedDiffHunks(
  oldText: string,
  newText: string,
  options: { context?: number; maxEditDistance?: number } = {},
): LineDiff {
  const a = splitLines(oldText);
  const b = splitLines(newText);
  const ops = lineEdits(a, b, options.maxEditDistance ?? DEFAULT_MAX_EDIT_DISTANCE);
  return renderHunks(a, b, ops, options.context ?? 3);
}

/** Lines with their "\n" kept, so "x" and "x\n" differ as they must. */
function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  while (start < text.length) {
    const end = text.indexOf('\n', start);
    if (end === -1) {
      lines.push(text.slice(start));
      break;
    }
    lines.push(text.slice(start, end + 1));
    start = end + 1;
  }
  return lines;
}

function lineEdits(a: readonly string[], b: readonly string[], maxEditDistance: number): number[] {
  const ids = new Map<string, number>();
  const idOf = (line: string): number => {
    let id = ids.get(line);
    if (id === undefined) {
      id = ids.size;
      ids.set(line, id);
    }
    return id;
  };
  const x = Int32Array.from(a, idOf);
  const y = Int32Array.from(b, idOf);
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head += 1;
  let tail = 0;
  while (
    tail < x.length - head &&
    tail < y.length - head &&
    x[x.length - 1 - tail] === y[y.length - 1 - tail]
  ) {
    tail += 1;
  }
  const oldMiddle = x.subarray(head, x.length - tail);
  const newMiddle = y.subarray(head, y.length - tail);
  const middle = myers(oldMiddle, newMiddle, maxEditDistance) ?? [
    ...new Array<number>(oldMiddle.length).fill(DELETE),
    ...new Array<number>(newMiddle.length).fill(INSERT),
  ];
  return [...new Array<number>(head).fill(EQUAL), ...middle, ...new Array<number>(tail).fill(EQUAL)];
}

/** Myers' O(ND) shortest edit script, or undefined when it needs more than `maxD` edits. */
function myers(a: Int32Array, b: Int32Array, maxD: number): number[] | undefined {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  if (max === 0) return [];
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  // trace[d] holds v over diagonals -d-1..d+1 as it was before step d: what the backtrack reads.
  const trace: Int32Array[] = [];
  const limit = Math.min(max, maxD);
  for (let d = 0; d <= limit; d += 1) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && (v[offset + k - 1] ?? 0) < (v[offset + k + 1] ?? 0));
      let px = down ? (v[offset + k + 1] ?? 0) : (v[offset + k - 1] ?? 0) + 1;
      let py = px - k;
      while (px < n && py < m && a[px] === b[py]) {
        px += 1;
        py += 1;
      }
      v[offset + k] = px;
      if (px >= n && py >= m) return backtrack(trace, d, n, m);
    }
  }
  return undefined;
}

function backtrack(trace: readonly Int32Array[], steps: number, n: number, m: number): number[] {
  const ops: number[] = [];
  let x = n;
  let y = m;
  for (let d = steps; d > 0; d -= 1) {
    const window = trace[d] as Int32Array;
    const at = (k: number): number => window[k + d + 1] ?? 0;
    const k = x - y;
    const previousK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const previousX = at(previousK);
    const previousY = previousX - previousK;
    while (x > previousX && y > previousY) {
      ops.push(EQUAL);
      x -= 1;
      y -= 1;
    }
    ops.push(x === previousX ? INSERT : DELETE);
    x = previousX;
    y = previousY;
  }
  while (x > 0 && y > 0) {
    ops.push(EQUAL);
    x -= 1;
    y -= 1;
  }
  return ops.reverse();
}

function renderHunks(
  a: readonly string[],
  b: readonly string[],
  ops: readonly number[],
  context: number,
): LineDiff {
  // Where each op stands in the old and new line lists.
  const oldAt = new Int32Array(ops.length + 1);
  const newAt = new Int32Array(ops.length + 1);
  const changes: number[] = [];
  let insertions = 0;
  let deletions = 0;
  ops.forEach((op, i) => {
    oldAt[i + 1] = (oldAt[i] ?? 0) + (op === INSERT ? 0 : 1);
    newAt[i + 1] = (newAt[i] ?? 0) + (op === DELETE ? 0 : 1);
    if (op === INSERT) insertions += 1;
    if (op === DELETE) deletions += 1;
    if (op !== EQUAL) changes.push(i);
  });
  const out: string[] = [];
  for (let first = 0; first < changes.length;) {
    let last = first;
    // Changes closer than two contexts share a hunk, as in git.
    while (last + 1 < changes.length && (changes[last + 1] ?? 0) - (changes[last] ?? 0) - 1 <= 2 * context)
      last += 1;
    const lo = Math.max(0, (changes[first] ?? 0) - context);
    const hi = Math.min(ops.length, (changes[last] ?? 0) + context + 1);
    const oldStart = oldAt[lo] ?? 0;
    const newStart = newAt[lo] ?? 0;
    out.push(
      `@@ -${range(oldStart, (oldAt[hi] ?? 0) - oldStart)} +${range(newStart, (newAt[hi] ?? 0) - newStart)} @@\n`,
    );
    for (let i = lo; i < hi; i += 1) {
      const op = ops[i];
      const line = (op === INSERT ? b[newAt[i] ?? 0] : a[oldAt[i] ?? 0]) ?? '';
      const mark = op === INSERT ? '+' : op === DELETE ? '-' : ' ';
      out.push(line.endsWith('\n') ? `${mark}${line}` : `${mark}${line}\n\\ No newline at end of file\n`);
    }
    first = last + 1;
  }
  return { hunks: out.join(''), insertions, deletions };
}

/** Unified range: "start,count", 1-based; an empty range names the line before it, as diff does. */
function range(start: number, count: number): string {
  if (count === 0) return `${start},0`;
  return count === 1 ? `${start + 1}` : `${start + 1},${count}`;
}
