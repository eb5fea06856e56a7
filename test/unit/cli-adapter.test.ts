import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkspaceJail } from '../../src/core/jail';
import { createCodexAdapter } from '../../src/workers/codex';
import { FIXTURES } from '../support/processes';

describe('CLI adapter with a stand-in codex', () => {
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'tandem-cli-adapter-'));
    mkdirSync(path.join(scratch, 'ws'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  it('finishes the step even when an event listener throws', async () => {
    const adapter = createCodexAdapter({
      jail: await WorkspaceJail.open(path.join(scratch, 'ws')),
      stateDir: path.join(scratch, 'state'),
      binaryPath: path.join(FIXTURES, 'fake-codex.cjs'),
      endpoint: {
        type: 'offline',
        openaiBaseUrl: 'http://127.0.0.1:9/v1',
        geminiBaseUrl: 'http://127.0.0.1:9',
      },
    });
    let calls = 0;
    const result = await adapter.runStep(
      { kind: 'codex', role: 'reviewer', cwd: '.', prompt: 'Review it.' },
      {
        onEvent: () => {
          calls += 1;
          throw new Error('listener bug');
        },
      },
    );
    assert.equal(result.status, 'succeeded', result.errorMessage);
    assert.match(result.finalMessage, /^done \(\d+ chars\)$/);
    assert.ok(calls >= 2, `the listener was called ${calls} times`);
  });
});
