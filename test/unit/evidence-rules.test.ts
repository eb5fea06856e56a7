// The written rules of the release verdict (scripts/evidence-rules.mjs, used by `npm run evidence`): a run where
// everything passed, then each fault alone, and the rule its GO-NO-GO.md line names.
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
// Types only (scripts/evidence-rules.d.mts); the module itself is loaded with import() in before().
import type * as EvidenceRules from '../../scripts/evidence-rules.mjs' with { 'resolution-mode': 'import' };

type BenchLatest = EvidenceRules.BenchLatest;
type Evidence = EvidenceRules.Evidence;
type ProbeCli = EvidenceRules.ProbeCli;
type ReleaseStep = EvidenceRules.ReleaseStep;
type ReleaseSummary = EvidenceRules.ReleaseSummary;
type StepResult = EvidenceRules.StepResult;
type SuiteCounts = EvidenceRules.SuiteCounts;
type Rules = typeof EvidenceRules;

// The .mjs itself, not a compiled copy: out/test/unit/ → the repository.
const RULES_MODULE = path.resolve(__dirname, '..', '..', '..', 'scripts', 'evidence-rules.mjs');
const VSIX = 'tandem-0.1.0.vsix';

let rules: Rules;

/** What each step of one release run gave, as scripts/evidence.mjs hands it to the rules. */
interface Run {
  /** By step id; null: skipped with --skip. */
  results: Record<string, StepResult | null>;
  /** The mocha runs of `npm test`: unit, then integration. */
  mochaRuns: SuiteCounts[];
  host: { counts: SuiteCounts | null; timings: unknown; screenshots: string[] };
  ui: { counts: SuiteCounts | null; screenshots: string[]; failures: string[] };
  probe: { document: { clis: ProbeCli[] } } | { error: string };
  bench: { latest: BenchLatest | null; resultsDoc: boolean; peersCopied: boolean };
  pkg: { bytes?: number; sha256?: string; entries?: { name: string; size: number }[]; zipError?: string };
}

const exited = (exitCode: number): StepResult => ({
  exitCode,
  signal: null,
  error: null,
  timedOut: false,
  leftProcesses: [],
  durationMs: 1_500,
});

function cli(kind: string, version: string, testedRange: string): ProbeCli {
  return {
    kind,
    installed: true,
    path: `/repo/node_modules/.bin/${kind}`,
    version,
    testedRange,
    versionInTestedRange: true,
    error: null,
  };
}

/** A run where every step exited 0 and everything it wrote is in order. */
function passingRun(): Run {
  return {
    results: Object.fromEntries(rules.RELEASE_STEPS.map((step) => [step.id, exited(0)])),
    mochaRuns: [
      { passed: 880, failed: 0, pending: 0 },
      { passed: 78, failed: 0, pending: 0 },
    ],
    host: {
      counts: { passed: 31, failed: 0, pending: 0 },
      timings: { activateMs: 900 },
      screenshots: ['host/a.png'],
    },
    ui: { counts: { passed: 8, failed: 0, pending: 0 }, screenshots: ['ui/screenshots/a.png'], failures: [] },
    probe: {
      document: {
        clis: [cli('codex', '0.169.0', '>=0.169.0 <0.170.0'), cli('gemini', '0.61.0', '>=0.61.0 <0.62.0')],
      },
    },
    bench: {
      latest: {
        date: '2026-11-25T13:28:00.155Z',
        machine: '2 x cpu',
        targets: [
          { name: 'added per call p50 (true)', value: '0.09 ms', target: '<= 2 ms', pass: true },
          { name: 'run_list over HTTP with 100k runs p50', value: '1.87 ms', target: '<= 20 ms', pass: true },
        ],
        peers: {},
      },
      resultsDoc: true,
      peersCopied: true,
    },
    pkg: {
      bytes: 411_443,
      sha256: 'ab'.repeat(32),
      entries: [{ name: 'extension/package.json', size: 9000 }],
    },
  };
}

function stepNamed(id: string): ReleaseStep {
  const step = rules.RELEASE_STEPS.find((candidate) => candidate.id === id);
  assert.ok(step, `no release step ${id}`);
  return step;
}

/** What the collector of `step` gives for `run`, as scripts/evidence.mjs calls it; undefined: it has none. */
function collected(step: ReleaseStep, ran: boolean, logPath: string, run: Run): Evidence | undefined {
  switch (step.id) {
    case 'test':
      return rules.mochaEvidence(logPath, ran ? run.mochaRuns : null);
    case 'host':
      return rules.hostEvidence(logPath, ran ? run.host : null);
    case 'ui':
      return rules.uiEvidence('ui/results.json', ran ? run.ui : null);
    case 'probe':
      return rules.probeEvidence('probe/probe.json', ran ? run.probe : null);
    case 'package':
      return rules.packageEvidence(VSIX, ran ? run.pkg : null);
    case 'bench':
      return rules.benchEvidence('bench/latest.json', ran ? run.bench : null);
    default:
      return undefined;
  }
}

/** The summary of `run`: its steps' checks in order, as scripts/evidence.mjs assembles them, and the verdict. */
function evaluate(run: Run): ReleaseSummary {
  const steps = [];
  const checks = [];
  const suites: ReleaseSummary['suites'] = {};
  for (const step of rules.RELEASE_STEPS) {
    const logPath = `${step.dir}/${step.id}.log`;
    const result = run.results[step.id];
    assert.ok(result !== undefined, `the run gives no result for step ${step.id}`);
    checks.push(rules.stepCheck(step, result, result ? logPath : null));
    const evidence = collected(step, result !== null, logPath, run);
    if (evidence) {
      checks.push(...evidence.checks);
      Object.assign(suites, evidence.data.suites);
    }
    steps.push(rules.stepRecord(step, result, logPath));
  }
  return rules.releaseSummary({
    date: '2026-11-25',
    startedAt: Date.parse('2026-11-25T13:00:00Z'),
    finishedAt: Date.parse('2026-11-25T13:30:00Z'),
    manifest: { name: 'tandem', version: '0.1.0' },
    git: { commit: '445ca8f'.padEnd(40, '0'), uncommitted: 0, uncommittedFiles: [] },
    machine: '2 x cpu',
    skipped: [],
    steps,
    checks,
    data: { suites },
  });
}

/** The checks that did not pass, each as `rule N: <check>`. */
function notPassed(summary: ReleaseSummary): string[] {
  return summary.checks
    .filter((entry) => entry.result !== rules.PASS)
    .map((entry) => `rule ${rules.ruleNumber(entry.rule)}: ${entry.check}`);
}

/** `run` is NO-GO, exactly `expected` did not pass, and GO-NO-GO.md says so with the same rule numbers. */
function assertNoGo(run: Run, expected: string[]): void {
  const summary = evaluate(run);
  assert.equal(summary.verdict, 'NO-GO');
  assert.deepEqual(notPassed(summary), expected);
  const markdown = rules.goNoGoMarkdown(summary, () => true);
  assert.ok(
    markdown.includes(`**NO-GO**: ${expected.length} of ${summary.checks.length} checks did not pass:`),
    markdown,
  );
  for (const line of expected) {
    const [, rule, name] = /^rule (\d+): (.*)$/s.exec(line) ?? [];
    assert.ok(markdown.includes(`- ${name} (rule ${rule}): `), `GO-NO-GO.md lacks the line of ${line}`);
  }
}

const gateCheck = (command: string): string => `gate: \`${command}\` exited 0`;
const PROBE_CODEX = 'probe: codex installed and in its tested range';
const PROBE_GEMINI = 'probe: gemini installed and in its tested range';

describe('release verdict rules (scripts/evidence-rules.mjs)', () => {
  before(async () => {
    rules = (await import(pathToFileURL(RULES_MODULE).href)) as Rules;
  });

  it('numbers the rules as GO-NO-GO.md lists them, with GO last', () => {
    assert.deepEqual(
      rules.RULE_ORDER.map((rule) => [rule, rules.ruleNumber(rule)]),
      [
        ['gate', 1],
        ['tests', 2],
        ['bench', 3],
        ['probe', 4],
        ['missing', 5],
        ['step', 6],
      ],
    );
    const markdown = rules.goNoGoMarkdown(evaluate(passingRun()), () => true);
    assert.ok(markdown.includes(`\n1. ${rules.RULES.gate}\n2. ${rules.RULES.tests}\n`), markdown);
    assert.ok(markdown.includes(`\n6. ${rules.RULES.step}\n7. Otherwise → GO.\n`), markdown);
  });

  it('runs the three gates of the README as gates, then the other steps', () => {
    assert.deepEqual(
      rules.RELEASE_STEPS.map((step) => step.id),
      ['tsc', 'verify', 'test', 'host', 'ui', 'probe', 'package', 'bench'],
    );
    assert.deepEqual(
      rules.RELEASE_STEPS.filter((step) => step.gate).map((step) => rules.commandLine(step)),
      ['npx tsc -p tsconfig.json', 'npm run verify', 'npm test'],
    );
  });

  it('gives GO when every step exited 0, no test failed, every target passed and both CLIs are in range', () => {
    const summary = evaluate(passingRun());
    assert.deepEqual(notPassed(summary), []);
    assert.equal(summary.verdict, 'GO');
    // 8 step exits, 2 mocha suites, host suite + timings, UI suite + screenshots, 2 CLIs, 1 package,
    // 2 bench targets + peers.md: every collector contributed, and every rule has a check that passed.
    assert.equal(summary.checks.length, 20);
    assert.deepEqual(new Set(summary.checks.map((entry) => entry.rule)), new Set(rules.RULE_ORDER));
    assert.deepEqual(
      Object.entries(summary.suites).map(([name, suite]) => [name, suite?.passed]),
      [
        ['unit', 880],
        ['integration', 78],
        ['host', 31],
        ['ui', 8],
      ],
    );
    const markdown = rules.goNoGoMarkdown(summary, () => true);
    assert.ok(markdown.includes('\n**GO**: all 20 checks passed.\n'), markdown);
  });

  it('does not let pending tests decide the verdict', () => {
    const run = passingRun();
    run.mochaRuns[0] = { passed: 870, failed: 0, pending: 10 };
    assert.equal(evaluate(run).verdict, 'GO');
  });

  describe('rule 1: a gate exited non-zero', () => {
    for (const command of ['npx tsc -p tsconfig.json', 'npm run verify', 'npm test']) {
      it(`NO-GO when \`${command}\` exits 1`, () => {
        const run = passingRun();
        const gate = rules.RELEASE_STEPS.find((step) => rules.commandLine(step) === command);
        assert.ok(gate);
        run.results[gate.id] = exited(1);
        assertNoGo(run, [`rule 1: ${gateCheck(command)}`]);
      });
    }

    it('NO-GO when a gate timed out and was stopped', () => {
      const run = passingRun();
      run.results.test = { ...exited(0), exitCode: null, signal: 'SIGTERM', timedOut: true };
      assertNoGo(run, [`rule 1: ${gateCheck('npm test')}`]);
      const [check] = evaluate(run).checks.filter((entry) => entry.result !== rules.PASS);
      assert.equal(check?.detail, 'timed out after 40 min 0 s; stopped');
    });
  });

  describe('rule 2: a test failed, or a suite reported no count', () => {
    it('NO-GO when a unit test failed', () => {
      const run = passingRun();
      run.mochaRuns[0] = { passed: 879, failed: 1, pending: 0 };
      assertNoGo(run, ['rule 2: unit tests: none failed']);
    });

    it('NO-GO when an integration test failed', () => {
      const run = passingRun();
      run.mochaRuns[1] = { passed: 77, failed: 1, pending: 0 };
      assertNoGo(run, ['rule 2: integration tests: none failed']);
    });

    it('NO-GO when a host test failed', () => {
      const run = passingRun();
      run.host.counts = { passed: 30, failed: 1, pending: 0 };
      assertNoGo(run, ['rule 2: host tests: none failed']);
    });

    it('NO-GO when a UI case failed', () => {
      const run = passingRun();
      run.ui.counts = { passed: 7, failed: 1, pending: 0 };
      assertNoGo(run, ['rule 2: UI tests: none failed']);
    });

    it('NO-GO when `npm test` printed no mocha summary at all', () => {
      const run = passingRun();
      run.mochaRuns = [];
      assertNoGo(run, ['rule 2: unit tests: none failed', 'rule 2: integration tests: none failed']);
    });

    it('NO-GO when `npm test` printed the unit summary only', () => {
      const run = passingRun();
      run.mochaRuns = run.mochaRuns.slice(0, 1);
      assertNoGo(run, ['rule 2: integration tests: none failed']);
    });

    it('NO-GO when the host runner printed no count', () => {
      const run = passingRun();
      run.host.counts = null;
      assertNoGo(run, ['rule 2: host tests: none failed']);
    });

    it('NO-GO when the UI runner wrote no results', () => {
      const run = passingRun();
      run.ui.counts = null;
      assertNoGo(run, ['rule 2: UI tests: none failed']);
    });

    it('NO-GO when a suite counted no test at all', () => {
      const run = passingRun();
      run.mochaRuns[1] = { passed: 0, failed: 0, pending: 3 };
      assertNoGo(run, ['rule 2: integration tests: none failed']);
    });
  });

  describe('rule 3: a bench target failed, or the bench gave none', () => {
    it('NO-GO when a target has pass: false', () => {
      const run = passingRun();
      const [first] = run.bench.latest?.targets ?? [];
      assert.ok(first);
      first.pass = false;
      assertNoGo(run, ['rule 3: bench: added per call p50 (true)']);
    });

    it('NO-GO when latest.json states no target', () => {
      const run = passingRun();
      if (run.bench.latest) run.bench.latest.targets = [];
      assertNoGo(run, ['rule 3: bench: targets met']);
    });

    it('reads the targets from the rows when latest.json has no `targets`', () => {
      const run = passingRun();
      run.bench.latest = {
        peers: {},
        rows: [
          { name: 'bare spawn p50 (true)', value: 1.2, unit: 'ms' },
          { name: 'added per call p50 (true)', value: 3.1, unit: 'ms', target: '<= 2 ms', pass: false },
        ],
      };
      assertNoGo(run, ['rule 3: bench: added per call p50 (true)']);
    });
  });

  describe('rule 4: a CLI not installed, with an error, or out of its tested range', () => {
    const probing = (change: (clis: ProbeCli[]) => void): Run => {
      const run = passingRun();
      assert.ok('document' in run.probe);
      change(run.probe.document.clis);
      return run;
    };

    it('NO-GO when codex is not installed', () => {
      const run = probing(([codex]) => {
        Object.assign(codex ?? {}, {
          installed: false,
          path: null,
          version: null,
          versionInTestedRange: false,
        });
      });
      assertNoGo(run, [`rule 4: ${PROBE_CODEX}`]);
    });

    it('NO-GO when gemini is outside its tested range', () => {
      const run = probing(([, gemini]) => {
        Object.assign(gemini ?? {}, { version: '0.62.0', versionInTestedRange: false });
      });
      assertNoGo(run, [`rule 4: ${PROBE_GEMINI}`]);
    });

    it('NO-GO when the probe reports an error for a CLI in range', () => {
      const run = probing(([codex]) => {
        Object.assign(codex ?? {}, { error: '`codex --version` timed out' });
      });
      assertNoGo(run, [`rule 4: ${PROBE_CODEX}`]);
    });
  });

  describe('rule 5: evidence is missing', () => {
    const stepExit = (id: string): string => {
      const step = stepNamed(id);
      return `${step.gate ? 'gate' : step.id}: \`${rules.commandLine(step)}\` exited 0`;
    };

    for (const id of ['tsc', 'verify', 'test', 'host', 'ui', 'probe', 'package', 'bench']) {
      it(`NO-GO when the ${id} step was skipped, and everything it would have given is missing`, () => {
        const run = passingRun();
        run.results[id] = null;
        const summary = evaluate(run);
        assert.equal(summary.verdict, 'NO-GO');
        const failing = notPassed(summary);
        assert.equal(failing[0], `rule 5: ${stepExit(id)}`);
        assert.deepEqual(
          failing.filter((line) => !line.startsWith('rule 5: ')),
          [],
        );
      });
    }

    it('NO-GO naming every check of a skipped UI step', () => {
      const run = passingRun();
      run.results.ui = null;
      assertNoGo(run, [
        `rule 5: ${stepExit('ui')}`,
        'rule 5: UI tests: none failed',
        'rule 5: UI: screenshots taken',
      ]);
    });

    it('NO-GO when a step did not start', () => {
      const run = passingRun();
      run.results.package = { ...exited(0), exitCode: null, error: 'spawn npm ENOENT' };
      assertNoGo(run, [`rule 5: ${stepExit('package')}`]);
    });

    it('NO-GO when the host tests wrote no timings.json', () => {
      const run = passingRun();
      run.host.timings = null;
      assertNoGo(run, ['rule 5: host: evidence/host/timings.json written']);
    });

    it('NO-GO when the UI tests took no screenshot', () => {
      const run = passingRun();
      run.ui.screenshots = [];
      assertNoGo(run, ['rule 5: UI: screenshots taken']);
    });

    it('NO-GO when the probe wrote no JSON', () => {
      const run = passingRun();
      run.probe = { error: 'Unexpected end of JSON input' };
      assertNoGo(run, [`rule 5: ${PROBE_CODEX}`, `rule 5: ${PROBE_GEMINI}`]);
    });

    it('NO-GO when the probe JSON has no entry for a CLI', () => {
      const run = passingRun();
      assert.ok('document' in run.probe);
      run.probe.document.clis = run.probe.document.clis.filter((entry) => entry.kind !== 'gemini');
      assertNoGo(run, [`rule 5: ${PROBE_GEMINI}`]);
    });

    it('NO-GO when the bench wrote no latest.json', () => {
      const run = passingRun();
      run.bench.latest = null;
      assertNoGo(run, ['rule 5: bench: targets met']);
    });

    it('NO-GO when the bench measured the peers but no fresh peers.md was copied', () => {
      const run = passingRun();
      run.bench.peersCopied = false;
      assertNoGo(run, ['rule 5: bench: bench/results/peers.md written']);
    });

    it('NO-GO when the package step wrote no .vsix', () => {
      const run = passingRun();
      run.pkg = {};
      assertNoGo(run, [`rule 5: package: ${VSIX} built, checksum and file list written`]);
    });

    it('NO-GO when the .vsix is not a readable zip', () => {
      const run = passingRun();
      run.pkg = { bytes: 7, sha256: 'cd'.repeat(32), zipError: `${VSIX} is not a zip file` };
      assertNoGo(run, [`rule 5: package: ${VSIX} built, checksum and file list written`]);
    });
  });

  describe('rule 6: another step exited non-zero', () => {
    for (const id of ['host', 'ui', 'probe', 'package', 'bench']) {
      it(`NO-GO when the ${id} step exits 1`, () => {
        const run = passingRun();
        run.results[id] = exited(1);
        const step = stepNamed(id);
        assertNoGo(run, [`rule 6: ${id}: \`${rules.commandLine(step)}\` exited 0`]);
      });
    }

    it('NO-GO when a step timed out and was stopped', () => {
      const run = passingRun();
      run.results.bench = { ...exited(0), exitCode: null, signal: 'SIGTERM', timedOut: true };
      assertNoGo(run, ['rule 6: bench: `npm run bench` exited 0']);
      const [check] = evaluate(run).checks.filter((entry) => entry.result !== rules.PASS);
      assert.equal(check?.detail, 'timed out after 30 min 0 s; stopped');
    });
  });

  describe('bench/results/peers.md', () => {
    const peersChecks = (summary: ReleaseSummary): string[] =>
      summary.checks.filter((entry) => entry.source === 'bench/peers.md').map((entry) => entry.result);

    it('is expected, and passes, when the peers section measured and the table was copied', () => {
      assert.deepEqual(peersChecks(evaluate(passingRun())), [rules.PASS]);
    });

    it('is not expected from a bench that ran without its peers section', () => {
      const run = passingRun();
      if (run.bench.latest) delete run.bench.latest.peers;
      run.bench.peersCopied = false;
      const summary = evaluate(run);
      assert.deepEqual(peersChecks(summary), []);
      assert.equal(summary.verdict, 'GO');
    });

    it('is not expected when the peers could not be installed (that failure is a bench target)', () => {
      const run = passingRun();
      assert.ok(run.bench.latest);
      run.bench.latest.peers = { skipped: 'npm ci --prefix bench/peers failed (exit 1): E404' };
      run.bench.latest.targets?.push({
        name: 'peers: skipped, npm ci --prefix bench/peers failed (exit 1): E404',
        value: '0',
        target: 'installed',
        pass: false,
      });
      run.bench.peersCopied = false;
      assertNoGo(run, ['rule 3: bench: peers: skipped, npm ci --prefix bench/peers failed (exit 1): E404']);
    });
  });
});
