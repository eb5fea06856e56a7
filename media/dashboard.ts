// Dashboard webview front end. It runs in the webview's sandbox under a strict CSP, loads nothing remote,
// builds every element with textContent (never HTML from data), and talks to the extension host only through
// postMessage: each message it receives is validated with the shared protocol before anything reads it.
import {
  LIMITS,
  parseToWebview,
  type ChangeView,
  type DetailMessage,
  type EventView,
  type EventsMessage,
  type FolderView,
  type FromWebview,
  type NoticeMessage,
  type RunView,
  type StateMessage,
  type StepView,
  type WorkerView,
} from '../src/extension/dashboard-protocol';

interface WebviewApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): WebviewApi;

interface Target {
  folderKey: string;
  runId: string;
}

/** What survives the webview being hidden (it is torn down and loads again): the selection and the filter. */
interface Saved {
  selected: Target | null;
  filter: string;
}

const api = acquireVsCodeApi();
const AGE_REFRESH_MS = 30_000;
const INFO_NOTICE_MS = 8_000;

function send(message: FromWebview): void {
  api.postMessage(message);
}

function readSaved(): Saved {
  const raw = api.getState() as Partial<Saved> | undefined;
  const selected = raw?.selected;
  const valid =
    typeof selected === 'object' &&
    selected !== null &&
    typeof selected.folderKey === 'string' &&
    typeof selected.runId === 'string';
  return {
    selected: valid ? { folderKey: selected.folderKey, runId: selected.runId } : null,
    filter: typeof raw?.filter === 'string' ? raw.filter : '',
  };
}

// ---- DOM helpers: elements from tag, attributes and text children only ----

type Attrs = Record<string, string | number | boolean | null | undefined>;
type Child = Node | string | null | undefined | false;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') element.className = String(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return element;
}

/** Re-renders a container, giving focus back to the element that had it (matched by data-focus-key). */
function replaceKeepingFocus(container: HTMLElement, ...children: Child[]): void {
  const active = document.activeElement;
  const key =
    active instanceof HTMLElement && container.contains(active) ? active.dataset.focusKey : undefined;
  container.replaceChildren(...children.filter((child): child is Node | string => !!child));
  if (key === undefined) return;
  const again = container.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(key)}"]`);
  if (again && !(again instanceof HTMLButtonElement && again.disabled)) again.focus({ preventScroll: true });
}

// ---- Formatting ----

const RUN_ICONS: Record<string, string> = {
  queued: '◷',
  running: '◐',
  succeeded: '✓',
  failed: '✗',
  partial: '◑',
  cancelled: '⊘',
  interrupted: '!',
};
const STEP_ICONS: Record<string, string> = {
  running: '◐',
  succeeded: '✓',
  failed: '✗',
  timed_out: '⏱',
  cancelled: '⊘',
  auth_error: '!',
  rate_limited: '⏳',
  cli_error: '✗',
};

function statusBadge(status: string, icons: Record<string, string>): HTMLElement {
  return h(
    'span',
    { class: `status status-${status}` },
    h('span', { class: 'status-icon', 'aria-hidden': 'true' }, icons[status] ?? '•'),
    h('span', { class: 'status-label' }, status.replace(/_/g, ' ')),
  );
}

function formatDuration(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

function formatAge(iso: string, now: number): string {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const seconds = Math.max(0, Math.round((now - at) / 1000));
  if (seconds < 45) return 'just now';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  return new Date(at).toLocaleDateString();
}

function clockTime(iso: string): string {
  const at = Date.parse(iso);
  return Number.isNaN(at) ? iso : new Date(at).toLocaleTimeString();
}

function age(iso: string): HTMLElement {
  return h(
    'time',
    { class: 'age', datetime: iso, title: iso, 'data-created': iso },
    formatAge(iso, Date.now()),
  );
}

// ---- The page's fixed parts ----

const engageButton = h(
  'button',
  { type: 'button', class: 'danger', 'data-action': 'engage-panic', 'data-focus-key': 'engage-panic' },
  'Engage panic',
);
const releaseButton = h(
  'button',
  { type: 'button', class: 'secondary', 'data-action': 'release-panic', 'data-focus-key': 'release-panic' },
  'Release panic…',
);
const probeButton = h(
  'button',
  { type: 'button', class: 'secondary', 'data-action': 'probe', 'data-focus-key': 'probe' },
  'Probe CLIs',
);
const panicBanner = h('div', { id: 'panic-banner', role: 'alert', hidden: true });
const noticeLine = h('div', { id: 'notice', role: 'status', 'aria-live': 'polite', hidden: true });
const probeArea = h('div', { id: 'probe', role: 'status', 'aria-live': 'polite' }, 'CLIs not probed yet.');
const workerBody = h('div', { class: 'worker-body' });
const runFilter = h('input', {
  id: 'run-filter',
  type: 'search',
  'aria-label': 'Filter runs',
  placeholder: 'Filter by id, status, strategy, owner or prompt',
  'aria-controls': 'run-list',
  autocomplete: 'off',
  spellcheck: 'false',
});
const runCount = h('span', { class: 'count', 'aria-live': 'polite' });
const runList = h('div', { id: 'run-list', class: 'run-list', role: 'listbox', 'aria-label': 'Runs' });
const detailPane = h('section', { id: 'detail', 'aria-label': 'Run detail' });

function buildPage(): HTMLElement {
  return h(
    'div',
    { class: 'page' },
    h(
      'header',
      { class: 'page-header' },
      h('h1', {}, 'Tandem'),
      h('div', { class: 'actions' }, engageButton, releaseButton, probeButton),
    ),
    panicBanner,
    noticeLine,
    probeArea,
    h(
      'main',
      { class: 'layout' },
      h(
        'div',
        { class: 'column' },
        h(
          'section',
          { id: 'workers', 'aria-labelledby': 'workers-title' },
          h('h2', { id: 'workers-title' }, 'Workers'),
          workerBody,
        ),
        h(
          'section',
          { id: 'runs', 'aria-labelledby': 'runs-title' },
          h('h2', { id: 'runs-title' }, 'Runs ', runCount),
          runFilter,
          runList,
        ),
      ),
      detailPane,
    ),
  );
}

// ---- State ----

let saved = readSaved();
let state: StateMessage | undefined;
let detail: DetailMessage | undefined;
let reselected = false;
let noticeTimer: ReturnType<typeof setTimeout> | undefined;
/** The collapsible blocks (a command, a reply) opened in the shown run, kept open when its detail re-renders. */
let openBlocks = new Set<string>();

function save(): void {
  api.setState(saved);
}

function sameTarget(a: Target | null, folderKey: string, runId: string): boolean {
  return a !== null && a.folderKey === folderKey && a.runId === runId;
}

function select(target: Target): void {
  saved = { ...saved, selected: target };
  save();
  for (const row of runList.querySelectorAll<HTMLElement>('[role="option"]')) {
    row.setAttribute(
      'aria-selected',
      String(row.dataset.folderKey === target.folderKey && row.dataset.runId === target.runId),
    );
  }
  updateRunTabStop(rowOf(document.activeElement));
  if (!detail || detail.folderKey !== target.folderKey || detail.run.id !== target.runId) {
    detail = undefined;
    openBlocks = new Set();
    replaceKeepingFocus(detailPane, h('p', { class: 'placeholder' }, `Loading ${target.runId}…`));
  }
  send({ type: 'select', folderKey: target.folderKey, runId: target.runId });
}

// ---- Header: panic and probe ----

function renderPanic(folders: FolderView[]): void {
  const engaged = folders.filter((folder) => folder.panic.engaged);
  panicBanner.hidden = engaged.length === 0;
  panicBanner.replaceChildren(
    h('strong', {}, 'PANIC engaged'),
    ...engaged.map((folder) =>
      h(
        'span',
        { class: 'panic-reason' },
        `${folders.length > 1 ? `${folder.name}: ` : ''}${folder.panic.reason ?? 'no reason given'}${
          folder.panic.by ? ` (by ${folder.panic.by})` : ''
        }`,
      ),
    ),
    h('span', { class: 'panic-hint' }, 'Mutating tools are refused until a human releases it.'),
  );
  engageButton.disabled = folders.length === 0 || engaged.length === folders.length;
  releaseButton.disabled = engaged.length === 0;
}

function renderProbe(folders: FolderView[]): void {
  const probed = folders.filter((folder) => folder.probe !== undefined);
  if (probed.length === 0) {
    if (!probeButton.disabled) probeArea.replaceChildren('CLIs not probed yet.');
    return;
  }
  probeArea.replaceChildren(
    ...probed.map((folder) =>
      h(
        'div',
        { class: 'probe-folder' },
        folders.length > 1 ? h('span', { class: 'folder-name' }, `${folder.name}:`) : null,
        ...(folder.probe ?? []).map((cli) =>
          h(
            'span',
            { class: `probe-cli ${cli.installed ? 'ok' : 'missing'}`, 'data-kind': cli.kind },
            h('span', { 'aria-hidden': 'true' }, cli.installed ? '✓ ' : '✗ '),
            cli.installed
              ? `${cli.kind} ${cli.version ?? 'unknown version'} · auth: ${cli.authMode}${
                  cli.versionInTestedRange ? '' : ' · outside the tested range'
                }`
              : `${cli.kind}: not installed${cli.error ? ` (${cli.error})` : ''}`,
          ),
        ),
      ),
    ),
  );
}

// ---- Workers ----

function workerRow(folder: FolderView, worker: WorkerView): HTMLElement {
  const stopped = worker.state === 'stopped';
  return h(
    'tr',
    { 'data-worker-id': worker.id, 'data-folder-key': folder.key, 'data-state': worker.state },
    h(
      'td',
      {},
      h('span', { class: `kind kind-${worker.kind}` }, worker.kind),
      h('div', { class: 'muted id' }, worker.id),
    ),
    h('td', {}, worker.model),
    h('td', {}, h('span', { class: `worker-state state-${worker.state}` }, worker.state)),
    h('td', { class: 'num' }, String(worker.stepsRun)),
    h('td', {}, worker.owner),
    h(
      'td',
      {},
      h(
        'button',
        {
          type: 'button',
          class: 'secondary small',
          'data-action': 'stop-worker',
          'data-focus-key': `stop:${folder.key}:${worker.id}`,
          'aria-label': `Stop worker ${worker.id}`,
          disabled: stopped,
        },
        stopped ? 'Stopped' : 'Stop',
      ),
    ),
  );
}

/** The CLIs working for runs right now; a row selects its run. */
function activeList(folder: FolderView): HTMLElement | null {
  if (folder.active.length === 0) return null;
  return h(
    'ul',
    { class: 'active-steps', 'aria-label': 'Working for runs now' },
    ...folder.active.map((active) =>
      h(
        'li',
        {},
        h(
          'button',
          {
            type: 'button',
            class: 'active-step',
            'data-action': 'show-run',
            'data-folder-key': folder.key,
            'data-run-id': active.runId,
            'data-active-run': active.runId,
            'data-focus-key': `active:${folder.key}:${active.runId}:${active.name}`,
            'aria-label': `${active.kind} works as ${active.role} for run ${active.runId}; show the run`,
            title: `Show run ${active.runId}`,
          },
          h(
            'span',
            { class: 'status-running', 'aria-hidden': 'true' },
            h('span', { class: 'status-icon' }, RUN_ICONS.running),
          ),
          h('span', { class: `kind kind-${active.kind}` }, active.kind),
          h('span', { class: 'active-name' }, active.name),
          h('span', { class: 'muted' }, `${active.role} · ${active.model}`),
          h('span', { class: 'active-run id' }, active.runId),
          h('span', { class: 'run-owner' }, active.owner),
        ),
      ),
    ),
  );
}

function workerSection(folder: FolderView): HTMLElement {
  const active = activeList(folder);
  if (!active) return workerTable(folder);
  return h(
    'div',
    {},
    folder.workers.length > 0 ? workerTable(folder) : null,
    h('p', { class: 'muted active-label' }, 'Working for runs now:'),
    active,
  );
}

function workerTable(folder: FolderView): HTMLElement {
  if (folder.workers.length === 0) {
    return h(
      'p',
      { class: 'placeholder' },
      folder.trusted
        ? 'No workers. Agents spawn them with worker_spawn.'
        : 'No workers: this folder is not trusted.',
    );
  }
  return h(
    'table',
    { class: 'workers' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['Kind', 'Model', 'State', 'Steps', 'Owner', ''].map((title) =>
          h('th', { scope: 'col' }, title || h('span', { class: 'visually-hidden' }, 'Actions')),
        ),
      ),
    ),
    h('tbody', {}, ...folder.workers.map((worker) => workerRow(folder, worker))),
  );
}

function folderHeading(folder: FolderView): HTMLElement {
  return h(
    'h3',
    { class: 'folder-heading' },
    folder.name,
    folder.trusted ? null : h('span', { class: 'badge' }, 'restricted'),
    folder.panic.engaged ? h('span', { class: 'badge badge-error' }, 'PANIC') : null,
  );
}

function renderWorkers(folders: FolderView[]): void {
  if (folders.length === 0) {
    replaceKeepingFocus(
      workerBody,
      h('p', { class: 'placeholder' }, 'No Tandem server is running in this window.'),
    );
    return;
  }
  const grouped = folders.length > 1;
  replaceKeepingFocus(
    workerBody,
    ...folders.map((folder) =>
      grouped
        ? h('div', { class: 'folder-group' }, folderHeading(folder), workerSection(folder))
        : workerSection(folder),
    ),
  );
  if (!grouped && folders[0] && !folders[0].trusted) {
    workerBody.prepend(
      h('p', { class: 'muted' }, 'Restricted mode: this folder is not trusted, so no worker starts.'),
    );
  }
}

// ---- Runs ----

function runText(run: RunView): string {
  return `${run.id} ${run.status} ${run.strategy ?? 'task'} ${run.kind} ${run.owner} ${run.prompt}`.toLowerCase();
}

function matches(run: RunView, words: string[]): boolean {
  const text = runText(run);
  return words.every((word) => text.includes(word));
}

function runRow(folder: FolderView, run: RunView): HTMLElement {
  const selected = sameTarget(saved.selected, folder.key, run.id);
  return h(
    'div',
    {
      class: 'run',
      role: 'option',
      // One row is the list's tab stop (updateRunTabStop); the arrow keys move between rows.
      tabindex: -1,
      'aria-selected': String(selected),
      'data-run-id': run.id,
      'data-folder-key': folder.key,
      'data-status': run.status,
      'data-focus-key': `run:${folder.key}:${run.id}`,
      title: run.id,
    },
    h(
      'div',
      { class: 'run-line' },
      statusBadge(run.status, RUN_ICONS),
      h('span', { class: 'run-strategy' }, run.strategy ?? 'task'),
      h('span', { class: 'run-owner' }, run.owner),
      age(run.createdAt),
      run.durationMs === null ? null : h('span', { class: 'run-duration' }, formatDuration(run.durationMs)),
    ),
    h('div', { class: 'run-prompt' }, run.prompt),
  );
}

function renderRuns(folders: FolderView[]): void {
  const words = saved.filter.toLowerCase().split(/\s+/).filter(Boolean);
  const grouped = folders.length > 1;
  let total = 0;
  let shown = 0;
  const groups: HTMLElement[] = [];
  for (const folder of folders) {
    total += folder.runs.length;
    const rows = folder.runs.filter((run) => matches(run, words)).map((run) => runRow(folder, run));
    shown += rows.length;
    if (grouped) {
      const labelId = `runs-folder-${groups.length}`;
      groups.push(
        h(
          'div',
          { role: 'group', 'aria-labelledby': labelId, class: 'folder-group' },
          h('div', { id: labelId, class: 'group-label' }, folder.name),
          ...(rows.length > 0 ? rows : [h('div', { class: 'placeholder' }, 'No runs.')]),
        ),
      );
    } else {
      groups.push(...rows);
    }
  }
  runCount.textContent = words.length > 0 ? `${shown} of ${total}` : String(total);
  if (total === 0) {
    replaceKeepingFocus(
      runList,
      h(
        'div',
        { class: 'placeholder' },
        'No runs yet. Agents start them with strategy_run or task_dispatch.',
      ),
    );
    return;
  }
  if (shown === 0 && !grouped) {
    replaceKeepingFocus(runList, h('div', { class: 'placeholder' }, 'No run matches the filter.'));
    return;
  }
  replaceKeepingFocus(runList, ...groups);
  updateRunTabStop(rowOf(document.activeElement));
}

/**
 * Makes the run list a single tab stop, as a native list is: the row that has focus, else the selected row,
 * else the first one. Tab leaves the list; the arrow keys, Home and End move within it.
 */
function updateRunTabStop(focused: HTMLElement | null): void {
  const rows = [...runList.querySelectorAll<HTMLElement>('[role="option"]')];
  const stop =
    (focused && rows.includes(focused) ? focused : undefined) ??
    rows.find((row) => row.getAttribute('aria-selected') === 'true') ??
    rows[0];
  for (const row of rows) row.tabIndex = row === stop ? 0 : -1;
}

function rowOf(target: EventTarget | null): HTMLElement | null {
  return target instanceof Element ? target.closest<HTMLElement>('[role="option"][data-run-id]') : null;
}

function chooseRow(row: HTMLElement): void {
  const { folderKey, runId } = row.dataset;
  if (folderKey !== undefined && runId !== undefined) select({ folderKey, runId });
}

function moveFocus(from: HTMLElement, key: string): boolean {
  const rows = [...runList.querySelectorAll<HTMLElement>('[role="option"]')];
  const at = rows.indexOf(from);
  const next =
    key === 'ArrowDown'
      ? rows[at + 1]
      : key === 'ArrowUp'
        ? rows[at - 1]
        : key === 'Home'
          ? rows[0]
          : rows[rows.length - 1];
  if (!next) return false;
  next.focus();
  return true;
}

// ---- Detail ----

function fact(label: string, value: Child): HTMLElement {
  return h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, value ?? '—'));
}

/**
 * A collapsible monospace block (a native <details>, so Enter and Space open it) whose body scrolls, reachable
 * by Tab so the keyboard can scroll it too. `key` keeps it open across re-renders of the same run.
 */
function block(
  key: string,
  label: string,
  name: string,
  preview: string,
  body: string,
  className: string,
): HTMLElement {
  return h(
    'details',
    { class: `block ${className}`, 'data-block': key, open: openBlocks.has(key) },
    h(
      'summary',
      { 'data-focus-key': `block:${key}` },
      h('span', { class: 'block-label' }, label),
      preview ? h('code', { class: 'block-preview muted' }, preview) : null,
    ),
    h('pre', { tabindex: 0, 'aria-label': name }, h('code', {}, body)),
  );
}

function exitText(step: StepView): string {
  if (step.signal !== null) return `signal ${step.signal}`;
  return step.exitCode === null ? 'no exit code' : `exit ${step.exitCode}`;
}

/** The command's program and first arguments, for the closed block's line. */
function commandPreview(argv: string[]): string {
  const text = argv.join(' ');
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

function diffStats(stats: { files: number; insertions: number; deletions: number }): HTMLElement {
  return h(
    'span',
    { class: 'diff-stats' },
    `${stats.files} file${stats.files === 1 ? '' : 's'} `,
    h('span', { class: 'insertions' }, `+${stats.insertions}`),
    ' ',
    h('span', { class: 'deletions' }, `−${stats.deletions}`),
  );
}

function stepItem(step: StepView): HTMLElement {
  const diff = step.diffStats;
  return h(
    'li',
    { class: 'step', 'data-step-index': step.index, 'data-status': step.status },
    h(
      'div',
      { class: 'step-line' },
      statusBadge(step.status, STEP_ICONS),
      h('strong', { class: 'step-name' }, step.name),
      h('span', { class: 'step-role' }, step.role),
      h('span', { class: `kind kind-${step.workerKind}` }, step.workerKind),
      h('span', { class: 'step-model muted' }, step.model),
      h('span', { class: 'step-duration' }, formatDuration(step.durationMs)),
      h('span', { class: 'step-exit' }, exitText(step)),
      step.verdict === 'none'
        ? h(
            'span',
            { class: 'verdict verdict-none muted', title: 'The reply had no readable verdict.' },
            'no verdict',
          )
        : step.verdict
          ? h('span', { class: `verdict verdict-${step.verdict}` }, step.verdict.replace(/_/g, ' '))
          : null,
      step.tokens !== null ? h('span', { class: 'step-tokens muted' }, `${step.tokens} tokens`) : null,
    ),
    step.errorMessage ? h('p', { class: 'step-error' }, step.errorMessage) : null,
    step.argv.length > 0
      ? block(
          `command:${step.index}`,
          'Command',
          `Command of step ${step.index} (${step.name})`,
          commandPreview(step.argv),
          step.argv.join(' '),
          'command',
        )
      : null,
    step.findings.length > 0
      ? h(
          'ul',
          { class: 'findings', 'aria-label': 'Findings' },
          ...step.findings.map((finding) =>
            h(
              'li',
              { 'data-severity': finding.severity },
              h('span', { class: `severity severity-${finding.severity}` }, finding.severity),
              ` ${finding.title}`,
              finding.file ? h('code', { class: 'muted' }, ` ${finding.file}`) : null,
              finding.detail ? h('span', { class: 'finding-detail' }, ` — ${finding.detail}`) : null,
            ),
          ),
        )
      : null,
    moreNote(
      step.findingsOmitted,
      step.findingsOmitted === 1 ? 'finding, less severe' : 'findings, less severe',
    ),
    diff || step.filesChanged.length > 0
      ? h(
          'div',
          { class: 'files' },
          diff ? diffStats(diff) : null,
          h(
            'ul',
            { class: 'file-list', 'aria-label': 'Files changed' },
            ...step.filesChanged.map((file) =>
              h('li', {}, h('span', { class: 'change' }, file.change), ' ', h('code', {}, file.path)),
            ),
          ),
          moreNote(step.filesOmitted, step.filesOmitted === 1 ? 'file' : 'files'),
        )
      : null,
    step.reply
      ? block(
          `reply:${step.index}`,
          'Reply',
          `Reply of step ${step.index} (${step.name})`,
          '',
          step.reply,
          'reply',
        )
      : null,
  );
}

/** Columns of counts, right-aligned as their numbers are. */
const NUMERIC_HEADS = new Set(['Files', '+', '−']);

function table(caption: string, className: string, heads: string[], rows: HTMLElement[]): HTMLElement {
  return h(
    'div',
    { class: 'table-scroll' },
    h(
      'table',
      { class: `grid ${className}` },
      h('caption', { class: 'visually-hidden' }, caption),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...heads.map((head) =>
            h('th', { scope: 'col', class: NUMERIC_HEADS.has(head) ? 'num' : null }, head),
          ),
        ),
      ),
      h('tbody', {}, ...rows),
    ),
  );
}

/** The line under a capped list: how many more the run's summary.md has. */
function moreNote(omitted: number, what: string): HTMLElement | null {
  if (omitted === 0) return null;
  return h('p', { class: 'more muted' }, `and ${omitted} more ${what}: Open summary shows them all.`);
}

function changesSection(changes: ChangeView[], omitted: number): HTMLElement[] {
  if (changes.length === 0) return [];
  const summaryRows = changes.map((change) =>
    h(
      'tr',
      { 'data-change': change.label },
      h('td', {}, h('strong', {}, change.label)),
      h('td', { class: 'num' }, String(change.stats.files)),
      h('td', { class: 'num insertions' }, `+${change.stats.insertions}`),
      h('td', { class: 'num deletions' }, `−${change.stats.deletions}`),
      h('td', {}, change.applied ? 'yes' : 'no'),
      h(
        'td',
        {},
        change.patchFile ? h('code', {}, change.patchFile) : '—',
        change.patchTruncated ? h('span', { class: 'muted' }, ' (cut)') : null,
      ),
    ),
  );
  const fileRows = changes.flatMap((change) =>
    change.files.map((file) =>
      h(
        'tr',
        { 'data-change': change.label, 'data-path': file.path },
        h('td', {}, change.label),
        h('td', {}, h('span', { class: 'change' }, file.change)),
        h('td', {}, h('code', {}, file.path)),
        h('td', { class: 'num insertions' }, `+${file.insertions}`),
        h('td', { class: 'num deletions' }, `−${file.deletions}`),
      ),
    ),
  );
  return [
    h('h3', { id: 'changes-title' }, `Changes (${changes.length + omitted})`),
    table('Changes by writer', 'changes', ['From', 'Files', '+', '−', 'Applied', 'Patch'], summaryRows),
    moreNote(omitted, omitted === 1 ? 'change' : 'changes'),
    fileRows.length > 0
      ? table('Files changed', 'change-files', ['From', 'Change', 'File', '+', '−'], fileRows)
      : null,
  ].filter((node): node is HTMLElement => node !== null);
}

function eventItem(event: EventView): HTMLElement {
  return h(
    'li',
    { 'data-seq': event.seq, 'data-type': event.type },
    h('time', { class: 'muted', datetime: event.time }, clockTime(event.time)),
    ' ',
    h('span', { class: 'event-type' }, event.type.replace(/_/g, ' ')),
    event.step !== undefined ? h('span', { class: 'muted' }, ` step ${event.step}`) : null,
    ' ',
    h('span', { class: 'event-message' }, event.message),
  );
}

function renderDetail(message: DetailMessage): void {
  const { run } = message;
  const live = run.status === 'queued' || run.status === 'running';
  const events = h(
    'ol',
    {
      id: 'events',
      class: 'events',
      role: 'log',
      'aria-live': 'polite',
      'aria-label': 'Events',
      tabindex: 0,
    },
    ...message.events.map(eventItem),
  );
  replaceKeepingFocus(
    detailPane,
    h(
      'header',
      { class: 'detail-header' },
      h('h2', { id: 'detail-title' }, 'Run ', h('code', {}, run.id)),
      h(
        'div',
        { class: 'actions' },
        h(
          'button',
          {
            type: 'button',
            class: 'danger',
            'data-action': 'cancel-run',
            'data-focus-key': 'cancel-run',
            disabled: !live,
          },
          'Cancel run',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'secondary',
            'data-action': 'open-summary',
            'data-focus-key': 'open-summary',
          },
          'Open summary',
        ),
      ),
    ),
    h(
      'p',
      { class: 'detail-source muted', 'data-source': message.source },
      message.source === 'summary'
        ? 'As recorded in the run’s summary.'
        : live
          ? 'Live: the run’s records so far; its summary is written when it ends.'
          : 'From the run’s records: it has no summary.',
    ),
    h(
      'dl',
      { class: 'facts' },
      fact('Status', statusBadge(run.status, RUN_ICONS)),
      fact('What', run.strategy ?? `task (${run.kind})`),
      run.playbook
        ? fact(
            'Version',
            h(
              'span',
              {},
              h('code', { class: 'playbook-hash' }, run.playbook.hash),
              h('span', { class: 'muted' }, ` from ${run.playbook.source}`),
            ),
          )
        : null,
      fact('Asked by', run.owner),
      fact('Created', age(run.createdAt)),
      run.endedAt
        ? fact('Ended', h('time', { datetime: run.endedAt, title: run.endedAt }, clockTime(run.endedAt)))
        : null,
      fact('Duration', formatDuration(run.durationMs)),
      fact('Steps', String(run.stepCount)),
      fact('Workers', run.workers.join(', ') || '—'),
      fact('Applied', run.applied ? 'yes' : 'no'),
      fact('Outcome', run.outcome),
      fact('Decision', run.decision),
    ),
    h('p', { class: 'prompt', 'aria-label': 'Task' }, run.task),
    h('h3', {}, `Steps (${message.steps.length + message.omitted.steps})`),
    message.steps.length > 0
      ? h('ol', { class: 'timeline' }, ...message.steps.map(stepItem))
      : h('p', { class: 'placeholder' }, live ? 'No step has started yet.' : 'This run recorded no steps.'),
    moreNote(message.omitted.steps, message.omitted.steps === 1 ? 'step' : 'steps'),
    ...(message.inputs && message.inputs.length > 0
      ? [
          h('h3', {}, 'Playbook inputs'),
          h(
            'dl',
            { class: 'inputs' },
            ...message.inputs.map((input) =>
              h('div', { class: 'input' }, h('dt', {}, input.name), h('dd', {}, h('code', {}, input.value))),
            ),
          ),
          moreNote(message.omitted.inputs, message.omitted.inputs === 1 ? 'input' : 'inputs'),
        ]
      : []),
    ...(message.decisions.length > 0
      ? [
          h('h3', {}, `Decisions (${message.decisions.length + message.omitted.decisions})`),
          h(
            'ol',
            { class: 'decisions' },
            ...message.decisions.map((decision) =>
              h(
                'li',
                {},
                h(
                  'time',
                  { class: 'muted', datetime: decision.time, title: decision.time },
                  clockTime(decision.time),
                ),
                ' ',
                h('span', { class: 'decision-message' }, decision.message),
              ),
            ),
          ),
          moreNote(message.omitted.decisions, message.omitted.decisions === 1 ? 'decision' : 'decisions'),
        ]
      : []),
    ...changesSection(message.changes, message.omitted.changes),
    h('h3', {}, 'Events'),
    events,
  );
  events.scrollTop = events.scrollHeight;
}

function appendEvents(message: EventsMessage): void {
  if (!detail || detail.folderKey !== message.folderKey || detail.run.id !== message.runId) return;
  const list = document.getElementById('events');
  if (!list) return;
  const lastSeq = detail.events[detail.events.length - 1]?.seq ?? 0;
  const fresh = message.events.filter((event) => event.seq > lastSeq);
  if (fresh.length === 0) return;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
  detail.events = [...detail.events, ...fresh].slice(-LIMITS.events);
  list.append(...fresh.map(eventItem));
  while (list.childElementCount > LIMITS.events) list.firstElementChild?.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function renderNoDetail(): void {
  replaceKeepingFocus(
    detailPane,
    h('p', { class: 'placeholder' }, 'Select a run to see its steps and events.'),
  );
}

// ---- Notices ----

function showNotice(message: Pick<NoticeMessage, 'level' | 'text'>): void {
  if (noticeTimer) clearTimeout(noticeTimer);
  noticeTimer = undefined;
  noticeLine.hidden = false;
  noticeLine.className = `notice notice-${message.level}`;
  noticeLine.replaceChildren(
    h('span', {}, message.text),
    h(
      'button',
      { type: 'button', class: 'link', 'data-action': 'dismiss-notice', 'aria-label': 'Dismiss the message' },
      '×',
    ),
  );
  if (message.level === 'info') noticeTimer = setTimeout(() => (noticeLine.hidden = true), INFO_NOTICE_MS);
}

// ---- Messages from the host ----

function onState(message: StateMessage): void {
  state = message;
  renderPanic(message.folders);
  renderProbe(message.folders);
  renderWorkers(message.folders);
  renderRuns(message.folders);
  if (!reselected) {
    reselected = true;
    // The webview loads again after being hidden: ask for the run it showed before.
    if (saved.selected) select(saved.selected);
  }
}

function onDetail(message: DetailMessage): void {
  if (!sameTarget(saved.selected, message.folderKey, message.run.id)) return;
  detail = message;
  renderDetail(message);
}

function receive(raw: unknown): void {
  let message;
  try {
    message = parseToWebview(raw);
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    console.warn(`tandem dashboard: ignored a malformed message: ${text}`);
    showNotice({ level: 'error', text: `Ignored a malformed message: ${text}` });
    return;
  }
  switch (message.type) {
    case 'state':
      onState(message);
      break;
    case 'detail':
      onDetail(message);
      break;
    case 'events':
      appendEvents(message);
      break;
    case 'notice':
      probeButton.disabled = false;
      showNotice(message);
      break;
  }
}

// ---- Input ----

function onClick(event: MouseEvent): void {
  const target = event.target instanceof Element ? event.target : null;
  const button = target?.closest<HTMLButtonElement>('button[data-action]');
  if (button) {
    if (!button.disabled) runAction(button);
    return;
  }
  const row = rowOf(target);
  if (row) chooseRow(row);
}

function runAction(button: HTMLButtonElement): void {
  const action = button.dataset.action;
  const selected = detail ? { folderKey: detail.folderKey, runId: detail.run.id } : null;
  switch (action) {
    case 'engage-panic':
      send({ type: 'engagePanic' });
      break;
    case 'release-panic':
      send({ type: 'releasePanic' });
      break;
    case 'probe':
      probeButton.disabled = true;
      probeArea.replaceChildren('Probing the CLIs…');
      send({ type: 'probe' });
      break;
    case 'show-run': {
      const { folderKey, runId } = button.dataset;
      if (folderKey !== undefined && runId !== undefined) select({ folderKey, runId });
      break;
    }
    case 'stop-worker': {
      const row = button.closest<HTMLElement>('[data-worker-id]');
      const folderKey = row?.dataset.folderKey;
      const workerId = row?.dataset.workerId;
      if (folderKey !== undefined && workerId !== undefined)
        send({ type: 'stopWorker', folderKey, workerId });
      break;
    }
    case 'cancel-run':
      if (selected) send({ type: 'cancelRun', ...selected });
      break;
    case 'open-summary':
      if (selected) send({ type: 'openSummary', ...selected });
      break;
    case 'dismiss-notice':
      noticeLine.hidden = true;
      break;
  }
}

function onKeyDown(event: KeyboardEvent): void {
  const row = rowOf(event.target);
  if (!row || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    chooseRow(row);
  } else if (['ArrowDown', 'ArrowUp', 'Home', 'End'].includes(event.key)) {
    if (moveFocus(row, event.key)) event.preventDefault();
  }
}

function refreshAges(): void {
  const now = Date.now();
  for (const element of document.querySelectorAll<HTMLElement>('[data-created]')) {
    const created = element.dataset.created;
    if (created !== undefined) element.textContent = formatAge(created, now);
  }
}

function start(): void {
  const app = document.getElementById('app') ?? document.body;
  app.removeAttribute('aria-busy');
  app.replaceChildren(buildPage());
  runFilter.value = saved.filter;
  renderNoDetail();
  document.addEventListener('click', onClick);
  // 'toggle' does not bubble: listen in the capture phase for every <details> of the detail.
  document.addEventListener(
    'toggle',
    (event) => {
      const target = event.target;
      if (!(target instanceof HTMLDetailsElement) || target.dataset.block === undefined) return;
      if (target.open) openBlocks.add(target.dataset.block);
      else openBlocks.delete(target.dataset.block);
    },
    true,
  );
  document.addEventListener('keydown', onKeyDown);
  runList.addEventListener('focusin', (event) => updateRunTabStop(rowOf(event.target)));
  runList.addEventListener('focusout', (event) => updateRunTabStop(rowOf(event.relatedTarget)));
  runFilter.addEventListener('input', () => {
    saved = { ...saved, filter: runFilter.value };
    save();
    if (state) renderRuns(state.folders);
  });
  window.addEventListener('message', (event: MessageEvent<unknown>) => receive(event.data));
  setInterval(refreshAges, AGE_REFRESH_MS);
  send({ type: 'ready' });
}

start();
