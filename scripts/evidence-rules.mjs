// The release steps and the written rules of `npm run evidence`: from what the steps produced (exit codes,
// suite counts, the probe's JSON, the bench targets) to checks, each naming its rule, to the GO / NO-GO
// verdict and GO-NO-GO.md. Pure: no files, no processes, so the tests import it; scripts/evidence.mjs runs
// the steps, reads their files and passes what it read here.

export const PASS = 'pass';
export const FAIL = 'FAIL';
export const MISSING = 'MISSING';

const MINUTE = 60_000;

/**
 * The steps in the order they run. `gate` marks the three gates of the README. Each step's combined
 * stdout and stderr go to `<dir>/<id>.log` in the release folder (the probe's stdout to probe.json);
 * `pathFirst` (relative to the repository) goes before PATH.
 */
export const RELEASE_STEPS = [
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
  },
  {
    id: 'host',
    dir: 'host',
    command: 'npm',
    args: ['run', 'test:host'],
    timeoutMs: 15 * MINUTE,
  },
  {
    id: 'ui',
    dir: 'ui',
    command: 'npm',
    args: ['run', 'test:ui'],
    timeoutMs: 20 * MINUTE,
  },
  {
    id: 'probe',
    dir: 'probe',
    command: process.execPath,
    args: ['dist/cli.js', 'probe', '--json'],
    stdoutFile: 'probe.json',
    // The pinned CLIs (devDependencies) are the ones the tests ran against: they come first on PATH.
    pathFirst: 'node_modules/.bin',
    timeoutMs: 2 * MINUTE,
  },
  {
    id: 'package',
    dir: 'package',
    command: 'npm',
    args: ['run', 'package'],
    timeoutMs: 10 * MINUTE,
  },
  // After the package and the host tests: the bench's extension section measures their .vsix and timings.
  {
    id: 'bench',
    dir: 'bench',
    command: 'npm',
    args: ['run', 'bench'],
    timeoutMs: 30 * MINUTE,
  },
];

/** The verdict rules, numbered as GO-NO-GO.md shows them; each check names the rule it belongs to. */
export const RULES = {
  gate: 'A gate (`npx tsc -p tsconfig.json`, `npm run verify`, `npm test`) exited non-zero → NO-GO.',
  tests: 'A test failed in any suite (unit, integration, host, UI), or a suite reported no count → NO-GO.',
  bench: 'A bench target has `pass: false` (or the bench gave no target) → NO-GO.',
  probe: 'The probe reports a CLI not installed, with an error, or outside its tested range → NO-GO.',
  missing: 'Evidence is missing: a step was skipped or did not run, or did not produce its files → NO-GO.',
  step: 'Any other step (host, UI, probe, package, bench) exited non-zero → NO-GO.',
};
export const RULE_ORDER = ['gate', 'tests', 'bench', 'probe', 'missing', 'step'];

/** The number GO-NO-GO.md gives `rule` (1-based). */
export function ruleNumber(rule) {
  return RULE_ORDER.indexOf(rule) + 1;
}

const FAILURE_TEXT_MAX = 1_500;

/** Terminal escape sequences (colours, line erasing). */
export const ANSI_ESCAPE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');

export function formatDuration(ms) {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms - minutes * 60_000) / 1000)} s`;
}

export function commandLine(step) {
  const command = step.command === process.execPath ? 'node' : step.command;
  return [command, ...step.args].join(' ');
}

/** A check: one line of the GO-NO-GO table. `source` is relative to the release folder. */
export function check(rule, name, source, result, detail) {
  return { rule, check: name, source, result, detail };
}

// --- Reading the test output ---------------------------------------------------------------------------

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
export function parseSpecRuns(text) {
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

/** The host runner's last `host: N passed, N failed, N skipped` line as counts, or null when it printed none. */
export function parseHostCounts(text, source) {
  const match = [...text.matchAll(/^host: (\d+) passed, (\d+) failed, (\d+) skipped$/gm)].at(-1);
  return match
    ? { passed: Number(match[1]), failed: Number(match[2]), pending: Number(match[3]), source }
    : null;
}

/** The counts of the UI runner's results.json, with its failed cases. */
export function uiCounts(results, source) {
  return {
    passed: results.passed,
    failed: results.failed,
    // The UI runner has no way to skip a case: every case passes or fails.
    pending: 0,
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

// --- The checks of each step ---------------------------------------------------------------------------

/** The check of a suite whose step did not run: its count is missing evidence (rule 5). */
export function suiteNotRunCheck(name, source, why) {
  return check('missing', `${name} tests: none failed`, source, MISSING, `no count: ${why}`);
}

/** The check of a suite whose step ran: a failed test, no test, or no count at all is rule 2. */
export function suiteCheck(name, source, counts, noCountWhy) {
  if (!counts)
    return check('tests', `${name} tests: none failed`, source, MISSING, `no count: ${noCountWhy}`);
  const detail = `${counts.passed} passed, ${counts.failed} failed, ${counts.pending} pending`;
  if (counts.failed > 0) return check('tests', `${name} tests: none failed`, source, FAIL, detail);
  if (counts.passed === 0)
    return check('tests', `${name} tests: none failed`, source, FAIL, `no test ran (${detail})`);
  return check('tests', `${name} tests: none failed`, source, PASS, detail);
}

/** The exit of a step: rule 1 for a gate, rule 6 for the others, rule 5 when it was skipped or did not start. */
export function stepCheck(step, result, logPath) {
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

/** When a step's files could not be read at all: its evidence is missing. */
export function unreadableEvidence(step, logPath, error) {
  return {
    checks: [
      check('missing', `${step.id}: results read`, logPath, MISSING, `could not read: ${error.message}`),
    ],
    data: {},
  };
}

/**
 * `npm test`: `runs` are its mocha runs in order (parseSpecRuns: unit, then integration), null when the step
 * did not run.
 */
export function mochaEvidence(source, runs) {
  if (!runs) {
    return {
      checks: ['unit', 'integration'].map((name) =>
        suiteNotRunCheck(name, source, 'the test step did not run'),
      ),
      data: { suites: { unit: null, integration: null } },
    };
  }
  const [unit, integration] = runs;
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
    data: {
      suites: {
        unit: unit ? { ...unit, source } : null,
        integration: integration ? { ...integration, source } : null,
      },
    },
  };
}

const HOST_TIMINGS = 'host: evidence/host/timings.json written';

/**
 * `npm run test:host`, null when it did not run; else its counts (parseHostCounts, null when absent), its
 * timings.json (null when this run did not write it) and the screenshots copied.
 */
export function hostEvidence(logSource, host) {
  if (!host) {
    return {
      checks: [
        suiteNotRunCheck('host', logSource, 'the host step did not run'),
        check('missing', HOST_TIMINGS, 'host/timings.json', MISSING, 'the host step did not run'),
      ],
      data: { suites: { host: null } },
    };
  }
  const { counts, timings, screenshots } = host;
  return {
    checks: [
      suiteCheck('host', logSource, counts, 'no `host: N passed, N failed, N skipped` line in the output'),
      check(
        'missing',
        HOST_TIMINGS,
        'host/timings.json',
        timings ? PASS : MISSING,
        timings ? 'copied' : 'not written by this run',
      ),
    ],
    data: { suites: { host: counts }, host: { timings, screenshots } },
  };
}

/**
 * `npm run test:ui`, null when it did not run; else its counts (uiCounts, null when results.json was not
 * written by this run), the screenshots and the failure files copied.
 */
export function uiEvidence(source, ui) {
  if (!ui) {
    return {
      checks: [
        suiteNotRunCheck('UI', source, 'the UI step did not run'),
        check('missing', 'UI: screenshots taken', 'ui/screenshots/', MISSING, 'the UI step did not run'),
      ],
      data: { suites: { ui: null } },
    };
  }
  const { counts, screenshots, failures } = ui;
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

const PROBE_KINDS = ['codex', 'gemini'];
const probeCheckName = (kind) => `probe: ${kind} installed and in its tested range`;

/**
 * `tandem-mcp probe --json`, null when it did not run; else `{ document }` (its parsed JSON) or `{ error }`
 * (why there is none).
 */
export function probeEvidence(source, probe) {
  if (!probe || !probe.document) {
    const why = probe ? `no probe JSON: ${probe.error}` : 'the probe step did not run';
    return {
      checks: PROBE_KINDS.map((kind) => check('missing', probeCheckName(kind), source, MISSING, why)),
      data: { probe: null },
    };
  }
  const { document } = probe;
  const checks = PROBE_KINDS.map((kind) => {
    const name = probeCheckName(kind);
    const entry = (document.clis ?? []).find((cli) => cli.kind === kind);
    if (!entry) return check('missing', name, source, MISSING, `no ${kind} entry in the probe JSON`);
    const detail = `${entry.installed ? `${entry.version ?? 'unknown version'} at ${entry.path}` : 'not installed'}; tested range ${entry.testedRange}${entry.error ? `; ${entry.error}` : ''}`;
    const ok = entry.installed === true && entry.versionInTestedRange === true && !entry.error;
    return check('probe', name, source, ok ? PASS : FAIL, detail);
  });
  return { checks, data: { probe: document } };
}

/** The bench targets: latest.json's `targets` when it has them, else its rows that carry a `pass`. */
export function benchTargets(latest) {
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

/**
 * Whether the bench run of `latest` wrote bench/results/peers.md: it does when its peers section ran and
 * measured (the section gives a `peers` report, with `skipped` set when the peers could not be installed).
 */
export function benchWrotePeers(latest) {
  return Boolean(latest.peers) && latest.peers.skipped === undefined;
}

const PEERS_TABLE = 'bench/peers.md';

/**
 * `npm run bench`, null when it did not run; else its latest.json (null when this run did not write it),
 * whether bench/RESULTS.md exists and whether a fresh bench/results/peers.md was copied.
 */
export function benchEvidence(source, bench) {
  if (!bench) {
    return {
      checks: [check('missing', 'bench: targets met', source, MISSING, 'the bench step did not run')],
      data: { bench: null },
    };
  }
  const { latest, resultsDoc, peersCopied } = bench;
  if (!latest) {
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
  // Only a run whose peers section measured writes the table; without it there is nothing to miss.
  if (benchWrotePeers(latest)) {
    checks.push(
      check(
        'missing',
        'bench: bench/results/peers.md written',
        PEERS_TABLE,
        peersCopied ? PASS : MISSING,
        peersCopied ? 'copied' : 'the peers section measured but this run wrote no peers.md',
      ),
    );
  }
  return {
    checks,
    data: {
      bench: {
        date: latest.date,
        machine: latest.machine,
        targets,
        resultsDoc: resultsDoc ? 'bench/RESULTS.md' : null,
        ...(peersCopied ? { peersTable: PEERS_TABLE } : {}),
      },
    },
  };
}

/**
 * `npm run package`, null when it did not run; else `{ vsix }` alone when this run did not write it, or with
 * `bytes` and `sha256` of the copy and its zip `entries` (or the `zipError` that kept them from being read).
 */
export function packageEvidence(vsix, pkg) {
  const source = `package/${vsix}.sha256`;
  const name = `package: ${vsix} built, checksum and file list written`;
  if (!pkg) {
    return {
      checks: [check('missing', name, source, MISSING, 'the package step did not run')],
      data: { package: null },
    };
  }
  if (pkg.sha256 === undefined) {
    return {
      checks: [check('missing', name, source, MISSING, `${vsix} was not written by this run`)],
      data: { package: null },
    };
  }
  if (pkg.zipError) {
    return { checks: [check('missing', name, source, FAIL, pkg.zipError)], data: { package: null } };
  }
  const { bytes, sha256, entries } = pkg;
  const detail = `${(bytes / 1024).toFixed(1)} KiB, ${entries.length} files, sha256 ${sha256}`;
  return {
    checks: [check('missing', name, source, PASS, detail)],
    data: {
      package: {
        file: `package/${vsix}`,
        bytes,
        sha256,
        checksumFile: source,
        fileList: `package/${vsix}.files.txt`,
        files: entries,
      },
    },
  };
}

// --- The verdict and GO-NO-GO.md -----------------------------------------------------------------------

/** GO when every check passed; anything else (FAIL or MISSING, under any rule) is NO-GO. */
export function verdictOf(checks) {
  return checks.every((entry) => entry.result === PASS) ? 'GO' : 'NO-GO';
}

/** What summary.json records of one step, from its definition and its result (null when skipped). */
export function stepRecord(step, result, logPath) {
  return {
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
  };
}

/**
 * summary.json: the run (`startedAt` and `finishedAt` as Date.now() values), its steps and checks in order
 * and the data the collectors gave, with the verdict the checks decide.
 */
export function releaseSummary({
  date,
  startedAt,
  finishedAt,
  manifest,
  git,
  machine,
  skipped,
  steps,
  checks,
  data,
}) {
  return {
    schemaVersion: 1,
    date,
    verdict: verdictOf(checks),
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
    durationMs: finishedAt - startedAt,
    package: { name: manifest.name, version: manifest.version },
    git,
    machine,
    skipped,
    rules: Object.fromEntries(
      RULE_ORDER.map((rule) => [rule, { number: ruleNumber(rule), text: RULES[rule] }]),
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
}

function cell(text) {
  return String(text ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\s*\n\s*/g, ' / ');
}

/**
 * GO-NO-GO.md of `summary`. `isPresent(source)` tells whether a file of the release folder exists: present
 * ones are linked, absent ones marked so.
 */
export function goNoGoMarkdown(summary, isPresent) {
  const sourceCell = (source) => {
    if (!source) return '';
    return isPresent(source) ? `[${cell(source)}](${source})` : `${cell(source)} (absent)`;
  };
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
    ...RULE_ORDER.map((rule) => `${ruleNumber(rule)}. ${RULES[rule]}`),
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
        ? `| ${name} | ${suite.passed} | ${suite.failed} | ${suite.pending} | ${sourceCell(suite.source)} |`
        : `| ${name} | | | | no count (see the checks) |`;
    }),
    '',
    '## Checks',
    '',
    '| # | check | rule | source | result | detail |',
    '| ---: | --- | ---: | --- | --- | --- |',
    ...summary.checks.map(
      (entry, index) =>
        `| ${index + 1} | ${cell(entry.check)} | ${ruleNumber(entry.rule)} | ${sourceCell(entry.source)} | ${entry.result === PASS ? 'pass' : `**${entry.result}**`} | ${cell(entry.detail)} |`,
    ),
    '',
    '## Verdict',
    '',
    summary.verdict === 'GO'
      ? `**GO**: all ${summary.checks.length} checks passed.`
      : `**NO-GO**: ${failing.length} of ${summary.checks.length} checks did not pass:`,
    ...failing.map(
      (entry) => `- ${entry.check} (rule ${ruleNumber(entry.rule)}): ${entry.result}, ${cell(entry.detail)}`,
    ),
    '',
  ];
  return lines.join('\n');
}
