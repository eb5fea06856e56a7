// The five strategies. Each writer works in an isolated copy of the workspace; reviewers read the
// writer's diff (and the copy, read-only); the strategy then decides, with a recorded reason, whether a
// change reaches the workspace. Deterministic: the same results give the same decision.
import path from 'node:path';
import type { StepResult, WorkerKind } from '../workers/contract';
import { severityRank, type Finding, type Severity, type StepRecord } from './model';
import type { CapturedChange, IsolatedCopy } from './isolation';
import type { ApplyPolicy, RunContext, RunOutcome, StrategyInput } from './orchestrator';
import { findingWeight, redteamPrompt, reviewerPrompt, worstSeverity, writerPrompt } from './prompts';
import type { ChangeRecord } from './summary';

export interface StrategyOptions {
  /** The writer for single_worker and security_redteam_pass (default codex). */
  writer?: WorkerKind;
  /** When a change reaches the workspace (default: if the review approves). */
  apply?: ApplyPolicy;
  /** security_redteam_pass: a finding this severe or worse blocks the change (default high). */
  blockAt?: Severity;
  models?: Partial<Record<WorkerKind, string>>;
  /** Folder to work in, relative to the workspace root (already checked against the jail). */
  cwd?: string;
}

function other(kind: WorkerKind): WorkerKind {
  return kind === 'codex' ? 'gemini' : 'codex';
}

interface WrittenChange {
  kind: WorkerKind;
  result: StepResult;
  record: StepRecord;
  copy: IsolatedCopy;
  change: CapturedChange | null;
  changeRecord: ChangeRecord | null;
}

async function write(
  context: RunContext,
  input: StrategyInput,
  kind: WorkerKind,
  name: string,
): Promise<WrittenChange> {
  const copy = await context.isolation.createCopy(`${context.run.id}-${kind}`);
  const { result, record } = await context.step({
    name,
    role: 'writer',
    kind,
    prompt: writerPrompt(input.prompt, name),
    cwd: path.join(copy.dir, input.cwd ?? '.'),
    ...(input.models?.[kind] ? { model: input.models[kind] } : {}),
  });
  if (result.status !== 'succeeded') return { kind, result, record, copy, change: null, changeRecord: null };
  const change = await copy.captureChange();
  const changeRecord = await context.recordChange(kind, change, record);
  return { kind, result, record, copy, change, changeRecord };
}

async function review(
  context: RunContext,
  input: StrategyInput,
  written: WrittenChange,
  reviewer: WorkerKind,
  name: string,
  mode: 'review' | 'redteam',
): Promise<{ result: StepResult; record: StepRecord }> {
  const change = written.change as CapturedChange;
  const prompt =
    mode === 'redteam'
      ? redteamPrompt({
          task: input.prompt,
          writerKind: written.kind,
          diff: change.patch,
          diffTruncated: change.patchTruncated,
        })
      : reviewerPrompt({
          task: input.prompt,
          writerKind: written.kind,
          writerMessage: written.result.finalMessage,
          diff: change.patch,
          diffTruncated: change.patchTruncated,
          step: name,
        });
  return context.step({
    name,
    role: mode === 'redteam' ? 'redteam' : 'reviewer',
    kind: reviewer,
    prompt,
    cwd: path.join(written.copy.dir, input.cwd ?? '.'),
    ...(input.models?.[reviewer] ? { model: input.models[reviewer] } : {}),
  });
}

function describeFindings(findings: readonly Finding[]): string {
  if (findings.length === 0) return 'no findings';
  const worst = worstSeverity(findings);
  return `${findings.length} finding${findings.length === 1 ? '' : 's'} (worst: ${worst})`;
}

function failedWriter(written: WrittenChange): RunOutcome {
  const status = written.result.status === 'cancelled' ? 'cancelled' : 'failed';
  return {
    status,
    outcome: `The writer (${written.kind}) ${written.result.status}: ${written.result.errorMessage ?? 'no detail'}`,
    decision: 'Nothing applied: the writer did not finish.',
    applied: false,
  };
}

async function applyIf(
  context: RunContext,
  written: WrittenChange,
  shouldApply: boolean,
  reason: string,
): Promise<{ applied: boolean; decision: string }> {
  const change = written.change as CapturedChange;
  if (change.stats.files === 0) {
    const decision = `Nothing to apply: ${written.kind} changed no files. ${reason}`;
    await context.decide(decision);
    return { applied: false, decision };
  }
  if (!shouldApply) {
    const decision = `Not applied: ${reason} The patch is kept in the run folder (${written.changeRecord?.patchFile ?? 'none'}).`;
    await context.decide(decision);
    return { applied: false, decision };
  }
  try {
    await context.apply(change, written.changeRecord as ChangeRecord);
  } catch (error) {
    const decision = `Not applied: applying ${written.kind}'s change failed (${(error as Error).message}). The patch is kept in the run folder.`;
    await context.decide(decision);
    return { applied: false, decision };
  }
  const decision = `Applied ${written.kind}'s change (${change.stats.files} files, +${change.stats.insertions} -${change.stats.deletions}): ${reason}`;
  await context.decide(decision, { applied: written.kind });
  return { applied: true, decision };
}

async function single(context: RunContext, input: StrategyInput): Promise<RunOutcome> {
  const kind = input.writer ?? 'codex';
  const written = await write(context, input, kind, 'write');
  try {
    if (written.change === null) return failedWriter(written);
    const policy = input.apply ?? 'if_approved';
    // No reviewer here: "if_approved" has nobody to wait for, so only "never" holds the change back.
    const { applied, decision } = await applyIf(
      context,
      written,
      policy !== 'never',
      policy === 'never' ? 'apply=never was asked.' : 'single worker, no review.',
    );
    return { status: 'succeeded', outcome: `${kind} wrote the change.`, decision, applied };
  } finally {
    await written.copy.dispose();
  }
}

async function writeThenReview(
  context: RunContext,
  input: StrategyInput,
  writer: WorkerKind,
): Promise<RunOutcome> {
  const reviewer = other(writer);
  const written = await write(context, input, writer, 'write');
  try {
    if (written.change === null) return failedWriter(written);
    const { result, record } = await review(context, input, written, reviewer, 'review', 'review');
    if (result.status !== 'succeeded') {
      const decision = `Not applied: the review by ${reviewer} ${result.status}; ${writer}'s change is kept in the run folder.`;
      await context.decide(decision);
      return {
        status: result.status === 'cancelled' ? 'cancelled' : 'partial',
        outcome: `${writer} wrote the change, but the review by ${reviewer} ${result.status}: ${result.errorMessage ?? 'no detail'}`,
        decision,
        applied: false,
      };
    }
    const policy = input.apply ?? 'if_approved';
    const approved = record.verdict === 'approve';
    const shouldApply = policy === 'always' || (policy === 'if_approved' && approved);
    const reason =
      record.verdict === 'none'
        ? `${reviewer} gave no readable verdict.`
        : `${reviewer} ${approved ? 'approved' : 'requested changes'} with ${describeFindings(record.findings)}.`;
    const { applied, decision } = await applyIf(context, written, shouldApply, reason);
    return {
      status: record.verdict === 'none' ? 'partial' : 'succeeded',
      outcome: `${writer} wrote, ${reviewer} reviewed: ${record.verdict}.`,
      decision,
      applied,
    };
  } finally {
    await written.copy.dispose();
  }
}

async function redteam(context: RunContext, input: StrategyInput): Promise<RunOutcome> {
  const writer = input.writer ?? 'codex';
  const attacker = other(writer);
  const blockAt = input.blockAt ?? 'high';
  const written = await write(context, input, writer, 'write');
  try {
    if (written.change === null) return failedWriter(written);
    const { result, record } = await review(context, input, written, attacker, 'redteam', 'redteam');
    if (result.status !== 'succeeded') {
      const decision = `Not applied: the red-team pass by ${attacker} ${result.status}, so the change was not checked.`;
      await context.decide(decision);
      return {
        status: result.status === 'cancelled' ? 'cancelled' : 'partial',
        outcome: `${writer} wrote the change, but the red-team pass ${result.status}: ${result.errorMessage ?? 'no detail'}`,
        decision,
        applied: false,
      };
    }
    const blocking = record.findings.filter(
      (finding) => severityRank(finding.severity) >= severityRank(blockAt),
    );
    const policy = input.apply ?? 'if_approved';
    const shouldApply = policy === 'always' || (policy === 'if_approved' && blocking.length === 0);
    const reason =
      blocking.length > 0
        ? `the red team found ${blocking.length} finding(s) at or above ${blockAt} (${blocking.map((f) => f.title).join('; ')}).`
        : `the red team found nothing at or above ${blockAt} (${describeFindings(record.findings)}).`;
    const { applied, decision } = await applyIf(context, written, shouldApply, reason);
    return {
      status: 'succeeded',
      outcome:
        blocking.length > 0
          ? `Blocked by the red team: ${blocking.length} finding(s) at or above ${blockAt}.`
          : 'The red team passed the change.',
      decision,
      applied,
    };
  } finally {
    await written.copy.dispose();
  }
}

interface Candidate {
  written: WrittenChange;
  review: StepRecord | null;
  reviewStatus: StepResult['status'] | null;
}

/** Best first: approved, then lighter findings, then the smaller change, then codex before gemini. */
export function rankCandidates<
  T extends { kind: WorkerKind; approved: boolean; weight: number; size: number },
>(candidates: T[]): T[] {
  return [...candidates].sort(
    (a, b) =>
      Number(b.approved) - Number(a.approved) ||
      a.weight - b.weight ||
      a.size - b.size ||
      (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0),
  );
}

async function parallel(context: RunContext, input: StrategyInput): Promise<RunOutcome> {
  const kinds: WorkerKind[] = ['codex', 'gemini'];
  const written = await Promise.all(kinds.map((kind) => write(context, input, kind, `write:${kind}`)));
  try {
    const usable = written.filter((entry) => entry.change !== null);
    if (usable.length === 0) {
      return {
        status: written.some((entry) => entry.result.status === 'cancelled') ? 'cancelled' : 'failed',
        outcome: `Both writers failed: ${written.map((entry) => `${entry.kind} ${entry.result.status}`).join(', ')}.`,
        decision: 'Nothing applied: no writer finished.',
        applied: false,
      };
    }
    // Cross-review: each finished change is reviewed by the other CLI.
    const candidates: Candidate[] = await Promise.all(
      usable.map(async (entry) => {
        const { result, record } = await review(
          context,
          input,
          entry,
          other(entry.kind),
          `review:${entry.kind}`,
          'review',
        );
        return {
          written: entry,
          review: result.status === 'succeeded' ? record : null,
          reviewStatus: result.status,
        };
      }),
    );
    const ranked = rankCandidates(
      candidates.map((candidate) => ({
        kind: candidate.written.kind,
        candidate,
        approved: candidate.review?.verdict === 'approve',
        weight: findingWeight(candidate.review?.findings ?? []),
        size:
          (candidate.written.change?.stats.insertions ?? 0) +
          (candidate.written.change?.stats.deletions ?? 0),
      })),
    );
    const explanation = ranked
      .map(
        (entry) =>
          `${entry.kind}: ${entry.candidate.review ? `${entry.candidate.review.verdict}, ${describeFindings(entry.candidate.review.findings)}` : `review ${entry.candidate.reviewStatus}`}, ${entry.size} lines changed`,
      )
      .join('; ');
    const best = ranked[0] as (typeof ranked)[number];
    const policy = input.apply ?? 'if_approved';
    const shouldApply = policy === 'always' || (policy === 'if_approved' && best.approved);
    const reason = best.approved
      ? `ranked first (${explanation}).`
      : `no change was approved (${explanation}).`;
    const { applied, decision } = await applyIf(context, best.candidate.written, shouldApply, reason);
    const partial =
      written.some((entry) => entry.change === null) ||
      candidates.some((candidate) => candidate.review === null);
    return {
      status: partial ? 'partial' : 'succeeded',
      outcome: `${usable.length} of 2 writers finished; ${best.kind} ranked first.`,
      decision,
      applied,
    };
  } finally {
    await Promise.all(written.map((entry) => entry.copy.dispose()));
  }
}

export async function runStrategy(context: RunContext, input: StrategyInput): Promise<RunOutcome> {
  switch (input.strategy) {
    case 'single_worker':
      return single(context, input);
    case 'codex_writes_gemini_reviews':
      return writeThenReview(context, input, 'codex');
    case 'gemini_writes_codex_reviews':
      return writeThenReview(context, input, 'gemini');
    case 'parallel_dual_write_review':
      return parallel(context, input);
    case 'security_redteam_pass':
      return redteam(context, input);
  }
}
