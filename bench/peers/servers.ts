// The servers the peers bench compares, behind one interface: start a fresh server (over stdio, or Tandem
// also over loopback HTTP) with the fake CLIs first on PATH, ask it to run one prompt through its CLI the
// way a client would, close it. Plus the floor: a bare spawn of the same fake CLI, no server at all.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { isAlive, sleep } from './processes';

export type CliKind = 'codex' | 'gemini';
export type SubjectId =
  | 'floor-codex'
  | 'tandem-codex'
  | 'tandem-http-codex'
  | 'codex-mcp-server'
  | 'floor-gemini'
  | 'tandem-gemini'
  | 'tandem-http-gemini'
  | 'gemini-mcp-tool';
/** Which of the compared programs a subject is; Tandem's two transports are two families. */
export type SubjectFamily = 'floor' | 'tandem-stdio' | 'tandem-http' | 'peer';

/** What came back from one prompt. */
export interface AskResult {
  /** The server reported success (Tandem: the run finished and succeeded). */
  ok: boolean;
  /** Tandem only: the run had finished when the call returned. */
  finished: boolean;
  /** Tandem only: the run the call started, and its status when the call returned. */
  runId: string | undefined;
  status?: string;
  /** Size of the whole tool result as JSON, i.e. what reached the client. */
  bytes: number;
  /** The call threw (timeout, closed connection) instead of returning a result. */
  error: string | undefined;
}

export interface Session {
  /** pid of the server process (undefined for the floor). */
  readonly pid: number | undefined;
  ask(prompt: string, timeoutMs: number): Promise<AskResult>;
  /** Makes `count` calls possible at once (Tandem: one worker per concurrent call). */
  prepare(count: number): Promise<void>;
  /** Tandem only: run_cancel. */
  cancel(runId: string): Promise<void>;
  /** The last few KiB the server wrote to stderr. */
  stderrTail(): string;
  close(): Promise<void>;
}

export interface Subject {
  id: SubjectId;
  label: string;
  family: SubjectFamily;
  kind: CliKind;
  /** The floor only: how it runs the fake CLI (the flood measure runs it in a separate process). */
  floor?: FloorInvocation;
  /** Where this subject's copy of the fake CLIs (and their calls.log) lives. */
  binDir: string;
  /** The server's working directory / Tandem's workspace. */
  workspace: string;
  start(): Promise<Session>;
}

export interface SubjectPaths {
  repoRoot: string;
  peersDir: string;
  binDir: string;
  workspace: string;
  /** The environment every server gets (fake CLIs first on PATH, planted secrets). */
  env: Record<string, string>;
}

const AGENT = 'peers-bench';
const STDERR_TAIL = 8 * 1024;
export const CLIENT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

function resultBytes(result: unknown): number {
  return Buffer.byteLength(JSON.stringify(result) ?? '');
}

function failure(error: unknown): AskResult {
  return {
    ok: false,
    finished: false,
    runId: undefined,
    bytes: 0,
    error: error instanceof Error ? error.message : String(error),
  };
}

/** An MCP client on a server started over stdio; the server's stderr is drained into a bounded tail. */
async function connectStdio(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<{ client: Client; transport: StdioClientTransport; tail: () => string }> {
  // The SDK client drops a connection (and kills the server) on any message over 10 MiB by default; the
  // limit is raised so a big answer is measured as the server's doing, not the client's.
  const transport = new StdioClientTransport({
    command,
    args,
    cwd,
    env,
    stderr: 'pipe',
    maxBufferSize: CLIENT_MAX_MESSAGE_BYTES,
  });
  let tail = '';
  // A server whose stderr pipe fills blocks on its next log line, so it is read all along.
  transport.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-STDERR_TAIL);
  });
  const client = new Client({ name: 'tandem-peers-bench', version: '1' });
  await client.connect(transport);
  return { client, transport, tail: () => tail };
}

/** What `serve --http` writes to <workspace>/.tandem/http.json. */
interface HttpInfo {
  url: string;
  token: string;
  pid: number;
}

/** A server the bench started itself (HTTP mode): its pid, its stderr tail, and a stop that waits for exit. */
interface OwnedServer {
  pid: number | undefined;
  tail: () => string;
  stop(): Promise<void>;
}

function exited(child: ChildProcess, limitMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), limitMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * `tandem-mcp serve --http 0` on the workspace, and an MCP client on the URL and bearer token it writes to
 * <workspace>/.tandem/http.json. Stopping is what an operator does: SIGTERM, which cancels the runs and
 * kills every worker tree (SIGKILL after 20 s, past the server's own 15 s shutdown limit).
 */
async function connectHttp(
  args: string[],
  workspace: string,
  env: Record<string, string>,
): Promise<{ client: Client; server: OwnedServer }> {
  const child = spawn(process.execPath, [...args, '--http', '0'], {
    cwd: workspace,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-STDERR_TAIL);
  });
  const server: OwnedServer = {
    pid: child.pid,
    tail: () => tail,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      if (!(await exited(child, 20_000))) {
        child.kill('SIGKILL');
        await exited(child, 5_000);
      }
    },
  };
  const infoFile = path.join(workspace, '.tandem', 'http.json');
  const started = performance.now();
  let info: HttpInfo | undefined;
  while (info === undefined) {
    if (child.exitCode !== null || performance.now() - started > 30_000) {
      await server.stop();
      throw new Error(`tandem-mcp serve --http did not start: ${tail.slice(-500)}`);
    }
    await sleep(50);
    try {
      const written = JSON.parse(readFileSync(infoFile, 'utf8')) as HttpInfo;
      // A file left by an earlier server names another pid.
      if (written.pid === child.pid) info = written;
    } catch {
      // not written yet
    }
  }
  const client = new Client({ name: 'tandem-peers-bench', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(info.url), {
      requestInit: { headers: { Authorization: `Bearer ${info.token}` } },
    }),
  );
  return { client, server };
}

/** Closes the client (stdin end, SIGTERM, SIGKILL by the SDK) and makes sure the server pid is gone. */
async function closeServer(client: Client, pid: number | undefined): Promise<void> {
  await Promise.race([client.close().catch(() => undefined), sleep(10_000)]);
  if (pid !== undefined && isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

function tandemSubject(kind: CliKind, transport: 'stdio' | 'http', paths: SubjectPaths): Subject {
  const http = transport === 'http';
  return {
    id: http ? (`tandem-http-${kind}` as const) : (`tandem-${kind}` as const),
    label: `Tandem ${http ? 'HTTP' : 'stdio'} → ${kind}`,
    family: http ? 'tandem-http' : 'tandem-stdio',
    kind,
    binDir: paths.binDir,
    workspace: paths.workspace,
    async start() {
      const cli = path.join(paths.repoRoot, 'out', 'src', 'cli', 'main.js');
      const args = [
        cli,
        'serve',
        '--workspace',
        paths.workspace,
        '--codex-path',
        path.join(paths.binDir, 'codex'),
        '--gemini-path',
        path.join(paths.binDir, 'gemini'),
        // The peers run their CLIs without an OS sandbox, and the fake CLI logs each call next to itself
        // (a folder bubblewrap would show read-only): compared on equal terms, Tandem runs without one too.
        // The sandbox's own cost is the bench's `sandbox` section.
        '--sandbox',
        'off',
      ];
      let client: Client;
      let pid: number | undefined;
      let tail: () => string;
      let close: () => Promise<void>;
      if (http) {
        const connected = await connectHttp(args, paths.workspace, paths.env);
        client = connected.client;
        pid = connected.server.pid;
        tail = connected.server.tail;
        close = async () => {
          await Promise.race([connected.client.close().catch(() => undefined), sleep(10_000)]);
          await connected.server.stop();
        };
      } else {
        const connected = await connectStdio(process.execPath, args, paths.workspace, paths.env);
        client = connected.client;
        pid = connected.transport.pid ?? undefined;
        tail = connected.tail;
        close = () => closeServer(connected.client, pid);
      }
      const idle: string[] = [];
      const spawnWorker = async (): Promise<string> => {
        const result = await client.callTool(
          { name: 'worker_spawn', arguments: { agentId: AGENT, kind } },
          undefined,
          { timeout: 60_000 },
        );
        const worker = (result.structuredContent as { worker?: { id: string } } | undefined)?.worker;
        if (result.isError || !worker) {
          throw new Error(`worker_spawn failed: ${JSON.stringify(result.content).slice(0, 500)}`);
        }
        return worker.id;
      };
      return {
        pid,
        async prepare(count) {
          const missing = Math.max(0, count - idle.length);
          idle.push(...(await Promise.all(Array.from({ length: missing }, spawnWorker))));
        },
        async ask(prompt, timeoutMs) {
          let workerId: string;
          try {
            workerId = idle.pop() ?? (await spawnWorker());
          } catch (error) {
            return failure(error);
          }
          try {
            const waitSeconds = Math.min(50, Math.floor(timeoutMs / 1000));
            const result = await client.callTool(
              {
                name: 'task_dispatch',
                arguments: { agentId: AGENT, workerId, prompt, role: 'reviewer', waitSeconds },
              },
              undefined,
              { timeout: timeoutMs + 10_000 },
            );
            const started = result.structuredContent as
              { finished?: boolean; run?: { id: string; status: string } } | undefined;
            const finished = started?.finished === true;
            // A worker whose run still goes on is busy: it is not handed to the next call.
            if (finished) idle.push(workerId);
            return {
              ok: !result.isError && finished && started?.run?.status === 'succeeded',
              finished,
              runId: started?.run?.id,
              status: started?.run?.status,
              bytes: resultBytes(result),
              error: undefined,
            };
          } catch (error) {
            return failure(error);
          }
        },
        async cancel(runId) {
          await client.callTool({ name: 'run_cancel', arguments: { agentId: AGENT, runId } }, undefined, {
            timeout: 60_000,
          });
        },
        stderrTail: tail,
        close,
      };
    },
  };
}

function peerSubject(
  id: 'codex-mcp-server' | 'gemini-mcp-tool',
  paths: SubjectPaths,
  extraEnv: Record<string, string>,
): Subject {
  const packageDir = path.join(paths.peersDir, 'node_modules', id);
  const manifest = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as {
    version: string;
    bin: Record<string, string>;
  };
  const binScript = path.join(packageDir, Object.values(manifest.bin)[0] ?? 'dist/index.js');
  const tool = id === 'codex-mcp-server' ? 'codex' : 'ask-gemini';
  return {
    id,
    label: `${id} ${manifest.version}`,
    family: 'peer',
    kind: id === 'codex-mcp-server' ? 'codex' : 'gemini',
    binDir: paths.binDir,
    workspace: paths.workspace,
    async start() {
      // The bin script run by node directly: no npx, no shell in between.
      const { client, transport, tail } = await connectStdio(process.execPath, [binScript], paths.workspace, {
        ...paths.env,
        ...extraEnv,
      });
      const pid = transport.pid ?? undefined;
      return {
        pid,
        async prepare() {},
        async ask(prompt, timeoutMs) {
          try {
            const result = await client.callTool({ name: tool, arguments: { prompt } }, undefined, {
              timeout: timeoutMs,
            });
            return {
              ok: !result.isError,
              finished: true,
              runId: undefined,
              bytes: resultBytes(result),
              error: undefined,
            };
          } catch (error) {
            return failure(error);
          }
        },
        async cancel() {},
        stderrTail: tail,
        close: () => closeServer(client, pid),
      };
    },
  };
}

/** How the floor runs the fake CLI: Tandem's argv for it, the prompt on stdin, PATH and HOME only. */
export interface FloorInvocation {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

function floorInvocation(kind: CliKind, paths: SubjectPaths): FloorInvocation {
  return {
    command: path.join(paths.binDir, kind),
    args:
      kind === 'codex'
        ? ['exec', '--json', '--skip-git-repo-check', '--', '-']
        : ['--output-format', 'stream-json'],
    cwd: paths.workspace,
    env: { PATH: paths.env.PATH ?? '', HOME: paths.workspace },
  };
}

/** The floor: the fake CLI spawned bare, argv as Tandem builds it, prompt on stdin, output drained. */
function floorSubject(kind: CliKind, paths: SubjectPaths): Subject {
  const floor = floorInvocation(kind, paths);
  return {
    id: kind === 'codex' ? 'floor-codex' : 'floor-gemini',
    label: `bare spawn → ${kind}`,
    family: 'floor',
    kind,
    binDir: paths.binDir,
    workspace: paths.workspace,
    floor,
    async start() {
      return {
        pid: undefined,
        async prepare() {},
        ask(prompt) {
          return new Promise<AskResult>((resolve) => {
            const child = spawn(floor.command, floor.args, {
              cwd: floor.cwd,
              env: floor.env,
              stdio: ['pipe', 'pipe', 'ignore'],
            });
            let bytes = 0;
            child.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
            child.on('error', (error) => resolve(failure(error)));
            child.on('close', (code) =>
              resolve({ ok: code === 0, finished: true, runId: undefined, bytes, error: undefined }),
            );
            child.stdin.on('error', () => {});
            child.stdin.end(prompt);
          });
        },
        async cancel() {},
        stderrTail: () => '',
        async close() {},
      };
    },
  };
}

export function createSubject(id: SubjectId, paths: SubjectPaths): Subject {
  switch (id) {
    case 'floor-codex':
      return floorSubject('codex', paths);
    case 'floor-gemini':
      return floorSubject('gemini', paths);
    case 'tandem-codex':
      return tandemSubject('codex', 'stdio', paths);
    case 'tandem-gemini':
      return tandemSubject('gemini', 'stdio', paths);
    case 'tandem-http-codex':
      return tandemSubject('codex', 'http', paths);
    case 'tandem-http-gemini':
      return tandemSubject('gemini', 'http', paths);
    case 'codex-mcp-server':
      return peerSubject(id, paths, {});
    case 'gemini-mcp-tool':
      // Past 2026-06-18 it defaults to the `agy` backend; the comparison is with the gemini CLI. Its
      // timeout (minutes) is its own documented knob, set short so the hang test sees it fire.
      return peerSubject(id, paths, { GEMINI_MCP_BACKEND: 'gemini', GEMINI_MCP_TIMEOUT: '0.5' });
  }
}
