// `tandem-mcp panic engage|release|status`: the kill switch from a terminal. Release is the human path the
// MCP tools never offer, so it asks for a typed confirmation on a terminal and needs --yes anywhere else.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { PanicSwitch, RELEASED, type PanicState } from '../orchestrator/panic';
import { STATE_DIR_NAME } from '../orchestrator/run-store';
import { HUMAN_CALLER } from '../workers/registry';
import { EXIT, UsageError, parseArgs } from './args';

const CONFIRM_WORD = 'RELEASE';

export function describePanic(state: PanicState): string {
  if (state.engaged) {
    return (
      `Panic is ENGAGED by ${state.engagedBy ?? 'unknown'}${state.engagedAt ? ` at ${state.engagedAt}` : ''}: ` +
      `${state.reason ?? 'no reason given'}\nNo new work starts until a human runs \`tandem-mcp panic release\`.\n`
    );
  }
  const released = state.releasedAt
    ? ` (released by ${state.releasedBy ?? 'unknown'} at ${state.releasedAt})`
    : '';
  return `Panic is not engaged${released}.\n`;
}

async function confirmOnTerminal(): Promise<boolean> {
  const terminal = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await terminal.question(`Type ${CONFIRM_WORD} to lift the panic switch: `);
    return answer.trim() === CONFIRM_WORD;
  } finally {
    terminal.close();
  }
}

export async function panicCommand(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'engage': {
      const parsed = parseArgs('panic engage', rest, { flags: { reason: 'value', workspace: 'value' } });
      const reason = parsed.required('reason');
      const panic = await PanicSwitch.open(parsed.directory('workspace'));
      const state = await panic.engage(HUMAN_CALLER, reason);
      // This process ends now: an engagement that is only in its memory reaches no server.
      if (!state.persisted) {
        process.stderr.write(
          `tandem-mcp: panic not engaged: ${state.persistError ?? 'panic.json could not be written'}. Engage it in the editor or fix .tandem/ and try again.
`,
        );
        return EXIT.failed;
      }
      process.stdout.write(describePanic(state));
      return EXIT.ok;
    }
    case 'release': {
      const parsed = parseArgs('panic release', rest, { flags: { workspace: 'value', yes: 'boolean' } });
      const workspaceRoot = parsed.directory('workspace');
      const panic = await PanicSwitch.open(workspaceRoot);
      if (!panic.engaged) {
        process.stdout.write(describePanic(panic.status()));
        return EXIT.ok;
      }
      if (!parsed.has('yes')) {
        if (!process.stdin.isTTY || !process.stderr.isTTY) {
          throw new UsageError(
            'panic release: no terminal to confirm on; pass --yes to release it without asking',
          );
        }
        process.stderr.write(describePanic(panic.status()));
        if (!(await confirmOnTerminal())) {
          process.stderr.write('tandem-mcp: not released: the answer was not RELEASE.\n');
          return EXIT.failed;
        }
      }
      process.stdout.write(describePanic(await panic.release(HUMAN_CALLER)));
      return EXIT.ok;
    }
    case 'status': {
      const parsed = parseArgs('panic status', rest, { flags: { workspace: 'value', json: 'boolean' } });
      const workspaceRoot = parsed.directory('workspace');
      // A workspace that never had Tandem state is simply not panicking; looking must not create .tandem/.
      const state = existsSync(path.join(workspaceRoot, STATE_DIR_NAME))
        ? (await PanicSwitch.open(workspaceRoot)).status()
        : undefined;
      const shown = state ?? RELEASED;
      process.stdout.write(parsed.has('json') ? `${JSON.stringify(shown, null, 2)}\n` : describePanic(shown));
      return EXIT.ok;
    }
    default:
      throw new UsageError(
        sub === undefined
          ? 'panic: say engage, release or status'
          : `panic: unknown subcommand "${sub}" (engage, release, status)`,
      );
  }
}
