// What the host test files share (not a test file: index.ts loads only *.test.js).
import assert from 'node:assert/strict';
import * as vscode from 'vscode';

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
