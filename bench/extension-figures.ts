// Figures of the extension as it ships, for bench/RESULTS.md: the size of each bundle of a production
// build, the .vsix that `npm run package` left (if any), and the activation and first tools/list timings
// that `npm run test:host` recorded in a real editor (if it ran). Nothing here is timed by the bench itself
// except the build; every figure says where it came from and when.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runProcess } from '../src/core/exec';

/** The bundles esbuild.mjs writes, relative to its output root. */
const BUNDLES = ['dist/extension.js', 'dist/cli.js', 'dist/media/dashboard.js'];
/** What the production build reads relative to its working directory. */
const BUILD_INPUTS = ['src', 'media'];
export const HOST_TIMINGS_FILE = 'evidence/host/timings.json';

export interface BundleFigures {
  /** How the sizes were taken, as a sentence for the report. */
  source: string;
  /** When the measured files were written. */
  builtAt: string;
  files: { path: string; bytes: number }[];
  /** Why the scratch production build failed, when the sizes are dist/'s instead. */
  buildError?: string;
}

export interface VsixFigures {
  file: string;
  bytes: number;
  modified: string;
}

export interface EditorFigures {
  file: string;
  modified: string;
  /** Module load to the end of activate(). */
  activationMs: number | undefined;
  /** Of which inside activate(). */
  inActivateMs: number | undefined;
  /** Module load to the editor's first tools/list request reaching a Tandem server. */
  firstToolsListMs: number | undefined;
  /** The host test's own clock: "start servers" command until the tools are live. */
  startServerToLiveToolsMs: number | undefined;
}

export interface ExtensionFigures {
  bundles: BundleFigures;
  /** undefined: no .vsix in the repository root (run `npm run package`). */
  vsix: VsixFigures | undefined;
  /** undefined: no evidence/host/timings.json (run `npm run test:host`). */
  editor: EditorFigures | undefined;
}

function sizes(root: string): { path: string; bytes: number }[] {
  return BUNDLES.map((file) => ({ path: file, bytes: statSync(path.join(root, file)).size }));
}

/**
 * `node esbuild.mjs --production` run in a scratch directory that links the build's inputs, so the sizes
 * are those of a production build of the current source and the repository's dist/ is left alone.
 */
async function productionBuild(repoRoot: string): Promise<BundleFigures> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'tandem-bench-build-'));
  try {
    for (const input of BUILD_INPUTS) symlinkSync(path.join(repoRoot, input), path.join(scratch, input));
    const result = await runProcess({
      command: process.execPath,
      args: [path.join(repoRoot, 'esbuild.mjs'), '--production'],
      cwd: scratch,
      timeoutMs: 120_000,
      idleTimeoutMs: 120_000,
    });
    if (result.exitCode !== 0) {
      const tail = `${result.stderr.text}${result.stdout.text}`.trim().split('\n').slice(-3).join(' ');
      throw new Error(`esbuild.mjs --production ${result.signal ?? `exit ${result.exitCode}`}: ${tail}`);
    }
    return {
      source: '`node esbuild.mjs --production` run by the bench into a scratch directory',
      builtAt: new Date().toISOString(),
      files: sizes(scratch),
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function existingDist(repoRoot: string, buildError: string): BundleFigures {
  let files: { path: string; bytes: number }[];
  try {
    files = sizes(repoRoot);
  } catch {
    return { source: 'none: the build failed and dist/ is incomplete', builtAt: '', files: [], buildError };
  }
  const modified = statSync(path.join(repoRoot, BUNDLES[0] as string)).mtime.toISOString();
  // A development build (`npm run build`) writes source maps next to the bundles; a production one does not.
  const kind = existsSync(path.join(repoRoot, 'dist', 'extension.js.map')) ? 'development' : 'production';
  return { source: `dist/ as it stood (a ${kind} build)`, builtAt: modified, files, buildError };
}

function findVsix(repoRoot: string): VsixFigures | undefined {
  const manifest = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  const file = `${manifest.name}-${manifest.version}.vsix`;
  try {
    const stat = statSync(path.join(repoRoot, file));
    return { file, bytes: stat.size, modified: stat.mtime.toISOString() };
  } catch {
    return undefined;
  }
}

function readEditorTimings(repoRoot: string): EditorFigures | undefined {
  const file = path.join(repoRoot, HOST_TIMINGS_FILE);
  let parsed: {
    startServerToLiveToolsMs?: number;
    timings?: { activateCalledMs?: number; activationMs?: number; firstToolsListMs?: number };
  };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as typeof parsed;
  } catch {
    return undefined;
  }
  const timings = parsed.timings ?? {};
  const inActivate =
    timings.activationMs !== undefined && timings.activateCalledMs !== undefined
      ? Math.round((timings.activationMs - timings.activateCalledMs) * 100) / 100
      : undefined;
  return {
    file: HOST_TIMINGS_FILE,
    modified: statSync(file).mtime.toISOString(),
    activationMs: timings.activationMs,
    inActivateMs: inActivate,
    firstToolsListMs: timings.firstToolsListMs,
    startServerToLiveToolsMs: parsed.startServerToLiveToolsMs,
  };
}

export async function measureExtension(repoRoot: string): Promise<ExtensionFigures> {
  let bundles: BundleFigures;
  try {
    bundles = await productionBuild(repoRoot);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`bench: production build failed, measuring dist/ instead: ${message}\n`);
    bundles = existingDist(repoRoot, message);
  }
  return { bundles, vsix: findVsix(repoRoot), editor: readEditorTimings(repoRoot) };
}
