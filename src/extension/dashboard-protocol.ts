// The dashboard's postMessage protocol: one message union each way, hand-written validators that name the
// exact field that is wrong, and the pure builders that turn run-store records into messages. Both the
// extension host and the webview bundle import this file, so it imports nothing (no vscode, node or zod).

export const RUN_STATUSES = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'partial',
  'cancelled',
  'interrupted',
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const RUN_KINDS = ['dispatch', 'strategy', 'playbook'] as const;
export type RunKind = (typeof RUN_KINDS)[number];
export const WORKER_STATES = ['idle', 'busy', 'stopped'] as const;
export type WorkerState = (typeof WORKER_STATES)[number];
export const STEP_STATUSES = [
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
  'auth_error',
  'rate_limited',
  'cli_error',
] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];
export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const VERDICTS = ['approve', 'request_changes', 'none'] as const;
export type Verdict = (typeof VERDICTS)[number];
export const NOTICE_LEVELS = ['info', 'error'] as const;
export type NoticeLevel = (typeof NOTICE_LEVELS)[number];
/** Where a detail came from: the run's summary.json (a finished run), or its files so far (a live run). */
export const DETAIL_SOURCES = ['summary', 'live'] as const;
export type DetailSource = (typeof DETAIL_SOURCES)[number];

/** Caps on every list and long text, applied by the builders and enforced by the validators. */
export const LIMITS = {
  folders: 32,
  runsPerFolder: 200,
  workersPerFolder: 100,
  activePerFolder: 64,
  probesPerFolder: 8,
  steps: 100,
  findingsPerStep: 50,
  filesPerStep: 200,
  workersPerRun: 32,
  events: 500,
  /** Arguments of a step's command. */
  argvItems: 256,
  changes: 100,
  filesPerChange: 200,
  decisions: 500,
  inputs: 100,
  promptChars: 200,
  textChars: 2000,
  /** The task, a step's reply and a decision: as much as summary.md shows of them. */
  longTextChars: 4000,
} as const;

// ---- Host → webview ----

export interface PanicView {
  engaged: boolean;
  by: string | null;
  reason: string | null;
}

export interface WorkerView {
  id: string;
  kind: string;
  model: string;
  owner: string;
  state: WorkerState;
  stepsRun: number;
}

/** A CLI working for a run right now (strategy steps have no named worker). */
export interface ActiveView {
  runId: string;
  kind: string;
  /** The step's name in its run, e.g. "write", "review". */
  name: string;
  role: string;
  model: string;
  owner: string;
  startedAt: string;
}

export interface RunView {
  id: string;
  kind: RunKind;
  strategy: string | null;
  owner: string;
  status: RunStatus;
  createdAt: string;
  /** Ended minus started; while running, the time so far (as of generatedAt). */
  durationMs: number | null;
  workers: string[];
  stepCount: number;
  outcome: string | null;
  applied: boolean;
  /** The task's first characters (LIMITS.promptChars). */
  prompt: string;
}

export interface ProbeView {
  kind: string;
  installed: boolean;
  version: string | null;
  versionInTestedRange: boolean;
  authMode: string;
  error: string | null;
}

export interface FolderView {
  key: string;
  name: string;
  trusted: boolean;
  panic: PanicView;
  workers: WorkerView[];
  /** CLIs working for runs right now, oldest run first. */
  active: ActiveView[];
  runs: RunView[];
  /** The CLIs as last probed for this folder; absent until a probe ran. */
  probe?: ProbeView[];
}

export interface StateMessage {
  type: 'state';
  folders: FolderView[];
  generatedAt: string;
}

export interface PlaybookView {
  name: string;
  /** The version: 12 hex digits of the SHA-256 of the playbook's canonical JSON. */
  hash: string;
  /** Where it came from: `builtin:NAME` or `.tandem/playbooks/FILE.json`. */
  source: string;
}

export interface RunDetailView extends RunView {
  decision: string | null;
  /** For playbook (and strategy) runs that recorded it; null otherwise. */
  playbook: PlaybookView | null;
  startedAt: string | null;
  endedAt: string | null;
  /** The task as given (LIMITS.longTextChars), where `prompt` has its first characters. */
  task: string;
}

export interface FindingView {
  severity: Severity;
  title: string;
  detail: string;
  file?: string;
}

export interface DiffStatsView {
  files: number;
  insertions: number;
  deletions: number;
}

export interface StepView {
  index: number;
  name: string;
  role: string;
  workerKind: string;
  model: string;
  status: StepStatus;
  durationMs: number | null;
  exitCode: number | null;
  /** The signal that ended the process, if one did. */
  signal: string | null;
  /** The command as run, secrets redacted (the prompt went on stdin). */
  argv: string[];
  verdict: Verdict | null;
  findings: FindingView[];
  /** Findings beyond LIMITS.findingsPerStep (the least severe), which summary.md still lists. */
  findingsOmitted: number;
  filesChanged: { path: string; change: string }[];
  /** Files beyond LIMITS.filesPerStep. */
  filesOmitted: number;
  diffStats: DiffStatsView | null;
  errorMessage: string | null;
  tokens: number | null;
  /** The worker's last reply (LIMITS.longTextChars). */
  reply: string;
}

export interface DecisionView {
  time: string;
  message: string;
}

export interface ChangeFileView {
  path: string;
  change: string;
  insertions: number;
  deletions: number;
}

/** One writer's change: which step made it, what it touched, whether it reached the workspace. */
export interface ChangeView {
  label: string;
  stats: DiffStatsView;
  files: ChangeFileView[];
  /** The patch's file in the run folder. */
  patchFile: string | null;
  patchTruncated: boolean;
  applied: boolean;
}

/** A playbook input and its value as JSON text. */
export interface InputView {
  name: string;
  value: string;
}

export interface EventView {
  seq: number;
  time: string;
  type: string;
  message: string;
  step?: number;
}

/** A run as summary.md shows it, plus its events: built from summary.json, or while it runs from its files. */
export interface DetailMessage {
  type: 'detail';
  folderKey: string;
  source: DetailSource;
  run: RunDetailView;
  steps: StepView[];
  /** Every decision the run recorded, in order: retries, fallbacks, verifications, adjudication, apply. */
  decisions: DecisionView[];
  changes: ChangeView[];
  /** The inputs a playbook ran with, in its order; null for dispatches. */
  inputs: InputView[] | null;
  /** How many of each list the caps left out (summary.md has them all). */
  omitted: OmittedView;
  /** The run's last events (LIMITS.events), oldest first. */
  events: EventView[];
}

export interface OmittedView {
  steps: number;
  decisions: number;
  changes: number;
  inputs: number;
}

/** Events of the selected run that arrived after the last detail or events message. */
export interface EventsMessage {
  type: 'events';
  folderKey: string;
  runId: string;
  events: EventView[];
}

export interface NoticeMessage {
  type: 'notice';
  level: NoticeLevel;
  text: string;
}

export type ToWebview = StateMessage | DetailMessage | EventsMessage | NoticeMessage;

// ---- Webview → host ----

export type FromWebview =
  | { type: 'ready' }
  | { type: 'select'; folderKey: string; runId: string }
  | { type: 'cancelRun'; folderKey: string; runId: string }
  | { type: 'stopWorker'; folderKey: string; workerId: string }
  | { type: 'engagePanic' }
  | { type: 'releasePanic' }
  | { type: 'probe' }
  | { type: 'openSummary'; folderKey: string; runId: string };

// ---- Validators ----

/** A message that does not match the protocol; `path` names the field, e.g. `message.runId`. */
export class ProtocolError extends Error {
  constructor(
    readonly path: string,
    readonly expected: string,
  ) {
    super(`${path}: expected ${expected}`);
    this.name = 'ProtocolError';
  }
}

type Check<T> = (value: unknown, path: string) => T;
type Shape<T> = { [K in keyof T]: Check<T[K]> };

const string: Check<string> = (value, path) => {
  if (typeof value !== 'string') throw new ProtocolError(path, 'a string');
  return value;
};

const boolean: Check<boolean> = (value, path) => {
  if (typeof value !== 'boolean') throw new ProtocolError(path, 'a boolean');
  return value;
};

const integer: Check<number> = (value, path) => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new ProtocolError(path, 'an integer');
  return value;
};

const count: Check<number> = (value, path) => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ProtocolError(path, 'a non-negative integer');
  }
  return value;
};

const milliseconds: Check<number> = (value, path) => {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ProtocolError(path, 'a non-negative number');
  }
  return value;
};

function nullable<T>(check: Check<T>): Check<T | null> {
  return (value, path) => {
    if (value === null) return null;
    try {
      return check(value, path);
    } catch (error) {
      if (error instanceof ProtocolError && error.path === path) {
        throw new ProtocolError(path, `${error.expected} or null`);
      }
      throw error;
    }
  };
}

function optional<T>(check: Check<T>): Check<T | undefined> {
  return (value, path) => (value === undefined ? undefined : check(value, path));
}

function oneOf<const V extends string>(values: readonly V[]): Check<V> {
  const expected =
    values.length === 1 ? `"${values[0]}"` : `one of ${values.map((v) => `"${v}"`).join(', ')}`;
  return (value, path) => {
    if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) {
      throw new ProtocolError(path, expected);
    }
    return value as V;
  };
}

function list<T>(check: Check<T>, max: number): Check<T[]> {
  return (value, path) => {
    if (!Array.isArray(value)) throw new ProtocolError(path, 'an array');
    if (value.length > max) throw new ProtocolError(path, `at most ${max} items`);
    return value.map((item, index) => check(item, `${path}[${index}]`));
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the listed fields (own properties only) and returns a fresh object holding just those. */
function record<T>(shape: Shape<T>): Check<T> {
  const keys = Object.keys(shape) as (keyof T & string)[];
  return (value, path) => {
    if (!isObject(value)) throw new ProtocolError(path, 'an object');
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const field = Object.hasOwn(value, key) ? value[key] : undefined;
      const checked = (shape[key] as Check<unknown>)(field, `${path}.${key}`);
      if (checked !== undefined) out[key] = checked;
    }
    return out as T;
  };
}

const panicCheck = record<PanicView>({ engaged: boolean, by: nullable(string), reason: nullable(string) });

const workerCheck = record<WorkerView>({
  id: string,
  kind: string,
  model: string,
  owner: string,
  state: oneOf(WORKER_STATES),
  stepsRun: count,
});

const activeCheck = record<ActiveView>({
  runId: string,
  kind: string,
  name: string,
  role: string,
  model: string,
  owner: string,
  startedAt: string,
});

const runShape: Shape<RunView> = {
  id: string,
  kind: oneOf(RUN_KINDS),
  strategy: nullable(string),
  owner: string,
  status: oneOf(RUN_STATUSES),
  createdAt: string,
  durationMs: nullable(milliseconds),
  workers: list(string, LIMITS.workersPerRun),
  stepCount: count,
  outcome: nullable(string),
  applied: boolean,
  prompt: string,
};
const runCheck = record<RunView>(runShape);
const runDetailCheck = record<RunDetailView>({
  ...runShape,
  decision: nullable(string),
  playbook: nullable(record<PlaybookView>({ name: string, hash: string, source: string })),
  startedAt: nullable(string),
  endedAt: nullable(string),
  task: string,
});

const probeCheck = record<ProbeView>({
  kind: string,
  installed: boolean,
  version: nullable(string),
  versionInTestedRange: boolean,
  authMode: string,
  error: nullable(string),
});

const folderCheck = record<FolderView>({
  key: string,
  name: string,
  trusted: boolean,
  panic: panicCheck,
  workers: list(workerCheck, LIMITS.workersPerFolder),
  active: list(activeCheck, LIMITS.activePerFolder),
  runs: list(runCheck, LIMITS.runsPerFolder),
  probe: optional(list(probeCheck, LIMITS.probesPerFolder)),
});

const diffStatsCheck = record<DiffStatsView>({ files: count, insertions: count, deletions: count });

const stepCheck = record<StepView>({
  index: count,
  name: string,
  role: string,
  workerKind: string,
  model: string,
  status: oneOf(STEP_STATUSES),
  durationMs: nullable(milliseconds),
  exitCode: nullable(integer),
  signal: nullable(string),
  argv: list(string, LIMITS.argvItems),
  verdict: nullable(oneOf(VERDICTS)),
  findings: list(
    record<FindingView>({
      severity: oneOf(SEVERITIES),
      title: string,
      detail: string,
      file: optional(string),
    }),
    LIMITS.findingsPerStep,
  ),
  filesChanged: list(
    record<{ path: string; change: string }>({ path: string, change: string }),
    LIMITS.filesPerStep,
  ),
  findingsOmitted: count,
  filesOmitted: count,
  diffStats: nullable(diffStatsCheck),
  errorMessage: nullable(string),
  tokens: nullable(count),
  reply: string,
});

const decisionCheck = record<DecisionView>({ time: string, message: string });

const changeCheck = record<ChangeView>({
  label: string,
  stats: diffStatsCheck,
  files: list(
    record<ChangeFileView>({ path: string, change: string, insertions: count, deletions: count }),
    LIMITS.filesPerChange,
  ),
  patchFile: nullable(string),
  patchTruncated: boolean,
  applied: boolean,
});

const inputCheck = record<InputView>({ name: string, value: string });

const eventCheck = record<EventView>({
  seq: count,
  time: string,
  type: string,
  message: string,
  step: optional(count),
});

type Checks<M extends { type: string }> = { [K in M['type']]: Check<Extract<M, { type: K }>> };

const toWebviewChecks: Checks<ToWebview> = {
  state: record<StateMessage>({
    type: oneOf(['state']),
    folders: list(folderCheck, LIMITS.folders),
    generatedAt: string,
  }),
  detail: record<DetailMessage>({
    type: oneOf(['detail']),
    folderKey: string,
    source: oneOf(DETAIL_SOURCES),
    run: runDetailCheck,
    steps: list(stepCheck, LIMITS.steps),
    decisions: list(decisionCheck, LIMITS.decisions),
    changes: list(changeCheck, LIMITS.changes),
    inputs: nullable(list(inputCheck, LIMITS.inputs)),
    omitted: record<OmittedView>({ steps: count, decisions: count, changes: count, inputs: count }),
    events: list(eventCheck, LIMITS.events),
  }),
  events: record<EventsMessage>({
    type: oneOf(['events']),
    folderKey: string,
    runId: string,
    events: list(eventCheck, LIMITS.events),
  }),
  notice: record<NoticeMessage>({ type: oneOf(['notice']), level: oneOf(NOTICE_LEVELS), text: string }),
};

const runTarget = { folderKey: string, runId: string };

const fromWebviewChecks: Checks<FromWebview> = {
  ready: record({ type: oneOf(['ready']) }),
  select: record({ type: oneOf(['select']), ...runTarget }),
  cancelRun: record({ type: oneOf(['cancelRun']), ...runTarget }),
  stopWorker: record({ type: oneOf(['stopWorker']), folderKey: string, workerId: string }),
  engagePanic: record({ type: oneOf(['engagePanic']) }),
  releasePanic: record({ type: oneOf(['releasePanic']) }),
  probe: record({ type: oneOf(['probe']) }),
  openSummary: record({ type: oneOf(['openSummary']), ...runTarget }),
};

function parseWith<M extends { type: string }>(checks: Checks<M>, value: unknown): M {
  if (!isObject(value)) throw new ProtocolError('message', 'an object');
  const types = Object.keys(checks);
  const type = Object.hasOwn(value, 'type') ? value.type : undefined;
  if (typeof type !== 'string' || !types.includes(type)) {
    throw new ProtocolError('message.type', `one of ${types.map((t) => `"${t}"`).join(', ')}`);
  }
  return (checks[type as M['type']] as Check<M>)(value, 'message');
}

/** A message from the host as the webview receives it; throws ProtocolError naming the wrong field. */
export function parseToWebview(value: unknown): ToWebview {
  return parseWith(toWebviewChecks, value);
}

/** A message from the webview as the host receives it; throws ProtocolError naming the wrong field. */
export function parseFromWebview(value: unknown): FromWebview {
  return parseWith(fromWebviewChecks, value);
}

// ---- Builders (host side): plain records in, capped messages out ----

/** What the builders read of a run (RunRecord has these fields). */
export interface RunInput {
  id: string;
  kind: RunKind;
  strategy: string | null;
  /** For playbook runs; its name is shown where the strategy would be. */
  playbook?: { name: string; hash: string; source: string } | null;
  owner: string;
  prompt: string;
  status: RunStatus;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  workers: string[];
  stepCount: number;
  outcome: string | null;
  decision: string | null;
  applied: boolean;
}

/** What the builders read of a worker (WorkerInfo has these fields). */
export interface WorkerInput {
  id: string;
  kind: string;
  model: string;
  owner: string;
  state: WorkerState;
  createdAt: string;
  stepsRun: number;
}

/** What the builders read of a step (StepRecord has these fields). */
export interface StepInput {
  index: number;
  name: string;
  role: string;
  workerKind: string;
  model: string;
  status: StepStatus;
  durationMs: number | null;
  exitCode: number | null;
  signal: string | null;
  argv: readonly string[];
  verdict: Verdict | null;
  findings: { severity: Severity; title: string; detail: string; file?: string | undefined }[];
  filesChanged: { path: string; change: string }[];
  diffStats: DiffStatsView | null;
  errorMessage: string | null;
  tokens: number | null;
  finalMessage: string;
}

/** What the builders read of a change (ChangeRecord has these fields). */
export interface ChangeInput {
  label: string;
  stats: DiffStatsView;
  files: readonly ChangeFileView[];
  patchFile: string | null;
  patchTruncated: boolean;
  applied: boolean;
}

/** What the detail is built from: a run's summary.json (RunSummary has these fields), or its files so far. */
export interface RunRecordsInput {
  run: RunInput;
  steps: readonly StepInput[];
  changes: readonly ChangeInput[];
  decisions: readonly DecisionView[];
  playbookInputs: Readonly<Record<string, unknown>> | null;
}

export interface EventInput {
  seq: number;
  time: string;
  type: string;
  message: string;
  step?: number | undefined;
}

export interface ProbeInput {
  kind: string;
  installed: boolean;
  version: string | null;
  versionInTestedRange: boolean;
  auth: { mode: string };
  error: string | null;
}

export interface PanicInput {
  engaged: boolean;
  engagedBy: string | null;
  reason: string | null;
}

export interface FolderInput {
  key: string;
  name: string;
  trusted: boolean;
  panic: PanicInput;
  workers: WorkerInput[];
  /** Steps running now; absent: none. */
  active?: ActiveInput[] | undefined;
  runs: RunInput[];
  probe?: ProbeInput[] | undefined;
}

export interface ActiveInput {
  runId: string;
  owner: string;
  step: { name: string; role: string; workerKind: string; model: string; startedAt: string };
}

/** The text cut to at most `max` characters, ending in "…" when cut (never inside a surrogate pair). */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

function clipOrNull(text: string | null, max: number = LIMITS.textChars): string | null {
  return text === null ? null : clip(text, max);
}

function timeOf(iso: string | null): number | null {
  if (iso === null) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

function elapsed(from: number | null, to: number | null): number | null {
  return from === null || to === null ? null : Math.max(0, to - from);
}

export function viewOfRun(run: RunInput, now: Date): RunView {
  const started = timeOf(run.startedAt);
  const ended = timeOf(run.endedAt);
  const durationMs =
    ended !== null
      ? elapsed(started ?? timeOf(run.createdAt), ended)
      : run.status === 'running'
        ? elapsed(started, now.getTime())
        : null;
  return {
    id: run.id,
    kind: run.kind,
    strategy: run.strategy ?? (run.playbook ? `playbook:${run.playbook.name}` : null),
    owner: run.owner,
    status: run.status,
    createdAt: run.createdAt,
    durationMs,
    workers: run.workers.slice(0, LIMITS.workersPerRun),
    stepCount: run.stepCount,
    outcome: clipOrNull(run.outcome),
    applied: run.applied,
    prompt: clip(run.prompt, LIMITS.promptChars),
  };
}

/** Newest first by creation time; runs created in the same instant keep the order they came in. */
function newestFirst<T extends { createdAt: string }>(items: readonly T[]): T[] {
  return items
    .map((item, order) => ({ item, order, at: timeOf(item.createdAt) ?? 0 }))
    .sort((a, b) => b.at - a.at || a.order - b.order)
    .map(({ item }) => item);
}

export function viewOfWorker(worker: WorkerInput): WorkerView {
  return {
    id: worker.id,
    kind: worker.kind,
    model: worker.model,
    owner: worker.owner,
    state: worker.state,
    stepsRun: worker.stepsRun,
  };
}

/** Live workers first, each group in spawn order; stopped ones are the first left out at the cap. */
function workerOrder(workers: readonly WorkerInput[]): WorkerInput[] {
  const live = workers.filter((worker) => worker.state !== 'stopped');
  const stopped = workers.filter((worker) => worker.state === 'stopped');
  const bySpawn = (list: WorkerInput[]): WorkerInput[] =>
    list
      .map((item, order) => ({ item, order, at: timeOf(item.createdAt) ?? 0 }))
      .sort((a, b) => a.at - b.at || a.order - b.order)
      .map(({ item }) => item);
  return [...bySpawn(live), ...bySpawn(stopped)];
}

export function probeViews(results: readonly ProbeInput[]): ProbeView[] {
  return results.slice(0, LIMITS.probesPerFolder).map((result) => ({
    kind: result.kind,
    installed: result.installed,
    version: result.version,
    versionInTestedRange: result.versionInTestedRange,
    authMode: result.auth.mode,
    error: clipOrNull(result.error),
  }));
}

export function buildState(folders: readonly FolderInput[], now: Date): StateMessage {
  return {
    type: 'state',
    folders: folders.slice(0, LIMITS.folders).map((folder) => {
      const view: FolderView = {
        key: folder.key,
        name: folder.name,
        trusted: folder.trusted,
        panic: {
          engaged: folder.panic.engaged,
          by: folder.panic.engagedBy,
          reason: clipOrNull(folder.panic.reason),
        },
        workers: workerOrder(folder.workers).slice(0, LIMITS.workersPerFolder).map(viewOfWorker),
        active: (folder.active ?? []).slice(0, LIMITS.activePerFolder).map(({ runId, owner, step }) => ({
          runId,
          kind: step.workerKind,
          name: step.name,
          role: step.role,
          model: step.model,
          owner,
          startedAt: step.startedAt,
        })),
        runs: newestFirst(folder.runs)
          .slice(0, LIMITS.runsPerFolder)
          .map((run) => viewOfRun(run, now)),
      };
      if (folder.probe) view.probe = probeViews(folder.probe);
      return view;
    }),
    generatedAt: now.toISOString(),
  };
}

export function eventViews(events: readonly EventInput[]): EventView[] {
  return [...events]
    .sort((a, b) => a.seq - b.seq)
    .slice(-LIMITS.events)
    .map((event) => {
      const view: EventView = {
        seq: event.seq,
        time: event.time,
        type: event.type,
        message: clip(event.message, LIMITS.textChars),
      };
      if (event.step !== undefined) view.step = event.step;
      return view;
    });
}

const bySeverity = (a: { severity: Severity }, b: { severity: Severity }): number =>
  SEVERITIES.indexOf(b.severity) - SEVERITIES.indexOf(a.severity);

export function viewOfStep(step: StepInput): StepView {
  return {
    index: step.index,
    name: step.name,
    role: step.role,
    workerKind: step.workerKind,
    model: step.model,
    status: step.status,
    durationMs: step.durationMs === null ? null : Math.max(0, step.durationMs),
    exitCode: step.exitCode,
    signal: step.signal,
    argv: step.argv.slice(0, LIMITS.argvItems).map((arg) => clip(arg, LIMITS.textChars)),
    verdict: step.verdict,
    // The most severe first, so the cap drops the least severe.
    findings: [...step.findings]
      .sort(bySeverity)
      .slice(0, LIMITS.findingsPerStep)
      .map((finding) => {
        const view: FindingView = {
          severity: finding.severity,
          title: clip(finding.title, LIMITS.textChars),
          detail: clip(finding.detail, LIMITS.textChars),
        };
        if (finding.file !== undefined) view.file = finding.file;
        return view;
      }),
    findingsOmitted: omittedBy(step.findings.length, LIMITS.findingsPerStep),
    filesChanged: step.filesChanged
      .slice(0, LIMITS.filesPerStep)
      .map((file) => ({ path: file.path, change: file.change })),
    filesOmitted: omittedBy(step.filesChanged.length, LIMITS.filesPerStep),
    diffStats: step.diffStats
      ? {
          files: step.diffStats.files,
          insertions: step.diffStats.insertions,
          deletions: step.diffStats.deletions,
        }
      : null,
    errorMessage: clipOrNull(step.errorMessage),
    tokens: step.tokens,
    reply: clip(step.finalMessage, LIMITS.longTextChars),
  };
}

/** How many of `total` items a cap of `limit` leaves out. */
function omittedBy(total: number, limit: number): number {
  return Math.max(0, total - limit);
}

export function viewOfChange(change: ChangeInput): ChangeView {
  return {
    label: change.label,
    stats: {
      files: change.stats.files,
      insertions: change.stats.insertions,
      deletions: change.stats.deletions,
    },
    files: change.files.slice(0, LIMITS.filesPerChange).map((file) => ({
      path: file.path,
      change: file.change,
      insertions: file.insertions,
      deletions: file.deletions,
    })),
    patchFile: change.patchFile,
    patchTruncated: change.patchTruncated,
    applied: change.applied,
  };
}

/** Each input with its value as JSON (as summary.md prints them), in the playbook's order. */
export function inputViews(inputs: Readonly<Record<string, unknown>>): InputView[] {
  return Object.entries(inputs)
    .slice(0, LIMITS.inputs)
    .map(([name, value]) => ({ name, value: clip(JSON.stringify(value) ?? 'null', LIMITS.textChars) }));
}

/** The detail of one run: the records summary.md is rendered from, capped, with the run's last events. */
export function buildDetail(
  folderKey: string,
  records: RunRecordsInput,
  source: DetailSource,
  events: readonly EventInput[],
  now: Date,
): DetailMessage {
  const { run } = records;
  const playbook = run.playbook
    ? { name: run.playbook.name, hash: run.playbook.hash, source: run.playbook.source }
    : null;
  return {
    type: 'detail',
    folderKey,
    source,
    run: {
      ...viewOfRun(run, now),
      decision: clipOrNull(run.decision, LIMITS.longTextChars),
      playbook,
      startedAt: run.startedAt,
      endedAt: run.endedAt,
      task: clip(run.prompt, LIMITS.longTextChars),
    },
    steps: [...records.steps]
      .sort((a, b) => a.index - b.index)
      .slice(0, LIMITS.steps)
      .map(viewOfStep),
    decisions: records.decisions.slice(0, LIMITS.decisions).map((decision) => ({
      time: decision.time,
      message: clip(decision.message, LIMITS.longTextChars),
    })),
    changes: records.changes.slice(0, LIMITS.changes).map(viewOfChange),
    inputs: records.playbookInputs ? inputViews(records.playbookInputs) : null,
    omitted: {
      steps: omittedBy(records.steps.length, LIMITS.steps),
      decisions: omittedBy(records.decisions.length, LIMITS.decisions),
      changes: omittedBy(records.changes.length, LIMITS.changes),
      inputs: omittedBy(Object.keys(records.playbookInputs ?? {}).length, LIMITS.inputs),
    },
    events: eventViews(events),
  };
}

export function buildEvents(folderKey: string, runId: string, events: readonly EventInput[]): EventsMessage {
  return { type: 'events', folderKey, runId, events: eventViews(events) };
}

export function notice(level: NoticeLevel, text: string): NoticeMessage {
  return { type: 'notice', level, text: clip(text, LIMITS.textChars) };
}
