// Follows a run's events until it finishes, for `run` and `demo`: its events, Ctrl-C as a cancellation, and
// how it ended as an exit code.
import { defaultProcessRegistry } from '../core/exec';
import type { TandemServices } from '../mcp/services';
import { runWhat, type RunEvent, type RunRecord, type RunStatus } from '../orchestrator/model';
import type { Orchestrator } from '../orchestrator/orchestrator';
import type { RunStore } from '../orchestrator/run-store';
import { HUMAN_CALLER } from '../workers/registry';
import { EXIT } from './args';
import { StopSignals } from './cli-services';

/** Past this, an event line is cut: a command a worker ran can be a whole file long. */
const EVENT_LINE_CHARS = 200;

/** One line per event, whatever the message holds. */
export function formatEvent(event: RunEvent): string {
  const message = event.message.replace(/\s+/g, ' ').trim();
  const shown = message.length > EVENT_LINE_CHARS ? `${message.slice(0, EVENT_LINE_CHARS - 1)}…` : message;
  return `[${event.seq}] ${shown}`;
}

/** succeeded 0, partial 3, anything else that ended (failed, cancelled, interrupted) 1. */
export function exitCodeFor(status: RunStatus): number {
  if (status === 'succeeded') return EXIT.ok;
  if (status === 'partial') return EXIT.partial;
  return EXIT.failed;
}

/**
 * Calls `onEvent` for every event of the run, in order, and resolves after the last one. The run's status
 * turns final a moment before its summary and last event are written, so the end is the run_finished
 * event, or the orchestrator's own word that the run is done, followed by one last read.
 */
export async function followRun(
  store: RunStore,
  orchestrator: Orchestrator,
  runId: string,
  onEvent: (event: RunEvent) => void,
): Promise<void> {
  let after = 0;
  const deliver = (events: readonly RunEvent[]): boolean => {
    let finished = false;
    for (const event of events) {
      onEvent(event);
      after = event.seq;
      if (event.type === 'run_finished') finished = true;
    }
    return finished;
  };
  let done = false;
  const finished = orchestrator.finished(runId).then(() => {
    done = true;
  });
  while (!done) {
    if (deliver(await store.waitForEvents(runId, after, 1000))) return;
  }
  await finished;
  for (;;) {
    const rest = await store.readEvents(runId, after);
    if (rest.length === 0 || deliver(rest)) return;
  }
}

/**
 * For a run just started: a signal now cancels it, its events go to `err` one line each as they come, and the
 * answer is its record once it has finished.
 */
export async function followToEnd(
  services: Pick<TandemServices, 'store' | 'orchestrator' | 'workspaceRoot'>,
  run: RunRecord,
  interrupt: RunInterrupt,
  err: (text: string) => void,
  note?: string,
): Promise<RunRecord> {
  interrupt.watch(run.id);
  err(`tandem-mcp: run ${run.id} (${runWhat(run)}${note ? `, ${note}` : ''}) in ${services.workspaceRoot}\n`);
  await followRun(services.store, services.orchestrator, run.id, (event) => err(`${formatEvent(event)}\n`));
  return services.orchestrator.finished(run.id);
}

export interface RunInterrupt {
  /** The run a signal should cancel, once it has started. */
  watch(runId: string): void;
  /** 130 or 143 when a signal asked to stop; undefined otherwise. */
  readonly code: number | undefined;
  dispose(): void;
}

/**
 * The workers run in their own process groups, so Ctrl-C reaches only this process: the first SIGINT or
 * SIGTERM cancels the run (which ends their trees) and lets the caller finish normally; a second one, or
 * one before the run started, kills every tree and exits at once.
 */
export function cancelRunOnSignals(orchestrator: Orchestrator, log: (line: string) => void): RunInterrupt {
  let runId: string | undefined;
  let code: number | undefined;
  const signals = new StopSignals();
  const onSignal = (signal: NodeJS.Signals): void => {
    const exitCode = signal === 'SIGINT' ? EXIT.interrupted : EXIT.terminated;
    const seen = signals.note();
    if (seen === 'duplicate' && runId !== undefined) return;
    if (seen === 'again' || runId === undefined) {
      defaultProcessRegistry.killAllNow();
      process.exit(exitCode);
    }
    code = exitCode;
    log(`tandem-mcp: ${signal}: cancelling run ${runId} and its processes (again to quit at once)`);
    void orchestrator.cancel(runId, HUMAN_CALLER).catch(() => undefined);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    watch: (id) => {
      runId = id;
    },
    get code() {
      return code;
    },
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
