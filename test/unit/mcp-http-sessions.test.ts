// Specification of the HTTP server's session lifetime: clients rarely end their sessions, so an idle one
// expires and a new one beyond the cap evicts the session idle the longest. Real HTTP on loopback; the idle
// clock is the test's own, so expiry happens when the test says and never by a fixed sleep.
import * as assert from 'node:assert/strict';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import {
  generateToken,
  startHttpServer,
  type IdleClock,
  type RunningHttpServer,
  type SessionClosedEvent,
} from '../../src/mcp/http-transport';
import { createServerFactory } from '../../src/mcp/server';
import { openHarness, type McpHarness } from '../support/mcp-harness';

const AGENT = 'session-agent';
const HOUR = 60 * 60 * 1000;

/** Timers that fire only when the test calls expire(): what is pending is visible, so a leak shows. */
class ManualClock implements IdleClock {
  private readonly pending = new Map<number, { expire: () => void; ms: number }>();
  private next = 0;

  schedule(expire: () => void, ms: number): () => void {
    const id = this.next++;
    this.pending.set(id, { expire, ms });
    return () => this.pending.delete(id);
  }

  get armed(): number {
    return this.pending.size;
  }

  /** Fires every timer armed now, as if the idle time had passed. */
  expireAll(): void {
    const due = [...this.pending.values()];
    this.pending.clear();
    for (const timer of due) timer.expire();
  }
}

describe('MCP HTTP sessions: idle expiry and the session cap', function () {
  let harness: McpHarness;
  let server: RunningHttpServer | undefined;
  let token: string;
  const streams: AbortController[] = [];

  async function start(options: { maxSessions?: number; sessionIdleMs?: number; idleClock?: IdleClock }) {
    server = await startHttpServer({
      createServer: createServerFactory(harness.registry),
      token,
      ...options,
    });
    return server;
  }

  function headers(sessionId?: string): Record<string, string> {
    return {
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      Authorization: `Bearer ${token}`,
      'MCP-Protocol-Version': LATEST_PROTOCOL_VERSION,
      ...(sessionId === undefined ? {} : { 'Mcp-Session-Id': sessionId }),
    };
  }

  function post(sessionId: string | undefined, body: unknown, signal?: AbortSignal): Promise<Response> {
    return fetch(server!.url, {
      method: 'POST',
      headers: headers(sessionId),
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
  }

  /** Initializes a session the way a client does (initialize, then notifications/initialized). */
  async function openSession(): Promise<string> {
    const response = await post(undefined, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: LATEST_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: 'session-test', version: '0.0.0' },
      },
    });
    assert.equal(response.status, 200, await response.clone().text());
    const sessionId = response.headers.get('mcp-session-id');
    assert.ok(sessionId, 'no Mcp-Session-Id on the initialize answer');
    await response.text();
    const initialized = await post(sessionId, { jsonrpc: '2.0', method: 'notifications/initialized' });
    assert.equal(initialized.status, 202);
    await initialized.body?.cancel();
    return sessionId;
  }

  /** The status a session answers tools/list with: 200 while it lives, 404 once it is gone. */
  async function listStatus(sessionId: string): Promise<{ status: number; code?: number }> {
    const response = await post(sessionId, { jsonrpc: '2.0', id: 7, method: 'tools/list' });
    const text = await response.text();
    if (response.status !== 404) return { status: response.status };
    return { status: 404, code: (JSON.parse(text) as { error: { code: number } }).error.code };
  }

  /** Opens the session's GET stream and returns once the server has answered it (the stream is live). */
  async function openStream(sessionId: string): Promise<AbortController> {
    const controller = new AbortController();
    streams.push(controller);
    const response = await fetch(server!.url, {
      method: 'GET',
      headers: {
        Accept: 'text/event-stream',
        Authorization: `Bearer ${token}`,
        'MCP-Protocol-Version': LATEST_PROTOCOL_VERSION,
        'Mcp-Session-Id': sessionId,
      },
      signal: controller.signal,
    });
    assert.equal(response.status, 200);
    return controller;
  }

  function nextClose(which: string): Promise<SessionClosedEvent> {
    return new Promise((resolve) => {
      const stop = server!.onSessionClosed((event) => {
        if (event.sessionId !== which) return;
        stop();
        resolve(event);
      });
    });
  }

  beforeEach(async function () {
    harness = await openHarness();
    token = generateToken();
  });

  afterEach(async function () {
    for (const stream of streams.splice(0)) stream.abort();
    await server?.close();
    server = undefined;
    await harness?.close();
  });

  it('evicts the session idle the longest when a new one would exceed the cap; the evicted one gets 404', async function () {
    const clock = new ManualClock();
    await start({ maxSessions: 2, idleClock: clock });
    const first = await openSession();
    const second = await openSession();
    // The first session is used again: the second is now the one idle the longest.
    assert.equal((await listStatus(first)).status, 200);
    const evicted = nextClose(second);
    const third = await openSession();
    assert.deepEqual(await evicted, { sessionId: second, reason: 'evicted' });

    assert.deepEqual(await listStatus(second), { status: 404, code: -32001 });
    assert.equal((await listStatus(first)).status, 200);
    assert.equal((await listStatus(third)).status, 200);
    assert.deepEqual(server!.resources(), { sessions: 2, connectedServers: 2, idleTimers: 2 });
    assert.equal(clock.armed, 2, 'the evicted session left its idle timer armed');
  });

  it('never evicts a session with an open stream; refuses a new session (503) while every session is busy', async function () {
    const clock = new ManualClock();
    await start({ maxSessions: 2, idleClock: clock });
    const streaming = await openSession();
    const stream = await openStream(streaming);
    const idle = await openSession();
    const evicted = nextClose(idle);
    const third = await openSession();
    assert.equal((await evicted).reason, 'evicted');
    assert.equal((await listStatus(streaming)).status, 200);

    await openStream(third);
    const refused = await post(undefined, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: LATEST_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: 'x', version: '0' },
      },
    });
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '5');
    assert.match(await refused.text(), /all 2 MCP sessions have work in flight/);
    assert.deepEqual(server!.resources(), { sessions: 2, connectedServers: 2, idleTimers: 0 });

    // Once its stream ends the session is idle, and the oldest idle one is what a new session evicts.
    const released = nextClose(streaming);
    stream.abort();
    await openSession();
    assert.equal((await released).reason, 'evicted');
    assert.equal((await listStatus(third)).status, 200);
  });

  it('never evicts a session whose call is in flight, even after its client dropped the POST', async function () {
    const clock = new ManualClock();
    await start({ maxSessions: 1, idleClock: clock });
    const working = await openSession();
    const dropped = new AbortController();
    const call = post(
      working,
      {
        jsonrpc: '2.0',
        id: 9,
        method: 'tools/call',
        params: {
          name: 'strategy_run',
          arguments: {
            agentId: AGENT,
            strategy: 'single_worker',
            prompt: '[[scenario:hang]]',
            waitSeconds: 50,
          },
        },
      },
      dropped.signal,
    );
    const running = await waitForRunningRun(harness);
    dropped.abort();
    await call.catch(() => undefined);
    const refused = await post(undefined, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: LATEST_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: 'x', version: '0' },
      },
    });
    assert.equal(refused.status, 503, 'a session with a call in flight was treated as idle');
    await refused.body?.cancel();
    assert.equal(clock.armed, 0, 'an idle timer was armed under a call in flight');

    // When the call ends (its run cancelled), the session is idle and can be evicted.
    const evicted = nextClose(working);
    await harness.registry.callTool('run_cancel', { runId: running }, { asHuman: true });
    await waitUntil(() => clock.armed === 1);
    await openSession();
    assert.equal((await evicted).reason, 'evicted');
  });

  it('closes a session idle for the idle time, keeps one with an open stream, and releases everything', async function () {
    const clock = new ManualClock();
    await start({ idleClock: clock });
    const streaming = await openSession();
    const stream = await openStream(streaming);
    const idle = await openSession();
    assert.equal(clock.armed, 1, 'only the session without a stream is idle');

    const expired = nextClose(idle);
    clock.expireAll();
    assert.deepEqual(await expired, { sessionId: idle, reason: 'expired' });
    assert.deepEqual(await listStatus(idle), { status: 404, code: -32001 });
    assert.deepEqual(server!.resources(), { sessions: 1, connectedServers: 1, idleTimers: 0 });

    const streamExpired = nextClose(streaming);
    stream.abort();
    await waitUntil(() => clock.armed === 1);
    clock.expireAll();
    assert.equal((await streamExpired).reason, 'expired');
    assert.deepEqual(server!.resources(), { sessions: 0, connectedServers: 0, idleTimers: 0 });
    assert.equal(clock.armed, 0);
  });

  it('expires an idle session on the real clock', async function () {
    await start({ sessionIdleMs: 50 });
    const session = await openSession();
    const expired = await nextClose(session);
    assert.equal(expired.reason, 'expired');
    assert.deepEqual(server!.resources(), { sessions: 0, connectedServers: 0, idleTimers: 0 });
    assert.deepEqual(await listStatus(session), { status: 404, code: -32001 });
  });

  it('releases a session its client ends with DELETE, timer included', async function () {
    const clock = new ManualClock();
    await start({ maxSessions: 4, sessionIdleMs: HOUR, idleClock: clock });
    const session = await openSession();
    const closed = nextClose(session);
    const response = await fetch(server!.url, { method: 'DELETE', headers: headers(session) });
    assert.equal(response.status, 200);
    assert.equal((await closed).reason, 'deleted');
    assert.deepEqual(server!.resources(), { sessions: 0, connectedServers: 0, idleTimers: 0 });
    assert.equal(clock.armed, 0);
  });

  it('refuses a session limit or idle time that is not a positive whole number', async function () {
    const createServer = createServerFactory(harness.registry);
    await assert.rejects(startHttpServer({ createServer, token, maxSessions: 0 }), /maxSessions/);
    await assert.rejects(startHttpServer({ createServer, token, sessionIdleMs: 0.5 }), /sessionIdleMs/);
    await assert.rejects(startHttpServer({ createServer, token, sessionIdleMs: 2 ** 31 }), /sessionIdleMs/);
  });
});

/** Polls a condition the server reaches on its own (a timer armed after a response); bounded by mocha's timeout. */
async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

async function waitForRunningRun(harness: McpHarness): Promise<string> {
  for (;;) {
    await harness.services.store.refresh();
    const run = harness.services.store.list({ status: 'running', limit: 1 })[0];
    if (run) return run.id;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
