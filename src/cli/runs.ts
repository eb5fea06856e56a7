// `tandem-mcp runs list|show`: the run history of a workspace, read from .tandem/ with the run store alone,
// so it starts no recovery, no worker and no model, and works while a server is running on the workspace.
// `runs replay` starts work and lives in replay.ts.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { RUN_STATUSES, STRATEGIES, runWhat, type RunRecord } from '../orchestrator/model';
import { RunStore, RunStoreError, STATE_DIR_NAME } from '../orchestrator/run-store';
import { runHeaderMarkdown } from '../orchestrator/summary';
import { EXIT, UsageError, parseArgs } from './args';
import { processIo, type CommandIo } from './cli-services';
import { replayCommand } from './replay';

const DECISION_CHARS = 60;

export function cut(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** Seconds are enough to tell runs apart in a table; the full time is in `runs show`. */
function shortTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function renderTable(runs: readonly RunRecord[]): string {
  const header = ['ID', 'STATUS', 'STRATEGY', 'OWNER', 'CREATED', 'DECISION'];
  const rows = runs.map((run) => [
    run.id,
    run.status,
    runWhat(run),
    run.owner,
    shortTime(run.createdAt),
    cut(run.decision ?? run.outcome ?? '-', DECISION_CHARS),
  ]);
  return formatTable(header, rows);
}

/** Columns padded to their widest value; the last one is left as it is. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] as string).length)),
  );
  return [header, ...rows]
    .map((row) =>
      row
        .map((value, column) => (column === row.length - 1 ? value : value.padEnd(widths[column] as number)))
        .join('  '),
    )
    .join('\n')
    .concat('\n');
}

/** For a run without a summary yet (still running, or interrupted before it wrote one). */
export function renderRecord(run: RunRecord): string {
  return `${runHeaderMarkdown(run).join('\n')}\n`;
}

/** The store, or undefined when the workspace never had Tandem state (nothing is created to find out). */
async function openStore(workspaceRoot: string): Promise<RunStore | undefined> {
  if (!existsSync(path.join(workspaceRoot, STATE_DIR_NAME, 'runs.jsonl'))) return undefined;
  const store = await RunStore.open(workspaceRoot);
  // A refused index (a link, a FIFO) is an error here, not an empty history.
  if (store.problem) throw store.problem;
  return store;
}

async function list(args: readonly string[]): Promise<number> {
  const parsed = parseArgs('runs list', args, {
    flags: { workspace: 'value', status: 'value', strategy: 'value', limit: 'value', json: 'boolean' },
  });
  const workspaceRoot = parsed.directory('workspace');
  const status = parsed.choice('status', RUN_STATUSES);
  const strategy = parsed.choice('strategy', STRATEGIES);
  const limit = parsed.int('limit', 1, 1000);
  const store = await openStore(workspaceRoot);
  const runs =
    store?.list({
      ...(status === undefined ? {} : { status }),
      ...(strategy === undefined ? {} : { strategy }),
      ...(limit === undefined ? {} : { limit }),
    }) ?? [];
  if (parsed.has('json')) {
    process.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
  } else if (runs.length === 0) {
    process.stdout.write(`No runs${status || strategy ? ' match' : ''} in ${workspaceRoot}.\n`);
  } else {
    process.stdout.write(renderTable(runs));
  }
  return EXIT.ok;
}

async function show(args: readonly string[]): Promise<number> {
  const parsed = parseArgs('runs show', args, {
    flags: { workspace: 'value', markdown: 'boolean', json: 'boolean' },
    positionals: ['ID'],
  });
  if (parsed.has('markdown') && parsed.has('json')) {
    throw new UsageError('runs show: choose one of --markdown and --json');
  }
  const id = parsed.positionals[0] as string;
  const workspaceRoot = parsed.directory('workspace');
  const store = await openStore(workspaceRoot);
  let run: RunRecord;
  try {
    if (!store) throw new RunStoreError('UNKNOWN_RUN', `No run "${id}" in ${workspaceRoot}: it has no runs.`);
    run = store.get(id);
  } catch (error) {
    if (!(error instanceof RunStoreError)) throw error;
    process.stderr.write(`tandem-mcp: ${error.message}\n`);
    return EXIT.failed;
  }
  if (parsed.has('json')) {
    const summary = await store.readRunFile(id, 'summary.json');
    process.stdout.write(summary ?? `${JSON.stringify({ run }, null, 2)}\n`);
  } else {
    process.stdout.write((await store.readRunFile(id, 'summary.md')) ?? renderRecord(run));
  }
  return EXIT.ok;
}

export async function runsCommand(args: readonly string[], io: CommandIo = processIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'list') return list(rest);
  if (sub === 'show') return show(rest);
  if (sub === 'replay') return replayCommand(rest, io);
  throw new UsageError(
    sub === undefined
      ? 'runs: say list, show or replay'
      : `runs: unknown subcommand "${sub}" (list, show, replay)`,
  );
}
