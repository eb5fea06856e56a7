// `tandem-mcp demo`: the whole product in one command on a fresh machine. A small sample project is copied to
// a scratch workspace, codex fixes a bug in it and gemini reviews the change, by default against the built-in
// offline model (no network, no API key); `--live` uses the vendors' real models instead.
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runProcess } from '../core/exec';
import type { RunSummary } from '../orchestrator/summary';
import type { ProbeResult } from '../workers/contract';
import { probeAll } from '../workers/probe';
import { HUMAN_CALLER } from '../workers/registry';
import { EXIT, UsageError, parseArgs } from './args';
import { openCliServices } from './cli-services';
import { cancelRunOnSignals, followRun, formatEvent } from './follow-run';

const SAMPLE_DIR = path.join('demo', 'sample-project');
const TARGET_FILE = 'src/greet.js';
const TEST_FILE = 'test/greet.test.js';
const PATCH_LINES_SHOWN = 40;

const TASK =
  'greet() in src/greet.js says "Hello, undefined!" when it gets no name and keeps the spaces around a ' +
  'name. Make it trim the name and greet "world" when the name is missing or blank, without changing ' +
  'its export. test/greet.test.js describes the behaviour; keep the change small.';

/** What the offline model's codex writes: the fix a careful engineer would make. */
const FIXED_GREET = `// Builds the greeting the sample app prints; a missing or blank name greets the world.
function greet(name) {
  const trimmed = typeof name === 'string' ? name.trim() : '';
  return \`Hello, \${trimmed === '' ? 'world' : trimmed}!\`;
}

module.exports = { greet };
`;

const LOGIN_HELP: Record<'codex' | 'gemini', string> = {
  codex: 'run `codex login` (ChatGPT sign-in) or set OPENAI_API_KEY',
  gemini: 'run `gemini` once and choose "Login with Google", or set GEMINI_API_KEY',
};

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/**
 * Scenario tag values may not hold whitespace or `]`, and are percent-decoded: escape just those (and `%`
 * itself) so the rest of the file stays readable in the recorded task.
 */
function tagValue(text: string): string {
  return text.replace(
    /[\s\]%]/g,
    (char) => `%${char.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`,
  );
}

/** The sample ships next to the bundle (dist/cli.js) and next to the compiled sources (out/src/cli/). */
export function findSampleProject(): string | undefined {
  for (const up of ['..', path.join('..', '..', '..')]) {
    const candidate = path.resolve(__dirname, up, SAMPLE_DIR);
    if (existsSync(path.join(candidate, TARGET_FILE))) return candidate;
  }
  return undefined;
}

/** Not under the temp dir: codex refuses to put its helper binaries there, and the user will want to look. */
function scratchWorkspace(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  const cache = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  const base = path.join(cache, 'tandem', 'demo');
  mkdirSync(base, { recursive: true });
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '');
  return mkdtempSync(path.join(base, `${stamp}-`));
}

/** The sample's own tests, run with the node running us; "2 of 3 pass". */
async function sampleTests(workspace: string): Promise<{ passed: number; total: number }> {
  const result = await runProcess({
    command: process.execPath,
    args: ['--test', '--test-reporter=tap', TEST_FILE],
    cwd: workspace,
    // The sample's tests are the writer's code after the fix.
    contain: true,
    timeoutMs: 60_000,
  });
  const count = (name: string): number =>
    Number(result.stdout.text.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? 0);
  return { passed: count('pass'), total: count('tests') };
}

function describeTests({ passed, total }: { passed: number; total: number }): string {
  return total === 0 ? 'could not be run' : `${passed} of ${total} pass`;
}

/** Like `git diff --stat`. */
function diffStat(summary: RunSummary): string[] {
  const files = summary.changes.filter((change) => change.applied).flatMap((change) => change.files);
  if (files.length === 0) return ['  (no change was applied)'];
  const width = Math.max(...files.map((file) => file.path.length));
  const lines = files.map(
    (file) =>
      ` ${file.path.padEnd(width)} | ${String(file.insertions + file.deletions).padStart(3)} ${'+'.repeat(Math.min(file.insertions, 30))}${'-'.repeat(Math.min(file.deletions, 30))}`,
  );
  const insertions = files.reduce((sum, file) => sum + file.insertions, 0);
  const deletions = files.reduce((sum, file) => sum + file.deletions, 0);
  lines.push(
    ` ${files.length} file${files.length === 1 ? '' : 's'} changed, ${insertions} insertion${insertions === 1 ? '' : 's'}(+), ${deletions} deletion${deletions === 1 ? '' : 's'}(-)`,
  );
  return lines;
}

function checkInstalled(results: readonly ProbeResult[]): boolean {
  const missing = results.filter((result) => !result.installed);
  for (const result of missing) {
    say(`${result.kind} is not installed (or not on PATH). Install it with:`);
    say(`  ${result.installHint}`);
  }
  if (missing.length > 0) {
    say('');
    say('In the Tandem repository, `npm ci` installs the tested versions and `npm run demo` finds them.');
  }
  return missing.length === 0;
}

function checkLoggedIn(results: readonly ProbeResult[]): boolean {
  const loggedOut = results.filter((result) => result.auth.mode === 'none');
  for (const result of loggedOut) {
    say(`${result.kind} has no credentials: ${LOGIN_HELP[result.kind]}.`);
  }
  if (loggedOut.length > 0) say('Or run the demo without --live: it needs no account.');
  return loggedOut.length === 0;
}

/** How to run this CLI again from here: relative when it is below the current folder. */
function thisProgram(): string {
  const program = process.argv[1] ?? path.join(__dirname, 'cli.js');
  const relative = path.relative(process.cwd(), program);
  return relative.startsWith('..') || path.isAbsolute(relative) ? program : relative;
}

export async function demoCommand(args: readonly string[]): Promise<number> {
  const parsed = parseArgs('demo', args, { flags: { live: 'boolean', keep: 'boolean', clean: 'boolean' } });
  if (parsed.has('keep') && parsed.has('clean'))
    throw new UsageError('demo: choose one of --keep and --clean');
  const live = parsed.has('live');
  const sample = findSampleProject();
  if (sample === undefined) {
    say(
      `tandem-mcp: the sample project (${SAMPLE_DIR}) is not next to this program; run it from the repository.`,
    );
    return EXIT.failed;
  }

  say(
    `Tandem demo: codex writes a fix, gemini reviews it, ${live ? "on the vendors' real models" : 'on the built-in offline model (no network, no API key)'}.`,
  );
  const probes = await probeAll({ workspaceDir: sample });
  if (!checkInstalled(probes) || (live && !checkLoggedIn(probes))) return EXIT.failed;
  for (const probe of probes) {
    const range = probe.versionInTestedRange ? '' : ` (outside the tested range ${probe.testedRange})`;
    say(`  ${probe.kind} ${probe.version ?? '(unknown version)'}${range}: ${probe.path ?? ''}`);
  }

  const workspace = scratchWorkspace();
  cpSync(sample, workspace, { recursive: true });
  say(`Workspace: ${workspace} (a copy of ${SAMPLE_DIR})`);
  const before = await sampleTests(workspace);
  say(`Its tests before the run: ${describeTests(before)}.`);
  say('');

  const session = await openCliServices({
    workspaceRoot: workspace,
    offline: !live,
    log: (line) => say(line),
    cliPaths: {
      ...(probes[0].path ? { codex: probes[0].path } : {}),
      ...(probes[1].path ? { gemini: probes[1].path } : {}),
    },
  });
  const { store, orchestrator } = session.services;
  const interrupt = cancelRunOnSignals(orchestrator, (line) => say(line));
  let summary: RunSummary | undefined;
  try {
    // The offline model follows the tag: codex writes the fixed file; gemini, unscripted, approves.
    const prompt = live
      ? TASK
      : `${TASK}\n\n[[scenario:write path=${TARGET_FILE} content=${tagValue(FIXED_GREET)}]]`;
    const run = await orchestrator.startStrategy({
      owner: HUMAN_CALLER,
      strategy: 'codex_writes_gemini_reviews',
      prompt,
      apply: 'if_approved',
    });
    interrupt.watch(run.id);
    say(`Run ${run.id}: codex_writes_gemini_reviews`);
    await followRun(store, orchestrator, run.id, (event) => say(`  ${formatEvent(event)}`));
    await orchestrator.finished(run.id);
    say('');
    say((await store.readRunFile(run.id, 'summary.md')) ?? '(the run wrote no summary)');
    const json = await store.readRunFile(run.id, 'summary.json');
    summary = json === undefined ? undefined : (JSON.parse(json) as RunSummary);
    const patchFile = summary?.changes.find((change) => change.applied)?.patchFile;
    const patch = patchFile ? await store.readRunFile(run.id, patchFile) : undefined;
    if (patch !== undefined) {
      const lines = patch.trimEnd().split('\n');
      say('The change, as applied:');
      say('');
      for (const line of lines.slice(0, PATCH_LINES_SHOWN)) say(`    ${line}`);
      if (lines.length > PATCH_LINES_SHOWN) say(`    ... ${lines.length - PATCH_LINES_SHOWN} more lines`);
      say('');
    }
  } finally {
    await session.close();
    interrupt.dispose();
  }
  if (interrupt.code !== undefined) return interrupt.code;

  const run = summary?.run;
  const succeeded = run?.status === 'succeeded' && run.applied;
  say(
    `Result: ${run ? `${run.status}; ${run.applied ? 'the change was applied to the workspace' : 'nothing was applied'}` : 'unknown'}.`,
  );
  if (summary) for (const line of diffStat(summary)) say(line);
  say(
    `Its tests after the run: ${describeTests(await sampleTests(workspace))} (before: ${before.passed} of ${before.total}).`,
  );
  say('');
  if (parsed.has('clean')) {
    rmSync(workspace, { recursive: true, force: true });
    say(`Removed the workspace ${workspace}.`);
  } else {
    say(`The workspace is kept: ${workspace}`);
    say(`  its history:   node ${thisProgram()} runs list --workspace ${workspace}`);
    say(`  to remove it:  rm -rf ${workspace}`);
  }
  return succeeded ? EXIT.ok : EXIT.failed;
}
