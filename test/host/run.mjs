// Runs the host tests in a real VS Code extension host: code-server serves the workbench and runs the extension
// host, headless Debian chromium (driven by playwright-core) opens the workbench with the built extension and
// the test runner in its `payload`, and the page reports the test exit code. Two sessions, one after the other:
// `main` (out/test/host/suite, workspace trust off) and `trust` (out/test/host/trust, trust on and the folder
// untrusted; the tests ask this runner to click Trust in the trust editor). A session fails when a process it
// started outlives it.
// Needs `npm run build`, `tsc` and scripts/host/install.sh first (`npm run test:host` does all three).
// Env: HOST_TEST_TIMEOUT_MS (default 300000) per session, HOST_SESSIONS (default "main,trust") picks sessions,
// TANDEM_HOST_KEEP=1 keeps the temp folders.
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
import { prepareFixture, root, testsPath, trustTestsPath, writeJson } from './fixture.mjs';

const evidenceRoot = path.join(root, 'evidence', 'host');
const started = performance.now();
const TEST_TIMEOUT_MS = Number(process.env.HOST_TEST_TIMEOUT_MS ?? 300_000);
const WORKBENCH_TIMEOUT_MS = 90_000;
const ACTION_TIMEOUT_MS = 20_000;
const say = createSay('host-run', started);

/**
 * What the tests of a session may ask of the page (a `host-action {"name": ...}` line in their output), for what
 * the extension API cannot do: the editor grants workspace trust only through its own UI.
 */
const ACTIONS = {
  // The test opened the trust editor (workbench.trust.manage); its Trust button grants trust to the folder.
  'grant-trust': async (page) => {
    // "Trust" (its keybinding below it), not "Don't Trust".
    const button = page
      .locator('.workspace-trust-editor .workspace-trust-buttons-row .monaco-button', { hasText: /^Trust/ })
      .first();
    await button.click({ timeout: ACTION_TIMEOUT_MS });
  },
};

const SESSIONS = [
  // The main session's evidence stays directly in evidence/host/ (scripts/evidence.mjs reads it there).
  { name: 'main', tests: testsPath, evidenceDir: evidenceRoot, workspaceTrust: false, settings: {} },
  {
    name: 'trust',
    tests: trustTestsPath,
    evidenceDir: path.join(evidenceRoot, 'trust'),
    workspaceTrust: true,
    // No start-up "Do you trust the authors?" dialog: the tests grant trust through the trust editor.
    settings: {
      'security.workspace.trust.enabled': true,
      'security.workspace.trust.startupPrompt': 'never',
    },
  },
];

/** One code-server and chromium for one test module; resolves with its exit code, counts, metrics and leftovers. */
async function runSession(session, { node, codeServer, versions, chromium }) {
  const { evidenceDir } = session;
  const sessionSay = (line) => say(`[${session.name}] ${line}`);
  mkdirSync(evidenceDir, { recursive: true });
  const fixture = prepareFixture({
    kind: session.name === 'main' ? 'host' : `host-${session.name}`,
    settings: session.settings,
  });
  const { workspace } = fixture;

  const serverLog = [];
  let server;
  let browserServer;
  let browser;
  let chromiumPid;
  let page;
  let exitCode;
  let leftovers;
  const metrics = {};
  const counts = { passing: 0, failing: 0, pending: 0 };
  const actionsRun = [];

  const screenshot = (name) => takeScreenshot(page, path.join(evidenceDir, `${name}.png`), sessionSay);

  try {
    server = await startCodeServer({
      node,
      codeServer,
      version: versions.CODE_SERVER_VERSION,
      fixture,
      say: sessionSay,
      log: serverLog,
      workspaceTrust: session.workspaceTrust,
    });
    metrics.codeServerReadyMs = server.readyMs;

    ({ browserServer, browser, pid: chromiumPid } = await launchChromium(chromium));
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });

    let resolveExit;
    const exited = new Promise((resolve) => (resolveExit = resolve));
    const hostLog = [];
    const runAction = (name) => {
      const action = ACTIONS[name];
      actionsRun.push(
        (async () => {
          if (!action) throw new HostTestError(`the tests asked for an unknown action "${name}"`);
          sessionSay(`action ${name}`);
          await action(page);
          sessionSay(`action ${name} done`);
        })().catch(async (error) => {
          // The test waiting for the outcome fails on its own timeout; this says why.
          sessionSay(`action ${name} FAILED: ${error.message}`);
          await screenshot(`action-${name}`);
        }),
      );
    };
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
      const action = /host-action (\{.*\})$/.exec(text);
      if (action) runAction(JSON.parse(action[1]).name);
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
      ['extensionTestsPath', server.remote(session.tests)],
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
    sessionSay(`workbench rendered in ${metrics.workbenchMs} ms; waiting for the tests`);

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
    await Promise.all(actionsRun);
    metrics.testsMs = Math.round(performance.now() - pageStarted);
    await screenshot(exitCode === 0 ? 'passed' : 'failed');
    writeFileSync(path.join(evidenceDir, 'host.log'), `${hostLog.join('\n')}\n`);
    sessionSay(`extension host exited with ${exitCode}`);
  } catch (error) {
    await screenshot('error');
    throw error;
  } finally {
    leftovers = await stopAll({
      browser,
      browserServer,
      chromiumPid,
      server,
      dirs: fixture.dirs,
      say: sessionSay,
    });
    writeFileSync(path.join(evidenceDir, 'code-server.log'), `${serverLog.join('\n')}\n`);
    const kept = fixture.cleanup(process.env.TANDEM_HOST_KEEP === '1');
    if (kept) sessionSay(kept);
  }
  return { exitCode, counts, metrics, leftovers: leftovers ?? [] };
}

async function main() {
  const { hostDir, versions, node, codeServer } = hostPaths();
  const { chromium } = loadPlaywright(hostDir, versions.PLAYWRIGHT_CORE_VERSION, say);
  const wanted = (process.env.HOST_SESSIONS ?? 'main,trust').split(',').map((name) => name.trim());
  const sessions = SESSIONS.filter((session) => wanted.includes(session.name));
  if (sessions.length === 0)
    throw new HostTestError(`HOST_SESSIONS names no session of ${SESSIONS.map((s) => s.name)}`);
  for (const built of [
    path.join(root, 'dist', 'extension.js'),
    ...sessions.map((session) => session.tests),
  ]) {
    if (!existsSync(built)) {
      throw new HostTestError(
        `${path.relative(root, built)} is missing: run tsc -p tsconfig.json and node esbuild.mjs first`,
      );
    }
  }
  mkdirSync(evidenceRoot, { recursive: true });

  const timings = {};
  const total = { passing: 0, failing: 0, pending: 0 };
  const failures = [];
  try {
    for (const session of sessions) {
      let result;
      try {
        result = await runSession(session, { node, codeServer, versions, chromium });
      } catch (error) {
        failures.push(
          `${session.name}: ${error instanceof HostTestError ? error.message : (error.stack ?? error)}`,
        );
        continue;
      }
      // The main session's numbers stay at the top level of timings.json, where the evidence reads them.
      if (session.name === 'main') Object.assign(timings, result.metrics);
      else timings[session.name] = result.metrics;
      for (const key of Object.keys(total)) total[key] += result.counts[key];
      if (result.exitCode !== 0) failures.push(`${session.name}: the tests exited with ${result.exitCode}`);
      // A process that outlived the session is a bug of what started it (a worker CLI deactivate did not kill).
      if (result.leftovers.length > 0) {
        failures.push(`${session.name}: processes outlived the session: ${result.leftovers.join('; ')}`);
      }
    }
  } finally {
    timings.totalMs = Math.round(performance.now() - started);
    writeJson(path.join(evidenceRoot, 'timings.json'), timings);
    say(`metrics: ${JSON.stringify(timings)}`);
  }
  // Mocha's counts of every session as one plain closing line, for readers of the CI log.
  console.log(`host: ${total.passing} passed, ${total.failing} failed, ${total.pending} skipped`);
  return failures;
}

try {
  const failures = await main();
  for (const failure of failures) console.error(`host-run: FAILED: ${failure}`);
  say(failures.length === 0 ? 'host tests passed' : `host tests FAILED (${failures.length} problem(s))`);
  process.exitCode = failures.length === 0 ? 0 : 1;
} catch (error) {
  console.error(
    `host-run: FAILED: ${error instanceof HostTestError ? error.message : (error.stack ?? error)}`,
  );
  process.exitCode = 1;
}
