// `npm run evidence [-- --skip bench,ui]`: runs the release steps one after another (the three gates, the host
// and UI tests, the CLI probe, the package, the bench) and keeps what each produced in evidence/release/<date>/,
// then writes GO-NO-GO.md and summary.json, whose verdict follows from those results by the rules written in
// GO-NO-GO.md (the steps and the rules: scripts/evidence-rules.mjs). A failing step is recorded and the next one still runs; the script exits 1 on NO-GO.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  ANSI_ESCAPE,
  benchEvidence,
  commandLine,
  formatDuration,
  goNoGoMarkdown,
  hostEvidence,
  mochaEvidence,
  packageEvidence,
  parseHostCounts,
  parseSpecRuns,
  PASS,
  probeEvidence,
  RELEASE_STEPS,
  releaseSummary,
  stepCheck,
  stepRecord,
  uiCounts,
  uiEvidence,
  unreadableEvidence,
} from './evidence-rules.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** After SIGTERM to a step's process group, how long before SIGKILL. */
const KILL_GRACE_MS = 10_000;
/** After a step exits, how long what it started may take to exit too before it counts as left behind. */
const LEFTOVER_SETTLE_MS = 1_000;
/** A copied result must be at least this recent relative to its step's start, or it is an older run's. */
const CLOCK_SLACK_MS = 1_000;

/** What reads each step's files into checks, by step id; a step without one has its exit checked only. */
const COLLECTORS = {
  test: collectMocha,
  host: collectHost,
  ui: collectUi,
  probe: collectProbe,
  package: collectPackage,
  bench: collectBench,
};
const STEPS = RELEASE_STEPS.map((step) => ({ ...step, collect: COLLECTORS[step.id] }));
const STEP_IDS = STEPS.map((step) => step.id);

function usage() {
  return [
    'usage: npm run evidence [-- --skip STEP[,STEP...]]',
    `  steps, in order: ${STEP_IDS.join(', ')}`,
    '  a skipped step counts as missing evidence: the verdict is then NO-GO',
  ].join('\n');
}

function parseArgs(argv) {
  const skip = new Set();
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index];
    if (arg === '--help' || arg === '-h') {
      console.log(usage());
      process.exit(0);
    }
    let value;
    if (arg === '--skip') value = argv[(index += 1)];
    else if (arg.startsWith('--skip=')) value = arg.slice('--skip='.length);
    else {
      console.error(`evidence: unknown argument ${JSON.stringify(arg)}\n${usage()}`);
      process.exit(2);
    }
    if (!value) {
      console.error(`evidence: --skip needs a list of steps\n${usage()}`);
      process.exit(2);
    }
    for (const id of value.split(',').map((item) => item.trim())) {
      if (!STEP_IDS.includes(id)) {
        console.error(`evidence: unknown step ${JSON.stringify(id)}\n${usage()}`);
        process.exit(2);
      }
      skip.add(id);
    }
  }
  return { skip };
}

/** Reads a text file, or undefined when it does not exist. */
function readText(file) {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

function writeJsonFile(file, value) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** True when `file` exists and was written after `since` (a Date.now() value): not a leftover of an older run. */
function isFresh(file, since) {
  return existsSync(file) && statSync(file).mtimeMs >= since - CLOCK_SLACK_MS;
}

/**
 * Makes a saved log plain text: with CI set (as .ci/run sets it) mocha colours its output even into a file
 * (picocolors reads CI), and the logs are for reading.
 */
function stripEscapes(file) {
  const text = readFileSync(file, 'utf8');
  if (text.includes(String.fromCharCode(27))) writeFileSync(file, text.replace(ANSI_ESCAPE, ''));
}

// --- Running one step ----------------------------------------------------------------------------------

let running;

/** Sends `signal` to the whole process group of a step; false when the group is already gone. */
function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * The processes of a group that still run, as `name (pid)`: read from /proc, where an exited child nobody has
 * reaped yet (a zombie) is told apart from a live one. Elsewhere, whether the group answers a signal.
 */
function liveGroupMembers(pgid) {
  if (!existsSync('/proc/self/stat')) return signalGroup(pgid, 0) ? [`process group ${pgid}`] : [];
  const members = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so read after the last ')'.
    const close = stat.lastIndexOf(')');
    const [state, , pgrp] = stat.slice(close + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') {
      members.push(`${stat.slice(stat.indexOf('(') + 1, close)} (${entry})`);
    }
  }
  return members;
}

/**
 * Runs a step with its output in files (nothing kept in memory), in its own process group so that a timeout
 * or an interrupt ends everything it started. Resolves with the exit code or signal, never rejects.
 */
function runStep(step, logFile, stdoutFile) {
  return new Promise((resolve) => {
    const logFd = openSync(logFile, 'w');
    const outFd = stdoutFile ? openSync(stdoutFile, 'w') : logFd;
    const env = { ...process.env, CI: 'true' };
    if (step.pathFirst) {
      env.PATH = [path.join(root, step.pathFirst), process.env.PATH].filter(Boolean).join(path.delimiter);
    }
    const started = performance.now();
    let child;
    let timedOut = false;
    let killTimer;
    let done = false;
    // 'error' and 'close' can both arrive: the first one settles the step.
    const finish = (result) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      closeSync(logFd);
      if (outFd !== logFd) closeSync(outFd);
      stripEscapes(logFile);
      running = undefined;
      const durationMs = Math.round(performance.now() - started);
      if (child?.pid === undefined) {
        resolve({ ...result, timedOut, leftProcesses: [], durationMs });
        return;
      }
      // Processes a step left behind (a server it forgot to stop) would disturb the next step. Helpers that
      // exit with their parent (esbuild's service) get a moment first, so that only real leftovers count.
      const group = child.pid;
      setTimeout(() => {
        const leftProcesses = liveGroupMembers(group);
        if (leftProcesses.length > 0) signalGroup(group, 'SIGKILL');
        resolve({ ...result, timedOut, leftProcesses, durationMs });
      }, LEFTOVER_SETTLE_MS);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
    }, step.timeoutMs);
    try {
      child = spawn(step.command, step.args, {
        cwd: root,
        env,
        stdio: ['ignore', outFd, logFd],
        detached: true,
      });
    } catch (error) {
      finish({ exitCode: null, signal: null, error: error.message });
      return;
    }
    running = child;
    child.on('error', (error) => finish({ exitCode: null, signal: null, error: error.message }));
    child.on('close', (exitCode, signal) => finish({ exitCode, signal, error: null }));
  });
}

function stopRunningStep(signal) {
  if (running?.pid !== undefined) signalGroup(running.pid, 'SIGTERM');
  console.error(`evidence: interrupted by ${signal}; the release folder is incomplete`);
  process.exit(130);
}

// --- Reading what the steps produced ------------------------------------------------------------------

/** Copies `from` (relative to the repository) to `to` (relative to the release folder) when it is fresh. */
function copyFresh(context, from, to) {
  const source = path.join(root, from);
  if (!isFresh(source, context.startedAt)) return false;
  const target = path.join(context.outDir, to);
  mkdirSync(path.dirname(target), { recursive: true });
  copyFileSync(source, target);
  return true;
}

/** Copies every fresh file under `fromDir` (relative to the repository) whose name matches `pattern`. */
function copyFreshTree(context, fromDir, toDir, pattern, skipNames = []) {
  const copied = [];
  const base = path.join(root, fromDir);
  if (!existsSync(base)) return copied;
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const relative = path.relative(base, full);
      if (skipNames.includes(relative)) continue;
      if (entry.isDirectory()) walk(full);
      else if (
        pattern.test(entry.name) &&
        copyFresh(context, path.join(fromDir, relative), path.join(toDir, relative))
      ) {
        copied.push(path.join(toDir, relative));
      }
    }
  };
  walk(base);
  return copied;
}

// Each collector reads and copies what its step wrote; scripts/evidence-rules.mjs turns that into checks.

function collectMocha(context) {
  const source = context.logPath;
  if (!context.result) return mochaEvidence(source, null);
  return mochaEvidence(source, parseSpecRuns(readText(path.join(context.outDir, source)) ?? ''));
}

function collectHost(context) {
  const logSource = context.logPath;
  if (!context.result) return hostEvidence(logSource, null);
  const counts = parseHostCounts(readText(path.join(context.outDir, logSource)) ?? '', logSource);
  const timings = copyFresh(context, 'evidence/host/timings.json', 'host/timings.json');
  copyFresh(context, 'evidence/host/host.log', 'host/extension-host.log');
  copyFresh(context, 'evidence/host/code-server.log', 'host/code-server.log');
  const screenshots = copyFreshTree(context, 'evidence/host', 'host', /\.png$/);
  return hostEvidence(logSource, {
    counts,
    timings: timings
      ? JSON.parse(readFileSync(path.join(context.outDir, 'host/timings.json'), 'utf8'))
      : null,
    screenshots,
  });
}

function collectUi(context) {
  const source = 'ui/results.json';
  if (!context.result) return uiEvidence(source, null);
  const counts = copyFresh(context, 'evidence/ui/results.json', source)
    ? uiCounts(JSON.parse(readFileSync(path.join(context.outDir, source), 'utf8')), source)
    : null;
  const screenshots = copyFreshTree(context, 'evidence/ui', 'ui/screenshots', /\.png$/, ['failures']);
  const failures = copyFreshTree(context, 'evidence/ui/failures', 'ui/failures', /./);
  return uiEvidence(source, { counts, screenshots, failures });
}

function collectProbe(context) {
  const source = 'probe/probe.json';
  if (!context.result) return probeEvidence(source, null);
  try {
    return probeEvidence(source, {
      document: JSON.parse(readFileSync(path.join(context.outDir, source), 'utf8')),
    });
  } catch (error) {
    return probeEvidence(source, { error: error.message });
  }
}

function collectBench(context) {
  const source = 'bench/latest.json';
  if (!context.result) return benchEvidence(source, null);
  const copied = copyFresh(context, 'bench/results/latest.json', source);
  copyFresh(context, 'bench/results/latest.md', 'bench/latest.md');
  const peersCopied = copyFresh(context, 'bench/results/peers.md', 'bench/peers.md');
  // RESULTS.md is the committed write-up: copied as it stands, whenever it was written.
  const resultsDoc = existsSync(path.join(root, 'bench', 'RESULTS.md'));
  if (resultsDoc)
    copyFileSync(path.join(root, 'bench', 'RESULTS.md'), path.join(context.outDir, 'bench', 'RESULTS.md'));
  return benchEvidence(source, {
    latest: copied ? JSON.parse(readFileSync(path.join(context.outDir, source), 'utf8')) : null,
    resultsDoc,
    peersCopied,
  });
}

/** The entries of a zip file from its central directory: name and uncompressed size. */
function zipEntries(file) {
  const data = readFileSync(file);
  let end = -1;
  for (let at = data.length - 22; at >= Math.max(0, data.length - 22 - 0xffff); at -= 1) {
    if (data.readUInt32LE(at) === 0x06054b50) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new Error(`${path.basename(file)} is not a zip file`);
  const count = data.readUInt16LE(end + 10);
  let at = data.readUInt32LE(end + 16);
  const entries = [];
  for (let index = 0; index < count; index += 1) {
    if (data.readUInt32LE(at) !== 0x02014b50)
      throw new Error(`${path.basename(file)}: broken central directory`);
    const size = data.readUInt32LE(at + 24);
    const nameLength = data.readUInt16LE(at + 28);
    const extraLength = data.readUInt16LE(at + 30);
    const commentLength = data.readUInt16LE(at + 32);
    entries.push({ name: data.toString('utf8', at + 46, at + 46 + nameLength), size });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

function collectPackage(context) {
  const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const vsix = `${manifest.name}-${manifest.version}.vsix`;
  if (!context.result) return packageEvidence(vsix, null);
  if (!copyFresh(context, vsix, `package/${vsix}`)) return packageEvidence(vsix, {});
  const file = path.join(context.outDir, 'package', vsix);
  const bytes = readFileSync(file);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  // The sha256sum format, so that `sha256sum -c` checks it from the package folder.
  writeFileSync(path.join(context.outDir, 'package', `${vsix}.sha256`), `${sha256}  ${vsix}\n`);
  let entries;
  try {
    entries = zipEntries(file);
  } catch (error) {
    return packageEvidence(vsix, { bytes: bytes.length, sha256, zipError: error.message });
  }
  writeFileSync(
    path.join(context.outDir, 'package', `${vsix}.files.txt`),
    `${entries.map((entry) => `${String(entry.size).padStart(10)}  ${entry.name}`).join('\n')}\n`,
  );
  return packageEvidence(vsix, { bytes: bytes.length, sha256, entries });
}

// --- The run and its files ----------------------------------------------------------------------------

function gitState() {
  const git = (args) =>
    spawnSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const head = git(['rev-parse', 'HEAD']);
  const status = git(['status', '--porcelain', '--untracked-files=normal']);
  // Earlier release folders are this script's own output, not a change to the code under test.
  const changed =
    status.status === 0
      ? status.stdout
          .split('\n')
          .filter((line) => line.trim() !== '' && !line.slice(3).startsWith('evidence/release/'))
      : [];
  return {
    commit: head.status === 0 ? head.stdout.trim() : null,
    // Files changed and not committed when the run started: the evidence is of the working tree.
    uncommitted: changed.length,
    uncommittedFiles: changed.slice(0, 50).map((line) => line.slice(3)),
  };
}

async function main() {
  const { skip } = parseArgs(process.argv.slice(2));
  const runStarted = Date.now();
  const date = new Date(runStarted).toISOString().slice(0, 10);
  const outDir = path.join(root, 'evidence', 'release', date);
  const relOut = path.relative(root, outDir);
  const git = gitState();
  // A run replaces the day's folder: nothing in it may come from an earlier run.
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB, node ${process.version}, ${process.platform}`;
  console.log(
    `evidence: writing ${relOut}/ (${STEPS.length} steps${skip.size > 0 ? `, skipping ${[...skip].join(', ')}` : ''})`,
  );
  if (skip.size > 0)
    console.log('evidence: a skipped step counts as missing evidence, so the verdict will be NO-GO');

  process.on('SIGINT', () => stopRunningStep('SIGINT'));
  process.on('SIGTERM', () => stopRunningStep('SIGTERM'));

  const steps = [];
  const checks = [];
  const data = { suites: {} };
  for (const [index, step] of STEPS.entries()) {
    const logPath = `${step.dir}/${step.id}.log`;
    const prefix = `evidence: [${index + 1}/${STEPS.length}] ${commandLine(step)}`;
    mkdirSync(path.join(outDir, step.dir), { recursive: true });
    let result = null;
    const startedAt = Date.now();
    if (skip.has(step.id)) {
      console.log(`${prefix} … SKIPPED (missing evidence: NO-GO)`);
    } else {
      process.stdout.write(`${prefix} … `);
      const stdoutFile = step.stdoutFile ? path.join(outDir, step.dir, step.stdoutFile) : undefined;
      result = await runStep(step, path.join(outDir, logPath), stdoutFile);
    }
    const stepChecks = [stepCheck(step, result, result ? logPath : null)];
    if (step.collect) {
      let collected;
      try {
        collected = step.collect({ result, outDir, logPath, startedAt });
      } catch (error) {
        collected = unreadableEvidence(step, logPath, error);
      }
      stepChecks.push(...collected.checks);
      for (const [key, value] of Object.entries(collected.data)) {
        if (key === 'suites') Object.assign(data.suites, value);
        else data[key] = value;
      }
    }
    checks.push(...stepChecks);
    steps.push(stepRecord(step, result, logPath));
    if (result) {
      const notPassed = stepChecks.filter((entry) => entry.result !== PASS);
      const status = result.error
        ? `DID NOT START (${result.error})`
        : result.timedOut
          ? 'TIMED OUT'
          : result.exitCode === 0
            ? 'ok'
            : `FAILED (exit ${result.exitCode ?? result.signal})`;
      const note = notPassed.length > 0 ? `; ${notPassed.length} check(s) not passed` : '';
      console.log(`${status} in ${formatDuration(result.durationMs)}${note} → ${relOut}/${logPath}`);
    }
  }

  const summary = releaseSummary({
    date,
    startedAt: runStarted,
    finishedAt: Date.now(),
    manifest,
    git,
    machine,
    skipped: [...skip],
    steps,
    checks,
    data,
  });
  const { verdict } = summary;
  const failing = checks.filter((entry) => entry.result !== PASS);
  writeJsonFile(path.join(outDir, 'tests', 'suites.json'), data.suites);
  writeJsonFile(path.join(outDir, 'summary.json'), summary);
  writeFileSync(
    path.join(outDir, 'GO-NO-GO.md'),
    goNoGoMarkdown(summary, (source) => existsSync(path.join(outDir, source))),
  );
  console.log(
    `evidence: ${verdict} (${checks.length - failing.length} of ${checks.length} checks passed) in ${formatDuration(summary.durationMs)} → ${relOut}/GO-NO-GO.md`,
  );
  for (const entry of failing) console.log(`  ${entry.result}: ${entry.check}: ${entry.detail}`);
  process.exitCode = verdict === 'GO' ? 0 : 1;
}

await main();
