// Commands a person runs from the command palette, checked by what the workbench shows afterwards.
import { UiTestError, poll, runCommand, waitForNotification } from '../workbench.mjs';

export const cases = [
  {
    name: 'Tandem: Show Output shows the Tandem channel with its activation line',
    async run({ page, shot }) {
      await runCommand(page, 'Tandem: Show Output');
      const panel = page.locator('.part.panel');
      const channel = panel.locator('select[aria-label="Switch Output"]').filter({ visible: true });
      let selected;
      await poll('the Output panel to show the "Tandem" channel', 15_000, async () => {
        selected = await channel
          .first()
          .inputValue({ timeout: 1_000 })
          .catch(() => undefined);
        return selected === 'Tandem';
      }).catch(async (error) => {
        const options = await channel
          .first()
          .locator('option')
          .allInnerTexts()
          .catch(() => []);
        const panelShown = await panel.isVisible().catch(() => false);
        throw new UiTestError(
          `${error.message}; the panel is ${panelShown ? 'shown' : 'hidden'}, its channel selector shows ` +
            `${JSON.stringify(selected)} of ${JSON.stringify(options)}`,
        );
      });
      const lines = panel.locator('.monaco-editor .view-lines');
      const text = await poll('a line containing "activated" in the Tandem channel', 15_000, async () => {
        const shown = (await lines.allInnerTexts().catch(() => [])).join('\n').replace(/\u00a0/g, ' ');
        return /Tandem \S+ activated/.test(shown) ? shown : undefined;
      });
      if (!/\[info\]/.test(text)) {
        throw new UiTestError(
          `the activation line has no [info] level: ${JSON.stringify(text.slice(0, 200))}`,
        );
      }
      await shot('output-channel');
    },
  },
  {
    name: 'Tandem: Copy MCP Config for Other Clients says the config for the folder was copied',
    async run({ page, shot }) {
      await runCommand(page, 'Tandem: Copy MCP Config for Other Clients');
      const notification = await waitForNotification(page, /MCP config for/);
      const text = await notification.innerText();
      if (!/MCP config for ui-workspace copied/.test(text)) {
        throw new UiTestError(
          `the notification does not name the folder ui-workspace: ${JSON.stringify(text)}`,
        );
      }
      await shot('copy-mcp-config');
    },
  },
];
