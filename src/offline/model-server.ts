// A loopback stand-in for the OpenAI Responses and Gemini APIs: the real codex and gemini CLIs run against it
// with no network and no key (the offline demo), and every integration test uses it as its model.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { roleScenario } from './roles';

export type OfflineApi = 'openai-responses' | 'gemini';

export interface LoggedRequest {
  seq: number;
  api: OfflineApi | 'unknown';
  method: string;
  /** Path with the query string. */
  path: string;
  /** Parsed JSON, the raw text when it is not JSON, undefined when empty or refused (413). */
  body: unknown;
  /** The user's own text (the CLI's context blocks left out), byte for byte; undefined when none was found. */
  prompt: string | undefined;
  scenario: string;
  /** Tool and function names the CLI offered the model. */
  toolNames: string[];
  /** The request carries a tool result (function_call_output / functionResponse). */
  isFollowUp: boolean;
  time: number;
}

/** What the model answers to one request; each API renders it in its own wire format. */
export type Behaviour =
  | {
      kind: 'text';
      text: string;
      /** Sent as this many stream events (default 1). */
      chunks?: number;
      /** Pause before every chunk after the first. */
      chunkDelayMs?: number;
    }
  /** A call of a tool the CLI offered, with JSON arguments (codex `function_call`, gemini `functionCall`). */
  | { kind: 'functionCall'; name: string; args: Record<string, unknown> }
  /**
   * Asks the CLI's own tool to write a file: gemini `write_file`; codex `exec_command` running printf, or
   * its freeform `apply_patch` tool.
   */
  | { kind: 'writeFile'; path: string; content: string; codexTool?: 'exec_command' | 'apply_patch' }
  | { kind: 'httpError'; status: number; message?: string }
  /** Headers and one event, then silence until the server closes. */
  | { kind: 'hang' };

export interface OfflineModelOptions {
  /** 0 or absent: a free port. */
  port?: number;
  host?: '127.0.0.1';
  /** For requests whose prompt has no [[scenario:...]] tag; default 'reply'. */
  defaultScenario?: string;
  /** Overrides the scenario per request; undefined falls back to the scenario. */
  script?: (request: LoggedRequest) => Behaviour | undefined;
  /** Oldest entries are dropped beyond this (default 1000), so a long demo does not grow without end. */
  maxLoggedRequests?: number;
}

export const DEFAULT_REPLY_TEXT = 'Hello from the Tandem offline model.';
export const DEFAULT_WRITE_PATH = 'hello.txt';
export const DEFAULT_WRITE_CONTENT = 'hello from the Tandem offline model\n';
export const DEFAULT_FLOOD_BYTES = 5 * 1024 * 1024;
export const MAX_BODY_BYTES = 32 * 1024 * 1024;
export const SCENARIOS = [
  'reply',
  'write',
  'review',
  'http500',
  'http429',
  'hang',
  'slow',
  'flood',
  'echo',
] as const;

const DEFAULT_SLOW_DELAY_MS = 200;
const DEFAULT_SLOW_CHUNKS = 5;
const FLOOD_CHUNK_BYTES = 64 * 1024;
/** Past this much of a refused body we stop reading and drop the connection. */
const MAX_DRAIN_BYTES = 4 * MAX_BODY_BYTES;

export interface ScenarioTag {
  name: string;
  args: Record<string, string>;
}

const SCENARIO_TAG = /\[\[scenario:([A-Za-z0-9_-]+)((?:\s+[A-Za-z0-9_-]+=[^\s\]]*)*)\s*\]\]/;

/**
 * Finds the first `[[scenario:NAME key=value ...]]` tag. Values cannot hold spaces or `]`, so they may be
 * percent-encoded (`content=two%20words`); a malformed escape is kept as written.
 */
export function parseScenarioTag(prompt: string): ScenarioTag | undefined {
  const match = prompt.match(SCENARIO_TAG);
  if (!match?.[1]) return undefined;
  const args: Record<string, string> = {};
  for (const pair of (match[2] ?? '').trim().split(/\s+/)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const raw = pair.slice(eq + 1);
    let value = raw;
    try {
      value = decodeURIComponent(raw);
    } catch {
      // A lone '%' is just a character.
    }
    args[pair.slice(0, eq)] = value;
  }
  return { name: match[1], args };
}

export function scenarioOf(prompt: string): string | undefined {
  return parseScenarioTag(prompt)?.name;
}

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function arrayOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function textParts(content: unknown, partType: string): string | undefined {
  if (typeof content === 'string') return content;
  const texts = arrayOf(content)
    .filter((part): part is Json => isRecord(part) && part.type === partType && typeof part.text === 'string')
    .map((part) => part.text as string);
  return texts.length > 0 ? texts.join('') : undefined;
}

/**
 * codex sends its context (AGENTS.md, <environment_context>) as user messages ahead of the prompt, so the
 * prompt is the last user message before the model's first output item.
 */
function codexPrompt(body: Json): string | undefined {
  let prompt: string | undefined;
  for (const item of arrayOf(body.input)) {
    if (!isRecord(item)) continue;
    const isMessage = item.type === 'message' || (item.type === undefined && 'role' in item);
    if (!isMessage || item.role === 'assistant') break;
    if (item.role === 'user') prompt = textParts(item.content, 'input_text') ?? prompt;
  }
  return prompt;
}

function codexToolOutputs(body: Json): string[] {
  return arrayOf(body.input)
    .filter((item): item is Json => isRecord(item) && String(item.type).endsWith('_call_output'))
    .map((item) => {
      const output = item.output;
      if (typeof output === 'string') return output;
      return textParts(output, 'input_text') ?? JSON.stringify(output ?? null);
    });
}

function codexToolNames(body: Json): string[] {
  return arrayOf(body.tools)
    .filter(isRecord)
    .map((tool) => stringOf(tool.name) ?? stringOf(tool.type))
    .filter((name): name is string => name !== undefined);
}

/** gemini puts its <session_context> block in the same user turn as the prompt, as the part before it. */
function geminiPrompt(body: Json): string | undefined {
  const first = arrayOf(body.contents).find((content) => isRecord(content) && content.role === 'user');
  if (!isRecord(first)) return undefined;
  const texts = arrayOf(first.parts)
    .filter((part): part is Json => isRecord(part) && typeof part.text === 'string')
    .map((part) => part.text as string);
  if (texts.length > 1 && texts[0]?.startsWith('<session_context>')) return texts[1];
  return texts[0];
}

function geminiToolOutputs(body: Json): string[] {
  const outputs: string[] = [];
  for (const content of arrayOf(body.contents)) {
    if (!isRecord(content)) continue;
    for (const part of arrayOf(content.parts)) {
      if (!isRecord(part) || !isRecord(part.functionResponse)) continue;
      const response = part.functionResponse.response;
      const output = isRecord(response) ? stringOf(response.output) : undefined;
      outputs.push(output ?? JSON.stringify(response ?? null));
    }
  }
  return outputs;
}

function geminiToolNames(body: Json): string[] {
  const names: string[] = [];
  for (const tool of arrayOf(body.tools)) {
    if (!isRecord(tool)) continue;
    for (const [key, value] of Object.entries(tool)) {
      if (key !== 'functionDeclarations') {
        names.push(key);
        continue;
      }
      for (const declaration of arrayOf(value)) {
        const name = isRecord(declaration) ? stringOf(declaration.name) : undefined;
        if (name !== undefined) names.push(name);
      }
    }
  }
  return names;
}

type Endpoint =
  | { api: 'openai-responses'; call: 'responses' }
  | { api: 'gemini'; call: 'stream' | 'generate' | 'countTokens'; model: string }
  | { api: OfflineApi | 'unknown'; call: 'none' };

function endpointOf(method: string, pathname: string): Endpoint {
  if (method === 'POST' && (pathname === '/v1/responses' || pathname === '/responses')) {
    return { api: 'openai-responses', call: 'responses' };
  }
  const gemini = pathname.match(
    /^\/v1(?:beta|alpha|)\/models\/([^/:]+):(streamGenerateContent|generateContent|countTokens)$/,
  );
  if (method === 'POST' && gemini?.[1] && gemini[2]) {
    const call =
      gemini[2] === 'streamGenerateContent'
        ? 'stream'
        : gemini[2] === 'generateContent'
          ? 'generate'
          : 'countTokens';
    return { api: 'gemini', call, model: decodeURIComponent(gemini[1]) };
  }
  if (pathname.startsWith('/v1beta/') || pathname.startsWith('/v1alpha/'))
    return { api: 'gemini', call: 'none' };
  if (pathname.startsWith('/v1/')) return { api: 'openai-responses', call: 'none' };
  return { api: 'unknown', call: 'none' };
}

const GEMINI_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  413: 'INVALID_ARGUMENT',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

const OPENAI_ERROR_TYPE: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
};

function errorBody(api: OfflineApi | 'unknown', status: number, message: string): Json {
  if (api === 'gemini' || api === 'unknown') {
    return { error: { code: status, message, status: GEMINI_STATUS[status] ?? 'UNKNOWN' } };
  }
  return {
    error: {
      message,
      type: OPENAI_ERROR_TYPE[status] ?? 'server_error',
      param: null,
      code: status === 429 ? 'rate_limit_exceeded' : null,
    },
  };
}

/** `findings=high,low` scripts the severities; without it request_changes brings one high finding. */
function reviewText(verdict: string, findingsArg?: string): string {
  const severities =
    findingsArg !== undefined
      ? findingsArg.split(',').filter((severity) => severity !== '')
      : verdict === 'approve'
        ? []
        : ['high'];
  const findings = severities.map((severity, index) => ({
    severity,
    title: index === 0 ? 'User input reaches a shell command unescaped' : `Scripted finding ${index + 1}`,
    detail: 'The offline model reports scripted findings so the review paths can be tested.',
  }));
  return `Review finished.\n\n\`\`\`json\n${JSON.stringify({ verdict, findings }, null, 2)}\n\`\`\`\n`;
}

/**
 * Words from a fixed-seed generator: varied enough that gemini's loop detection (which stops on repeated
 * chunks) lets the whole flood through, and the same on every run.
 */
function floodText(bytes: number): string {
  const lines: string[] = [];
  let size = 0;
  let state = 0x2545f491;
  while (size < bytes) {
    const words: string[] = [];
    for (let i = 0; i < 12; i += 1) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      words.push(state.toString(36));
    }
    const line = `${words.join(' ')}\n`;
    lines.push(line);
    size += line.length;
  }
  return lines.join('').slice(0, bytes);
}

function positiveInt(value: string | undefined, fallback: number): number {
  const parsed = value === undefined ? NaN : Number(value);
  return Number.isSafeInteger(parsed) && parsed >= 0 ? parsed : fallback;
}

/**
 * A tool's output with what changes from run to run taken out (codex's chunk ids and wall times, the absolute
 * paths of isolated copies), so the same scenario always gives the same reply and a run can be replayed.
 */
export function stableToolOutput(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^(Chunk ID|Wall time|Original token count):/.test(line.trim()))
    .join('\n')
    .replace(/\/(?:[^\s"'/]+\/)+([^\s"'/]+)/g, '$1');
}

function scenarioBehaviour(tag: ScenarioTag, request: LoggedRequest, toolOutputs: string[]): Behaviour {
  const { args } = tag;
  switch (tag.name) {
    case 'reply':
      return { kind: 'text', text: args.text ?? DEFAULT_REPLY_TEXT };
    case 'write': {
      const path = args.path ?? DEFAULT_WRITE_PATH;
      if (request.isFollowUp) {
        return {
          kind: 'text',
          text: `Asked to write ${path}. Tool output:\n${toolOutputs.map(stableToolOutput).join('\n')}`,
        };
      }
      const codexTool = args.tool === 'apply_patch' ? 'apply_patch' : 'exec_command';
      return { kind: 'writeFile', path, content: args.content ?? DEFAULT_WRITE_CONTENT, codexTool };
    }
    case 'review':
      return { kind: 'text', text: reviewText(args.verdict ?? 'approve', args.findings) };
    case 'http500':
      return {
        kind: 'httpError',
        status: 500,
        message: 'The offline model failed on purpose (scenario http500).',
      };
    case 'http429':
      return {
        kind: 'httpError',
        status: 429,
        message: 'The offline model is rate limiting (scenario http429).',
      };
    case 'hang':
      return { kind: 'hang' };
    case 'slow':
      return {
        kind: 'text',
        text: args.text ?? DEFAULT_REPLY_TEXT,
        chunks: Math.max(1, positiveInt(args.chunks, DEFAULT_SLOW_CHUNKS)),
        chunkDelayMs: positiveInt(args.ms, DEFAULT_SLOW_DELAY_MS),
      };
    case 'flood': {
      const bytes = positiveInt(args.bytes, DEFAULT_FLOOD_BYTES);
      return {
        kind: 'text',
        text: floodText(bytes),
        chunks: Math.max(1, Math.ceil(bytes / FLOOD_CHUNK_BYTES)),
      };
    }
    case 'echo':
      return { kind: 'text', text: request.prompt ?? '' };
    default:
      return {
        kind: 'httpError',
        status: 400,
        message: `Unknown offline scenario "${tag.name}"; known: ${SCENARIOS.join(', ')}.`,
      };
  }
}

/** Cuts text into about `chunks` pieces, never between the two halves of a surrogate pair. */
function splitText(text: string, chunks: number): string[] {
  const size = Math.max(1, Math.ceil(text.length / Math.max(1, chunks)));
  const pieces: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + size);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end += 1;
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces.length > 0 ? pieces : [''];
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function addFilePatch(path: string, content: string): string {
  const lines = (content.endsWith('\n') ? content.slice(0, -1) : content).split('\n');
  const added = lines.map((line) => `+${line}\n`).join('');
  return `*** Begin Patch\n*** Add File: ${path}\n${added}*** End Patch\n`;
}

function estimateTokens(characters: number): number {
  return Math.max(1, Math.ceil(characters / 4));
}

type StreamedBehaviour = Exclude<Behaviour, { kind: 'httpError' }>;
type ToolBehaviour = Extract<Behaviour, { kind: 'functionCall' | 'writeFile' }>;

/** The codex output item that asks for a tool: a JSON `function_call`, or a freeform `custom_tool_call`. */
function codexToolItem(behaviour: ToolBehaviour, seq: number): Json {
  const callId = `call_offline_${seq}`;
  if (behaviour.kind === 'writeFile' && behaviour.codexTool === 'apply_patch') {
    const input = addFilePatch(behaviour.path, behaviour.content);
    return {
      type: 'custom_tool_call',
      id: `ctc_offline_${seq}`,
      call_id: callId,
      name: 'apply_patch',
      input,
    };
  }
  let name: string;
  let args: Record<string, unknown>;
  if (behaviour.kind === 'writeFile') {
    // login=false: no profile scripts from the CLI's HOME run before the write.
    const cmd = `printf '%s' ${shellQuote(behaviour.content)} > ${shellQuote(behaviour.path)}`;
    [name, args] = ['exec_command', { cmd, login: false }];
  } else {
    [name, args] = [behaviour.name, behaviour.args];
  }
  return {
    type: 'function_call',
    id: `fc_offline_${seq}`,
    call_id: callId,
    name,
    arguments: JSON.stringify(args),
  };
}

function geminiToolPart(behaviour: ToolBehaviour): Json {
  if (behaviour.kind === 'writeFile') {
    const args = { file_path: behaviour.path, content: behaviour.content };
    return { functionCall: { name: 'write_file', args } };
  }
  return { functionCall: { name: behaviour.name, args: behaviour.args } };
}

interface GeminiUsage {
  inputTokens: number;
  model: string;
}

function geminiChunk(parts: Json[], final: boolean, usage: GeminiUsage, outputChars: number): Json {
  const candidate: Json = { content: { role: 'model', parts }, index: 0 };
  if (!final) return { candidates: [candidate] };
  const outputTokens = estimateTokens(outputChars);
  return {
    candidates: [{ ...candidate, finishReason: 'STOP' }],
    usageMetadata: {
      promptTokenCount: usage.inputTokens,
      candidatesTokenCount: outputTokens,
      totalTokenCount: usage.inputTokens + outputTokens,
    },
    // gemini files its per-model stats under this name, so it repeats the model that was asked for.
    modelVersion: usage.model,
  };
}

class ClosedError extends Error {}

/** The server's closing state and the timers that close() must cut short. */
class Lifetime {
  private ended = false;
  private readonly timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();

  get isEnded(): boolean {
    return this.ended;
  }

  delay(ms: number): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.timers.delete(entry);
          resolve();
        }, ms),
        resolve,
      };
      this.timers.add(entry);
    });
  }

  end(): void {
    this.ended = true;
    for (const entry of this.timers) {
      clearTimeout(entry.timer);
      entry.resolve();
    }
    this.timers.clear();
  }
}

/** One streamed answer: writes honour backpressure and stop quietly once the client or the server is gone. */
class Stream {
  constructor(
    readonly res: http.ServerResponse,
    private readonly lifetime: Lifetime,
  ) {}

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded && !this.lifetime.isEnded;
  }

  startSse(): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    this.res.flushHeaders();
  }

  async write(chunk: string): Promise<void> {
    if (!this.open) throw new ClosedError();
    if (this.res.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        this.res.off('drain', done);
        this.res.off('close', done);
        if (this.open) resolve();
        else reject(new ClosedError());
      };
      this.res.once('drain', done);
      this.res.once('close', done);
    });
  }

  async pause(ms: number): Promise<void> {
    if (ms > 0) await this.lifetime.delay(ms);
    if (!this.open) throw new ClosedError();
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, close = false): void {
  if (res.headersSent || res.destroyed) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(payload);
}

/** OpenAI Responses streaming: `event:`/`data:` pairs, the data repeating the event's type. */
async function answerResponses(
  stream: Stream,
  seq: number,
  behaviour: StreamedBehaviour,
  inputTokens: number,
): Promise<void> {
  const id = `resp_offline_${seq}`;
  const send = (type: string, data: Json): Promise<void> =>
    stream.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  stream.startSse();
  await send('response.created', { response: { id, object: 'response', status: 'in_progress' } });
  if (behaviour.kind === 'hang') return;

  let item: Json;
  if (behaviour.kind === 'text') {
    const itemId = `msg_offline_${seq}`;
    const pieces = splitText(behaviour.text, behaviour.chunks ?? 1);
    if (pieces.length > 1) {
      const started = { type: 'message', role: 'assistant', id: itemId, status: 'in_progress', content: [] };
      await send('response.output_item.added', { output_index: 0, item: started });
      for (const [index, delta] of pieces.entries()) {
        if (index > 0) await stream.pause(behaviour.chunkDelayMs ?? 0);
        await send('response.output_text.delta', {
          item_id: itemId,
          output_index: 0,
          content_index: 0,
          delta,
        });
      }
    }
    // codex takes the message from this event; the deltas above only pace the stream.
    item = {
      type: 'message',
      role: 'assistant',
      id: itemId,
      status: 'completed',
      content: [{ type: 'output_text', text: behaviour.text, annotations: [] }],
    };
  } else {
    item = codexToolItem(behaviour, seq);
  }
  await send('response.output_item.done', { output_index: 0, item });
  const outputChars = behaviour.kind === 'text' ? behaviour.text.length : JSON.stringify(item).length;
  const outputTokens = estimateTokens(outputChars);
  await send('response.completed', {
    response: {
      id,
      object: 'response',
      status: 'completed',
      usage: {
        input_tokens: inputTokens,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: outputTokens,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: inputTokens + outputTokens,
      },
    },
  });
  stream.res.end();
}

/** Gemini `:streamGenerateContent?alt=sse`: one `data:` line per GenerateContentResponse. */
async function answerGeminiStream(
  stream: Stream,
  behaviour: StreamedBehaviour,
  usage: GeminiUsage,
): Promise<void> {
  const send = (chunk: Json): Promise<void> => stream.write(`data: ${JSON.stringify(chunk)}\n\n`);
  stream.startSse();
  if (behaviour.kind === 'hang') {
    await send(geminiChunk([{ text: 'Working on it' }], false, usage, 0));
    return;
  }
  if (behaviour.kind === 'text') {
    const pieces = splitText(behaviour.text, behaviour.chunks ?? 1);
    for (const [index, text] of pieces.entries()) {
      if (index > 0) await stream.pause(behaviour.chunkDelayMs ?? 0);
      await send(geminiChunk([{ text }], index === pieces.length - 1, usage, behaviour.text.length));
    }
  } else {
    const part = geminiToolPart(behaviour);
    await send(geminiChunk([part], true, usage, JSON.stringify(part).length));
  }
  stream.res.end();
}

/** Gemini `:generateContent`: the whole answer as one JSON body. */
async function answerGeminiOnce(
  stream: Stream,
  behaviour: StreamedBehaviour,
  usage: GeminiUsage,
): Promise<void> {
  if (behaviour.kind === 'hang') {
    stream.res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    stream.res.flushHeaders();
    return;
  }
  if (behaviour.kind === 'text') {
    const chunks = behaviour.chunks ?? 1;
    await stream.pause((behaviour.chunkDelayMs ?? 0) * Math.max(0, chunks - 1));
    sendJson(stream.res, 200, geminiChunk([{ text: behaviour.text }], true, usage, behaviour.text.length));
    return;
  }
  const part = geminiToolPart(behaviour);
  sendJson(stream.res, 200, geminiChunk([part], true, usage, JSON.stringify(part).length));
}

type Body = { kind: 'read'; bytes: Buffer } | { kind: 'tooLarge' } | { kind: 'aborted' };

/** Reads the body up to MAX_BODY_BYTES; a larger one is read and dropped, so its sender gets to see the 413. */
function readBody(req: http.IncomingMessage): Promise<Body> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length']);
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number.isFinite(declared) && declared > MAX_BODY_BYTES;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      if (!tooLarge) {
        chunks.push(chunk);
        return;
      }
      chunks.length = 0;
      // A sender that never stops is cut off rather than drained forever.
      if (size > MAX_DRAIN_BYTES) req.destroy();
    });
    req.on('end', () =>
      resolve(tooLarge ? { kind: 'tooLarge' } : { kind: 'read', bytes: Buffer.concat(chunks) }),
    );
    // After 'end' this settles nothing; before it, the client went away in the middle of the body.
    req.on('close', () => resolve(tooLarge ? { kind: 'tooLarge' } : { kind: 'aborted' }));
    req.on('error', () => resolve({ kind: 'aborted' }));
  });
}

export class OfflineModelServer {
  readonly port: number;
  readonly openaiBaseUrl: string;
  readonly geminiBaseUrl: string;
  private readonly log: LoggedRequest[] = [];
  private seq = 0;
  private closed: Promise<void> | undefined;
  private readonly lifetime = new Lifetime();
  private readonly defaultScenario: string;
  private readonly maxLogged: number;

  private constructor(
    private readonly server: http.Server,
    private readonly options: OfflineModelOptions,
  ) {
    this.port = (server.address() as AddressInfo).port;
    this.geminiBaseUrl = `http://127.0.0.1:${this.port}`;
    this.openaiBaseUrl = `${this.geminiBaseUrl}/v1`;
    this.defaultScenario = options.defaultScenario ?? 'reply';
    this.maxLogged = Math.max(1, options.maxLoggedRequests ?? 1000);
  }

  static async start(options: OfflineModelOptions = {}): Promise<OfflineModelServer> {
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // Loopback only, whatever the caller passed: anything that can reach this port may use it.
      server.listen(options.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const model = new OfflineModelServer(server, options);
    server.on('request', (req, res) => {
      model.handle(req, res).catch((error: unknown) => model.fail(res, error));
    });
    // Bytes that are not HTTP close that socket instead of becoming an uncaught error.
    server.on('clientError', (_error, socket) => socket.destroy());
    return model;
  }

  get requests(): readonly LoggedRequest[] {
    return this.log;
  }

  clearLog(): void {
    this.log.length = 0;
  }

  /** Ends hanging and slow streams and idle keep-alive sockets too, so it never waits on a client. */
  async close(): Promise<void> {
    if (this.closed) return this.closed;
    this.lifetime.end();
    this.closed = new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closed;
  }

  private fail(res: http.ServerResponse, error: unknown): void {
    if (error instanceof ClosedError) return;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const message = `The offline model failed: ${error instanceof Error ? error.message : String(error)}`;
    sendJson(res, 500, errorBody('unknown', 500, message));
  }

  private record(entry: Omit<LoggedRequest, 'seq'>): LoggedRequest {
    this.seq += 1;
    const logged: LoggedRequest = { seq: this.seq, ...entry };
    this.log.push(logged);
    if (this.log.length > this.maxLogged) this.log.splice(0, this.log.length - this.maxLogged);
    return logged;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const pathname = path.split('?')[0] ?? '/';
    const endpoint = endpointOf(method, pathname);
    const time = Date.now();
    const raw = await readBody(req);
    const base = { api: endpoint.api, method, path, time, toolNames: [], isFollowUp: false };

    if (raw.kind !== 'read') {
      this.record({ ...base, body: undefined, prompt: undefined, scenario: this.defaultScenario });
      if (raw.kind === 'tooLarge') {
        const message = `The request body is over the offline model's limit of ${MAX_BODY_BYTES} bytes.`;
        sendJson(res, 413, errorBody(endpoint.api, 413, message), true);
      }
      return;
    }

    const text = raw.bytes.toString('utf8');
    let body: unknown = text.length > 0 ? text : undefined;
    try {
      if (text.length > 0) body = JSON.parse(text);
    } catch {
      // Kept as text: the log shows what arrived even when it was not JSON.
    }
    const json = isRecord(body) ? body : undefined;
    let prompt: string | undefined;
    let toolNames: string[] = [];
    let toolOutputs: string[] = [];
    if (json && endpoint.api === 'openai-responses') {
      [prompt, toolNames, toolOutputs] = [codexPrompt(json), codexToolNames(json), codexToolOutputs(json)];
    } else if (json && endpoint.api === 'gemini') {
      [prompt, toolNames, toolOutputs] = [geminiPrompt(json), geminiToolNames(json), geminiToolOutputs(json)];
    }
    const cli = endpoint.api === 'gemini' ? 'gemini' : 'codex';
    const tag = (prompt === undefined
      ? undefined
      : (roleScenario(prompt, cli) ?? parseScenarioTag(prompt))) ?? {
      name: this.defaultScenario,
      args: {},
    };
    const isFollowUp = toolOutputs.length > 0;
    const request = this.record({ ...base, body, prompt, scenario: tag.name, toolNames, isFollowUp });

    if (endpoint.call === 'none') {
      const message = `The offline model has no ${method} ${pathname}.`;
      sendJson(res, 404, errorBody(endpoint.api, 404, message));
      return;
    }
    if (!json) {
      sendJson(res, 400, errorBody(endpoint.api, 400, 'The request body is not a JSON object.'));
      return;
    }
    const inputTokens = estimateTokens(text.length);
    if (endpoint.call === 'countTokens') {
      sendJson(res, 200, { totalTokens: inputTokens });
      return;
    }

    const behaviour = this.options.script?.(request) ?? scenarioBehaviour(tag, request, toolOutputs);
    if (behaviour.kind === 'httpError') {
      const status = behaviour.status >= 400 && behaviour.status <= 599 ? behaviour.status : 500;
      const message = behaviour.message ?? http.STATUS_CODES[status] ?? 'Error';
      sendJson(res, status, errorBody(endpoint.api, status, message));
      return;
    }
    const stream = new Stream(res, this.lifetime);
    if (endpoint.call === 'responses') {
      await answerResponses(stream, request.seq, behaviour, inputTokens);
    } else if (endpoint.call === 'stream') {
      await answerGeminiStream(stream, behaviour, { inputTokens, model: endpoint.model });
    } else {
      await answerGeminiOnce(stream, behaviour, { inputTokens, model: endpoint.model });
    }
  }
}
