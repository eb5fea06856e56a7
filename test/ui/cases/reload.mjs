// Reloading the editor page while a run is working: the old extension host goes, with the run's worker, and
// the reloaded editor finds the run in the folder's state on disk, ended (cancelled by the old host's
// deactivation, or marked interrupted by start-up recovery), lists it in the Runs view and shows it in the
// dashboard. The offline model's `hang` scenario keeps the worker busy until the reload. Runs last in its
// session (the files run in name order): a reload resets what the cases before it left on screen.
import { readFileSync, readlinkSync, readdirSync, realpathSync } from 'node:fs';
import path from 'node:path';
import {
  UiTestError,
  activateTandem,
  poll,
  runCommand,
  runStrategy,
  sidebarPane,
  webviewFrame,
} from '../workbench.mjs';

const PROMPT = '[[scenario:hang]] Work until the page reloads.';
const RUN_LABEL = /single_worker.*Work until the page reloads/;
const ENDED = new Set(['cancelled', 'interrupted']);

/** The folder's runs as the index on disk holds them: the last line of each id wins. */
function runsOnDisk(workspace) {
  let text;
  try {
    text = readFileSync(path.join(workspace, '.tandem', 'runs.jsonl'), 'utf8');
  } catch {
    return new Map();
  }
  const runs = new Map();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const record = JSON.parse(line);
      runs.set(record.id, record);
    } catch {
      // A line being written while it is read: the next poll reads it whole.
    }
  }
  return runs;
}

/** The run of PROMPT on disk, if it is there. */
function promptRun(workspace) {
  return [...runsOnDisk(workspace).values()].find((run) => run.prompt === PROMPT);
}

/** The worker CLIs (codex and gemini, through node or native) as their command lines show them. */
const WORKER_ARGV = /(^|[/\s])(codex|gemini)(\.js|-[\w.-]+)?(\s|$)/;

/**
 * Worker CLI processes working in the folder or in an isolated copy under it (their cwd is inside it): pid and
 * command line. The editor's own helpers (a language server) can work there too; they are not counted.
 */
function processesIn(workspace) {
  const inside = realpathSync(workspace) + path.sep;
  const found = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (!`${cwd}${path.sep}`.startsWith(inside)) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      if (WORKER_ARGV.test(argv)) found.push({ pid: Number(entry), argv: argv.slice(0, 160) });
    } catch {
      // Gone between the listing and the read, or not ours to read.
    }
  }
  return found;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

export const cases = [
  {
    name: 'a page reload ends the working run, and the reloaded editor lists it from disk with no worker left',
    async run({ page, shot, workspace, say }) {
      await runStrategy(page, PROMPT);
      const started = await poll('the run to be recorded as running on disk', 20_000, () => {
        const run = promptRun(workspace);
        return run?.status === 'running' ? run : undefined;
      });
      const workers = await poll(`a worker of run ${started.id} working in the folder`, 20_000, () => {
        const found = processesIn(workspace);
        return found.length > 0 ? found : undefined;
      });
      say(
        `before the reload: run ${started.id} running in host ${started.host.pid}, workers ${JSON.stringify(workers)}`,
      );

      const reloaded = Date.now();
      await page.reload({ timeout: 90_000 });
      await page.waitForSelector('.monaco-workbench .part.statusbar', { timeout: 90_000 });
      await activateTandem(page, { timeoutMs: 60_000 });
      say(`the reloaded editor activated Tandem in ${Date.now() - reloaded} ms`);

      let ended;
      await poll(
        `run ${started.id} to be recorded as cancelled or interrupted after the reload`,
        30_000,
        () => {
          ended = promptRun(workspace);
          return ENDED.has(ended?.status);
        },
      ).catch((error) => {
        throw new UiTestError(`${error.message}; it is ${JSON.stringify(ended?.status)}`);
      });
      if (!ended.outcome)
        throw new UiTestError(`run ${started.id} ended ${ended.status} with no outcome recorded`);
      let left;
      await poll('no worker process left in the folder', 15_000, () => {
        left = processesIn(workspace);
        return left.length === 0;
      }).catch((error) => {
        throw new UiTestError(`${error.message}; still there: ${JSON.stringify(left)}`);
      });
      if (alive(started.host.pid)) {
        throw new UiTestError(
          `the extension host ${started.host.pid} that ran ${started.id} outlived the reload`,
        );
      }
      say(`after the reload: run ${started.id} ${ended.status}: ${ended.outcome}`);

      const runs = await sidebarPane(page, 'Runs');
      const row = runs.locator('.monaco-list-row', { hasText: RUN_LABEL }).first();
      await poll(`the Runs view to list run ${started.id} as ${ended.status}`, 20_000, async () => {
        const text = await row.innerText({ timeout: 500 }).catch(() => '');
        return text.includes(ended.status);
      });
      await shot('reloaded-runs');

      await runCommand(page, 'Tandem: Open Dashboard');
      const dashboard = webviewFrame(page);
      const entry = dashboard.locator(`#runs [data-run-id="${started.id}"]`).first();
      let status;
      await poll(`the dashboard to show run ${started.id} as ${ended.status}`, 20_000, async () => {
        status = await entry.getAttribute('data-status', { timeout: 500 }).catch(() => undefined);
        return status === ended.status;
      }).catch((error) => {
        throw new UiTestError(`${error.message}; its data-status is ${JSON.stringify(status)}`);
      });
      await runCommand(page, 'View: Close All Editors');
    },
  },
];
