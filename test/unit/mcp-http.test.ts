// Specification of Tandem's tools over loopback Streamable HTTP: the same registry behind the bearer-token,
// Host and Origin checks, driven by the SDK's HTTP client and by raw requests.
import * as assert from 'node:assert/strict';
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { generateToken, startHttpServer, type RunningHttpServer } from '../../src/mcp/http-transport';
import { createServerFactory } from '../../src/mcp/server';
import { callError, callOk, openHarness, type McpHarness } from '../support/mcp-harness';

const AGENT = 'http-agent';

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: LATEST_PROTOCOL_VERSION,
    capabilities: {},
    clientInfo: { name: 'raw-test', version: '0.0.0' },
  },
};

function postHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...extra };
}

/** A raw POST with node:http, which (unlike fetch) lets the test set the Host header. */
function rawPost(
  url: string,
  headers: Record<string, string>,
  body: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
    });
    request.on('error', reject);
    request.end(JSON.stringify(body));
  });
}

describe('MCP tools over loopback HTTP', function () {
  let harness: McpHarness;
  let server: RunningHttpServer;
  let token: string;
  const clients: Client[] = [];

  async function connect(withToken: string | undefined): Promise<Client> {
    const client = new Client({ name: 'tandem-http-test', version: '0.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(server.url), {
      requestInit: withToken === undefined ? {} : { headers: { Authorization: `Bearer ${withToken}` } },
    });
    clients.push(client);
    await client.connect(transport);
    return client;
  }

  beforeEach(async function () {
    harness = await openHarness();
    token = generateToken();
    server = await startHttpServer({ createServer: createServerFactory(harness.registry), token });
  });

  afterEach(async function () {
    for (const client of clients.splice(0)) await client.close().catch(() => undefined);
    await server?.close();
    await harness?.close();
  });

  it('serves the fourteen tools and run_list to a client with the bearer token', async function () {
    const client = await connect(token);
    const { tools } = await client.listTools();
    const inMemory = await harness.client.listTools();
    assert.equal(tools.length, 14);
    assert.deepEqual(tools.map((tool) => tool.name).sort(), inMemory.tools.map((tool) => tool.name).sort());
    const listed = await callOk(client, 'run_list', { agentId: AGENT });
    assert.deepEqual(listed, { runs: [], nextBefore: null });
  });

  it('shares one state between sessions and with the in-process server', async function () {
    const first = await connect(token);
    const second = await connect(token);
    assert.equal(server.sessionCount(), 2);
    const result = await callOk(first, 'strategy_run', {
      agentId: AGENT,
      strategy: 'single_worker',
      prompt: 'over http',
      waitSeconds: 10,
    });
    const runId = (result.run as { id: string }).id;
    const listed = await callOk(second, 'run_list', { agentId: 'someone-else' });
    assert.deepEqual(
      (listed.runs as { id: string; owner: string; status: string }[]).map(({ id, owner, status }) => ({
        id,
        owner,
        status,
      })),
      [{ id: runId, owner: AGENT, status: 'succeeded' }],
    );
    await callOk(second, 'panic_engage', { agentId: 'someone-else', reason: 'http test' });
    assert.equal(await callError(first, 'worker_spawn', { agentId: AGENT, kind: 'codex' }), 'PANIC_ENGAGED');
    assert.equal(await harness.callError('worker_spawn', { agentId: AGENT, kind: 'codex' }), 'PANIC_ENGAGED');
  });

  it('refuses a client without a token or with a wrong one (401)', async function () {
    const unauthorized = (error: unknown): boolean =>
      (error as { code?: unknown }).code === 401 && /Unauthorized/.test((error as Error).message);
    await assert.rejects(connect(undefined), unauthorized);
    await assert.rejects(connect(generateToken()), unauthorized);
    assert.equal(server.sessionCount(), 0);
  });

  it('answers 401 with WWW-Authenticate to a raw request without a token or with a wrong one', async function () {
    for (const authorization of [
      undefined,
      `Bearer ${generateToken()}`,
      `Basic ${token}`,
      `Bearer ${token}x`,
    ]) {
      const response = await fetch(server.url, {
        method: 'POST',
        headers: postHeaders(authorization === undefined ? {} : { Authorization: authorization }),
        body: JSON.stringify(INITIALIZE),
      });
      assert.equal(response.status, 401, String(authorization));
      assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer /);
      await response.body?.cancel();
    }
    assert.equal(server.sessionCount(), 0);
  });

  it('refuses a foreign Host header (403), even with the token', async function () {
    const refused = await rawPost(
      server.url,
      postHeaders({ Host: 'evil.example', Authorization: `Bearer ${token}` }),
      INITIALIZE,
    );
    assert.equal(refused.status, 403);
    assert.match(refused.body, /Host/);
    const allowed = await rawPost(
      server.url,
      postHeaders({ Host: `localhost:${server.port}`, Authorization: `Bearer ${token}` }),
      INITIALIZE,
    );
    assert.equal(allowed.status, 200, allowed.body);
  });

  it('refuses a browser Origin (403), even with the token', async function () {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: postHeaders({ Origin: 'http://evil.example', Authorization: `Bearer ${token}` }),
      body: JSON.stringify(INITIALIZE),
    });
    assert.equal(response.status, 403);
    assert.match(await response.text(), /Origin/);
    assert.equal(server.sessionCount(), 0);
  });
});
