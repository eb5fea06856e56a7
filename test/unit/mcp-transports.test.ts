// Specification of the MCP transports: the loopback HTTP server (sessions, Host/Origin/token checks, limits,
// shutdown) over real sockets with the SDK client, and stdio both in a child process and in-process.
import * as assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod';
import {
  generateToken,
  startHttpServer,
  type HttpServerOptions,
  type RunningHttpServer,
} from '../../src/mcp/http-transport';
import { serveStdio } from '../../src/mcp/stdio-transport';
import { isProcessAlive, waitUntilGone } from '../support/processes';

const ALLOWED_ORIGIN = 'vscode-webview://tandem-dashboard';

interface Probe {
  /** Resolves with the reason when a `wait` call's abort signal fires. */
  aborted: Promise<string>;
  markAborted: (reason: string) => void;
}

function newProbe(): Probe {
  let markAborted: (reason: string) => void = () => undefined;
  const aborted = new Promise<string>((resolve) => (markAborted = resolve));
  return { aborted, markAborted };
}

/** The tool registry lives elsewhere: this server has just what the transport tests need. */
function createTestServer(probe: Probe = newProbe()): McpServer {
  const server = new McpServer({ name: 'transport-test', version: '0.0.0' });
  server.registerTool(
    'echo',
    { description: 'Echoes the text back.', inputSchema: { agentId: z.string(), text: z.string() } },
    ({ agentId, text }, extra) => ({
      content: [{ type: 'text', text: `${agentId}: ${text}` }],
      structuredContent: {
        clientId: extra.authInfo?.clientId ?? null,
        sessionId: extra.sessionId ?? null,
      },
    }),
  );
  server.registerTool(
    'wait',
    { description: 'Waits until cancelled.', inputSchema: { agentId: z.string() } },
    (_args, extra) =>
      new Promise((resolve) => {
        extra.signal.addEventListener('abort', () => {
          probe.markAborted('aborted');
          resolve({ content: [{ type: 'text', text: 'aborted' }] });
        });
      }),
  );
  return server;
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** node:http rather than fetch: fetch will not send a Host header of our choosing. */
function rawRequest(
  port: number,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer[] },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'POST',
        path: options.path ?? '/mcp',
        headers: options.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (Array.isArray(options.body)) {
      // Chunked upload: no Content-Length for the server to judge up front.
      for (const chunk of options.body) req.write(chunk);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

function initializeBody(id = 1): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: {
      protocolVersion: LATEST_PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'raw-test', version: '0.0.0' },
    },
  });
}

const MCP_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

function errorOf(body: string): { code: number; message: string } {
  const parsed = JSON.parse(body) as { jsonrpc: string; error: { code: number; message: string } };
  assert.equal(parsed.jsonrpc, '2.0');
  return parsed.error;
}

describe('MCP HTTP transport', function () {
  let token: string;
  let running: RunningHttpServer;
  let probe: Probe;
  const clients: Client[] = [];
  const logLines: string[] = [];

  async function start(extra: Partial<HttpServerOptions> = {}): Promise<RunningHttpServer> {
    await running?.close();
    running = await startHttpServer({
      createServer: () => createTestServer(probe),
      token,
      allowedOrigins: [ALLOWED_ORIGIN],
      log: (line) => logLines.push(line),
      ...extra,
    });
    return running;
  }

  function auth(value = token): Record<string, string> {
    return { ...MCP_HEADERS, Authorization: `Bearer ${value}` };
  }

  async function connectClient(
    bearer = token,
  ): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const transport = new StreamableHTTPClientTransport(new URL(running.url), {
      requestInit: { headers: { Authorization: `Bearer ${bearer}` } },
    });
    const client = new Client({ name: 'transport-test-client', version: '0.0.0' });
    await client.connect(transport);
    clients.push(client);
    return { client, transport };
  }

  beforeEach(async function () {
    token = generateToken();
    probe = newProbe();
    logLines.length = 0;
    await start();
  });

  afterEach(async function () {
    await Promise.allSettled(clients.splice(0).map((client) => client.close()));
    await running.close();
  });

  it('lists and calls a tool for a client with the right token, which the handler sees as authInfo', async function () {
    const { client, transport } = await connectClient();
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((tool) => tool.name).sort(), ['echo', 'wait']);
    const result = await client.callTool({ name: 'echo', arguments: { agentId: 'a1', text: 'hi' } });
    assert.deepEqual(result.content, [{ type: 'text', text: 'a1: hi' }]);
    assert.deepEqual(result.structuredContent, { clientId: 'tandem', sessionId: transport.sessionId });
    assert.ok(!logLines.some((line) => line.includes(token)), 'the token never reaches the log');
  });

  it('gives two clients two sessions, and a DELETE ends exactly one of them', async function () {
    const first = await connectClient();
    const second = await connectClient();
    assert.equal(running.sessionCount(), 2);
    assert.notEqual(first.transport.sessionId, second.transport.sessionId);
    const endedId = first.transport.sessionId;
    assert.ok(endedId);

    await first.transport.terminateSession();
    assert.equal(running.sessionCount(), 1);
    const stale = await rawRequest(running.port, {
      headers: { ...auth(), 'Mcp-Session-Id': endedId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
    });
    assert.equal(stale.status, 404);
    assert.equal(errorOf(stale.body).code, -32001);

    const result = await second.client.callTool({
      name: 'echo',
      arguments: { agentId: 'b', text: 'still here' },
    });
    assert.deepEqual(result.content, [{ type: 'text', text: 'b: still here' }]);
  });

  it('starts a session only on an initialize request', async function () {
    const res = await rawRequest(running.port, {
      headers: auth(),
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }),
    });
    assert.equal(res.status, 400);
    assert.match(errorOf(res.body).message, /initialize/);
    const get = await rawRequest(running.port, { method: 'GET', headers: auth() });
    assert.equal(get.status, 400);
    assert.equal(running.sessionCount(), 0);
  });

  it('refuses a request without a token with 401 and WWW-Authenticate: Bearer', async function () {
    const res = await fetch(running.url, { method: 'POST', headers: MCP_HEADERS, body: initializeBody() });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer\b/);
    assert.match(errorOf(await res.text()).message, /Unauthorized/);
    assert.equal(running.sessionCount(), 0);
  });

  it('refuses a wrong token of the same length, of another length, or under another scheme', async function () {
    const sameLength = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    assert.equal(sameLength.length, token.length);
    const headerValues = [
      `Bearer ${sameLength}`,
      `Bearer ${token}x`,
      `Bearer ${token.slice(0, 10)}`,
      `Basic ${token}`,
    ];
    for (const value of headerValues) {
      const res = await fetch(running.url, {
        method: 'POST',
        headers: { ...MCP_HEADERS, Authorization: value },
        body: initializeBody(),
      });
      assert.equal(res.status, 401, value);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer\b/);
    }
    await assert.rejects(connectClient(generateToken()), /401|Unauthorized/);
    assert.equal(running.sessionCount(), 0);
  });

  it('refuses a Host header that is not a loopback name with 403, even with the right token', async function () {
    const hosts = [
      'evil.example',
      `evil.example:${running.port}`,
      `127.0.0.1.evil.example:${running.port}`,
      `evil.example@127.0.0.1:${running.port}`,
      `localhost.:${running.port}`,
    ];
    for (const host of hosts) {
      const res = await rawRequest(running.port, {
        headers: { ...auth(), Host: host },
        body: initializeBody(),
      });
      assert.equal(res.status, 403, host);
      assert.match(errorOf(res.body).message, /Host/);
    }
    assert.equal(running.sessionCount(), 0);
  });

  it('accepts Host localhost and [::1] on any port', async function () {
    for (const host of [`localhost:${running.port}`, 'LOCALHOST', `[::1]:${running.port}`, '127.0.0.1:1']) {
      const res = await rawRequest(running.port, {
        headers: { ...auth(), Host: host },
        body: initializeBody(),
      });
      assert.equal(res.status, 200, host);
      assert.ok(res.headers['mcp-session-id'], host);
    }
    assert.equal(running.sessionCount(), 4);
  });

  it('refuses a foreign Origin with 403, loopback origins included, and accepts an allowed one', async function () {
    for (const origin of ['http://evil.example', `http://localhost:${running.port}`, 'null']) {
      const res = await fetch(running.url, {
        method: 'POST',
        headers: { ...auth(), Origin: origin },
        body: initializeBody(),
      });
      assert.equal(res.status, 403, origin);
      assert.match(errorOf(await res.text()).message, /Origin/);
    }
    const allowed = await fetch(running.url, {
      method: 'POST',
      headers: { ...auth(), Origin: ALLOWED_ORIGIN },
      body: initializeBody(),
    });
    assert.equal(allowed.status, 200);
    await allowed.body?.cancel();
    assert.equal(running.sessionCount(), 1);
  });

  it('checks Host before Origin before the token', async function () {
    const hostFirst = await rawRequest(running.port, {
      headers: { ...MCP_HEADERS, Host: 'evil.example', Origin: 'http://evil.example' },
      body: initializeBody(),
    });
    assert.equal(hostFirst.status, 403);
    assert.match(errorOf(hostFirst.body).message, /Host/);
    const originNext = await rawRequest(running.port, {
      headers: { ...MCP_HEADERS, Origin: 'http://evil.example' },
      body: initializeBody(),
    });
    assert.equal(originNext.status, 403);
    assert.match(errorOf(originNext.body).message, /Origin/);
  });

  it('refuses a body over the limit with 413, declared or chunked', async function () {
    await start({ maxBodyBytes: 1024 });
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(2000) } });
    const declared = await fetch(running.url, { method: 'POST', headers: auth(), body: big });
    assert.equal(declared.status, 413);
    assert.equal(errorOf(await declared.text()).code, -32000);

    const chunked = await rawRequest(running.port, {
      headers: auth(),
      body: [Buffer.from(big.slice(0, 1000)), Buffer.from(big.slice(1000))],
    });
    assert.equal(chunked.status, 413);

    const fits = await fetch(running.url, { method: 'POST', headers: auth(), body: initializeBody() });
    assert.equal(fits.status, 200);
    await fits.body?.cancel();
  });

  it('answers a body that is not JSON with a JSON-RPC parse error', async function () {
    const res = await fetch(running.url, { method: 'POST', headers: auth(), body: '{"jsonrpc":' });
    assert.equal(res.status, 400);
    assert.equal(errorOf(await res.text()).code, -32700);
  });

  it('answers 404 off /mcp and 405 for other methods', async function () {
    const other = await fetch(new URL('/other', running.url), { headers: auth() });
    assert.equal(other.status, 404);
    errorOf(await other.text());
    const put = await fetch(running.url, { method: 'PUT', headers: auth(), body: initializeBody() });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get('allow'), 'GET, POST, DELETE');
    await put.body?.cancel();
  });

  it('binds 127.0.0.1 only', async function () {
    const address = running.address();
    assert.equal(address.address, '127.0.0.1');
    assert.equal(address.family, 'IPv4');
    assert.equal(running.url, `http://127.0.0.1:${running.port}/mcp`);
    await assert.rejects(fetch(`http://[::1]:${running.port}/mcp`, { method: 'POST', headers: auth() }));
  });

  it('refuses a weak token, a bad port and a wildcard origin at start, with a clear error', async function () {
    const createServer = (): McpServer => createTestServer();
    await assert.rejects(startHttpServer({ createServer, token: 'short' }), /at least 32 characters/);
    await assert.rejects(startHttpServer({ createServer, token: `${'a'.repeat(40)} b` }), /may only hold/);
    await assert.rejects(startHttpServer({ createServer, token, port: 70000 }), /port/);
    await assert.rejects(startHttpServer({ createServer, token, allowedOrigins: ['*'] }), /exact origin/);
  });

  it('generates 32-byte base64url tokens that differ each time', function () {
    const a = generateToken();
    assert.match(a, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(a, 'base64url').length, 32);
    assert.notEqual(a, generateToken());
  });

  it('close() resolves with an open SSE GET stream and ends that stream', async function () {
    const init = await rawRequest(running.port, { headers: auth(), body: initializeBody() });
    const sessionId = init.headers['mcp-session-id'];
    assert.equal(typeof sessionId, 'string');
    const stream = await fetch(running.url, {
      headers: { ...auth(), Accept: 'text/event-stream', 'Mcp-Session-Id': sessionId as string },
    });
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = stream.body?.getReader();
    assert.ok(reader);
    const ended = reader.read().then(
      (chunk) => (chunk.done ? 'done' : 'data'),
      () => 'error',
    );

    const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), 5000).unref());
    assert.equal(await Promise.race([running.close().then(() => 'closed'), timeout]), 'closed');
    assert.notEqual(await Promise.race([ended, timeout]), 'timeout');
    assert.equal(running.sessionCount(), 0);
  });

  it('close() aborts a tool call in flight', async function () {
    const { client } = await connectClient();
    const call = client
      .callTool({ name: 'wait', arguments: { agentId: 'a1' } })
      .catch((error: unknown) => error);
    // Wait until the call is really in the handler before shutting down.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await running.close();
    assert.equal(await probe.aborted, 'aborted');
    // The SDK client keeps waiting for an answer the closed server will never send; closing it settles the call.
    await client.close();
    assert.ok((await call) instanceof Error);
  });
});

describe('MCP stdio transport', function () {
  it('serves a client in a child process and the child exits when the client goes away', async function () {
    const script = path.resolve(__dirname, '..', 'fixtures', 'stdio-server-main.js');
    const transport = new StdioClientTransport({ command: process.execPath, args: [script], stderr: 'pipe' });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const client = new Client({ name: 'stdio-test-client', version: '0.0.0' });
    await client.connect(transport);
    const pid = transport.pid;
    assert.ok(pid !== null && isProcessAlive(pid));

    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((tool) => tool.name),
      ['echo'],
    );
    const result = await client.callTool({ name: 'echo', arguments: { agentId: 'a1', text: 'over stdio' } });
    assert.deepEqual(result.content, [{ type: 'text', text: 'a1: over stdio' }]);

    await client.close();
    assert.deepEqual(await waitUntilGone([pid], 5000), []);
    // The fixture only lets go of its event loop in onClose, so this line proves the callback ran.
    assert.match(stderr, /client went away/);
  });

  it('writes only JSON-RPC to stdout, calls onClose when stdin ends, and not after close()', async function () {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    let output = '';
    stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    let closes = 0;
    const session = await serveStdio(() => createTestServer(), { stdin, stdout, onClose: () => closes++ });

    stdin.write(initializeBody(1) + '\n');
    stdin.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
    stdin.write(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) + '\n');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const lines = output.trim().split('\n');
    assert.equal(lines.length, 2);
    for (const line of lines) assert.equal((JSON.parse(line) as { jsonrpc: string }).jsonrpc, '2.0');

    stdin.end();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(closes, 1);
    await session.close();
    assert.equal(closes, 1);

    const second = await serveStdio(() => createTestServer(), {
      stdin: new PassThrough(),
      stdout: new PassThrough(),
      onClose: () => closes++,
    });
    await second.close();
    assert.equal(closes, 1);
  });
});
