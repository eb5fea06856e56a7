// What the editor runners (host tests in code-server: run.mjs, in desktop VS Code: electron.mjs; UI tests:
// test/ui/run.mjs) give the editor: a fresh workspace folder, a user-data folder with quiet settings in the
// chosen color theme that point Tandem at the offline model and at the project's pinned codex and gemini CLIs,
// and a folder for extensions.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const testsPath = path.join(root, 'out', 'test', 'host', 'suite', 'index.js');
/** The tests of the workspace-trust session (test/host/run.mjs): trust on, the folder untrusted at first. */
export const trustTestsPath = path.join(root, 'out', 'test', 'host', 'trust', 'index.js');

export function writeJson(file, value) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

export const DEFAULT_THEME = 'Default Dark Modern';

export function hostSettings({ theme = DEFAULT_THEME } = {}) {
  return {
    'workbench.startupEditor': 'none',
    'workbench.colorTheme': theme,
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'git.enabled': false,
    'security.workspace.trust.enabled': false,
    // Nothing starts MCP servers behind the tests' back: the suite starts them itself.
    'chat.mcp.autostart': 'never',
    'tandem.offlineModel': true,
    'tandem.codexPath': path.join(root, 'node_modules', '.bin', 'codex'),
    'tandem.geminiPath': path.join(root, 'node_modules', '.bin', 'gemini'),
  };
}

/**
 * Editor state goes to /tmp; the workspace goes under the repository's ignored .tandem-test-tmp/, since codex
 * refuses to put its helper binaries in a temporary directory and the workers' homes live in the workspace.
 * `theme` is the workbench color theme; `settings` are added to (and override) the host settings; `kind`
 * names the folders (`host`: tandem-host-*, host-workspace).
 * `folders` (names, e.g. ['alpha', 'beta']) makes a multi-root workspace instead: one folder per name, each
 * with a README.md, side by side with a `<kind>.code-workspace` file that lists them in that order. Then
 * `workspace` is that file (what the editor opens) and `folders` maps each name to its folder's path.
 */
export function prepareFixture({
  theme = DEFAULT_THEME,
  settings: extra = {},
  kind = 'host',
  folders: folderNames,
} = {}) {
  const temp = mkdtempSync(path.join(os.tmpdir(), `tandem-${kind}-`));
  const scratch = path.join(root, '.tandem-test-tmp');
  mkdirSync(scratch, { recursive: true });
  const workspaceParent = mkdtempSync(path.join(scratch, `${kind}-`));
  let workspace;
  let folders;
  if (folderNames === undefined) {
    workspace = path.join(workspaceParent, `${kind}-workspace`);
    mkdirSync(workspace, { recursive: true });
    writeFileSync(path.join(workspace, 'README.md'), `# Tandem ${kind}-test workspace\n`);
  } else {
    if (!Array.isArray(folderNames) || folderNames.length === 0) {
      throw new Error('prepareFixture: folders must be a non-empty array of folder names');
    }
    folders = {};
    for (const name of folderNames) {
      const folder = path.join(workspaceParent, name);
      mkdirSync(folder, { recursive: true });
      writeFileSync(path.join(folder, 'README.md'), `# Tandem ${kind}-test folder ${name}\n`);
      folders[name] = folder;
    }
    workspace = path.join(workspaceParent, `${kind}.code-workspace`);
    writeJson(workspace, { folders: folderNames.map((name) => ({ path: name })), settings: {} });
  }

  const userDataDir = path.join(temp, 'user');
  const settings = { ...hostSettings({ theme }), ...extra };
  writeJson(path.join(userDataDir, 'User', 'settings.json'), settings);
  // tandem.codexPath and tandem.geminiPath are machine-scoped: a remote window (code-server) reads them from
  // the remote machine's settings, not from the user's.
  writeJson(path.join(userDataDir, 'Machine', 'settings.json'), settings);

  return {
    temp,
    /** The folder the editor opens, or with `folders` the .code-workspace file. */
    workspace,
    /** With `folders`: each folder's name to its path; otherwise undefined. */
    folders,
    userDataDir,
    settings,
    /** Everything the fixture created: a process still running in one of these belongs to the session. */
    dirs: [temp, workspaceParent],
    extensionsDir: path.join(temp, 'extensions'),
    cleanup(keep) {
      if (keep) return `kept ${temp} and ${workspaceParent}`;
      rmSync(temp, { recursive: true, force: true });
      rmSync(workspaceParent, { recursive: true, force: true });
      return undefined;
    },
  };
}
