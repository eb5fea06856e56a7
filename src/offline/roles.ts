// Role-aware scenarios for the offline model. Tandem starts every prompt with a role line
// (`[tandem role=reviewer step=review]`), so a task can script each role with `[[role:ROLE key=value ...]]`
// tags: `[[role:reviewer of=gemini verdict=request_changes findings=high]]`,
// `[[role:writer cli=gemini scenario=http500]]`. Without a matching tag a writer follows the task's own
// `[[scenario:...]]` tag and every other role approves, so a reviewer never replays the writer's script.
import type { ScenarioTag } from './model-server';

const ROLE_LINE = /^\[tandem role=([a-z]+) step=([A-Za-z0-9:_-]+)\]/;
const ROLE_TAG = /\[\[role:([a-z]+)((?:\s+[A-Za-z0-9_-]+=[^\s\]]*)*)\s*\]\]/g;
const WRITER_OF = /^You are (?:the reviewer|a security red team)\. (codex|gemini) wrote/m;

export type OfflineCli = 'codex' | 'gemini';

function parseArgs(text: string): Record<string, string> {
  const args: Record<string, string> = {};
  for (const pair of text.trim().split(/\s+/)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const raw = pair.slice(eq + 1);
    // Percent-decoded like scenario tags (a value cannot hold spaces); a lone '%' stays as it is.
    try {
      args[pair.slice(0, eq)] = decodeURIComponent(raw);
    } catch {
      args[pair.slice(0, eq)] = raw;
    }
  }
  return args;
}

/** The scenario for a prompt Tandem rendered for a role, or undefined when the prompt has no role line. */
export function roleScenario(prompt: string, cli: OfflineCli): ScenarioTag | undefined {
  const line = prompt.match(ROLE_LINE);
  if (!line) return undefined;
  const role = line[1] as string;
  const step = line[2] as string;
  const writerOf = prompt.match(WRITER_OF)?.[1];
  for (const match of prompt.matchAll(ROLE_TAG)) {
    if (match[1] !== role) continue;
    const args = parseArgs(match[2] ?? '');
    if (args.cli !== undefined && args.cli !== cli) continue;
    if (args.of !== undefined && args.of !== writerOf) continue;
    if (args.step !== undefined && args.step !== step) continue;
    const { scenario, cli: _cli, of: _of, step: _step, ...rest } = args;
    return { name: scenario ?? (role === 'writer' ? 'reply' : 'review'), args: rest };
  }
  if (role === 'writer') return undefined;
  return { name: 'review', args: { verdict: 'approve' } };
}
