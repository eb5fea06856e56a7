// The auditable record of a finished run: summary.json (schema version 2, docs/summary-schema.md) and the same data as
// summary.md, written into the run's folder. The CLI and the dashboard render from summary.json.
import * as z from 'zod';
import {
  changeRecordSchema,
  diffStatLine,
  runRecordSchema,
  runWhat,
  stepRecordSchema,
  type RunRecord,
} from './model';

export const SUMMARY_SCHEMA_VERSION = 2;

export type { ChangeRecord } from './model';

/** summary.json as written and as read back (docs/summary-schema.md documents every field of it). */
export const runSummarySchema = z.object({
  schemaVersion: z.literal(SUMMARY_SCHEMA_VERSION),
  run: runRecordSchema,
  steps: z.array(stepRecordSchema),
  changes: z.array(changeRecordSchema),
  /** Every decision the run recorded, in order: retries, fallbacks, verifications, adjudication, apply. */
  decisions: z.array(z.object({ time: z.string(), message: z.string() })),
  /** For playbook runs: the inputs it ran with (the playbook itself and its trace are in playbook.json). */
  playbookInputs: z.record(z.string(), z.unknown()).nullable(),
  /** What a reader must know about how the run ran (steps without the OS sandbox); absent in older records. */
  warnings: z.array(z.string()).default([]),
});
export type RunSummary = z.infer<typeof runSummarySchema>;

function duration(ms: number | null): string {
  if (ms === null) return '-';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** The head of a run's Markdown: who asked, what, how it ended, and the task as given. */
export function runHeaderMarkdown(run: RunRecord): string[] {
  return [
    `# Run ${run.id}`,
    '',
    `- **Status:** ${run.status}${run.outcome ? ` — ${run.outcome}` : ''}`,
    `- **Asked by:** ${run.owner}`,
    `- **What:** ${runWhat(run)}${run.playbook ? ` (version ${run.playbook.hash}, from ${run.playbook.source})` : ''}`,
    `- **Created:** ${run.createdAt}${run.endedAt ? `, ended ${run.endedAt}` : ''}`,
    `- **Steps:** ${run.stepCount}`,
    `- **Decision:** ${run.decision ?? 'none'}`,
    `- **Applied to the workspace:** ${run.applied ? 'yes' : 'no'}`,
    '',
    '## Task',
    '',
    '````text',
    run.prompt,
    '````',
  ];
}

export function renderSummaryMarkdown(summary: RunSummary): string {
  const { run, steps, changes } = summary;
  const lines = [
    ...runHeaderMarkdown(run),
    '',
    '## Steps',
    '',
    '| # | step | role | worker | model | status | duration | exit | tokens | verdict | findings |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...steps.map((step) =>
      [
        '',
        step.index,
        cell(step.name),
        step.role,
        step.workerKind,
        cell(step.model),
        step.status,
        duration(step.durationMs),
        step.signal ?? (step.exitCode === null ? '-' : String(step.exitCode)),
        step.tokens ?? '-',
        step.verdict ?? '-',
        step.findings.length,
        '',
      ]
        .join(' | ')
        .trim(),
    ),
  ];
  for (const step of steps) {
    lines.push('', `### ${step.index}. ${step.name} (${step.workerKind}, ${step.role})`, '');
    lines.push(`- Command: \`${cell(step.argv.join(' '))}\``);
    if (step.errorMessage) lines.push(`- Error: ${cell(step.errorMessage)}`);
    if (step.diffStats) {
      lines.push(`- Changed: ${diffStatLine(step.diffStats)}`);
    }
    for (const finding of step.findings) {
      lines.push(
        `- Finding (${finding.severity}): ${cell(finding.title)}${finding.file ? ` in ${cell(finding.file)}` : ''}${finding.detail ? ` — ${cell(finding.detail)}` : ''}`,
      );
    }
    // Four backticks: a reviewer's reply holds fenced blocks of its own.
    if (step.finalMessage) lines.push('', '````text', step.finalMessage.slice(0, 4000), '````');
  }
  if (summary.playbookInputs) {
    lines.push('', '## Playbook', '');
    lines.push(`- Inputs: \`${cell(JSON.stringify(summary.playbookInputs))}\``);
    lines.push('- Every rendered prompt, condition and decision: `playbook.json` in the run folder.');
  }
  if (summary.warnings.length > 0) {
    lines.push('', '## Warnings', '');
    for (const warning of summary.warnings) lines.push(`- ${cell(warning)}`);
  }
  if (summary.decisions.length > 0) {
    lines.push('', '## Decisions', '');
    for (const decision of summary.decisions) lines.push(`- ${decision.time}: ${cell(decision.message)}`);
  }
  if (changes.length > 0) {
    lines.push(
      '',
      '## Changes',
      '',
      '| from | files | + | - | applied | patch |',
      '|---|---|---|---|---|---|',
    );
    for (const change of changes) {
      lines.push(
        `| ${change.label} | ${change.stats.files} | ${change.stats.insertions} | ${change.stats.deletions} | ${change.applied ? 'yes' : 'no'} | ${change.patchFile ?? '-'}${change.patchTruncated ? ' (cut)' : ''} |`,
      );
    }
    const steering = changes.flatMap((change) =>
      change.steeringFiles.map((file) => `- ${change.label}: \`${file.path}\` — ${cell(file.reason)}`),
    );
    if (steering.length > 0) {
      // Ahead of the file list: these decide what runs or what git shows, not what the program does.
      lines.push('', '### Files that steer git, an agent or a tool', '', ...steering);
    }
    lines.push('');
    for (const change of changes) {
      for (const file of change.files) {
        lines.push(
          `- ${change.label}: ${file.change} \`${file.path}\` (+${file.insertions} -${file.deletions})`,
        );
      }
    }
  }
  return lines.join('\n') + '\n';
}
