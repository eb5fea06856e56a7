// Runs the UI tests (test/ui/cases/*.mjs) against the real workbench: code-server serves it with the built
// extension loaded as a development extension (no test runner inside: the extension runs as it does for a
// person), headless Debian chromium shows it, and each case drives it through playwright. Each session is its
// own code-server: one single-folder session per color theme, and a multi-root session (a .code-workspace with
// the folders alpha and beta) in the dark theme. A case file runs in the sessions of its `layout` export
// ('single-folder', the default, or 'multi-root'). Screenshots go to evidence/ui/<session>/, and a failed case
// leaves a screenshot, the page's HTML and the workbench console in evidence/ui/failures/.
// Needs `node esbuild.mjs` and scripts/host/install.sh first (`npm run test:ui` does both).
// Env: UI_CASE_TIMEOUT_MS (default 90000) per case, UI_GREP (a regex) runs only the cases whose name matches
// (a session with no case left is not started), TANDEM_HOST_KEEP=1 keeps the temp folders.
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import {
  HostTestError,
  createSay,
  hostPaths,
  launchChromium,
  loadPlaywright,
  screenshot,
  startCodeServer,
  stopAll,
  workbenchUrl,
} from '../host/code-server.mjs';
import { prepareFixture, root, writeJson } from '../host/fixture.mjs';
import { UiTestError, activateTandem, dismissTransient, openView } from './workbench.mjs';

const started = performance.now();
const say = createSay('ui-run', started);
const evidenceDir = path.join(root, 'evidence', 'ui');
const failuresDir = path.join(evidenceDir, 'failures');
const casesDir = path.join(root, 'test', 'ui', 'cases');
const CASE_TIMEOUT_MS = Number(process.env.UI_CASE_TIMEOUT_MS ?? 90_000);
const WORKBENCH_TIMEOUT_MS = 90_000;
const EXTENSION_TIMEOUT_MS = 60_000;
const CONSOLE_LINES_KEPT = 2_000;
const grep = process.env.UI_GREP ? new RegExp(process.env.UI_GREP) : undefined;

const DARK = 'Default Dark Modern';
const LIGHT = 'Default Light Modern';
const LAYOUTS = ['single-folder', 'multi-root'];
/** The code-server sessions, in order: `layout` picks the case files, `folders` makes a multi-root fixture. */
const SESSIONS = [
  { name: DARK, slug: 'default-dark-modern', theme: DARK, layout: 'single-folder' },
  { name: LIGHT, slug: 'default-light-modern', theme: LIGHT, layout: 'single-folder' },
  { name: 'multi-root', slug: 'multi-root', theme: DARK, layout: 'multi-root', folders: ['alpha', 'beta'] },
];
/**
 * Added to the host settings: nothing in the secondary side bar (the chat view), so screenshots show Tandem,
 * and no animations, so a screenshot never catches a widget half-way in or out.
 */
const UI_SETTINGS = {
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'workbench.reduceMotion': 'on',
};

function slug(text) {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 80);
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Every test/ui/cases/*.mjs in name order, with its layout (the sessions it runs in:
 * `export const layout = 'multi-root'`; without it, the single-folder sessions). No file can skip itself: a case
 * that cannot run fails.
 */
async function loadCaseFiles() {
  const files = [];
  for (const name of readdirSync(casesDir)
    .filter((file) => file.endsWith('.mjs'))
    .sort()) {
    const module = await import(pathToFileURL(path.join(casesDir, name)).href);
    if (!Array.isArray(module.cases)) throw new HostTestError(`test/ui/cases/${name} exports no cases array`);
    const layout = module.layout ?? 'single-folder';
    if (!LAYOUTS.includes(layout)) {
      throw new HostTestError(
        `test/ui/cases/${name} exports layout ${JSON.stringify(layout)}; expected one of ${LAYOUTS.join(', ')}`,
      );
    }
    const cases = module.cases.filter((entry) => !grep || grep.test(entry.name));
    files.push({ name, cases, layout });
  }
  return files;
}

/** Runs `body` with a deadline; a case that overruns it fails, and its late rejection is swallowed. */
async function withDeadline(what, timeoutMs, body) {
  let timer;
  const work = body();
  work.catch(() => undefined);
  try {
    return await Promise.race([
      work,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new UiTestError(`${what} did not finish within ${timeoutMs / 1000}s`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** What a failed case leaves for diagnosis: a screenshot, the page's HTML and the workbench console so far. */
async function saveFailure(page, sessionSlug, caseName, consoleLines) {
  const dir = path.join(failuresDir, sessionSlug);
  mkdirSync(dir, { recursive: true });
  const base = path.join(dir, slug(caseName));
  await screenshot(page, `${base}.png`, say);
  try {
    writeFileSync(`${base}.html`, await page.content({ timeout: 10_000 }));
  } catch (error) {
    say(`page HTML for ${caseName} not saved: ${error.message}`);
  }
  writeFileSync(`${base}.console.log`, `${consoleLines.join('\n')}\n`);
}

/** The case files that run in `session`: its layout's, with a case left after UI_GREP. */
function filesFor(session, caseFiles) {
  return caseFiles.filter((file) => file.layout === session.layout && file.cases.length > 0);
}

/** One code-server session: every case of its layout in order, each after the previous one's leftovers are closed. */
async function runSession(session, caseFiles, chromium, host, results) {
  const { theme } = session;
  const sessionSlug = session.slug;
  const shotsDir = path.join(evidenceDir, sessionSlug);
  rmSync(shotsDir, { recursive: true, force: true });
  mkdirSync(shotsDir, { recursive: true });
  const metrics = { session: session.name, theme, layout: session.layout };
  const fixture = prepareFixture({
    kind: session.layout === 'multi-root' ? 'ui-multi' : 'ui',
    theme,
    settings: UI_SETTINGS,
    ...(session.folders ? { folders: session.folders } : {}),
  });
  const sessionStarted = performance.now();
  const serverLog = [];
  const consoleLines = [];
  let server;
  let browser = {};
  let page;
  say(`— ${session.name} (${theme}, ${session.layout}) —`);
  try {
    server = await startCodeServer({
      node: host.node,
      codeServer: host.codeServer,
      version: host.versions.CODE_SERVER_VERSION,
      fixture,
      say,
      log: serverLog,
      echo: false,
    });
    metrics.codeServerReadyMs = server.readyMs;
    browser = await launchChromium(chromium);
    page = await browser.browser.newPage({
      viewport: { width: 1280, height: 800 },
      // Copy MCP Config writes to the clipboard through the browser.
      permissions: ['clipboard-read', 'clipboard-write'],
    });
    page.on('console', (message) => {
      consoleLines.push(`[${message.type()}] ${message.text()}`);
      if (consoleLines.length > CONSOLE_LINES_KEPT)
        consoleLines.splice(0, consoleLines.length - CONSOLE_LINES_KEPT);
    });
    page.on('pageerror', (error) => consoleLines.push(`[pageerror] ${error.message}`));

    // Only extensionDevelopmentPath: the workbench runs the extension as installed, with no tests inside.
    const url = workbenchUrl(server.base, fixture.workspace, [
      ['extensionDevelopmentPath', server.remote(root)],
    ]);
    const pageStarted = performance.now();
    await page.goto(url, { timeout: WORKBENCH_TIMEOUT_MS });
    try {
      await page.waitForSelector('.monaco-workbench .part.statusbar', { timeout: WORKBENCH_TIMEOUT_MS });
    } catch {
      await saveFailure(page, sessionSlug, 'workbench', consoleLines);
      throw new HostTestError(`the workbench did not render within ${WORKBENCH_TIMEOUT_MS / 1000}s`);
    }
    metrics.workbenchMs = Math.round(performance.now() - pageStarted);
    say(`workbench rendered in ${metrics.workbenchMs} ms`);
    // Tandem activates lazily (a command, its views or an MCP client). The session opens its side bar the way
    // a person would and waits for the status bar item, so the first case does not also pay for the extension
    // host starting on a loaded machine; then it goes back to the Explorer, where every case starts.
    const extensionStarted = performance.now();
    try {
      await activateTandem(page, { timeoutMs: EXTENSION_TIMEOUT_MS });
    } catch (error) {
      await saveFailure(page, sessionSlug, 'activation', consoleLines);
      throw new HostTestError(
        error instanceof UiTestError ? `opening Tandem's side bar: ${error.message}` : String(error),
      );
    }
    metrics.extensionReadyMs = Math.round(performance.now() - extensionStarted);
    say(`Tandem activated ${metrics.extensionReadyMs} ms after its side bar was opened`);
    await openView(page, 'Explorer');

    const casesStarted = performance.now();
    for (const file of filesFor(session, caseFiles)) {
      for (const entry of file.cases) {
        const caseStarted = performance.now();
        const result = { session: session.name, theme, file: file.name, name: entry.name };
        try {
          await dismissTransient(page);
          const shot = async (name) => {
            const target = path.join(shotsDir, `${name}.png`);
            await page.screenshot({ path: target, timeout: 10_000 });
            say(`screenshot: ${path.relative(root, target)}`);
          };
          await withDeadline(`"${entry.name}"`, CASE_TIMEOUT_MS, () =>
            entry.run({ page, theme, shot, workspace: fixture.workspace, folders: fixture.folders, say }),
          );
          result.ok = true;
        } catch (error) {
          result.ok = false;
          result.error =
            error instanceof UiTestError || error instanceof HostTestError
              ? error.message
              : String(error.stack ?? error);
        }
        result.ms = Math.round(performance.now() - caseStarted);
        results.push(result);
        if (result.ok) {
          console.log(`  ✔ [${sessionSlug}] ${entry.name} (${seconds(result.ms)})`);
        } else {
          console.log(`  ✘ [${sessionSlug}] ${entry.name} (${seconds(result.ms)})`);
          for (const line of result.error.split('\n')) console.log(`      ${line}`);
          await saveFailure(page, sessionSlug, entry.name, consoleLines);
        }
      }
    }
    metrics.casesMs = Math.round(performance.now() - casesStarted);
  } catch (error) {
    results.push({
      session: session.name,
      theme,
      file: '(session)',
      name: `${session.name} session`,
      ok: false,
      ms: 0,
      error: error instanceof HostTestError ? error.message : String(error.stack ?? error),
    });
    console.log(`  ✘ [${sessionSlug}] the session failed: ${results.at(-1).error}`);
    if (page) await saveFailure(page, sessionSlug, 'session', consoleLines);
  } finally {
    const stopping = performance.now();
    const left = await stopAll({
      browser: browser.browser,
      browserServer: browser.browserServer,
      chromiumPid: browser.pid,
      server,
      dirs: fixture.dirs,
      say,
    });
    metrics.teardownMs = Math.round(performance.now() - stopping);
    if (left.length > 0) {
      results.push({
        session: session.name,
        theme,
        file: '(session)',
        name: `${session.name} session leaves no process behind`,
        ok: false,
        ms: 0,
        error: `still running after the session: ${left.join('; ')}`,
      });
      console.log(`  ✘ [${sessionSlug}] processes outlived the session: ${left.join('; ')}`);
    }
    if (results.some((result) => result.session === session.name && !result.ok)) {
      mkdirSync(failuresDir, { recursive: true });
      writeFileSync(path.join(failuresDir, `${sessionSlug}-code-server.log`), `${serverLog.join('\n')}\n`);
    }
    const kept = fixture.cleanup(process.env.TANDEM_HOST_KEEP === '1');
    if (kept) say(kept);
    metrics.totalMs = Math.round(performance.now() - sessionStarted);
    say(`${session.name}: ${JSON.stringify(metrics)}`);
  }
  return metrics;
}

async function main() {
  const host = hostPaths();
  const { chromium } = loadPlaywright(host.hostDir, host.versions.PLAYWRIGHT_CORE_VERSION, say);
  if (!existsSync(path.join(root, 'dist', 'extension.js'))) {
    throw new HostTestError('dist/extension.js is missing: run node esbuild.mjs first');
  }
  const caseFiles = await loadCaseFiles();
  const sessions = SESSIONS.filter((session) => filesFor(session, caseFiles).length > 0);
  if (sessions.length === 0) {
    throw new HostTestError(`no UI case to run${grep ? ` matches UI_GREP=${grep}` : ''}`);
  }
  rmSync(failuresDir, { recursive: true, force: true });

  const results = [];
  const metrics = [];
  for (const session of sessions) {
    metrics.push(await runSession(session, caseFiles, chromium, host, results));
  }

  const passed = results.filter((result) => result.ok).length;
  const failed = results.length - passed;
  const totalMs = Math.round(performance.now() - started);
  writeJson(path.join(evidenceDir, 'results.json'), {
    passed,
    failed,
    totalMs,
    sessions: metrics,
    results,
  });
  console.log(`ui: ${passed} passed, ${failed} failed in ${seconds(totalMs)}`);
  return failed === 0 ? 0 : 1;
}

try {
  const code = await main();
  say(code === 0 ? 'UI tests passed' : 'UI tests FAILED');
  process.exitCode = code;
} catch (error) {
  console.error(`ui-run: FAILED: ${error instanceof HostTestError ? error.message : (error.stack ?? error)}`);
  process.exitCode = 1;
}
