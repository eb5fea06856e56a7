// Loopback Streamable HTTP transport for the MCP server: one McpServer per session from a factory, behind
// Host, Origin and bearer-token checks so that neither a browser page nor another local user can drive it.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

export const MCP_PATH = '/mcp';
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
export const MIN_TOKEN_LENGTH = 32;

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
  /** Where diagnostic lines go (the caller sends them to stderr, never stdout). Never receives the token. */
  log?: (line: string) => void;
}

export interface RunningHttpServer {
  /** http://127.0.0.1:PORT/mcp */
  url: string;
  port: number;
  /** The bound socket address, to show that only the loopback interface listens. */
  address(): AddressInfo;
  sessionCount(): number;
  /** Closes every session (open SSE streams included) and the listening socket. */
  close(): Promise<void>;
}

interface Session {
  transport: StreamableHTTPServerTransport;
  server: McpServer;
}

type AuthenticatedRequest = IncomingMessage & { auth?: AuthInfo };

/** 32 random bytes, base64url: 43 characters that fit a Bearer header as they are. */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const settings = validateOptions(options);
  const log = options.log ?? (() => undefined);
  const sessions = new Map<string, Session>();
  const expectedToken = Buffer.from(options.token, 'utf8');

  let closing: Promise<void> | undefined;

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
    const sessionId = sessionIdOf(req);
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
    await startSession(req, res, body.value);
  };

  const startSession = async (req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> => {
    const server = options.createServer();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server });
        log(`mcp http: session ${id} opened (${sessions.size} open)`);
      },
    });
    // Set before connect(): the server chains its own onclose after ours.
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id !== undefined && sessions.delete(id)) {
        log(`mcp http: session ${id} closed (${sessions.size} open)`);
      }
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
    // A refused initialize (bad headers, bad version) leaves no session to keep this server alive; one that
    // finished while close() ran was not in the snapshot close() took.
    if (transport.sessionId === undefined || closing) {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
      await server.close();
    }
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
      sessions.clear();
      // Closing the server closes its transport, which ends that session's SSE streams.
      await Promise.allSettled(open.map((session) => session.server.close()));
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
    close,
  };
}

interface Settings {
  port: number;
  allowedOrigins: ReadonlySet<string>;
  maxBodyBytes: number;
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
  return { port, allowedOrigins: new Set(options.allowedOrigins ?? []), maxBodyBytes };
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
