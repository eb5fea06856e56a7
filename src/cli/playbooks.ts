// `tandem-mcp playbooks`: the playbooks `run --playbook` can start, the built-ins and the workspace's own files
// in .tandem/playbooks/, each with its inputs and version hash; a file that cannot be used is listed with the
// reason and the path of the field at fault. Reads files only: starts nothing and creates nothing.
import { WorkspaceJail } from '../core/jail';
import { listPlaybooks, type PlaybookEntry } from '../orchestrator/playbook/library';
import { EXIT, parseArgs } from './args';
import { cut, formatTable } from './runs';

const DESCRIPTION_CHARS = 60;

/** `writer=codex rounds=3`: each input with its default. */
function describeInputs(entry: PlaybookEntry): string {
  const inputs = Object.entries(entry.inputs).map(([name, spec]) => {
    const value = Array.isArray(spec.default) ? JSON.stringify(spec.default) : String(spec.default);
    return `${name}=${value}`;
  });
  return inputs.length > 0 ? inputs.join(' ') : '-';
}

/** A table; a playbook that cannot be used shows its whole error (the path in it is the point). */
export function renderPlaybooks(entries: readonly PlaybookEntry[]): string {
  const header = ['NAME', 'SOURCE', 'HASH', 'INPUTS', 'DESCRIPTION'];
  const rows = entries.map((entry) => [
    entry.name,
    entry.builtin ? 'builtin' : entry.source,
    entry.hash ?? '-',
    entry.error === null ? describeInputs(entry) : '-',
    entry.error === null ? cut(entry.description, DESCRIPTION_CHARS) : `ERROR ${entry.error}`,
  ]);
  return formatTable(header, rows);
}

export async function playbooksCommand(args: readonly string[]): Promise<number> {
  const parsed = parseArgs('playbooks', args, { flags: { workspace: 'value', json: 'boolean' } });
  const workspaceRoot = parsed.directory('workspace');
  const entries = await listPlaybooks(await WorkspaceJail.open(workspaceRoot));
  process.stdout.write(
    parsed.has('json') ? `${JSON.stringify(entries, null, 2)}\n` : renderPlaybooks(entries),
  );
  return EXIT.ok;
}
