// The run model shared by the orchestrator, the run store, the MCP tools and the editor: what a run is,
// what its steps recorded, and the events a caller can follow with a cursor.
import * as z from 'zod';
import { roleSchema, stepStatusSchema, workerKindSchema } from '../workers/contract';

export const STRATEGIES = [
  'single_worker',
  'codex_writes_gemini_reviews',
  'gemini_writes_codex_reviews',
  'parallel_dual_write_review',
  'security_redteam_pass',
] as const;
export const strategySchema = z.enum(STRATEGIES);
export type StrategyName = z.infer<typeof strategySchema>;

export const RUN_KINDS = ['dispatch', 'strategy', 'playbook'] as const;
export type RunKind = (typeof RUN_KINDS)[number];

export const RUN_STATUSES = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'partial',
  'cancelled',
  'interrupted',
] as const;
export const runStatusSchema = z.enum(RUN_STATUSES);
export type RunStatus = z.infer<typeof runStatusSchema>;

export function isFinished(status: RunStatus): boolean {
  return status !== 'queued' && status !== 'running';
}

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export const severitySchema = z.enum(SEVERITIES);
export type Severity = z.infer<typeof severitySchema>;

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

export const findingSchema = z.object({
  severity: severitySchema,
  title: z.string(),
  detail: z.string().default(''),
  file: z.string().optional(),
});
export type Finding = z.infer<typeof findingSchema>;

export const VERDICTS = ['approve', 'request_changes', 'none'] as const;
export type Verdict = (typeof VERDICTS)[number];

export const FILE_CHANGES = ['added', 'modified', 'deleted'] as const;
export const fileChangeSchema = z.enum(FILE_CHANGES);

export const diffStatsSchema = z.object({
  files: z.number().int().nonnegative(),
  insertions: z.number().int().nonnegative(),
  deletions: z.number().int().nonnegative(),
});
export type DiffStats = z.infer<typeof diffStatsSchema>;

/** "3 files, +12 -4"; "1 file, +1 -0". */
export function diffStatLine(stats: DiffStats): string {
  return `${stats.files} ${stats.files === 1 ? 'file' : 'files'}, +${stats.insertions} -${stats.deletions}`;
}

/** One writer's change as the run folder keeps it (changes.json, and in summary.json). */
export const changeRecordSchema = z.object({
  /** Which writer produced it: the step name, e.g. "write" or "revise-2", or the CLI for dispatches. */
  label: z.string(),
  stats: diffStatsSchema,
  files: z.array(
    z.object({
      path: z.string(),
      change: fileChangeSchema,
      insertions: z.number().int().nonnegative(),
      deletions: z.number().int().nonnegative(),
    }),
  ),
  /** Files of the change that steer git, an agent CLI, Tandem, an editor or a tool (steering-files.ts). */
  steeringFiles: z.array(z.object({ path: z.string(), reason: z.string() })).default([]),
  /** File in the run folder holding the patch. */
  patchFile: z.string().nullable(),
  patchTruncated: z.boolean(),
  applied: z.boolean(),
});
export type ChangeRecord = z.infer<typeof changeRecordSchema>;

/** One step as recorded in a run: who did what, how it ended, what it produced. */
export const stepRecordSchema = z.object({
  index: z.number().int().nonnegative(),
  /** Stable name inside the strategy, e.g. "write", "review", "write:codex". */
  name: z.string(),
  role: roleSchema,
  workerKind: workerKindSchema,
  workerId: z.string().nullable(),
  model: z.string(),
  status: stepStatusSchema.or(z.literal('running')),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  durationMs: z.number().nullable(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  timedOut: z.boolean(),
  /** The command as run, secrets redacted and the prompt left out (it goes on stdin). */
  argv: z.array(z.string()),
  finalMessage: z.string(),
  errorMessage: z.string().nullable(),
  tokens: z.number().int().nonnegative().nullable(),
  /** For writers: what changed in their isolated copy. */
  diffStats: diffStatsSchema.nullable(),
  filesChanged: z.array(z.object({ path: z.string(), change: fileChangeSchema })),
  /** For reviewers and red-team passes. */
  verdict: z.enum(VERDICTS).nullable(),
  findings: z.array(findingSchema),
  logDir: z.string().nullable(),
});
export type StepRecord = z.infer<typeof stepRecordSchema>;

/** A run as kept in the index: enough to list, filter and show without reading its folder. */
export const runRecordSchema = z.object({
  id: z.string(),
  kind: z.enum(RUN_KINDS),
  strategy: strategySchema.nullable(),
  /** For playbook runs: which playbook, its version hash, and where it came from (absent in older records). */
  playbook: z.object({ name: z.string(), hash: z.string(), source: z.string() }).nullable().default(null),
  /** agentId of the caller who started it ("human" for the editor user). */
  owner: z.string(),
  /** The task as given, redacted; cut to 4000 characters in the index. */
  prompt: z.string(),
  status: runStatusSchema,
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  /** Worker kinds (or worker ids for dispatches) involved, in step order. */
  workers: z.array(z.string()),
  stepCount: z.number().int().nonnegative(),
  /** One sentence: what happened, or why it ended as it did. */
  outcome: z.string().nullable(),
  /** The decision the strategy made (which change was applied, blocked, kept). */
  decision: z.string().nullable(),
  /** Whether the run's change reached the workspace. */
  applied: z.boolean(),
  /** The process that runs it, to tell a crashed owner from a live one after a restart. */
  host: z.object({
    pid: z.number().int(),
    startTime: z.string().nullable(),
    /** The machine's boot the process ran in (absent in older records). */
    bootId: z.string().nullable().optional(),
  }),
});
export type RunRecord = z.infer<typeof runRecordSchema>;

/** What a run carries out, for lists and titles: the strategy, "playbook:NAME", or "task" for a dispatch. */
export function runWhat(
  run: Pick<RunRecord, 'kind' | 'strategy'> & { playbook?: RunRecord['playbook'] },
): string {
  if (run.strategy) return run.strategy;
  if (run.playbook) return `playbook:${run.playbook.name}`;
  return run.kind === 'dispatch' ? 'task' : run.kind;
}

export type RunEventType =
  | 'run_queued'
  | 'run_started'
  | 'step_started'
  | 'step_progress'
  | 'step_finished'
  | 'decision'
  | 'run_finished';

export interface RunEvent {
  /** 1, 2, 3... per run: the cursor of run_wait. */
  seq: number;
  time: string;
  type: RunEventType;
  /** Short human-readable line. */
  message: string;
  step?: number;
  data?: Record<string, unknown>;
}
