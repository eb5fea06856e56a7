// Specification of the offline model server: both wire formats, every scenario, the request log, and how it
// survives bad requests and hanging streams. Request bodies are the ones the real CLIs sent (cli-samples).
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runProcess } from '../../src/core/exec';
import {
  DEFAULT_FLOOD_BYTES,
  DEFAULT_REPLY_TEXT,
  DEFAULT_WRITE_CONTENT,
  MAX_BODY_BYTES,
  OfflineModelServer,
  parseScenarioTag,
  scenarioOf,
  type OfflineModelOptions,
} from '../../src/offline/model-server';
import { fixture } from '../support/processes';

type Json = Record<string, unknown>;

interface SseFrame {
  event: string | undefined;
  data: Json;
}

function sample(name: string): Json {
  return JSON.parse(readFileSync(fixture(path.join('cli-samples', name)), 'utf8')) as Json;
}

/** The request codex 0.169.0 sent, with the user's prompt replaced (it is the last user message). */
function codexBody(prompt: string): Json {
  const body = sample('codex-request-reply.json');
  const input = body.input as Json[];
  const message = input[3] as { role: string; content: { type: string; text: string }[] };
  assert.equal(message.role, 'user');
  message.content = [{ type: 'input_text', text: prompt }];
  return body;
}

/** The request gemini 0.61.0 sent: the prompt is the part after the <session_context> part. */
function geminiBody(prompt: string): Json {
  const body = sample('gemini-request-reply.json');
  const first = (body.contents as { parts: { text: string }[] }[])[0];
  assert.ok(first?.parts[1]);
  first.parts[1].text = prompt;
  return body;
}

const GEMINI_STREAM_PATH = '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse';

/** Splits an SSE body into frames, insisting that every frame ends with a blank line. */
function parseSse(text: string): SseFrame[] {
  assert.ok(text.endsWith('\n\n'), 'the stream ends with a complete frame');
  return text
    .slice(0, -2)
    .split('\n\n')
    .map((frame) => {
      const lines = frame.split('\n');
      const event = lines.find((line) => line.startsWith('event: '))?.slice('event: '.length);
      const data = lines
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice('data: '.length));
      assert.equal(data.length, 1, `one data line per frame: ${JSON.stringify(frame).slice(0, 200)}`);
      assert.equal(lines.length, event === undefined ? 1 : 2, 'no other lines in a frame');
      return { event, data: JSON.parse(data[0] ?? 'null') as Json };
    });
}

function post(url: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
}

async function codexEvents(server: OfflineModelServer, prompt: string): Promise<SseFrame[]> {
  const response = await post(`${server.openaiBaseUrl}/responses`, codexBody(prompt));
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  return parseSse(await response.text());
}

async function geminiChunks(server: OfflineModelServer, prompt: string): Promise<Json[]> {
  const response = await post(`${server.geminiBaseUrl}${GEMINI_STREAM_PATH}`, geminiBody(prompt));
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const frames = parseSse(await response.text());
  for (const frame of frames) assert.equal(frame.event, undefined, 'gemini frames are data lines only');
  return frames.map((frame) => frame.data);
}

/** The item of the single response.output_item.done event. */
function codexItem(events: SseFrame[]): Json {
  const done = events.filter((event) => event.event === 'response.output_item.done');
  assert.equal(done.length, 1);
  return done[0]?.data.item as Json;
}

function codexText(events: SseFrame[]): string {
  const item = codexItem(events) as { type: string; content: { type: string; text: string }[] };
  assert.equal(item.type, 'message');
  assert.equal(item.content[0]?.type, 'output_text');
  return item.content[0]?.text ?? '';
}

function geminiParts(chunks: Json[]): Json[] {
  return chunks.flatMap(
    (chunk) => (chunk.candidates as { content: { parts: Json[] } }[])[0]?.content.parts ?? [],
  );
}

function geminiText(chunks: Json[]): string {
  return geminiParts(chunks)
    .map((part) => part.text as string)
    .join('');
}

function reviewBlock(text: string): Json {
  const match = /```json\n([\s\S]*?)\n```/.exec(text);
  assert.ok(match?.[1], `a fenced json block in ${text}`);
  return JSON.parse(match[1]) as Json;
}

function lastRequest(server: OfflineModelServer) {
  const request = server.requests.at(-1);
  assert.ok(request, 'the request was logged');
  return request;
}

describe('offline model server', () => {
  let server: OfflineModelServer;
  const start = async (options?: OfflineModelOptions): Promise<OfflineModelServer> => {
    await server?.close();
    server = await OfflineModelServer.start(options);
    return server;
  };

  beforeEach(async () => {
    server = await OfflineModelServer.start();
  });
  afterEach(async () => {
    await server.close();
  });

  describe('scenario tags', () => {
    it('reads the name and key=value arguments of a tag anywhere in the prompt', () => {
      const prompt = 'Please fix the bug.\n[[scenario:write path=src/a.ts content=x=1]] thanks';
      assert.deepEqual(parseScenarioTag(prompt), {
        name: 'write',
        args: { path: 'src/a.ts', content: 'x=1' },
      });
      assert.equal(scenarioOf(prompt), 'write');
    });

    it('percent-decodes argument values and keeps a malformed escape as written', () => {
      assert.deepEqual(parseScenarioTag('[[scenario:reply text=two%20words%0A]]')?.args, {
        text: 'two words\n',
      });
      assert.deepEqual(parseScenarioTag('[[scenario:reply text=100%]]')?.args, { text: '100%' });
    });

    it('finds no scenario in a prompt without a well-formed tag', () => {
      assert.equal(scenarioOf('just a task'), undefined);
      assert.equal(scenarioOf('[[scenario:]]'), undefined);
      assert.equal(scenarioOf('[[scenario:reply text=has space]]'), undefined);
    });
  });

  describe('start and close', () => {
    it('listens on 127.0.0.1 on a free port and derives both base URLs from it', () => {
      assert.ok(server.port > 0);
      assert.equal(server.openaiBaseUrl, `http://127.0.0.1:${server.port}/v1`);
      assert.equal(server.geminiBaseUrl, `http://127.0.0.1:${server.port}`);
    });

    it('refuses connections once closed, and a second close() is harmless', async () => {
      await server.close();
      await server.close();
      await assert.rejects(fetch(`${server.geminiBaseUrl}/`));
    });
  });

  describe('codex (OpenAI Responses API)', () => {
    it('streams a reply as event/data pairs: response.created, one output_item.done, response.completed', async () => {
      const events = await codexEvents(server, '[[scenario:reply]] Please do the task.');
      assert.deepEqual(
        events.map((event) => event.event),
        ['response.created', 'response.output_item.done', 'response.completed'],
      );
      for (const event of events) assert.equal(event.data.type, event.event, 'the data repeats the type');
      assert.equal(codexText(events), DEFAULT_REPLY_TEXT);
      const completed = events[2]?.data.response as { id: string; usage: Record<string, number> };
      assert.equal(completed.id, (events[0]?.data.response as { id: string }).id);
      assert.ok(completed.usage.input_tokens! > 0);
      assert.equal(
        completed.usage.total_tokens,
        completed.usage.input_tokens! + completed.usage.output_tokens!,
      );
    });

    it('replies with the text= argument when one is given', async () => {
      const events = await codexEvents(server, '[[scenario:reply text=custom%20answer]]');
      assert.equal(codexText(events), 'custom answer');
    });

    it('asks exec_command to write the file, with a shell command that writes the content byte for byte', async () => {
      const content = `it's "quoted" $HOME \`id\` \\ end\n`;
      const tag = `[[scenario:write path=out.txt content=${encodeURIComponent(content)}]]`;
      const item = codexItem(await codexEvents(server, tag));
      assert.equal(item.type, 'function_call');
      assert.equal(item.name, 'exec_command');
      assert.equal(typeof item.call_id, 'string');
      const args = JSON.parse(item.arguments as string) as { cmd: string };
      const work = mkdtempSync(path.join(os.tmpdir(), 'tandem-model-'));
      try {
        const result = await runProcess({
          command: 'bash',
          args: ['-c', args.cmd],
          cwd: work,
          timeoutMs: 10_000,
        });
        assert.equal(result.exitCode, 0, result.stderr.text);
        assert.equal(readFileSync(path.join(work, 'out.txt'), 'utf8'), content);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });

    it('sends the write as a freeform apply_patch call when tool=apply_patch', async () => {
      const item = codexItem(await codexEvents(server, '[[scenario:write tool=apply_patch path=a/b.txt]]'));
      assert.equal(item.type, 'custom_tool_call');
      assert.equal(item.name, 'apply_patch');
      const body = DEFAULT_WRITE_CONTENT.replace(/\n$/, '')
        .split('\n')
        .map((line) => `+${line}\n`)
        .join('');
      assert.equal(item.input, `*** Begin Patch\n*** Add File: a/b.txt\n${body}*** End Patch\n`);
    });

    it('answers the follow-up that carries the tool output with a final text quoting that output', async () => {
      const response = await post(
        `${server.openaiBaseUrl}/responses`,
        sample('codex-request-write-2nd.json'),
      );
      const text = codexText(parseSse(await response.text()));
      assert.match(text, /Success\. Updated the following files:\nA hello\.txt/);
      assert.equal(lastRequest(server).isFollowUp, true);
    });

    it('puts the verdict and findings of a review in a fenced json block', async () => {
      const approve = reviewBlock(
        codexText(await codexEvents(server, '[[scenario:review verdict=approve]]')),
      );
      assert.deepEqual(approve, { verdict: 'approve', findings: [] });
      const changes = reviewBlock(
        codexText(await codexEvents(server, '[[scenario:review verdict=request_changes]]')),
      );
      assert.equal(changes.verdict, 'request_changes');
      const findings = changes.findings as Json[];
      assert.equal(findings.length, 1);
      assert.equal(findings[0]?.severity, 'high');
      assert.equal(typeof findings[0]?.title, 'string');
      assert.equal(typeof findings[0]?.detail, 'string');
    });

    for (const [scenario, status, type] of [
      ['http500', 500, 'server_error'],
      ['http429', 429, 'rate_limit_error'],
    ] as const) {
      it(`answers ${scenario} with HTTP ${status} and an OpenAI error body`, async () => {
        const response = await post(
          `${server.openaiBaseUrl}/responses`,
          codexBody(`[[scenario:${scenario}]]`),
        );
        assert.equal(response.status, status);
        assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
        const body = (await response.json()) as { error: Json };
        assert.equal(body.error.type, type);
        assert.match(body.error.message as string, new RegExp(scenario));
      });
    }

    it('streams a slow reply as output_text deltas spaced by ms=, then the whole message', async () => {
      const started = Date.now();
      const events = await codexEvents(server, '[[scenario:slow ms=60 chunks=4 text=abcdefgh]]');
      assert.ok(Date.now() - started >= 3 * 60 - 10, 'three pauses of 60 ms');
      const deltas = events.filter((event) => event.event === 'response.output_text.delta');
      assert.deepEqual(
        deltas.map((event) => event.data.delta),
        ['ab', 'cd', 'ef', 'gh'],
      );
      assert.equal(codexText(events), 'abcdefgh');
      assert.equal(events.at(-1)?.event, 'response.completed');
    });

    it('floods a reply of exactly bytes= bytes, 5 MiB by default', async () => {
      assert.equal(codexText(await codexEvents(server, '[[scenario:flood bytes=100000]]')).length, 100_000);
      const text = codexText(await codexEvents(server, '[[scenario:flood]]'));
      assert.equal(Buffer.byteLength(text), DEFAULT_FLOOD_BYTES);
    });

    it("echoes the user's prompt, not the environment_context codex sends ahead of it", async () => {
      const prompt = '--help $(touch x) `id` ; "dq" \'sq\'\n\\ [[scenario:echo]] 日本語';
      assert.equal(codexText(await codexEvents(server, prompt)), prompt);
      assert.equal(lastRequest(server).prompt, prompt);
    });
  });

  describe('gemini (streamGenerateContent)', () => {
    it('streams a reply as data-only frames whose last chunk has finishReason STOP and usageMetadata', async () => {
      const chunks = await geminiChunks(server, '[[scenario:reply]] Please do the task.');
      assert.equal(chunks.length, 1);
      const candidate = (chunks[0]?.candidates as Json[])[0] as { content: Json; finishReason: string };
      assert.equal(candidate.content.role, 'model');
      assert.equal(candidate.finishReason, 'STOP');
      assert.equal(geminiText(chunks), DEFAULT_REPLY_TEXT);
      const usage = chunks[0]?.usageMetadata as Record<string, number>;
      assert.equal(usage.totalTokenCount, usage.promptTokenCount! + usage.candidatesTokenCount!);
      assert.equal(chunks[0]?.modelVersion, 'gemini-2.5-flash', 'the model that was asked for');
    });

    it('asks write_file to write the file with {file_path, content}', async () => {
      const parts = geminiParts(await geminiChunks(server, '[[scenario:write path=notes/x.md content=hi]]'));
      assert.deepEqual(parts, [
        { functionCall: { name: 'write_file', args: { file_path: 'notes/x.md', content: 'hi' } } },
      ]);
    });

    it('runs any function a script asks for', async () => {
      await start({
        script: () => ({ kind: 'functionCall', name: 'run_shell_command', args: { command: 'ls' } }),
      });
      const parts = geminiParts(await geminiChunks(server, 'anything'));
      assert.deepEqual(parts, [{ functionCall: { name: 'run_shell_command', args: { command: 'ls' } } }]);
    });

    it('answers the follow-up that carries a functionResponse with a final text quoting the output', async () => {
      const response = await post(
        `${server.geminiBaseUrl}${GEMINI_STREAM_PATH}`,
        sample('gemini-request-write-2nd.json'),
      );
      const text = geminiText(parseSse(await response.text()).map((frame) => frame.data));
      assert.match(text, /Successfully created and wrote to new file: .*hello\.txt/);
      assert.equal(lastRequest(server).isFollowUp, true);
    });

    it('puts a review verdict in a fenced json block', async () => {
      const block = reviewBlock(
        geminiText(await geminiChunks(server, '[[scenario:review verdict=request_changes]]')),
      );
      assert.equal(block.verdict, 'request_changes');
    });

    for (const [scenario, status, statusName] of [
      ['http500', 500, 'INTERNAL'],
      ['http429', 429, 'RESOURCE_EXHAUSTED'],
    ] as const) {
      it(`answers ${scenario} with HTTP ${status} and a Google error body {error:{code,message,status}}`, async () => {
        const response = await post(
          `${server.geminiBaseUrl}${GEMINI_STREAM_PATH}`,
          geminiBody(`[[scenario:${scenario}]]`),
        );
        assert.equal(response.status, status);
        const body = (await response.json()) as { error: Json };
        assert.equal(body.error.code, status);
        assert.equal(body.error.status, statusName);
        assert.equal(typeof body.error.message, 'string');
      });
    }

    it('streams a slow reply in several chunks; only the last one finishes', async () => {
      const chunks = await geminiChunks(server, '[[scenario:slow ms=20 chunks=3 text=abcdef]]');
      assert.deepEqual(
        geminiParts(chunks).map((part) => part.text),
        ['ab', 'cd', 'ef'],
      );
      const finish = chunks.map((chunk) => (chunk.candidates as Json[])[0]?.finishReason);
      assert.deepEqual(finish, [undefined, undefined, 'STOP']);
      assert.equal(chunks.filter((chunk) => chunk.usageMetadata !== undefined).length, 1);
    });

    it('floods in chunks whose text adds up to bytes= bytes without repeating (gemini stops on loops)', async () => {
      const chunks = await geminiChunks(server, '[[scenario:flood bytes=300000]]');
      assert.ok(chunks.length > 1);
      const text = geminiText(chunks);
      assert.equal(text.length, 300_000);
      const lines = text.split('\n');
      assert.ok(new Set(lines).size > lines.length * 0.99, 'lines are all different');
    });

    it("echoes the user's prompt, not gemini's <session_context> part", async () => {
      const prompt = '[[scenario:echo]] --help $(touch x) `id`\n\\';
      assert.equal(geminiText(await geminiChunks(server, prompt)), prompt);
      assert.equal(lastRequest(server).prompt, prompt);
    });

    it('answers generateContent with one JSON response and countTokens with a count', async () => {
      const once = await post(
        `${server.geminiBaseUrl}/v1beta/models/gemini-2.5-flash:generateContent`,
        geminiBody('hi'),
      );
      assert.equal(once.status, 200);
      const body = (await once.json()) as Json;
      assert.equal(geminiText([body]), DEFAULT_REPLY_TEXT);
      const count = await post(
        `${server.geminiBaseUrl}/v1beta/models/gemini-2.5-flash:countTokens`,
        geminiBody('hi'),
      );
      assert.ok(((await count.json()) as { totalTokens: number }).totalTokens > 0);
    });
  });

  describe('request log', () => {
    it('logs each request the codex CLI sent: api, path, body, prompt, scenario and offered tools', async () => {
      const body = sample('codex-request-reply.json');
      await (await post(`${server.openaiBaseUrl}/responses`, body)).text();
      const request = lastRequest(server);
      assert.equal(request.seq, 1);
      assert.equal(request.api, 'openai-responses');
      assert.equal(request.method, 'POST');
      assert.equal(request.path, '/v1/responses');
      assert.deepEqual(request.body, body);
      assert.equal(request.prompt, '[[scenario:reply]] Please do the task.');
      assert.equal(request.scenario, 'reply');
      assert.equal(request.isFollowUp, false);
      for (const tool of ['exec_command', 'apply_patch', 'web_search'])
        assert.ok(request.toolNames.includes(tool), tool);
      assert.ok(Math.abs(request.time - Date.now()) < 5000);
    });

    it('logs the tools the gemini CLI offered and numbers requests in order', async () => {
      await (
        await post(`${server.geminiBaseUrl}${GEMINI_STREAM_PATH}`, sample('gemini-request-reply.json'))
      ).text();
      await (
        await post(`${server.geminiBaseUrl}${GEMINI_STREAM_PATH}`, sample('gemini-request-write-2nd.json'))
      ).text();
      const [first, second] = server.requests;
      assert.equal(first?.api, 'gemini');
      assert.equal(first?.path, GEMINI_STREAM_PATH);
      for (const tool of ['write_file', 'run_shell_command', 'read_file'])
        assert.ok(first?.toolNames.includes(tool), tool);
      assert.deepEqual([first?.seq, second?.seq], [1, 2]);
      assert.deepEqual([first?.isFollowUp, second?.isFollowUp], [false, true]);
      assert.equal(second?.prompt, '[[scenario:write]] Please do the task.');
      assert.equal(second?.scenario, 'write');
    });

    it('falls back to defaultScenario when the prompt has no tag', async () => {
      await start({ defaultScenario: 'review' });
      const block = reviewBlock(codexText(await codexEvents(server, 'Review this change.')));
      assert.equal(block.verdict, 'approve');
      assert.equal(lastRequest(server).scenario, 'review');
    });

    it('refuses an unknown scenario with HTTP 400 naming the known ones', async () => {
      const response = await post(`${server.openaiBaseUrl}/responses`, codexBody('[[scenario:nope]]'));
      assert.equal(response.status, 400);
      assert.match(
        ((await response.json()) as { error: { message: string } }).error.message,
        /nope.*reply, write/,
      );
      assert.equal(lastRequest(server).scenario, 'nope');
    });

    it('lets a script answer per request and falls back to the scenario when it returns undefined', async () => {
      await start({
        script: (request) => (request.seq === 1 ? { kind: 'text', text: 'scripted' } : undefined),
      });
      assert.equal(codexText(await codexEvents(server, '[[scenario:reply]]')), 'scripted');
      assert.equal(codexText(await codexEvents(server, '[[scenario:reply]]')), DEFAULT_REPLY_TEXT);
    });

    it('empties on clearLog() while the numbering goes on', async () => {
      await codexEvents(server, 'one');
      server.clearLog();
      assert.equal(server.requests.length, 0);
      await codexEvents(server, 'two');
      assert.deepEqual(
        server.requests.map((request) => [request.seq, request.prompt]),
        [[2, 'two']],
      );
    });

    it('keeps only the newest maxLoggedRequests entries', async () => {
      await start({ maxLoggedRequests: 2 });
      for (const prompt of ['a', 'b', 'c']) await codexEvents(server, prompt);
      assert.deepEqual(
        server.requests.map((request) => request.prompt),
        ['b', 'c'],
      );
    });
  });

  describe('bad requests', () => {
    it('answers unknown paths with a 404 JSON error and logs them', async () => {
      for (const [url, api] of [
        [`${server.openaiBaseUrl}/models`, 'openai-responses'],
        [`${server.geminiBaseUrl}/v1beta/models`, 'gemini'],
        [`${server.geminiBaseUrl}/`, 'unknown'],
      ] as const) {
        const response = await fetch(url);
        assert.equal(response.status, 404, url);
        assert.match(((await response.json()) as { error: { message: string } }).error.message, /has no GET/);
        assert.equal(lastRequest(server).api, api);
        assert.equal(lastRequest(server).method, 'GET');
      }
      assert.equal(server.requests.length, 3);
    });

    it('answers a body that is not a JSON object with 400 and logs the raw text', async () => {
      for (const body of ['{"input": [', '[1, 2]']) {
        const response = await post(`${server.openaiBaseUrl}/responses`, body);
        assert.equal(response.status, 400);
        assert.equal(typeof lastRequest(server).body, body.startsWith('[') ? 'object' : 'string');
      }
      assert.equal(lastRequest(server).prompt, undefined);
      assert.equal(codexText(await codexEvents(server, 'still serving')), DEFAULT_REPLY_TEXT);
    });

    it(`answers a body over ${MAX_BODY_BYTES} bytes with 413 and keeps serving`, async function () {
      this.timeout(30_000);
      const response = await post(`${server.openaiBaseUrl}/responses`, ' '.repeat(MAX_BODY_BYTES + 1));
      assert.equal(response.status, 413);
      assert.match(((await response.json()) as { error: { message: string } }).error.message, /over/);
      assert.equal(lastRequest(server).body, undefined);
      assert.equal(codexText(await codexEvents(server, 'after')), DEFAULT_REPLY_TEXT);
    });

    it('also answers 413 to an oversized chunked body that declares no length', async function () {
      this.timeout(30_000);
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const request = http.request(
          { host: '127.0.0.1', port: server.port, method: 'POST', path: '/v1/responses' },
          (response) => {
            response.resume();
            response.on('end', () => resolve(response.statusCode));
          },
        );
        request.on('error', reject);
        const piece = Buffer.alloc(1024 * 1024, 0x20);
        for (let sent = 0; sent <= MAX_BODY_BYTES; sent += piece.length) request.write(piece);
        request.end();
      });
      assert.equal(status, 413);
      assert.equal(lastRequest(server).body, undefined);
      assert.equal(codexText(await codexEvents(server, 'after')), DEFAULT_REPLY_TEXT);
    });

    it('takes a body of tens of kilobytes, as the CLIs send', async () => {
      const prompt = `[[scenario:echo]] ${'x'.repeat(200_000)}`;
      assert.equal(codexText(await codexEvents(server, prompt)), prompt);
    });

    it('answers 500 when a script throws, and keeps serving', async () => {
      await start({
        script: (request) => {
          if (request.prompt === 'boom') throw new Error('script failure');
          return undefined;
        },
      });
      const response = await post(`${server.openaiBaseUrl}/responses`, codexBody('boom'));
      assert.equal(response.status, 500);
      assert.match(
        ((await response.json()) as { error: { message: string } }).error.message,
        /script failure/,
      );
      assert.equal(codexText(await codexEvents(server, 'fine')), DEFAULT_REPLY_TEXT);
    });

    it('survives a client that goes away in the middle of a slow stream, or that speaks no HTTP', async () => {
      const aborter = new AbortController();
      const response = await post(`${server.openaiBaseUrl}/responses`, codexBody('[[scenario:slow ms=50]]'), {
        signal: aborter.signal,
      });
      const reader = response.body!.getReader();
      await reader.read();
      aborter.abort();
      await reader.read().catch(() => undefined);
      await new Promise<void>((resolve) => {
        const socket = net.connect(server.port, '127.0.0.1', () => socket.end('NOT HTTP\r\n\r\n'));
        socket.on('close', () => resolve());
        socket.on('error', () => resolve());
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(codexText(await codexEvents(server, 'fine')), DEFAULT_REPLY_TEXT);
    });
  });

  describe('hang', () => {
    for (const api of ['codex', 'gemini'] as const) {
      it(`sends headers and a first ${api} event, then nothing, until close() ends the stream at once`, async () => {
        const response =
          api === 'codex'
            ? await post(`${server.openaiBaseUrl}/responses`, codexBody('[[scenario:hang]]'))
            : await post(`${server.geminiBaseUrl}${GEMINI_STREAM_PATH}`, geminiBody('[[scenario:hang]]'));
        assert.equal(response.status, 200);
        const reader = response.body!.getReader();
        const first = new TextDecoder().decode((await reader.read()).value);
        assert.match(first, api === 'codex' ? /^event: response\.created\ndata: / : /^data: \{"candidates"/);
        const next = reader.read().then(
          (result) => (result.done ? 'ended' : 'more data'),
          () => 'ended',
        );
        const quiet = await Promise.race([
          next,
          new Promise((resolve) => setTimeout(() => resolve('quiet'), 300)),
        ]);
        assert.equal(quiet, 'quiet');
        const closing = Date.now();
        await server.close();
        assert.ok(Date.now() - closing < 1000, 'close() did not wait for the client');
        assert.equal(await next, 'ended');
      });
    }

    it('close() also cuts short a slow stream that is waiting between chunks', async () => {
      const response = await post(
        `${server.openaiBaseUrl}/responses`,
        codexBody('[[scenario:slow ms=60000]]'),
      );
      const reader = response.body!.getReader();
      await reader.read();
      const closing = Date.now();
      await server.close();
      assert.ok(Date.now() - closing < 1000);
    });
  });
});
