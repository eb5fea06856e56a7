// What the host test files share (not a test file: index.ts loads only *.test.js).
import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { RunStore } from '../../../src/orchestrator/run-store';

export const EXTENSION_ID = 'tandem-dev.tandem';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until the check holds; false when the time ran out. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** The one workspace folder the runner opens. */
export function workspacePath(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'the runner opens one workspace folder');
  return folder.uri.fsPath;
}

/** Whether any process still has this group id (each worker CLI leads its own process group). */
export function processGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pids a run's steps recorded in its events (a step records its pid once its CLI started). */
export async function stepPids(store: Pick<RunStore, 'readEvents'>, runId: string): Promise<number[]> {
  const events = await store.readEvents(runId, 0);
  const pids = events
    .map((event) => event.data?.pid)
    .filter((value): value is number => typeof value === 'number');
  return [...new Set(pids)];
}

/**
 * Counts a tree provider's onDidChangeTreeData events from its creation on, with the time of the last one: what
 * tells the workbench to redraw a view, as opposed to what getChildren() would answer if asked.
 */
export class TreeChanges implements vscode.Disposable {
  count = 0;
  private last = Date.now();
  private readonly subscription: vscode.Disposable;

  constructor(tree: { onDidChangeTreeData?: vscode.Event<unknown> }) {
    assert.ok(tree.onDidChangeTreeData, 'the tree provider has a change event');
    this.subscription = tree.onDidChangeTreeData(() => {
      this.count += 1;
      this.last = Date.now();
    });
  }

  /** Waits until no event came for `quietMs` (what earlier work set off has been told); false at the deadline. */
  settled(quietMs = 400, timeoutMs = 5_000): Promise<boolean> {
    return until(() => Date.now() - this.last >= quietMs, timeoutMs);
  }

  /** Whether an event comes after the `mark` taken from `count`, within the time. */
  firedSince(mark: number, timeoutMs = 3_000): Promise<boolean> {
    return until(() => this.count > mark, timeoutMs);
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
