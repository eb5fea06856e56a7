// The codex and gemini event parsers and exit classifiers, specified against the real CLIs' recorded output
// (test/fixtures/cli-samples: codex 0.169.0 `exec --json`, gemini 0.61.0 `-o stream-json`). Each stream is
// replayed through the exec helper's LineSplitter in small chunks, the way a live process delivers it.
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { HeadTailBuffer, LineSplitter, type ExecResult } from '../../src/core/exec';
import {
  TRUNCATION_MARK,
  classifyErrorText,
  type EventParser,
  type ParsedStream,
} from '../../src/workers/cli-adapter';
import { CodexEventParser, codexSpec } from '../../src/workers/codex';
import type { StepStatus, TokenUsage, WorkerEvent } from '../../src/workers/contract';
import { GEMINI_EXIT_CODES, GeminiEventParser, geminiSpec } from '../../src/workers/gemini';

const SAMPLES = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'cli-samples');
const MiB = 1024 * 1024;
/** Odd-sized chunks, so lines (and the recorder's cut lines) arrive split across reads. */
const CHUNK_BYTES = 97;

function sample(name: string): Buffer {
  return readFileSync(path.join(SAMPLES, name));
}

/** The exit code the recorder saw (`# rc=N duration=...` on the first line of the .cmd.txt). */
function recordedExitCode(scenario: string): number {
  const first = sample(`${scenario}.cmd.txt`).toString('utf8').split('\n')[0] ?? '';
  const match = /^# rc=(\d+) /.exec(first);
  assert.ok(match, `no rc in ${scenario}.cmd.txt: ${first}`);
  return Number(match[1]);
}

interface Replay {
  result: ParsedStream;
  events: WorkerEvent[];
  truncatedLines: number;
}

function replay(parser: EventParser, bytes: Buffer, maxLineBytes = MiB): Replay {
  const events: WorkerEvent[] = [];
  let truncatedLines = 0;
  const splitter = new LineSplitter((line) => {
    if (line.truncated) truncatedLines += 1;
    events.push(...parser.push(line.text, line.truncated));
  }, maxLineBytes);
  for (let offset = 0; offset < bytes.length; offset += CHUNK_BYTES) {
    splitter.push(bytes.subarray(offset, offset + CHUNK_BYTES));
  }
  splitter.flush();
  return { result: parser.result(), events, truncatedLines };
}

function codex(scenario: string, maxTextChars = MiB, maxLineBytes = MiB): Replay {
  return replay(new CodexEventParser(maxTextChars), sample(`codex-${scenario}.stdout.jsonl`), maxLineBytes);
}

function gemini(scenario: string, maxTextChars = MiB, maxLineBytes = MiB): Replay {
  return replay(new GeminiEventParser(maxTextChars), sample(`gemini-${scenario}.stdout.jsonl`), maxLineBytes);
}

/**
 * The recorder cut each flood line in the middle and put a `...[truncated: N bytes total, M lines]...`
 * line in its place. Joining the cut line's head and tail (dropping the marker) gives one valid event
 * holding a long text: the closest thing to the real flood the fixtures keep.
 */
function reassembledFloodLine(file: string): string {
  const lines = sample(file).toString('utf8').split('\n');
  const marker = lines.findIndex((line) =>
    /^\.\.\.\[truncated: \d+ bytes total, \d+ lines\]\.\.\.$/.test(line),
  );
  assert.ok(marker > 0, `no recorder marker in ${file}`);
  const joined = `${lines[marker - 1]}${lines[marker + 1]}`;
  JSON.parse(joined); // throws if the reassembly is not one valid event
  return joined;
}

function usage(input: number, output: number, total: number, cached = 0, reasoning = 0): TokenUsage {
  return {
    inputTokens: input,
    outputTokens: output,
    cachedInputTokens: cached,
    reasoningTokens: reasoning,
    totalTokens: total,
  };
}

function assertCleanCompletion(result: ParsedStream): void {
  assert.equal(result.completed, true, 'completed');
  assert.equal(result.errorMessage, undefined, 'errorMessage');
  assert.equal(result.errorStatus, undefined, 'errorStatus');
  assert.equal(result.malformedEventCount, 0, 'malformedEventCount');
}

const HELLO = 'Hello from the mock model.';

describe('CodexEventParser on recorded codex 0.169.0 streams', () => {
  it('reads the final message and the exact token usage of a plain reply', () => {
    const { result, events } = codex('reply');
    assertCleanCompletion(result);
    assert.equal(result.finalMessage, HELLO);
    // turn.completed: input_tokens 9776, cached_input_tokens 0, output_tokens 7, reasoning_output_tokens 0.
    assert.deepEqual(result.usage, usage(9776, 7, 9783));
    assert.equal(result.eventCount, 4);
    assert.deepEqual(result.commands, []);
    assert.deepEqual(result.toolCalls, []);
    assert.deepEqual(events, [
      { type: 'message', text: HELLO },
      { type: 'usage', usage: usage(9776, 7, 9783) },
    ]);
  });

  const replies: [scenario: string, inputTokens: number][] = [
    ['atfile', 9756],
    ['atfile-ws', 9754],
    ['big-stdin', 84748],
    ['psafe', 9767],
    ['psafe-stdin', 9780],
  ];
  for (const [scenario, inputTokens] of replies) {
    it(`reads the reply and usage of the ${scenario} run`, () => {
      const { result } = codex(scenario);
      assertCleanCompletion(result);
      assert.equal(result.finalMessage, HELLO);
      assert.deepEqual(result.usage, usage(inputTokens, 7, inputTokens + 7));
    });
  }

  it('records the shell command a writer ran, once, with its exit code', () => {
    const { result, events } = codex('write-exec');
    assertCleanCompletion(result);
    const command = String.raw`/bin/bash -lc "printf 'hello from mock\\n' > hello.txt"`;
    // item.started (in_progress) and item.completed describe the same command: it is recorded once.
    assert.deepEqual(result.commands, [{ command, exitCode: 0, status: 'completed' }]);
    assert.ok(events.some((event) => event.type === 'command' && event.command === command));
    assert.match(result.finalMessage, /^Wrote hello\.txt\. /);
    assert.deepEqual(result.usage, usage(19632, 57, 19689));
  });

  it('records an apply_patch edit as a succeeded file_change tool call', () => {
    const { result } = codex('write');
    assertCleanCompletion(result);
    assert.deepEqual(result.toolCalls, [
      { name: 'file_change', status: 'succeeded', detail: 'add /tmp/sample/codex-write/ws/hello.txt' },
    ]);
    assert.deepEqual(result.commands, []);
    assert.deepEqual(result.usage, usage(19620, 55, 19675));
  });

  it('completes a read-only run whose patch was refused, with no command or tool item to show it', () => {
    const { result } = codex('write-readonly');
    assertCleanCompletion(result);
    assert.deepEqual(result.commands, []);
    assert.deepEqual(result.toolCalls, []);
    // The refusal reached only the model (and stderr): the events say nothing about it.
    assert.match(result.finalMessage, /patch rejected: writing is blocked by read-only sandbox/);
    assert.deepEqual(result.usage, usage(19235, 53, 19288));
  });

  it('completes a read-only run whose shell write failed, with no command item at all', () => {
    const { result } = codex('write-exec-readonly');
    assertCleanCompletion(result);
    assert.deepEqual(result.commands, []);
    assert.match(result.finalMessage, /Read-only file system/);
  });

  for (const scenario of ['write-escalate-readonly', 'write-escalate-readonly-neverflag']) {
    it(`completes the ${scenario} run with the escalation rejected and no command item`, () => {
      const { result } = codex(scenario);
      assertCleanCompletion(result);
      assert.deepEqual(result.commands, []);
      assert.match(result.finalMessage, /approval policy is Never; reject command/);
    });
  }

  it('classifies HTTP 500 ("high demand") as failed, with codex’s own message', () => {
    const { result, events } = codex('http500');
    const message = 'We’re currently experiencing high demand, which may cause temporary errors.';
    assert.equal(result.completed, false);
    assert.equal(result.errorStatus, 'failed');
    assert.equal(result.errorMessage, message);
    assert.equal(result.usage, null);
    assert.deepEqual(events, [{ type: 'error', message }]);
    assert.equal(recordedExitCode('codex-http500'), 1);
  });

  it('classifies HTTP 429 as rate_limited', () => {
    const { result } = codex('http429');
    assert.equal(result.completed, false);
    assert.equal(result.errorStatus, 'rate_limited');
    assert.equal(result.errorMessage, 'exceeded retry limit, last status: 429 Too Many Requests');
  });

  it('reports a stalled model stream as failed with the idle-timeout message', () => {
    const { result } = codex('hang');
    assert.equal(result.completed, false);
    assert.equal(result.errorStatus, 'failed');
    assert.equal(result.errorMessage, 'stream disconnected before completion: idle timeout waiting for SSE');
  });

  it('reports a run cut off while reconnecting as failed, explained by the last reconnect notice', () => {
    // Nothing listened on the model port: codex printed only "Reconnecting..." errors before it was killed.
    const { result, events } = codex('conn-refused');
    assert.equal(result.eventCount, 8);
    assert.equal(result.completed, false);
    assert.equal(result.errorStatus, 'failed');
    assert.equal(
      result.errorMessage,
      'Reconnecting... waiting for network (Connection failed: error sending request)',
    );
    // While it runs, a reconnect notice is transient: no live error event until the turn fails.
    assert.deepEqual(events, []);
  });

  it('does not count a reconnect notice as a failure once the turn completes', () => {
    const parser = new CodexEventParser(MiB);
    for (const line of sample('codex-conn-refused.stdout.jsonl').toString('utf8').trim().split('\n')) {
      parser.push(line, false);
    }
    for (const line of sample('codex-reply.stdout.jsonl').toString('utf8').trim().split('\n').slice(2)) {
      parser.push(line, false);
    }
    const result = parser.result();
    assertCleanCompletion(result);
    assert.equal(result.finalMessage, HELLO);
  });

  it('survives the recorded flood: the cut line is malformed, the turn still completes', () => {
    const { result } = codex('flood');
    // The cut agent_message line arrives as three non-events: its head, the recorder's marker, its tail.
    assert.equal(result.malformedEventCount, 3);
    assert.equal(result.completed, true);
    assert.equal(result.errorStatus, undefined);
    assert.deepEqual(result.usage, usage(9776, 1310720, 1320496));
    // The only message was in the cut line; the adapter falls back to codex's last-message file.
    assert.equal(result.finalMessage, '');
  });

  it('counts a line cut by the LineSplitter cap as malformed', () => {
    const flood = Buffer.from(`${reassembledFloodLine('codex-flood.stdout.jsonl')}\n`);
    const { result, truncatedLines } = replay(new CodexEventParser(1000), flood, 1024);
    assert.equal(truncatedLines, 1);
    assert.equal(result.malformedEventCount, 1);
    assert.equal(result.eventCount, 0);
    assert.equal(result.finalMessage, '');
  });

  it('keeps at most maxTextChars of a flooded message, then the truncation marker', () => {
    const line = reassembledFloodLine('codex-flood.stdout.jsonl');
    const text = (JSON.parse(line) as { item: { text: string } }).item.text;
    assert.ok(text.length > 1000);
    const parser = new CodexEventParser(1000);
    const events = parser.push(line, false);
    const { finalMessage } = parser.result();
    assert.equal(finalMessage, text.slice(0, 1000) + TRUNCATION_MARK);
    assert.ok(finalMessage.endsWith(TRUNCATION_MARK));
    assert.deepEqual(events, [{ type: 'message', text: finalMessage }]);
  });

  it('treats a cut line as malformed even when what was kept parses as an event', () => {
    const parser = new CodexEventParser(MiB);
    parser.push('{"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":1}}', true);
    const result = parser.result();
    assert.equal(result.malformedEventCount, 1);
    assert.equal(result.eventCount, 0);
    assert.equal(result.completed, false);
    assert.equal(result.usage, null);
  });

  it('gets an empty, incomplete result from an empty stream', () => {
    const { result } = codex('big-argv');
    assert.equal(result.eventCount, 0);
    assert.equal(result.completed, false);
    assert.equal(result.errorStatus, undefined);
  });

  it('is what codexSpec.createParser makes', () => {
    assert.ok(codexSpec.createParser(MiB) instanceof CodexEventParser);
  });
});

describe('GeminiEventParser on recorded gemini 0.61.0 streams', () => {
  it('reads the final message and the exact token usage of a plain reply', () => {
    const { result, events } = gemini('reply');
    assertCleanCompletion(result);
    assert.equal(result.finalMessage, HELLO);
    // result.stats: total_tokens 12193, input_tokens 12186, output_tokens 7, cached 0.
    assert.deepEqual(result.usage, usage(12186, 7, 12193));
    assert.equal(result.eventCount, 4);
    assert.deepEqual(result.toolCalls, []);
    assert.deepEqual(events, [
      { type: 'message', text: HELLO },
      { type: 'usage', usage: usage(12186, 7, 12193) },
    ]);
  });

  const replies: [scenario: string, inputTokens: number][] = [
    ['atfile', 12197],
    ['atfile-ws', 12234],
    // The prompt was `!touch /tmp/...`: headless gemini sent it to the model as text, ran nothing.
    ['bang', 12186],
    ['psafe', 12209],
    ['psafe-stdin', 12215],
  ];
  for (const [scenario, inputTokens] of replies) {
    it(`reads the reply and usage of the ${scenario} run, with no tool call`, () => {
      const { result } = gemini(scenario);
      assertCleanCompletion(result);
      assert.equal(result.finalMessage, HELLO);
      assert.deepEqual(result.usage, usage(inputTokens, 7, inputTokens + 7));
      assert.deepEqual(result.toolCalls, []);
      assert.deepEqual(result.commands, []);
    });
  }

  it('survives the cut user message of the big-stdin run and still reads the reply', () => {
    const { result } = gemini('big-stdin');
    assert.equal(result.malformedEventCount, 3);
    assert.equal(result.completed, true);
    assert.equal(result.finalMessage, HELLO);
    assert.deepEqual(result.usage, usage(87185, 7, 87192));
  });

  for (const scenario of ['write', 'write-autoedit']) {
    it(`records the ${scenario} run's write_file call as succeeded and keeps only the text after it`, () => {
      const { result, events } = gemini(scenario);
      assertCleanCompletion(result);
      assert.deepEqual(result.toolCalls, [{ name: 'write_file', status: 'succeeded' }]);
      assert.deepEqual(result.commands, []);
      assert.ok(events.some((event) => event.type === 'tool' && event.status === 'succeeded'));
      assert.match(result.finalMessage, /^Wrote hello\.txt\. Tool response was: .*Successfully created/);
    });
  }

  it('records a write refused in plan mode as refused, with the policy message, in a successful run', () => {
    const { result, events } = gemini('write-plan');
    const policy =
      'Tool execution denied by policy. You are in Plan Mode and cannot modify source code. You may ONLY ' +
      'use write_file or replace to save plans to the designated plans directory as .md files.';
    // gemini says "success" for the run: the refusal is only in the tool_result event.
    assertCleanCompletion(result);
    assert.deepEqual(result.toolCalls, [{ name: 'write_file', status: 'refused', detail: policy }]);
    assert.deepEqual(
      events.filter((event) => event.type === 'tool'),
      [{ type: 'tool', name: 'write_file', status: 'refused', detail: policy }],
    );
  });

  it('records a write_file call that default mode did not register as refused', () => {
    const { result } = gemini('write-default-forced');
    assertCleanCompletion(result);
    assert.deepEqual(result.toolCalls, [
      {
        name: 'write_file',
        status: 'refused',
        detail:
          'Tool "write_file" not found. Did you mean one of: "read_file", "update_topic", "grep_search"?',
      },
    ]);
  });

  it('shows no tool call when default mode never offered write_file to the model', () => {
    const { result } = gemini('write-default');
    assertCleanCompletion(result);
    assert.deepEqual(result.toolCalls, []);
    assert.equal(result.finalMessage, 'no write_file tool offered');
  });

  for (const scenario of ['http500-max1', 'http500-defaultretry']) {
    it(`classifies the ${scenario} result error as failed`, () => {
      const { result } = gemini(scenario);
      assert.equal(result.completed, false);
      assert.equal(result.errorStatus, 'failed');
      assert.equal(
        result.errorMessage,
        '[API Error: {"error":{"code":500,"message":"mock internal error","status":"INTERNAL"}}]',
      );
      assert.deepEqual(result.usage, usage(0, 0, 0));
    });
  }

  for (const scenario of ['http429-max1', 'http429-defaultretry']) {
    it(`classifies the ${scenario} result error as rate_limited`, () => {
      const { result } = gemini(scenario);
      assert.equal(result.completed, false);
      assert.equal(result.errorStatus, 'rate_limited');
      assert.match(
        result.errorMessage ?? '',
        /^\[API Error: mock rate limit\]\nPlease wait and try again later/,
      );
    });
  }

  for (const [scenario, status] of [
    ['http429', 'rate_limited'],
    ['http500', 'failed'],
  ] as const) {
    it(`leaves the ${scenario} run, killed while gemini retried, to be classified from its stderr (${status})`, () => {
      // Default retries: 40 s later gemini had printed only init and the user message.
      const { result } = gemini(scenario);
      assert.equal(result.eventCount, 2);
      assert.equal(result.completed, false);
      assert.equal(result.errorStatus, undefined);
      assert.equal(result.usage, null);
      assert.equal(classifyErrorText(sample(`gemini-${scenario}.stderr.txt`).toString('utf8')), status);
    });
  }

  it('classifies a run with nothing listening on the model port as failed', () => {
    const { result } = gemini('refused');
    assert.equal(result.errorStatus, 'failed');
    assert.equal(result.errorMessage, '[API Error: exception TypeError: fetch failed sending request]');
  });

  it('leaves a stalled stream (no result event) incomplete and unclassified, for the exit to decide', () => {
    const { result } = gemini('hang');
    assert.equal(result.completed, false);
    assert.equal(result.errorStatus, undefined);
    assert.equal(result.errorMessage, undefined);
    assert.equal(result.usage, null);
    assert.equal(result.finalMessage, 'Starting...');
  });

  it('reports a loop-detection stop as a live error while gemini still calls the run a success', () => {
    const { result, events } = gemini('floodrep');
    assert.deepEqual(events[0], { type: 'error', message: 'Loop detected, stopping execution' });
    assert.equal(result.completed, true);
    assert.equal(result.finalMessage, '');
    assert.deepEqual(result.usage, usage(0, 0, 0));
  });

  for (const scenario of ['flood', 'floodrep-noloopdetect']) {
    it(`survives the recorded ${scenario}: the cut line is malformed, the run still completes`, () => {
      const { result } = gemini(scenario);
      assert.equal(result.malformedEventCount, 3);
      assert.equal(result.completed, true);
      assert.equal(result.usage?.outputTokens, 1310720);
      assert.equal(result.finalMessage, '');
    });
  }

  it('keeps at most maxTextChars of a flooded reply across many deltas, then the truncation marker', () => {
    const line = reassembledFloodLine('gemini-flood.stdout.jsonl');
    const delta = (JSON.parse(line) as { content: string }).content;
    const parser = new GeminiEventParser(1000);
    for (let i = 0; i < 50; i += 1) parser.push(line, false);
    const { finalMessage } = parser.result();
    assert.equal(finalMessage, (delta + delta).slice(0, 1000) + TRUNCATION_MARK);
    assert.ok(finalMessage.endsWith(TRUNCATION_MARK));
  });

  it('counts a line cut by the LineSplitter cap as malformed and keeps none of its text', () => {
    const flood = Buffer.from(`${reassembledFloodLine('gemini-floodrep-noloopdetect.stdout.jsonl')}\n`);
    const { result, truncatedLines } = replay(new GeminiEventParser(1000), flood, 1024);
    assert.equal(truncatedLines, 1);
    assert.equal(result.malformedEventCount, 1);
    assert.equal(result.finalMessage, '');
  });

  it('gets an empty, incomplete result from an empty stream', () => {
    const { result } = gemini('big-argv');
    assert.equal(result.eventCount, 0);
    assert.equal(result.completed, false);
  });

  it('is what geminiSpec.createParser makes', () => {
    assert.ok(geminiSpec.createParser(MiB) instanceof GeminiEventParser);
  });
});

/** An ExecResult as the exec helper builds it, with stderr captured by its real HeadTailBuffer. */
function execResult(options: {
  exitCode: number | null;
  signal?: NodeJS.Signals;
  stderr?: string;
  maxCaptureBytes?: number;
}): ExecResult {
  const capture = (text: string) => {
    const buffer = new HeadTailBuffer(options.maxCaptureBytes ?? MiB);
    buffer.push(Buffer.from(text));
    return buffer.result();
  };
  return {
    command: '/opt/cli/bin/cli',
    args: [],
    cwd: '/tmp/ws',
    envNames: ['HOME', 'PATH'],
    pid: 4242,
    exitCode: options.exitCode,
    signal: options.signal ?? null,
    timedOut: false,
    timeoutKind: undefined,
    cancelled: false,
    treeKilled: false,
    startedAt: '2026-11-24T22:00:00.000Z',
    durationMs: 1234,
    stdout: capture(''),
    stderr: capture(options.stderr ?? ''),
    stdinError: undefined,
  };
}

const NO_EVENTS: ParsedStream = new CodexEventParser(MiB).result();
const GEMINI_NOISE =
  'Warning: 256-color support not detected. Using a terminal with at least 256-color support is recommended for a better visual experience.\n' +
  'Ripgrep is not available. Falling back to GrepTool.\n';
/** What `codex exec --bogus-flag` printed (codex-cli 0.169.0, exit 2). */
const CODEX_CLAP_UNEXPECTED =
  "error: unexpected argument '--bogus-flag' found\n\n" +
  "  tip: to pass '--bogus-flag' as a value, use '-- --bogus-flag'\n\n" +
  'Usage: codex exec [OPTIONS] [PROMPT]\n       codex exec [OPTIONS] <COMMAND> [ARGS]\n\n' +
  "For more information, try '--help'.\n";
/** What `codex exec --sandbox nope -` printed (codex-cli 0.169.0, exit 2). */
const CODEX_CLAP_INVALID =
  "error: invalid value 'nope' for '--sandbox <SANDBOX_MODE>'\n" +
  '  [possible values: read-only, workspace-write, danger-full-access]\n\n' +
  "For more information, try '--help'.\n";

describe('gemini exit classification (no result event)', () => {
  it('calls exit 41 with the missing GEMINI_API_KEY message an auth_error', () => {
    const verdict = geminiSpec.classifyExit(
      execResult({
        exitCode: 41,
        stderr:
          GEMINI_NOISE +
          'When using Gemini API, you must specify the GEMINI_API_KEY environment variable.\n' +
          'Update your environment and try again (no reload needed if using .env)!\n',
      }),
      NO_EVENTS,
    );
    assert.equal(verdict.status, 'auth_error');
    assert.match(verdict.message ?? '', /code 41 \(authentication failed\)/);
    assert.match(verdict.message ?? '', /must specify the GEMINI_API_KEY environment variable/);
    assert.doesNotMatch(verdict.message ?? '', /256-color|Ripgrep/);
  });

  const table: [exitCode: number, status: StepStatus][] = [
    [42, 'cli_error'],
    [44, 'cli_error'],
    [52, 'cli_error'],
    [53, 'failed'],
    [54, 'failed'],
    [55, 'cli_error'],
    [130, 'cancelled'],
  ];
  for (const [exitCode, status] of table) {
    it(`calls exit ${exitCode} ${status}, naming what the code means`, () => {
      const verdict = geminiSpec.classifyExit(execResult({ exitCode, stderr: GEMINI_NOISE }), NO_EVENTS);
      assert.equal(verdict.status, status);
      assert.ok(verdict.message?.includes(`code ${exitCode} (${GEMINI_EXIT_CODES[exitCode]?.meaning})`));
    });
  }

  it('calls an unknown exit code with auth trouble on stderr an auth_error', () => {
    const verdict = geminiSpec.classifyExit(
      execResult({ exitCode: 1, stderr: 'API key not valid. Please pass a valid API key.\n' }),
      NO_EVENTS,
    );
    assert.equal(verdict.status, 'auth_error');
  });

  it('finds auth trouble at the start of a stderr longer than the capture head', () => {
    const stack = '    at Object.run (file:///opt/cli/bundle/chunk.js:267833:24)\n'.repeat(100);
    const exec = execResult({
      exitCode: 1,
      stderr: `API key not valid. Please pass a valid API key.\n${stack}`,
      maxCaptureBytes: 4096,
    });
    assert.ok(exec.stderr.tail !== '' && !exec.stderr.tail.includes('API key'));
    assert.equal(geminiSpec.classifyExit(exec, NO_EVENTS).status, 'auth_error');
  });

  it('calls the recorded usage error of `-p "--help ..."` a cli_error before any event', () => {
    const parsed = gemini('psafe-p').result;
    const exitCode = recordedExitCode('gemini-psafe-p');
    assert.equal(exitCode, 1);
    const verdict = geminiSpec.classifyExit(
      execResult({ exitCode, stderr: sample('gemini-psafe-p.stderr.txt').toString('utf8') }),
      parsed,
    );
    assert.equal(verdict.status, 'cli_error');
    assert.match(verdict.message ?? '', /^gemini exited with code 1 before printing any event/);
  });

  it('calls a stalled run that was killed a cli_error that names the signal', () => {
    const parsed = gemini('hang').result;
    const verdict = geminiSpec.classifyExit(
      execResult({ exitCode: null, signal: 'SIGTERM', stderr: GEMINI_NOISE }),
      parsed,
    );
    assert.equal(verdict.status, 'cli_error');
    assert.equal(verdict.message, 'gemini ended (SIGTERM) without a final result event.');
  });
});

describe('codex exit classification (no final turn event)', () => {
  it('calls a clap usage error (exit 2, no events) a cli_error naming its error line', () => {
    const verdict = codexSpec.classifyExit(
      execResult({ exitCode: 2, stderr: CODEX_CLAP_UNEXPECTED }),
      NO_EVENTS,
    );
    assert.equal(verdict.status, 'cli_error');
    assert.equal(
      verdict.message,
      "codex exited with code 2 before printing any event: error: unexpected argument '--bogus-flag' found.",
    );
  });

  it('names the error line of an invalid flag value, not the help hint after it', () => {
    const verdict = codexSpec.classifyExit(
      execResult({ exitCode: 2, stderr: CODEX_CLAP_INVALID }),
      NO_EVENTS,
    );
    assert.equal(verdict.status, 'cli_error');
    assert.match(verdict.message ?? '', /error: invalid value 'nope' for '--sandbox <SANDBOX_MODE>'/);
    assert.doesNotMatch(verdict.message ?? '', /For more information/);
  });

  it('calls exit 1 with "401 Unauthorized" on stderr and no events an auth_error', () => {
    const verdict = codexSpec.classifyExit(
      execResult({
        exitCode: 1,
        stderr:
          'Reading additional input from stdin...\nERROR: unexpected status 401 Unauthorized: Missing bearer authentication\n',
      }),
      NO_EVENTS,
    );
    assert.equal(verdict.status, 'auth_error');
    assert.match(
      verdict.message ?? '',
      /code 1 before printing any event: ERROR: unexpected status 401 Unauthorized/,
    );
  });

  it('finds "401 Unauthorized" at the start of a stderr longer than the capture head', () => {
    const exec = execResult({
      exitCode: 1,
      stderr: `ERROR: unexpected status 401 Unauthorized\n${'retrying later\n'.repeat(300)}`,
      maxCaptureBytes: 4096,
    });
    assert.equal(codexSpec.classifyExit(exec, NO_EVENTS).status, 'auth_error');
  });

  it('calls a run that printed events but never ended its turn a cli_error', () => {
    const parser = new CodexEventParser(MiB);
    parser.push('{"type":"thread.started","thread_id":"t"}', false);
    parser.push('{"type":"turn.started"}', false);
    const verdict = codexSpec.classifyExit(
      execResult({ exitCode: null, signal: 'SIGKILL', stderr: 'Reading additional input from stdin...\n' }),
      parser.result(),
    );
    assert.equal(verdict.status, 'cli_error');
    assert.match(verdict.message ?? '', /^codex ended \(SIGKILL\) without completing its turn/);
  });
});

describe('classifyErrorText', () => {
  const table: [text: string, status: StepStatus][] = [
    ['429', 'rate_limited'],
    ['exceeded retry limit, last status: 429 Too Many Requests', 'rate_limited'],
    ['Too Many Requests', 'rate_limited'],
    ['You exceeded your current quota, please check your plan', 'rate_limited'],
    ['RESOURCE_EXHAUSTED', 'rate_limited'],
    ['Resource has been exhausted (e.g. check quota).', 'rate_limited'],
    ['Rate limit reached for requests', 'rate_limited'],
    ['rate_limit_exceeded', 'rate_limited'],
    ['{"error":{"code":429,"message":"mock rate limit","status":"RESOURCE_EXHAUSTED"}}', 'rate_limited'],
    ['RetryableQuotaError: mock rate limit', 'rate_limited'],
    ['401', 'auth_error'],
    ['HTTP 401', 'auth_error'],
    ['unexpected status 401 Unauthorized', 'auth_error'],
    ['403 Forbidden', 'auth_error'],
    ['Unauthorised', 'auth_error'],
    ['UNAUTHENTICATED', 'auth_error'],
    ['PERMISSION_DENIED', 'auth_error'],
    ['invalid API key', 'auth_error'],
    ['Invalid x-api-key', 'auth_error'],
    ['API key not valid. Please pass a valid API key.', 'auth_error'],
    ['When using Gemini API, you must specify the GEMINI_API_KEY environment variable.', 'auth_error'],
    ['Not logged in', 'auth_error'],
    ['We’re currently experiencing high demand, which may cause temporary errors.', 'failed'],
    ['stream disconnected before completion: idle timeout waiting for SSE', 'failed'],
    ['Reconnecting... waiting for network (Connection failed: error sending request)', 'failed'],
    ['[API Error: {"error":{"code":500,"message":"mock internal error","status":"INTERNAL"}}]', 'failed'],
    ['/bin/bash: line 1: out.txt: Permission denied', 'failed'],
    ['', 'failed'],
  ];
  for (const [text, status] of table) {
    it(`calls ${JSON.stringify(text)} ${status}`, () => {
      assert.equal(classifyErrorText(text), status);
    });
  }

  const ordinary = [
    'the authority granted',
    'an authorization header was sent',
    '4290 tokens',
    'token 4290',
    '14290 bytes',
    '4011 lines',
    'an accurate limit on output',
    'separate limits apply',
    'quotation marks',
    'version 1.429.0',
    'took 1.403 s',
    '    at Turn.run (file:///opt/cli/bundle/chunk.js:429:12)',
    '    at main (file:///opt/cli/bundle/gemini.js:401:7)',
  ];
  for (const text of ordinary) {
    it(`does not misread ${JSON.stringify(text)} as a rate limit or an auth error`, () => {
      assert.equal(classifyErrorText(text), 'failed');
    });
  }

  it('reads any other number on its own as no status at all', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 999_999 }).filter((n) => ![401, 403, 429].includes(n)),
        fc.constantFrom('status ', 'HTTP ', 'code: ', '"code":', '(', ''),
        (n, prefix) => classifyErrorText(`${prefix}${n}`) === 'failed',
      ),
    );
  });

  it('reads 429, 401 and 403 as statuses however they are framed', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(['429', 'rate_limited'], ['401', 'auth_error'], ['403', 'auth_error']),
        fc.constantFrom('status ', 'HTTP/1.1 ', 'code: ', '"code":', '(', ''),
        fc.constantFrom('', ' ', ',', ')', '.', ': Unknown', '\n'),
        ([code, status], prefix, suffix) => classifyErrorText(`${prefix}${code}${suffix}`) === status,
      ),
    );
  });
});
