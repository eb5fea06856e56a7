// `npm run bench -- peers`: Tandem (over stdio and over loopback HTTP) side by side with two peer MCP servers
// from npm (codex-mcp-server, gemini-mcp-tool), in the same run on the same machine, every one driving the
// same fake CLIs (test/fixtures/peer-fakes), with a bare spawn of the fake as the floor. Measures call
// overhead, a hung CLI (who kills the tree), a 1 GiB flood, 32 concurrent calls, environment leakage and a
// hostile prompt. Writes bench/results/peers.md (every column) and returns rows and the structured table
// for the main report (bench/RESULTS.md).
import { spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NETWORK_ENV_NAMES } from '../src/core/env';
import { runProcess } from '../src/core/exec';
import {
  RssSampler,
  findScriptProcesses,
  isAlive,
  killScriptProcesses,
  sleep,
  waitUntilGone,
} from './peers/processes';
import {
  CLIENT_MAX_MESSAGE_BYTES,
  createSubject,
  type AskResult,
  type CliKind,
  type FloorInvocation,
  type Session,
  type Subject,
  type SubjectFamily,
  type SubjectId,
} from './peers/servers';
import type { BenchRow } from './server';
import { percentile, round } from './stats';

const COLUMNS: readonly SubjectId[] = [
  'floor-codex',
  'tandem-codex',
  'tandem-http-codex',
  'codex-mcp-server',
  'floor-gemini',
  'tandem-gemini',
  'tandem-http-gemini',
  'gemini-mcp-tool',
];
const CALLS = 30;
const WARMUP = 3;
const CONCURRENT = 32;
const CALL_TIMEOUT_MS = 60_000;
const HANG_CAP_MS = 120_000;
const FLOOD_TIMEOUT_MS = 180_000;
const MiB = 1024 * 1024;
const SECRET_TOKEN = 'bench-secret-123';
const OPENAI_API_KEY = 'sk-bench-0123456789abcdef0123456789abcdef';
/**
 * After test/contract/worker-contract.ts HOSTILE_PROMPT: a leading `--help`, command substitutions that
 * would create files named pwned*, shell operators, both quotes, a newline, a backslash, `$HOME`, globs,
 * and a trailing `--model`. Nothing in it is destructive even where a shell did run it.
 */
export const HOSTILE_PROMPT =
  '--help $(touch pwned) `touch pwned2` ; touch pwned3 && echo "dq" \'sq\' | cat > pwned4\n' +
  'line2 \\ $HOME %s {} * ?\n--model foo';
const FAKE_FILES = ['codex', 'gemini', 'fake-cli.cjs'];

/** One cell of the table: a number for the JSON report (when there is one) and what the reports show. */
export interface Cell {
  value: number | undefined;
  text: string;
}

/** One row of the comparison, as it goes into latest.json and RESULTS.md. */
export interface PeersMeasure {
  /** Stable key (RESULTS.md picks rows by it). */
  id: string;
  title: string;
  unit: string;
  cells: Partial<Record<SubjectId, Cell>>;
  /** A requirement of Tandem's design (DESIGN.md), checked on Tandem's columns only. */
  target?: string;
  /** Per Tandem column: the target met. */
  pass?: Partial<Record<SubjectId, boolean>>;
}

export interface PeersColumn {
  id: SubjectId;
  label: string;
  family: SubjectFamily;
  kind: CliKind;
}

export interface PeersReport {
  columns: PeersColumn[];
  measures: PeersMeasure[];
  calls: number;
  concurrent: number;
  hangCapSeconds: number;
  hostilePrompt: string;
  /** Why the section did not run (the peers could not be installed). */
  skipped?: string;
}

/** A measure while it is taken: its target as a predicate, judged once the cells are in. */
interface Measure extends PeersMeasure {
  tandemTarget?: { text: string; ok: (value: number) => boolean };
}

interface LogEntry {
  pid: number;
  kind: string;
  mode: string;
  argv?: string[];
  cwd?: string;
  workdirFlag?: string | null;
  promptSource?: 'argv' | 'stdin';
  prompt?: string;
  envNames?: string[];
}

const yes = (flag: boolean): Cell => ({ value: flag ? 1 : 0, text: flag ? 'yes' : 'no' });
const ms = (value: number): Cell => ({ value: round(value, 1), text: `${round(value, 1)}` });
const isTandem = (id: SubjectId): boolean => id.startsWith('tandem-');
const isFloor = (subject: Subject): boolean => subject.family === 'floor';

function log(line: string): void {
  process.stderr.write(`bench peers: ${line}\n`);
}

function readLog(binDir: string): LogEntry[] {
  let text: string;
  try {
    text = readFileSync(path.join(binDir, 'calls.log'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as LogEntry);
}

// Installing the peers -----------------------------------------------------------------------------------

function installedVersion(peersDir: string, name: string): string | undefined {
  try {
    const manifest = path.join(peersDir, 'node_modules', name, 'package.json');
    return (JSON.parse(readFileSync(manifest, 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** `npm ci` into bench/peers when the pinned versions are not there yet; an error sentence, or undefined. */
async function ensurePeersInstalled(repoRoot: string, peersDir: string): Promise<string | undefined> {
  const manifest = JSON.parse(readFileSync(path.join(peersDir, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>;
  };
  const pins = Object.entries(manifest.devDependencies);
  if (pins.every(([name, version]) => installedVersion(peersDir, name) === version)) return undefined;
  log('installing the peer servers from the npm registry with npm ci (bench/peers; can take minutes)');
  const npmNames = Object.keys(process.env).filter((name) => /^npm_config_[A-Za-z0-9_]+$/.test(name));
  const result = await runProcess({
    command: 'npm',
    // `--loglevel http` prints a line per fetch, so a slow but moving install is not taken as idle.
    args: ['ci', '--prefix', peersDir, '--no-audit', '--no-fund', '--loglevel', 'http'],
    cwd: repoRoot,
    env: { extraNames: [...NETWORK_ENV_NAMES, ...npmNames] },
    timeoutMs: 900_000,
    // Past npm's own fetch timeout (5 min): a fetch that stalls is npm's to report.
    idleTimeoutMs: 330_000,
  });
  if (result.exitCode !== 0) {
    const tail = result.stderr.text.trim().split('\n').slice(-3).join(' ');
    return `npm ci --prefix bench/peers failed (${result.signal ?? `exit ${result.exitCode}`}): ${tail}`;
  }
  const missing = pins.filter(([name, version]) => installedVersion(peersDir, name) !== version);
  return missing.length === 0
    ? undefined
    : `npm ci did not install ${missing.map(([name, version]) => `${name}@${version}`).join(', ')}`;
}

// The measures ------------------------------------------------------------------------------------------

function normalPrompt(i: number): string {
  return `Review the module and say what you see (call ${i}).`;
}

/** The floor column of the same CLI as `subject`. */
function floorOf(subjects: readonly Subject[], subject: Subject): Subject | undefined {
  return subjects.find((item) => isFloor(item) && item.kind === subject.kind);
}

async function measureCalls(subjects: Subject[], sessions: Map<SubjectId, Session>): Promise<Measure[]> {
  const times = new Map<SubjectId, number[]>(subjects.map((subject) => [subject.id, []]));
  const failures = new Map<SubjectId, number>(subjects.map((subject) => [subject.id, 0]));
  for (let i = 0; i < WARMUP + CALLS; i++) {
    // Round robin, starting one further each round, so drift in machine load hits every column alike.
    for (let j = 0; j < subjects.length; j++) {
      const subject = subjects[(i + j) % subjects.length] as Subject;
      const session = sessions.get(subject.id) as Session;
      const started = performance.now();
      const result = await session.ask(normalPrompt(i), CALL_TIMEOUT_MS);
      const elapsed = performance.now() - started;
      if (i < WARMUP) continue;
      times.get(subject.id)?.push(elapsed);
      if (!result.ok) failures.set(subject.id, (failures.get(subject.id) ?? 0) + 1);
    }
  }
  const measure = (id: string, title: string, unit: string): Measure => ({ id, title, unit, cells: {} });
  const p50 = measure('call-p50', `tools/call round trip p50 (${CALLS} calls)`, 'ms');
  const p95 = measure('call-p95', `tools/call round trip p95 (${CALLS} calls)`, 'ms');
  const over50 = measure('call-over-floor-p50', 'round trip added over the bare spawn, p50', 'ms');
  const over95 = measure('call-over-floor-p95', 'round trip added over the bare spawn, p95', 'ms');
  const failed: Measure = {
    ...measure('call-failed', 'normal calls that failed', 'calls'),
    tandemTarget: { text: '0', ok: (value) => value === 0 },
  };
  const quantile = (subject: Subject | undefined, p: number): number =>
    subject === undefined ? Number.NaN : percentile(times.get(subject.id) ?? [], p);
  for (const subject of subjects) {
    const floor = floorOf(subjects, subject);
    p50.cells[subject.id] = ms(quantile(subject, 50));
    p95.cells[subject.id] = ms(quantile(subject, 95));
    over50.cells[subject.id] = ms(quantile(subject, 50) - quantile(floor, 50));
    over95.cells[subject.id] = ms(quantile(subject, 95) - quantile(floor, 95));
    const count = failures.get(subject.id) ?? 0;
    failed.cells[subject.id] = { value: count, text: `${count}/${CALLS}` };
  }
  return [p50, p95, over50, over95, failed];
}

async function measureConcurrency(
  subjects: Subject[],
  sessions: Map<SubjectId, Session>,
): Promise<Measure[]> {
  const wall: Measure = {
    id: 'concurrent-wall',
    title: `${CONCURRENT} concurrent calls, wall time`,
    unit: 'ms',
    cells: {},
  };
  for (const subject of subjects) {
    const session = sessions.get(subject.id) as Session;
    await session.prepare(CONCURRENT);
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: CONCURRENT }, (_, i) => session.ask(normalPrompt(1000 + i), HANG_CAP_MS)),
    );
    const elapsed = performance.now() - started;
    const ok = results.filter((result) => result.ok).length;
    wall.cells[subject.id] = {
      value: round(elapsed, 1),
      text: `${round(elapsed, 1)} (${ok}/${CONCURRENT} ok)`,
    };
  }
  return [wall];
}

/** Files named pwned* (any case) in a directory tree (bounded depth; the state dirs are small). */
function findPwned(dir: string, depth = 6): string[] {
  const found: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (/^pwned/i.test(entry.name)) found.push(full);
    else if (entry.isDirectory() && depth > 0 && entry.name !== 'node_modules') {
      found.push(...findPwned(full, depth - 1));
    }
  }
  return found;
}

/** How the prompt reached the CLI, from the argv the fake logged. */
function describePromptPassing(entry: LogEntry): string {
  const argv = entry.argv ?? [];
  if (entry.promptSource === 'stdin') return argv.includes('--') ? 'stdin (`-- -`)' : 'stdin';
  const at = argv.lastIndexOf(entry.prompt ?? '');
  const before = argv[at - 1];
  if (before === '--') return 'argv, after `--`';
  if (before === '-p' || before === '--prompt') return `argv, \`${before}\` value`;
  return 'argv, bare last element (no `--`)';
}

/**
 * Whether the prompt sat where a real CLI's option parser reads options: an argv element that starts with
 * `-` and follows no `--`. The fake takes argv literally, so it still logs the prompt byte for byte; codex
 * (clap) and gemini (yargs) would instead parse the leading `--help` as a flag (yargs does not take a value
 * that starts with `-` for `-p`), and the prompt would not reach the model as written.
 */
function promptReadAsOption(entry: LogEntry): boolean {
  if (entry.promptSource !== 'argv' || entry.prompt === undefined) return false;
  const argv = entry.argv ?? [];
  const at = argv.lastIndexOf(entry.prompt);
  const separator = argv.indexOf('--');
  if (separator >= 0 && separator < at) return false;
  return entry.prompt.startsWith('-');
}

async function measureEnvAndInjection(
  repoRoot: string,
  subjects: Subject[],
  sessions: Map<SubjectId, Session>,
): Promise<Measure[]> {
  const secret: Measure = {
    id: 'env-secret',
    title: 'planted SECRET_TOKEN reached the CLI',
    unit: 'yes=1',
    cells: {},
    tandemTarget: { text: 'no', ok: (value) => value === 0 },
  };
  const openai: Measure = {
    id: 'env-openai',
    title: 'OPENAI_API_KEY reached the CLI',
    unit: 'yes=1',
    cells: {},
  };
  const envCount: Measure = {
    id: 'env-count',
    title: 'environment variables the CLI received',
    unit: 'vars',
    cells: {},
  };
  const verbatim: Measure = {
    id: 'hostile-verbatim',
    title: 'hostile prompt reached the fake CLI byte for byte',
    unit: 'yes=1',
    cells: {},
    tandemTarget: { text: 'yes', ok: (value) => value === 1 },
  };
  const pwned: Measure = {
    id: 'hostile-pwned',
    title: 'hostile prompt: pwned* files created',
    unit: 'files',
    cells: {},
    tandemTarget: { text: '0', ok: (value) => value === 0 },
  };
  const asOption: Measure = {
    id: 'hostile-option',
    title: 'hostile prompt: its leading `--help` sits where a real CLI parses options',
    unit: 'yes=1',
    cells: {},
    tandemTarget: { text: 'no', ok: (value) => value === 0 },
  };
  const via: Measure = { id: 'hostile-via', title: 'prompt passed to the CLI as', unit: '', cells: {} };
  for (const subject of subjects) {
    const session = sessions.get(subject.id) as Session;
    const dump = await session.ask('ENVDUMP: list the environment you see.', CALL_TIMEOUT_MS);
    const dumped = readLog(subject.binDir).findLast((entry) => entry.mode === 'envdump');
    if (!dump.ok || !dumped?.envNames) {
      log(`${subject.label}: ENVDUMP call failed (${dump.error ?? 'error result'})`);
    } else {
      secret.cells[subject.id] = yes(dumped.envNames.includes('SECRET_TOKEN'));
      openai.cells[subject.id] = yes(dumped.envNames.includes('OPENAI_API_KEY'));
      envCount.cells[subject.id] = { value: dumped.envNames.length, text: `${dumped.envNames.length}` };
    }

    const before = readLog(subject.binDir).length;
    await session.ask(HOSTILE_PROMPT, CALL_TIMEOUT_MS);
    // The first call after `before` that carried a prompt (version probes carry none).
    const entry = readLog(subject.binDir)
      .slice(before)
      .find((item) => item.prompt !== undefined);
    const places = new Set<string>([subject.workspace, path.dirname(subject.binDir), os.tmpdir(), repoRoot]);
    if (entry?.cwd) places.add(entry.cwd);
    if (entry?.workdirFlag) places.add(entry.workdirFlag);
    const files = new Set<string>();
    for (const place of places) {
      // The temp dir and the repository are looked at only at their top level.
      const depth = place === os.tmpdir() || place === repoRoot ? 0 : 6;
      for (const file of findPwned(place, depth)) files.add(file);
    }
    for (const file of files) rmSync(file, { force: true });
    pwned.cells[subject.id] = { value: files.size, text: `${files.size}` };
    if (entry) {
      verbatim.cells[subject.id] = yes(entry.prompt === HOSTILE_PROMPT);
      asOption.cells[subject.id] = yes(promptReadAsOption(entry));
      via.cells[subject.id] = { value: undefined, text: describePromptPassing(entry) };
    } else {
      verbatim.cells[subject.id] = { value: 0, text: 'never arrived' };
    }
  }
  return [secret, openai, envCount, verbatim, pwned, asOption, via];
}

interface HangOutcome {
  result: AskResult;
  returnedMs: number;
  aliveAfter2s: number;
  cancelledGoneMs: number | undefined;
  aliveAfterCancel: number | undefined;
}

async function hangOne(subject: Subject, session: Session): Promise<HangOutcome> {
  const started = performance.now();
  const result = await session.ask('HANG: take as long as you need.', HANG_CAP_MS);
  const returnedMs = performance.now() - started;
  await sleep(2_000);
  const aliveAfter2s = findScriptProcesses(subject.binDir).length;
  let cancelledGoneMs: number | undefined;
  let aliveAfterCancel: number | undefined;
  if (result.runId !== undefined && !result.finished) {
    // Tandem returns while the run goes on; run_cancel is how a client stops it.
    const cancelled = performance.now();
    await session.cancel(result.runId);
    const gone = await waitUntilGone(subject.binDir, 20_000);
    cancelledGoneMs = gone === undefined ? undefined : performance.now() - cancelled;
    aliveAfterCancel = findScriptProcesses(subject.binDir).length;
  }
  return { result, returnedMs, aliveAfter2s, cancelledGoneMs, aliveAfterCancel };
}

function describeReturn(outcome: HangOutcome): string {
  const seconds = round(outcome.returnedMs / 1000, 1);
  const { result } = outcome;
  if (result.error !== undefined) {
    return /timed out|timeout/i.test(result.error)
      ? `none within the ${HANG_CAP_MS / 1000} s cap`
      : `${seconds} (call failed: ${result.error.slice(0, 60)})`;
  }
  if (!result.finished) return `${seconds} (run id; run goes on)`;
  return `${seconds} (${result.ok ? 'answered' : 'error result'})`;
}

async function measureHang(subjects: Subject[], sessions: Map<SubjectId, Session>): Promise<Measure[]> {
  log(`hung CLI on every server at once (cap ${HANG_CAP_MS / 1000} s)`);
  const outcomes = await Promise.all(
    subjects.map((subject) => hangOne(subject, sessions.get(subject.id) as Session)),
  );
  const returned: Measure = {
    id: 'hang-returned',
    title: 'hang: tools/call returned after',
    unit: 's',
    cells: {},
  };
  const alive: Measure = {
    id: 'hang-alive',
    title: 'hang: fake processes (child + grandchild) alive 2 s after the call returned',
    unit: 'processes',
    cells: {},
  };
  const cancel: Measure = {
    id: 'hang-cancel',
    title: 'hang: run_cancel until the whole tree is gone',
    unit: 'ms',
    cells: {},
    tandemTarget: { text: '<= 5000 ms', ok: (value) => value <= 5000 },
  };
  subjects.forEach((subject, i) => {
    const outcome = outcomes[i] as HangOutcome;
    returned.cells[subject.id] = {
      value: round(outcome.returnedMs / 1000, 1),
      text: describeReturn(outcome),
    };
    alive.cells[subject.id] = { value: outcome.aliveAfter2s, text: `${outcome.aliveAfter2s}` };
    if (outcome.result.runId !== undefined) {
      cancel.cells[subject.id] =
        outcome.cancelledGoneMs === undefined
          ? { value: 20_000, text: `not gone after 20 s (${outcome.aliveAfterCancel} left)` }
          : ms(outcome.cancelledGoneMs);
    } else {
      cancel.cells[subject.id] = { value: undefined, text: 'no cancel (ignores MCP cancellation)' };
    }
  });
  // Closing a server is the last chance it has to take its children with it.
  await Promise.all(subjects.map((subject) => sessions.get(subject.id)?.close()));
  sessions.clear();
  await sleep(1_000);
  const left: Measure = {
    id: 'hang-left',
    title: 'hang: fake processes left running after the server exited',
    unit: 'processes',
    cells: {},
    tandemTarget: { text: '0', ok: (value) => value === 0 },
  };
  for (const subject of subjects) {
    const count = await killScriptProcesses(subject.binDir);
    left.cells[subject.id] = {
      value: count,
      text: count === 0 ? '0' : `${count} (orphans; killed by the bench)`,
    };
  }
  return [returned, alive, cancel, left];
}

interface DrainOutcome {
  bytes: number;
  exitCode: number | null;
  baselineBytes: number;
  peakBytes: number;
  elapsedMs: number;
}

/** The floor's flood: the fake CLI drained by a bare spawn in a fresh process (bench/peers/drain.ts). */
function drainFlood(floor: FloorInvocation): Promise<DrainOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [path.join(__dirname, 'peers', 'drain.js'), JSON.stringify(floor), 'FLOOD: print everything.'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`drain exited with ${code}`));
      else resolve(JSON.parse(out) as DrainOutcome);
    });
  });
}

function sizeText(bytes: number): string {
  if (bytes >= MiB) return `${round(bytes / MiB, 1)} MiB`;
  return `${round(bytes / 1024, 1)} KiB`;
}

async function measureFlood(subjects: Subject[], open: Set<Session>): Promise<Measure[]> {
  const peak: Measure = { id: 'flood-peak', title: 'flood 1 GiB: peak RSS', unit: 'MiB', cells: {} };
  const growth: Measure = { id: 'flood-growth', title: 'flood 1 GiB: RSS growth', unit: 'MiB', cells: {} };
  const overFloor: Measure = {
    id: 'flood-over-floor',
    title: "flood 1 GiB: RSS growth over the bare spawn's",
    unit: 'MiB',
    cells: {},
  };
  const bytes: Measure = {
    id: 'flood-bytes',
    title: 'flood 1 GiB: bytes that reached the client',
    unit: 'bytes',
    cells: {},
  };
  const survived: Measure = {
    id: 'flood-survived',
    title: 'flood 1 GiB: server survived and answered the next call',
    unit: 'yes=1',
    cells: {},
    tandemTarget: { text: 'yes', ok: (value) => value === 1 },
  };
  const took: Measure = { id: 'flood-took', title: 'flood 1 GiB: call returned after', unit: 's', cells: {} };
  const grewBy = new Map<SubjectId, number>();
  for (const subject of subjects) {
    log(`1 GiB flood through ${subject.label}`);
    if (subject.floor !== undefined) {
      const drained = await drainFlood(subject.floor);
      const grew = (drained.peakBytes - drained.baselineBytes) / MiB;
      grewBy.set(subject.id, grew);
      peak.cells[subject.id] = {
        value: round(drained.peakBytes / MiB),
        text: `${round(drained.peakBytes / MiB)}`,
      };
      growth.cells[subject.id] = { value: round(grew), text: `${round(grew)}` };
      bytes.cells[subject.id] = { value: drained.bytes, text: `${sizeText(drained.bytes)} (all of it)` };
      took.cells[subject.id] = {
        value: round(drained.elapsedMs / 1000, 1),
        text: `${round(drained.elapsedMs / 1000, 1)}${drained.exitCode === 0 ? '' : ` (exit ${drained.exitCode})`}`,
      };
      await killScriptProcesses(subject.binDir);
      continue;
    }
    const session = await subject.start();
    open.add(session);
    await session.ask('Warm up.', CALL_TIMEOUT_MS);
    const pid = session.pid as number;
    const sampler = new RssSampler(pid);
    await sampler.start();
    const started = performance.now();
    const result = await session.ask('FLOOD: print everything.', FLOOD_TIMEOUT_MS);
    const elapsed = performance.now() - started;
    const memory = await sampler.stop();
    let answered = false;
    if (isAlive(pid)) answered = (await session.ask('Are you still there?', 30_000)).ok;
    const crash = /(RangeError|FATAL ERROR|Error)[^\n]*/.exec(session.stderrTail())?.[0];
    peak.cells[subject.id] = {
      value: round(memory.peakBytes / MiB),
      text: `${round(memory.peakBytes / MiB)}`,
    };
    const grew = (memory.peakBytes - memory.baselineBytes) / MiB;
    grewBy.set(subject.id, grew);
    growth.cells[subject.id] = { value: round(grew), text: `${round(grew)}` };
    bytes.cells[subject.id] = {
      value: result.bytes,
      text: result.error !== undefined ? `0 (${result.error.slice(0, 50)})` : sizeText(result.bytes),
    };
    survived.cells[subject.id] = answered
      ? yes(true)
      : { value: 0, text: `no${crash && !isAlive(pid) ? ` (${crash.slice(0, 80)})` : ''}` };
    const how =
      result.error !== undefined
        ? ' (call failed)'
        : result.runId !== undefined
          ? ` (run ${result.status ?? 'unknown'})`
          : result.ok
            ? ''
            : ' (error result)';
    took.cells[subject.id] = { value: round(elapsed / 1000, 1), text: `${round(elapsed / 1000, 1)}${how}` };
    await session.close();
    open.delete(session);
    await killScriptProcesses(subject.binDir);
  }
  for (const subject of subjects) {
    const own = grewBy.get(subject.id);
    const floor = floorOf(subjects, subject);
    const base = floor === undefined ? undefined : grewBy.get(floor.id);
    if (own === undefined || base === undefined) continue;
    overFloor.cells[subject.id] = { value: round(own - base), text: `${round(own - base)}` };
  }
  return [peak, growth, overFloor, bytes, survived, took];
}

/** Turns each measure's target predicate into per-column verdicts (Tandem's columns only). */
function judge(measures: Measure[]): PeersMeasure[] {
  return measures.map(({ tandemTarget, ...measure }) => {
    if (tandemTarget === undefined) return measure;
    const pass: Partial<Record<SubjectId, boolean>> = {};
    for (const id of COLUMNS) {
      const value = measure.cells[id]?.value;
      if (isTandem(id) && value !== undefined) pass[id] = tandemTarget.ok(value);
    }
    return { ...measure, target: tandemTarget.text, pass };
  });
}

// The report -----------------------------------------------------------------------------------------------

/** One Markdown paragraph or list item from source-sized pieces. */
const paragraph = (...parts: string[]): string => parts.join(' ');

/** How each server runs its CLI, read from its published source (dist/); shared with RESULTS.md. */
export const PEER_NOTES = [
  paragraph(
    '- **Tandem** (the same server over stdio and over loopback HTTP with a bearer token): strict argv',
    'template, no shell; the prompt goes on stdin after `--` (codex `exec --json ... -- -`, gemini',
    "`--output-format stream-json`); environment allowlist (base names plus the CLI's own auth names, so",
    'the codex worker gets OPENAI_API_KEY by design, the gemini worker does not); each step in its own',
    'process group, killed as a group (SIGTERM, then SIGKILL) on cancel, timeout (idle 5 min, wall 15 min',
    'by default, `serve --idle-timeout` / `--step-timeout` change them; the bench keeps the defaults) or',
    'shutdown; output bounded in memory (head + tail) and spilled to a capped log. `task_dispatch` returns',
    'after `waitSeconds` (<= 50) while the run goes on; `run_cancel` ends it. Here with `--sandbox off`,',
    'as the peers have no OS sandbox; what bubblewrap adds is in the `sandbox` section.',
  ),
  paragraph(
    "- **codex-mcp-server**: `spawn('codex', ['exec', '--model', M, ..., '--skip-git-repo-check', prompt])`,",
    '`shell: true` on Windows only (arguments quoted for cmd.exe); the prompt is the last bare argv element,',
    'no `--` before it, so a prompt that starts with `-` is parsed as a flag; stdin closed at once;',
    "`env: process.env` (the server's whole environment); no timeout, no kill, MCP cancellation ignored;",
    'stdout and stderr kept as strings capped at 10 MB each; any output counts as success whatever the exit',
    'code.',
  ),
  paragraph(
    "- **gemini-mcp-tool**: `spawn('gemini', ['-m', M?, '-s'?, '-p', prompt])` (stdin instead of `-p` when",
    "the prompt holds `@` or changeMode), `shell: true` on Windows only, `execSync('where gemini')` there;",
    '`env: process.env`; timeout GEMINI_MCP_TIMEOUT minutes (default 45; the bench sets 0.5), then `SIGKILL`',
    'to the direct child only; MCP cancellation ignored; `stdout += chunk` with no bound. Since 2026-06-18',
    'its default backend is `agy`; the bench sets GEMINI_MCP_BACKEND=gemini. Its flood row ends at its 30 s',
    'timeout: every stdout chunk also takes `stdout.substring(...)` of the growing string, which flattens',
    'it, so reading slows down as the output grows (a one-off manual run with the default 45 min timeout was',
    'still reading after 240 s, at 1.3 to 3 GiB RSS).',
  ),
].join('\n');

export const METHOD_NOTES = [
  paragraph(
    "The MCP client is the TypeScript SDK's (StdioClientTransport; StreamableHTTPClientTransport for Tandem",
    `over HTTP); its stdio read buffer is raised from the default 10 MiB to ${CLIENT_MAX_MESSAGE_BYTES / MiB} MiB`,
    "for every server. With the default, codex-mcp-server's flood answer (10 MB of output plus the JSON",
    'envelope) is over the limit: the client drops the connection and kills the server.',
  ),
  paragraph(
    "Every server got the same environment: the bench's own, the fake CLIs first on PATH, plus",
    `SECRET_TOKEN=${SECRET_TOKEN} and a fake OPENAI_API_KEY. The floor is a bare spawn of the fake CLI with`,
    "Tandem's argv, the prompt on stdin, PATH and HOME only; its flood runs in a fresh node process",
    "(bench/peers/drain.ts) whose RSS is measured as the servers' is. Tandem answers through `worker_spawn` +",
    '`task_dispatch` (role reviewer, one worker per concurrent call, dispatch concurrency 4 by default); the',
    'peers through their `codex` and `ask-gemini` tools.',
  ),
  paragraph(
    'The hostile prompt (after test/contract/worker-contract.ts) starts with `--help` and holds `$(touch',
    'pwned)`, backticks, `;`, `&&`, `|`, `>`, both quotes, a newline, `\\`, `$HOME` and globs. The fake CLI',
    'takes its argv literally and logs what it got, so "byte for byte" is checked at the fake; whether a real',
    "CLI's option parser would have taken the leading `--help` as a flag is read from the argv it logged (an",
    'element starting with `-` that follows no `--`).',
  ),
].join('\n\n');

function writeMarkdown(repoRoot: string, labels: Record<SubjectId, string>, measures: PeersMeasure[]): void {
  const cpu = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}`;
  const machine = `${cpu}, node ${process.version}, ${process.platform}`;
  const header = `| measure | ${COLUMNS.map((id) => labels[id]).join(' | ')} |`;
  const rule = `|---|${COLUMNS.map(() => '---:').join('|')}|`;
  const lines = measures.map((measure) => {
    const unit = measure.unit && !measure.unit.includes('=') ? ` (${measure.unit})` : '';
    const cells = COLUMNS.map((id) => measure.cells[id]?.text ?? '—');
    return `| ${measure.title}${unit} | ${cells.join(' | ')} |`;
  });
  const text = [
    `# Tandem and peer MCP servers on the same fake CLIs`,
    '',
    paragraph(
      `Bench ${new Date().toISOString()} on ${machine}. Every column was measured in the same run, one after`,
      'another (the hang test on all servers at once), on the fake CLIs of test/fixtures/peer-fakes.',
      'bench/RESULTS.md has the same numbers with the targets.',
    ),
    '',
    header,
    rule,
    ...lines,
    '',
    'How each server runs its CLI (read from its published source, dist/):',
    '',
    PEER_NOTES,
    '',
    METHOD_NOTES,
    '',
  ].join('\n');
  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'peers.md'), text);
}

function toRows(labels: Record<SubjectId, string>, measures: PeersMeasure[]): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const measure of measures) {
    for (const id of COLUMNS) {
      const cell = measure.cells[id];
      if (cell?.value === undefined || Number.isNaN(cell.value)) continue;
      const pass = measure.pass?.[id];
      rows.push({
        name: `peers: ${measure.title} [${labels[id]}]`,
        value: cell.value,
        unit: measure.unit,
        ...(pass !== undefined && measure.target !== undefined ? { target: measure.target, pass } : {}),
      });
    }
  }
  return rows;
}

// The section ----------------------------------------------------------------------------------------------

function copyFakes(repoRoot: string, binDir: string): void {
  mkdirSync(binDir, { recursive: true });
  for (const file of FAKE_FILES) {
    const target = path.join(binDir, file);
    copyFileSync(path.join(repoRoot, 'test', 'fixtures', 'peer-fakes', file), target);
    chmodSync(target, 0o755);
  }
}

function serverEnv(binDir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (value !== undefined) env[name] = value;
  env.PATH = `${binDir}${path.delimiter}${process.env.PATH ?? ''}`;
  env.SECRET_TOKEN = SECRET_TOKEN;
  env.OPENAI_API_KEY = OPENAI_API_KEY;
  return env;
}

export async function benchPeers(repoRoot: string): Promise<{ rows: BenchRow[]; report: PeersReport }> {
  const peersDir = path.join(repoRoot, 'bench', 'peers');
  const base = {
    calls: CALLS,
    concurrent: CONCURRENT,
    hangCapSeconds: HANG_CAP_MS / 1000,
    hostilePrompt: HOSTILE_PROMPT,
  };
  const installError = await ensurePeersInstalled(repoRoot, peersDir);
  if (installError !== undefined) {
    log(installError);
    return {
      rows: [
        { name: `peers: skipped, ${installError}`, value: 0, unit: '', target: 'installed', pass: false },
      ],
      report: { ...base, columns: [], measures: [], skipped: installError },
    };
  }
  const root = mkdtempSync(path.join(os.tmpdir(), 'tandem-peers-'));
  const sessions = new Map<SubjectId, Session>();
  const open = new Set<Session>();
  const subjects = COLUMNS.map((id) => {
    const binDir = path.join(root, id, 'bin');
    const workspace = path.join(root, id, 'ws');
    copyFakes(repoRoot, binDir);
    mkdirSync(workspace, { recursive: true });
    writeFileSync(path.join(workspace, 'README.md'), '# peers bench\n');
    return createSubject(id, { repoRoot, peersDir, binDir, workspace, env: serverEnv(binDir) });
  });
  const labels = Object.fromEntries(subjects.map((subject) => [subject.id, subject.label])) as Record<
    SubjectId,
    string
  >;
  const servers = subjects.filter((subject) => !isFloor(subject));
  const started = performance.now();
  const measures: Measure[] = [];
  try {
    for (const subject of subjects) {
      const session = await subject.start();
      sessions.set(subject.id, session);
      open.add(session);
    }
    log(`${CALLS} calls of a normal prompt per column, round robin`);
    measures.push(...(await measureCalls(subjects, sessions)));
    log(`${CONCURRENT} concurrent calls per column`);
    measures.push(...(await measureConcurrency(subjects, sessions)));
    log('environment leakage and the hostile prompt');
    measures.push(...(await measureEnvAndInjection(repoRoot, subjects, sessions)));
    for (const subject of subjects.filter(isFloor)) {
      await sessions.get(subject.id)?.close();
      sessions.delete(subject.id);
    }
    measures.push(...(await measureHang(servers, sessions)));
    open.clear();
    measures.push(...(await measureFlood(subjects, open)));
  } finally {
    await Promise.all([...open].map((session) => session.close()));
    const left = await killScriptProcesses(root);
    if (left > 0) log(`killed ${left} fake CLI process(es) still running at the end`);
    const stillAlive = findScriptProcesses(root).length;
    if (stillAlive > 0) log(`WARNING: ${stillAlive} fake CLI process(es) survived SIGKILL`);
    rmSync(root, { recursive: true, force: true });
  }
  const judged = judge(measures);
  writeMarkdown(repoRoot, labels, judged);
  const rows = toRows(labels, judged);
  rows.push({
    name: 'peers: whole section, wall time (install excluded)',
    value: round((performance.now() - started) / 1000, 1),
    unit: 's',
  });
  const columns = subjects.map(({ id, label, family, kind }) => ({ id, label, family, kind }));
  return { rows, report: { ...base, columns, measures: judged } };
}
