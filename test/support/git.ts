// git for tests: without the user's or the system's configuration (so a test repository is the same on every
// machine), with a fixed identity and branch name; a failing command fails the test with git's stderr.
import assert from 'node:assert/strict';
import { runProcess } from '../../src/core/exec';

/** Runs git in `cwd`; `globalConfig` is the file git reads as the global config (default none). */
export async function testGit(
  cwd: string,
  args: readonly string[],
  globalConfig = '/dev/null',
): Promise<string> {
  const result = await runProcess({
    command: 'git',
    args: [
      '-c',
      'user.name=Test',
      '-c',
      'user.email=test@example.invalid',
      '-c',
      'init.defaultBranch=main',
      ...args,
    ],
    cwd,
    env: {
      set: {
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: globalConfig,
        GIT_TERMINAL_PROMPT: '0',
        // So that a test's own `git status` never refreshes the index it compares.
        GIT_OPTIONAL_LOCKS: '0',
      },
    },
    timeoutMs: 30_000,
    maxCaptureBytes: 4 * 1024 * 1024,
  });
  assert.equal(result.exitCode, 0, `git ${args.join(' ')} failed: ${result.stderr.text}`);
  return result.stdout.text;
}
