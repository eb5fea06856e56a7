// The Tandem side bar and dashboard: a run started from the command palette shows up in the Runs view and in
// the dashboard, and the dashboard's Cancel button cancels it. The offline model's `hang` scenario keeps the
// run's worker busy until it is cancelled.
import {
  UiTestError,
  hidePanel,
  openView,
  pickQuickItem,
  poll,
  runCommand,
  sidebarPane,
  typeInput,
  webviewFrame,
} from '../workbench.mjs';

/** These cases need the dashboard; until package.json contributes it, the runner skips this file. */
export function skipReason(manifest) {
  const commands = manifest.contributes?.commands ?? [];
  return commands.some((entry) => entry.command === 'tandem.openDashboard')
    ? undefined
    : 'package.json contributes no command "tandem.openDashboard" yet';
}

const PROMPT = '[[scenario:hang]] Wait for the cancel button.';
/** How a run of that prompt is labelled in the Runs view: its strategy and the prompt without the tag. */
const RUN_LABEL = /single_worker.*Wait for the cancel button/;

/** Fails at once, with its text, when a modal dialog stands in the way of the next step. */
async function noDialog(page, when) {
  const dialog = page.locator('.monaco-dialog-box');
  if (await dialog.isVisible().catch(() => false)) {
    const text = (await dialog.innerText().catch(() => '')).replace(/\s+/g, ' ').trim();
    throw new UiTestError(`a dialog appeared ${when}: ${JSON.stringify(text.slice(0, 300))}`);
  }
}

export const cases = [
  {
    name: 'Run Strategy starts a run that the Runs view lists, and the dashboard cancels it',
    async run({ page, shot }) {
      await runCommand(page, 'Tandem: Run Strategy');
      await pickQuickItem(page, 'single_worker');
      await typeInput(page, PROMPT);
      await noDialog(page, 'after the prompt was entered');

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
      const sameRun = dashboard.locator(`#runs [data-run-id="${runId}"]`).first();
      let status;
      await poll(`run ${runId} to show data-status="cancelled"`, 20_000, async () => {
        await noDialog(page, 'after Cancel was clicked');
        status = await sameRun.getAttribute('data-status', { timeout: 500 }).catch(() => undefined);
        return status === 'cancelled';
      }).catch((error) => {
        throw new UiTestError(`${error.message}; its data-status stayed ${JSON.stringify(status)}`);
      });
      // The list row changes first; the run's detail and the status bar follow. Wait for both, so the
      // screenshot shows the settled screen.
      await poll(
        `the dashboard's "cancel-run" button to be disabled for cancelled run ${runId}`,
        10_000,
        () => cancel.isDisabled({ timeout: 500 }).catch(() => false),
      );
      const statusItem = page.locator('.part.statusbar .statusbar-item', { hasText: /Tandem/ });
      await poll('the status bar to stop counting the run as running', 10_000, async () => {
        const text = (await statusItem.allInnerTexts().catch(() => [])).join(' ');
        return text !== '' && !/running/i.test(text);
      });
      await shot('dashboard-cancelled');
    },
  },
];
