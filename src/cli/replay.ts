// `tandem-mcp runs replay ID`: runs a recorded playbook run again (the same playbook version, task, inputs and
// apply policy, from its playbook.json trace) and compares the two traces step for step: the same positions,
// steps, workers, statuses, verdicts, conditions and prompts, or the first place where they part.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { isFinished, runWhat, type RunRecord } from '../orchestrator/model';
import {
  TRACE_FILE,
  TRACE_SCHEMA_VERSION,
  sortTrace,
  traceSignature,
  type PlaybookRunInput,
  type PlaybookTrace,
  type TraceEntry,
} from '../orchestrator/playbook/engine';
import { PlaybookError, parsePlaybook, playbookHash, resolveInputs } from '../orchestrator/playbook/schema';
import { RunStore, RunStoreError, STATE_DIR_NAME } from '../orchestrator/run-store';
import { HUMAN_CALLER } from '../workers/registry';
import { EXIT, parseArgs } from './args';
import { processIo, type CommandIo } from './cli-services';
import { cancelRunOnSignals, followToEnd } from './follow-run';

const APPLY_POLICIES = ['if_approved', 'always', 'never'] as const;

/** A trace as read from disk: traces written before the run settings were recorded lack them. */
type RecordedTrace = Omit<PlaybookTrace, 'resilience' | 'models' | 'cwd'> &
  Partial<Pick<PlaybookTrace, 'resilience' | 'models' | 'cwd'>>;

export interface TraceComparison {
  identical: boolean;
  recorded: number;
  replayed: number;
  /** Index of the first entry that differs (or that one trace has and the other lacks). */
  at?: number;
  recordedEntry?: string;
  replayedEntry?: string;
  /** When the two entries' prompts differ: the first line where they part (1-based) and its two versions. */
  promptLine?: { line: number; recorded: string; replayed: string };
}

function firstDifferentLine(a: string, b: string): { line: number; recorded: string; replayed: string } {
  const left = a.split('\n');
  const right = b.split('\n');
  let i = 0;
  while (i < Math.max(left.length, right.length) && left[i] === right[i]) i++;
  return { line: i + 1, recorded: left[i] ?? '(end of prompt)', replayed: right[i] ?? '(end of prompt)' };
}

/** Compares two traces by their signatures (position, kind, step, worker, status, verdict, value, prompt). */
export function compareTraces(
  recorded: readonly TraceEntry[],
  replayed: readonly TraceEntry[],
): TraceComparison {
  const before = traceSignature(recorded);
  const after = traceSignature(replayed);
  const counts = { recorded: before.length, replayed: after.length };
  for (let i = 0; i < Math.max(before.length, after.length); i++) {
    if (before[i] === after[i]) continue;
    // The signatures are in sortTrace's order: the entries at the same index are the ones compared.
    const a = sortTrace(recorded)[i];
    const b = sortTrace(replayed)[i];
    const prompts =
      a?.prompt !== undefined && b?.prompt !== undefined && a.promptSha256 !== b.promptSha256
        ? { promptLine: firstDifferentLine(a.prompt, b.prompt) }
        : {};
    return {
      identical: false,
      ...counts,
      at: i,
      ...(before[i] === undefined ? {} : { recordedEntry: before[i] }),
      ...(after[i] === undefined ? {} : { replayedEntry: after[i] }),
      ...prompts,
    };
  }
  return { identical: true, ...counts };
}

export function describeComparison(comparison: TraceComparison): string {
  if (comparison.identical) return `replay: identical (${comparison.recorded} entries)\n`;
  const lines = [
    `replay: differs at entry ${(comparison.at ?? 0) + 1} (recorded ${comparison.recorded} entries, replayed ${comparison.replayed})`,
    `  recorded: ${comparison.recordedEntry ?? '(no entry)'}`,
    `  replayed: ${comparison.replayedEntry ?? '(no entry)'}`,
  ];
  const prompt = comparison.promptLine;
  if (prompt) {
    lines.push(
      `  the prompts part at line ${prompt.line}:`,
      `    recorded: ${prompt.recorded}`,
      `    replayed: ${prompt.replayed}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The run to start again, from a trace checked as a playbook file would be; throws with what is wrong. */
export function replayInput(trace: RecordedTrace, where: string): PlaybookRunInput {
  if (trace.schemaVersion !== TRACE_SCHEMA_VERSION) {
    throw new PlaybookError(where, [
      {
        path: 'schemaVersion',
        message:
          `trace format ${String(trace.schemaVersion)}; this Tandem replays format ${TRACE_SCHEMA_VERSION} ` +
          '(run the playbook again with this version to get a trace it can replay)',
      },
    ]);
  }
  if (typeof trace.task !== 'string' || trace.task === '') {
    throw new PlaybookError(where, [{ path: 'task', message: 'no task is recorded' }]);
  }
  if (!(APPLY_POLICIES as readonly unknown[]).includes(trace.apply)) {
    throw new PlaybookError(where, [{ path: 'apply', message: `expected ${APPLY_POLICIES.join(', ')}` }]);
  }
  if (!Array.isArray(trace.entries)) {
    throw new PlaybookError(where, [{ path: 'entries', message: 'no list of entries is recorded' }]);
  }
  const playbook = parsePlaybook(trace.playbook, `${where} (playbook)`);
  const inputs = resolveInputs(
    playbook,
    typeof trace.inputs === 'object' && trace.inputs !== null ? trace.inputs : {},
    `${where} (inputs)`,
  );
  return {
    owner: HUMAN_CALLER,
    task: trace.task,
    playbook,
    source: typeof trace.source === 'string' ? trace.source : where,
    hash: playbookHash(playbook),
    inputs,
    apply: trace.apply,
    ...(trace.resilience ? { resilience: trace.resilience } : {}),
    ...(trace.models && Object.keys(trace.models).length > 0 ? { models: trace.models } : {}),
    ...(typeof trace.cwd === 'string' ? { cwd: trace.cwd } : {}),
  };
}

export async function replayCommand(args: readonly string[], io: CommandIo = processIo): Promise<number> {
  const parsed = parseArgs('runs replay', args, {
    flags: { workspace: 'value', offline: 'boolean', 'codex-path': 'value', 'gemini-path': 'value' },
    positionals: ['ID'],
  });
  const id = parsed.positionals[0] as string;
  const workspaceRoot = parsed.directory('workspace');
  const codexPath = parsed.string('codex-path');
  const geminiPath = parsed.string('gemini-path');
  const fail = (message: string): number => {
    io.err(`tandem-mcp: ${message}\n`);
    return EXIT.failed;
  };

  // Everything about the recorded run is checked before a service, a model or a worker starts.
  // As `runs show`: a folder that never had Tandem state gets none from asking.
  const store = existsSync(path.join(workspaceRoot, STATE_DIR_NAME, 'runs.jsonl'))
    ? await RunStore.open(workspaceRoot)
    : undefined;
  let recordedRun: RunRecord;
  try {
    if (!store) throw new RunStoreError('UNKNOWN_RUN', `No run "${id}" in ${workspaceRoot}: it has no runs.`);
    recordedRun = store.get(id);
  } catch (error) {
    if (!(error instanceof RunStoreError)) throw error;
    return fail(error.message);
  }
  const where = `runs/${id}/${TRACE_FILE}`;
  const text = await store.readRunFile(id, TRACE_FILE);
  if (text === undefined) {
    return fail(
      `run ${id} (${runWhat(recordedRun)}) has no ${TRACE_FILE}: only playbook runs can be replayed`,
    );
  }
  if (!isFinished(recordedRun.status)) {
    return fail(`run ${id} is still ${recordedRun.status}; replay it once it has finished`);
  }
  let trace: RecordedTrace;
  let input: PlaybookRunInput;
  try {
    trace = JSON.parse(text) as RecordedTrace;
    input = replayInput(trace, where);
  } catch (error) {
    if (error instanceof SyntaxError) return fail(`${where}: not valid JSON: ${error.message}`);
    if (error instanceof PlaybookError) return fail(`cannot replay run ${id}: ${error.message}`);
    throw error;
  }
  if (typeof trace.hash === 'string' && trace.hash !== input.hash) {
    io.err(
      `tandem-mcp: note: ${where} records hash ${trace.hash} but its playbook hashes to ${input.hash}\n`,
    );
  }

  const session = await io.open({
    workspaceRoot,
    offline: parsed.has('offline'),
    log: (line) => io.err(`${line}\n`),
    cliPaths: {
      ...(codexPath === undefined ? {} : { codex: path.resolve(codexPath) }),
      ...(geminiPath === undefined ? {} : { gemini: path.resolve(geminiPath) }),
    },
  });
  const { orchestrator } = session.services;
  const interrupt = cancelRunOnSignals(orchestrator, (line) => io.err(`${line}\n`));
  try {
    const run = await orchestrator.startPlaybook(input);
    await followToEnd(session.services, run, interrupt, io.err, `replay of ${id}`);
    if (interrupt.code !== undefined) return interrupt.code;
    const replayedText = await session.services.store.readRunFile(run.id, TRACE_FILE);
    if (replayedText === undefined) return fail(`the replay ${run.id} left no ${TRACE_FILE}`);
    const replayed = JSON.parse(replayedText) as PlaybookTrace;
    const comparison = compareTraces(trace.entries, replayed.entries);
    io.out(describeComparison(comparison));
    if (!comparison.identical && recordedRun.applied) {
      // The recorded run changed the workspace, so the replay's workers started from another state.
      io.out(
        `note: ${id} applied its change to this workspace, so the replay started from the changed files. ` +
          'Replay runs made with apply=never, or replay on a copy of the workspace as it was.\n',
      );
    }
    return comparison.identical ? EXIT.ok : EXIT.failed;
  } finally {
    await session.close();
    interrupt.dispose();
  }
}
