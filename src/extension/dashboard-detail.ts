// Reads what the dashboard shows of one run from its folder: summary.json when the run has written it (the
// object summary.md is rendered from), else the files a live run keeps (steps.json, changes.json, the decision
// events, playbook.json's inputs), which are what start-up recovery summarises too. A file that does not read
// is logged and shown as empty, never thrown.
import * as z from 'zod';
import {
  changeRecordSchema,
  stepRecordSchema,
  type ChangeRecord,
  type RunEvent,
  type StepRecord,
} from '../orchestrator/model';
import type { RunStore } from '../orchestrator/run-store';
import { TRACE_FILE } from '../orchestrator/playbook/engine';
import { runSummarySchema } from '../orchestrator/summary';
import { buildDetail, type DetailMessage, type RunRecordsInput } from './dashboard-protocol';

const inputsSchema = z.record(z.string(), z.unknown());

const stepsFileSchema = z.array(stepRecordSchema);
const changesFileSchema = z.array(changeRecordSchema);
/** Only the part of playbook.json the detail shows. */
const traceInputsSchema = z.object({ inputs: inputsSchema });

type Log = (line: string) => void;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A run file parsed with its schema; undefined when it is absent or does not read (logged). */
function parseRunFile<T>(
  text: string | undefined,
  schema: z.ZodType<T>,
  what: string,
  log: Log,
): T | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    log(`dashboard: ${what} does not match its schema (${issue?.path.join('.') ?? ''}: ${issue?.message})`);
  } catch (error) {
    log(`dashboard: ${what} is not JSON (${messageOf(error)})`);
  }
  return undefined;
}

async function liveRecords(
  store: RunStore,
  runId: string,
  events: RunEvent[],
  running: readonly StepRecord[],
  log: Log,
): Promise<RunRecordsInput> {
  const read = async <T>(name: string, schema: z.ZodType<T>): Promise<T | undefined> =>
    parseRunFile(await store.readRunFile(runId, name), schema, `${name} of ${runId}`, log);
  // steps.json is written when a step starts and ends; the command is known only once its process started.
  const now = new Map(running.map((step) => [step.index, step]));
  const steps: StepRecord[] = ((await read('steps.json', stepsFileSchema)) ?? []).map(
    (step) => now.get(step.index) ?? step,
  );
  const changes: ChangeRecord[] = (await read('changes.json', changesFileSchema)) ?? [];
  const trace = await read(TRACE_FILE, traceInputsSchema);
  return {
    run: store.get(runId),
    steps,
    changes,
    decisions: events
      .filter((event) => event.type === 'decision')
      .map((event) => ({ time: event.time, message: event.message })),
    playbookInputs: trace?.inputs ?? null,
  };
}

/**
 * The detail message of a run, from its summary when it has one, else from its live files, with `running`
 * (the run's steps in flight, as the orchestrator holds them) in place of their records in steps.json.
 */
export async function loadRunDetail(
  store: RunStore,
  folderKey: string,
  runId: string,
  log: Log,
  now: Date,
  running: readonly StepRecord[] = [],
): Promise<DetailMessage> {
  // Throws for an unknown run before any file is read.
  store.get(runId);
  const events = await store.readEvents(runId, 0, Number.MAX_SAFE_INTEGER);
  const summary = parseRunFile(
    await store.readRunFile(runId, 'summary.json'),
    runSummarySchema,
    `summary.json of ${runId}`,
    log,
  );
  if (summary) return buildDetail(folderKey, summary, 'summary', events, now);
  return buildDetail(folderKey, await liveRecords(store, runId, events, running, log), 'live', events, now);
}
