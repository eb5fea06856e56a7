// `tandem-mcp run`: one strategy or one playbook on a workspace from the terminal, owned by the human user.
// Events go to stderr as they happen, the run's summary to stdout at the end; Ctrl-C cancels the run and its
// processes. A playbook, and the values given for its inputs, are checked before anything starts.
import { SANDBOX_MODES } from '../core/sandbox';
import path from 'node:path';
import { WorkspaceJail } from '../core/jail';
import { STRATEGIES, type RunRecord, type StrategyName } from '../orchestrator/model';
import { loadPlaybook, UnknownPlaybookError, type LoadedPlaybook } from '../orchestrator/playbook/library';
import { PlaybookError, resolveInputs, type Playbook } from '../orchestrator/playbook/schema';
import { WORKER_KINDS } from '../workers/contract';
import { HUMAN_CALLER } from '../workers/registry';
import { EXIT, UsageError, parseArgs, type ParsedArgs } from './args';
import { processIo, type CliServices, type CommandIo } from './cli-services';
import { cancelRunOnSignals, exitCodeFor, followToEnd } from './follow-run';
import { renderRecord } from './runs';

const APPLY_POLICIES = ['if_approved', 'always', 'never'] as const;

/** `--input key=value`, repeated, as raw text by input name. */
export function parseInputFlags(command: string, flags: readonly string[]): Map<string, string> {
  const raw = new Map<string, string>();
  for (const flag of flags) {
    const equals = flag.indexOf('=');
    if (equals <= 0) throw new UsageError(`${command}: --input takes key=value, not "${flag}"`);
    const name = flag.slice(0, equals);
    if (raw.has(name)) throw new UsageError(`${command}: --input ${name} is given twice`);
    raw.set(name, flag.slice(equals + 1));
  }
  return raw;
}

/**
 * An input's value from its text: JSON when it parses (numbers, arrays, booleans), the text itself otherwise.
 * A string input always takes the text as written, so `--input note=42` stays "42".
 */
export function inputValue(playbook: Playbook, name: string, text: string): unknown {
  const spec = Object.hasOwn(playbook.inputs, name) ? playbook.inputs[name] : undefined;
  if (spec?.type === 'string') return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** The task: `--prompt TEXT` or the positional TASK, exactly one of them, not blank. */
function taskOf(parsed: ParsedArgs): string {
  const flag = parsed.string('prompt');
  const positional = parsed.positionals[0];
  if (flag !== undefined && positional !== undefined) {
    throw new UsageError('run: give the task once, as --prompt TEXT or as the last argument');
  }
  const task = flag ?? positional;
  if (task === undefined) throw new UsageError('run: the task is required (--prompt TEXT or "TASK")');
  if (task.trim() === '') throw new UsageError('run: the task must not be blank');
  return task;
}

/**
 * The playbook and its resolved inputs. An unknown name or a bad input value is wrong usage (exit 2); a file
 * that does not parse is reported with its path and field and ends the command (exit 1).
 */
async function preparePlaybook(
  workspaceRoot: string,
  name: string,
  rawInputs: ReadonlyMap<string, string>,
  io: CommandIo,
): Promise<{ loaded: LoadedPlaybook; inputs: Record<string, unknown> } | number> {
  const jail = await WorkspaceJail.open(workspaceRoot);
  let loaded: LoadedPlaybook;
  try {
    loaded = await loadPlaybook(jail, name);
  } catch (error) {
    if (error instanceof UnknownPlaybookError) {
      throw new UsageError(
        `run: no playbook "${name}". Known: ${error.known.join(', ')} (list them with tandem-mcp playbooks)`,
      );
    }
    if (!(error instanceof PlaybookError)) throw error;
    io.err(`tandem-mcp: playbook "${name}" cannot be used: ${error.message}\n`);
    return EXIT.failed;
  }
  const given: Record<string, unknown> = {};
  for (const [key, text] of rawInputs) given[key] = inputValue(loaded.playbook, key, text);
  try {
    return { loaded, inputs: resolveInputs(loaded.playbook, given, loaded.source) };
  } catch (error) {
    if (!(error instanceof PlaybookError)) throw error;
    throw new UsageError(`run: ${error.message}`);
  }
}

export async function runCommand(args: readonly string[], io: CommandIo = processIo): Promise<number> {
  const parsed = parseArgs('run', args, {
    flags: {
      strategy: 'value',
      playbook: 'value',
      input: 'repeated',
      fallback: 'boolean',
      prompt: 'value',
      workspace: 'value',
      offline: 'boolean',
      writer: 'value',
      apply: 'value',
      json: 'boolean',
      'codex-path': 'value',
      'gemini-path': 'value',
      sandbox: 'value',
      'bwrap-path': 'value',
    },
    optionalPositionals: ['TASK'],
  });
  const strategy = parsed.choice('strategy', STRATEGIES);
  const playbookName = parsed.string('playbook');
  if (strategy === undefined && playbookName === undefined) {
    throw new UsageError(
      `run: --strategy (${STRATEGIES.join(', ')}) or --playbook NAME is required (tandem-mcp playbooks lists them)`,
    );
  }
  if (strategy !== undefined && playbookName !== undefined) {
    throw new UsageError('run: give --strategy or --playbook, not both');
  }
  const task = taskOf(parsed);
  const writer = parsed.choice('writer', WORKER_KINDS);
  if (playbookName !== undefined && writer !== undefined) {
    throw new UsageError('run: --writer is for strategies; a playbook takes --input writer=codex|gemini');
  }
  if (strategy !== undefined && parsed.has('input')) {
    throw new UsageError('run: --input is for playbooks (--playbook NAME)');
  }
  const rawInputs = parseInputFlags('run', parsed.all('input'));
  const apply = parsed.choice('apply', APPLY_POLICIES);
  const workspaceRoot = parsed.directory('workspace');
  const codexPath = parsed.string('codex-path');
  const geminiPath = parsed.string('gemini-path');
  const sandbox = parsed.choice('sandbox', SANDBOX_MODES);
  const bwrapPath = parsed.string('bwrap-path');

  let target: { strategy: StrategyName } | { loaded: LoadedPlaybook; inputs: Record<string, unknown> };
  if (strategy !== undefined) target = { strategy };
  else {
    const prepared = await preparePlaybook(workspaceRoot, playbookName as string, rawInputs, io);
    if (typeof prepared === 'number') return prepared;
    target = prepared;
  }

  const session = await io.open({
    workspaceRoot,
    offline: parsed.has('offline'),
    log: (line) => io.err(`${line}\n`),
    ...(sandbox === undefined ? {} : { sandbox }),
    ...(bwrapPath === undefined ? {} : { bwrapPath: path.resolve(bwrapPath) }),
    cliPaths: {
      ...(codexPath === undefined ? {} : { codex: path.resolve(codexPath) }),
      ...(geminiPath === undefined ? {} : { gemini: path.resolve(geminiPath) }),
    },
  });
  const start = (): Promise<RunRecord> => {
    const { orchestrator } = session.services;
    if ('loaded' in target) {
      const { loaded, inputs } = target;
      return orchestrator.startPlaybook({
        owner: HUMAN_CALLER,
        task,
        playbook: loaded.playbook,
        source: loaded.source,
        hash: loaded.hash,
        inputs,
        ...(apply === undefined ? {} : { apply }),
        ...(parsed.has('fallback') ? { resilience: { fallback: true } } : {}),
      });
    }
    return orchestrator.startStrategy({
      owner: HUMAN_CALLER,
      strategy: target.strategy,
      prompt: task,
      ...(writer === undefined ? {} : { writer }),
      ...(apply === undefined ? {} : { apply }),
      ...(parsed.has('fallback') ? { fallback: true } : {}),
    });
  };
  return carryOut(session, start, parsed.has('json'), io);
}

/** Starts the run, follows it to its end, prints its summary; the exit code says how it ended. */
async function carryOut(
  session: CliServices,
  start: () => Promise<RunRecord>,
  json: boolean,
  io: CommandIo,
): Promise<number> {
  const { store, orchestrator } = session.services;
  const interrupt = cancelRunOnSignals(orchestrator, (line) => io.err(`${line}\n`));
  try {
    const run = await start();
    const finished = await followToEnd(session.services, run, interrupt, io.err);
    const summary = await store.readRunFile(run.id, json ? 'summary.json' : 'summary.md');
    io.out(summary ?? (json ? `${JSON.stringify({ run: finished }, null, 2)}\n` : renderRecord(finished)));
    return interrupt.code ?? exitCodeFor(finished.status);
  } finally {
    await session.close();
    interrupt.dispose();
  }
}
