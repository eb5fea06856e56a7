// Resolves a binary to an absolute path: an absolute path is checked as given, a bare name is looked up
// on the PATH the child will get. Relative paths with separators are refused (they depend on the cwd).
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { ExecError } from './errors';

function isExecutableFile(candidate: string): boolean {
  try {
    if (!statSync(candidate).isFile()) return false;
    accessSync(candidate, process.platform === 'win32' ? constants.F_OK : constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function notFound(command: string, where: string, installHint: string | undefined): ExecError {
  const hint = installHint ?? `Install ${command} or give its absolute path in the settings.`;
  return new ExecError('BINARY_NOT_FOUND', `"${command}" was not found ${where}. ${hint}`);
}

export function resolveBinary(
  command: string,
  searchPath: string | undefined,
  installHint?: string,
  platform: NodeJS.Platform = process.platform,
): string {
  if (command.length === 0 || command.includes('\0')) {
    throw new ExecError('INVALID_ARGUMENT', 'The binary name is empty or contains a NUL byte.');
  }
  if (path.isAbsolute(command)) {
    if (isExecutableFile(command)) return command;
    throw notFound(command, '(no executable file at that path)', installHint);
  }
  if (command.includes('/') || command.includes('\\')) {
    throw new ExecError(
      'INVALID_ARGUMENT',
      `The binary "${command}" is a relative path; give an absolute path or a bare name found on PATH.`,
    );
  }
  const extensions =
    platform === 'win32' ? ['', ...(process.env.PATHEXT ?? '.COM;.EXE;.BAT;.CMD').split(';')] : [''];
  for (const dir of (searchPath ?? '').split(path.delimiter)) {
    // An empty PATH entry means the cwd: never search it.
    if (dir.length === 0 || !path.isAbsolute(dir)) continue;
    for (const extension of extensions) {
      const candidate = path.join(dir, command + extension);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  throw notFound(command, 'on PATH', installHint);
}
