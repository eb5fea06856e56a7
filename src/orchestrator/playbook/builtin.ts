// The playbooks Tandem ships: the writer/reviewer handoff with revision rounds, reviewer-first planning then
// writing, parallel generation with adjudication, and the five strategies written as playbooks. They go through
// the same validation as a user's playbook (a unit test parses every one). A reviewer that must not be the writer
// is named `{ otherThan: WRITE_ID }`, resolved from who actually wrote (after a fallback, the CLI it fell back to).
import type { Playbook } from './schema';

const REVISE_TASK = [
  'Revise your change. The reviewer requested changes with these findings:',
  '{{steps.review.findings}}',
  '',
  "The reviewer's reply:",
  '{{steps.review.message}}',
  '',
  'The original task:',
  '{{task}}',
].join('\n');

const handoff: Playbook = {
  format: 1,
  name: 'handoff',
  description:
    'Writer/reviewer handoff: the writer makes the change, the other CLI reviews it, and the writer revises it in the same copy until the reviewer approves or the rounds run out. Applied when the last review approves.',
  inputs: {
    writer: { type: 'worker', default: 'codex', description: 'Who writes; the other CLI reviews.' },
    rounds: {
      type: 'integer',
      default: 3,
      min: 1,
      max: 6,
      description: 'Review rounds at most (the first review plus up to rounds-1 revisions).',
    },
  },
  steps: [
    { type: 'write', id: 'write', worker: { input: 'writer' } },
    {
      type: 'loop',
      id: 'rounds',
      max: { input: 'rounds' },
      until: { not: { verdict: { step: 'review', is: 'request_changes' } } },
      steps: [
        {
          type: 'if',
          id: 'needs_revision',
          when: { verdict: { step: 'review', is: 'request_changes' } },
          then: [
            {
              type: 'write',
              id: 'revise',
              // Whoever actually wrote (the other CLI than its reviewer), so the reviewer stays independent.
              worker: { otherThan: 'review' },
              continue: 'write',
              task: REVISE_TASK,
            },
          ],
        },
        { type: 'review', id: 'review', worker: { otherThan: 'write' }, of: 'write' },
      ],
    },
    { type: 'apply', id: 'apply', of: 'write', when: { verdict: { step: 'review', is: 'approve' } } },
  ],
};

const planThenWrite: Playbook = {
  format: 1,
  name: 'plan_then_write',
  description:
    'Reviewer-first: the reviewing CLI plans the work, the writer implements the plan, and the reviewer checks the result against its plan. Applied when the check approves.',
  inputs: {
    writer: { type: 'worker', default: 'codex', description: 'Who writes; the other CLI plans and checks.' },
  },
  steps: [
    { type: 'plan', id: 'plan', worker: { otherThanInput: 'writer' } },
    {
      type: 'write',
      id: 'write',
      worker: { input: 'writer' },
      task: ['Implement this plan:', '{{steps.plan.message}}', '', 'The task:', '{{task}}'].join('\n'),
    },
    {
      type: 'review',
      id: 'check',
      worker: { otherThan: 'write' },
      of: 'write',
      focus: 'Check that the change carries out the plan you wrote, step by step:\n{{steps.plan.message}}',
    },
    { type: 'apply', id: 'apply', of: 'write', when: { verdict: { step: 'check', is: 'approve' } } },
  ],
};

const parallelAdjudicate: Playbook = {
  format: 1,
  name: 'parallel_adjudicate',
  description:
    "Both CLIs write a solution in isolation; each is verified with the workspace's tests (or the command given) and reviewed by the other CLI; the adjudication ranks them (verification, verdict, findings, size) and applies the best acceptable one, with the reason recorded.",
  inputs: {
    verify: {
      type: 'command',
      default: [],
      description:
        'Verification command as argv (no shell); empty: npm test when package.json has a test script.',
    },
  },
  steps: [
    {
      type: 'parallel',
      id: 'solutions',
      branches: [
        [{ type: 'write', id: 'codex_solution', worker: 'codex' }],
        [{ type: 'write', id: 'gemini_solution', worker: 'gemini' }],
      ],
    },
    {
      type: 'parallel',
      id: 'checks',
      branches: [
        [
          { type: 'verify', id: 'verify_codex', of: 'codex_solution', command: { input: 'verify' } },
          {
            type: 'review',
            id: 'review_codex',
            worker: { otherThan: 'codex_solution' },
            of: 'codex_solution',
          },
        ],
        [
          { type: 'verify', id: 'verify_gemini', of: 'gemini_solution', command: { input: 'verify' } },
          {
            type: 'review',
            id: 'review_gemini',
            worker: { otherThan: 'gemini_solution' },
            of: 'gemini_solution',
          },
        ],
      ],
    },
    { type: 'adjudicate', id: 'adjudicate', candidates: ['codex_solution', 'gemini_solution'] },
    { type: 'apply', id: 'apply', of: 'adjudicate' },
  ],
};

const singleWorker: Playbook = {
  format: 1,
  name: 'single_worker',
  description: 'One CLI writes in an isolated copy; its change is applied.',
  inputs: { writer: { type: 'worker', default: 'codex', description: 'Who writes.' } },
  steps: [
    { type: 'write', id: 'write', worker: { input: 'writer' } },
    { type: 'apply', id: 'apply', of: 'write' },
  ],
};

// The reviewer is fixed, as the name says. When the write falls back to the reviewer's CLI, the engine hands the
// review to the other CLI (a recorded decision) rather than let a CLI review its own change.
function writeThenReview(writer: 'codex' | 'gemini'): Playbook {
  const reviewer = writer === 'codex' ? 'gemini' : 'codex';
  return {
    format: 1,
    name: `${writer}_writes_${reviewer}_reviews`,
    description: `${writer} writes, ${reviewer} reviews; applied when the review approves. When the write falls back to ${reviewer}, ${writer} reviews instead.`,
    inputs: {},
    steps: [
      { type: 'write', id: 'write', worker: writer },
      { type: 'review', id: 'review', worker: reviewer, of: 'write' },
      { type: 'apply', id: 'apply', of: 'write', when: { verdict: { step: 'review', is: 'approve' } } },
    ],
  };
}

const parallelDualWriteReview: Playbook = {
  format: 1,
  name: 'parallel_dual_write_review',
  description: 'Both write in isolation and review each other; the better change is applied.',
  inputs: {},
  steps: [
    {
      type: 'parallel',
      id: 'writes',
      branches: [
        [{ type: 'write', id: 'write_codex', worker: 'codex' }],
        [{ type: 'write', id: 'write_gemini', worker: 'gemini' }],
      ],
    },
    {
      type: 'parallel',
      id: 'reviews',
      branches: [
        [{ type: 'review', id: 'review_codex', worker: { otherThan: 'write_codex' }, of: 'write_codex' }],
        [{ type: 'review', id: 'review_gemini', worker: { otherThan: 'write_gemini' }, of: 'write_gemini' }],
      ],
    },
    { type: 'adjudicate', id: 'adjudicate', candidates: ['write_codex', 'write_gemini'] },
    { type: 'apply', id: 'apply', of: 'adjudicate' },
  ],
};

const securityRedteamPass: Playbook = {
  format: 1,
  name: 'security_redteam_pass',
  description:
    'A writer, then a read-only red team of the other CLI whose findings at or above block_at block the change.',
  inputs: {
    writer: { type: 'worker', default: 'codex', description: 'Who writes; the other CLI attacks.' },
    block_at: {
      type: 'severity',
      default: 'high',
      description: 'Findings this severe or worse block the change.',
    },
  },
  steps: [
    { type: 'write', id: 'write', worker: { input: 'writer' } },
    { type: 'review', id: 'redteam', worker: { otherThan: 'write' }, of: 'write', mode: 'redteam' },
    {
      type: 'apply',
      id: 'apply',
      of: 'write',
      when: {
        all: [
          { succeeded: 'redteam' },
          { not: { findingsAtLeast: { step: 'redteam', severity: { input: 'block_at' } } } },
        ],
      },
    },
  ],
};

/** Every built-in playbook by name, in the order playbook_list shows them. */
export const BUILTIN_PLAYBOOKS: readonly Playbook[] = [
  handoff,
  planThenWrite,
  parallelAdjudicate,
  singleWorker,
  writeThenReview('codex'),
  writeThenReview('gemini'),
  parallelDualWriteReview,
  securityRedteamPass,
];
