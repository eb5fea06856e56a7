// `tandem-mcp run`: one strategy on a workspace from the terminal, owned by the human user. Events go to
// stderr as they happen, the run's summary to stdout at the end; Ctrl-C cancels the run and its processes.
import path from 'node:path';
import { STRATEGIES } from '../orchestrator/model';
import { WORKER_KINDS } from '../workers/contract';
import { HUMAN_CALLER } from '../workers/registry';
import { UsageError, parseArgs } from './args';
import { openCliServices } from './cli-services';
import { cancelRunOnSignals, exitCodeFor, followRun, formatEvent } from './follow-run';
import { renderRecord } from './runs';

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

const APPLY_POLICIES = ['if_approved', 'always', 'never'] as const;

export async function runCommand(args: readonly string[]): Promise<number> {
  const parsed = parseArgs('run', args, {
    flags: {
      strategy: 'value',
      prompt: 'value',
      workspace: 'value',
      offline: 'boolean',
      writer: 'value',
      apply: 'value',
      json: 'boolean',
      'codex-path': 'value',
      'gemini-path': 'value',
    },
  });
  const strategy = parsed.choice('strategy', STRATEGIES);
  if (strategy === undefined) throw new UsageError(`run: --strategy is required (${STRATEGIES.join(', ')})`);
  const prompt = parsed.required('prompt');
  if (prompt.trim() === '') throw new UsageError('run: --prompt must not be blank');
  const writer = parsed.choice('writer', WORKER_KINDS);
  const apply = parsed.choice('apply', APPLY_POLICIES);
  const workspaceRoot = parsed.directory('workspace');
  const codexPath = parsed.string('codex-path');
  const geminiPath = parsed.string('gemini-path');

  const session = await openCliServices({
    workspaceRoot,
    offline: parsed.has('offline'),
    log,
    cliPaths: {
      ...(codexPath === undefined ? {} : { codex: path.resolve(codexPath) }),
      ...(geminiPath === undefined ? {} : { gemini: path.resolve(geminiPath) }),
    },
  });
  const { store, orchestrator } = session.services;
  const interrupt = cancelRunOnSignals(orchestrator, log);
  try {
    const run = await orchestrator.startStrategy({
      owner: HUMAN_CALLER,
      strategy,
      prompt,
      ...(writer === undefined ? {} : { writer }),
      ...(apply === undefined ? {} : { apply }),
    });
    interrupt.watch(run.id);
    process.stderr.write(`tandem-mcp: run ${run.id} (${strategy}) in ${session.services.workspaceRoot}\n`);
    await followRun(store, orchestrator, run.id, (event) => {
      process.stderr.write(`${formatEvent(event)}\n`);
    });
    const finished = await orchestrator.finished(run.id);
    const summary = await store.readRunFile(run.id, parsed.has('json') ? 'summary.json' : 'summary.md');
    process.stdout.write(
      summary ??
        (parsed.has('json') ? `${JSON.stringify({ run: finished }, null, 2)}\n` : renderRecord(finished)),
    );
    return interrupt.code ?? exitCodeFor(finished.status);
  } finally {
    await session.close();
    interrupt.dispose();
  }
}
