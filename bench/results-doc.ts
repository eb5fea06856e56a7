// bench/RESULTS.md, the committed report of one whole `npm run bench`: rendered from the run's report (the
// object written to bench/results/latest.json) and formatted with the repository's Prettier settings, so
// `prettier --check` passes on it. `node out/bench/results-doc.js` renders it again from latest.json.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { format, resolveConfig } from 'prettier';
import type { ExtensionFigures } from './extension-figures';
import { METHOD_NOTES, PEER_NOTES, type PeersMeasure, type PeersReport } from './peers';
import type { SubjectId } from './peers/servers';
import type { BenchRow } from './server';
import { round } from './stats';

/** The sections of `npm run bench` (bench/run.ts), in the order they run; a whole run has all of them. */
export const SECTIONS = ['exec', 'adapters', 'sandbox', 'server', 'sessions', 'peers', 'extension'] as const;

/** One stated target, as scripts/evidence.mjs reads it: `pass: false` is red there. */
export interface Target {
  name: string;
  /** The measured value with its unit, for people. */
  value: string;
  target: string;
  pass: boolean;
  /** The measured value as a number, and its unit. */
  measured: number;
  unit: string;
}

/** bench/results/latest.json. */
export interface BenchReport {
  date: string;
  machine: string;
  calls: number;
  rows: BenchRow[];
  machineInfo: {
    cpu: string;
    cores: number;
    memoryGiB: number;
    node: string;
    platform: string;
    arch: string;
    /** 1-minute load averages at the start and the end of the run. */
    loadAverageStart: number;
    loadAverageEnd: number;
  };
  sections: string[];
  stepRuns: number;
  wallSeconds: number;
  targets: Target[];
  peers?: PeersReport;
  extension?: ExtensionFigures;
}

export const RESULTS_DOC = (repoRoot: string): string => path.join(repoRoot, 'bench', 'RESULTS.md');

const escape = (text: string): string => text.replace(/\|/g, '\\|');
const verdict = (pass: boolean | undefined): string => (pass === undefined ? '' : pass ? 'PASS' : 'FAIL');
const kib = (bytes: number): string => `${round(bytes / 1024, 1)} KiB`;
/** `2026-11-25T12:31:05.123Z` as `2026-11-25 12:31 UTC`. */
const when = (iso: string): string =>
  iso === '' ? 'unknown time' : `${iso.slice(0, 16).replace('T', ' ')} UTC`;

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.map(escape).join(' | ')} |`),
  ].join('\n');
}

function findRow(report: BenchReport, name: string): BenchRow | undefined {
  return report.rows.find((row) => row.name === name);
}

function findRowStarting(report: BenchReport, prefix: string): BenchRow | undefined {
  return report.rows.find((row) => row.name.startsWith(prefix));
}

// The comparison ------------------------------------------------------------------------------------------

/** Two cells as one "codex / gemini" cell; a shared text after the numbers is said once. */
function pair(codex: string | undefined, gemini: string | undefined): string {
  const a = codex ?? '—';
  const b = gemini ?? '—';
  if (a === b) return a;
  const split = (text: string): [string, string] | undefined => {
    const match = /^(-?\d[\d.]*)(.*)$/.exec(text);
    return match ? [match[1] as string, match[2] as string] : undefined;
  };
  const [left, right] = [split(a), split(b)];
  if (left && right && left[1] === right[1] && !left[1].startsWith('/')) {
    return `${left[0]} / ${right[0]}${left[1]}`;
  }
  return `${a} / ${b}`;
}

interface ComparisonColumn {
  header: string;
  cell: (measure: PeersMeasure) => string;
  tandem: SubjectId[];
}

function comparisonColumns(peers: PeersReport): ComparisonColumn[] {
  const labelOf = (id: SubjectId): string => peers.columns.find((column) => column.id === id)?.label ?? id;
  const both = (header: string, codex: SubjectId, gemini: SubjectId): ComparisonColumn => ({
    header,
    cell: (measure) => pair(measure.cells[codex]?.text, measure.cells[gemini]?.text),
    tandem: codex.startsWith('tandem-') ? [codex, gemini] : [],
  });
  const one = (id: SubjectId): ComparisonColumn => ({
    header: labelOf(id),
    cell: (measure) => measure.cells[id]?.text ?? '—',
    tandem: [],
  });
  return [
    both('bare spawn (floor)', 'floor-codex', 'floor-gemini'),
    both('Tandem stdio', 'tandem-codex', 'tandem-gemini'),
    both('Tandem HTTP', 'tandem-http-codex', 'tandem-http-gemini'),
    one('codex-mcp-server'),
    one('gemini-mcp-tool'),
  ];
}

function comparison(peers: PeersReport): string {
  if (peers.skipped !== undefined) return `Not measured: ${peers.skipped}.`;
  const columns = comparisonColumns(peers);
  const rows = peers.measures.map((measure) => {
    const unit = measure.unit && !measure.unit.includes('=') ? ` (${measure.unit})` : '';
    const verdicts = Object.values(measure.pass ?? {});
    const result = verdicts.length === 0 ? undefined : verdicts.every(Boolean);
    return [
      `${measure.title}${unit}`,
      ...columns.map((column) => column.cell(measure)),
      measure.target ?? '',
      verdict(result),
    ];
  });
  return table(['measure', ...columns.map((column) => column.header), 'Tandem target', 'result'], rows);
}

// Tandem only -----------------------------------------------------------------------------------------------

function tandemOnly(report: BenchReport): string {
  const rows: string[][] = [];
  const add = (measure: string, row: BenchRow | undefined, source: string, fallbackTarget = ''): void => {
    rows.push([
      measure,
      row === undefined ? 'not measured' : `${row.value} ${row.unit}`,
      row?.target ?? fallbackTarget,
      verdict(row?.pass),
      source,
    ]);
  };
  const exec = 'exec section: bare spawn and helper interleaved, same run';
  add(
    'exec helper: added per call p50 over a bare spawn (node echo fixture)',
    findRow(report, 'added per call p50 (node echo fixture)'),
    exec,
    '<= 2 ms',
  );
  add(
    'exec helper: added per call p95 (node echo fixture)',
    findRow(report, 'added per call p95 (node echo fixture)'),
    exec,
  );
  add(
    'exec helper: added per call p50 over a bare spawn (`true`)',
    findRow(report, 'added per call p50 (true)'),
    exec,
    '<= 2 ms',
  );
  add(
    'exec helper: 1 GiB flood, peak RSS growth over the bare floor',
    findRow(report, 'flood 1 GiB peak RSS growth added by the helper over the bare floor'),
    'exec section: each in a fresh process',
    '<= 16 MiB',
  );
  add(
    'codex adapter: step overhead p50 over the bare CLI (offline model)',
    findRow(report, 'codex adapter overhead p50'),
    'adapters section, real CLI',
  );
  add(
    'gemini adapter: step overhead p50 over the bare CLI (offline model)',
    findRow(report, 'gemini adapter overhead p50'),
    'adapters section, real CLI',
  );
  add(
    'run_list over HTTP, 100k runs in the history, p50',
    findRow(report, 'run_list over HTTP with 100k runs p50'),
    'server section, in process',
    '<= 20 ms',
  );
  add(
    'run_list over HTTP, 100k runs in the history, p95',
    findRow(report, 'run_list over HTTP with 100k runs p95'),
    'server section, in process',
  );
  add(
    'MCP HTTP: RSS growth after 10,000 abandoned sessions (cap 64, idle 30 min)',
    findRowStarting(report, 'HTTP sessions: RSS growth after 10000 abandoned sessions'),
    'sessions section: server in a fresh process, baseline in the same run',
    '<= 16 MiB',
  );
  add('open a history of 100k runs', findRow(report, 'open a store of 100k runs'), 'server section');
  add(
    'run_list filtered by status (scans all 100k), p50',
    findRow(report, 'RunStore.list status=failed (scans all 100k) p50'),
    'server section',
  );
  add(
    'task_dispatch overhead p50 over a bare spawn (in-memory client)',
    findRow(report, 'dispatch overhead p50 over the bare spawn'),
    'server section, fake codex',
  );
  add(
    '32 concurrent strategy_run single_worker, wall',
    findRowStarting(report, '32 concurrent strategy_run single_worker'),
    'server section, concurrency 4',
  );

  const editor = report.extension?.editor;
  const editorSource = editor ? `${editor.file}, written ${when(editor.modified)} by npm run test:host` : '';
  const editorRow = (measure: string, value: number | undefined): void => {
    rows.push([
      measure,
      editor === undefined
        ? 'run npm run test:host first'
        : value === undefined
          ? 'not in the file'
          : `${value} ms`,
      '',
      '',
      editorSource,
    ]);
  };
  editorRow('editor: activation, module load to end of activate()', editor?.activationMs);
  editorRow('editor: of which inside activate()', editor?.inActivateMs);
  editorRow("editor: module load to the editor's first tools/list", editor?.firstToolsListMs);
  editorRow('editor: "start servers" command until the tools are live', editor?.startServerToLiveToolsMs);

  const bundles = report.extension?.bundles;
  for (const file of bundles?.files ?? []) {
    rows.push([
      `bundle size: ${file.path}`,
      kib(file.bytes),
      '',
      '',
      `${bundles?.source}, ${when(bundles?.builtAt ?? '')}`,
    ]);
  }
  if (bundles && bundles.files.length === 0)
    rows.push(['bundle sizes', 'not measured', '', '', bundles.source]);
  const vsix = report.extension?.vsix;
  const vsixRow = report.rows.find((row) => row.name.startsWith('package '));
  rows.push([
    'package size: .vsix',
    vsix ? `${kib(vsix.bytes)} (${vsix.bytes} bytes)` : 'run npm run package first',
    '< 2 MB',
    verdict(vsixRow?.pass),
    vsix
      ? `${vsix.file}, written ${when(vsix.modified)} by npm run package`
      : 'no .vsix in the repository root',
  ]);
  return table(['measure', 'value', 'target', 'result', 'source'], rows);
}

// The document ------------------------------------------------------------------------------------------

function howToRead(report: BenchReport): string {
  const peers = report.peers;
  const { cores } = report.machineInfo;
  return [
    'Every number comes from the one run named above: each baseline is measured in the same run, never',
    'taken from an older one. Times are wall-clock; p50 is the median of the samples, p95 the 95th',
    'percentile. The **bare spawn** is the floor: the same fake CLI started with `child_process.spawn` and no',
    'server, so a column minus the floor is what that server adds. The comparison drives fake CLIs',
    '(test/fixtures/peer-fakes: they answer at once, or hang, flood or dump their environment on request),',
    'so it measures the servers, not a model. In the bare-spawn and Tandem columns a cell reads **codex /',
    'gemini**, and one value stands for both; codex-mcp-server drives only codex, gemini-mcp-tool only',
    "gemini. A **target** comes from the earlier issues or from Tandem's design and is judged on Tandem",
    'only (in the comparison, all four Tandem cells must meet it); rows without one are there to compare.',
    'The <= 2 ms and 1 GiB flood <= 16 MiB targets belong to the exec helper (Tandem only table): a server round',
    'trip adds MCP framing and run bookkeeping on top and has no target. The abandoned-sessions <= 16 MiB target',
    'holds with the default session cap (64) and idle time (30 min); without a cap each session keeps ~110 KiB.',
    `On ${cores} cores the p95s and concurrent wall times move by tens of percent between runs, the p50s`,
    'less, the yes/no rows and process counts not at all; the load average at the top shows other work',
    `on the machine.${peers ? ` ${peers.calls} calls per column after 3 warm-up rounds; the hang cap is ${peers.hangCapSeconds} s.` : ''}`,
  ].join(' ');
}

export async function renderResultsDoc(repoRoot: string, report: BenchReport): Promise<string> {
  const machine = report.machineInfo;
  const failed = report.targets.filter((target) => !target.pass);
  const summary =
    failed.length === 0
      ? `All ${report.targets.length} targets met.`
      : `${failed.length} of ${report.targets.length} targets FAILED: ${failed.map((target) => `${target.name} (${target.value}, target ${target.target})`).join('; ')}.`;
  const parts = [
    '# Bench results',
    '',
    '<!-- Written by `npm run bench` (bench/results-doc.ts) from bench/results/latest.json: do not edit by hand. -->',
    '',
    `- **Date:** ${when(report.date)}: one \`npm run bench\` (sections ${report.sections.join(', ')}), ${round(report.wallSeconds / 60, 1)} min in all`,
    `- **Machine:** ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.platform} ${machine.arch}; 1-minute load average ${machine.loadAverageStart} at the start, ${machine.loadAverageEnd} at the end`,
    `- **Node:** ${machine.node}`,
    `- **Targets:** ${summary}`,
    '',
    '## How to read this',
    '',
    howToRead(report),
    '',
    '## Tandem beside codex-mcp-server and gemini-mcp-tool',
    '',
    'The same fake CLIs, the same environment, the same MCP client, one server after another (the hang on all at once).',
    '',
    report.peers ? comparison(report.peers) : 'Not measured (the peers section did not run).',
    '',
    'The hostile prompt, as a JSON string:',
    '',
    '```json',
    JSON.stringify(report.peers?.hostilePrompt ?? ''),
    '```',
    '',
    '## Tandem only',
    '',
    tandemOnly(report),
    '',
    '## How each server runs its CLI',
    '',
    'Read from each published package (dist/):',
    '',
    PEER_NOTES,
    '',
    METHOD_NOTES,
    '',
    'Every row of the run: bench/results/latest.md and latest.json (with `targets` for `npm run evidence`);',
    'every column of the comparison: bench/results/peers.md. Those files are not committed; this one is.',
    '',
  ];
  const options = (await resolveConfig(RESULTS_DOC(repoRoot))) ?? {};
  return format(parts.join('\n'), { ...options, parser: 'markdown' });
}

export async function writeResultsDoc(repoRoot: string, report: BenchReport): Promise<void> {
  writeFileSync(RESULTS_DOC(repoRoot), await renderResultsDoc(repoRoot, report));
}

if (require.main === module) {
  const root = path.resolve(__dirname, '..', '..');
  const report = JSON.parse(
    readFileSync(path.join(root, 'bench', 'results', 'latest.json'), 'utf8'),
  ) as BenchReport;
  // Only a run of every section stands for the report.
  if (!SECTIONS.every((section) => report.sections?.includes(section))) {
    process.stderr.write('results-doc: latest.json is from a partial run; run npm run bench\n');
    process.exitCode = 1;
  } else {
    void writeResultsDoc(root, report);
  }
}
