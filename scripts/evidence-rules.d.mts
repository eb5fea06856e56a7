// Types of scripts/evidence-rules.mjs, for the TypeScript tests that import it (test/unit/evidence-rules.test.ts).

export type RuleId = 'gate' | 'tests' | 'bench' | 'probe' | 'missing' | 'step';
export type CheckResult = 'pass' | 'FAIL' | 'MISSING';

export const PASS: 'pass';
export const FAIL: 'FAIL';
export const MISSING: 'MISSING';

export interface ReleaseStep {
  id: string;
  gate?: boolean;
  dir: string;
  command: string;
  args: string[];
  timeoutMs: number;
  stdoutFile?: string;
  pathFirst?: string;
}
export const RELEASE_STEPS: ReleaseStep[];

export const RULES: Record<RuleId, string>;
export const RULE_ORDER: RuleId[];
export function ruleNumber(rule: RuleId): number;

export const ANSI_ESCAPE: RegExp;
export function formatDuration(ms: number): string;
export function commandLine(step: Pick<ReleaseStep, 'command' | 'args'>): string;

/** One line of the GO-NO-GO table. */
export interface Check {
  rule: RuleId;
  check: string;
  source: string | null;
  result: CheckResult;
  detail: string;
}
export function check(
  rule: RuleId,
  name: string,
  source: string | null,
  result: CheckResult,
  detail: string,
): Check;

/** What a step gave: its checks and the data summary.json keeps (`suites` merged across steps). */
export interface Evidence {
  checks: Check[];
  data: Record<string, unknown>;
}

/** How a step ended; null where a step was skipped. */
export interface StepResult {
  exitCode: number | null;
  signal: string | null;
  error: string | null;
  timedOut: boolean;
  leftProcesses: string[];
  durationMs: number;
}

export interface SuiteCounts {
  passed: number;
  failed: number;
  pending: number;
  source?: string;
}

export interface SpecRun extends SuiteCounts {
  duration: string | null;
  describes: { title: string; passed: number; failed: number; pending: number }[];
  failures: { text: string }[];
}
export function parseSpecRuns(text: string): SpecRun[];
export function parseHostCounts(text: string, source: string): (SuiteCounts & { source: string }) | null;

export interface UiResults {
  passed: number;
  failed: number;
  results?: { ok: boolean; session?: string; name?: string; error?: unknown }[];
}
export function uiCounts(results: UiResults, source: string): SuiteCounts;

export function suiteNotRunCheck(name: string, source: string, why: string): Check;
export function suiteCheck(
  name: string,
  source: string,
  counts: SuiteCounts | null | undefined,
  noCountWhy: string,
): Check;
export function stepCheck(step: ReleaseStep, result: StepResult | null, logPath: string | null): Check;
export function unreadableEvidence(step: ReleaseStep, logPath: string, error: Error): Evidence;

export function mochaEvidence(source: string, runs: SuiteCounts[] | null): Evidence;
export function hostEvidence(
  logSource: string,
  host: { counts: SuiteCounts | null; timings: unknown; screenshots: string[] } | null,
): Evidence;
export function uiEvidence(
  source: string,
  ui: { counts: SuiteCounts | null; screenshots: string[]; failures: string[] } | null,
): Evidence;

export interface ProbeCli {
  kind: string;
  installed: boolean;
  path?: string | null;
  version?: string | null;
  testedRange?: string;
  versionInTestedRange?: boolean;
  error?: string | null;
}
export function probeEvidence(
  source: string,
  probe: { document: { clis?: ProbeCli[] } } | { error: string } | null,
): Evidence;

export interface BenchTarget {
  name: string;
  value: string;
  target?: string;
  pass: boolean;
}
export interface BenchLatest {
  date?: string;
  machine?: string;
  targets?: BenchTarget[];
  rows?: { name: string; value: number; unit?: string; target?: string; pass?: boolean }[];
  peers?: { skipped?: string };
}
export function benchTargets(latest: BenchLatest): BenchTarget[];
export function benchWrotePeers(latest: BenchLatest): boolean;
export function benchEvidence(
  source: string,
  bench: { latest: BenchLatest | null; resultsDoc: boolean; peersCopied: boolean } | null,
): Evidence;

export function packageEvidence(
  vsix: string,
  pkg: {
    bytes?: number;
    sha256?: string;
    entries?: { name: string; size: number }[];
    zipError?: string;
  } | null,
): Evidence;

export type Verdict = 'GO' | 'NO-GO';
export function verdictOf(checks: Check[]): Verdict;

export interface StepRecord {
  id: string;
  gate: boolean;
  command: string;
  argv: string[];
  skipped: boolean;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  error: string | null;
  leftProcesses: string[];
  durationMs: number;
  log: string | null;
  stdout?: string;
}
export function stepRecord(step: ReleaseStep, result: StepResult | null, logPath: string): StepRecord;

export interface ReleaseSummary {
  schemaVersion: 1;
  date: string;
  verdict: Verdict;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  package: { name: string; version: string };
  git: { commit: string | null; uncommitted: number; uncommittedFiles: string[] };
  machine: string;
  skipped: string[];
  rules: Record<RuleId, { number: number; text: string }>;
  steps: StepRecord[];
  checks: Check[];
  suites: Record<string, (SuiteCounts & { source?: string }) | null>;
  probe: unknown;
  bench: unknown;
  vsix: unknown;
  host: unknown;
  ui: unknown;
}
export function releaseSummary(run: {
  date: string;
  startedAt: number;
  finishedAt: number;
  manifest: { name: string; version: string };
  git: ReleaseSummary['git'];
  machine: string;
  skipped: string[];
  steps: StepRecord[];
  checks: Check[];
  data: Record<string, unknown> & { suites: ReleaseSummary['suites'] };
}): ReleaseSummary;
export function goNoGoMarkdown(summary: ReleaseSummary, isPresent: (source: string) => boolean): string;
