// Driving the VS Code workbench from playwright the way a person does: the command palette, quick picks and
// input boxes, the activity bar, notifications and webviews. Every wait is bounded and fails with a sentence
// that says what was expected on screen.

/** A UI expectation that did not hold: its message says what was expected, the runner prints no stack. */
export class UiTestError extends Error {}

const DEFAULT_TIMEOUT_MS = 15_000;
/** How long one opening of the command palette waits for a command before it is reopened. */
const PALETTE_RETRY_MS = 2_000;

const QUICK_INPUT = '.quick-input-widget';
const QUICK_INPUT_BOX = `${QUICK_INPUT} .quick-input-box input`;
const QUICK_ROWS = `${QUICK_INPUT} .quick-input-list .monaco-list-row`;

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Runs `action` (a playwright wait); a timeout becomes a UiTestError that says what did not appear. */
async function expectWithin(what, timeoutMs, action) {
  try {
    return await action(timeoutMs);
  } catch (error) {
    if (error?.name === 'TimeoutError') {
      throw new UiTestError(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    }
    throw error;
  }
}

/** Polls `check` (which returns a value, or undefined while not there yet) until it answers or time is up. */
export async function poll(what, timeoutMs, check, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() >= deadline)
      throw new UiTestError(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The quick-input rows whose label is exactly `label` (highlighting splits it into spans; text joins them). */
function quickRow(page, label) {
  return page.locator(QUICK_ROWS).filter({
    has: page.locator('.label-name', { hasText: new RegExp(`^\\s*${escapeRegExp(label)}\\s*$`) }),
  });
}

async function chooseRow(page, row, what, timeoutMs) {
  await expectWithin(what, timeoutMs, (timeout) => row.first().waitFor({ state: 'visible', timeout }));
  // A click on the row itself, not Enter: the list can re-sort while commands and items still arrive (an
  // extension activating), and Enter would run whichever row has become focused. The click's hit-target check
  // makes sure the pointer lands on this row.
  await row.first().click({ timeout: timeoutMs });
}

async function openPalette(page, timeoutMs) {
  const box = page.locator(QUICK_INPUT_BOX);
  const opened = (timeout) =>
    box
      .waitFor({ state: 'visible', timeout })
      .then(() => true)
      .catch(() => false);
  // F1 reaches the workbench's keybindings from an editor or a webview too; Ctrl+Shift+P is the fallback.
  await page.keyboard.press('F1');
  if (await opened(Math.min(2_000, timeoutMs))) return box;
  await page.keyboard.press('Control+Shift+P');
  if (await opened(timeoutMs)) return box;
  throw new UiTestError(`timed out after ${timeoutMs / 1000}s waiting for the command palette to open (F1)`);
}

/**
 * Runs the command titled `title` ("Category: Title") from the command palette. The palette lists what is
 * registered when it opens, and an extension's commands arrive a few seconds after the workbench renders, so
 * it is reopened until the command shows up or the time is up.
 */
export async function runCommand(page, title, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const deadline = Date.now() + timeoutMs;
  const row = quickRow(page, title);
  for (;;) {
    const box = await openPalette(page, Math.max(deadline - Date.now(), 1_000));
    // The palette opens with ">"; filling replaces it, so it is typed again.
    await box.fill(`>${title}`);
    const attemptMs = Math.min(PALETTE_RETRY_MS, deadline - Date.now());
    const listed = await row
      .first()
      .waitFor({ state: 'visible', timeout: Math.max(attemptMs, 1) })
      .then(() => true)
      .catch(() => false);
    if (listed) break;
    await page.keyboard.press('Escape');
    if (Date.now() >= deadline) {
      throw new UiTestError(
        `timed out after ${timeoutMs / 1000}s waiting for the command palette to list "${title}"`,
      );
    }
  }
  await chooseRow(page, row, `the command palette to list "${title}"`, timeoutMs);
}

/**
 * Picks the item labelled `label` in the quick pick that is open or about to open. With `placeholder`, the
 * quick pick must show that placeholder (which quick pick it is), or this fails saying which one was shown.
 */
export async function pickQuickItem(page, label, { timeoutMs = DEFAULT_TIMEOUT_MS, placeholder } = {}) {
  const box = page.locator(QUICK_INPUT_BOX);
  await expectWithin(`a quick pick offering "${label}"`, timeoutMs, (timeout) =>
    box.waitFor({ state: 'visible', timeout }),
  );
  if (placeholder !== undefined) {
    let shown;
    await poll(`a quick pick with the placeholder "${placeholder}"`, timeoutMs, async () => {
      shown = await box.getAttribute('placeholder', { timeout: 500 }).catch(() => undefined);
      return shown === placeholder;
    }).catch((error) => {
      throw new UiTestError(`${error.message}; the quick input's placeholder was ${JSON.stringify(shown)}`);
    });
  }
  await chooseRow(page, quickRow(page, label), `the quick pick to offer "${label}"`, timeoutMs);
}

/**
 * Types `text` into the input box that is open or about to open and presses Enter. An input box is the quick
 * input with no list rows: this waits for that, so a quick pick closing before it is not typed into.
 */
export async function typeInput(page, text, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const box = page.locator(QUICK_INPUT_BOX);
  const rows = page.locator(QUICK_ROWS).filter({ visible: true });
  await poll('an input box (the quick input, empty and with no list)', timeoutMs, async () => {
    if (!(await box.isVisible().catch(() => false))) return false;
    const value = await box.inputValue({ timeout: 500 }).catch(() => undefined);
    return value === '' && (await rows.count()) === 0;
  });
  await box.fill(text);
  await box.press('Enter');
  await expectWithin('the input box to close after Enter', timeoutMs, (timeout) =>
    page.locator(QUICK_INPUT).waitFor({ state: 'hidden', timeout }),
  );
}

/**
 * Shows the view container titled `containerTitle` in the side bar (activity bar), without toggling it off.
 * While the workbench restores its layout (after a load or a reload) it can hide the side bar again after a
 * click, so this clicks again, at most every 2 s, until the side bar shows the container or the time is up.
 */
export async function openView(page, containerTitle, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const icon = page.locator(
    `.part.activitybar .action-item:has(> a.action-label[aria-label^="${containerTitle}"])`,
  );
  await expectWithin(`the activity bar to show "${containerTitle}"`, timeoutMs, (timeout) =>
    icon.first().waitFor({ state: 'visible', timeout }),
  );
  const sidebar = page.locator('.part.sidebar');
  const title = sidebar.locator('.composite.title .title-label', {
    hasText: new RegExp(escapeRegExp(containerTitle), 'i'),
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await title.isVisible().catch(() => false)) return sidebar;
    // Clicking the container that is already shown would hide the side bar.
    const shown = await icon
      .first()
      .evaluate((element) => element.classList.contains('checked'))
      .catch(() => false);
    if (!shown || !(await sidebar.isVisible().catch(() => false))) {
      await icon.first().click({ timeout: Math.max(deadline - Date.now(), 1_000) });
    }
    const appeared = await title
      .waitFor({ state: 'visible', timeout: Math.max(Math.min(2_000, deadline - Date.now()), 1) })
      .then(() => true)
      .catch(() => false);
    if (appeared) return sidebar;
    if (Date.now() >= deadline) {
      throw new UiTestError(
        `timed out after ${timeoutMs / 1000}s waiting for the side bar to show "${containerTitle}"`,
      );
    }
  }
}

/** The pane (view) titled `viewTitle` in the side bar, e.g. "Runs"; expanded if it was collapsed. */
export async function sidebarPane(page, viewTitle, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const pane = page.locator('.part.sidebar .pane').filter({
    has: page.locator('.pane-header .title', { hasText: new RegExp(`^${escapeRegExp(viewTitle)}$`, 'i') }),
  });
  await expectWithin(`the side bar view "${viewTitle}"`, timeoutMs, (timeout) =>
    pane.first().waitFor({ state: 'visible', timeout }),
  );
  const header = pane.first().locator('.pane-header');
  if ((await header.getAttribute('aria-expanded')) === 'false') await header.click({ timeout: timeoutMs });
  return pane.first();
}

/**
 * The rows a tree view (e.g. a side bar pane) shows, top to bottom: depth (1 = top level), label and whether
 * the row is expanded (undefined for a leaf). Only rendered rows: enough for short trees.
 */
export async function treeRows(pane) {
  return pane.locator('.monaco-list-row').evaluateAll((rows) =>
    rows
      .map((row) => ({
        top: Number.parseFloat(row.style.top) || 0,
        level: Number(row.getAttribute('aria-level') ?? 0),
        label: (row.querySelector('.label-name')?.textContent ?? row.textContent ?? '').trim(),
        expanded:
          row.getAttribute('aria-expanded') === null
            ? undefined
            : row.getAttribute('aria-expanded') === 'true',
      }))
      // The list positions its rows absolutely and may keep them out of order in the DOM.
      .sort((a, b) => a.top - b.top)
      .map(({ level, label, expanded }) => ({ level, label, expanded })),
  );
}

/** Hides the bottom panel (Output, Terminal...) when it is shown, to give the editor area the full height. */
export async function hidePanel(page, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const panel = page.locator('.part.panel');
  if (!(await panel.isVisible().catch(() => false))) return;
  await runCommand(page, 'View: Hide Panel', { timeoutMs });
  await expectWithin('the panel to hide', timeoutMs, (timeout) =>
    panel.waitFor({ state: 'hidden', timeout }),
  );
}

/**
 * The content of the webview shown last: a webview is an `iframe.webview` (the host) around `#active-frame`
 * (the extension's document). Use it like a page: `webviewFrame(page).locator('#runs')`.
 */
export function webviewFrame(page) {
  return page.locator('iframe.webview').last().contentFrame().locator('#active-frame').contentFrame();
}

/**
 * Waits for a notification whose text matches `textRegex` and returns its locator. With the smoke-test driver
 * on (code-server needs it to load a development extension) the workbench shows no toasts, so this looks in
 * the notification center, opening it if needed; a toast is taken too, for a workbench that shows them.
 */
export async function waitForNotification(page, textRegex, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: textRegex }).first();
  const center = page.locator('.notifications-center');
  const item = center.locator('.notification-list-item', { hasText: textRegex }).first();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await toast.isVisible().catch(() => false)) return toast;
    if (!(await center.isVisible().catch(() => false))) {
      await runCommand(page, 'Notifications: Show Notifications', {
        timeoutMs: Math.max(deadline - Date.now(), 2_000),
      });
      // Let the palette finish closing, so a screenshot right after shows the notification, not the palette.
      await page
        .locator(QUICK_INPUT)
        .waitFor({ state: 'hidden', timeout: 2_000 })
        .catch(() => undefined);
    }
    if (await item.isVisible().catch(() => false)) return item;
    if (Date.now() >= deadline) {
      const seen = await center
        .locator('.notification-list-item')
        .allInnerTexts()
        .catch(() => []);
      throw new UiTestError(
        `timed out after ${timeoutMs / 1000}s waiting for a notification matching ${textRegex}` +
          ` (the notification center holds: ${seen.length ? seen.map((text) => JSON.stringify(text.split('\n')[0])).join(', ') : 'nothing'})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Closes what a case may have left open: quick input, the notification center (cleared), dialogs. */
export async function dismissTransient(page) {
  for (let i = 0; i < 2; i += 1) await page.keyboard.press('Escape').catch(() => undefined);
  const center = page.locator('.notifications-center');
  if (await center.isVisible().catch(() => false)) {
    await runCommand(page, 'Notifications: Clear All Notifications', { timeoutMs: 5_000 }).catch(
      () => undefined,
    );
    await runCommand(page, 'Notifications: Hide Notifications', { timeoutMs: 5_000 }).catch(() => undefined);
  }
}

/** Fails at once, with its text, when a modal dialog stands in the way of the next step. */
export async function noDialog(page, when) {
  const dialog = page.locator('.monaco-dialog-box');
  if (await dialog.isVisible().catch(() => false)) {
    const text = (await dialog.innerText().catch(() => '')).replace(/\s+/g, ' ').trim();
    throw new UiTestError(`a dialog appeared ${when}: ${JSON.stringify(text.slice(0, 300))}`);
  }
}

/** Starts a single_worker run of `prompt` from the command palette. */
export async function runStrategy(page, prompt) {
  await runCommand(page, 'Tandem: Run Strategy');
  await pickQuickItem(page, 'single_worker');
  await typeInput(page, prompt);
  await noDialog(page, 'after the prompt was entered');
}

/**
 * Opens Tandem's side bar, which activates the extension, and waits for its status bar item: the extension
 * host has started and Tandem has activated.
 */
export async function activateTandem(page, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  await openView(page, 'Tandem', { timeoutMs });
  await expectWithin(`Tandem's status bar item (Tandem activated)`, timeoutMs, (timeout) =>
    page
      .locator('.part.statusbar .statusbar-item', { hasText: /Tandem/ })
      .first()
      .waitFor({ state: 'visible', timeout }),
  );
}
