// The jail of a verify step's command. The command runs a candidate's code on the host, so it is argv only
// (never a shell string), its program is a name looked up on PATH, an absolute path or a path inside the
// candidate's copy, and no argument names a place outside that copy. The lexical rules hold when a playbook or its inputs are read;
// at run time the paths are resolved again through the workspace jail of the copy, symlinks included.
import { JailError, WorkspaceJail } from '../../core/jail';

/**
 * Programs that would run a string as a command, or another program with its own arguments, and so undo the
 * argv rule: shells, and launchers that exec what follows them.
 */
export const REFUSED_PROGRAMS: ReadonlySet<string> = new Set([
  'sh',
  'bash',
  'dash',
  'ash',
  'zsh',
  'ksh',
  'mksh',
  'fish',
  'csh',
  'tcsh',
  'busybox',
  'cmd',
  'powershell',
  'pwsh',
  'env',
  'sudo',
  'doas',
  'su',
  'nohup',
  'setsid',
  'xargs',
  'script',
  'eval',
  'exec',
]);

/** The program's name as a refusal is judged: its last path part, lower case, without `.exe` and the like. */
function programName(program: string): string {
  const base = program.split(/[\\/]/).pop() ?? program;
  return base.toLowerCase().replace(/\.(exe|cmd|bat|com)$/, '');
}

/** Absolute in POSIX or Windows terms: `/x`, `\x`, `C:x`, `\\server\share`. */
function isAbsoluteAnywhere(part: string): boolean {
  return /^[\\/]/.test(part) || /^[A-Za-z]:/.test(part);
}

/** Whether a relative path climbs out of the folder it starts in (`..`, `a/../..`). */
function climbsOut(part: string): boolean {
  let depth = 0;
  for (const segment of part.split(/[\\/]/)) {
    if (segment === '..') depth -= 1;
    else if (segment !== '' && segment !== '.') depth += 1;
    if (depth < 0) return true;
  }
  return false;
}

/** The path-like pieces of one argument: itself, and the value of an `--option=value` form. */
function pathPieces(part: string): string[] {
  const equals = part.indexOf('=');
  return part.startsWith('-') && equals > 0 ? [part.slice(equals + 1)] : [part];
}

/**
 * What is wrong with `argv` as a verify command, or undefined when it keeps to the rules. Lexical: it needs
 * no file system, so a playbook and its inputs are checked before anything runs.
 */
export function verifyCommandProblem(argv: readonly string[]): string | undefined {
  const program = argv[0];
  if (program === undefined) return undefined;
  const name = programName(program);
  if (REFUSED_PROGRAMS.has(name)) {
    return (
      `the program ${JSON.stringify(program)} would run a command string or another program; ` +
      'give the test program itself with its arguments, e.g. ["npm", "test"]'
    );
  }
  for (const [index, part] of argv.entries()) {
    for (const piece of pathPieces(part)) {
      // The program may be named by an absolute path (`/usr/bin/make`): that is what a name on PATH finds too.
      if (index === 0 && isAbsoluteAnywhere(piece)) continue;
      if (isAbsoluteAnywhere(piece)) {
        return (
          `part ${index} (${JSON.stringify(part)}) is an absolute path; the command runs in the candidate's copy ` +
          'of the workspace, so give paths relative to the workspace folder'
        );
      }
      if (climbsOut(piece)) {
        return (
          `part ${index} (${JSON.stringify(part)}) leads out of the workspace folder; ` +
          'give paths that stay inside it'
        );
      }
    }
  }
  return undefined;
}

export class VerifyCommandError extends Error {
  override readonly name = 'VerifyCommandError';
}

/**
 * Checks `argv` before it runs in `copyDir`: the lexical rules, then every part that names a path (a program
 * given by path, an argument with a separator) resolved through the copy's jail, so a symlink in the
 * candidate's change cannot lead the command out. Throws a VerifyCommandError that says what to change.
 */
export async function jailVerifyCommand(argv: readonly string[], copyDir: string): Promise<void> {
  const problem = verifyCommandProblem(argv);
  if (problem !== undefined) throw new VerifyCommandError(`The verify command is refused: ${problem}.`);
  const jail = await WorkspaceJail.open(copyDir);
  for (const [index, part] of argv.entries()) {
    for (const piece of pathPieces(part)) {
      if (!/[\\/]/.test(piece) || (index === 0 && isAbsoluteAnywhere(piece))) continue;
      try {
        await jail.resolve(piece);
      } catch (error) {
        if (!(error instanceof JailError)) throw error;
        throw new VerifyCommandError(
          `The verify command is refused: part ${index} (${JSON.stringify(part)}) resolves outside the ` +
            `candidate's copy of the workspace (${error.code}). Give paths that stay inside the workspace.`,
        );
      }
    }
  }
}
