// The small argument parser every `tandem-mcp` command shares: declared flags only, `--flag value` or
// `--flag=value`, and a UsageError (exit code 2) for anything else, so each command reads typed values.
import { statSync } from 'node:fs';
import path from 'node:path';

/** Exit codes of every command; documented in USAGE. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  partial: 3,
  interrupted: 130,
  terminated: 143,
} as const;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * boolean: present or not. value: needs a value. optional: takes the next argument as its value unless it
 * is missing or looks like a flag (`--http` alone, `--http 8080`, `--http=8080`). repeated: needs a value and
 * may be given again (`--input a=1 --input b=2`).
 */
export type FlagKind = 'boolean' | 'value' | 'optional' | 'repeated';

export interface ArgSpec {
  flags: Readonly<Record<string, FlagKind>>;
  /** Names of the positional arguments, in order; all required. Default none. */
  positionals?: readonly string[];
  /** Names of positional arguments after the required ones that may be left out. Default none. */
  optionalPositionals?: readonly string[];
}

export class ParsedArgs {
  constructor(
    private readonly command: string,
    private readonly values: ReadonlyMap<string, string | true>,
    readonly positionals: readonly string[],
    private readonly lists: ReadonlyMap<string, readonly string[]> = new Map(),
  ) {}

  has(flag: string): boolean {
    return this.values.has(flag) || this.lists.has(flag);
  }

  /** Every value of a repeated flag, in the order given. */
  all(flag: string): readonly string[] {
    return this.lists.get(flag) ?? [];
  }

  string(flag: string): string | undefined {
    const value = this.values.get(flag);
    return typeof value === 'string' ? value : undefined;
  }

  required(flag: string): string {
    const value = this.string(flag);
    if (value === undefined) throw new UsageError(`${this.command}: --${flag} is required`);
    return value;
  }

  int(flag: string, min: number, max: number): number | undefined {
    const text = this.string(flag);
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      throw new UsageError(`${this.command}: --${flag} must be a whole number from ${min} to ${max}`);
    }
    return value;
  }

  choice<T extends string>(flag: string, choices: readonly T[]): T | undefined {
    const value = this.string(flag);
    if (value === undefined) return undefined;
    if (!(choices as readonly string[]).includes(value)) {
      throw new UsageError(`${this.command}: --${flag} must be one of ${choices.join(', ')}`);
    }
    return value as T;
  }

  /** An existing directory, absolute; the current directory when the flag is absent. */
  directory(flag: string): string {
    const dir = path.resolve(this.string(flag) ?? process.cwd());
    let isDirectory = false;
    try {
      isDirectory = statSync(dir).isDirectory();
    } catch {
      // reported below
    }
    if (!isDirectory) throw new UsageError(`${this.command}: ${dir} is not a directory`);
    return dir;
  }
}

export function parseArgs(command: string, args: readonly string[], spec: ArgSpec): ParsedArgs {
  const values = new Map<string, string | true>();
  const lists = new Map<string, string[]>();
  const positionals: string[] = [];
  const wanted = spec.positionals ?? [];
  const allowed = wanted.length + (spec.optionalPositionals?.length ?? 0);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith('--') || arg === '--') {
      if (arg === '--' || positionals.length >= allowed) {
        throw new UsageError(`${command}: unexpected argument "${arg}"`);
      }
      positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf('=');
    const name = arg.slice(2, equals > 0 ? equals : undefined);
    const kind = Object.hasOwn(spec.flags, name) ? spec.flags[name] : undefined;
    if (kind === undefined) throw new UsageError(`${command}: unknown option "${arg}"`);
    if (values.has(name)) throw new UsageError(`${command}: --${name} is given twice`);
    if (kind === 'boolean') {
      if (equals > 0) throw new UsageError(`${command}: --${name} takes no value`);
      values.set(name, true);
      continue;
    }
    let value: string | undefined;
    if (equals > 0) {
      value = arg.slice(equals + 1);
    } else {
      const next = args[i + 1];
      const takesNext = next !== undefined && (kind === 'value' || !next.startsWith('--'));
      if (takesNext) {
        value = next;
        i += 1;
      }
    }
    if (value === undefined && kind === 'optional') {
      values.set(name, true);
      continue;
    }
    if (value === undefined || value === '') throw new UsageError(`${command}: --${name} needs a value`);
    if (kind === 'repeated') lists.set(name, [...(lists.get(name) ?? []), value]);
    else values.set(name, value);
  }
  if (positionals.length < wanted.length) {
    throw new UsageError(`${command}: missing ${wanted.slice(positionals.length).join(', ')}`);
  }
  return new ParsedArgs(command, values, positionals, lists);
}
