// Bench of abandoned MCP HTTP sessions: a client that initializes a session and never ends it (what real
// clients do when a window closes) must not grow the server without bound. The server runs in its own
// process (session-worker.ts); its RSS after a warm-up of sessions that were ended is the baseline, taken
// in the same run, and the growth after 10,000 abandoned sessions is judged against it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import {
  DEFAULT_MAX_SESSIONS,
  DEFAULT_SESSION_IDLE_MS,
  MAX_SESSIONS_SETTING,
} from '../src/mcp/http-transport';
import type { BenchRow } from './server';
import { round } from './stats';

const MiB = 1024 * 1024;
const ABANDONED = 10_000;
const WARM_UP = 1000;
/** Sessions opened at once, as several clients reconnecting would. */
const PARALLEL = 8;
export const SESSION_GROWTH_TARGET_MIB = 16;

interface Measure {
  rss: number;
  resources: { sessions: number; connectedServers: number; idleTimers: number };
}

interface Worker {
  child: ChildProcess;
  url: string;
  token: string;
  measure(): Promise<Measure>;
}

async function startWorker(workspace: string, maxSessions: number, idleSeconds: number): Promise<Worker> {
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      path.join(__dirname, 'session-worker.js'),
      workspace,
      String(maxSessions),
      String(idleSeconds),
    ],
    { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] },
  );
  const first = await new Promise<{ url: string; token: string }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const end = out.indexOf('\n');
      if (end !== -1) resolve(JSON.parse(out.slice(0, end)) as { url: string; token: string });
    });
    child.once('exit', (code) => reject(new Error(`session worker exited with ${code} before it listened`)));
  });
  return {
    child,
    ...first,
    measure: () =>
      new Promise((resolve) => {
        child.once('message', (message) => resolve(message as Measure));
        child.send('measure');
      }),
  };
}

async function openSession(worker: Worker, end: boolean): Promise<void> {
  const headers = {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    Authorization: `Bearer ${worker.token}`,
  };
  const response = await fetch(worker.url, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: LATEST_PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: 'bench-abandoned', version: '1' },
      },
    }),
  });
  const sessionId = response.headers.get('mcp-session-id');
  await response.text();
  if (response.status !== 200 || !sessionId) throw new Error(`initialize answered ${response.status}`);
  const session = {
    ...headers,
    'Mcp-Session-Id': sessionId,
    'MCP-Protocol-Version': LATEST_PROTOCOL_VERSION,
  };
  const initialized = await fetch(worker.url, {
    method: 'POST',
    headers: session,
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  await initialized.text();
  if (end) {
    const deleted = await fetch(worker.url, { method: 'DELETE', headers: session });
    await deleted.text();
  }
}

async function openSessions(worker: Worker, count: number, end: boolean): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < count) {
        next += 1;
        await openSession(worker, end);
      }
    }),
  );
}

/** RSS growth of one server after `count` abandoned sessions over its baseline after ended ones. */
async function abandon(
  workspace: string,
  count: number,
  maxSessions: number,
  idleSeconds: number,
): Promise<{ growth: number; baseline: number; after: Measure; msPerSession: number }> {
  const worker = await startWorker(workspace, maxSessions, idleSeconds);
  try {
    await openSessions(worker, WARM_UP, true);
    const baseline = await worker.measure();
    const started = performance.now();
    await openSessions(worker, count, false);
    const msPerSession = (performance.now() - started) / count;
    const after = await worker.measure();
    return { growth: after.rss - baseline.rss, baseline: baseline.rss, after, msPerSession };
  } finally {
    worker.child.disconnect();
    await new Promise((resolve) => worker.child.once('exit', resolve));
  }
}

export async function benchSessions(repoRoot: string): Promise<BenchRow[]> {
  const base = path.join(repoRoot, '.tandem-test-tmp');
  mkdirSync(base, { recursive: true });
  const scratch = mkdtempSync(path.join(base, 'bench-sessions-'));
  writeFileSync(path.join(scratch, 'README.md'), '# bench\n');
  const idleSeconds = DEFAULT_SESSION_IDLE_MS / 1000;
  try {
    // The defaults: the idle time never passes during the bench, so the cap alone bounds the sessions.
    const capped = await abandon(scratch, ABANDONED, DEFAULT_MAX_SESSIONS, idleSeconds);
    // For comparison: the same server with the cap raised to its maximum, over a tenth of the sessions.
    const uncapped = await abandon(scratch, ABANDONED / 10, MAX_SESSIONS_SETTING, idleSeconds);
    const where = `cap ${DEFAULT_MAX_SESSIONS}, idle ${idleSeconds / 60} min (the defaults)`;
    return [
      {
        name: `HTTP sessions: server RSS baseline after ${WARM_UP} ended sessions`,
        value: round(capped.baseline / MiB),
        unit: 'MiB',
      },
      {
        name: `HTTP sessions: RSS growth after ${ABANDONED} abandoned sessions, ${where}`,
        value: round(capped.growth / MiB),
        unit: 'MiB',
        target: `<= ${SESSION_GROWTH_TARGET_MIB} MiB`,
        pass:
          capped.growth <= SESSION_GROWTH_TARGET_MIB * MiB &&
          capped.after.resources.sessions <= DEFAULT_MAX_SESSIONS,
      },
      {
        name: `HTTP sessions: live sessions after ${ABANDONED} abandoned, ${where}`,
        value: capped.after.resources.sessions,
        unit: '',
      },
      {
        name: 'HTTP sessions: initialize + initialized per abandoned session, 8 at once',
        value: round(capped.msPerSession),
        unit: 'ms',
      },
      {
        name: `HTTP sessions: RSS growth after ${ABANDONED / 10} abandoned sessions, cap ${MAX_SESSIONS_SETTING} (no eviction), for comparison`,
        value: round(uncapped.growth / MiB),
        unit: 'MiB',
      },
    ];
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
