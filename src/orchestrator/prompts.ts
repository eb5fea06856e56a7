// The prompts Tandem sends to workers for each role, and the parser of a reviewer's structured verdict.
// Every prompt starts with a fixed role line so the output can be traced (and the offline model can
// answer by role); the user's task is quoted, never interpreted.
import { findingSchema, severityRank, type Finding, type Verdict } from './model';
import { steeringFiles } from './steering-files';
import type { Role } from '../workers/contract';

/** The most of a diff put into a reviewer's prompt; beyond it the reviewer reads the files in its copy. */
export const MAX_DIFF_IN_PROMPT = 200 * 1024;

export function roleLine(role: Role, step: string): string {
  return `[tandem role=${role} step=${step}]`;
}

export function writerPrompt(task: string, step = 'write'): string {
  return [
    roleLine('writer', step),
    'You are the writer. Make the change the task asks for, in the current directory only.',
    'When you are done, reply with a short summary of what you changed and why.',
    '',
    'Task:',
    task,
  ].join('\n');
}

const VERDICT_FORMAT = [
  'End your reply with one fenced ```json block of this shape:',
  '{"verdict": "approve" | "request_changes", "findings": [{"severity": "info|low|medium|high|critical", "title": "...", "detail": "...", "file": "path"}]}',
];

function quotedDiff(diff: string, truncated: boolean): string[] {
  const body = diff.length > MAX_DIFF_IN_PROMPT ? diff.slice(0, MAX_DIFF_IN_PROMPT) : diff;
  const cut = truncated || diff.length > MAX_DIFF_IN_PROMPT;
  return [
    '```diff',
    body === '' ? '(no file changes)' : body,
    '```',
    ...(cut ? ['(The diff was cut; read the changed files in the current directory for the rest.)'] : []),
  ];
}

export function plannerPrompt(task: string, step = 'plan'): string {
  return [
    roleLine('planner', step),
    'You are the planner. Read the code in the current directory; you cannot modify files.',
    'Write a short numbered plan another engineer will follow to do the task: which files to change, how, and',
    'how to check the result. Reply with the plan only.',
    '',
    'Task:',
    task,
  ].join('\n');
}

/**
 * Names every steering file the change touches, ahead of the diff: an edit to one can change what runs
 * later or what git shows, so it needs a reviewer's attention even when its diff looks harmless.
 */
function steeringLines(changedPaths: readonly string[] | undefined): string[] {
  const found = steeringFiles(changedPaths ?? []);
  if (found.length === 0) return [];
  return [
    '',
    'Attention: the change touches files that steer git, an agent, an editor or a tool rather than being',
    'program code. Check each one for what it makes run, load or hide:',
    ...found.map((file) => `- ${file.path}: ${file.reason}`),
  ];
}

/** Files git shows as binary (a NUL byte is enough, even in a source file): their content is not text here. */
function binaryLines(binaryPaths: readonly string[] | undefined): string[] {
  if (binaryPaths === undefined || binaryPaths.length === 0) return [];
  return [
    '',
    'Attention: these files are in the diff as binary data, not as text, so you cannot read what they hold.',
    'Read them in the current directory; do not approve content you could not check:',
    ...binaryPaths.map((file) => `- ${file}`),
  ];
}

/** Extra instructions a playbook gives a reviewer (e.g. the plan to check the change against). */
function focusLines(focus: string | undefined): string[] {
  return focus === undefined || focus.trim() === '' ? [] : ['', 'Also:', focus];
}

export function reviewerPrompt(options: {
  task: string;
  writerKind: string;
  writerMessage: string;
  diff: string;
  diffTruncated: boolean;
  /** The paths the change touches, for the steering-file call-out. */
  changedPaths?: readonly string[];
  /** The paths the diff carries as binary. */
  binaryPaths?: readonly string[];
  step?: string;
  focus?: string;
}): string {
  return [
    roleLine('reviewer', options.step ?? 'review'),
    `You are the reviewer. ${options.writerKind} wrote a change for the task below. You cannot modify files.`,
    'Check the change for correctness, completeness and risk against the task. The current directory holds the changed code.',
    '',
    'Task:',
    options.task,
    '',
    `The writer's summary:`,
    options.writerMessage || '(none)',
    ...steeringLines(options.changedPaths),
    ...binaryLines(options.binaryPaths),
    '',
    'The change:',
    ...quotedDiff(options.diff, options.diffTruncated),
    ...focusLines(options.focus),
    '',
    ...VERDICT_FORMAT,
  ].join('\n');
}

export function redteamPrompt(options: {
  task: string;
  writerKind: string;
  diff: string;
  diffTruncated: boolean;
  /** The paths the change touches, for the steering-file call-out. */
  changedPaths?: readonly string[];
  /** The paths the diff carries as binary. */
  binaryPaths?: readonly string[];
  step?: string;
  focus?: string;
}): string {
  return [
    roleLine('redteam', options.step ?? 'redteam'),
    `You are a security red team. ${options.writerKind} wrote the change below for the task. You cannot modify files.`,
    'Look for vulnerabilities it introduces: injection, path traversal, secrets, unsafe deserialisation, missing',
    'authorisation, unsafe process execution, and anything an attacker could use. Rate each finding by severity.',
    '',
    'Task:',
    options.task,
    ...steeringLines(options.changedPaths),
    ...binaryLines(options.binaryPaths),
    '',
    'The change:',
    ...quotedDiff(options.diff, options.diffTruncated),
    ...focusLines(options.focus),
    '',
    ...VERDICT_FORMAT,
  ].join('\n');
}

export interface ParsedReview {
  verdict: Verdict;
  findings: Finding[];
  /** Why no verdict could be read, when none could. */
  problem: string | null;
}

/** Reads the last fenced json block (or a bare JSON object) holding a verdict from a reviewer's reply. */
export function parseReview(message: string): ParsedReview {
  const candidates: string[] = [];
  for (const match of message.matchAll(/```(?:json)?\s*\n([\s\S]*?)```/g)) candidates.push(match[1] ?? '');
  const bare = message.match(/\{[^{}]*"verdict"[\s\S]*\}/);
  if (bare) candidates.push(bare[0]);
  for (const candidate of candidates.reverse()) {
    let data: unknown;
    try {
      data = JSON.parse(candidate);
    } catch {
      continue;
    }
    if (data === null || typeof data !== 'object') continue;
    const record = data as { verdict?: unknown; findings?: unknown };
    const verdict =
      record.verdict === 'approve' || record.verdict === 'request_changes' ? record.verdict : null;
    if (verdict === null) continue;
    const findings: Finding[] = [];
    for (const item of Array.isArray(record.findings) ? record.findings : []) {
      const parsed = findingSchema.safeParse(item);
      if (parsed.success) findings.push(parsed.data);
    }
    return { verdict, findings, problem: null };
  }
  return {
    verdict: 'none',
    findings: [],
    problem: 'the reply holds no JSON block with a verdict of approve or request_changes',
  };
}

/** A weight for ranking candidates: more and worse findings weigh more. */
export function findingWeight(findings: readonly Finding[]): number {
  return findings.reduce((sum, finding) => sum + 4 ** severityRank(finding.severity), 0);
}
