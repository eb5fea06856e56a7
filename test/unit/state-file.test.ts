// The state-file rules on real files: no link is followed (in the file or any folder above it), only regular
// files are read or appended to, reads are bounded, and a write never goes through a link to its target.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  appendStateFile,
  ensureStateFolders,
  readStateFile,
  StateFileError,
  writeStateFile,
} from '../../src/core/state-file';

describe('state files', function () {
  let root: string;
  let outside: string;
  let state: string;

  beforeEach(async function () {
    root = await mkdtemp(path.join(os.tmpdir(), 'tandem-state-'));
    outside = await mkdtemp(path.join(os.tmpdir(), 'tandem-state-outside-'));
    state = path.join(root, '.tandem');
  });

  afterEach(async function () {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  function refusal(code: StateFileError['code'], pattern: RegExp) {
    return (error: unknown): boolean => {
      assert.ok(error instanceof StateFileError, String(error));
      assert.equal(error.code, code);
      assert.match(error.message, pattern);
      return true;
    };
  }

  it('refuses a state folder that is a link, at any depth, and makes nothing through it', async function () {
    await mkdir(state);
    await symlink(outside, path.join(state, 'runs'));
    await assert.rejects(
      ensureStateFolders(root, path.join(state, 'runs', 'run-1')),
      refusal('SYMLINK', /^\.tandem\/runs is a symbolic link\./),
    );
    await assert.rejects(
      appendStateFile(root, path.join(state, 'runs', 'events.jsonl'), 'x\n'),
      refusal('SYMLINK', /\.tandem\/runs is a symbolic link/),
    );
    assert.deepEqual(spawnSync('ls', ['-A', outside]).stdout.toString(), '', 'nothing was made outside');
  });

  it('appends to and reads no file that is a link; a write replaces the link, not its target', async function () {
    await mkdir(state);
    const target = path.join(outside, 'target.json');
    await writeFile(target, 'outside\n');
    const link = path.join(state, 'panic.json');
    await symlink(target, link);
    await assert.rejects(appendStateFile(root, link, 'x\n'), refusal('SYMLINK', /\.tandem\/panic\.json/));
    await assert.rejects(readStateFile(root, link, { maxBytes: 100 }), refusal('SYMLINK', /panic\.json/));
    await writeStateFile(root, link, 'ours\n');
    assert.equal(await readFile(target, 'utf8'), 'outside\n');
    assert.equal(await readStateFile(root, link, { maxBytes: 100 }), 'ours\n');
    await assert.rejects(readlink(link), /EINVAL/, 'the link itself was replaced by a regular file');
  });

  it('refuses a FIFO at once for reading and appending, and a file larger than asked for', async function () {
    await mkdir(state);
    const fifo = path.join(state, 'runs.jsonl');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    await assert.rejects(readStateFile(root, fifo, { maxBytes: 100 }), refusal('NOT_REGULAR', /FIFO/));
    await assert.rejects(appendStateFile(root, fifo, 'x\n'), refusal('NOT_REGULAR', /FIFO/));
    const big = path.join(state, 'big.json');
    await writeFile(big, 'x'.repeat(101));
    await assert.rejects(readStateFile(root, big, { maxBytes: 100 }), refusal('TOO_LARGE', /101 bytes/));
  });

  it('says undefined for a missing file, and refuses .tandem when it is a regular file', async function () {
    assert.equal(await readStateFile(root, path.join(state, 'panic.json'), { maxBytes: 100 }), undefined);
    await writeFile(state, 'not a folder\n');
    await assert.rejects(
      readStateFile(root, path.join(state, 'panic.json'), { maxBytes: 100 }),
      refusal('NOT_FOLDER', /^\.tandem is a file, not a folder\./),
    );
  });
});
