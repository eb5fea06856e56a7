import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runProcess, type ExecResult } from '../../src/core/exec';
import { probeReportSchema } from '../../src/workers/probe';

const REPO = path.resolve(__dirname, '..', '..', '..');
const MAIN = path.join(REPO, 'out', 'src', 'cli', 'main.js');
const REAL_BIN = path.join(REPO, 'node_modules', '.bin');
const NODE_DIR = path.dirname(process.execPath);

describe('tandem-mcp probe', function () {
  this.timeout(60_000);

  let work: string;
  let home: string;

  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'tandem-cli-probe-'));
    home = mkdtempSync(path.join(os.tmpdir(), 'tandem-cli-probe-home-'));
  });
  after(() => {
    rmSync(work, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  });

  function cli(args: string[], searchPath: string): Promise<ExecResult> {
    return runProcess({
      command: process.execPath,
      args: [MAIN, ...args],
      cwd: work,
      env: { set: { PATH: searchPath, HOME: home } },
      timeoutMs: 45_000,
    });
  }

  it('prints a schemaVersion 1 document with codex and gemini found on PATH', async () => {
    const result = await cli(['probe', '--json'], [REAL_BIN, NODE_DIR].join(path.delimiter));
    assert.equal(result.exitCode, 0, result.stderr.text);
    const report = probeReportSchema.parse(JSON.parse(result.stdout.text));
    assert.equal(report.schemaVersion, 1);
    assert.deepEqual(
      report.clis.map((entry) => [entry.kind, entry.installed, entry.version, entry.versionInTestedRange]),
      [
        ['codex', true, '0.169.0', true],
        ['gemini', true, '0.61.0', true],
      ],
    );
    assert.equal(report.clis[0]?.path, path.join(REAL_BIN, 'codex'));
  });

  it('reports both as not installed, with exit code 0, when PATH lacks them', async () => {
    const result = await cli(['probe', '--json'], path.join(work, 'no-such-dir'));
    assert.equal(result.exitCode, 0, result.stderr.text);
    const report = probeReportSchema.parse(JSON.parse(result.stdout.text));
    assert.deepEqual(
      report.clis.map((entry) => [entry.kind, entry.installed, entry.path, entry.installHint]),
      [
        ['codex', false, null, 'npm install -g @openai/codex'],
        ['gemini', false, null, 'npm install -g @google/gemini-cli'],
      ],
    );
  });

  it('takes --codex-path and --gemini-path over PATH', async () => {
    const result = await cli(
      [
        'probe',
        '--json',
        '--codex-path',
        path.join(work, 'missing-codex'),
        `--gemini-path=${path.join(REAL_BIN, 'gemini')}`,
      ],
      [REAL_BIN, NODE_DIR].join(path.delimiter),
    );
    assert.equal(result.exitCode, 0, result.stderr.text);
    const [codex, gemini] = probeReportSchema.parse(JSON.parse(result.stdout.text)).clis;
    assert.equal(codex?.installed, false);
    assert.ok(codex?.error?.includes(path.join(work, 'missing-codex')));
    assert.equal(gemini?.version, '0.61.0');
  });

  it('prints a readable summary without --json', async () => {
    const result = await cli(
      ['probe', '--gemini-path', path.join(work, 'nope')],
      [REAL_BIN, NODE_DIR].join(path.delimiter),
    );
    assert.equal(result.exitCode, 0, result.stderr.text);
    const text = result.stdout.text;
    assert.match(text, /^codex: installed$/m);
    assert.match(text, /^ {2}version: +0\.169\.0 \(in the tested range >=0\.169\.0 <0\.170\.0\)$/m);
    assert.match(text, /^ {2}auth: +none$/m);
    assert.match(text, /^gemini: not installed$/m);
    assert.match(text, /^ {2}install: +npm install -g @google\/gemini-cli$/m);
    assert.match(text, /^ {2}warning: +No codex credentials found/m);
  });

  it('exits 2 with the usage on stderr, and nothing on stdout, for bad usage', async () => {
    for (const args of [
      ['probe', '--bogus'],
      ['probe', '--codex-path'],
      ['probe', 'extra'],
    ]) {
      const result = await cli(args, NODE_DIR);
      assert.equal(result.exitCode, 2, args.join(' '));
      assert.equal(result.stdout.text, '');
      assert.match(result.stderr.text, /Usage: tandem-mcp/);
    }
  });

  it('still answers version and help', async () => {
    const version = await cli(['version'], NODE_DIR);
    assert.equal(version.exitCode, 0);
    assert.match(version.stdout.text, /^tandem-mcp \d+\.\d+\.\d+\n$/);
    const help = await cli(['help'], NODE_DIR);
    assert.equal(help.exitCode, 0);
    assert.match(help.stdout.text, /probe +check the codex and gemini CLIs/);
  });
});
