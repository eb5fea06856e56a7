// Issue 15: "secrets are redacted from everything written" holds for every byte under .tandem/, the step logs
// (a child's raw output spilled to disk) included, however the output is cut into chunks, and one long stderr
// line is not copied whole into every record of its step.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { CappedLogFile } from '../../src/core/exec';
import { REDACTED, Redactor, StreamRedactor, redactCapturedText, redactCutText } from '../../src/core/redact';
import { openServices, type TandemServices } from '../../src/mcp/services';
import type { StepRecord } from '../../src/orchestrator/model';
import { MAX_ERROR_MESSAGE_CHARS, stepErrorMessage } from '../../src/workers/cli-adapter';
import type { WorkerKind } from '../../src/workers/contract';
import { fixture } from '../support/processes';

const ENV_NAME = 'TANDEM_LEAK_TEST_API_KEY';
const LOG_CAP = 256 * 1024;
/** Runs of the long line's filler ('z') at least this long count as copied from it. */
const FILLER_RUN = /z{50,}/g;

function alphanumeric(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(length)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

/** A value known from the environment and three credential shapes, each new per test. */
function plantedSecrets(): string[] {
  return [
    `envknown${alphanumeric(24)}`,
    `sk-proj-${alphanumeric(40)}`,
    `ghp_${alphanumeric(36)}`,
    `AKIA${alphanumeric(16).toUpperCase()}`,
  ];
}

/** The value and both halves of it (what a cut through it would leave), each long enough to be telling. */
function leakForms(value: string): string[] {
  const half = Math.floor(value.length / 2);
  return [value, value.slice(0, half), value.slice(half)].filter((form) => form.length >= 8);
}

const TOKEN_SHAPES = [
  /(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}/,
  /gh[pousr]_[A-Za-z0-9]{20,}/,
  /(?<![A-Za-z0-9])AKIA[A-Z0-9]{16}(?![A-Za-z0-9])/,
];

function filesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir)) {
    const file = path.join(dir, entry);
    const stat = lstatSync(file);
    if (stat.isDirectory()) found.push(...filesUnder(file));
    else found.push(file);
  }
  return found;
}

describe('redaction of everything a step writes under .tandem/', function () {
  this.timeout(60_000);
  let root: string;
  let services: TandemServices | undefined;

  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'tandem-leak-'));
    await writeFile(path.join(root, 'README.md'), '# leak\n');
  });
  afterEach(async () => {
    await services?.close();
    services = undefined;
    delete process.env[ENV_NAME];
    await rm(root, { recursive: true, force: true });
  });

  const cases: { kind: WorkerKind; maxOutputBytes?: number }[] = [
    { kind: 'codex' },
    { kind: 'codex', maxOutputBytes: 64 * 1024 },
    { kind: 'gemini' },
    { kind: 'gemini', maxOutputBytes: 64 * 1024 },
  ];
  for (const { kind, maxOutputBytes } of cases) {
    const capture = maxOutputBytes === undefined ? 'the default capture' : 'a 64 KiB capture';
    it(`${kind} with ${capture}: no planted secret, half of one or token shape in any file, and no file holds more than the error message cap of a 512 KiB stderr line`, async () => {
      const secrets = plantedSecrets();
      process.env[ENV_NAME] = secrets[0];
      services = await openServices({
        workspaceRoot: root,
        cliPaths: { codex: fixture('leaky-cli.cjs'), gemini: fixture('leaky-cli.cjs') },
        endpoint: {
          type: 'offline',
          openaiBaseUrl: 'http://127.0.0.1:9/v1',
          geminiBaseUrl: 'http://127.0.0.1:9',
        },
        limits: { maxLogBytes: LOG_CAP, ...(maxOutputBytes === undefined ? {} : { maxOutputBytes }) },
        recover: false,
      });
      const tag = Buffer.from(JSON.stringify(secrets)).toString('base64url');
      const started = await services.orchestrator.startStrategy({
        owner: 'agent-a',
        strategy: 'single_worker',
        writer: kind,
        prompt: `[[leak:${tag}]] Write it.`,
      });
      const run = await services.orchestrator.finished(started.id);
      assert.equal(run.status, 'failed', run.outcome ?? '');

      const runDir = services.store.runDir(run.id);
      const steps = JSON.parse(await readFile(path.join(runDir, 'steps.json'), 'utf8')) as StepRecord[];
      const step = steps[0] as StepRecord;
      assert.equal(step.status, 'cli_error');
      // gemini's message keeps 500 characters of stderr of its own; codex's quotes the whole last line.
      if (kind === 'codex') assert.match(step.errorMessage ?? '', /… \(cut, \d+ bytes\)$/);
      assert.ok((step.errorMessage ?? '').length <= MAX_ERROR_MESSAGE_CHARS + 30, step.errorMessage ?? '');
      const logDir = step.logDir as string;
      const stdoutLog = path.join(logDir, `${kind}.stdout.log`);
      const stderrLog = path.join(logDir, `${kind}.stderr.log`);
      // The logs were written, and the split values went through them masked, not dropped.
      assert.match(readFileSync(stdoutLog, 'utf8'), /split: \[REDACTED\] done/);
      assert.match(readFileSync(stderrLog, 'utf8'), /warning: split \[REDACTED\] done/);

      const files = filesUnder(path.join(root, '.tandem'));
      assert.ok(files.includes(stdoutLog) && files.includes(stderrLog), 'both step logs are under .tandem/');
      for (const file of files) {
        const text = readFileSync(file, 'latin1');
        const where = path.relative(root, file);
        for (const secret of secrets) {
          for (const form of leakForms(secret)) assert.ok(!text.includes(form), `${where} holds "${form}"`);
        }
        for (const shape of TOKEN_SHAPES) assert.doesNotMatch(text, shape, `${where} holds a token`);
        const copied = [...text.matchAll(FILLER_RUN)].reduce((sum, [run]) => sum + run.length, 0);
        if (file === stderrLog) assert.ok(lstatSync(file).size <= LOG_CAP, `${where} is past the log cap`);
        else
          assert.ok(
            copied <= 8 * MAX_ERROR_MESSAGE_CHARS,
            `${where} holds ${copied} characters of the long stderr line`,
          );
      }
    });
  }
});

describe('stream redaction', () => {
  const secret = `envknown${alphanumeric(24)}`;
  const token = `ghp_${alphanumeric(36)}`;
  const redactor = new Redactor({ secretValues: [secret] });

  function streamed(chunks: (string | Buffer)[], maxPending?: number): string {
    const stream = new StreamRedactor(redactor, maxPending);
    return chunks.map((chunk) => stream.push(chunk)).join('') + stream.end();
  }

  /** Cuts text into consecutive pieces at the given offsets. */
  function cut(text: string, offsets: number[]): string[] {
    const points = [...new Set(offsets.map((offset) => offset % (text.length + 1)))].sort((a, b) => a - b);
    const pieces: string[] = [];
    let start = 0;
    for (const point of points) {
      pieces.push(text.slice(start, point));
      start = point;
    }
    pieces.push(text.slice(start));
    return pieces;
  }

  it('masks a secret and a token each split across two chunks', () => {
    const out = streamed([
      'key ',
      secret.slice(0, 10),
      `${secret.slice(10)} and ${token.slice(0, 7)}`,
      `${token.slice(7)}\n`,
    ]);
    assert.equal(out, `key ${REDACTED} and ${REDACTED}\n`);
  });

  it('gives what redacting the whole text gives, however lines are cut into chunks (property)', () => {
    const words = fc.constantFrom(
      secret,
      token,
      'api_key=hunter2hunter2',
      'plain',
      'words',
      ' ',
      ':',
      '=',
      '"',
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.array(words, { maxLength: 12 }).map((parts) => parts.join('')),
          { maxLength: 12 },
        ),
        fc.array(fc.nat(), { maxLength: 20 }),
        (lines, offsets) => {
          const text = lines.map((line) => `${line}\n`).join('');
          assert.equal(streamed(cut(text, offsets)), redactor.redact(text));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('lets no secret or half of one out of a long line cut to fit the pending limit (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(secret, token, 'z'.repeat(37), ' ', 'token: '), { maxLength: 120 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (parts, offsets) => {
          // Commas, not spaces: a cut that cannot fall after whitespace. (A token glued to a word is no
          // token to the redactor, streamed or not.)
          const out = streamed(cut(parts.join(','), offsets), 256);
          for (const value of [secret, token]) {
            for (const form of leakForms(value)) assert.ok(!out.includes(form), `"${form}" in ${out}`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('holds a private key block until its END line and masks its body', () => {
    const body = `${alphanumeric(64)}\n${alphanumeric(64)}\n`;
    const pem = `-----BEGIN RSA PRIVATE KEY-----\n${body}-----END RSA PRIVATE KEY-----\n`;
    const stream = new StreamRedactor(redactor);
    const first = stream.push(`before\n${pem.slice(0, 60)}`);
    assert.equal(first, 'before\n');
    const out = first + stream.push(pem.slice(60)) + stream.end();
    assert.equal(
      out,
      `before\n-----BEGIN RSA PRIVATE KEY-----\n${REDACTED}\n-----END RSA PRIVATE KEY-----\n`,
    );
  });

  it('masks a multi-line known value line by line, so a cut between its lines hides both', () => {
    const lines = [alphanumeric(20), alphanumeric(20)];
    const multi = new Redactor({ secretValues: [lines.join('\n')] });
    const stream = new StreamRedactor(multi);
    const out = stream.push(`${lines[0]}\n`) + stream.push(`${lines[1]}\n`) + stream.end();
    assert.equal(out, `${REDACTED}\n${REDACTED}\n`);
  });

  it('keeps multi-byte characters whole across chunks', () => {
    const bytes = Buffer.from('日本 ok\n');
    assert.equal(streamed([bytes.subarray(0, 2), bytes.subarray(2)]), '日本 ok\n');
  });
});

describe('a capped log file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-log-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('redacts before it caps: a cap through a secret leaves no half of it', async () => {
    const secret = `envknown${alphanumeric(24)}`;
    const file = path.join(dir, 'out.log');
    // Raw, the cap (20 bytes) would fall in the middle of the secret.
    const log = new CappedLogFile(file, 20, new Redactor({ secretValues: [secret] }));
    log.write(Buffer.from(`0123456 ${secret.slice(0, 12)}`));
    log.write(Buffer.from(`${secret.slice(12)} tail\n`));
    const closed = await log.close();
    const text = await readFile(file, 'utf8');
    assert.equal(text, `0123456 ${REDACTED} tail\n`.slice(0, 20));
    assert.deepEqual(closed, { path: file, bytesWritten: 20, truncated: true });
    for (const form of leakForms(secret)) assert.ok(!text.includes(form));
  });
});

describe('redacted capture text and error messages', () => {
  const secret = `envknown${alphanumeric(24)}`;
  const redactor = new Redactor({ secretValues: [secret] });

  it('drops the words cut at the gap between head and tail', () => {
    const text = redactCapturedText(
      {
        head: `start ${secret.slice(0, 16)}`,
        tail: `${secret.slice(16)} end`,
        truncated: true,
        totalBytes: 1000,
        capturedBytes: 40,
      },
      redactor,
    );
    assert.equal(text, 'start \n[... 960 bytes not kept in memory ...]\n end');
  });

  it('drops the word a cap cut at the end of a text, after redacting it', () => {
    assert.equal(redactCutText(`start ${secret} ${secret.slice(0, 12)}`, redactor), `start ${REDACTED} `);
  });

  it('caps a long message after redacting it and says how many bytes were cut', () => {
    const message = `${'z'.repeat(MAX_ERROR_MESSAGE_CHARS - 4)} ${secret} ${'é'.repeat(100)}`;
    const capped = stepErrorMessage(message, redactor);
    const kept = `${'z'.repeat(MAX_ERROR_MESSAGE_CHARS - 4)} ${REDACTED}`.slice(0, MAX_ERROR_MESSAGE_CHARS);
    const cutBytes =
      Buffer.byteLength(`${'z'.repeat(MAX_ERROR_MESSAGE_CHARS - 4)} ${REDACTED} ${'é'.repeat(100)}`) -
      kept.length;
    assert.equal(capped, `${kept}… (cut, ${cutBytes} bytes)`);
    assert.equal(stepErrorMessage('short', redactor), 'short');
  });
});
