// Steering files: files in a change that are not program code but settings that steer git, an agent CLI,
// Tandem, an editor or another tool. A writer that edits one can change what later runs or what a reviewer
// is shown, so reviewers' prompts and run summaries call each one out by name (issue 15).

export interface SteeringFile {
  path: string;
  /** What the file steers, in a few words a reviewer can act on. */
  reason: string;
}

const GIT = 'git reads it (attributes, submodules, ignores, hooks or CI)';
const AGENT = 'settings or instructions of an agent CLI';
const TANDEM = "Tandem's own state or playbooks";
const ENV = 'environment variables a tool loads';
const EDITOR = 'editor settings or tasks, which can run commands';
const TOOL = 'settings of a tool that can run commands';

/** By exact file name, at any depth. */
const NAMES = new Map<string, string>([
  ['AGENTS.md', AGENT],
  ['AGENTS.override.md', AGENT],
  ['GEMINI.md', AGENT],
  ['CLAUDE.md', AGENT],
  ['.mcp.json', AGENT],
  ['.geminiignore', AGENT],
  ['.envrc', ENV],
  ['.npmrc', TOOL],
  ['.yarnrc', TOOL],
  ['.yarnrc.yml', TOOL],
  ['.pnpmfile.cjs', TOOL],
  ['.pre-commit-config.yaml', TOOL],
]);

/** By folder name: anything under a folder of this name, at any depth. */
const FOLDERS = new Map<string, string>([
  ['.gemini', AGENT],
  ['.codex', AGENT],
  ['.claude', AGENT],
  ['.cursor', AGENT],
  ['.tandem', TANDEM],
  ['.vscode', EDITOR],
  ['.idea', EDITOR],
  ['.devcontainer', EDITOR],
  ['.husky', GIT],
]);

/** Why `relative` (a workspace path with forward slashes) steers something, or undefined for plain content. */
export function steeringReason(relative: string): string | undefined {
  const names = relative.split('/');
  const base = names[names.length - 1] ?? '';
  const named = NAMES.get(base);
  if (named !== undefined) return named;
  for (const folder of names.slice(0, -1)) {
    const steered = FOLDERS.get(folder);
    if (steered !== undefined) return steered;
    // .github/ (workflows run code in CI) and any other .git* folder.
    if (folder.startsWith('.git')) return GIT;
  }
  // .gitattributes, .gitmodules, .gitignore, .git-blame-ignore-revs, a planted .git file, ...
  if (base.startsWith('.git')) return GIT;
  if (base === '.env' || base.startsWith('.env.')) return ENV;
  if (base.endsWith('.code-workspace')) return EDITOR;
  return undefined;
}

/** The steering files among `paths`, in their order. */
export function steeringFiles(paths: Iterable<string>): SteeringFile[] {
  const found: SteeringFile[] = [];
  for (const path of paths) {
    const reason = steeringReason(path);
    if (reason !== undefined) found.push({ path, reason });
  }
  return found;
}
