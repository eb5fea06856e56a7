// Binds the orchestrator to the isolation backends: one base snapshot per run, labelled with the run id
// so start-up recovery can tell a live run's copies from a crashed one's.
import { Isolation } from './isolation';
import type { IsolationPort } from './orchestrator';

export function createIsolationPort(
  workspaceRoot: string,
  stateDir: string,
  runId: string,
): Promise<IsolationPort> {
  return Isolation.snapshotBase(workspaceRoot, { stateDir, label: runId });
}

export function cleanupIsolation(stateDir: string, liveRunIds: string[]): Promise<string[]> {
  return Isolation.cleanupOrphans(stateDir, liveRunIds);
}
