// A worker's pid and start time are what start-up recovery kills by: the step does not move on to being
// finished before they are written, and a worker whose record cannot be written is stopped rather than left
// running where a crash would hide it. The workers are real processes (test/fixtures stand-ins for codex);
// only the store's write of the record is made slow or failing.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bootId } from '../../src/core/exec';
import type { RunEvent, StepRecord } from '../../src/orchestrator/model';
import { openServices, type TandemServices } from '../../src/mcp/services';
import { fixture, isGroupAlive, killQuietly } from '../support/processes';

type EventInput = Parameters<TandemServices['store']['appendEvent']>[1];

describe("recording a worker's pid and start time", function () {
  let root: string;
  let services: TandemServices | undefined;
  const workerPids: number[] = [];

  beforeEach(async function () {
    root = await mkdtemp(path.join(os.tmpdir(), 'tandem-worker-record-'));
    await writeFile(path.join(root, 'README.md'), '# worker record\n');
  });

  afterEach(async function () {
    killQuietly(workerPids.splice(0));
    await services?.close();
    services = undefined;
    await rm(root, { recursive: true, force: true });
  });

  /** Services whose codex is `codexFixture`; `writeRecord` stands in for the store's write of a pid record. */
  async function open(
    codexFixture: string,
    writeRecord: (write: () => Promise<RunEvent>, event: EventInput) => Promise<RunEvent>,
  ): Promise<TandemServices> {
    const opened = await openServices({
      workspaceRoot: root,
      cliPaths: { codex: fixture(codexFixture), gemini: fixture(codexFixture) },
      recover: false,
    });
    const append = opened.store.appendEvent.bind(opened.store);
    opened.store.appendEvent = (id, event) => {
      const pid = event.data?.pid;
      if (typeof pid !== 'number') return append(id, event);
      workerPids.push(pid);
      return writeRecord(() => append(id, event), event);
    };
    services = opened;
    return opened;
  }

  async function stepsOf(opened: TandemServices, runId: string): Promise<StepRecord[]> {
    return JSON.parse(
      await readFile(path.join(opened.store.runDir(runId), 'steps.json'), 'utf8'),
    ) as StepRecord[];
  }

  it('does not record a step as finished before its worker pid and start time are written', async function () {
    // The worker answers at once; its record reaches the disk only 300 ms later.
    const opened = await open('fake-codex.cjs', async (write) => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return write();
    });
    const run = await opened.orchestrator.startStrategy({
      owner: 'agent-a',
      strategy: 'single_worker',
      prompt: 'Say done.',
    });
    await opened.orchestrator.finished(run.id);
    const events = await opened.store.readEvents(run.id);
    const recorded = events.findIndex((event) => typeof event.data?.pid === 'number');
    const finished = events.findIndex((event) => event.type === 'step_finished' && event.step === 1);
    assert.ok(recorded !== -1, 'the pid was recorded');
    assert.equal(typeof events[recorded]?.data?.startTime, 'string', 'with its start time');
    assert.equal(events[recorded]?.data?.bootId, bootId(), "and this boot's id");
    assert.match(String(events[recorded]?.data?.bootId), /^[0-9a-f-]{32,36}$/);
    assert.ok(finished > recorded, `step_finished (#${finished}) comes after the pid record (#${recorded})`);
  });

  it('stops a worker whose pid and start time cannot be written, and says why', async function () {
    const opened = await open('hang-cli.cjs', () =>
      Promise.reject(new Error('ENOSPC: no space left on device')),
    );
    const started = Date.now();
    const run = await opened.orchestrator.startStrategy({
      owner: 'agent-a',
      strategy: 'single_worker',
      prompt: '[[scenario:hang]] Hang until stopped.',
    });
    const ended = await opened.orchestrator.finished(run.id);
    assert.ok(Date.now() - started < 15_000, 'the hanging worker was stopped, not waited for');
    assert.notEqual(ended.status, 'succeeded');
    const [step] = await stepsOf(opened, run.id);
    assert.equal(step?.status, 'failed');
    assert.match(
      step?.errorMessage ?? '',
      /^Stopped: its process could not be recorded for crash recovery \(ENOSPC: no space left on device\)\.$/,
    );
    const [pid] = workerPids;
    assert.ok(pid !== undefined, 'the worker started');
    assert.equal(isGroupAlive(pid), false, 'nothing is left of the worker or the grandchild in its group');
  });
});
