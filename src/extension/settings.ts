// The `tandem.*` settings as the server needs them: read through a getter (the editor's configuration in the
// extension, a plain object in tests) and checked, so a hand-edited settings.json cannot start a broken server.
import type { WorkerKind } from '../workers/contract';

export const SETTINGS_SECTION = 'tandem';
export const MIN_CONCURRENCY = 1;
export const MAX_CONCURRENCY = 16;
export const DEFAULT_CONCURRENCY = 4;

export interface TandemSettings {
  /** Configured binaries; absent: the bare name looked up on PATH. */
  cliPaths: Partial<Record<WorkerKind, string>>;
  concurrency: number;
  /** Point both CLIs at the built-in offline model instead of the vendors' APIs. */
  offlineModel: boolean;
}

/** What both `vscode.WorkspaceConfiguration` and a test's stand-in offer. */
export interface SettingsSource {
  get<T>(key: string): T | undefined;
}

export function readSettings(
  source: SettingsSource,
  warn: (line: string) => void = () => undefined,
): TandemSettings {
  const cliPaths: Partial<Record<WorkerKind, string>> = {};
  for (const [kind, key] of [
    ['codex', 'codexPath'],
    ['gemini', 'geminiPath'],
  ] as const) {
    const value = source.get<unknown>(key);
    if (typeof value === 'string' && value.trim() !== '') cliPaths[kind] = value.trim();
    else if (value !== undefined && value !== '' && value !== null) {
      warn(`tandem.${key} must be a path string; using "${kind}" from PATH`);
    }
  }

  let concurrency = DEFAULT_CONCURRENCY;
  const requested = source.get<unknown>('concurrency');
  if (requested !== undefined && requested !== null) {
    if (typeof requested === 'number' && Number.isInteger(requested)) {
      concurrency = Math.min(MAX_CONCURRENCY, Math.max(MIN_CONCURRENCY, requested));
      if (concurrency !== requested) {
        warn(
          `tandem.concurrency ${requested} is outside ${MIN_CONCURRENCY}-${MAX_CONCURRENCY}; using ${concurrency}`,
        );
      }
    } else {
      warn(`tandem.concurrency must be a whole number; using ${DEFAULT_CONCURRENCY}`);
    }
  }

  return { cliPaths, concurrency, offlineModel: source.get<unknown>('offlineModel') === true };
}
