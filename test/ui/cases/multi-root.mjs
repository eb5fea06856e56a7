// A multi-root workspace (alpha and beta, opened from a .code-workspace file): each folder has its own MCP
// server, jail and .tandem/ state. A run started from the command palette in beta writes in beta only and is
// recorded in beta's history only, and the Runs view groups the runs by folder. Runs in the multi-root session
// only; the single-folder cases never run there.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  UiTestError,
  openView,
  pickQuickItem,
  poll,
  runCommand,
  sidebarPane,
  treeRows,
  typeInput,
} from '../workbench.mjs';

export const layout = 'multi-root';

const FILE = 'multi.txt';
const PROMPT = `[[scenario:write path=${FILE}]] Add ${FILE}.`;
/** The Runs view labels a run with its strategy and the prompt without the scenario tag. */
const RUN_LABEL = `single_worker: Add ${FILE}.`;
const RUN_TIMEOUT_MS = 60_000;

/** The parsed lines of a folder's .tandem/runs.jsonl; undefined when there is no such file. */
function historyOf(folder) {
  const index = path.join(folder, '.tandem', 'runs.jsonl');
  if (!existsSync(index)) return undefined;
  const lines = readFileSync(index, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '');
  return lines.map((line) => {
    try {
      return { line, record: JSON.parse(line) };
    } catch {
      return { line, record: undefined }; // a line being appended right now
    }
  });
}

function foldersOf(folders) {
  if (!folders?.alpha || !folders?.beta) {
    throw new UiTestError(
      `the multi-root fixture gave no alpha and beta folders: ${JSON.stringify(folders ?? null)}`,
    );
  }
  return folders;
}

function describeRows(rows) {
  return rows.map((row) => `${'  '.repeat(Math.max(row.level - 1, 0))}${row.label}`).join(' | ') || 'none';
}

export const cases = [
  {
    name: 'multi-root: Run Strategy asks for the folder and writes and records the run in beta only',
    async run({ page, folders }) {
      const { alpha, beta } = foldersOf(folders);
      await runCommand(page, 'Tandem: Run Strategy');
      await pickQuickItem(page, 'beta', { placeholder: 'Workspace folder' });
      // Picking the folder starts its server before the strategies are offered.
      await pickQuickItem(page, 'single_worker', { placeholder: 'Strategy', timeoutMs: 30_000 });
      await typeInput(page, PROMPT);

      let seen = 'nothing yet';
      const run = await poll(
        `beta/${FILE} and a finished run in beta/.tandem/runs.jsonl`,
        RUN_TIMEOUT_MS,
        () => {
          const history = historyOf(beta);
          const lines = (history ?? []).filter(({ record }) => record?.prompt?.includes(`Add ${FILE}.`));
          const last = lines.at(-1)?.record;
          seen =
            `beta/${FILE} ${existsSync(path.join(beta, FILE)) ? 'exists' : 'missing'}, ` +
            (history === undefined
              ? 'no beta/.tandem/runs.jsonl'
              : `run ${last ? `${last.id} ${last.status}` : 'not in beta/.tandem/runs.jsonl'}`);
          if (!last || !['succeeded', 'failed', 'partial', 'cancelled', 'interrupted'].includes(last.status))
            return undefined;
          return last;
        },
        250,
      ).catch((error) => {
        throw new UiTestError(`${error.message} (${seen})`);
      });
      if (run.status !== 'succeeded' || run.strategy !== 'single_worker' || run.applied !== true) {
        throw new UiTestError(
          `the run in beta ended ${run.status} (strategy ${run.strategy}, applied ${run.applied}): ${run.outcome ?? ''} ${run.decision ?? ''}`,
        );
      }
      if (!existsSync(path.join(beta, FILE))) {
        throw new UiTestError(`run ${run.id} succeeded and was applied, but beta/${FILE} does not exist`);
      }
      if (existsSync(path.join(alpha, FILE))) {
        throw new UiTestError(`alpha/${FILE} exists: the run in beta wrote into alpha`);
      }
      const alphaLines = (historyOf(alpha) ?? []).filter(({ line }) => line.includes(FILE));
      if (alphaLines.length > 0) {
        throw new UiTestError(
          `alpha/.tandem/runs.jsonl records the run started in beta: ${alphaLines[0].line.slice(0, 300)}`,
        );
      }
    },
  },
  {
    name: 'multi-root: the Runs view shows alpha and beta, and the run under beta',
    async run({ page, shot }) {
      await openView(page, 'Tandem');
      const runs = await sidebarPane(page, 'Runs');
      let rows = [];
      await poll('the Runs view to show the folder rows alpha and beta', 20_000, async () => {
        rows = await treeRows(runs).catch(() => []);
        const top = rows.filter((row) => row.level === 1).map((row) => row.label);
        return top.length === 2 && top[0] === 'alpha' && top[1] === 'beta';
      }).catch((error) => {
        throw new UiTestError(`${error.message}; the view shows: ${describeRows(rows)}`);
      });

      const betaRow = runs.locator('.monaco-list-row[aria-level="1"]').filter({
        has: page.locator('.label-name', { hasText: /^\s*beta\s*$/ }),
      });
      if ((await betaRow.first().getAttribute('aria-expanded')) !== 'true') {
        await betaRow.first().click({ timeout: 10_000 });
      }
      await poll(`the run row "${RUN_LABEL}…" under beta, and nothing under alpha`, 20_000, async () => {
        rows = await treeRows(runs).catch(() => []);
        const at = rows.findIndex((row) => row.level === 1 && row.label === 'beta');
        const alphaAt = rows.findIndex((row) => row.level === 1 && row.label === 'alpha');
        if (at < 0 || alphaAt < 0 || alphaAt > at) return false;
        if (rows.slice(alphaAt + 1, at).length > 0) return false;
        const under = [];
        for (const row of rows.slice(at + 1)) {
          if (row.level <= 1) break;
          if (row.level === 2) under.push(row.label);
        }
        return under.some((label) => label.startsWith(RUN_LABEL));
      }).catch((error) => {
        throw new UiTestError(`${error.message}; the view shows: ${describeRows(rows)}`);
      });
      await shot('sidebar');
    },
  },
];
