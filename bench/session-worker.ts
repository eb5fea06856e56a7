// The MCP HTTP server alone in a fresh process, for the session bench: its RSS is then the server's own,
// not the driving client's. Prints {url, token} as one JSON line; answers "measure" over IPC with its RSS
// once settled after full garbage collections, and the sessions it holds. Usage: node --expose-gc session-worker.js
// WORKSPACE MAX_SESSIONS IDLE_SECONDS
import { generateToken, startHttpServer } from '../src/mcp/http-transport';
import { createServerFactory, createToolRegistry } from '../src/mcp/server';
import { openServices } from '../src/mcp/services';

async function main(): Promise<void> {
  const [workspaceRoot, maxSessions, idleSeconds] = process.argv.slice(2);
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!workspaceRoot || !collect) throw new Error('usage: node --expose-gc session-worker.js DIR MAX IDLE_S');
  const services = await openServices({ workspaceRoot, recover: false });
  const token = generateToken();
  const http = await startHttpServer({
    createServer: createServerFactory(createToolRegistry(services)),
    token,
    maxSessions: Number(maxSessions),
    sessionIdleMs: Number(idleSeconds) * 1000,
  });
  process.on('message', (message) => {
    if (message !== 'measure') return;
    void settledRss(collect).then((rss) => process.send?.({ rss, resources: http.resources() }));
  });
  process.on('disconnect', () => {
    void http
      .close()
      .then(() => services.close())
      .then(() => process.exit(0));
  });
  process.stdout.write(`${JSON.stringify({ url: http.url, token })}\n`);
}

/**
 * RSS after full collections, the lowest of a few samples: V8 and the allocator hand freed pages back to the
 * system a little after a collection, so a single sample swings by tens of MiB with the heap unchanged.
 */
async function settledRss(collect: () => void): Promise<number> {
  let lowest = Number.POSITIVE_INFINITY;
  for (let sample = 0; sample < 10; sample++) {
    collect();
    lowest = Math.min(lowest, process.memoryUsage().rss);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return lowest;
}

main().catch((error: unknown) => {
  process.stderr.write(`session worker: ${(error as Error).message}\n`);
  process.exit(1);
});
