// `tandem-mcp serve`: the MCP server on one workspace, over stdio (default) or loopback HTTP. stdout is the
// MCP channel in stdio mode, so everything this command says goes to stderr.
import { unlinkSync } from 'node:fs';
import { SANDBOX_MODES } from '../core/sandbox';
import path from 'node:path';
import { defaultProcessRegistry } from '../core/exec';
import {
  MAX_SESSIONS_SETTING,
  MAX_SESSION_IDLE_MS,
  MIN_TOKEN_LENGTH,
  generateToken,
  startHttpServer,
  type RunningHttpServer,
} from '../mcp/http-transport';
import { createServerFactory, createToolRegistry } from '../mcp/server';
import { serveStdio, type StdioSession } from '../mcp/stdio-transport';
import { readStateFileSync, writeStateFile } from '../core/state-file';
import { STATE_DIR_NAME } from '../orchestrator/run-store';
import { EXIT, UsageError, parseArgs } from './args';
import { StopSignals, openCliServices, type CliServices } from './cli-services';

export const TOKEN_ENV = 'TANDEM_MCP_TOKEN';
export const HTTP_INFO_FILE = 'http.json';
/** A shutdown that takes longer than this (a process tree that will not die) is cut short. */
const SHUTDOWN_LIMIT_MS = 15_000;

/** What other local clients read to find a `serve --http` on a workspace: <workspace>/.tandem/http.json. */
export interface HttpInfo {
  url: string;
  token: string;
  pid: number;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function tokenFromEnv(): string | undefined {
  const token = process.env[TOKEN_ENV];
  if (token === undefined || token === '') return undefined;
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new UsageError(`serve: ${TOKEN_ENV} must be at least ${MIN_TOKEN_LENGTH} characters`);
  }
  return token;
}

/** Removes http.json only while it still names this process: a newer server may have replaced it. */
function removeHttpInfo(root: string, file: string): void {
  try {
    const info = JSON.parse(readStateFileSync(root, file, 64 * 1024) ?? '{}') as Partial<HttpInfo>;
    if (info.pid === process.pid) unlinkSync(file);
  } catch {
    // already gone, or not ours to judge
  }
}

export async function serveCommand(args: readonly string[]): Promise<number> {
  const parsed = parseArgs('serve', args, {
    flags: {
      workspace: 'value',
      http: 'optional',
      offline: 'boolean',
      'codex-path': 'value',
      'gemini-path': 'value',
      concurrency: 'value',
      'step-timeout': 'value',
      'idle-timeout': 'value',
      'session-idle-timeout': 'value',
      'max-sessions': 'value',
      sandbox: 'value',
      'bwrap-path': 'value',
    },
  });
  if (!parsed.has('workspace')) throw new UsageError('serve: --workspace is required');
  const workspaceRoot = parsed.directory('workspace');
  const http = parsed.has('http');
  const port = parsed.string('http') === undefined ? 0 : parsed.int('http', 0, 65535);
  const concurrency = parsed.int('concurrency', 1, 16);
  const stepTimeout = parsed.int('step-timeout', 1, 6 * 60 * 60);
  const idleTimeout = parsed.int('idle-timeout', 1, 60 * 60);
  const sessionIdleTimeout = parsed.int('session-idle-timeout', 1, Math.floor(MAX_SESSION_IDLE_MS / 1000));
  const maxSessions = parsed.int('max-sessions', 1, MAX_SESSIONS_SETTING);
  if (!http && (sessionIdleTimeout !== undefined || maxSessions !== undefined)) {
    throw new UsageError('serve: --session-idle-timeout and --max-sessions apply to --http only');
  }
  const token = http ? (tokenFromEnv() ?? generateToken()) : undefined;
  const codexPath = parsed.string('codex-path');
  const geminiPath = parsed.string('gemini-path');
  const sandbox = parsed.choice('sandbox', SANDBOX_MODES);
  const bwrapPath = parsed.string('bwrap-path');

  // Until the services are open there is nothing to close: a signal then is remembered and acted on after.
  let startupSignal: NodeJS.Signals | undefined;
  const duringStartup = (signal: NodeJS.Signals): void => {
    startupSignal ??= signal;
  };
  process.on('SIGINT', duringStartup);
  process.on('SIGTERM', duringStartup);
  let session: CliServices;
  try {
    session = await openCliServices({
      workspaceRoot,
      offline: parsed.has('offline'),
      log,
      cliPaths: {
        ...(codexPath === undefined ? {} : { codex: path.resolve(codexPath) }),
        ...(geminiPath === undefined ? {} : { gemini: path.resolve(geminiPath) }),
      },
      ...(concurrency === undefined ? {} : { concurrency }),
      ...(sandbox === undefined ? {} : { sandbox }),
      ...(bwrapPath === undefined ? {} : { bwrapPath: path.resolve(bwrapPath) }),
      limits: {
        ...(stepTimeout === undefined ? {} : { timeoutMs: stepTimeout * 1000 }),
        ...(idleTimeout === undefined ? {} : { idleTimeoutMs: idleTimeout * 1000 }),
      },
    });
  } finally {
    process.off('SIGINT', duringStartup);
    process.off('SIGTERM', duringStartup);
  }
  const { services } = session;

  let stdio: StdioSession | undefined;
  let httpServer: RunningHttpServer | undefined;
  let httpInfoFile: string | undefined;
  let stopping: Promise<void> | undefined;
  let resolveStopped: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));

  const stop = (why: string, code: number = EXIT.ok): Promise<void> => {
    stopping ??= (async () => {
      log(`tandem-mcp: shutting down (${why})`);
      const watchdog = setTimeout(() => {
        log('tandem-mcp: shutdown is taking too long; killing every worker now');
        defaultProcessRegistry.killAllNow();
        process.exit(EXIT.failed);
      }, SHUTDOWN_LIMIT_MS);
      watchdog.unref();
      // Clients stop finding this server first, then no new call starts, then the runs end.
      if (httpInfoFile) removeHttpInfo(services.workspaceRoot, httpInfoFile);
      await Promise.allSettled([stdio?.close(), httpServer?.close()]);
      await session.close();
      clearTimeout(watchdog);
      resolveStopped(code);
    })();
    return stopping;
  };
  // A second signal means "now": the exit hook still kills every worker tree on the way out.
  const signals = new StopSignals();
  const onSignal = (signal: NodeJS.Signals): void => {
    const seen = signals.note();
    if (seen === 'again') process.exit(signal === 'SIGINT' ? EXIT.interrupted : EXIT.terminated);
    if (seen === 'first') void stop(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => {
    if (httpInfoFile) removeHttpInfo(services.workspaceRoot, httpInfoFile);
  });
  if (startupSignal) {
    await stop(`${startupSignal} during start-up`);
    return stopped;
  }

  const registry = createToolRegistry(services, (call) => {
    log(`tandem-mcp: ${call.agentId} called ${call.tool}: ${call.ok ? 'ok' : (call.code ?? 'error')}`);
  });
  const createServer = createServerFactory(registry);
  const where = `${services.workspaceRoot}${session.offline ? ' (offline model)' : ''}`;

  if (token !== undefined) {
    try {
      httpServer = await startHttpServer({
        createServer,
        token,
        ...(port === undefined ? {} : { port }),
        ...(sessionIdleTimeout === undefined ? {} : { sessionIdleMs: sessionIdleTimeout * 1000 }),
        ...(maxSessions === undefined ? {} : { maxSessions }),
        log,
      });
    } catch (error) {
      log(`tandem-mcp: ${(error as Error).message}`);
      await stop('the HTTP server could not start', EXIT.failed);
      return stopped;
    }
    httpInfoFile = path.join(services.workspaceRoot, STATE_DIR_NAME, HTTP_INFO_FILE);
    const info: HttpInfo = { url: httpServer.url, token, pid: process.pid };
    await writeStateFile(services.workspaceRoot, httpInfoFile, `${JSON.stringify(info, null, 2)}\n`);
    log(`tandem-mcp: serving MCP at ${httpServer.url} for ${where}; bearer token in ${httpInfoFile}`);
  } else {
    stdio = await serveStdio(createServer, { onClose: () => void stop('the client closed stdin') });
    log(`tandem-mcp: serving MCP on stdio for ${where}`);
  }
  return stopped;
}
