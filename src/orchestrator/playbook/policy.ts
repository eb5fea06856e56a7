// The failure policy of worker steps: for each failure class of the worker layer, whether the step is retried on
// the same CLI, whether it may be handed to the other CLI, and what stops when neither helps. The engine asks
// `nextMove` after every failed attempt; the table is exported for tests and docs.
import type { StepStatus } from '../../workers/contract';
import type { Resilience } from './schema';

/** Every way a worker step can end other than success. A new status in the contract must be given a rule here. */
export type FailureClass = Exclude<StepStatus, 'succeeded'>;

export interface FailureRule {
  /**
   * Retries on the same CLI with doubling backoff when the policy sets no `retries`; `never`: not retried even
   * when it does.
   */
  retries: number | 'never';
  /** Handed to the other CLI (once, after any retries) when the policy allows fallback. */
  fallback: boolean;
  /** What ends when nothing more is tried: the step's branch (the run ends partial or failed), or the run. */
  stops: 'branch' | 'run';
  /** Why, in a sentence for the docs. */
  why: string;
}

export const DEFAULT_BACKOFF_MS = 1000;

export const FAILURE_POLICY: Readonly<Record<FailureClass, FailureRule>> = {
  rate_limited: {
    retries: 2,
    fallback: true,
    stops: 'branch',
    why: 'a rate limit passes with time, so waiting is the cheapest cure; the other CLI has its own quota',
  },
  timed_out: {
    retries: 0,
    fallback: true,
    stops: 'branch',
    why: 'an attempt that timed out already took the whole step limit (15 minutes by default), so it is repeated only when the playbook asks',
  },
  failed: {
    retries: 'never',
    fallback: true,
    stops: 'branch',
    why: 'the CLI or its model reported the failure; the same prompt to the same CLI is handed on rather than repeated',
  },
  auth_error: {
    retries: 'never',
    fallback: true,
    stops: 'branch',
    why: 'a missing or rejected login does not fix itself between attempts; the other CLI has a login of its own',
  },
  cli_error: {
    retries: 'never',
    fallback: true,
    stops: 'branch',
    why: 'bad flags, configuration, an untrusted folder or a missing binary fail the same way every time; the other CLI is a different program',
  },
  cancelled: {
    retries: 'never',
    fallback: false,
    stops: 'run',
    why: 'someone stopped the run; nothing more is started',
  },
};

/** The policy a step runs under: each field the step's `onFailure` sets, else the run's, else the default. */
export function mergeResilience(step: Resilience | undefined, run: Resilience | undefined): Resilience {
  const merged: Resilience = {};
  const retries = step?.retries ?? run?.retries;
  const backoffMs = step?.backoffMs ?? run?.backoffMs;
  const fallback = step?.fallback ?? run?.fallback;
  if (retries !== undefined) merged.retries = retries;
  if (backoffMs !== undefined) merged.backoffMs = backoffMs;
  if (fallback !== undefined) merged.fallback = fallback;
  return merged;
}

export type NextMove = { move: 'retry'; waitMs: number } | { move: 'fallback' } | { move: 'stop' };

/**
 * What follows a failed attempt: `retriesDone` retries already made on this CLI, `fellBack` when the step is
 * already on the other CLI (a step falls back once; the other CLI gets its own retries).
 */
export function nextMove(
  status: FailureClass,
  policy: Resilience,
  attempt: { retriesDone: number; fellBack: boolean },
): NextMove {
  const rule = FAILURE_POLICY[status];
  const retries = rule.retries === 'never' ? 0 : (policy.retries ?? rule.retries);
  if (attempt.retriesDone < retries) {
    return { move: 'retry', waitMs: (policy.backoffMs ?? DEFAULT_BACKOFF_MS) * 2 ** attempt.retriesDone };
  }
  if (rule.fallback && policy.fallback === true && !attempt.fellBack) return { move: 'fallback' };
  return { move: 'stop' };
}

/** Waits out a backoff; resolves early (true) when `signal` aborts, so a cancel never waits for the timer. */
export function backoffWait(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(true);
    const timer = setTimeout(() => done(false), ms);
    function done(aborted: boolean): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(aborted);
    }
    function onAbort(): void {
      done(true);
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
