// The Tandem side bar and dashboard: a run started from the command palette shows up in the Runs view and in
// the dashboard, and the dashboard's Cancel button cancels it, with the mouse and then with the keyboard alone;
// the run filter narrows the list; the webview's CSP allows only its own nonce script, and the webview requests
// nothing but local resources. The offline model's `hang` scenario keeps a run's worker busy until it is
// cancelled. The cases run in order and share their runs: each later case needs the runs of the ones before.
import { URL } from 'node:url';
import {
  UiTestError,
  hidePanel,
  noDialog,
  openView,
  poll,
  runCommand,
  runStrategy,
  sidebarPane,
  webviewFrame,
} from '../workbench.mjs';
import { networkSources, parseCsp, recordWebviewRequests, remoteReason } from '../webview-policy.mjs';

const PROMPT = '[[scenario:hang]] Wait for the cancel button.';
/** How a run of that prompt is labelled in the Runs view: its strategy and the prompt without the tag. */
const RUN_LABEL = /single_worker.*Wait for the cancel button/;
/** The second run, cancelled from the keyboard; the filter case looks for its last word. */
const KEYBOARD_PROMPT = '[[scenario:hang]] Cancel me from the keyboard.';
const KEYBOARD_WORD = 'keyboard';
const RUN_ROWS = '#run-list [role="option"][data-run-id]';

/** Waits until the dashboard lists run `runId` as cancelled and its detail's Cancel button is disabled. */
async function expectCancelled(page, dashboard, runId, how) {
  const row = dashboard.locator(`#runs [data-run-id="${runId}"]`).first();
  let status;
  await poll(`run ${runId} to show data-status="cancelled" ${how}`, 20_000, async () => {
    await noDialog(page, how);
    status = await row.getAttribute('data-status', { timeout: 500 }).catch(() => undefined);
    return status === 'cancelled';
  }).catch((error) => {
    throw new UiTestError(`${error.message}; its data-status stayed ${JSON.stringify(status)}`);
  });
  await poll(`the dashboard's "cancel-run" button to be disabled for cancelled run ${runId}`, 10_000, () =>
    dashboard
      .locator('button[data-action="cancel-run"]')
      .isDisabled({ timeout: 500 })
      .catch(() => false),
  );
}

/** What has focus in the webview's document: enough to say which row or button it is. */
async function focusedInWebview(dashboard) {
  return dashboard.locator('body').evaluate((body) => {
    const element = body.ownerDocument.activeElement;
    if (!element || element === body) return { what: 'nothing (the body)' };
    const described = {
      tag: element.tagName.toLowerCase(),
      id: element.id || undefined,
      role: element.getAttribute('role') ?? undefined,
      runId: element.getAttribute('data-run-id') ?? undefined,
      action: element.getAttribute('data-action') ?? undefined,
    };
    described.what = [
      described.tag,
      described.id && `#${described.id}`,
      described.role && `[role=${described.role}]`,
      described.runId && `[data-run-id=${described.runId}]`,
      described.action && `[data-action=${described.action}]`,
    ]
      .filter(Boolean)
      .join('');
    return described;
  });
}

/** Presses `key` in the webview and checks what has focus afterwards with `expected(focused)`. */
async function pressAndExpectFocus(page, dashboard, key, what, expected) {
  await page.keyboard.press(key);
  let focused;
  await poll(`${what} to have focus after ${key}`, 5_000, async () => {
    focused = await focusedInWebview(dashboard).catch(() => undefined);
    return focused !== undefined && expected(focused);
  }).catch((error) => {
    throw new UiTestError(`${error.message}; focus is on ${focused?.what ?? 'an unknown element'}`);
  });
  return focused;
}

/** The ids of the run rows the dashboard shows, top to bottom. */
function shownRunIds(dashboard) {
  return dashboard
    .locator(RUN_ROWS)
    .evaluateAll((rows) => rows.map((row) => row.getAttribute('data-run-id')));
}

export const cases = [
  {
    name: 'Run Strategy starts a run that the Runs view lists, and the dashboard cancels it',
    async run({ page, shot }) {
      await runStrategy(page, PROMPT);

      await openView(page, 'Tandem');
      const runs = await sidebarPane(page, 'Runs');
      const row = runs.locator('.monaco-list-row', { hasText: RUN_LABEL });
      await poll(`the Runs view to list the run (a row matching ${RUN_LABEL})`, 20_000, () =>
        row
          .first()
          .isVisible()
          .catch(() => false),
      );
      await shot('sidebar-runs');

      await hidePanel(page);
      await runCommand(page, 'Tandem: Open Dashboard');
      const dashboard = webviewFrame(page);
      const running = dashboard.locator('#runs [data-run-id][data-status="running"]').first();
      await poll(
        'the dashboard to list a running run (#runs [data-run-id][data-status="running"])',
        30_000,
        async () => {
          await noDialog(page, 'after Tandem: Open Dashboard');
          return running.isVisible().catch(() => false);
        },
      );
      const runId = await running.getAttribute('data-run-id');
      await dashboard.locator('#workers').waitFor({ state: 'visible', timeout: 10_000 });
      await running.click({ timeout: 10_000 });
      const cancel = dashboard.locator('button[data-action="cancel-run"]');
      await poll('the dashboard to offer an enabled "cancel-run" button for the selected run', 10_000, () =>
        cancel.isEnabled({ timeout: 500 }).catch(() => false),
      );
      await shot('dashboard-running');

      await cancel.click({ timeout: 10_000 });
      // The list row changes first; the run's detail and the status bar follow. Wait for all three, so the
      // screenshot shows the settled screen.
      await expectCancelled(page, dashboard, runId, 'after Cancel was clicked');
      // Once the run has ended, its detail is its summary.json as rendered: the playbook's version hash, the
      // step with the command it ran, and the outcome.
      await poll('the detail to be rendered from the run’s summary ([data-source="summary"])', 15_000, () =>
        dashboard
          .locator('.detail-source[data-source="summary"]')
          .isVisible()
          .catch(() => false),
      );
      const hash = (await dashboard.locator('.playbook-hash').innerText({ timeout: 5_000 })).trim();
      if (!/^[0-9a-f]{12}$/.test(hash)) {
        throw new UiTestError(`the version hash reads ${JSON.stringify(hash)}, not 12 hex digits`);
      }
      const step = dashboard.locator('.timeline .step[data-status="cancelled"]').first();
      const stepText = (await step.innerText({ timeout: 5_000 })).replace(/\s+/g, ' ');
      if (!/\bwrite\b.*\bcodex\b/.test(stepText) || !/codex(\.js)? exec/.test(stepText)) {
        throw new UiTestError(
          `the cancelled step should show "write", "codex" and its command (codex exec …): ${JSON.stringify(stepText.slice(0, 300))}`,
        );
      }
      const statusItem = page.locator('.part.statusbar .statusbar-item', { hasText: /Tandem/ });
      await poll('the status bar to stop counting the run as running', 10_000, async () => {
        const text = (await statusItem.allInnerTexts().catch(() => [])).join(' ');
        return text !== '' && !/running/i.test(text);
      });
      await shot('dashboard-cancelled');
    },
  },
  {
    name: 'the dashboard is driven by the keyboard: Tab reaches the run list, Enter selects, Space cancels',
    async run({ page, shot }) {
      await runStrategy(page, KEYBOARD_PROMPT);
      const dashboard = webviewFrame(page);
      const running = dashboard.locator(`${RUN_ROWS}[data-status="running"]`).first();
      await poll('the dashboard to list the new run as running', 30_000, async () => {
        await noDialog(page, 'after the second run started');
        return running.isVisible().catch(() => false);
      });
      const runId = await running.getAttribute('data-run-id');
      const rows = await shownRunIds(dashboard);
      if (rows.length < 2 || rows[0] !== runId) {
        throw new UiTestError(
          `expected the new run ${runId} first of at least two runs (newest first), the list shows ${JSON.stringify(rows)}`,
        );
      }

      // Into the webview at the filter, then the keyboard only: the list is one tab stop.
      await dashboard.locator('#run-filter').click({ timeout: 10_000 });
      await pressAndExpectFocus(page, dashboard, 'Tab', 'a run row', (focused) => focused.role === 'option');
      await pressAndExpectFocus(
        page,
        dashboard,
        'Home',
        `the first row (run ${runId})`,
        (f) => f.runId === runId,
      );
      await pressAndExpectFocus(
        page,
        dashboard,
        'ArrowDown',
        `the second row (run ${rows[1]})`,
        (f) => f.runId === rows[1],
      );
      await pressAndExpectFocus(
        page,
        dashboard,
        'ArrowUp',
        `the first row again (run ${runId})`,
        (f) => f.runId === runId,
      );

      await page.keyboard.press('Enter');
      const row = dashboard.locator(`${RUN_ROWS}[data-run-id="${runId}"]`);
      const cancel = dashboard.locator('#detail button[data-action="cancel-run"]');
      await poll(
        `Enter to select run ${runId} and show its detail with an enabled Cancel`,
        10_000,
        async () => {
          const selected = await row.getAttribute('aria-selected', { timeout: 500 }).catch(() => undefined);
          const title = await dashboard
            .locator('#detail-title')
            .innerText({ timeout: 500 })
            .catch(() => '');
          return (
            selected === 'true' &&
            title.includes(runId) &&
            (await cancel.isEnabled({ timeout: 500 }).catch(() => false))
          );
        },
      );
      // Tab leaves the list (no stop on each row) for the first button of the run's detail.
      await pressAndExpectFocus(
        page,
        dashboard,
        'Tab',
        'the "Cancel run" button',
        (f) => f.action === 'cancel-run',
      );
      await shot('dashboard-keyboard');

      await page.keyboard.press('Space');
      await expectCancelled(page, dashboard, runId, 'after Space on the focused Cancel button');
    },
  },
  {
    name: 'the run filter narrows the dashboard\u2019s run list as it is typed, and clearing it restores the list',
    async run({ page, shot }) {
      const dashboard = webviewFrame(page);
      const filter = dashboard.locator('#run-filter');
      const label = await filter.getAttribute('aria-label', { timeout: 10_000 });
      if (label !== 'Filter runs') {
        throw new UiTestError(
          `the filter input's aria-label is ${JSON.stringify(label)}, expected "Filter runs"`,
        );
      }
      const all = await shownRunIds(dashboard);
      const prompts = await dashboard
        .locator(RUN_ROWS)
        .evaluateAll((rows) => rows.map((row) => row.querySelector('.run-prompt')?.textContent ?? ''));
      const expected = all.filter((_, at) => prompts[at].toLowerCase().includes(KEYBOARD_WORD));
      if (expected.length === 0 || expected.length >= all.length) {
        throw new UiTestError(
          `needs runs with and without "${KEYBOARD_WORD}" in their prompt (the earlier cases start them); the list shows ${JSON.stringify(prompts)}`,
        );
      }

      await filter.fill('');
      await filter.pressSequentially(KEYBOARD_WORD.toUpperCase());
      let shown = [];
      await poll(
        `the list to narrow to ${JSON.stringify(expected)} for "${KEYBOARD_WORD.toUpperCase()}"`,
        5_000,
        async () => {
          shown = await shownRunIds(dashboard).catch(() => []);
          return JSON.stringify(shown) === JSON.stringify(expected);
        },
      ).catch((error) => {
        throw new UiTestError(`${error.message}; it shows ${JSON.stringify(shown)}`);
      });
      const count = await dashboard.locator('#runs-title .count').innerText();
      if (count.trim() !== `${expected.length} of ${all.length}`) {
        throw new UiTestError(
          `the run count says ${JSON.stringify(count)}, expected "${expected.length} of ${all.length}"`,
        );
      }
      await shot('dashboard-filtered');

      await filter.pressSequentially(' no-such-word');
      await poll(
        'the list to say no run matches',
        5_000,
        async () =>
          (await dashboard.locator(RUN_ROWS).count()) === 0 &&
          (await dashboard
            .locator('#run-list .placeholder', { hasText: 'No run matches the filter.' })
            .isVisible()),
      );

      await filter.fill('');
      await poll(
        `the cleared filter to show all ${all.length} runs again, in the same order`,
        5_000,
        async () => {
          shown = await shownRunIds(dashboard).catch(() => []);
          return JSON.stringify(shown) === JSON.stringify(all);
        },
      ).catch((error) => {
        throw new UiTestError(`${error.message}; it shows ${JSON.stringify(shown)}`);
      });
    },
  },
  {
    name: 'the dashboard\u2019s CSP allows nothing by default and scripts only by its nonce',
    async run({ page, say }) {
      const dashboard = webviewFrame(page);
      const meta = dashboard.locator('meta[http-equiv="Content-Security-Policy"]');
      if ((await meta.count()) !== 1) {
        throw new UiTestError(`the webview document has ${await meta.count()} CSP meta elements, expected 1`);
      }
      const content = await meta.getAttribute('content');
      say(`dashboard CSP: ${content}`);
      const csp = parseCsp(content);
      const fail = (why) => {
        throw new UiTestError(`${why}; the CSP is ${JSON.stringify(content)}`);
      };
      if (csp.get('default-src')?.join(' ') !== "'none'") fail(`default-src is not exactly 'none'`);
      const scriptSources = csp.get('script-src');
      if (!scriptSources || scriptSources.length !== 1) fail('script-src does not name exactly one source');
      const nonce = /^'nonce-([A-Za-z0-9+/_-]{16,}={0,2})'$/.exec(scriptSources[0])?.[1];
      if (!nonce) fail(`script-src allows ${scriptSources[0]}, not a nonce of 16 characters or more`);
      for (const name of ['script-src-elem', 'script-src-attr', 'worker-src', 'child-src', 'frame-src']) {
        if (csp.has(name)) fail(`it has ${name}, which widens what runs beside script-src`);
      }
      const unsafe = [...csp].filter(([, sources]) =>
        sources.some((source) => /^'unsafe-(inline|eval|hashes)'$|^'wasm-unsafe-eval'$/i.test(source)),
      );
      if (unsafe.length > 0) fail(`${unsafe.map(([name]) => name).join(', ')} allows an 'unsafe-…' source`);
      const network = networkSources(csp);
      if (network.length > 0) fail(`sources that reach the network: ${network.join(', ')}`);

      // The dashboard's script carries that nonce, and the policy is enforced: an inline script does not run.
      const scripts = await dashboard
        .locator('script[src]')
        .evaluateAll((elements) =>
          elements.map((element) => ({ src: element.getAttribute('src'), nonce: element.nonce })),
        );
      const own = scripts.filter((script) => /\/dist\/media\/dashboard\.js$/.test(script.src ?? ''));
      if (own.length !== 1 || own[0].nonce !== nonce) {
        throw new UiTestError(
          `expected one dist/media/dashboard.js script with the CSP's nonce, found ${JSON.stringify(scripts)}`,
        );
      }
      const blocked = await dashboard.locator('body').evaluate(
        (body) =>
          new Promise((resolve) => {
            const doc = body.ownerDocument;
            let violated;
            doc.addEventListener(
              'securitypolicyviolation',
              (event) => (violated = event.effectiveDirective),
              {
                once: true,
              },
            );
            const script = doc.createElement('script');
            script.textContent = 'window.__tandemInlineRan = true;';
            doc.body.append(script);
            script.remove();
            setTimeout(() => resolve({ ran: doc.defaultView.__tandemInlineRan === true, violated }), 100);
          }),
      );
      if (blocked.ran || !blocked.violated?.startsWith('script-src')) {
        throw new UiTestError(
          `an inline script injected into the dashboard ${blocked.ran ? 'ran' : 'did not run'} and the violation reported was ${JSON.stringify(blocked.violated)}`,
        );
      }
    },
  },
  {
    name: 'the dashboard webview requests only local resources while it opens and shows a run',
    async run({ page, say }) {
      // Close the open dashboard, so that the recording sees a whole load: the host page, HTML, CSS, script.
      await runCommand(page, 'View: Close All Editors');
      await poll(
        'the dashboard webview to close',
        10_000,
        async () => (await page.locator('iframe.webview').count()) === 0,
      );
      const recording = recordWebviewRequests(page);
      let recorded;
      try {
        await runCommand(page, 'Tandem: Open Dashboard');
        const dashboard = webviewFrame(page);
        const first = dashboard.locator(RUN_ROWS).first();
        await poll('the reopened dashboard to list a run', 20_000, () =>
          first.isVisible().catch(() => false),
        );
        const runId = await first.getAttribute('data-run-id');
        await first.click({ timeout: 10_000 });
        await poll(`the detail of run ${runId}`, 10_000, async () =>
          (
            await dashboard
              .locator('#detail-title')
              .innerText({ timeout: 500 })
              .catch(() => '')
          ).includes(runId),
        );
        await dashboard.locator('#run-filter').fill(runId);
        await dashboard.locator('#run-filter').fill('');
      } finally {
        recorded = await recording.stop();
      }
      const origin = new URL(page.url()).origin;
      say(`the dashboard webview made ${recorded.length} requests:`);
      for (const { url, response } of recorded) {
        say(
          `  ${response?.status() ?? 'no answer'}${response?.fromServiceWorker() ? ' (service worker)' : ''} ${url.slice(0, 160)}`,
        );
      }
      const loaded = (pattern) => recorded.some(({ url }) => pattern.test(url));
      if (!loaded(/\/dist\/media\/dashboard\.js(\?|$)/) || !loaded(/\/media\/dashboard\.css(\?|$)/)) {
        throw new UiTestError(
          `the recording missed the dashboard's own script and style sheet, so it proves nothing; it saw ${JSON.stringify(recorded.map(({ url }) => url))}`,
        );
      }
      const remote = recorded
        .map((entry) => ({ url: entry.url, why: remoteReason(entry, origin) }))
        .filter(({ why }) => why !== undefined);
      if (remote.length > 0) {
        throw new UiTestError(
          `the dashboard webview made ${remote.length} request(s) that are not local:\n${remote.map(({ url, why }) => `${url}: ${why}`).join('\n')}`,
        );
      }
    },
  },
];
