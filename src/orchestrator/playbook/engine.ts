// Runs a checked playbook inside one run: steps in document order, parallel branches side by side, loops up to
// their bound, conditions on verdicts, findings, success and verification. Deterministic: the same inputs and
// the same worker replies give the same steps, prompts and decisions. Everything is recorded in the run's
// playbook.json trace (every rendered prompt, condition and decision, each at a position that does not depend
// on timing), so a run can be replayed and compared step for step.
//
// Failure policy: per failure class of the worker layer, FAILURE_POLICY (policy.ts) says whether a step is retried
// with doubling backoff and whether it may go to the other CLI; the step's `onFailure` and the run's resilience
// are merged field by field. A step still failing stops its branch. A stopped run keeps what was written: its
// patches stay in the run folder and the run ends `partial` with the reason (or `failed` when nothing was written).
//
// Independence: who works a step is chosen from who actually worked the steps before, fallbacks included
// (`otherThan`, `sameAs`). An `otherThan` step never runs on the CLI of the step it names, and a review never
// goes to a CLI that wrote the change it reviews, except as its declared worker (a self-review the playbook
// asked for): a review whose CLI took the change over by a fallback goes to the other CLI, and with no CLI left
// the branch stops.
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { runProcess } from '../../core/exec';
import { getDefaultRedactor, redactCapturedText } from '../../core/redact';
import { readStateFile } from '../../core/state-file';
import type { Role, StepResult, WorkerKind } from '../../workers/contract';
import type { CapturedChange, IsolatedCopy } from '../isolation';
import {
  diffStatLine,
  severityRank,
  type Finding,
  type RunStatus,
  type Severity,
  type StepRecord,
} from '../model';
import type { ApplyPolicy, RunContext, RunOutcome } from '../orchestrator';
import {
  MAX_DIFF_IN_PROMPT,
  findingWeight,
  plannerPrompt,
  redteamPrompt,
  reviewerPrompt,
  writerPrompt,
} from '../prompts';
import type { ChangeRecord } from '../summary';
import { backoffWait, mergeResilience, nextMove } from './policy';
import { type Condition, type Playbook, type Resilience, type Step } from './schema';
import { VerifyCommandError, jailVerifyCommand } from './verify-command';

export const TRACE_FILE = 'playbook.json';
export const TRACE_SCHEMA_VERSION = 2;
const VERIFY_TIMEOUT_MS = 10 * 60 * 1000;
const VERIFY_OUTPUT_BYTES = 256 * 1024;
/** A package.json larger than this is not read for a default test command. */
const MAX_MANIFEST_BYTES = 1024 * 1024;
const TRACE_PROMPT_CHARS = 16 * 1024;
const UNSET = '(not available)';

export interface PlaybookRunInput {
  owner: string;
  /** The task as given: {{task}} in templates. */
  task: string;
  playbook: Playbook;
  /** Where it came from: "builtin:handoff" or ".tandem/playbooks/name.json". */
  source: string;
  hash: string;
  /** Resolved inputs (defaults applied and checked). */
  inputs: Record<string, unknown>;
  apply?: ApplyPolicy;
  models?: Partial<Record<WorkerKind, string>>;
  /** Folder to work in, relative to the workspace root (already checked against the jail). */
  cwd?: string;
  /** The policy of worker steps that set none: e.g. { fallback: true } lets every step go to the other CLI. */
  resilience?: Resilience;
}

export type TraceKind = 'step' | 'skip' | 'condition' | 'verify' | 'decision' | 'stop';

/** One thing the playbook did, at a position fixed by the playbook's structure (not by timing). */
export interface TraceEntry {
  /** Step index path: [step, branch, step, round, ...]; sorting by it gives the replayable order. */
  position: number[];
  kind: TraceKind;
  /** The playbook step id. */
  id: string;
  /** The step record's name (with round and attempt suffixes) for worker steps. */
  name?: string;
  worker?: WorkerKind;
  role?: Role;
  /** The prompt as sent (cut to 16 KiB here; its SHA-256 covers all of it). */
  prompt?: string;
  promptSha256?: string;
  /** The run file holding the whole prompt (`prompt-NAME.txt`), secrets redacted. */
  promptFile?: string;
  status?: string;
  verdict?: string | null;
  findings?: number;
  value?: boolean;
  /** The step an adjudication chose, or the write an apply decision is about. */
  chosen?: string;
  message?: string;
}

export interface PlaybookTrace {
  schemaVersion: number;
  playbook: Playbook;
  source: string;
  hash: string;
  task: string;
  inputs: Record<string, unknown>;
  apply: ApplyPolicy;
  /** The run-level policy, models and folder, so a replay runs the same way. */
  resilience: Resilience | null;
  models: Partial<Record<WorkerKind, string>>;
  cwd: string | null;
  entries: TraceEntry[];
}

/**
 * The sequence a replay must reproduce: each entry's position, kind, step, worker, status, verdict, value, the
 * step chosen or applied, and the prompt's hash (last). Messages are left out: they are for people, and a
 * failure's wording comes from the CLI.
 */
export function traceSignature(entries: readonly TraceEntry[]): string[] {
  return sortTrace(entries).map((entry) =>
    [
      entry.position.join('.'),
      entry.kind,
      entry.name ?? entry.id,
      entry.worker ?? '',
      entry.status ?? '',
      entry.verdict ?? '',
      entry.value === undefined ? '' : String(entry.value),
      // Only where there is a choice: the other lines read as they did before the field existed.
      ...(entry.chosen === undefined ? [] : [`chose:${entry.chosen}`]),
      entry.promptSha256 ?? '',
    ].join(' '),
  );
}

export function sortTrace(entries: readonly TraceEntry[]): TraceEntry[] {
  return [...entries].sort((a, b) => comparePositions(a.position, b.position));
}

function comparePositions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const diff = (a[i] as number) - (b[i] as number);
    if (diff !== 0) return diff;
  }
  return a.length - b.length;
}

const KINDS: readonly WorkerKind[] = ['codex', 'gemini'];

function other(kind: WorkerKind): WorkerKind {
  return kind === 'codex' ? 'gemini' : 'codex';
}

/**
 * The CLIs that wrote a change (a continued write gathers every step that worked in its copy), each marked
 * `declared` when the playbook chose it for a step and `fallback` when it only took a step over.
 */
type Authors = Partial<Record<WorkerKind, 'declared' | 'fallback'>>;

type Result =
  | { type: 'plan'; kind: WorkerKind; declared: WorkerKind; ok: boolean; status: string; message: string }
  | {
      type: 'write';
      kind: WorkerKind;
      declared: WorkerKind;
      authors: Authors;
      ok: boolean;
      status: string;
      message: string;
      copy: IsolatedCopy;
      change: CapturedChange | null;
      changeRecord: ChangeRecord | null;
    }
  | {
      type: 'review';
      kind: WorkerKind;
      declared: WorkerKind;
      ok: boolean;
      status: string;
      of: string;
      message: string;
      verdict: 'approve' | 'request_changes' | 'none' | null;
      findings: Finding[];
    }
  | {
      type: 'verify';
      of: string;
      passed: boolean | null;
      exitCode: number | null;
      output: string;
      command: string[];
    }
  | { type: 'adjudicate'; chosen: string | null; acceptable: boolean; explanation: string };

/** Ends a branch (or the run): a step failed past its resilience policy. */
class Stop extends Error {
  constructor(
    readonly reason: string,
    readonly cancelled: boolean,
  ) {
    super(reason);
  }
}

type WorkedResult = Extract<Result, { type: 'plan' | 'write' | 'review' }>;

/** How a worker step ended, after its retries and fallback: the last attempt and what led to it. */
interface WorkOutcome {
  result: StepResult;
  record: StepRecord;
  kind: WorkerKind;
  /** Why a fallback was not taken (it would break the step's independence). */
  refused?: string;
  /** The first CLI's failure, when the step fell back: "codex failed: HTTP 500 from the model". */
  before?: string;
}
type WorkerStep = Extract<Step, { type: 'plan' | 'write' | 'review' }>;

const DONE: Record<WorkedResult['type'], string> = { plan: 'planned', write: 'written', review: 'reviewed' };

/** The CLIs an `otherThan` of this step must avoid: everyone who wrote its change, else the CLI that ran it. */
function workersOf(result: WorkedResult): WorkerKind[] {
  if (result.type === 'write' && result.change !== null) {
    const authors = KINDS.filter((kind) => result.authors[kind] !== undefined);
    if (authors.length > 0) return authors;
  }
  return [result.kind];
}

/** Whether a fallback decided who worked the step (or wrote part of its change). */
function tookOver(result: WorkedResult): boolean {
  if (result.type === 'write' && result.change !== null)
    return Object.values(result.authors).includes('fallback');
  return result.kind !== result.declared;
}

/** The authors after one more write in the same copy: a CLI the playbook chose once stays `declared`. */
function withAuthor(authors: Authors, kind: WorkerKind, how: 'declared' | 'fallback'): Authors {
  return { ...authors, [kind]: authors[kind] === 'declared' ? 'declared' : how };
}

/**
 * Why a worker step stopped its branch: "the writer (gemini) failed in write: HTTP 500 (after codex failed: HTTP
 * 500)", or "...; not handed to codex: ..." when the fallback was refused.
 */
function failure(what: string, outcome: WorkOutcome): string {
  const { result, refused, before } = outcome;
  return `${what}: ${result.errorMessage ?? 'no detail'}${before ? ` (after ${before})` : ''}${refused ? `; ${refused}` : ''}`;
}

function formatFindings(findings: readonly Finding[]): string {
  if (findings.length === 0) return '(no findings)';
  return findings
    .map(
      (finding) =>
        `- [${finding.severity}] ${finding.title}${finding.file ? ` (${finding.file})` : ''}${finding.detail ? `: ${finding.detail}` : ''}`,
    )
    .join('\n');
}

function describeFindings(findings: readonly Finding[]): string {
  if (findings.length === 0) return 'no findings';
  let worst: Severity = 'info';
  for (const finding of findings)
    if (severityRank(finding.severity) > severityRank(worst)) worst = finding.severity;
  return `${findings.length} finding${findings.length === 1 ? '' : 's'} (worst: ${worst})`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class PlaybookExecution {
  private readonly results = new Map<string, Result>();
  /** When each step last ran (its result was kept), and under which name ("review-2" in round 2). */
  private readonly lastRan = new Map<string, { seq: number; name: string }>();
  private ranCount = 0;
  /** The last review and verification of each write, for adjudication. */
  private readonly reviewOf = new Map<string, string>();
  private readonly verifyOf = new Map<string, string>();
  private readonly copies: IsolatedCopy[] = [];
  private readonly entries: TraceEntry[] = [];
  private readonly partialReasons: string[] = [];
  private readonly decisions: string[] = [];
  private applied = false;
  private copyCounter = 0;
  private saving: Promise<void> = Promise.resolve();
  private readonly policy: ApplyPolicy;

  constructor(
    private readonly context: RunContext,
    private readonly input: PlaybookRunInput,
  ) {
    this.policy = input.apply ?? 'if_approved';
  }

  async run(): Promise<RunOutcome> {
    const { playbook } = this.input;
    let stop: Stop | undefined;
    // The header first: a run that dies in its first step still leaves what it takes to replay it.
    await this.saveTrace();
    try {
      await this.runSteps(playbook.steps, [], []);
    } catch (error) {
      if (!(error instanceof Stop)) throw error;
      stop = error;
      await this.trace({ position: [playbook.steps.length], kind: 'stop', id: 'run', message: error.reason });
    } finally {
      await this.saving;
      await this.saveTrace();
      await Promise.all(this.copies.map((copy) => copy.dispose().catch(() => undefined)));
    }
    return this.outcome(stop);
  }

  private outcome(stop: Stop | undefined): RunOutcome {
    const { playbook } = this.input;
    const decision = this.decisions.length > 0 ? this.decisions.join(' ') : 'No change was applied.';
    if (this.context.signal.aborted || stop?.cancelled) {
      return {
        status: 'cancelled',
        outcome: `Cancelled. ${stop?.reason ?? ''}`.trim(),
        decision,
        applied: this.applied,
      };
    }
    const written = [...this.results.values()].some(
      (result) => result.type === 'write' && result.change !== null,
    );
    if (stop) {
      const status: RunStatus = written ? 'partial' : 'failed';
      const kept = written ? ' What was written is kept in the run folder.' : '';
      const reason = /[.!?]$/.test(stop.reason) ? stop.reason : `${stop.reason}.`;
      return {
        status,
        outcome: `${playbook.name} stopped: ${reason}${kept}`,
        decision,
        applied: this.applied,
      };
    }
    if (this.partialReasons.length > 0) {
      return {
        status: 'partial',
        outcome: `${this.workDone()}; but ${this.partialReasons.join(' ')}`,
        decision,
        applied: this.applied,
      };
    }
    return { status: 'succeeded', outcome: `${this.workDone()}.`, decision, applied: this.applied };
  }

  /** Keeps the result of step `id`, run as `name`. */
  private keep(id: string, name: string, result: Result): void {
    this.results.set(id, result);
    this.ranCount += 1;
    this.lastRan.set(id, { seq: this.ranCount, name });
  }

  /**
   * What the steps came to, in the order they last ran, each under the name of its last round: "write by
   * codex succeeded, revise-2 by codex succeeded, review-2 by gemini: approve".
   */
  private workDone(): string {
    const parts: string[] = [];
    const order = (key: string) => this.lastRan.get(key)?.seq ?? Number.MAX_SAFE_INTEGER;
    const ids = [...this.results.keys()].sort((a, b) => order(a) - order(b));
    for (const key of ids) {
      const result = this.results.get(key) as Result;
      const id = this.lastRan.get(key)?.name ?? key;
      if (result.type === 'review') parts.push(`${id} by ${result.kind}: ${result.verdict ?? result.status}`);
      else if (result.type === 'plan' || result.type === 'write')
        parts.push(`${id} by ${result.kind} ${result.status}`);
      else if (result.type === 'verify') {
        parts.push(`${id} ${result.passed === null ? 'skipped' : result.passed ? 'passed' : 'failed'}`);
      } else parts.push(`${id}: ${result.chosen ?? 'none'} chosen`);
    }
    return parts.length > 0 ? parts.join(', ') : 'No step ran';
  }

  // ---- structure ----

  private async runSteps(steps: readonly Step[], position: number[], rounds: number[]): Promise<void> {
    for (const [index, step] of steps.entries()) {
      if (this.context.signal.aborted) throw new Stop('the run was cancelled', true);
      await this.runStep(step, [...position, index], rounds);
    }
  }

  private async runStep(step: Step, position: number[], rounds: number[]): Promise<void> {
    switch (step.type) {
      case 'plan':
        return this.plan(step, position, rounds);
      case 'write':
        return this.write(step, position, rounds);
      case 'review':
        return this.review(step, position, rounds);
      case 'verify':
        return this.verify(step, position, rounds);
      case 'adjudicate':
        return this.adjudicate(step, position);
      case 'apply':
        return this.apply(step, position);
      case 'parallel': {
        const outcomes = await Promise.allSettled(
          step.branches.map((branch, b) => this.runSteps(branch, [...position, b], rounds)),
        );
        for (const [b, outcome] of outcomes.entries()) {
          if (outcome.status === 'fulfilled') continue;
          if (!(outcome.reason instanceof Stop)) throw outcome.reason;
          if (outcome.reason.cancelled) throw outcome.reason;
          // One branch stopping leaves the others' work standing; the run and its trace say so.
          const message = `A branch of ${step.id} stopped: ${outcome.reason.reason}`;
          this.partialReasons.push(message);
          await this.trace({
            position: [...position, b, step.branches[b]?.length ?? 0],
            kind: 'stop',
            id: step.id,
            message,
          });
        }
        return;
      }
      case 'loop': {
        const max = typeof step.max === 'number' ? step.max : (this.input.inputs[step.max.input] as number);
        for (let round = 1; round <= max; round++) {
          await this.runSteps(step.steps, [...position, round], [...rounds, round]);
          const done = this.evaluate(step.until);
          await this.trace({
            position: [...position, round, step.steps.length],
            kind: 'condition',
            id: step.id,
            value: done,
            message: `until after round ${round}`,
          });
          if (done) return;
        }
        await this.trace({
          position: [...position, max + 1],
          kind: 'decision',
          id: step.id,
          message: `${step.id}: stopped after ${max} round(s) without meeting its condition.`,
        });
        return;
      }
      case 'if': {
        const value = this.evaluate(step.when);
        await this.trace({ position: [...position, 0], kind: 'condition', id: step.id, value });
        if (value) await this.runSteps(step.then, [...position, 1], rounds);
        else if (step.else) await this.runSteps(step.else, [...position, 2], rounds);
        return;
      }
    }
  }

  // ---- worker steps ----

  private stepName(id: string, rounds: readonly number[]): string {
    return rounds.some((round) => round > 1) ? `${id}-${rounds.join('-')}` : id;
  }

  /**
   * Who works a plan, write or review step, from its worker reference and who actually worked the steps before
   * (fallbacks included), and the CLIs a fallback must not hand it to, each with the reason. A choice a fallback
   * shaped is recorded and traced as a decision at the step's own position (before its attempts).
   */
  private async chooseWorker(
    step: WorkerStep,
    position: number[],
  ): Promise<{ kind: WorkerKind; avoid: Map<WorkerKind, string> }> {
    const ref = step.worker;
    const avoid = new Map<WorkerKind, string>();
    const notes: string[] = [];
    let kind: WorkerKind;
    if (typeof ref === 'string') kind = ref;
    else if ('input' in ref) kind = this.input.inputs[ref.input] as WorkerKind;
    else if ('otherThanInput' in ref) kind = other(this.input.inputs[ref.otherThanInput] as WorkerKind);
    else if ('sameAs' in ref) {
      const target = this.workedResult(ref.sameAs);
      kind = target.kind;
      if (target.kind !== target.declared) {
        notes.push(
          `${ref.sameAs} was ${DONE[target.type]} by ${kind} after a fallback, so ${kind} works ${step.id} too (the same CLI as ${ref.sameAs})`,
        );
      }
    } else {
      const target = this.workedResult(ref.otherThan);
      const excluded = workersOf(target);
      const worked = excluded[0] as WorkerKind;
      if (excluded.length > 1) {
        return this.noWorkerFor(step, position, `both codex and gemini wrote ${ref.otherThan}`);
      }
      kind = other(worked);
      avoid.set(worked, `${step.id} must be worked by the other CLI than ${ref.otherThan} (${worked})`);
      if (tookOver(target)) {
        notes.push(
          `${ref.otherThan} was ${DONE[target.type]} by ${worked} after a fallback, so ${kind} works ${step.id} (the other CLI than ${ref.otherThan})`,
        );
      }
    }
    if (step.type === 'review') {
      const role = step.mode === 'redteam' ? 'red team' : 'reviewer';
      const written = this.results.get(step.of);
      const authors: Authors = written?.type === 'write' ? written.authors : {};
      for (const author of KINDS) {
        if (authors[author] !== undefined)
          avoid.set(author, `${author} wrote ${step.of}: the ${role} would review its own change`);
      }
      // The declared reviewer took the change over by a fallback: the review follows the fallback to the other
      // CLI rather than judge its own work. A self-review the playbook declared (`declared`) is left alone.
      if (authors[kind] === 'fallback') {
        const alternative = other(kind);
        const tookOverBy = `${kind} wrote ${step.of} after a fallback`;
        if (authors[alternative] !== undefined) {
          return this.noWorkerFor(step, position, `both codex and gemini wrote ${step.of}`);
        }
        const blocked = avoid.get(alternative);
        if (blocked !== undefined) return this.noWorkerFor(step, position, `${tookOverBy}, and ${blocked}`);
        notes.push(
          `${tookOverBy}, and the ${role} would review its own change, so ${alternative} works ${step.id} instead`,
        );
        kind = alternative;
      }
    }
    if (notes.length > 0) {
      const message = `${step.id}: ${notes.join('; ')}.`;
      await this.context.decide(message, { step: step.id, worker: kind });
      await this.trace({ position, kind: 'decision', id: step.id, worker: kind, message });
    }
    return { kind, avoid };
  }

  /** The result of a step a worker reference names; the branch stops when that step has not run. */
  private workedResult(id: string): WorkedResult {
    const target = this.results.get(id);
    if (target?.type !== 'plan' && target?.type !== 'write' && target?.type !== 'review') {
      throw new Stop(`the worker of ${id} is not known yet (it did not run)`, false);
    }
    return target;
  }

  /** No CLI may work the step without breaking its independence: recorded, traced, and the branch stops. */
  private async noWorkerFor(step: WorkerStep, position: number[], why: string): Promise<never> {
    const reason =
      step.type === 'review'
        ? `the ${step.mode === 'redteam' ? 'red team' : 'reviewer'} would review its own change in ${step.id}: ${why}`
        : `no CLI is left to work ${step.id}: ${why}`;
    const message = `${step.id}: ${reason}.`;
    await this.context.decide(message, { step: step.id, worker: null });
    await this.trace({ position, kind: 'decision', id: step.id, message });
    throw new Stop(reason, false);
  }

  private cwdIn(dir: string): string {
    return path.join(dir, this.input.cwd ?? '.');
  }

  private async newCopy(id: string): Promise<IsolatedCopy> {
    this.copyCounter += 1;
    const label = `${this.context.run.id}-${id}-${this.copyCounter}`.slice(0, 100);
    const copy = await this.context.isolation.createCopy(label);
    this.copies.push(copy);
    return copy;
  }

  /**
   * Runs a worker step under its resilience policy (FAILURE_POLICY, with the step's `onFailure` over the run's
   * resilience, field by field): each failed attempt is retried, handed to the other CLI or ends the step, as
   * the table says for its class. Each attempt is its own step record and trace entry.
   */
  private async work(options: {
    id: string;
    name: string;
    role: Role;
    kind: WorkerKind;
    /** The CLIs the step must not be handed to, with why (see chooseWorker). */
    avoid: ReadonlyMap<WorkerKind, string>;
    policy: Resilience | undefined;
    position: number[];
    prompt: (name: string) => string;
    cwd: () => Promise<string>;
  }): Promise<WorkOutcome> {
    const policy = mergeResilience(options.policy, this.input.resilience);
    let kind = options.kind;
    let attempt = 0;
    let name = options.name;
    let before: string | undefined;
    let counter = 0;
    for (;;) {
      const stepName = attempt === 0 ? name : `${name}-retry${attempt}`;
      const prompt = options.prompt(stepName);
      const cwd = await options.cwd();
      const model = this.input.models?.[kind];
      // The prompt as sent, whole (the trace keeps its first 16 KiB and the hash of all of it); written before
      // the step starts, so a run cut off mid-step still has it.
      const promptFile = `prompt-${stepName}.txt`;
      await this.context.store.writeRunFile(this.context.run.id, promptFile, prompt);
      const { result, record } = await this.context.step({
        name: stepName,
        role: options.role,
        kind,
        prompt,
        cwd,
        ...(model ? { model } : {}),
      });
      await this.trace({
        position: [...options.position, counter],
        kind: 'step',
        id: options.id,
        name: stepName,
        worker: kind,
        role: options.role,
        prompt: prompt.slice(0, TRACE_PROMPT_CHARS),
        promptSha256: sha256(prompt),
        promptFile,
        status: result.status,
        ...(options.role === 'writer' ? {} : { verdict: record.verdict, findings: record.findings.length }),
      });
      counter += 1;
      const ended = { result, record, kind, ...(before ? { before } : {}) };
      if (result.status === 'succeeded' || this.context.signal.aborted) return ended;
      const next = nextMove(result.status, policy, { retriesDone: attempt, fellBack: before !== undefined });
      if (next.move === 'retry') {
        const message = `${stepName}: ${kind} ${result.status}; retrying in ${next.waitMs} ms.`;
        await this.context.decide(message);
        await this.trace({
          position: [...options.position, counter],
          kind: 'decision',
          id: options.id,
          message,
        });
        counter += 1;
        if (await backoffWait(next.waitMs, this.context.signal)) {
          // Woken by the cancel, not the timer: no further attempt, and the step ends cancelled.
          const errorMessage = `the run was cancelled while ${stepName} waited to be retried`;
          return { ...ended, result: { ...result, status: 'cancelled', errorMessage } };
        }
        attempt += 1;
        continue;
      }
      if (next.move === 'stop') return ended;
      const refused = options.avoid.get(other(kind));
      if (refused !== undefined) {
        // A fallback that would break the step's independence is not taken; the step's failure stands.
        const message = `${stepName}: ${kind} ${result.status}; not handing the step to ${other(kind)}: ${refused}.`;
        await this.context.decide(message, { step: options.id, worker: null });
        await this.trace({
          position: [...options.position, counter],
          kind: 'decision',
          id: options.id,
          message,
        });
        return { ...ended, refused: `not handed to ${other(kind)}: ${refused}` };
      }
      before = `${kind} ${result.status}: ${result.errorMessage ?? 'no detail'}`;
      const message = `${stepName}: ${kind} ${result.status}; handing the step to ${other(kind)}.`;
      await this.context.decide(message);
      await this.trace({
        position: [...options.position, counter],
        kind: 'decision',
        id: options.id,
        worker: other(kind),
        message,
      });
      counter += 1;
      kind = other(kind);
      name = `${options.name}-fallback`;
      attempt = 0;
    }
  }

  private async plan(
    step: Extract<Step, { type: 'plan' }>,
    position: number[],
    rounds: number[],
  ): Promise<void> {
    const task = this.render(step.task ?? '{{task}}');
    const chosen = await this.chooseWorker(step, position);
    const worked = await this.work({
      id: step.id,
      name: this.stepName(step.id, rounds),
      role: 'planner',
      kind: chosen.kind,
      avoid: chosen.avoid,
      policy: step.onFailure,
      position,
      prompt: (name) => plannerPrompt(task, name),
      cwd: async () => this.cwdIn(this.workspaceDir()),
    });
    const { result, kind } = worked;
    const ok = result.status === 'succeeded';
    this.keep(step.id, this.stepName(step.id, rounds), {
      type: 'plan',
      kind,
      declared: chosen.kind,
      ok,
      status: result.status,
      message: result.finalMessage,
    });
    if (!ok)
      throw new Stop(
        failure(`the planner (${kind}) ${result.status} in ${step.id}`, worked),
        result.status === 'cancelled',
      );
  }

  private workspaceDir(): string {
    return this.context.store.workspaceRoot;
  }

  private async write(
    step: Extract<Step, { type: 'write' }>,
    position: number[],
    rounds: number[],
  ): Promise<void> {
    const task = this.render(step.task ?? '{{task}}');
    const continued = step.continue === undefined ? undefined : this.results.get(step.continue);
    if (step.continue !== undefined && (continued?.type !== 'write' || continued.change === null)) {
      throw new Stop(`${step.id} continues ${step.continue}, which wrote nothing`, false);
    }
    let copy: IsolatedCopy | undefined = continued?.type === 'write' ? continued.copy : undefined;
    const chosen = await this.chooseWorker(step, position);
    const worked = await this.work({
      id: step.id,
      name: this.stepName(step.id, rounds),
      role: 'writer',
      kind: chosen.kind,
      avoid: chosen.avoid,
      policy: step.onFailure,
      position,
      prompt: (name) => writerPrompt(task, name),
      // A new attempt on a fresh step gets a fresh copy; a continued copy is worked on where it is.
      cwd: async () => {
        if (!continued) {
          if (copy) await copy.dispose().catch(() => undefined);
          copy = await this.newCopy(step.id);
        }
        return this.cwdIn((copy as IsolatedCopy).dir);
      },
    });
    const { result, record, kind } = worked;
    const workCopy = copy as IsolatedCopy;
    const ok = result.status === 'succeeded';
    let change: CapturedChange | null = null;
    let changeRecord: ChangeRecord | null = null;
    if (ok) {
      change = await workCopy.captureChange();
      changeRecord = await this.context.recordChange(record.name, change, record);
    }
    // The change in a continued copy is the work of everyone who wrote in it.
    const before: Authors = continued?.type === 'write' ? continued.authors : {};
    const authors = ok ? withAuthor(before, kind, kind === chosen.kind ? 'declared' : 'fallback') : {};
    this.keep(step.id, this.stepName(step.id, rounds), {
      type: 'write',
      kind,
      declared: chosen.kind,
      authors,
      ok,
      status: result.status,
      message: result.finalMessage,
      copy: workCopy,
      change,
      changeRecord,
    });
    if (ok && continued?.type === 'write') {
      // The continued write now stands for the whole change made in its copy.
      this.results.set(step.continue as string, {
        ...continued,
        authors,
        change,
        changeRecord,
        message: result.finalMessage,
      });
    }
    if (!ok) {
      throw new Stop(
        failure(`the writer (${kind}) ${result.status} in ${step.id}`, worked),
        result.status === 'cancelled',
      );
    }
  }

  /** The write a step looks at, when it made a change; otherwise the step is traced as skipped. */
  private async changeOf(
    step: { id: string; of: string },
    position: number[],
    what: string,
  ): Promise<(Extract<Result, { type: 'write' }> & { change: CapturedChange }) | undefined> {
    const written = this.results.get(step.of);
    if (written?.type === 'write' && written.change !== null) {
      return written as Extract<Result, { type: 'write' }> & { change: CapturedChange };
    }
    await this.trace({ position, kind: 'skip', id: step.id, message: `${step.of} has no change to ${what}` });
    return undefined;
  }

  private async review(
    step: Extract<Step, { type: 'review' }>,
    position: number[],
    rounds: number[],
  ): Promise<void> {
    const written = await this.changeOf(step, position, 'review');
    if (!written) return;
    const change = written.change;
    const focus = step.focus === undefined ? undefined : this.render(step.focus);
    const task = this.input.task;
    const mode = step.mode ?? 'review';
    const chosen = await this.chooseWorker(step, position);
    const worked = await this.work({
      id: step.id,
      name: this.stepName(step.id, rounds),
      role: mode === 'redteam' ? 'redteam' : 'reviewer',
      kind: chosen.kind,
      avoid: chosen.avoid,
      policy: step.onFailure,
      position,
      prompt: (name) =>
        mode === 'redteam'
          ? redteamPrompt({
              task,
              writerKind: written.kind,
              diff: change.patch,
              diffTruncated: change.patchTruncated,
              changedPaths: change.files.map((file) => file.path),
              binaryPaths: change.files.filter((file) => file.binary).map((file) => file.path),
              step: name,
              ...(focus ? { focus } : {}),
            })
          : reviewerPrompt({
              task,
              writerKind: written.kind,
              writerMessage: written.message,
              diff: change.patch,
              diffTruncated: change.patchTruncated,
              changedPaths: change.files.map((file) => file.path),
              binaryPaths: change.files.filter((file) => file.binary).map((file) => file.path),
              step: name,
              ...(focus ? { focus } : {}),
            }),
      cwd: async () => this.cwdIn(written.copy.dir),
    });
    const { result, record, kind } = worked;
    const ok = result.status === 'succeeded';
    this.keep(step.id, this.stepName(step.id, rounds), {
      type: 'review',
      kind,
      declared: chosen.kind,
      ok,
      status: result.status,
      of: step.of,
      message: result.finalMessage,
      verdict: ok ? record.verdict : null,
      findings: ok ? record.findings : [],
    });
    this.reviewOf.set(step.of, step.id);
    if (!ok) {
      throw new Stop(
        failure(
          `the ${step.mode === 'redteam' ? 'red team' : 'reviewer'} (${kind}) ${result.status} in ${step.id}`,
          worked,
        ),
        result.status === 'cancelled',
      );
    }
    if (record.verdict === 'none')
      this.partialReasons.push(`${kind} gave no readable verdict in ${record.name}.`);
  }

  // ---- verification, adjudication, apply ----

  /** The verification command: the step's, an input's, or the workspace's own test script. */
  private async verifyCommand(
    step: Extract<Step, { type: 'verify' }>,
    dir: string,
  ): Promise<string[] | null> {
    const given =
      step.command === undefined
        ? []
        : Array.isArray(step.command)
          ? step.command
          : (this.input.inputs[step.command.input] as string[]);
    if (given.length > 0) return given;
    try {
      // The writer's copy is untrusted: a FIFO, a link or a huge file as package.json is not read.
      const text = await readStateFile(dir, path.join(dir, 'package.json'), { maxBytes: MAX_MANIFEST_BYTES });
      const manifest = JSON.parse(text ?? '{}') as { scripts?: Record<string, unknown> };
      if (typeof manifest.scripts?.test === 'string') return ['npm', 'test', '--silent'];
    } catch {
      // no package.json, or not one we can read: no default command
    }
    return null;
  }

  private async verify(
    step: Extract<Step, { type: 'verify' }>,
    position: number[],
    rounds: number[],
  ): Promise<void> {
    const written = await this.changeOf(step, position, 'verify');
    if (!written) return;
    const name = this.stepName(step.id, rounds);
    const cwd = this.cwdIn(written.copy.dir);
    const command = await this.verifyCommand(step, cwd);
    if (command === null) {
      this.keep(step.id, name, {
        type: 'verify',
        of: step.of,
        passed: null,
        exitCode: null,
        output: '',
        command: [],
      });
      this.verifyOf.set(step.of, step.id);
      await this.trace({
        position,
        kind: 'verify',
        id: step.id,
        status: 'skipped',
        message: 'no verification command: give one, or add a test script to package.json',
      });
      return;
    }
    let passed = false;
    let exitCode: number | null = null;
    let output: string;
    let scratch: string | undefined;
    try {
      // A path in the command that the candidate's change leads out of its copy (a symlink) fails the check.
      await jailVerifyCommand(command, cwd);
      // The writer's code runs here: give it a home and temp folder of its own in the run's state, not the
      // user's (the environment is the allowlist every child gets; the command is argv, never a shell).
      scratch = path.join(this.context.store.runDir(this.context.run.id), 'verify', name);
      await mkdir(path.join(scratch, 'tmp'), { recursive: true });
      const env = { set: { HOME: scratch, TMPDIR: path.join(scratch, 'tmp') } };
      // In the OS sandbox: the copy and the scratch folder writable, the rest of the machine read-only or
      // absent, no network, its own pid namespace (mode "required" refuses to run it without one).
      const wrapped = await this.context.sandbox.wrap({
        command: command[0] as string,
        args: command.slice(1),
        cwd,
        env,
        policy: { writable: [written.copy.dir, scratch], network: false },
      });
      const result = await runProcess({
        command: wrapped.command,
        args: wrapped.args,
        cwd,
        env,
        // The writer's code runs here: whatever it starts ends with the verification.
        contain: true,
        timeoutMs: Math.min(this.context.limits.timeoutMs ?? VERIFY_TIMEOUT_MS, VERIFY_TIMEOUT_MS),
        signal: this.context.signal,
        maxCaptureBytes: VERIFY_OUTPUT_BYTES,
      });
      exitCode = result.exitCode;
      passed = result.exitCode === 0 && !result.timedOut && !result.cancelled;
      // Redacted with the words cut at each capture's gap dropped: a half secret there would pass the store.
      const redactor = getDefaultRedactor();
      output =
        `${redactCapturedText(result.stdout, redactor)}\n${redactCapturedText(result.stderr, redactor)}`.trim();
      if (result.timedOut) output = `${output}\n(timed out)`.trim();
    } catch (error) {
      output =
        error instanceof VerifyCommandError
          ? error.message
          : `could not run ${command[0]}: ${(error as Error).message}`;
    } finally {
      // What the project's tests left in their home and temp folder (caches, tokens a test wrote) does not
      // stay in the run's record; the verification's log is what is kept.
      if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
    }
    if (this.context.signal.aborted) throw new Stop('the run was cancelled', true);
    this.keep(step.id, name, { type: 'verify', of: step.of, passed, exitCode, output, command });
    this.verifyOf.set(step.of, step.id);
    await this.context.store.writeRunFile(
      this.context.run.id,
      `verify-${name}.log`,
      `$ ${command.join(' ')}\n${output}\n(exit ${exitCode ?? 'none'})\n`,
    );
    const message = `${step.id}: \`${command.join(' ')}\` on ${step.of} ${passed ? 'passed' : `failed (exit ${exitCode ?? 'none'})`}.`;
    await this.context.decide(message, { verify: step.id, of: step.of, passed, exitCode });
    await this.trace({
      position,
      kind: 'verify',
      id: step.id,
      status: passed ? 'passed' : 'failed',
      value: passed,
      message,
    });
  }

  private async adjudicate(step: Extract<Step, { type: 'adjudicate' }>, position: number[]): Promise<void> {
    const facts = step.candidates.map((id, order) => {
      const written = this.results.get(id);
      const usable = written?.type === 'write' && written.change !== null && written.change.stats.files > 0;
      const reviewId = this.reviewOf.get(id);
      const review = reviewId ? this.results.get(reviewId) : undefined;
      const verifyId = this.verifyOf.get(id);
      const verification = verifyId ? this.results.get(verifyId) : undefined;
      const verdict = review?.type === 'review' ? review.verdict : null;
      const findings = review?.type === 'review' ? review.findings : [];
      const passed = verification?.type === 'verify' ? verification.passed : null;
      const size =
        written?.type === 'write' && written.change
          ? written.change.stats.insertions + written.change.stats.deletions
          : 0;
      const kind = written?.type === 'write' ? written.kind : null;
      return { id, order, usable, verdict, findings, passed, size, kind };
    });
    // Best first: a usable change, verification passed (then not run, then failed), approved, lighter findings, smaller, declared order.
    const passRank = (passed: boolean | null): number => (passed === true ? 0 : passed === null ? 1 : 2);
    const ranked = [...facts].sort(
      (a, b) =>
        Number(b.usable) - Number(a.usable) ||
        passRank(a.passed) - passRank(b.passed) ||
        Number(b.verdict === 'approve') - Number(a.verdict === 'approve') ||
        findingWeight(a.findings) - findingWeight(b.findings) ||
        a.size - b.size ||
        a.order - b.order,
    );
    const describe = (fact: (typeof facts)[number]): string =>
      fact.usable
        ? `${fact.id} (${fact.kind}): verification ${fact.passed === null ? 'not run' : fact.passed ? 'passed' : 'failed'}, review ${fact.verdict ?? 'none'} with ${fact.findings.length} finding(s), ${fact.size} lines changed`
        : `${fact.id}: no usable change`;
    const best = ranked[0];
    const chosen = best && best.usable ? best.id : null;
    const acceptable =
      best !== undefined &&
      best.usable &&
      best.passed !== false &&
      best.verdict !== 'request_changes' &&
      best.verdict !== 'none';
    const explanation = `${chosen ? `${chosen} ranked first` : 'No candidate is usable'}: ${ranked.map(describe).join('; ')}.`;
    this.keep(step.id, step.id, { type: 'adjudicate', chosen, acceptable, explanation });
    await this.context.decide(`${step.id}: ${explanation}`, {
      adjudicate: step.id,
      chosen,
      acceptable,
      ranking: ranked.map((fact) => fact.id),
    });
    await this.trace({
      position,
      kind: 'decision',
      id: step.id,
      value: acceptable,
      ...(chosen === null ? {} : { chosen }),
      message: explanation,
    });
  }

  private async apply(step: Extract<Step, { type: 'apply' }>, position: number[]): Promise<void> {
    let writeId = step.of;
    let reason: string;
    let wanted: boolean;
    const target = this.results.get(step.of);
    if (target?.type === 'adjudicate') {
      if (target.chosen === null)
        return this.decideApply({ position, id: step.id }, `Nothing applied: ${target.explanation}`);
      writeId = target.chosen;
      wanted = target.acceptable;
      reason = target.explanation;
    } else {
      wanted = step.when === undefined ? true : this.evaluate(step.when);
      reason = step.when === undefined ? 'no review was asked for' : this.explain(step.when);
    }
    // The write at stake is traced (`chosen`), so a replay that applies another candidate does not match.
    const at = { position, id: step.id, write: writeId };
    const written = this.results.get(writeId);
    if (written?.type !== 'write' || written.change === null || written.changeRecord === null) {
      return this.decideApply(at, `Nothing applied: ${writeId} has no change.`);
    }
    if (written.change.stats.files === 0) {
      return this.decideApply(at, `Nothing to apply: ${written.kind} changed no files.`);
    }
    const apply = this.policy === 'always' || (this.policy === 'if_approved' && wanted);
    if (!apply) {
      const why = this.policy === 'never' ? 'apply=never was asked' : reason;
      return this.decideApply(
        at,
        `Not applied: ${why}. The patch is kept in the run folder (${written.changeRecord.patchFile ?? 'none'}).`,
      );
    }
    try {
      await this.context.apply(written.change, written.changeRecord);
    } catch (error) {
      return this.decideApply(
        at,
        `Not applied: applying ${writeId} failed (${(error as Error).message}); the patch is kept in the run folder.`,
      );
    }
    this.applied = true;
    const stats = written.change.stats;
    await this.decideApply(
      at,
      `Applied ${writeId} by ${written.kind} (${diffStatLine(stats)}): ${reason}.`,
      true,
    );
  }

  private async decideApply(
    at: { position: number[]; id: string; write?: string },
    message: string,
    value = false,
  ): Promise<void> {
    this.decisions.push(message);
    await this.context.decide(message, { apply: at.id, applied: value });
    await this.trace({
      position: at.position,
      kind: 'decision',
      id: at.id,
      value,
      ...(at.write === undefined ? {} : { chosen: at.write }),
      message,
    });
  }

  // ---- conditions and templates ----

  /** The facts a condition looks at, as a sentence for the record ("review by gemini approved with no findings"). */
  explain(condition: Condition): string {
    // A step in a loop is named by the round its result comes from ("review-2").
    const who = (id: string): string => {
      const result = this.results.get(id);
      const name = this.lastRan.get(id)?.name ?? id;
      return result && 'kind' in result ? `${name} by ${result.kind}` : name;
    };
    if ('verdict' in condition) {
      const review = this.results.get(condition.verdict.step);
      if (review?.type !== 'review') return `${condition.verdict.step} did not run`;
      const said =
        review.verdict === 'approve'
          ? 'approved'
          : review.verdict === 'request_changes'
            ? 'requested changes'
            : 'gave no readable verdict';
      return `${who(condition.verdict.step)} ${said} with ${describeFindings(review.findings)}`;
    }
    if ('findingsAtLeast' in condition) {
      const { step, severity } = condition.findingsAtLeast;
      const review = this.results.get(step);
      if (review?.type !== 'review') return `${step} did not run`;
      const threshold = (
        typeof severity === 'string' ? severity : this.input.inputs[severity.input]
      ) as Severity;
      const hits = review.findings.filter(
        (finding) => severityRank(finding.severity) >= severityRank(threshold),
      );
      return hits.length === 0
        ? `${who(step)} found nothing at or above ${threshold} (${describeFindings(review.findings)})`
        : `${who(step)} found ${hits.length} finding(s) at or above ${threshold} (${hits.map((f) => f.title).join('; ')})`;
    }
    if ('succeeded' in condition) {
      const result = this.results.get(condition.succeeded);
      if (!result) return `${condition.succeeded} did not run`;
      if (result.type === 'verify')
        return `${condition.succeeded} ${result.passed ? 'passed' : 'did not pass'}`;
      return `${who(condition.succeeded)} ${'status' in result ? result.status : 'ran'}`;
    }
    if ('passed' in condition) {
      const result = this.results.get(condition.passed);
      if (result?.type !== 'verify') return `${condition.passed} did not run`;
      return `${condition.passed} ${result.passed === true ? 'passed' : result.passed === false ? 'failed' : 'had no command to run'}`;
    }
    if ('all' in condition) return condition.all.map((inner) => this.explain(inner)).join('; ');
    if ('any' in condition) return condition.any.map((inner) => this.explain(inner)).join('; ');
    return this.explain(condition.not);
  }

  /** A condition on a step that has not run is false (so `not` of it is true). */
  evaluate(condition: Condition): boolean {
    if ('verdict' in condition) {
      const review = this.results.get(condition.verdict.step);
      return review?.type === 'review' && review.verdict === condition.verdict.is;
    }
    if ('findingsAtLeast' in condition) {
      const review = this.results.get(condition.findingsAtLeast.step);
      if (review?.type !== 'review') return false;
      const ref = condition.findingsAtLeast.severity;
      const threshold = (typeof ref === 'string' ? ref : this.input.inputs[ref.input]) as Severity;
      return review.findings.some((finding) => severityRank(finding.severity) >= severityRank(threshold));
    }
    if ('succeeded' in condition) {
      const result = this.results.get(condition.succeeded);
      if (!result) return false;
      return result.type === 'verify' ? result.passed === true : 'ok' in result && result.ok;
    }
    if ('passed' in condition) {
      const result = this.results.get(condition.passed);
      return result?.type === 'verify' && result.passed === true;
    }
    if ('all' in condition) return condition.all.every((inner) => this.evaluate(inner));
    if ('any' in condition) return condition.any.some((inner) => this.evaluate(inner));
    return !this.evaluate(condition.not);
  }

  /** Fills {{task}}, {{inputs.NAME}} and {{steps.ID.FIELD}}; a step that has not run gives "(not available)". */
  render(template: string): string {
    // One pass: a value that itself holds {{...}} (a plan quoting a template) is never expanded again.
    return template.replace(/\{\{\s*([^{}]*?)\s*\}\}/g, (_match, variable: string) => this.value(variable));
  }

  private value(variable: string): string {
    if (variable === 'task') return this.input.task;
    const [scope, name, field] = variable.split('.');
    if (scope === 'inputs' && name !== undefined) {
      const value = this.input.inputs[name];
      return Array.isArray(value) ? value.join(' ') : String(value ?? UNSET);
    }
    const result = name === undefined ? undefined : this.results.get(name);
    if (!result) return UNSET;
    switch (`${result.type}.${field}`) {
      case 'plan.message':
      case 'write.message':
      case 'review.message':
        return (result as { message: string }).message || '(empty)';
      case 'write.diff': {
        const change = (result as Extract<Result, { type: 'write' }>).change;
        if (!change) return UNSET;
        return change.patch.length > MAX_DIFF_IN_PROMPT
          ? `${change.patch.slice(0, MAX_DIFF_IN_PROMPT)}\n(cut)`
          : change.patch || '(no file changes)';
      }
      case 'write.files': {
        const change = (result as Extract<Result, { type: 'write' }>).change;
        return change
          ? change.files.map((file) => `${file.change} ${file.path}`).join('\n') || '(none)'
          : UNSET;
      }
      case 'write.stats': {
        const change = (result as Extract<Result, { type: 'write' }>).change;
        return change ? diffStatLine(change.stats) : UNSET;
      }
      case 'review.verdict':
        return (result as Extract<Result, { type: 'review' }>).verdict ?? UNSET;
      case 'review.findings':
        return formatFindings((result as Extract<Result, { type: 'review' }>).findings);
      case 'verify.passed':
        return String((result as Extract<Result, { type: 'verify' }>).passed ?? UNSET);
      case 'verify.exitCode':
        return String((result as Extract<Result, { type: 'verify' }>).exitCode ?? UNSET);
      case 'verify.output':
        return (result as Extract<Result, { type: 'verify' }>).output.slice(-4096) || '(no output)';
      case 'adjudicate.chosen':
        return (result as Extract<Result, { type: 'adjudicate' }>).chosen ?? UNSET;
      case 'adjudicate.explanation':
        return (result as Extract<Result, { type: 'adjudicate' }>).explanation;
      default:
        return UNSET;
    }
  }

  // ---- trace ----

  private async trace(entry: TraceEntry): Promise<void> {
    this.entries.push(entry);
    // Written as it goes, so a run that dies midway leaves what it did; writes are chained, never interleaved.
    this.saving = this.saving.then(() => this.saveTrace()).catch(() => undefined);
    await this.saving;
  }

  private async saveTrace(): Promise<void> {
    const trace: PlaybookTrace = {
      schemaVersion: TRACE_SCHEMA_VERSION,
      playbook: this.input.playbook,
      source: this.input.source,
      hash: this.input.hash,
      task: this.input.task,
      inputs: this.input.inputs,
      apply: this.policy,
      resilience: this.input.resilience ?? null,
      models: this.input.models ?? {},
      cwd: this.input.cwd ?? null,
      entries: sortTrace(this.entries),
    };
    await this.context.store.writeRunFile(
      this.context.run.id,
      TRACE_FILE,
      `${JSON.stringify(trace, null, 2)}\n`,
    );
  }
}

export function runPlaybook(context: RunContext, input: PlaybookRunInput): Promise<RunOutcome> {
  return new PlaybookExecution(context, input).run();
}
