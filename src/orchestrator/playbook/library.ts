// Where playbooks come from: the built-ins, and the user's JSON files in `.tandem/playbooks/` of the workspace.
// Listing reports every file, a bad one with its exact problem, so a user sees why a playbook is missing; running
// refuses a bad one with the same message. The folder is Tandem state a repository can ship: its files are read
// through the state-file rules (no link followed, regular files only, bounded in size and time).
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { WorkspaceJail } from '../../core/jail';
import { checkStateFolders, readStateFile } from '../../core/state-file';
import { STATE_DIR_NAME } from '../run-store';
import { BUILTIN_PLAYBOOKS } from './builtin';
import {
  PlaybookError,
  parsePlaybook,
  parsePlaybookText,
  playbookHash,
  type InputSpec,
  type Playbook,
} from './schema';

export const PLAYBOOKS_DIR = `${STATE_DIR_NAME}/playbooks`;
const MAX_PLAYBOOK_BYTES = 256 * 1024;
const MAX_PLAYBOOK_FILES = 200;

export interface PlaybookEntry {
  name: string;
  description: string;
  /** "builtin:NAME" or the file relative to the workspace root. */
  source: string;
  builtin: boolean;
  /** The version hash; null for a playbook that does not parse. */
  hash: string | null;
  inputs: Record<string, InputSpec>;
  /** Why the file cannot be used (with the path of the field at fault); null when it can. */
  error: string | null;
}

export interface LoadedPlaybook {
  playbook: Playbook;
  source: string;
  hash: string;
}

export class UnknownPlaybookError extends Error {
  constructor(
    readonly requested: string,
    readonly known: string[],
  ) {
    super(`No playbook "${requested}". Known: ${known.join(', ')} (list them with playbook_list).`);
    this.name = 'UnknownPlaybookError';
  }
}

const builtins = new Map<string, LoadedPlaybook>(
  BUILTIN_PLAYBOOKS.map((raw) => {
    const source = `builtin:${raw.name}`;
    const playbook = parsePlaybook(raw, source);
    return [playbook.name, { playbook, source, hash: playbookHash(playbook) }];
  }),
);

export function builtinPlaybook(name: string): LoadedPlaybook | undefined {
  return builtins.get(name);
}

interface UserFile {
  source: string;
  loaded?: LoadedPlaybook;
  error?: Error;
  /** The name in the file; for a file that cannot be used, the file name. */
  name: string;
  /** A file that cannot be used: the string `name` its JSON holds, if any, which it also answers to. */
  declaredName?: string;
  description: string;
}

/** The `name` a file's JSON holds when it is readable and a string, whatever else is wrong with the file. */
function declaredName(text: string): string | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object' && 'name' in value && typeof value.name === 'string') {
      return value.name;
    }
  } catch {
    // Not JSON: parsePlaybookText has named the fault.
  }
  return undefined;
}

async function readUserFiles(jail: WorkspaceJail): Promise<UserFile[]> {
  const dir = path.join(jail.root, PLAYBOOKS_DIR);
  // A linked .tandem or playbooks folder is refused as a whole (a StateFileError the caller reports).
  if (!(await checkStateFolders(jail.root, dir))) return [];
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => name.endsWith('.json')).sort();
  } catch {
    return [];
  }
  const files: UserFile[] = [];
  for (const name of names.slice(0, MAX_PLAYBOOK_FILES)) {
    const source = `${PLAYBOOKS_DIR}/${name}`;
    const fallbackName = name.slice(0, -'.json'.length);
    let text: string | undefined;
    try {
      // A link, a FIFO or an oversized file is refused without blocking (its error is listed with it).
      text = await readStateFile(jail.root, path.join(dir, name), { maxBytes: MAX_PLAYBOOK_BYTES });
      if (text === undefined) continue;
      const playbook = parsePlaybookText(text, source);
      if (builtins.has(playbook.name)) {
        throw new PlaybookError(source, [
          { path: 'name', message: `"${playbook.name}" is a built-in playbook; give yours another name` },
        ]);
      }
      files.push({
        source,
        name: playbook.name,
        description: playbook.description,
        loaded: { playbook, source, hash: playbookHash(playbook) },
      });
    } catch (error) {
      const declared = text === undefined ? undefined : declaredName(text);
      files.push({
        source,
        name: fallbackName,
        ...(declared === undefined ? {} : { declaredName: declared }),
        description: '',
        error: error as Error,
      });
    }
  }
  // Two files declaring the same name: both are refused, so which one runs never depends on file order.
  const counts = new Map<string, number>();
  for (const file of files) if (file.loaded) counts.set(file.name, (counts.get(file.name) ?? 0) + 1);
  return files.map((file) =>
    file.loaded && (counts.get(file.name) ?? 0) > 1
      ? {
          source: file.source,
          name: file.name,
          description: file.description,
          error: new PlaybookError(file.source, [
            { path: 'name', message: `another file in ${PLAYBOOKS_DIR} is also named "${file.name}"` },
          ]),
        }
      : file,
  );
}

/** The built-ins, then the user's playbooks (bad ones included, with their error). */
export async function listPlaybooks(jail: WorkspaceJail): Promise<PlaybookEntry[]> {
  const entries: PlaybookEntry[] = [...builtins.values()].map(({ playbook, source, hash }) => ({
    name: playbook.name,
    description: playbook.description,
    source,
    builtin: true,
    hash,
    inputs: playbook.inputs,
    error: null,
  }));
  for (const file of await readUserFiles(jail)) {
    entries.push({
      name: file.name,
      description: file.description,
      source: file.source,
      builtin: false,
      hash: file.loaded?.hash ?? null,
      inputs: file.loaded?.playbook.inputs ?? {},
      error: file.error?.message ?? null,
    });
  }
  return entries;
}

/**
 * A playbook by name: a built-in, or a user's file that parses; a bad file is refused with its error, whether
 * asked for by its file name (as listed) or by the name written in it.
 */
export async function loadPlaybook(jail: WorkspaceJail, name: string): Promise<LoadedPlaybook> {
  const builtin = builtins.get(name);
  if (builtin) return builtin;
  const files = await readUserFiles(jail);
  const file =
    files.find((candidate) => candidate.name === name) ??
    files.find((candidate) => candidate.error && candidate.declaredName === name);
  if (file?.loaded) return file.loaded;
  if (file?.error) throw file.error;
  throw new UnknownPlaybookError(name, [
    ...builtins.keys(),
    ...files.filter((f) => f.loaded).map((f) => f.name),
  ]);
}
