// Runs the host tests (out/test/host/suite) in a real VS Code extension host: code-server serves the workbench
// and runs the extension host, headless Debian chromium (driven by playwright-core) opens the workbench with
// the built extension and the test runner in its `payload`, and the page reports the test exit code.
// Needs `npm run build`, `tsc` and scripts/host/install.sh first (`npm run test:host` does all three).
// Env: HOST_TEST_TIMEOUT_MS (default 300000) for the tests, TANDEM_HOST_KEEP=1 keeps the temp folders.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { format } from 'node:util';
import {
  HostTestError,
  createSay,
  hostPaths,
  launchChromium,
  loadPlaywright,
  screenshot as takeScreenshot,
  startCodeServer,
  stopAll,
  workbenchUrl,
} from './code-server.mjs';
import { prepareFixture, root, testsPath, writeJson } from './fixture.mjs';

const evidenceDir = path.join(root, 'evidence', 'host');
const started = performance.now();
const TEST_TIMEOUT_MS = Number(process.env.HOST_TEST_TIMEOUT_MS ?? 300_000);
const WORKBENCH_TIMEOUT_MS = 90_000;
const say = createSay('host-run', started);

async function main() {
  const { hostDir, versions, node, codeServer } = hostPaths();
  const { chromium } = loadPlaywright(hostDir, versions.PLAYWRIGHT_CORE_VERSION, say);
  for (const built of [path.join(root, 'dist', 'extension.js'), testsPath]) {
    if (!existsSync(built)) {
      throw new HostTestError(
        `${path.relative(root, built)} is missing: run tsc -p tsconfig.json and node esbuild.mjs first`,
      );
    }
  }
  mkdirSync(evidenceDir, { recursive: true });

  const fixture = prepareFixture();
  const { workspace } = fixture;

  const serverLog = [];
  let server;
  let browserServer;
  let browser;
  let chromiumPid;
  let page;
  let exitCode;
  const metrics = {};
  const counts = { passing: 0, failing: 0, pending: 0 };

  const screenshot = (name) => takeScreenshot(page, path.join(evidenceDir, `${name}.png`), say);

  try {
    server = await startCodeServer({
      node,
      codeServer,
      version: versions.CODE_SERVER_VERSION,
      fixture,
      say,
      log: serverLog,
    });
    metrics.codeServerReadyMs = server.readyMs;

    ({ browserServer, browser, pid: chromiumPid } = await launchChromium(chromium));
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

    const url = workbenchUrl(server.base, workspace, [
      ['extensionDevelopmentPath', server.remote(root)],
      ['extensionTestsPath', server.remote(testsPath)],
    ]);
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
    await stopAll({ browser, browserServer, chromiumPid, server, dirs: fixture.dirs, say });
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
