// Issue 15: with the real codex on the offline model, a task that carries a credential and the value of a
// secret-named variable leaves neither raw anywhere under .tandem/: not in the run's records and not in the
// step logs, where codex's own event stream (the model echoes the task) is spilled as it arrives.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openServices, type TandemServices } from '../../src/mcp/services';
import type { StepRecord } from '../../src/orchestrator/model';
import { OfflineModelServer } from '../../src/offline/model-server';
import { CODEX_BIN, GEMINI_BIN, scratchDir } from '../support/real-cli';

const ENV_NAME = 'TANDEM_REAL_LEAK_API_KEY';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const file = path.join(dir, entry);
    return lstatSync(file).isDirectory() ? filesUnder(file) : [file];
  });
}

describe('redaction of a run with the real codex', function () {
  this.timeout(90_000);
  let scratch: string;
  let root: string;
  let model: OfflineModelServer;
  let services: TandemServices | undefined;

  before(async () => {
    scratch = scratchDir('redaction');
    root = path.join(scratch, 'workspace');
    mkdirSync(root);
    writeFileSync(path.join(root, 'README.md'), '# sample\n');
    model = await OfflineModelServer.start();
  });
  after(async () => {
    await services?.close();
    delete process.env[ENV_NAME];
    await model.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('keeps a token in the task and a secret-named variable out of every file under .tandem/', async () => {
    const token = `sk-proj-${randomBytes(24).toString('hex')}`;
    const envValue = `realenv${randomBytes(12).toString('hex')}`;
    process.env[ENV_NAME] = envValue;
    services = await openServices({
      workspaceRoot: root,
      endpoint: { type: 'offline', openaiBaseUrl: model.openaiBaseUrl, geminiBaseUrl: model.geminiBaseUrl },
      cliPaths: { codex: CODEX_BIN, gemini: GEMINI_BIN },
      // The variable reaches codex too: whatever the CLI does with it, its output is redacted.
      extraEnvNames: [ENV_NAME],
    });
    const started = await services.orchestrator.startStrategy({
      owner: 'tester',
      strategy: 'single_worker',
      prompt: `[[scenario:echo]] Call the API with ${token} and the key ${envValue}.`,
    });
    const run = await services.orchestrator.finished(started.id);
    assert.equal(run.status, 'succeeded', run.outcome ?? '');

    const steps = JSON.parse(
      readFileSync(path.join(services.store.runDir(run.id), 'steps.json'), 'utf8'),
    ) as StepRecord[];
    const stdoutLog = path.join(steps[0]?.logDir as string, 'codex.stdout.log');
    // The model echoed the task: codex printed it in its events, which reached the log masked.
    assert.match(readFileSync(stdoutLog, 'utf8'), /Call the API with \[REDACTED\] and the key \[REDACTED\]/);

    const files = filesUnder(path.join(root, '.tandem'));
    assert.ok(files.includes(stdoutLog));
    for (const file of files) {
      const text = readFileSync(file, 'latin1');
      const where = path.relative(root, file);
      assert.ok(!text.includes(token), `${where} holds the token`);
      assert.ok(!text.includes(envValue), `${where} holds the variable's value`);
      assert.doesNotMatch(text, /(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}/, `${where} holds a token shape`);
    }
  });
});
