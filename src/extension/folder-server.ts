// One workspace folder's MCP server as the editor reaches it: the shared services on the folder, the tool
// registry, and the loopback Streamable HTTP endpoint behind a fresh bearer token. Plain Node (no vscode), so
// the host tests and the unit tests can start one.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { CallToolResult, JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { defaultProcessRegistry } from '../core/exec';
import { generateToken, startHttpServer } from '../mcp/http-transport';
import { createServerFactory, createToolRegistry } from '../mcp/server';
import { openServices, type TandemServices } from '../mcp/services';
import type { ModelEndpoint } from '../workers/cli-adapter';
import type { TandemSettings } from './settings';

export interface FolderServerOptions {
  workspaceRoot: string;
  /** An untrusted folder keeps its history readable but starts no worker. */
  trusted: boolean;
  settings: TandemSettings;
  /** Absent: the vendors' APIs. */
  endpoint?: ModelEndpoint;
  log: (line: string) => void;
  /** Every JSON-RPC request a client sends (method only), for timings and diagnostics. */
  onRequest?: (method: string) => void;
}

export interface FolderServer {
  readonly workspaceRoot: string;
  /** http://127.0.0.1:PORT/mcp */
  readonly url: string;
  /** The bearer token the editor must send; never logged. */
  readonly token: string;
  readonly trusted: boolean;
  /** The folder's shared services (run store, panic switch, orchestrator): for the editor's own commands. */
  readonly services: TandemServices;
  sessionCount(): number;
  /**
   * Calls a tool as the editor user ("human"), through the same input checks, trust check and panic switch an
   * agent's call goes through: the editor's commands act by this path, so every action has one implementation.
   */
  callAsHuman(tool: string, input: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult>;
  /** Stops accepting sessions, then cancels every run and kills its worker process trees. */
  close(): Promise<void>;
}

let exitHookInstalled = false;

/**
 * Workers run in their own process groups, so an extension host that dies without deactivate (a crash, a
 * killed window) would leave them running: kill every tracked tree when this process exits.
 */
function killWorkersOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => defaultProcessRegistry.killAllNow());
}

export async function startFolderServer(options: FolderServerOptions): Promise<FolderServer> {
  const { log } = options;
  killWorkersOnExit();
  const services = await openServices({
    workspaceRoot: options.workspaceRoot,
    trusted: options.trusted,
    cliPaths: options.settings.cliPaths,
    concurrency: options.settings.concurrency,
    models: options.settings.models,
    limits: options.settings.limits,
    extraEnvNames: options.settings.extraEnvNames,
    sandbox: options.settings.sandbox,
    ...(options.settings.bwrapPath === undefined ? {} : { bwrapPath: options.settings.bwrapPath }),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    log,
  });
  // "auto" without a working sandbox: said once here, and in every run's summary.
  void services.sandbox.warning().then((warning) => warning !== null && log(`tandem: ${warning}`));
  try {
    const registry = createToolRegistry(services, (call) =>
      log(`tool ${call.tool} by ${call.agentId}: ${call.ok ? 'ok' : (call.code ?? 'error')}`),
    );
    const createServer = createServerFactory(registry);
    const token = generateToken();
    const onRequest = options.onRequest;
    const http = await startHttpServer({
      createServer: onRequest ? () => observeRequests(createServer(), onRequest) : createServer,
      token,
      ...(options.settings.mcpSessions.idleMs === undefined
        ? {}
        : { sessionIdleMs: options.settings.mcpSessions.idleMs }),
      ...(options.settings.mcpSessions.maxSessions === undefined
        ? {}
        : { maxSessions: options.settings.mcpSessions.maxSessions }),
      log,
    });
    let closing: Promise<void> | undefined;
    return {
      workspaceRoot: services.workspaceRoot,
      url: http.url,
      token,
      trusted: services.trusted,
      services,
      sessionCount: () => http.sessionCount(),
      callAsHuman: (tool, input, signal) =>
        registry.callTool(tool, input, { asHuman: true, ...(signal ? { signal } : {}) }),
      close: () => {
        closing ??= (async () => {
          try {
            await http.close();
          } finally {
            await services.close();
          }
        })();
        return closing;
      },
    };
  } catch (error) {
    await services.close();
    throw error;
  }
}

/**
 * Reports each request method a session receives. The SDK offers no hook for this, so the transport's
 * message handler that connect() installs is wrapped; the message itself goes on untouched.
 */
function observeRequests(server: McpServer, onRequest: (method: string) => void): McpServer {
  const connect = server.connect.bind(server);
  server.connect = async (transport: Transport): Promise<void> => {
    await connect(transport);
    const deliver = transport.onmessage;
    transport.onmessage = <T extends JSONRPCMessage>(
      message: T,
      extra?: Parameters<NonNullable<Transport['onmessage']>>[1],
    ) => {
      if ('method' in message && 'id' in message) {
        try {
          onRequest(message.method);
        } catch {
          // An observer's failure must never drop a client's request.
        }
      }
      deliver?.(message, extra);
    };
  };
  return server;
}
