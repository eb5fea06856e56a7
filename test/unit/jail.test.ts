import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { JailError, type JailErrorCode, WorkspaceJail } from '../../src/core/jail';

// On disk, under a fresh temp dir (realpathed, since /tmp may itself be a symlink):
//   ws/                      the workspace root
//     a/file.txt
//     b/
//     link-in -> a           link-chain-1 -> link-chain-2 -> link-chain-3 -> a
//     link-in-abs -> <ws>/b  dangling-in -> a/not-yet.txt
//     link-out -> ../outside/secret.txt        link-out-dir -> ../outside
//     dangling -> ../outside/nowhere.txt       chain-out-1 -> chain-out-2 -> ../outside
//     link-out-abs -> <outside>                loop-1 <-> loop-2
//   ws-evil/                 shares the root's name as a prefix
//   ws-alias -> ws           a second spelling of the root
//   outside/secret.txt
let base = '';
let root = '';
let outside = '';

function refusedWith(code: JailErrorCode): (error: unknown) => true {
  return (error: unknown) => {
    assert.ok(error instanceof JailError, `expected a JailError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

type Resolver = (jail: WorkspaceJail, requested: string) => Promise<string>;
const resolvers: ReadonlyArray<{ name: string; resolve: Resolver }> = [
  { name: 'resolve', resolve: (jail, requested) => jail.resolve(requested) },
  { name: 'resolveSync', resolve: async (jail, requested) => jail.resolveSync(requested) },
];

/** Realpath of the deepest ancestor of `candidate` that exists (itself if it exists). */
function realpathOfDeepestExisting(candidate: string): string {
  for (let current = candidate; ; current = path.dirname(current)) {
    try {
      return fs.realpathSync(current);
    } catch {
      if (path.dirname(current) === current) throw new Error(`nothing of ${candidate} exists`);
    }
  }
}

function isInsideRoot(candidate: string): boolean {
  return candidate === root || candidate.startsWith(root + path.sep);
}

describe('WorkspaceJail', () => {
  before(() => {
    base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-jail-')));
    root = path.join(base, 'ws');
    outside = path.join(base, 'outside');
    fs.mkdirSync(path.join(root, 'a'), { recursive: true });
    fs.mkdirSync(path.join(root, 'b'));
    fs.mkdirSync(path.join(base, 'ws-evil'));
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(root, 'a', 'file.txt'), 'inside\n');
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'secret\n');
    const links: Array<[string, string]> = [
      ['link-in', 'a'],
      ['link-in-abs', path.join(root, 'b')],
      ['link-chain-1', 'link-chain-2'],
      ['link-chain-2', './link-chain-3'],
      ['link-chain-3', 'a'],
      ['dangling-in', 'a/not-yet.txt'],
      ['link-out', '../outside/secret.txt'],
      ['link-out-dir', '../outside'],
      ['link-out-abs', outside],
      ['dangling', '../outside/nowhere.txt'],
      ['chain-out-1', 'chain-out-2'],
      ['chain-out-2', '../outside'],
      ['loop-1', 'loop-2'],
      ['loop-2', 'loop-1'],
    ];
    for (const [name, target] of links) fs.symlinkSync(target, path.join(root, name));
    fs.symlinkSync('ws', path.join(base, 'ws-alias'));
  });

  after(() => {
    fs.rmSync(base, { recursive: true, force: true });
  });

  describe('opening', () => {
    const openers = [
      { name: 'open', open: (dir: string) => WorkspaceJail.open(dir) },
      { name: 'openSync', open: async (dir: string) => WorkspaceJail.openSync(dir) },
    ];
    for (const { name, open } of openers) {
      describe(name, () => {
        it('keeps the real path of the root, even when the root is reached through a symlink', async () => {
          assert.equal((await open(root)).root, root);
          assert.equal((await open(path.join(base, 'ws-alias'))).root, root);
        });

        it('refuses a root that does not exist with ROOT_INVALID', async () => {
          await assert.rejects(open(path.join(base, 'no-such-dir')), refusedWith('ROOT_INVALID'));
        });

        it('refuses a root that is a file with ROOT_INVALID', async () => {
          await assert.rejects(open(path.join(root, 'a', 'file.txt')), refusedWith('ROOT_INVALID'));
        });

        it('refuses an empty root instead of falling back to the current directory', async () => {
          await assert.rejects(open(''), refusedWith('ROOT_INVALID'));
        });

        it('refuses a root holding a NUL byte with ROOT_INVALID, not a raw TypeError', async () => {
          await assert.rejects(open(`${root}\0`), refusedWith('ROOT_INVALID'));
        });
      });
    }
  });

  for (const { name, resolve } of resolvers) {
    describe(`${name} accepts`, () => {
      let jail: WorkspaceJail;
      before(() => {
        jail = WorkspaceJail.openSync(root);
      });

      it('a relative path to an existing file', async () => {
        assert.equal(await resolve(jail, 'a/file.txt'), path.join(root, 'a', 'file.txt'));
      });

      it('an absolute path inside the workspace', async () => {
        assert.equal(await resolve(jail, path.join(root, 'a', 'file.txt')), path.join(root, 'a', 'file.txt'));
      });

      it('the root itself, as "." and as its absolute path', async () => {
        assert.equal(await resolve(jail, '.'), root);
        assert.equal(await resolve(jail, root), root);
        assert.equal(await resolve(jail, `${root}/`), root);
      });

      it('a new file in directories that do not exist yet', async () => {
        assert.equal(
          await resolve(jail, 'new/deeper/file.txt'),
          path.join(root, 'new', 'deeper', 'file.txt'),
        );
      });

      it('"a/../b", normalised to b', async () => {
        assert.equal(await resolve(jail, 'a/../b'), path.join(root, 'b'));
      });

      it('a path that steps out and back in, since it names a file inside', async () => {
        assert.equal(await resolve(jail, '../ws/a/file.txt'), path.join(root, 'a', 'file.txt'));
      });

      it('a name that merely starts with two dots', async () => {
        assert.equal(await resolve(jail, '..hidden'), path.join(root, '..hidden'));
      });

      it('a symlink pointing inside, resolved to its target', async () => {
        assert.equal(await resolve(jail, 'link-in/file.txt'), path.join(root, 'a', 'file.txt'));
        assert.equal(await resolve(jail, 'link-in-abs'), path.join(root, 'b'));
      });

      it('a chain of symlinks that stays inside', async () => {
        assert.equal(await resolve(jail, 'link-chain-1/file.txt'), path.join(root, 'a', 'file.txt'));
      });

      it('a dangling symlink whose target would be created inside, resolved to that target', async () => {
        assert.equal(await resolve(jail, 'dangling-in'), path.join(root, 'a', 'not-yet.txt'));
      });

      it('an absolute path spelled through the symlinked form the root was opened with', async () => {
        const aliased = await WorkspaceJail.open(path.join(base, 'ws-alias'));
        const spelled = path.join(base, 'ws-alias', 'a', 'file.txt');
        assert.equal(await resolve(aliased, spelled), path.join(root, 'a', 'file.txt'));
      });

      it('a name below a plain file, which only fails later when used', async () => {
        assert.equal(await resolve(jail, 'a/file.txt/x'), path.join(root, 'a', 'file.txt', 'x'));
      });

      if (path.sep === '/') {
        it('a POSIX file name with a backslash in the middle, as one plain name', async () => {
          assert.equal(await resolve(jail, 'a\\b.txt'), path.join(root, 'a\\b.txt'));
        });
      }
    });

    describe(`${name} refuses`, () => {
      let jail: WorkspaceJail;
      before(() => {
        jail = WorkspaceJail.openSync(root);
      });

      const refusals: ReadonlyArray<[string, () => string, JailErrorCode]> = [
        ['an empty path', () => '', 'EMPTY_PATH'],
        ['a NUL byte in the middle', () => 'a/file.txt\0.png', 'NUL_BYTE'],
        ['a lone NUL byte', () => '\0', 'NUL_BYTE'],
        ['a drive with a backslash', () => 'C:\\x', 'WINDOWS_DRIVE'],
        ['a lower-case drive with a slash', () => 'c:/x', 'WINDOWS_DRIVE'],
        ['a drive-relative path', () => 'C:x', 'WINDOWS_DRIVE'],
        ['a UNC share with backslashes', () => '\\\\server\\share', 'UNC_PATH'],
        ['a UNC share with slashes', () => '//server/share', 'UNC_PATH'],
        ['a \\\\?\\ device path', () => '\\\\?\\C:\\', 'UNC_PATH'],
        ['a \\\\.\\ device path', () => '\\\\.\\pipe\\x', 'UNC_PATH'],
        ['a ".." escape', () => '../etc/passwd', 'OUTSIDE_WORKSPACE'],
        ['a ".." escape hidden after a name', () => 'a/../../x', 'OUTSIDE_WORKSPACE'],
        ['an absolute path outside', () => '/etc/passwd', 'OUTSIDE_WORKSPACE'],
        [
          'a sibling that shares the root as a prefix (absolute)',
          () => `${root}-evil/x`,
          'OUTSIDE_WORKSPACE',
        ],
        ['a sibling that shares the root as a prefix (relative)', () => '../ws-evil/x', 'OUTSIDE_WORKSPACE'],
        [
          'a backslash escape that Windows tools would follow',
          () => '..\\..\\etc\\passwd',
          'OUTSIDE_WORKSPACE',
        ],
        ['a leading backslash that Windows reads as absolute', () => '\\etc\\passwd', 'OUTSIDE_WORKSPACE'],
        ['a file symlink pointing outside', () => 'link-out', 'SYMLINK_ESCAPE'],
        [
          'a file below a directory symlink pointing outside',
          () => 'link-out-dir/secret.txt',
          'SYMLINK_ESCAPE',
        ],
        [
          'a new file below a directory symlink pointing outside',
          () => 'link-out-dir/new/f',
          'SYMLINK_ESCAPE',
        ],
        ['an absolute symlink pointing outside', () => 'link-out-abs/secret.txt', 'SYMLINK_ESCAPE'],
        ['a dangling symlink pointing outside', () => 'dangling', 'SYMLINK_ESCAPE'],
        ['a chain of symlinks that ends outside', () => 'chain-out-1/secret.txt', 'SYMLINK_ESCAPE'],
        ['a symlink loop', () => 'loop-1/x', 'SYMLINK_ESCAPE'],
      ];
      for (const [what, requested, code] of refusals) {
        it(`${what} with ${code}`, async () => {
          await assert.rejects(resolve(jail, requested()), refusedWith(code));
        });
      }

      it('with an error that names the path, the reason and the way out', async () => {
        await assert.rejects(resolve(jail, '../etc/passwd'), (error: unknown) => {
          assert.ok(error instanceof JailError);
          assert.equal(error.name, 'JailError');
          assert.equal(error.requestedPath, '../etc/passwd');
          assert.equal(error.root, root);
          assert.equal(
            error.message,
            `Path "../etc/passwd" is outside the workspace ${root} (it resolves to ${path.join(base, 'etc', 'passwd')}). ` +
              'Use a path inside the workspace folder.',
          );
          return true;
        });
      });

      it('with a symlink error that says where the link really leads', async () => {
        await assert.rejects(resolve(jail, 'link-out'), (error: unknown) => {
          assert.ok(error instanceof JailError);
          assert.match(error.message, /through a symlink/);
          assert.ok(error.message.includes(path.join(outside, 'secret.txt')), error.message);
          return true;
        });
      });

      it('with a NUL byte shown visibly in the message', async () => {
        await assert.rejects(resolve(jail, 'a\0b'), (error: unknown) => {
          assert.ok(error instanceof JailError);
          assert.ok(error.message.includes('"a\\u0000b"'), error.message);
          return true;
        });
      });

      it('with a symlink loop error that says it gave up', async () => {
        await assert.rejects(resolve(jail, 'loop-1'), /more than 40 symlinks/);
      });
    });
  }

  describe('contains', () => {
    let jail: WorkspaceJail;
    before(() => {
      jail = WorkspaceJail.openSync(root);
    });

    it('counts the root itself and anything lexically below it as inside', () => {
      assert.equal(jail.contains(root), true);
      assert.equal(jail.contains(path.join(root, 'a', 'file.txt')), true);
      assert.equal(jail.contains(path.join(root, 'not', 'there')), true);
    });

    it('is not fooled by a sibling that shares the root as a prefix', () => {
      assert.equal(jail.contains(`${root}-evil`), false);
      assert.equal(jail.contains(`${root}-evil${path.sep}x`), false);
    });

    it('puts the parent and ".." climbs outside', () => {
      assert.equal(jail.contains(base), false);
      assert.equal(jail.contains(`${root}${path.sep}a${path.sep}..${path.sep}..${path.sep}x`), false);
    });

    it('refuses relative paths, which have no fixed place', () => {
      assert.equal(jail.contains('a/file.txt'), false);
    });
  });

  describe('relative', () => {
    let jail: WorkspaceJail;
    before(() => {
      jail = WorkspaceJail.openSync(root);
    });

    it('gives "." for the root and posix separators below it', () => {
      assert.equal(jail.relative(root), '.');
      assert.equal(jail.relative(path.join(root, 'a', 'file.txt')), 'a/file.txt');
    });

    it('refuses a path outside the root with OUTSIDE_WORKSPACE', () => {
      assert.throws(() => jail.relative(path.join(outside, 'secret.txt')), refusedWith('OUTSIDE_WORKSPACE'));
    });
  });

  describe('properties', () => {
    const numRuns = 300;
    const segment = fc.constantFrom(
      '..',
      '.',
      '',
      'a',
      'b',
      'file.txt',
      'link-out',
      'link-out-dir',
      'link-in',
      'link-chain-1',
      'dangling',
      'dangling-in',
      'chain-out-1',
      'loop-1',
      'with space',
      'ünïcødé',
      '日本語',
      '\\',
      '\0',
    );
    const mixedPath = fc
      .tuple(fc.boolean(), fc.array(segment, { minLength: 1, maxLength: 8 }))
      .map(([absolute, segments]) => (absolute ? `${root}/` : '') + segments.join('/'));
    // Glued-together fragments reach odd spellings that whole segments never form (`..\\..`, `/C:`, ...).
    const gluedPath = fc
      .array(fc.constantFrom('..', '.', '/', '\\', ':', 'C', 'a', 'link-out', 'dangling', '\0', ' '), {
        maxLength: 12,
      })
      .map((fragments) => fragments.join(''));
    const anyPath = fc.oneof(mixedPath, gluedPath, fc.string({ unit: 'binary', maxLength: 40 }));

    const safeName = fc.constantFrom('a', 'b', 'c', 'file.txt', 'new dir', 'ünïcødé', '日本語', '.dotfile');
    const safePath = fc.tuple(fc.boolean(), fc.array(safeName, { minLength: 1, maxLength: 6 }));

    let jail: WorkspaceJail;
    before(() => {
      jail = WorkspaceJail.openSync(root);
    });

    /** The property every answer must have: refused with a JailError, or really inside the root. */
    function checkOutcome(outcome: { value: string } | { error: unknown }): void {
      if ('error' in outcome) {
        assert.ok(outcome.error instanceof JailError, `not a JailError: ${String(outcome.error)}`);
        return;
      }
      assert.ok(isInsideRoot(outcome.value), `lexically outside: ${outcome.value}`);
      const real = realpathOfDeepestExisting(outcome.value);
      assert.ok(isInsideRoot(real), `really outside: ${outcome.value} lies in ${real}`);
    }

    function settleSync(requested: string): { value: string } | { error: unknown } {
      try {
        return { value: jail.resolveSync(requested) };
      } catch (error) {
        return { error };
      }
    }

    async function settle(requested: string): Promise<{ value: string } | { error: unknown }> {
      try {
        return { value: await jail.resolve(requested) };
      } catch (error) {
        return { error };
      }
    }

    it('resolveSync either refuses with a JailError or returns a path really inside the root', () => {
      fc.assert(
        fc.property(anyPath, (requested) => checkOutcome(settleSync(requested))),
        { numRuns },
      );
    });

    it('resolve either refuses with a JailError or returns a path really inside the root', async () => {
      await fc.assert(
        fc.asyncProperty(anyPath, async (requested) => checkOutcome(await settle(requested))),
        { numRuns },
      );
    });

    it('resolve and resolveSync give the same answer for every path', async () => {
      await fc.assert(
        fc.asyncProperty(anyPath, async (requested) => {
          const asyncOutcome = await settle(requested);
          const syncOutcome = settleSync(requested);
          if ('value' in asyncOutcome) {
            assert.deepEqual(syncOutcome, asyncOutcome);
          } else {
            assert.ok('error' in syncOutcome && syncOutcome.error instanceof JailError);
            assert.ok(asyncOutcome.error instanceof JailError);
            assert.equal(syncOutcome.error.code, asyncOutcome.error.code);
            assert.equal(syncOutcome.error.message, asyncOutcome.error.message);
          }
        }),
        { numRuns },
      );
    });

    it('resolveSync maps paths of plain names (no "..", no links) to path.join(root, ...names)', () => {
      fc.assert(
        fc.property(safePath, ([absolute, names]) => {
          const requested = (absolute ? `${root}/` : '') + names.join('/');
          assert.equal(jail.resolveSync(requested), path.join(root, ...names));
        }),
        { numRuns },
      );
    });

    it('resolve maps paths of plain names (no "..", no links) to path.join(root, ...names)', async () => {
      await fc.assert(
        fc.asyncProperty(safePath, async ([absolute, names]) => {
          const requested = (absolute ? `${root}/` : '') + names.join('/');
          assert.equal(await jail.resolve(requested), path.join(root, ...names));
        }),
        { numRuns },
      );
    });
  });
});
