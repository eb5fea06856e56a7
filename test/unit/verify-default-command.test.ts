// The default verification command comes from the candidate copy's package.json, a file the writer controls:
// a FIFO or a link put there by a hostile worker must not hang the run or be followed out of the copy.
import * as assert from 'node:assert/strict';
import { existsSync, lstatSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runProcess } from '../../src/core/exec';
import { builtinPlaybook } from '../../src/orchestrator/playbook/library';
import { resolveInputs } from '../../src/orchestrator/playbook/schema';
import { openHarness, type McpHarness } from '../support/mcp-harness';

function existsOrLink(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

describe('the default verification command of a candidate copy', function () {
  this.timeout(30_000);
  let harness: McpHarness | undefined;

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  async function adjudicate(
    plant: (manifest: string) => Promise<void>,
    verify: string[] = [],
  ): Promise<string> {
    harness = await openHarness();
    const leave = async (cwd: string): Promise<void> => {
      // Writers work in copies (reviewers there too, after them): plant once, in each copy.
      const manifest = path.join(cwd, 'package.json');
      if (cwd !== harness?.root && !existsOrLink(manifest)) await plant(manifest);
    };
    harness.fakes.codex.afterStep = leave;
    harness.fakes.gemini.afterStep = leave;
    const loaded = builtinPlaybook('parallel_adjudicate');
    assert.ok(loaded);
    const { orchestrator, store } = harness.services;
    const started = await orchestrator.startPlaybook({
      owner: 'agent-a',
      task: '[[scenario:write path=a.txt content=one]] Write a.txt.',
      playbook: loaded.playbook,
      source: loaded.source,
      hash: loaded.hash,
      inputs: resolveInputs(loaded.playbook, verify.length > 0 ? { verify } : {}, loaded.source),
      apply: 'never',
    });
    await orchestrator.finished(started.id);
    const events = await store.readEvents(started.id, 0, Number.POSITIVE_INFINITY);
    const adjudication = events.find(
      (event) => event.type === 'decision' && /^adjudicate:/.test(event.message),
    );
    assert.ok(adjudication, 'the run reached its adjudication');
    return adjudication.message;
  }

  it('is not read from a FIFO the writer left as package.json: the run ends, with no command to verify', async () => {
    const decision = await adjudicate(async (manifest) => {
      const made = await runProcess({ command: 'mkfifo', args: [manifest], cwd: path.dirname(manifest) });
      assert.equal(made.exitCode, 0, made.stderr.text);
    });
    assert.match(decision, /codex_solution \(codex\): verification not run/);
    assert.match(decision, /gemini_solution \(gemini\): verification not run/);
  });

  it('is not read through a link the writer left as package.json', async () => {
    const outside = path.join(os.tmpdir(), `tandem-outside-manifest-${process.pid}.json`);
    writeFileSync(outside, JSON.stringify({ scripts: { test: 'node -e 0' } }));
    const decision = await adjudicate(async (manifest) => symlinkSync(outside, manifest));
    assert.match(decision, /codex_solution \(codex\): verification not run/);
    assert.match(decision, /gemini_solution \(gemini\): verification not run/);
  });

  it('is npm test when the copy has a package.json with a test script', async () => {
    const decision = await adjudicate(async (manifest) =>
      writeFileSync(manifest, JSON.stringify({ scripts: { test: 'node -e 0' } })),
    );
    assert.doesNotMatch(decision, /verification not run/);
    assert.match(decision, /verification (passed|failed)/);
  });

  it("leaves nothing of a verification's home and temp folder in the run's record", async () => {
    const writeHome =
      "const fs = require('fs'), os = require('os');" +
      "fs.writeFileSync(os.homedir() + '/token', 'written by a test');" +
      "fs.writeFileSync(os.tmpdir() + '/cache', 'x');";
    const decision = await adjudicate(async () => undefined, [process.execPath, '-e', writeHome]);
    assert.match(decision, /verification passed/);
    const runs = path.join(harness?.root ?? '', '.tandem', 'runs');
    const left = readdirSync(runs).flatMap((run) => {
      const scratch = path.join(runs, run, 'verify');
      return existsSync(scratch) ? readdirSync(scratch).map((name) => `${run}/verify/${name}`) : [];
    });
    assert.deepEqual(left, []);
  });
});
