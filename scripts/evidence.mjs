// `npm run evidence [-- --skip bench,ui]`: runs the release steps one after another (the three gates, the host
// and UI tests, the CLI probe, the package, the bench) and keeps what each produced in evidence/release/<date>/,
// then writes GO-NO-GO.md and summary.json, whose verdict follows from those results by the rules written in
// GO-NO-GO.md. A failing step is recorded and the next one still runs; the script exits 1 on NO-GO.
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

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MINUTE = 60_000;
/** After SIGTERM to a step's process group, how long before SIGKILL. */
const KILL_GRACE_MS = 10_000;
/** After a step exits, how long what it started may take to exit too before it counts as left behind. */
const LEFTOVER_SETTLE_MS = 1_000;
/** A copied result must be at least this recent relative to its step's start, or it is an older run's. */
const CLOCK_SLACK_MS = 1_000;
const FAILURE_TEXT_MAX = 1_500;

/**
 * The steps in the order they run. `gate` marks the three gates of the README. Each step's combined
 * stdout and stderr go to `<dir>/<id>.log` in the release folder (the probe's stdout to probe.json).
 */
const STEPS = [
  {
    id: 'tsc',
    gate: true,
    dir: 'gates',
    command: 'npx',
    args: ['tsc', '-p', 'tsconfig.json'],
    timeoutMs: 10 * MINUTE,
  },
  { id: 'verify', gate: true, dir: 'gates', command: 'npm', args: ['run', 'verify'], timeoutMs: 15 * MINUTE },
  {
    id: 'test',
    gate: true,
    dir: 'gates',
    command: 'npm',
    args: ['test'],
    timeoutMs: 40 * MINUTE,
    collect: collectMocha,
  },
  {
    id: 'host',
    dir: 'host',
    command: 'npm',
    args: ['run', 'test:host'],
    timeoutMs: 15 * MINUTE,
    collect: collectHost,
  },
  {
    id: 'ui',
    dir: 'ui',
    command: 'npm',
    args: ['run', 'test:ui'],
    timeoutMs: 20 * MINUTE,
    collect: collectUi,
  },
  {
    id: 'probe',
    dir: 'probe',
    command: process.execPath,
    args: ['dist/cli.js', 'probe', '--json'],
    stdoutFile: 'probe.json',
    // The pinned CLIs (devDependencies) are the ones the tests ran against: they come first on PATH.
    pathFirst: path.join(root, 'node_modules', '.bin'),
    timeoutMs: 2 * MINUTE,
    collect: collectProbe,
  },
  {
    id: 'package',
    dir: 'package',
    command: 'npm',
    args: ['run', 'package'],
    timeoutMs: 10 * MINUTE,
    collect: collectPackage,
  },
  // After the package and the host tests: the bench's extension section measures their .vsix and timings.
  {
    id: 'bench',
    dir: 'bench',
    command: 'npm',
    args: ['run', 'bench'],
    timeoutMs: 30 * MINUTE,
    collect: collectBench,
  },
];
const STEP_IDS = STEPS.map((step) => step.id);

/** The verdict rules, numbered as GO-NO-GO.md shows them; each check names the rule it belongs to. */
const RULES = {
  gate: 'A gate (`npx tsc -p tsconfig.json`, `npm run verify`, `npm test`) exited non-zero → NO-GO.',
  tests: 'A test failed in any suite (unit, integration, host, UI), or a suite reported no count → NO-GO.',
  bench: 'A bench target has `pass: false` (or the bench gave no target) → NO-GO.',
  probe: 'The probe reports a CLI not installed, with an error, or outside its tested range → NO-GO.',
  missing: 'Evidence is missing: a step was skipped or did not run, or did not produce its files → NO-GO.',
  step: 'Any other step (host, UI, probe, package, bench) exited non-zero → NO-GO.',
};
const RULE_ORDER = ['gate', 'tests', 'bench', 'probe', 'missing', 'step'];

const PASS = 'pass';
const FAIL = 'FAIL';
const MISSING = 'MISSING';

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

function formatDuration(ms) {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms - minutes * 60_000) / 1000)} s`;
}

function commandLine(step) {
  const command = step.command === process.execPath ? 'node' : step.command;
  return [command, ...step.args].join(' ');
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

/** Terminal escape sequences (colours, line erasing), removed from the saved logs. */
const ANSI_ESCAPE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');

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
    if (step.pathFirst) env.PATH = [step.pathFirst, process.env.PATH].filter(Boolean).join(path.delimiter);
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

/** Spec reporter lines (no colours: the output goes to a file). */
const SPEC_PASSED = /^\s+✔ /;
const SPEC_PENDING = /^\s+- /;
const SPEC_FAILED = /^\s+\d+\) /;
const SPEC_TOP_DESCRIBE = /^ {2}(\S.*)$/;
const SPEC_SUMMARY = /^ {2}(\d+) passing \((.+)\)$/;
const SPEC_COUNT = /^ {2}(\d+) (pending|failing)$/;
const SPEC_FAILURE = /^ {2}\d+\) /;

/**
 * The mocha spec runs in `text`, in order: each with its summary counts, a breakdown per top-level describe
 * (from its listing) and its failures (title path and message; the stacks stay in the log). A run is its
 * listing, then `N passing (time)`, then optional `N pending` / `N failing` and the failures; the next run's
 * listing starts at the next line indented by exactly two spaces that is none of those.
 */
function parseSpecRuns(text) {
  const lines = text.replace(ANSI_ESCAPE, '').split('\n');
  const runs = [];
  let run;
  let current;
  let failure;
  let inEpilogue = false;
  const startRun = () => {
    run = { passed: 0, failed: 0, pending: 0, duration: null, describes: [], failures: [], complete: false };
    current = undefined;
    failure = undefined;
    inEpilogue = false;
  };
  startRun();
  for (const line of lines) {
    if (inEpilogue) {
      const count = SPEC_COUNT.exec(line);
      if (count) {
        run[count[2] === 'pending' ? 'pending' : 'failed'] = Number(count[1]);
        continue;
      }
      if (SPEC_FAILURE.test(line)) {
        failure = { text: line.trim() };
        run.failures.push(failure);
        continue;
      }
      if (SPEC_TOP_DESCRIBE.test(line)) {
        runs.push(run);
        startRun();
      } else {
        if (failure && line.trim() !== '' && !/^\s+at /.test(line)) {
          failure.text = `${failure.text}\n${line.trim()}`.slice(0, FAILURE_TEXT_MAX);
        }
        continue;
      }
    }
    const summary = SPEC_SUMMARY.exec(line);
    if (summary) {
      run.passed = Number(summary[1]);
      run.duration = summary[2];
      run.complete = true;
      inEpilogue = true;
      continue;
    }
    const kind = SPEC_PASSED.test(line)
      ? 'passed'
      : SPEC_PENDING.test(line)
        ? 'pending'
        : SPEC_FAILED.test(line)
          ? 'failed'
          : undefined;
    if (kind) {
      if (!current) {
        current = { title: '(root)', passed: 0, failed: 0, pending: 0 };
        run.describes.push(current);
      }
      current[kind] += 1;
      continue;
    }
    const top = SPEC_TOP_DESCRIBE.exec(line);
    if (top) {
      current = { title: top[1].trim(), passed: 0, failed: 0, pending: 0 };
      run.describes.push(current);
    }
  }
  if (run.complete) runs.push(run);
  for (const each of runs) {
    each.describes = each.describes.filter((entry) => entry.passed + entry.failed + entry.pending > 0);
    delete each.complete;
  }
  return runs;
}

/** A check: one line of the GO-NO-GO table. `source` is relative to the release folder. */
function check(rule, name, source, result, detail) {
  return { rule, check: name, source, result, detail };
}

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

function suiteCheck(name, source, counts, missingWhy) {
  if (!counts)
    return check('missing', `${name} tests: none failed`, source, MISSING, `no count: ${missingWhy}`);
  const detail = `${counts.passed} passed, ${counts.failed} failed, ${counts.pending} pending`;
  if (counts.failed > 0) return check('tests', `${name} tests: none failed`, source, FAIL, detail);
  if (counts.passed === 0)
    return check('tests', `${name} tests: none failed`, source, FAIL, `no test ran (${detail})`);
  return check('tests', `${name} tests: none failed`, source, PASS, detail);
}

function collectMocha(context) {
  const source = context.logPath;
  if (!context.result) {
    return {
      checks: ['unit', 'integration'].map((name) =>
        suiteCheck(name, source, undefined, 'the test step did not run'),
      ),
      data: { suites: { unit: null, integration: null } },
    };
  }
  const [unit, integration] = parseSpecRuns(readText(path.join(context.outDir, source)) ?? '');
  const suites = {
    unit: unit ? { ...unit, source } : null,
    integration: integration ? { ...integration, source } : null,
  };
  return {
    checks: [
      suiteCheck('unit', source, unit, 'no mocha summary (`N passing`) in the output'),
      suiteCheck(
        'integration',
        source,
        integration,
        'no second mocha summary in the output (`npm test` stops after a failed unit suite)',
      ),
    ],
    data: { suites },
  };
}

function collectHost(context) {
  const logSource = context.logPath;
  if (!context.result) {
    return {
      checks: [
        suiteCheck('host', logSource, undefined, 'the host step did not run'),
        check(
          'missing',
          'host: evidence/host/timings.json written',
          'host/timings.json',
          MISSING,
          'the host step did not run',
        ),
      ],
      data: { suites: { host: null } },
    };
  }
  const text = readText(path.join(context.outDir, logSource)) ?? '';
  const match = [...text.matchAll(/^host: (\d+) passed, (\d+) failed, (\d+) skipped$/gm)].at(-1);
  const counts = match
    ? { passed: Number(match[1]), failed: Number(match[2]), pending: Number(match[3]), source: logSource }
    : null;
  const timings = copyFresh(context, 'evidence/host/timings.json', 'host/timings.json');
  copyFresh(context, 'evidence/host/host.log', 'host/extension-host.log');
  copyFresh(context, 'evidence/host/code-server.log', 'host/code-server.log');
  const screenshots = copyFreshTree(context, 'evidence/host', 'host', /\.png$/);
  return {
    checks: [
      suiteCheck('host', logSource, counts, 'no `host: N passed, N failed, N skipped` line in the output'),
      check(
        'missing',
        'host: evidence/host/timings.json written',
        'host/timings.json',
        timings ? PASS : MISSING,
        timings ? 'copied' : 'not written by this run',
      ),
    ],
    data: {
      suites: { host: counts },
      host: {
        timings: timings
          ? JSON.parse(readFileSync(path.join(context.outDir, 'host/timings.json'), 'utf8'))
          : null,
        screenshots,
      },
    },
  };
}

function collectUi(context) {
  const source = 'ui/results.json';
  if (!context.result) {
    return {
      checks: [
        suiteCheck('UI', source, undefined, 'the UI step did not run'),
        check('missing', 'UI: screenshots taken', 'ui/screenshots/', MISSING, 'the UI step did not run'),
      ],
      data: { suites: { ui: null } },
    };
  }
  let counts = null;
  if (copyFresh(context, 'evidence/ui/results.json', source)) {
    const results = JSON.parse(readFileSync(path.join(context.outDir, source), 'utf8'));
    counts = {
      passed: results.passed,
      failed: results.failed,
      pending: results.skipped,
      source,
      failures: (results.results ?? [])
        .filter((entry) => !entry.ok)
        .map((entry) => ({
          session: entry.session,
          name: entry.name,
          error: String(entry.error ?? '').slice(0, FAILURE_TEXT_MAX),
        })),
    };
  }
  const screenshots = copyFreshTree(context, 'evidence/ui', 'ui/screenshots', /\.png$/, ['failures']);
  const failures = copyFreshTree(context, 'evidence/ui/failures', 'ui/failures', /./);
  return {
    checks: [
      suiteCheck('UI', source, counts, 'evidence/ui/results.json was not written by this run'),
      check(
        'missing',
        'UI: screenshots taken',
        'ui/screenshots/',
        screenshots.length > 0 ? PASS : MISSING,
        `${screenshots.length} screenshot(s)`,
      ),
    ],
    data: { suites: { ui: counts }, ui: { screenshots, failures } },
  };
}

function collectProbe(context) {
  const source = 'probe/probe.json';
  const kinds = ['codex', 'gemini'];
  if (!context.result) {
    return {
      checks: kinds.map((kind) =>
        check(
          'missing',
          `probe: ${kind} installed and in its tested range`,
          source,
          MISSING,
          'the probe step did not run',
        ),
      ),
      data: { probe: null },
    };
  }
  let document;
  try {
    document = JSON.parse(readFileSync(path.join(context.outDir, source), 'utf8'));
  } catch (error) {
    return {
      checks: kinds.map((kind) =>
        check(
          'missing',
          `probe: ${kind} installed and in its tested range`,
          source,
          MISSING,
          `no probe JSON: ${error.message}`,
        ),
      ),
      data: { probe: null },
    };
  }
  const checks = kinds.map((kind) => {
    const name = `probe: ${kind} installed and in its tested range`;
    const entry = (document.clis ?? []).find((cli) => cli.kind === kind);
    if (!entry) return check('missing', name, source, MISSING, `no ${kind} entry in the probe JSON`);
    const detail = `${entry.installed ? `${entry.version ?? 'unknown version'} at ${entry.path}` : 'not installed'}; tested range ${entry.testedRange}${entry.error ? `; ${entry.error}` : ''}`;
    const ok = entry.installed === true && entry.versionInTestedRange === true && !entry.error;
    return check('probe', name, source, ok ? PASS : FAIL, detail);
  });
  return { checks, data: { probe: document } };
}

/** The bench targets: latest.json's `targets` when it has them, else its rows that carry a `pass`. */
function benchTargets(latest) {
  if (Array.isArray(latest.targets)) {
    return latest.targets.map(({ name, value, target, pass }) => ({ name, value, target, pass }));
  }
  return (latest.rows ?? [])
    .filter((row) => typeof row.pass === 'boolean')
    .map((row) => ({
      name: row.name,
      value: `${row.value} ${row.unit ?? ''}`.trim(),
      target: row.target,
      pass: row.pass,
    }));
}

function collectBench(context) {
  const source = 'bench/latest.json';
  if (!context.result) {
    return {
      checks: [check('missing', 'bench: targets met', source, MISSING, 'the bench step did not run')],
      data: { bench: null },
    };
  }
  const copied = copyFresh(context, 'bench/results/latest.json', source);
  copyFresh(context, 'bench/results/latest.md', 'bench/latest.md');
  // RESULTS.md is the committed write-up: copied as it stands, whenever it was written.
  const resultsDoc = existsSync(path.join(root, 'bench', 'RESULTS.md'));
  if (resultsDoc)
    copyFileSync(path.join(root, 'bench', 'RESULTS.md'), path.join(context.outDir, 'bench', 'RESULTS.md'));
  if (!copied) {
    return {
      checks: [
        check(
          'missing',
          'bench: targets met',
          source,
          MISSING,
          'bench/results/latest.json was not written by this run',
        ),
      ],
      data: { bench: null },
    };
  }
  const latest = JSON.parse(readFileSync(path.join(context.outDir, source), 'utf8'));
  const targets = benchTargets(latest);
  const checks = targets.map((target) =>
    check(
      'bench',
      `bench: ${target.name}`,
      source,
      target.pass === true ? PASS : FAIL,
      `${target.value}; target ${target.target ?? '(none stated)'}`,
    ),
  );
  if (targets.length === 0)
    checks.push(check('bench', 'bench: targets met', source, FAIL, 'latest.json states no target'));
  return {
    checks,
    data: {
      bench: {
        date: latest.date,
        machine: latest.machine,
        targets,
        resultsDoc: resultsDoc ? 'bench/RESULTS.md' : null,
      },
    },
  };
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
  const source = `package/${vsix}.sha256`;
  const name = `package: ${vsix} built, checksum and file list written`;
  if (!context.result) {
    return {
      checks: [check('missing', name, source, MISSING, 'the package step did not run')],
      data: { package: null },
    };
  }
  if (!copyFresh(context, vsix, `package/${vsix}`)) {
    return {
      checks: [check('missing', name, source, MISSING, `${vsix} was not written by this run`)],
      data: { package: null },
    };
  }
  const file = path.join(context.outDir, 'package', vsix);
  const bytes = readFileSync(file);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  // The sha256sum format, so that `sha256sum -c` checks it from the package folder.
  writeFileSync(path.join(context.outDir, source), `${sha256}  ${vsix}\n`);
  let entries;
  try {
    entries = zipEntries(file);
  } catch (error) {
    return { checks: [check('missing', name, source, FAIL, error.message)], data: { package: null } };
  }
  writeFileSync(
    path.join(context.outDir, 'package', `${vsix}.files.txt`),
    `${entries.map((entry) => `${String(entry.size).padStart(10)}  ${entry.name}`).join('\n')}\n`,
  );
  const detail = `${(bytes.length / 1024).toFixed(1)} KiB, ${entries.length} files, sha256 ${sha256}`;
  return {
    checks: [check('missing', name, source, PASS, detail)],
    data: {
      package: {
        file: `package/${vsix}`,
        bytes: bytes.length,
        sha256,
        checksumFile: source,
        fileList: `package/${vsix}.files.txt`,
        files: entries,
      },
    },
  };
}

// --- The verdict and its files ------------------------------------------------------------------------

function stepCheck(step, result, logPath) {
  const name = `${step.gate ? 'gate' : step.id}: \`${commandLine(step)}\` exited 0`;
  const rule = step.gate ? 'gate' : 'step';
  if (!result)
    return check('missing', name, logPath, MISSING, 'skipped with --skip: counts as missing evidence');
  if (result.error) return check('missing', name, logPath, MISSING, `did not start: ${result.error}`);
  const took = formatDuration(result.durationMs);
  if (result.timedOut) {
    return check(rule, name, logPath, FAIL, `timed out after ${formatDuration(step.timeoutMs)}; stopped`);
  }
  if (result.exitCode !== 0) {
    return check(rule, name, logPath, FAIL, `exit ${result.exitCode ?? result.signal} after ${took}`);
  }
  return check(rule, name, logPath, PASS, `exit 0 in ${took}`);
}

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

function cell(text) {
  return String(text ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\s*\n\s*/g, ' / ');
}

/** A link to a file of the release folder, or its name marked absent when the run did not write it. */
function sourceCell(outDir, source) {
  if (!source) return '';
  return existsSync(path.join(outDir, source)) ? `[${cell(source)}](${source})` : `${cell(source)} (absent)`;
}

function goNoGoMarkdown(summary, outDir) {
  const { git } = summary;
  const tree = git.commit
    ? `commit \`${git.commit.slice(0, 12)}\`${git.uncommitted > 0 ? ` with ${git.uncommitted} uncommitted file(s) (the evidence is of the working tree)` : ''}`
    : 'no git commit found';
  const failing = summary.checks.filter((entry) => entry.result !== PASS);
  const lines = [
    `# Release go / no-go: ${summary.date}`,
    '',
    `${summary.package.name} ${summary.package.version}, ${tree}; ${summary.machine}. Run started ${summary.startedAt}` +
      ` and took ${formatDuration(summary.durationMs)}. Written by \`npm run evidence\` (scripts/evidence.mjs):` +
      ' the verdict is derived from the results below by the rules, never written by hand. The same data is in' +
      ' `summary.json`; every source path is relative to this folder.',
    '',
    '## Rules',
    '',
    ...RULE_ORDER.map((rule, index) => `${index + 1}. ${RULES[rule]}`),
    `${RULE_ORDER.length + 1}. Otherwise → GO.`,
    '',
    'Pending (skipped) tests are counted and shown but do not decide the verdict.',
    '',
    '## Steps',
    '',
    '| step | command | exit | duration | output |',
    '| --- | --- | --- | --- | --- |',
    ...summary.steps.map((step) =>
      [
        '',
        step.id,
        `\`${cell(step.command)}\``,
        step.skipped
          ? 'skipped'
          : step.error
            ? 'did not start'
            : step.timedOut
              ? 'timed out'
              : `${step.exitCode ?? step.signal}${step.leftProcesses.length > 0 ? ` (left running, then killed: ${step.leftProcesses.join(', ')})` : ''}`,
        step.skipped ? '' : formatDuration(step.durationMs),
        step.log ? `[${step.log}](${step.log})` : '',
        '',
      ]
        .join(' | ')
        .trim(),
    ),
    '',
    '## Test suites',
    '',
    '| suite | passed | failed | pending | source |',
    '| --- | ---: | ---: | ---: | --- |',
    ...['unit', 'integration', 'host', 'ui'].map((name) => {
      const suite = summary.suites[name];
      return suite
        ? `| ${name} | ${suite.passed} | ${suite.failed} | ${suite.pending} | ${sourceCell(outDir, suite.source)} |`
        : `| ${name} | | | | no count (see the checks) |`;
    }),
    '',
    '## Checks',
    '',
    '| # | check | rule | source | result | detail |',
    '| ---: | --- | ---: | --- | --- | --- |',
    ...summary.checks.map(
      (entry, index) =>
        `| ${index + 1} | ${cell(entry.check)} | ${RULE_ORDER.indexOf(entry.rule) + 1} | ${sourceCell(outDir, entry.source)} | ${entry.result === PASS ? 'pass' : `**${entry.result}**`} | ${cell(entry.detail)} |`,
    ),
    '',
    '## Verdict',
    '',
    summary.verdict === 'GO'
      ? `**GO**: all ${summary.checks.length} checks passed.`
      : `**NO-GO**: ${failing.length} of ${summary.checks.length} checks did not pass:`,
    ...failing.map(
      (entry) =>
        `- ${entry.check} (rule ${RULE_ORDER.indexOf(entry.rule) + 1}): ${entry.result}, ${cell(entry.detail)}`,
    ),
    '',
  ];
  return lines.join('\n');
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
        collected = {
          checks: [
            check(
              'missing',
              `${step.id}: results read`,
              logPath,
              MISSING,
              `could not read: ${error.message}`,
            ),
          ],
          data: {},
        };
      }
      stepChecks.push(...collected.checks);
      for (const [key, value] of Object.entries(collected.data)) {
        if (key === 'suites') Object.assign(data.suites, value);
        else data[key] = value;
      }
    }
    checks.push(...stepChecks);
    steps.push({
      id: step.id,
      gate: Boolean(step.gate),
      command: commandLine(step),
      argv: [step.command === process.execPath ? 'node' : step.command, ...step.args],
      skipped: !result,
      exitCode: result?.exitCode ?? null,
      signal: result?.signal ?? null,
      timedOut: result?.timedOut ?? false,
      error: result?.error ?? null,
      leftProcesses: result?.leftProcesses ?? [],
      durationMs: result?.durationMs ?? 0,
      log: result ? logPath : null,
      ...(step.stdoutFile && result ? { stdout: `${step.dir}/${step.stdoutFile}` } : {}),
    });
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

  const failing = checks.filter((entry) => entry.result !== PASS);
  const verdict = failing.length === 0 ? 'GO' : 'NO-GO';
  const finished = Date.now();
  const summary = {
    schemaVersion: 1,
    date,
    verdict,
    startedAt: new Date(runStarted).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - runStarted,
    package: { name: manifest.name, version: manifest.version },
    git,
    machine,
    skipped: [...skip],
    rules: Object.fromEntries(
      RULE_ORDER.map((rule, index) => [rule, { number: index + 1, text: RULES[rule] }]),
    ),
    steps,
    checks,
    suites: data.suites,
    probe: data.probe ?? null,
    bench: data.bench ?? null,
    vsix: data.package ?? null,
    host: data.host ?? null,
    ui: data.ui ?? null,
  };
  writeJsonFile(path.join(outDir, 'tests', 'suites.json'), data.suites);
  writeJsonFile(path.join(outDir, 'summary.json'), summary);
  writeFileSync(path.join(outDir, 'GO-NO-GO.md'), goNoGoMarkdown(summary, outDir));
  console.log(
    `evidence: ${verdict} (${checks.length - failing.length} of ${checks.length} checks passed) in ${formatDuration(summary.durationMs)} → ${relOut}/GO-NO-GO.md`,
  );
  for (const entry of failing) console.log(`  ${entry.result}: ${entry.check}: ${entry.detail}`);
  process.exitCode = verdict === 'GO' ? 0 : 1;
}

await main();
