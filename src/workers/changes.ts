// Finds what a step changed on disk by comparing snapshots of its working directory taken before and
// after. The CLIs' own events are not trusted for this (a refused write can print nothing at all).
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { FileChange } from './contract';

/** Folders never walked: version control internals and Tandem's own state. */
const SKIPPED_DIRS = new Set(['.git', '.tandem', '.hg', '.svn']);
export const DEFAULT_SNAPSHOT_LIMIT = 50_000;

interface Entry {
  size: number;
  mtimeNs: bigint;
  ino: bigint;
  mode: number;
}

export interface Snapshot {
  root: string;
  entries: Map<string, Entry>;
  /** The walk stopped at the limit: some files were not seen. */
  incomplete: boolean;
}

/** Records every file (and symlink) under root by size, mtime, inode and mode; symlinks are not followed. */
export async function takeSnapshot(root: string, limit = DEFAULT_SNAPSHOT_LIMIT): Promise<Snapshot> {
  const entries = new Map<string, Entry>();
  let incomplete = false;
  const pending: string[] = [''];
  while (pending.length > 0) {
    const relativeDir = pending.pop() as string;
    let names: string[];
    try {
      names = await readdir(path.join(root, relativeDir));
    } catch {
      // Removed while we walked, or unreadable: nothing to record.
      continue;
    }
    names.sort();
    for (const name of names) {
      const relative = relativeDir === '' ? name : `${relativeDir}/${name}`;
      let stat;
      try {
        stat = await lstat(path.join(root, relative), { bigint: true });
      } catch {
        continue;
      }
      if (stat.isDirectory()) {
        if (!SKIPPED_DIRS.has(name)) pending.push(relative);
        continue;
      }
      if (entries.size >= limit) {
        incomplete = true;
        return { root, entries, incomplete };
      }
      entries.set(relative, {
        size: Number(stat.size),
        mtimeNs: stat.mtimeNs,
        ino: stat.ino,
        mode: Number(stat.mode),
      });
    }
  }
  return { root, entries, incomplete };
}

/** Files added, modified or deleted between two snapshots of the same root, sorted by path. */
export function diffSnapshots(before: Snapshot, after: Snapshot): FileChange[] {
  const changes: FileChange[] = [];
  for (const [file, entry] of after.entries) {
    const previous = before.entries.get(file);
    if (!previous) changes.push({ path: file, change: 'added' });
    else if (
      previous.size !== entry.size ||
      previous.mtimeNs !== entry.mtimeNs ||
      previous.ino !== entry.ino ||
      previous.mode !== entry.mode
    ) {
      changes.push({ path: file, change: 'modified' });
    }
  }
  for (const file of before.entries.keys()) {
    if (!after.entries.has(file)) changes.push({ path: file, change: 'deleted' });
  }
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
