// Where the pinned real CLIs are, and a scratch area outside /tmp (codex will not put its helper
// binaries under a temporary directory) for per-step homes in integration tests.
import { mkdirSync, mkdtempSync } from 'node:fs';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const CODEX_BIN = path.join(REPO_ROOT, 'node_modules', '.bin', 'codex');
export const GEMINI_BIN = path.join(REPO_ROOT, 'node_modules', '.bin', 'gemini');

/** A fresh directory under <repo>/.tandem-test-tmp/ (ignored by git). */
export function scratchDir(prefix: string): string {
  const base = path.join(REPO_ROOT, '.tandem-test-tmp');
  mkdirSync(base, { recursive: true });
  return mkdtempSync(path.join(base, `${prefix}-`));
}
