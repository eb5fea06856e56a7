// The owner rule, the one place it is written: an agent may act on (stop, dispatch to, cancel) only the workers
// it spawned and the runs it started; the human at the editor or on the terminal may act on anything. Reading is
// open to every caller. An agentId is a label that cooperating agents give themselves, not a login: any client
// that holds the server's token can send any agentId, so this rule keeps agents from stepping on each other by
// mistake and promises nothing against a client that lies about who it is.

/** The editor's (or terminal's) human user, who may act on every worker and run; no MCP client can claim it. */
export const HUMAN_CALLER = 'human';

export type OwnedKind = 'worker' | 'run';

export class OwnershipError extends Error {
  readonly code = 'NOT_OWNER';

  constructor(
    readonly kind: OwnedKind,
    readonly id: string,
    readonly owner: string,
    readonly caller: string,
    message: string,
  ) {
    super(message);
    this.name = 'OwnershipError';
  }
}

export interface Owned {
  kind: OwnedKind;
  id: string;
  /** The agentId that spawned the worker or started the run. */
  owner: string;
}

/**
 * Throws unless `caller` owns `thing` or is the human user. `action` completes "may ... it" (e.g. "stop",
 * "dispatch a task to"); the message names the owner, the rule and what to do instead.
 */
export function assertOwner(thing: Owned, caller: string, action: string): void {
  if (caller === HUMAN_CALLER || caller === thing.owner) return;
  const remedy =
    thing.kind === 'worker'
      ? 'spawn a worker of your own with worker_spawn'
      : 'start a run of your own, or ask its owner or the human to cancel it';
  throw new OwnershipError(
    thing.kind,
    thing.id,
    thing.owner,
    caller,
    `${thing.kind === 'worker' ? 'Worker' : 'Run'} ${thing.id} belongs to agentId "${thing.owner}", not ` +
      `"${caller}". Owner rule: only the agent that ${thing.kind === 'worker' ? 'spawned' : 'started'} it, or ` +
      `the human at the editor, may ${action} it; ${remedy}.`,
  );
}
