// stdio transport for the MCP server: one McpServer from the factory on this process's stdin/stdout, and a
// signal when the client goes away so the caller can shut down (nothing else here may write to stdout).
import type { Readable, Writable } from 'node:stream';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';

export interface StdioServeOptions {
  /** Called once when the client goes away (stdin ended or closed, or stdout broke); not after close(). */
  onClose?: () => void;
  /** Defaults to process.stdin; another stream lets the server be embedded or tested in-process. */
  stdin?: Readable;
  /** Defaults to process.stdout. */
  stdout?: Writable;
}

export interface StdioSession {
  /** Closes the server (in-flight tool calls see their abort signal) and stops reading stdin. */
  close(): Promise<void>;
}

export async function serveStdio(
  createServer: () => McpServer,
  options: StdioServeOptions = {},
): Promise<StdioSession> {
  const stdin = options.stdin ?? process.stdin;
  const stdout = options.stdout ?? process.stdout;
  const server = createServer();
  const transport = new StdioServerTransport(stdin, stdout);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      stdin.off('end', onGone);
      stdin.off('close', onGone);
      stdout.off('error', onGone);
      await server.close();
    })();
    return closing;
  };
  // The SDK transport does not watch for EOF, and a write to a vanished client fails with EPIPE on stdout,
  // which would otherwise be an unhandled 'error' event that kills the process.
  const onGone = (): void => {
    if (closing) return;
    void close().finally(() => options.onClose?.());
  };
  stdin.once('end', onGone);
  stdin.once('close', onGone);
  stdout.on('error', onGone);

  await server.connect(transport);
  return { close };
}
