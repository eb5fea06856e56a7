import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunStore, RunStoreError } from '../../src/orchestrator/run-store';
import { PanicSwitch } from '../../src/orchestrator/panic';

describe('run store', () => {
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'tandem-store-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const newRun = {
    kind: 'strategy' as const,
    strategy: 'single_worker' as const,
    owner: 'agent-a',
    prompt: 'do it',
    workers: ['codex'],
  };

  it('creates .tandem with a .gitignore that keeps it out of version control', async () => {
    await RunStore.open(root);
    assert.equal(readFileSync(path.join(root, '.tandem', '.gitignore'), 'utf8'), '*\n');
  });

  it('keeps runs across a reopen, the last record of an id winning', async () => {
    const store = await RunStore.open(root);
    const run = await store.create(newRun);
    assert.match(run.id, /^run-\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    assert.equal(run.status, 'queued');
    await store.update(run.id, { status: 'running' });
    await store.update(run.id, { status: 'succeeded', outcome: 'done' });
    const reopened = await RunStore.open(root);
    assert.equal(reopened.get(run.id).status, 'succeeded');
    assert.equal(reopened.get(run.id).outcome, 'done');
    assert.equal(reopened.size, 1);
  });

  it('lists newest first, filters by owner, status and strategy, and pages with before', async () => {
    const store = await RunStore.open(root);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const run = await store.create({ ...newRun, owner: i % 2 === 0 ? 'even' : 'odd' });
      ids.push(run.id);
    }
    await store.update(ids[1] as string, { status: 'failed' });
    assert.deepEqual(
      store.list().map((run) => run.id),
      [...ids].reverse(),
    );
    assert.deepEqual(
      store.list({ owner: 'odd' }).map((run) => run.id),
      [ids[3], ids[1]],
    );
    assert.deepEqual(
      store.list({ status: 'failed' }).map((run) => run.id),
      [ids[1]],
    );
    assert.deepEqual(store.list({ strategy: 'parallel_dual_write_review' }), []);
    const page1 = store.list({ limit: 2 });
    const page2 = store.list({ limit: 2, before: page1[1]?.id as string });
    assert.deepEqual(
      page2.map((run) => run.id),
      [ids[2], ids[1]],
    );
  });

  it('skips a torn last line after a crash and keeps appending cleanly', async () => {
    const store = await RunStore.open(root);
    const first = await store.create(newRun);
    appendFileSync(store.indexPath, '{"id":"run-20260101T000000Z-abcdef","kind":"str');
    const reopened = await RunStore.open(root);
    const second = await reopened.create(newRun);
    const third = await RunStore.open(root);
    assert.deepEqual(
      third.list().map((run) => run.id),
      [second.id, first.id],
    );
    assert.equal(third.skippedLines, 1);
  });

  it('sees runs another process appended, on refresh', async () => {
    const a = await RunStore.open(root);
    const b = await RunStore.open(root);
    const run = await a.create(newRun);
    assert.equal(b.has(run.id), false);
    await b.refresh();
    assert.equal(b.get(run.id).owner, 'agent-a');
  });

  it('loses no run when refreshes overlap while another process appends', async () => {
    const reader = await RunStore.open(root);
    const writer = await RunStore.open(root);
    const created: string[] = [];
    // Each round: the writer appends a run, and 8 refreshes of the reader start at once, so reads of the
    // index overlap with each other and with the file growing.
    for (let round = 0; round < 25; round++) {
      const writing = writer.create({ ...newRun, prompt: `round ${round}` });
      await Promise.all([...Array.from({ length: 8 }, () => reader.refresh()), writing]);
      created.push((await writing).id);
    }
    await reader.refresh();
    assert.equal(reader.skippedLines, 0);
    assert.deepEqual(
      reader.list({ limit: 100 }).map((run) => run.id),
      [...created].reverse(),
    );
  });

  it('numbers events per run and returns those after a cursor', async () => {
    const store = await RunStore.open(root);
    const run = await store.create(newRun);
    await store.appendEvent(run.id, { type: 'run_started', message: 'started' });
    await store.appendEvent(run.id, { type: 'decision', message: 'decided' });
    const all = await store.readEvents(run.id);
    assert.deepEqual(
      all.map((event) => [event.seq, event.type]),
      [
        [1, 'run_queued'],
        [2, 'run_started'],
        [3, 'decision'],
      ],
    );
    assert.deepEqual(
      (await store.readEvents(run.id, 2)).map((event) => event.seq),
      [3],
    );
  });

  it('waits for the next event, and gives up empty-handed at the timeout', async () => {
    const store = await RunStore.open(root);
    const run = await store.create(newRun);
    const waiting = store.waitForEvents(run.id, 1, 5000);
    setTimeout(() => void store.appendEvent(run.id, { type: 'run_started', message: 'go' }), 50);
    assert.deepEqual(
      (await waiting).map((event) => event.type),
      ['run_started'],
    );
    const started = Date.now();
    assert.deepEqual(await store.waitForEvents(run.id, 2, 200), []);
    assert.ok(Date.now() - started >= 190);
  });

  it('redacts secrets from the index, the prompt file and events', async () => {
    const secret = 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789';
    const store = await RunStore.open(root);
    const run = await store.create({ ...newRun, prompt: `use key ${secret} please` });
    await store.appendEvent(run.id, { type: 'decision', message: `leaked ${secret}` });
    for (const file of [
      store.indexPath,
      path.join(store.runDir(run.id), 'prompt.txt'),
      path.join(store.runDir(run.id), 'events.jsonl'),
    ]) {
      const text = readFileSync(file, 'utf8');
      assert.ok(!text.includes(secret), `${file} holds the secret`);
      assert.match(text, /\[REDACTED\]/);
    }
  });

  it('names an unknown run and refuses a malformed id before touching the disk', async () => {
    const store = await RunStore.open(root);
    assert.throws(
      () => store.get('run-20260101T000000Z-000000'),
      (error: unknown) => error instanceof RunStoreError && error.code === 'UNKNOWN_RUN',
    );
    assert.throws(
      () => store.runDir('../../etc'),
      (error: unknown) => error instanceof RunStoreError && error.code === 'INVALID_RUN_ID',
    );
  });
});

describe('panic switch', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'tandem-panic-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('survives a restart and is seen by every switch on the workspace', async () => {
    const a = await PanicSwitch.open(root);
    const b = await PanicSwitch.open(root);
    await a.engage('agent-a', 'runaway writer');
    assert.equal(b.engaged, false);
    assert.equal((await b.reload()).engaged, true);
    const restarted = await PanicSwitch.open(root);
    assert.deepEqual(
      [restarted.engaged, restarted.status().engagedBy, restarted.status().reason],
      [true, 'agent-a', 'runaway writer'],
    );
    await restarted.release('human');
    assert.equal((await a.reload()).engaged, false);
  });

  it('fails closed: an unreadable panic.json counts as engaged', async () => {
    const panic = await PanicSwitch.open(root);
    appendFileSync(path.join(root, '.tandem', 'panic.json'), '{not json');
    const state = await panic.reload();
    assert.equal(state.engaged, true);
    assert.match(state.reason ?? '', /could not be read/);
  });
});
