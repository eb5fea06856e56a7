// The dashboard's message protocol and its state builders: what the host may send the webview and back, the
// exact field a malformed message is refused for, and how run-store records become capped, ordered views.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import {
  LIMITS,
  ProtocolError,
  RUN_STATUSES,
  SEVERITIES,
  STEP_STATUSES,
  WORKER_STATES,
  buildDetail,
  buildEvents,
  buildState,
  clip,
  notice,
  parseFromWebview,
  parseToWebview,
  type DetailMessage,
  type EventView,
  type FolderInput,
  type FromWebview,
  type RunDetailView,
  type RunRecordsInput,
  type RunView,
  type StateMessage,
  type StepView,
  type ToWebview,
  type WorkerView,
} from '../../src/extension/dashboard-protocol';
import type { ChangeRecord, RunEvent, RunRecord, StepRecord } from '../../src/orchestrator/model';
import { RunStore } from '../../src/orchestrator/run-store';
import type { WorkerInfo } from '../../src/workers/registry';

const NOW = new Date('2026-03-01T12:00:00.000Z');

function at(secondsBeforeNow: number): string {
  return new Date(NOW.getTime() - secondsBeforeNow * 1000).toISOString();
}

let runCounter = 0;
function run(overrides: Partial<RunRecord> = {}): RunRecord {
  runCounter += 1;
  return {
    id: `run-20260301T120000Z-${runCounter.toString(16).padStart(6, '0')}`,
    kind: 'strategy',
    strategy: 'codex_writes_gemini_reviews',
    playbook: null,
    owner: 'agent-a',
    prompt: 'Add a README.',
    status: 'succeeded',
    createdAt: at(600),
    startedAt: at(590),
    endedAt: at(560),
    workers: ['codex', 'gemini'],
    stepCount: 2,
    outcome: 'Applied the change after approval.',
    decision: 'applied write',
    applied: true,
    host: { pid: 1234, startTime: null },
    ...overrides,
  };
}

function worker(overrides: Partial<WorkerInfo> = {}): WorkerInfo {
  return {
    id: 'codex-0000aaaa',
    kind: 'codex',
    model: 'gpt-5.5',
    owner: 'agent-a',
    state: 'idle',
    createdAt: at(900),
    stepsRun: 1,
    cliVersion: '0.169.0',
    cliPath: '/usr/bin/codex',
    ...overrides,
  };
}

function step(overrides: Partial<StepRecord> = {}): StepRecord {
  return {
    index: 0,
    name: 'write',
    role: 'writer',
    workerKind: 'codex',
    workerId: null,
    model: 'gpt-5.5',
    status: 'succeeded',
    startedAt: at(590),
    endedAt: at(575),
    durationMs: 15_000,
    exitCode: 0,
    signal: null,
    timedOut: false,
    argv: ['/usr/bin/codex', 'exec'],
    finalMessage: 'done',
    errorMessage: null,
    tokens: 1200,
    diffStats: { files: 1, insertions: 10, deletions: 2 },
    filesChanged: [{ path: 'README.md', change: 'added' }],
    verdict: null,
    findings: [],
    logDir: null,
    ...overrides,
  };
}

function change(overrides: Partial<ChangeRecord> = {}): ChangeRecord {
  return {
    label: 'write',
    stats: { files: 1, insertions: 10, deletions: 2 },
    files: [{ path: 'README.md', change: 'added', insertions: 10, deletions: 2 }],
    steeringFiles: [],
    patchFile: 'changes-write.patch',
    patchTruncated: false,
    applied: true,
    ...overrides,
  };
}

/** What a run's summary.json holds: the run, its steps, and no changes, decisions or inputs unless given. */
function records(
  runRecord: RunRecord,
  steps: StepRecord[] = [],
  overrides: Partial<Omit<RunRecordsInput, 'run' | 'steps'>> = {},
): RunRecordsInput {
  return { run: runRecord, steps, changes: [], decisions: [], playbookInputs: null, ...overrides };
}

function event(seq: number, overrides: Partial<RunEvent> = {}): RunEvent {
  return { seq, time: at(600 - seq), type: 'step_progress', message: `event ${seq}`, step: 0, ...overrides };
}

function folder(overrides: Partial<FolderInput> = {}): FolderInput {
  return {
    key: 'file:///work/a',
    name: 'a',
    trusted: true,
    panic: { engaged: false, engagedBy: null, reason: null },
    workers: [worker()],
    runs: [run()],
    ...overrides,
  };
}

function sampleState(): StateMessage {
  return buildState(
    [
      folder({
        probe: [
          {
            kind: 'codex',
            installed: true,
            version: '0.169.0',
            versionInTestedRange: true,
            auth: { mode: 'api_key' },
            error: null,
          },
        ],
      }),
      folder({
        key: 'file:///work/b',
        name: 'b',
        trusted: false,
        panic: { engaged: true, engagedBy: 'agent-b', reason: 'runaway' },
      }),
    ],
    NOW,
  );
}

function sampleDetail(): DetailMessage {
  return buildDetail(
    'file:///work/a',
    records(
      run({
        kind: 'playbook',
        strategy: null,
        playbook: { name: 'handoff', hash: '0123456789ab', source: 'builtin:handoff' },
      }),
      [
        step(),
        step({
          index: 1,
          name: 'review',
          role: 'reviewer',
          workerKind: 'gemini',
          model: 'gemini-2.5-flash',
          exitCode: null,
          verdict: 'request_changes',
          findings: [{ severity: 'high', title: 'Missing license', detail: '', file: 'README.md' }],
          diffStats: null,
          filesChanged: [],
          errorMessage: 'exited early',
          tokens: null,
          durationMs: null,
          signal: 'SIGTERM',
        }),
      ],
      {
        changes: [change()],
        decisions: [{ time: at(560), message: 'applied write' }],
        playbookInputs: { writer: 'codex', rounds: 1 },
      },
    ),
    'summary',
    [event(1, { type: 'run_queued', step: undefined }), event(2)],
    NOW,
  );
}

const WELL_FORMED_TO_WEBVIEW: ToWebview[] = [
  sampleState(),
  sampleDetail(),
  buildEvents('file:///work/a', 'run-x', [event(3), event(4, { type: 'run_finished' })]),
  notice('info', 'Probed the CLIs.'),
  notice('error', 'No run "x".'),
  { type: 'state', folders: [], generatedAt: NOW.toISOString() },
];

const WELL_FORMED_FROM_WEBVIEW: FromWebview[] = [
  { type: 'ready' },
  { type: 'select', folderKey: 'file:///work/a', runId: 'run-1' },
  { type: 'cancelRun', folderKey: 'file:///work/a', runId: 'run-1' },
  { type: 'stopWorker', folderKey: 'file:///work/a', workerId: 'codex-1' },
  { type: 'engagePanic' },
  { type: 'releasePanic' },
  { type: 'probe' },
  { type: 'openSummary', folderKey: 'file:///work/a', runId: 'run-1' },
];

/** A copy of the value with one field replaced (or removed with `undefined`), following a path of keys. */
function withField(value: unknown, keys: (string | number)[], replacement: unknown): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let cursor = copy;
  for (const key of keys.slice(0, -1)) cursor = cursor[key] as Record<string | number, unknown>;
  const last = keys[keys.length - 1] as string | number;
  if (replacement === undefined) delete cursor[last];
  else cursor[last] = replacement;
  return copy;
}

function errorOf(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    assert.ok(error instanceof ProtocolError, `expected a ProtocolError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('the message was accepted');
}

describe('dashboard protocol validators', () => {
  it('accepts every well-formed host message and returns an equal copy', () => {
    for (const message of WELL_FORMED_TO_WEBVIEW) {
      const parsed = parseToWebview(message);
      assert.deepEqual(parsed, message);
      assert.notEqual(parsed, message, 'a fresh object, not the input');
    }
  });

  it('accepts every well-formed webview message', () => {
    for (const message of WELL_FORMED_FROM_WEBVIEW) assert.deepEqual(parseFromWebview(message), message);
  });

  it('drops fields the protocol does not know, at every level', () => {
    const state = sampleState();
    const padded = withField(
      withField(state, ['folders', 0, 'runs', 0, 'host'], { pid: 1 }),
      ['extra'],
      '<script>',
    );
    assert.deepEqual(parseToWebview(padded), state);
    assert.deepEqual(parseFromWebview({ type: 'probe', folderKey: 'x' }), { type: 'probe' });
  });

  const refusals: [string, () => unknown, string][] = [
    ['a non-object', () => parseFromWebview('ready'), 'message: expected an object'],
    ['null', () => parseToWebview(null), 'message: expected an object'],
    ['an array', () => parseFromWebview([{ type: 'ready' }]), 'message: expected an object'],
    [
      'an unknown type',
      () => parseFromWebview({ type: 'deleteEverything' }),
      'message.type: expected one of "ready", "select", "cancelRun", "stopWorker", "engagePanic", "releasePanic", "probe", "openSummary"',
    ],
    [
      'a type inherited from the prototype',
      () => parseFromWebview(Object.create({ type: 'ready' })),
      'message.type: expected one of "ready", "select", "cancelRun", "stopWorker", "engagePanic", "releasePanic", "probe", "openSummary"',
    ],
    [
      'a type naming an Object method',
      () => parseToWebview({ type: 'toString' }),
      'message.type: expected one of "state", "detail", "events", "notice"',
    ],
    [
      'select without a runId',
      () => parseFromWebview({ type: 'select', folderKey: 'f' }),
      'message.runId: expected a string',
    ],
    [
      'a numeric runId',
      () => parseFromWebview({ type: 'cancelRun', folderKey: 'f', runId: 7 }),
      'message.runId: expected a string',
    ],
    [
      'stopWorker without a folder',
      () => parseFromWebview({ type: 'stopWorker', workerId: 'w' }),
      'message.folderKey: expected a string',
    ],
    [
      'a run status not in the model',
      () => parseToWebview(withField(sampleState(), ['folders', 0, 'runs', 0, 'status'], 'done')),
      'message.folders[0].runs[0].status: expected one of "queued", "running", "succeeded", "failed", "partial", "cancelled", "interrupted"',
    ],
    [
      'a panic flag that is a string',
      () => parseToWebview(withField(sampleState(), ['folders', 1, 'panic', 'engaged'], 'yes')),
      'message.folders[1].panic.engaged: expected a boolean',
    ],
    [
      'a missing workers list',
      () => parseToWebview(withField(sampleState(), ['folders', 0, 'workers'], undefined)),
      'message.folders[0].workers: expected an array',
    ],
    [
      'a worker state not in the model',
      () => parseToWebview(withField(sampleState(), ['folders', 0, 'workers', 0, 'state'], 'zombie')),
      'message.folders[0].workers[0].state: expected one of "idle", "busy", "stopped"',
    ],
    [
      'a probe that is not a list',
      () => parseToWebview(withField(sampleState(), ['folders', 0, 'probe'], {})),
      'message.folders[0].probe: expected an array',
    ],
    [
      'a negative diff count',
      () => parseToWebview(withField(sampleDetail(), ['steps', 0, 'diffStats', 'files'], -1)),
      'message.steps[0].diffStats.files: expected a non-negative integer',
    ],
    [
      'an exit code that is a string',
      () => parseToWebview(withField(sampleDetail(), ['steps', 1, 'exitCode'], '0')),
      'message.steps[1].exitCode: expected an integer or null',
    ],
    [
      'a duration that is not finite',
      () => parseToWebview(withField(sampleDetail(), ['run', 'durationMs'], Number.POSITIVE_INFINITY)),
      'message.run.durationMs: expected a non-negative number or null',
    ],
    [
      'a finding file that is a number',
      () => parseToWebview(withField(sampleDetail(), ['steps', 1, 'findings', 0, 'file'], 3)),
      'message.steps[1].findings[0].file: expected a string',
    ],
    [
      'a detail without its decision',
      () => parseToWebview(withField(sampleDetail(), ['run', 'decision'], undefined)),
      'message.run.decision: expected a string or null',
    ],
    [
      'an event seq that is fractional',
      () =>
        parseToWebview({ type: 'events', folderKey: 'f', runId: 'r', events: [{ ...event(1), seq: 1.5 }] }),
      'message.events[0].seq: expected a non-negative integer',
    ],
    [
      'more events than the cap',
      () =>
        parseToWebview({
          type: 'events',
          folderKey: 'f',
          runId: 'r',
          events: Array.from({ length: LIMITS.events + 1 }, (_, i) => event(i + 1)),
        }),
      `message.events: expected at most ${LIMITS.events} items`,
    ],
    [
      'a detail source that is neither summary nor live',
      () => parseToWebview(withField(sampleDetail(), ['source'], 'cache')),
      'message.source: expected one of "summary", "live"',
    ],
    [
      'a command argument that is not a string',
      () => parseToWebview(withField(sampleDetail(), ['steps', 0, 'argv', 1], 7)),
      'message.steps[0].argv[1]: expected a string',
    ],
    [
      'a playbook without its version hash',
      () => parseToWebview(withField(sampleDetail(), ['run', 'playbook', 'hash'], undefined)),
      'message.run.playbook.hash: expected a string',
    ],
    [
      'a changed file with negative deletions',
      () => parseToWebview(withField(sampleDetail(), ['changes', 0, 'files', 0, 'deletions'], -2)),
      'message.changes[0].files[0].deletions: expected a non-negative integer',
    ],
    [
      'a decision without its message',
      () => parseToWebview(withField(sampleDetail(), ['decisions', 0, 'message'], undefined)),
      'message.decisions[0].message: expected a string',
    ],
    [
      'inputs that are an object, not a list',
      () => parseToWebview(withField(sampleDetail(), ['inputs'], { rounds: '1' })),
      'message.inputs: expected an array or null',
    ],
    [
      'a notice level that is not info or error',
      () => parseToWebview({ type: 'notice', level: 'warn', text: 'x' }),
      'message.level: expected one of "info", "error"',
    ],
  ];

  for (const [what, parse, expected] of refusals) {
    it(`refuses ${what}, naming ${expected.split(': expected')[0]}`, () => {
      assert.equal(errorOf(parse), expected);
    });
  }
});

// ---- Arbitrary well-formed messages ----

const text = fc.string({ maxLength: 40 });
const nullableText = fc.option(text, { nil: null });
const count = fc.nat({ max: 1_000_000 });
const ms = fc.option(fc.nat({ max: 10_000_000 }), { nil: null });

const runViewArb: fc.Arbitrary<RunView> = fc.record({
  id: text,
  kind: fc.constantFrom('dispatch' as const, 'strategy' as const),
  strategy: nullableText,
  owner: text,
  status: fc.constantFrom(...RUN_STATUSES),
  createdAt: text,
  durationMs: ms,
  workers: fc.array(text, { maxLength: 4 }),
  stepCount: count,
  outcome: nullableText,
  applied: fc.boolean(),
  prompt: text,
});

const workerViewArb: fc.Arbitrary<WorkerView> = fc.record({
  id: text,
  kind: text,
  model: text,
  owner: text,
  state: fc.constantFrom(...WORKER_STATES),
  stepsRun: count,
});

const stepViewArb: fc.Arbitrary<StepView> = fc.record({
  index: count,
  name: text,
  role: text,
  workerKind: text,
  model: text,
  status: fc.constantFrom(...STEP_STATUSES),
  durationMs: ms,
  exitCode: fc.option(fc.integer({ min: -255, max: 255 }), { nil: null }),
  signal: nullableText,
  argv: fc.array(text, { maxLength: 4 }),
  verdict: fc.option(fc.constantFrom('approve' as const, 'request_changes' as const, 'none' as const), {
    nil: null,
  }),
  findings: fc.array(
    fc.record(
      { severity: fc.constantFrom(...SEVERITIES), title: text, detail: text, file: text },
      { requiredKeys: ['severity', 'title', 'detail'] },
    ),
    { maxLength: 3 },
  ),
  findingsOmitted: count,
  filesChanged: fc.array(fc.record({ path: text, change: text }), { maxLength: 3 }),
  filesOmitted: count,
  diffStats: fc.option(fc.record({ files: count, insertions: count, deletions: count }), { nil: null }),
  errorMessage: nullableText,
  tokens: fc.option(count, { nil: null }),
  reply: text,
});

const diffStatsArb = fc.record({ files: count, insertions: count, deletions: count });

const eventViewArb: fc.Arbitrary<EventView> = fc.record(
  { seq: count, time: text, type: text, message: text, step: count },
  { requiredKeys: ['seq', 'time', 'type', 'message'] },
);

const toWebviewArb: fc.Arbitrary<ToWebview> = fc.oneof(
  fc.record({
    type: fc.constant('state' as const),
    folders: fc.array(
      fc.record(
        {
          key: text,
          name: text,
          trusted: fc.boolean(),
          panic: fc.record({ engaged: fc.boolean(), by: nullableText, reason: nullableText }),
          workers: fc.array(workerViewArb, { maxLength: 3 }),
          active: fc.array(
            fc.record({
              runId: text,
              kind: text,
              name: text,
              role: text,
              model: text,
              owner: text,
              startedAt: text,
            }),
            { maxLength: 3 },
          ),
          runs: fc.array(runViewArb, { maxLength: 3 }),
          probe: fc.array(
            fc.record({
              kind: text,
              installed: fc.boolean(),
              version: nullableText,
              versionInTestedRange: fc.boolean(),
              authMode: text,
              error: nullableText,
            }),
            { maxLength: 2 },
          ),
        },
        { requiredKeys: ['key', 'name', 'trusted', 'panic', 'workers', 'active', 'runs'] },
      ),
      { maxLength: 3 },
    ),
    generatedAt: text,
  }),
  fc.record({
    type: fc.constant('detail' as const),
    folderKey: text,
    source: fc.constantFrom('summary' as const, 'live' as const),
    run: fc
      .tuple(
        runViewArb,
        fc.record({
          decision: nullableText,
          playbook: fc.option(fc.record({ name: text, hash: text, source: text }), { nil: null }),
          startedAt: nullableText,
          endedAt: nullableText,
          task: text,
        }),
      )
      .map(([view, more]): RunDetailView => ({ ...view, ...more })),
    steps: fc.array(stepViewArb, { maxLength: 3 }),
    decisions: fc.array(fc.record({ time: text, message: text }), { maxLength: 3 }),
    changes: fc.array(
      fc.record({
        label: text,
        stats: diffStatsArb,
        files: fc.array(fc.record({ path: text, change: text, insertions: count, deletions: count }), {
          maxLength: 3,
        }),
        patchFile: nullableText,
        patchTruncated: fc.boolean(),
        applied: fc.boolean(),
      }),
      { maxLength: 2 },
    ),
    inputs: fc.option(fc.array(fc.record({ name: text, value: text }), { maxLength: 3 }), { nil: null }),
    omitted: fc.record({ steps: count, decisions: count, changes: count, inputs: count }),
    events: fc.array(eventViewArb, { maxLength: 5 }),
  }),
  fc.record({
    type: fc.constant('events' as const),
    folderKey: text,
    runId: text,
    events: fc.array(eventViewArb, { maxLength: 5 }),
  }),
  fc.record({
    type: fc.constant('notice' as const),
    level: fc.constantFrom('info' as const, 'error' as const),
    text,
  }),
);

const fromWebviewArb: fc.Arbitrary<FromWebview> = fc.oneof(
  fc.constantFrom(
    { type: 'ready' as const },
    { type: 'engagePanic' as const },
    { type: 'releasePanic' as const },
    { type: 'probe' as const },
  ),
  fc.record({
    type: fc.constantFrom('select' as const, 'cancelRun' as const, 'openSummary' as const),
    folderKey: text,
    runId: text,
  }),
  fc.record({ type: fc.constant('stopWorker' as const), folderKey: text, workerId: text }),
);

/** Junk shaped like messages: a known type with random fields, or anything at all. */
const junk = fc.oneof(
  fc.anything(),
  fc.jsonValue(),
  fc
    .tuple(
      fc.constantFrom('state', 'detail', 'events', 'notice', 'ready', 'select', 'stopWorker', 'cancelRun'),
      fc.dictionary(
        fc.constantFrom(
          'folders',
          'folderKey',
          'runId',
          'run',
          'steps',
          'events',
          'level',
          'text',
          'workerId',
        ),
        fc.anything(),
      ),
    )
    .map(([type, fields]) => ({ ...fields, type })),
);

describe('dashboard protocol properties', () => {
  it('random junk never makes a validator throw anything but a ProtocolError', () => {
    fc.assert(
      fc.property(junk, (value) => {
        for (const parse of [parseToWebview, parseFromWebview]) {
          try {
            parse(value);
          } catch (error) {
            if (!(error instanceof ProtocolError)) throw error;
            assert.match(error.message, /^message(\.|\[|:)/);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a valid host message survives a trip through JSON and the validator unchanged', () => {
    fc.assert(
      fc.property(toWebviewArb, (message) => {
        // fast-check also makes objects without a prototype; the validator's answer is always a plain object.
        const plain = JSON.parse(JSON.stringify(message)) as unknown;
        assert.deepEqual(parseToWebview(plain), plain);
        assert.deepEqual(parseToWebview(message), plain);
      }),
      { numRuns: 500 },
    );
  });

  it('a valid webview message survives a trip through JSON and the validator unchanged', () => {
    fc.assert(
      fc.property(fromWebviewArb, (message) => {
        const plain = JSON.parse(JSON.stringify(message)) as unknown;
        assert.deepEqual(parseFromWebview(plain), plain);
        assert.deepEqual(parseFromWebview(message), plain);
      }),
    );
  });

  it('whatever the records, the built state passes the validator within every cap', () => {
    const runRecord = fc
      .record({
        status: fc.constantFrom(...RUN_STATUSES),
        created: fc.integer({ min: 0, max: 1_000_000 }),
        prompt: fc.string({ maxLength: 400 }),
      })
      .map(({ status, created, prompt }) => run({ status, createdAt: at(created), prompt }));
    fc.assert(
      fc.property(
        fc.array(fc.array(runRecord, { maxLength: 260 }), { minLength: 0, maxLength: 3 }),
        (runLists) => {
          const state = buildState(
            runLists.map((runs, i) => folder({ key: `k${i}`, name: `f${i}`, runs })),
            NOW,
          );
          assert.deepEqual(parseToWebview(JSON.parse(JSON.stringify(state))), state);
          for (const view of state.folders) {
            assert.ok(view.runs.length <= LIMITS.runsPerFolder);
            for (const item of view.runs) assert.ok(item.prompt.length <= LIMITS.promptChars);
          }
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('dashboard state builder', () => {
  it('lists runs newest first, keeping the given order for runs created in the same instant', () => {
    const old = run({ createdAt: at(3000) });
    const newest = run({ createdAt: at(10) });
    const twinA = run({ createdAt: at(500) });
    const twinB = run({ createdAt: at(500) });
    const state = buildState([folder({ runs: [old, twinA, newest, twinB] })], NOW);
    assert.deepEqual(
      state.folders[0]?.runs.map((view) => view.id),
      [newest.id, twinA.id, twinB.id, old.id],
    );
  });

  it('keeps only the newest 200 runs of a folder', () => {
    const runs = Array.from({ length: 250 }, (_, i) => run({ createdAt: at(i * 10) }));
    const views = buildState([folder({ runs })], NOW).folders[0]?.runs ?? [];
    assert.equal(views.length, LIMITS.runsPerFolder);
    assert.equal(views[0]?.id, runs[0]?.id);
    assert.equal(views[199]?.id, runs[199]?.id);
  });

  it('cuts the prompt to 200 characters ending in an ellipsis, never inside a surrogate pair', () => {
    const long = 'x'.repeat(500);
    const [view] = buildState([folder({ runs: [run({ prompt: long })] })], NOW).folders[0]?.runs ?? [];
    assert.equal(view?.prompt.length, 200);
    assert.equal(view?.prompt, `${'x'.repeat(199)}…`);
    const emoji = `${'y'.repeat(198)}😀😀😀`;
    const cut = clip(emoji, 200);
    assert.equal(cut, `${'y'.repeat(198)}…`);
    assert.equal(clip('short', 200), 'short');
  });

  it('reports durations: finished runs end minus start, running ones the time so far, queued ones none', () => {
    const views =
      buildState(
        [
          folder({
            runs: [
              run({ createdAt: at(100), startedAt: at(90), endedAt: at(30), status: 'failed' }),
              run({ createdAt: at(99), startedAt: at(20), endedAt: null, status: 'running' }),
              run({ createdAt: at(98), startedAt: null, endedAt: null, status: 'queued' }),
              run({ createdAt: at(97), startedAt: null, endedAt: at(97), status: 'cancelled' }),
            ],
          }),
        ],
        NOW,
      ).folders[0]?.runs ?? [];
    assert.deepEqual(
      views.map((view) => [view.status, view.durationMs]),
      [
        ['cancelled', 0],
        ['queued', null],
        ['running', 20_000],
        ['failed', 60_000],
      ],
    );
  });

  it('keeps folders in workspace order, each with its own workers, runs, panic and trust', () => {
    const a = folder({ key: 'file:///a', name: 'a', runs: [run({ owner: 'in-a' })] });
    const b = folder({
      key: 'file:///b',
      name: 'b',
      trusted: false,
      panic: { engaged: true, engagedBy: 'agent-x', reason: 'stop now' },
      workers: [],
      runs: [run({ owner: 'in-b' }), run({ owner: 'in-b' })],
    });
    const state = buildState([a, b], NOW);
    assert.equal(state.generatedAt, NOW.toISOString());
    assert.deepEqual(
      state.folders.map((view) => [
        view.key,
        view.trusted,
        view.panic,
        view.workers.length,
        view.runs.map((r) => r.owner),
      ]),
      [
        ['file:///a', true, { engaged: false, by: null, reason: null }, 1, ['in-a']],
        ['file:///b', false, { engaged: true, by: 'agent-x', reason: 'stop now' }, 0, ['in-b', 'in-b']],
      ],
    );
    assert.equal(
      buildState(
        Array.from({ length: 40 }, () => a),
        NOW,
      ).folders.length,
      LIMITS.folders,
    );
  });

  it('lists live workers first in spawn order, stopped ones after, within the cap', () => {
    const workers = [
      worker({ id: 'stopped-old', state: 'stopped', createdAt: at(1000) }),
      worker({ id: 'busy-new', state: 'busy', createdAt: at(10) }),
      worker({ id: 'idle-old', state: 'idle', createdAt: at(500) }),
    ];
    const views = buildState([folder({ workers })], NOW).folders[0]?.workers ?? [];
    assert.deepEqual(
      views.map((view) => view.id),
      ['idle-old', 'busy-new', 'stopped-old'],
    );
    assert.deepEqual(Object.keys(views[0] ?? {}).sort(), [
      'id',
      'kind',
      'model',
      'owner',
      'state',
      'stepsRun',
    ]);
    const many = Array.from({ length: 150 }, (_, i) =>
      worker({ id: `w${i}`, state: i < 60 ? 'stopped' : 'idle', createdAt: at(1000 - i) }),
    );
    const capped = buildState([folder({ workers: many })], NOW).folders[0]?.workers ?? [];
    assert.equal(capped.length, LIMITS.workersPerFolder);
    assert.equal(capped.filter((view) => view.state === 'idle').length, 90, 'every live worker is kept');
  });

  it('lists the CLIs working for runs now, as the orchestrator gives them, within the cap', () => {
    const active = Array.from({ length: 70 }, (_, i) => ({
      runId: `run-${i}`,
      owner: 'agent-a',
      step: { name: 'write', role: 'writer', workerKind: 'codex', model: 'gpt-5.5', startedAt: at(i) },
    }));
    const views = buildState([folder({ active })], NOW).folders[0]?.active ?? [];
    assert.equal(views.length, LIMITS.activePerFolder);
    assert.deepEqual(views[0], {
      runId: 'run-0',
      kind: 'codex',
      name: 'write',
      role: 'writer',
      model: 'gpt-5.5',
      owner: 'agent-a',
      startedAt: at(0),
    });
    assert.deepEqual(buildState([folder()], NOW).folders[0]?.active, []);
    assert.throws(
      () =>
        parseToWebview({
          ...sampleState(),
          folders: [{ ...sampleState().folders[0], active: [{ runId: 1 }] }],
        }),
      /message\.folders\[0\]\.active\[0\]\.runId: expected a string/,
    );
  });

  it('adds the probe only for folders that were probed', () => {
    const state = sampleState();
    assert.deepEqual(state.folders[0]?.probe, [
      {
        kind: 'codex',
        installed: true,
        version: '0.169.0',
        versionInTestedRange: true,
        authMode: 'api_key',
        error: null,
      },
    ]);
    assert.equal('probe' in (state.folders[1] ?? {}), false);
  });

  it('builds the detail: steps by index, the decision, findings most severe first, the last 500 events', () => {
    const findings = Array.from({ length: 70 }, (_, i) => ({
      severity: SEVERITIES[i % SEVERITIES.length] ?? 'info',
      title: `finding ${i}`,
      detail: 'more',
    }));
    const detail = buildDetail(
      'file:///a',
      records(run({ decision: 'kept as a patch' }), [
        step({ index: 1, name: 'review', role: 'reviewer', findings }),
        step({ index: 0 }),
      ]),
      'summary',
      Array.from({ length: 600 }, (_, i) => event(600 - i)),
      NOW,
    );
    assert.equal(detail.run.decision, 'kept as a patch');
    assert.deepEqual(
      detail.steps.map((view) => [view.index, view.name]),
      [
        [0, 'write'],
        [1, 'review'],
      ],
    );
    const severities = detail.steps[1]?.findings.map((finding) => finding.severity) ?? [];
    assert.equal(severities.length, LIMITS.findingsPerStep);
    assert.deepEqual(severities.slice(0, 14), Array(14).fill('critical'));
    assert.equal(severities.includes('info'), false, 'the least severe are the ones left out');
    assert.equal(detail.steps[1]?.findingsOmitted, findings.length - LIMITS.findingsPerStep);
    assert.equal(detail.steps[0]?.findingsOmitted, 0);
    assert.deepEqual(detail.omitted, { steps: 0, decisions: 0, changes: 0, inputs: 0 });
    assert.equal(detail.events.length, LIMITS.events);
    assert.equal(detail.events[0]?.seq, 101);
    assert.equal(detail.events[LIMITS.events - 1]?.seq, 600);
    assert.deepEqual(detail.steps[0]?.filesChanged, [{ path: 'README.md', change: 'added' }]);
    assert.deepEqual(detail.steps[0]?.diffStats, { files: 1, insertions: 10, deletions: 2 });
    assert.deepEqual(parseToWebview(detail), detail);
  });

  it('counts what the caps leave out of the detail, so the webview can say how much more summary.md has', () => {
    const steps = Array.from({ length: LIMITS.steps + 7 }, (_, index) =>
      step({
        index,
        name: `step-${index}`,
        filesChanged: Array.from({ length: LIMITS.filesPerStep + 3 }, (_, i) => ({
          path: `f${i}.txt`,
          change: 'added' as const,
        })),
      }),
    );
    const decisions = Array.from({ length: LIMITS.decisions + 11 }, (_, i) => ({
      time: at(i),
      message: `d${i}`,
    }));
    const inputs = Object.fromEntries(Array.from({ length: LIMITS.inputs + 2 }, (_, i) => [`in${i}`, i]));
    const detail = buildDetail(
      'file:///a',
      records(run(), steps, { decisions, playbookInputs: inputs }),
      'summary',
      [],
      NOW,
    );
    assert.deepEqual(detail.omitted, { steps: 7, decisions: 11, changes: 0, inputs: 2 });
    assert.equal(detail.steps.length, LIMITS.steps);
    assert.equal(detail.steps[0]?.filesChanged.length, LIMITS.filesPerStep);
    assert.equal(detail.steps[0]?.filesOmitted, 3);
    assert.equal(detail.decisions.at(-1)?.message, `d${LIMITS.decisions - 1}`);
    assert.deepEqual(parseToWebview(detail), detail);
  });

  it('builds the detail of a real run store run, events read from its file', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'tandem-dashboard-'));
    try {
      const store = await RunStore.open(root);
      const created = await store.create({
        kind: 'dispatch',
        strategy: null,
        owner: 'agent-z',
        prompt: 'p'.repeat(300),
        workers: ['codex-1'],
      });
      await store.update(created.id, { status: 'running', startedAt: at(5) });
      await store.appendEvent(created.id, { type: 'run_started', message: 'Run started.' });
      const state = buildState([folder({ runs: store.list({ limit: LIMITS.runsPerFolder }) })], NOW);
      const [listed] = state.folders[0]?.runs ?? [];
      assert.equal(listed?.id, created.id);
      assert.equal(listed?.strategy, null);
      assert.equal(listed?.status, 'running');
      assert.equal(listed?.prompt.length, LIMITS.promptChars);
      const detail = buildDetail(
        'k',
        records(store.get(created.id)),
        'live',
        await store.readEvents(created.id),
        NOW,
      );
      assert.equal(detail.run.task.length, 300, 'the detail keeps the whole task');
      assert.deepEqual(
        detail.events.map((view) => [view.seq, view.type]),
        [
          [1, 'run_queued'],
          [2, 'run_started'],
        ],
      );
      const more = buildEvents('k', created.id, await store.readEvents(created.id, 1));
      assert.deepEqual(
        more.events.map((view) => view.seq),
        [2],
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('cuts long texts in notices, outcomes and events', () => {
    const long = 'z'.repeat(LIMITS.textChars * 2);
    assert.equal(notice('error', long).text.length, LIMITS.textChars);
    const detail = buildDetail(
      'k',
      records(run({ outcome: long, prompt: long.repeat(2) }), [
        step({ finalMessage: long.repeat(2), argv: ['codex', long] }),
      ]),
      'summary',
      [event(1, { message: long })],
      NOW,
    );
    assert.equal(detail.run.outcome?.length, LIMITS.textChars);
    assert.equal(detail.events[0]?.message.length, LIMITS.textChars);
    assert.equal(detail.run.task.length, LIMITS.longTextChars);
    assert.equal(detail.steps[0]?.reply.length, LIMITS.longTextChars);
    assert.deepEqual(
      detail.steps[0]?.argv.map((arg) => arg.length),
      [5, LIMITS.textChars],
    );
  });

  it('builds the detail with every part of the summary: playbook, command, decisions, changes and inputs', () => {
    const detail = sampleDetail();
    assert.equal(detail.source, 'summary');
    assert.equal(detail.run.strategy, 'playbook:handoff');
    assert.deepEqual(detail.run.playbook, {
      name: 'handoff',
      hash: '0123456789ab',
      source: 'builtin:handoff',
    });
    assert.deepEqual(detail.steps[0]?.argv, ['/usr/bin/codex', 'exec']);
    assert.equal(detail.steps[1]?.signal, 'SIGTERM');
    assert.equal(detail.steps[0]?.reply, 'done');
    assert.deepEqual(detail.steps[1]?.findings, [
      { severity: 'high', title: 'Missing license', detail: '', file: 'README.md' },
    ]);
    assert.deepEqual(detail.decisions, [{ time: at(560), message: 'applied write' }]);
    // The dashboard does not show steering files yet; summary.md and the reviewer's prompt do.
    const { steeringFiles, ...shown } = change();
    assert.deepEqual(steeringFiles, []);
    assert.deepEqual(detail.changes, [shown]);
    assert.deepEqual(detail.inputs, [
      { name: 'writer', value: '"codex"' },
      { name: 'rounds', value: '1' },
    ]);
  });

  it('keeps the caps on a command, decisions, changes and their files', () => {
    const detail = buildDetail(
      'k',
      records(run(), [step({ argv: Array.from({ length: 300 }, (_, i) => `--flag-${i}`) })], {
        decisions: Array.from({ length: 600 }, (_, i) => ({ time: at(i), message: `decision ${i}` })),
        changes: Array.from({ length: 120 }, (_, i) =>
          change({
            label: `write-${i}`,
            files: Array.from({ length: 250 }, (_, f) => ({
              path: `f${f}.txt`,
              change: 'added',
              insertions: 1,
              deletions: 0,
            })),
          }),
        ),
      }),
      'summary',
      [],
      NOW,
    );
    assert.equal(detail.steps[0]?.argv.length, LIMITS.argvItems);
    assert.equal(detail.steps[0]?.argv[0], '--flag-0', 'the command keeps its first arguments');
    assert.equal(detail.decisions.length, LIMITS.decisions);
    assert.equal(detail.decisions[0]?.message, 'decision 0', 'the first decisions, in order');
    assert.equal(detail.changes.length, LIMITS.changes);
    assert.equal(detail.changes[0]?.files.length, LIMITS.filesPerChange);
    assert.deepEqual(parseToWebview(JSON.parse(JSON.stringify(detail))), detail);
  });
});
