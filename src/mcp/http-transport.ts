// Loopback Streamable HTTP transport for the MCP server: one McpServer per session from a factory, behind
// Host, Origin and bearer-token checks so that neither a browser page nor another local user can drive it.
// Clients rarely end their sessions (a closed window, a killed agent), so an idle session expires and the
// number of live ones is capped: a session's memory is released even when its client never says goodbye.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { isInitializeRequest, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export const MCP_PATH = '/mcp';
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
export const MIN_TOKEN_LENGTH = 32;
/** A session with no request, no call in flight and no open stream for this long is closed. */
export const DEFAULT_SESSION_IDLE_MS = 30 * 60 * 1000;
/**
 * Live sessions at most; a new one evicts the session idle the longest. A session holds about 120 KiB (its
 * McpServer with every tool registered), so the default bounds abandoned sessions to under 8 MiB.
 */
export const DEFAULT_MAX_SESSIONS = 64;
/** The largest session limit a setting or flag accepts: beyond it the cap no longer bounds memory usefully. */
export const MAX_SESSIONS_SETTING = 10_000;
/** Node's timers hold at most 2^31-1 ms; a longer idle time would fire at once. */
export const MAX_SESSION_IDLE_MS = 2_147_483_647;

const BIND_HOST = '127.0.0.1';
// RFC 6750 b64token: what a client can put after "Bearer " without quoting.
const TOKEN_PATTERN = /^[A-Za-z0-9\-._~+/]+=*$/;
// Matched by hand, not with new URL(): "evil.example@127.0.0.1" would parse as a loopback URL with userinfo.
const LOOPBACK_HOST_PATTERN = /^(?:127\.0\.0\.1|localhost|\[::1\])(?::\d{1,5})?$/i;
const ALLOWED_METHODS = 'GET, POST, DELETE';

export interface HttpServerOptions {
  /** Called once per MCP session, on its initialize request; shared state lives outside the server. */
  createServer: () => McpServer;
  /** Required bearer token, at least 32 characters of the RFC 6750 token alphabet (see generateToken). */
  token: string;
  /** 0 or absent: a random free port. */
  port?: number;
  /**
   * Exact Origin values accepted besides requests with no Origin at all. Default none: every browser
   * origin is refused, loopback ones included. No CORS headers are sent, so an allowed browser page can
   * reach the server but only read responses if it is not subject to CORS (e.g. a VS Code webview host).
   */
  allowedOrigins?: readonly string[];
  /** Limit on a POST body; 413 beyond. Default 4 MiB. */
  maxBodyBytes?: number;
  /** Idle time after which a session is closed (its client then gets 404 and starts a new one). Default 30 min. */
  sessionIdleMs?: number;
  /** Live sessions at most; a new one evicts the one idle the longest, or is refused (503) if none is idle. */
  maxSessions?: number;
  /** What times idle sessions; default real timers that do not keep the process alive. Tests pass their own. */
  idleClock?: IdleClock;
  /** Where diagnostic lines go (the caller sends them to stderr, never stdout). Never receives the token. */
  log?: (line: string) => void;
}

export interface IdleClock {
  /** Calls `expire` after `ms` unless the returned function is called first. */
  schedule(expire: () => void, ms: number): () => void;
}

const realIdleClock: IdleClock = {
  schedule(expire, ms) {
    const timer = setTimeout(expire, ms);
    // An idle session is no reason to keep the process alive.
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/** Why a session ended: its client ended it (DELETE), it sat idle, a new session evicted it, or shutdown. */
export type SessionEndReason = 'deleted' | 'expired' | 'evicted' | 'shutdown';

export interface SessionClosedEvent {
  sessionId: string;
  reason: SessionEndReason;
}

/** What the server holds right now; every figure returns to the number of live sessions once they settle. */
export interface HttpServerResources {
  sessions: number;
  /** McpServer instances still connected to a transport. */
  connectedServers: number;
  /** Idle-expiry timers armed: one per idle session, none for a busy one. */
  idleTimers: number;
}

export interface RunningHttpServer {
  /** http://127.0.0.1:PORT/mcp */
  url: string;
  port: number;
  /** The bound socket address, to show that only the loopback interface listens. */
  address(): AddressInfo;
  sessionCount(): number;
  resources(): HttpServerResources;
  /** Called after a session has ended and its server was closed; returns the unsubscribe function. */
  onSessionClosed(listener: (event: SessionClosedEvent) => void): () => void;
  /** Closes every session (open SSE streams included) and the listening socket. */
  close(): Promise<void>;
}

interface Session {
  id: string;
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  /** HTTP exchanges not yet finished: a POST awaiting its answer, a GET stream held open. */
  openExchanges: number;
  /** JSON-RPC requests the server has not answered yet (a client may drop the POST that carried one). */
  pendingRequests: Set<string | number>;
  /** Cancels the idle-expiry timer; set only while the session is idle. */
  cancelIdleTimer: (() => void) | undefined;
  /** Set when Tandem ends the session, so the close reports why. */
  endReason: SessionEndReason | undefined;
}

type AuthenticatedRequest = IncomingMessage & { auth?: AuthInfo };

/** 32 random bytes, base64url: 43 characters that fit a Bearer header as they are. */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const settings = validateOptions(options);
  const log = options.log ?? (() => undefined);
  const idleClock = options.idleClock ?? realIdleClock;
  const sessions = new Map<string, Session>();
  const closedListeners = new Set<(event: SessionClosedEvent) => void>();
  const expectedToken = Buffer.from(options.token, 'utf8');
  /** Initialize requests between the cap check and their session's registration. */
  let starting = 0;
  let connectedServers = 0;

  let closing: Promise<void> | undefined;

  const isIdle = (session: Session): boolean =>
    session.openExchanges === 0 && session.pendingRequests.size === 0;

  const notifyClosed = (event: SessionClosedEvent): void => {
    for (const listener of closedListeners) {
      try {
        listener(event);
      } catch {
        // An observer's failure must not keep other observers from hearing of the close.
      }
    }
  };

  /** Ends a session Tandem decided to end; its transport's onclose forgets it. */
  const endSession = async (session: Session, reason: SessionEndReason): Promise<void> => {
    if (session.endReason !== undefined) return;
    session.endReason = reason;
    // Gone from the map first: a request that arrives while the server closes already gets 404.
    forget(session);
    await session.server.close();
  };

  const disarmIdleTimer = (session: Session): void => {
    session.cancelIdleTimer?.();
    session.cancelIdleTimer = undefined;
  };

  const forget = (session: Session): boolean => {
    disarmIdleTimer(session);
    if (sessions.get(session.id) !== session) return false;
    sessions.delete(session.id);
    return true;
  };

  /** Re-inserted on every request's start and end, so the map iterates from the session idle the longest. */
  const touch = (session: Session): void => {
    if (sessions.get(session.id) === session) {
      sessions.delete(session.id);
      sessions.set(session.id, session);
    }
  };

  const armIdleTimer = (session: Session): void => {
    disarmIdleTimer(session);
    if (!isIdle(session) || session.endReason !== undefined || closing) return;
    session.cancelIdleTimer = idleClock.schedule(() => {
      session.cancelIdleTimer = undefined;
      if (!isIdle(session)) return;
      log(`mcp http: session ${session.id} expired after ${settings.sessionIdleMs} ms idle`);
      endSession(session, 'expired').catch((error: unknown) =>
        log(`mcp http: closing idle session ${session.id} failed: ${errorMessage(error)}`),
      );
    }, settings.sessionIdleMs);
  };

  const busy = (session: Session): void => {
    disarmIdleTimer(session);
    touch(session);
  };

  const settled = (session: Session): void => {
    touch(session);
    armIdleTimer(session);
  };

  /** Counts the exchange as open until its response ends or its connection drops. */
  const holdWhileOpen = (session: Session, res: ServerResponse): void => {
    session.openExchanges += 1;
    busy(session);
    res.once('close', () => {
      session.openExchanges -= 1;
      settled(session);
    });
  };

  /** Makes room for one more session; false when every live session is busy. */
  const makeRoom = async (): Promise<boolean> => {
    while (sessions.size + starting >= settings.maxSessions) {
      const oldestIdle = [...sessions.values()].find(isIdle);
      if (!oldestIdle) return false;
      log(`mcp http: session ${oldestIdle.id} evicted: ${settings.maxSessions} sessions are live`);
      await endSession(oldestIdle, 'evicted');
    }
    return true;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (closing) {
      sendJsonRpcError(res, 503, -32000, 'Service unavailable: the MCP server is shutting down.', null);
      return;
    }
    const refusal = checkRequest(req, expectedToken, settings.allowedOrigins);
    if (refusal) {
      log(`mcp http: ${refusal.status} ${req.method ?? '?'} ${pathOf(req)}: ${refusal.reason}`);
      sendJsonRpcError(res, refusal.status, -32000, refusal.message, null, refusal.headers);
      return;
    }
    (req as AuthenticatedRequest).auth = { token: options.token, clientId: 'tandem', scopes: [] };

    if (pathOf(req) !== MCP_PATH) {
      sendJsonRpcError(res, 404, -32000, `Not found: the MCP endpoint is ${MCP_PATH}.`, null);
      return;
    }
    switch (req.method) {
      case 'POST':
        await handlePost(req, res);
        return;
      case 'GET':
      case 'DELETE':
        await handleSessionRequest(req, res);
        return;
      default:
        sendJsonRpcError(res, 405, -32000, `Method not allowed: use ${ALLOWED_METHODS}.`, null, {
          Allow: ALLOWED_METHODS,
        });
    }
  };

  const handlePost = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // A session that is reading a request body is not idle.
    const sessionId = sessionIdOf(req);
    const early = sessionId === undefined ? undefined : sessions.get(sessionId);
    if (early) holdWhileOpen(early, res);
    const body = await readJsonBody(req, settings.maxBodyBytes);
    if (!body.ok) {
      if (body.status === 413) {
        // The rest of an oversized upload is drained, not read, and the connection is not reused.
        res.setHeader('Connection', 'close');
        req.resume();
      }
      sendJsonRpcError(res, body.status, body.code, body.message, null);
      return;
    }
    if (sessionId !== undefined) {
      const session = sessions.get(sessionId);
      if (!session) {
        sendSessionNotFound(res, idOf(body.value));
        return;
      }
      await session.transport.handleRequest(req, res, body.value);
      return;
    }
    if (!isInitializeRequest(body.value)) {
      sendJsonRpcError(
        res,
        400,
        -32000,
        'Bad Request: no Mcp-Session-Id header; only an initialize request may start a session.',
        idOf(body.value),
      );
      return;
    }
    if (!(await makeRoom())) {
      log(`mcp http: 503 initialize: all ${settings.maxSessions} sessions are busy`);
      sendJsonRpcError(
        res,
        503,
        -32000,
        `Service unavailable: all ${settings.maxSessions} MCP sessions have work in flight; retry when one ` +
          'finishes, end an unused session, or raise the session limit.',
        idOf(body.value),
        { 'Retry-After': '5' },
      );
      return;
    }
    if (closing) {
      sendJsonRpcError(res, 503, -32000, 'Service unavailable: the MCP server is shutting down.', null);
      return;
    }
    starting += 1;
    try {
      await startSession(req, res, body.value);
    } finally {
      starting -= 1;
    }
  };

  const startSession = async (req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> => {
    const server = options.createServer();
    let session: Session | undefined;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        session = {
          id,
          transport,
          server,
          openExchanges: 0,
          pendingRequests: new Set(),
          cancelIdleTimer: undefined,
          endReason: undefined,
        };
        sessions.set(id, session);
        holdWhileOpen(session, res);
        log(`mcp http: session ${id} opened (${sessions.size} open)`);
      },
    });
    let connected = false;
    // Set before connect(): the server chains its own onclose after ours.
    transport.onclose = () => {
      if (connected) connectedServers -= 1;
      connected = false;
      if (!session) return;
      const ended = session;
      forget(ended);
      // Without a reason of Tandem's own, the client ended it (DELETE).
      const reason = (ended.endReason ??= 'deleted');
      log(`mcp http: session ${ended.id} closed, ${reason} (${sessions.size} open)`);
      // After the server's own onclose, chained after this one, has aborted its handlers.
      queueMicrotask(() => notifyClosed({ sessionId: ended.id, reason }));
    };
    await server.connect(transport);
    connected = true;
    connectedServers += 1;
    trackPendingRequests(transport, () => session);
    await transport.handleRequest(req, res, body);
    // A refused initialize (bad headers, bad version) leaves no session to keep this server alive; one that
    // finished while close() ran was not in the snapshot close() took.
    if (session && closing) await endSession(session, 'shutdown');
    else if (transport.sessionId === undefined) await server.close();
  };

  /**
   * A call stays in flight after the client drops the POST that carried it: it is counted from the request's
   * arrival to the server's answer, so a session is never closed under a running tool (that would cancel it).
   */
  const trackPendingRequests = (
    transport: StreamableHTTPServerTransport,
    sessionOf: () => Session | undefined,
  ): void => {
    const deliver = transport.onmessage;
    transport.onmessage = (message: JSONRPCMessage, extra) => {
      const session = sessionOf();
      if (session && 'method' in message && 'id' in message) {
        session.pendingRequests.add(message.id);
        busy(session);
      }
      deliver?.(message, extra);
    };
    const send = transport.send.bind(transport);
    transport.send = async (message, sendOptions) => {
      const session = sessionOf();
      const answered = !('method' in message) && 'id' in message ? message.id : undefined;
      try {
        return await send(message, sendOptions);
      } finally {
        if (session && answered !== undefined && session.pendingRequests.delete(answered)) {
          settled(session);
        }
      }
    };
  };

  const handleSessionRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const sessionId = sessionIdOf(req);
    if (sessionId === undefined) {
      sendJsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required.', null);
      return;
    }
    const session = sessions.get(sessionId);
    if (!session) {
      sendSessionNotFound(res, null);
      return;
    }
    holdWhileOpen(session, res);
    // DELETE ends the session inside the transport, whose onclose removes it from the map.
    await session.transport.handleRequest(req, res);
  };

  const httpServer = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log(`mcp http: ${req.method ?? '?'} ${pathOf(req)} failed: ${errorMessage(error)}`);
      if (!res.headersSent) {
        sendJsonRpcError(res, 500, -32603, 'Internal server error.', null);
      } else {
        res.destroy();
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(new Error(`Cannot listen on ${BIND_HOST}:${settings.port}: ${error.code ?? error.message}`));
    };
    httpServer.once('error', onError);
    httpServer.listen(settings.port, BIND_HOST, () => {
      httpServer.off('error', onError);
      resolve();
    });
  });
  httpServer.on('error', (error) => log(`mcp http: server error: ${errorMessage(error)}`));

  const bound = httpServer.address() as AddressInfo;
  const url = `http://${BIND_HOST}:${bound.port}${MCP_PATH}`;
  log(`mcp http: listening on ${url}`);

  const close = (): Promise<void> => {
    closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      const open = [...sessions.values()];
      // Closing the server closes its transport, which ends that session's SSE streams.
      await Promise.allSettled(open.map((session) => endSession(session, 'shutdown')));
      // Idle keep-alive sockets and any stream a client still holds would keep close() waiting forever.
      httpServer.closeAllConnections();
      await stopped;
      log('mcp http: closed');
    })();
    return closing;
  };

  return {
    url,
    port: bound.port,
    address: () => ({ ...bound }),
    sessionCount: () => sessions.size,
    resources: () => ({
      sessions: sessions.size,
      connectedServers,
      idleTimers: [...sessions.values()].filter((session) => session.cancelIdleTimer !== undefined).length,
    }),
    onSessionClosed: (listener) => {
      closedListeners.add(listener);
      return () => closedListeners.delete(listener);
    },
    close,
  };
}

interface Settings {
  port: number;
  allowedOrigins: ReadonlySet<string>;
  maxBodyBytes: number;
  sessionIdleMs: number;
  maxSessions: number;
}

function validateOptions(options: HttpServerOptions): Settings {
  const { token } = options;
  if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH) {
    throw new Error(
      `The MCP HTTP bearer token must be at least ${MIN_TOKEN_LENGTH} characters; use generateToken().`,
    );
  }
  if (!TOKEN_PATTERN.test(token)) {
    throw new Error(
      'The MCP HTTP bearer token may only hold letters, digits and - . _ ~ + / (then = padding); ' +
        'use generateToken().',
    );
  }
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`The MCP HTTP port must be an integer from 0 to 65535, not ${String(port)}.`);
  }
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes <= 0) {
    throw new Error(`maxBodyBytes must be a positive integer, not ${String(maxBodyBytes)}.`);
  }
  for (const origin of options.allowedOrigins ?? []) {
    // A wildcard or "null" (sandboxed frames, file://) would let any page in; only exact origins are meant.
    if (origin === '*' || origin === 'null' || origin.trim() !== origin || origin === '') {
      throw new Error(`Allowed origin ${JSON.stringify(origin)} is not an exact origin.`);
    }
  }
  const sessionIdleMs = options.sessionIdleMs ?? DEFAULT_SESSION_IDLE_MS;
  if (!Number.isInteger(sessionIdleMs) || sessionIdleMs <= 0 || sessionIdleMs > MAX_SESSION_IDLE_MS) {
    throw new Error(
      `sessionIdleMs must be a whole number of milliseconds from 1 to ${MAX_SESSION_IDLE_MS}, not ${String(sessionIdleMs)}.`,
    );
  }
  const maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
  if (!Number.isInteger(maxSessions) || maxSessions <= 0) {
    throw new Error(`maxSessions must be a positive whole number, not ${String(maxSessions)}.`);
  }
  return {
    port,
    allowedOrigins: new Set(options.allowedOrigins ?? []),
    maxBodyBytes,
    sessionIdleMs,
    maxSessions,
  };
}

interface Refusal {
  status: 401 | 403;
  reason: string;
  message: string;
  headers?: Record<string, string>;
}

/** Host, then Origin, then the token: the order in which a DNS-rebinding page would be stopped first. */
function checkRequest(
  req: IncomingMessage,
  expectedToken: Buffer,
  allowedOrigins: ReadonlySet<string>,
): Refusal | undefined {
  const host = req.headers.host;
  if (host === undefined || !LOOPBACK_HOST_PATTERN.test(host)) {
    return {
      status: 403,
      reason: `Host ${JSON.stringify(host ?? '')} is not loopback`,
      message: 'Forbidden: the Host header must name 127.0.0.1, localhost or [::1].',
    };
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !allowedOrigins.has(origin)) {
    return {
      status: 403,
      reason: `Origin ${JSON.stringify(origin)} is not allowed`,
      message: 'Forbidden: requests from this Origin are not allowed.',
    };
  }
  const presented = bearerTokenOf(req.headers.authorization);
  if (presented === undefined) {
    return {
      status: 401,
      reason: 'no bearer token',
      message: 'Unauthorized: send Authorization: Bearer <token>.',
      headers: { 'WWW-Authenticate': 'Bearer realm="tandem"' },
    };
  }
  if (!tokensEqual(Buffer.from(presented, 'utf8'), expectedToken)) {
    return {
      status: 401,
      reason: 'wrong bearer token',
      message: 'Unauthorized: the bearer token is not valid.',
      headers: { 'WWW-Authenticate': 'Bearer realm="tandem", error="invalid_token"' },
    };
  }
  return undefined;
}

function bearerTokenOf(header: string | undefined): string | undefined {
  // The auth scheme is case-insensitive (RFC 7235); the token itself is compared exactly.
  const match = (header ?? '').match(/^Bearer +(\S+) *$/i);
  return match?.[1];
}

/** Constant time in the token's content; hashing first keeps a length mismatch from short-circuiting. */
function tokensEqual(presented: Buffer, expected: Buffer): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && presented.length === expected.length;
}

type BodyResult =
  { ok: true; value: unknown } | { ok: false; status: 400 | 413; code: number; message: string };

async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<BodyResult> {
  const tooLarge: BodyResult = {
    ok: false,
    status: 413,
    code: -32000,
    message: `Payload too large: the request body is limited to ${maxBytes} bytes.`,
  };
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return tooLarge;

  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) return tooLarge;
    chunks.push(chunk);
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown };
  } catch {
    return {
      ok: false,
      status: 400,
      code: -32700,
      message: 'Parse error: the request body is not valid JSON.',
    };
  }
}

function sessionIdOf(req: IncomingMessage): string | undefined {
  const value = req.headers['mcp-session-id'];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function idOf(message: unknown): string | number | null {
  if (typeof message === 'object' && message !== null && 'id' in message) {
    const { id } = message as { id: unknown };
    if (typeof id === 'string' || typeof id === 'number') return id;
  }
  return null;
}

function pathOf(req: IncomingMessage): string {
  const target = req.url ?? '';
  const end = target.search(/[?#]/);
  return end === -1 ? target : target.slice(0, end);
}

function sendSessionNotFound(res: ServerResponse, id: string | number | null): void {
  // 404 is what the spec tells a client to answer by starting a new session; -32001 matches the SDK.
  sendJsonRpcError(
    res,
    404,
    -32001,
    'Session not found: start a new session with an initialize request.',
    id,
  );
}

function sendJsonRpcError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  id: string | number | null,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id });
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
