// Specification of the playbook format: what a well-formed playbook may say, and, for every way one can be
// wrong, the exact path of the field at fault and a sentence that says what to change.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  MAX_DEPTH,
  MAX_ROUNDS,
  MAX_STEPS,
  MAX_TEMPLATE_CHARS,
  PlaybookError,
  canonicalJson,
  formatPath,
  parsePlaybook,
  parsePlaybookText,
  playbookHash,
  playbookSchema,
  resolveInputs,
  templateVariables,
  type Playbook,
} from '../../src/orchestrator/playbook/schema';
import { BUILTIN_PLAYBOOKS } from '../../src/orchestrator/playbook/builtin';
import { verifyCommandProblem } from '../../src/orchestrator/playbook/verify-command';

type Json = Record<string, unknown>;
type Path = (string | number)[];
interface Problem {
  path: string;
  message: string;
}

const SOURCE = 'test.playbook.json';

function playbook(steps: Json[], extra: Json = {}): Json {
  return { format: 1, name: 'pair', description: 'one writes, the other reviews', steps, ...extra };
}

function write(id: string, extra: Json = {}): Json {
  return { type: 'write', id, worker: 'codex', ...extra };
}

function review(id: string, of: string, extra: Json = {}): Json {
  return { type: 'review', id, worker: 'gemini', of, ...extra };
}

function loop(id: string, steps: Json[], until: Json, max: unknown = 3): Json {
  return { type: 'loop', id, max, until, steps };
}

/** The problems parsePlaybook reports; fails the test if the playbook is accepted or something else is thrown. */
function problemsOf(value: unknown): Problem[] {
  try {
    parsePlaybook(value, SOURCE);
  } catch (error) {
    assert.ok(error instanceof PlaybookError, `a PlaybookError, not ${String(error)}`);
    return error.problems;
  }
  assert.fail(`accepted: ${JSON.stringify(value)}`);
}

/** Rejected with exactly one problem, at this path, saying something matching `message`. */
function assertOnlyProblem(value: unknown, path: string, message: RegExp): void {
  const problems = problemsOf(value);
  assert.equal(problems.length, 1, `one problem, got ${JSON.stringify(problems)}`);
  assert.equal(problems[0]?.path, path, JSON.stringify(problems));
  assert.match(problems[0]?.message ?? '', message);
}

/** Rejected with (at least) a problem at this path whose sentence matches `message`. */
function assertHasProblem(value: unknown, path: string, message: RegExp): void {
  const problems = problemsOf(value);
  assert.ok(
    problems.some((problem) => problem.path === path && message.test(problem.message)),
    `a problem at ${path} matching ${String(message)}, got ${JSON.stringify(problems)}`,
  );
}

/** The path notation of the format, written out independently of formatPath. */
function pathText(path: Path): string {
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join('');
}

/** A playbook using every step type, input type, condition kind and worker reference the format has. */
function everything(): Json {
  return {
    format: 1,
    name: 'everything-at-once_1',
    description: 'every step, input, condition and worker reference',
    inputs: {
      writer: { type: 'worker', default: 'codex', description: 'who writes first' },
      rounds: { type: 'integer', default: 3, min: 1, max: 5 },
      threshold: { type: 'severity', default: 'high' },
      style: { type: 'string', default: 'terse' },
      tests: { type: 'command', default: [] },
    },
    steps: [
      {
        type: 'plan',
        id: 'plan',
        title: 'Plan the change',
        worker: { input: 'writer' },
        task: 'Plan {{task}} in a {{ inputs.style }} way',
        onFailure: { retries: 2, backoffMs: 500, fallback: true },
      },
      write('draft', { worker: { otherThanInput: 'writer' }, task: 'Follow {{steps.plan.message}}' }),
      write('fix', { worker: { otherThan: 'draft' }, continue: 'draft', task: '{{task}}' }),
      review('red', 'fix', {
        worker: 'codex',
        mode: 'redteam',
        focus: 'Attack {{steps.fix.diff}} at {{inputs.threshold}} and above',
      }),
      review('calm', 'draft', { mode: 'review', worker: { otherThan: 'red' } }),
      { type: 'verify', id: 'check', of: 'fix', command: ['npm', 'test', '--', '--grep', 'playbook'] },
      { type: 'verify', id: 'check_own', of: 'fix', command: { input: 'tests' } },
      { type: 'verify', id: 'check_default', of: 'draft' },
      {
        type: 'parallel',
        id: 'race',
        branches: [
          [write('a1', { task: 'Try {{steps.red.findings}}' }), review('ra', 'a1')],
          [write('b1', { worker: 'gemini' }), review('rb', 'b1', { worker: { otherThan: 'b1' } })],
        ],
      },
      { type: 'adjudicate', id: 'pick', candidates: ['draft', 'fix'] },
      loop(
        'polish',
        [write('again', { continue: 'fix' }), review('again_review', 'again')],
        {
          all: [
            { verdict: { step: 'again_review', is: 'approve' } },
            { not: { findingsAtLeast: { step: 'again_review', severity: { input: 'threshold' } } } },
          ],
        },
        { input: 'rounds' },
      ),
      loop(
        'retry',
        [write('third', { worker: { sameAs: 'fix' } })],
        { any: [{ passed: 'check' }, { findingsAtLeast: { step: 'red', severity: 'critical' } }] },
        MAX_ROUNDS,
      ),
      {
        type: 'if',
        id: 'gate',
        when: { all: [{ succeeded: 'check' }, { verdict: { step: 'calm', is: 'request_changes' } }] },
        then: [{ type: 'apply', id: 'land_pick', of: 'pick' }],
        else: [{ type: 'apply', id: 'land_fix', of: 'fix', when: { passed: 'check_own' } }],
      },
    ],
  };
}

describe('playbook format', function () {
  describe('accepts well-formed playbooks', function () {
    it('accepts a minimal playbook and gives it no inputs', function () {
      const parsed = parsePlaybook(playbook([write('w')]), SOURCE);
      assert.deepEqual(parsed, { ...playbook([write('w')]), inputs: {} });
    });

    it('accepts every step type, input type, condition kind and worker reference, unchanged', function () {
      const value = everything();
      const parsed = parsePlaybook(value, SOURCE);
      assert.deepEqual(parsed, value);
      const types = new Set<string>();
      const collect = (steps: readonly Json[]): void => {
        for (const step of steps) {
          types.add(String(step.type));
          for (const key of ['steps', 'then', 'else'] as const) {
            if (Array.isArray(step[key])) collect(step[key] as Json[]);
          }
          if (Array.isArray(step.branches)) for (const branch of step.branches as Json[][]) collect(branch);
        }
      };
      collect(parsed.steps as unknown as Json[]);
      assert.deepEqual(
        [...types].sort(),
        ['adjudicate', 'apply', 'if', 'loop', 'parallel', 'plan', 'review', 'verify', 'write'].sort(),
      );
      assert.deepEqual(
        Object.values(parsed.inputs)
          .map((spec) => spec.type)
          .sort(),
        ['command', 'integer', 'severity', 'string', 'worker'],
      );
    });

    it('lets a loop body step refer to a step later in the same body, and the until condition to both', function () {
      const value = playbook([
        write('start'),
        loop('rework', [review('critique', 'revise'), write('revise', { continue: 'start' })], {
          verdict: { step: 'critique', is: 'approve' },
        }),
        review('final', 'revise'),
      ]);
      assert.deepEqual(parsePlaybook(value, SOURCE), { ...value, inputs: {} });
    });

    it('lets a branch step see the steps before the parallel and the earlier steps of its own branch', function () {
      const value = playbook([
        write('base'),
        {
          type: 'parallel',
          id: 'fan',
          branches: [
            [write('left', { continue: 'base' }), review('left_review', 'left')],
            [
              write('right'),
              {
                type: 'parallel',
                id: 'inner',
                branches: [[review('deep_a', 'right')], [review('deep_b', 'base')]],
              },
            ],
          ],
        },
      ]);
      assert.doesNotThrow(() => parsePlaybook(value, SOURCE));
    });

    it('lets the steps after a parallel refer to the steps of every branch', function () {
      const value = playbook([
        {
          type: 'parallel',
          id: 'solutions',
          branches: [[write('mine')], [write('theirs', { worker: 'gemini' })]],
        },
        {
          type: 'parallel',
          id: 'checks',
          branches: [
            [{ type: 'verify', id: 'check_mine', of: 'mine' }, review('review_mine', 'mine')],
            [{ type: 'verify', id: 'check_theirs', of: 'theirs' }, review('review_theirs', 'theirs')],
          ],
        },
        { type: 'adjudicate', id: 'pick', candidates: ['mine', 'theirs'] },
        {
          type: 'apply',
          id: 'land',
          of: 'mine',
          when: { any: [{ passed: 'check_mine' }, { verdict: { step: 'review_theirs', is: 'approve' } }] },
        },
      ]);
      assert.deepEqual(parsePlaybook(value, SOURCE), { ...value, inputs: {} });
      assert.doesNotThrow(() =>
        parsePlaybook(
          playbook([
            write('start'),
            loop('rounds', [{ type: 'parallel', id: 'fan', branches: [[write('a')], [write('b')]] }], {
              succeeded: 'b',
            }),
          ]),
          SOURCE,
        ),
      );
    });

    it(`accepts steps nested exactly ${MAX_DEPTH} deep`, function () {
      assert.doesNotThrow(() => parsePlaybook(nested(MAX_DEPTH), SOURCE));
    });

    it(`accepts exactly ${MAX_STEPS} steps, counting those nested in branches`, function () {
      const half = MAX_STEPS / 2 - 1;
      const branch = (side: string) => Array.from({ length: half }, (_, i) => write(`${side}${i}`));
      const value = playbook([
        write('first'),
        { type: 'parallel', id: 'fan', branches: [branch('l'), branch('r')] },
      ]);
      assert.equal(1 + 1 + 2 * half, MAX_STEPS);
      assert.doesNotThrow(() => parsePlaybook(value, SOURCE));
    });

    it('accepts {{task}} and spaced variables, and ignores text that only looks like a variable', function () {
      assert.doesNotThrow(() =>
        parsePlaybook(playbook([write('w', { task: '{{ task }} {task} {{{task}}} {{task}' })]), SOURCE),
      );
      assert.deepEqual(templateVariables('a {{ task }} b {{steps.w.diff}} {{inputs.x}}'), [
        'task',
        'steps.w.diff',
        'inputs.x',
      ]);
    });
  });

  describe('rejects with the path of the field at fault', function () {
    it('rejects an unknown top-level key, naming it', function () {
      assertOnlyProblem({ ...playbook([write('w')]), author: 'me' }, '', /Unrecognized key.*"author"/);
    });

    it('rejects an unknown key in a step at the step', function () {
      assertOnlyProblem(playbook([write('w'), review('r', 'w', { colour: 'red' })]), 'steps[1]', /"colour"/);
    });

    it('rejects an else arm that refers to a step of the then arm (the two never both run)', function () {
      assertOnlyProblem(
        playbook([
          write('w'),
          {
            type: 'if',
            id: 'i',
            when: { succeeded: 'w' },
            then: [write('t')],
            else: [review('r', 't')],
          },
        ]),
        'steps[1].else[0].of',
        /runs later or in another branch/,
      );
    });

    it('rejects a loop whose max input allows more rounds than a loop may run, or none', function () {
      for (const [min, max] of [
        [0, 5],
        [1, 500],
      ]) {
        assertOnlyProblem(
          {
            ...playbook([
              {
                type: 'loop',
                id: 'l',
                max: { input: 'n' },
                until: { succeeded: 'w' },
                steps: [write('w')],
              },
            ]),
            inputs: { n: { type: 'integer', default: 1, min, max } },
          },
          'steps[0].max.input',
          /a loop runs 1-10/,
        );
      }
    });

    it('rejects a condition on applying an adjudication (the adjudication decides)', function () {
      assertOnlyProblem(
        playbook([
          write('a'),
          write('b'),
          { type: 'adjudicate', id: 'pick', candidates: ['a', 'b'] },
          { type: 'apply', id: 'apply', of: 'pick', when: { succeeded: 'a' } },
        ]),
        'steps[3].when',
        /the adjudication decides/,
      );
    });

    it('does not mistake Object properties for inputs', function () {
      assertOnlyProblem(
        playbook([{ type: 'write', id: 'w', worker: { input: 'constructor' } }]),
        'steps[0].worker.input',
        /no input "constructor" is declared/,
      );
    });

    it('rejects another format number', function () {
      assertOnlyProblem({ ...playbook([write('w')]), format: 2 }, 'format', /expected 1/);
    });

    it('rejects a name that is not lower-case letters, digits, - or _', function () {
      for (const name of ['Pair', 'pair review', '-pair', '', 'x'.repeat(65)]) {
        assertOnlyProblem({ ...playbook([write('w')]), name }, 'name', /lower-case letters, digits, - or _/);
      }
    });

    it('rejects a playbook without steps', function () {
      assertOnlyProblem(playbook([]), 'steps', /expected array to have >=1 items/);
    });

    it('rejects a step id that breaks the id rule', function () {
      assertOnlyProblem(playbook([write('Write-1')]), 'steps[0].id', /step id is 1-32 lower-case/);
    });

    it('rejects an unknown or missing step type, listing the types there are', function () {
      const types = '"plan", "write", "review", "verify", "adjudicate", "apply", "parallel", "loop" or "if"';
      assert.deepEqual(problemsOf(playbook([write('w'), { type: 'deploy', id: 'd', of: 'w' }])), [
        { path: 'steps[1].type', message: `expected a step type: ${types}, got the string "deploy"` },
      ]);
      assert.deepEqual(problemsOf(playbook([write('w'), { id: 'd', of: 'w' }])), [
        { path: 'steps[1].type', message: `missing; expected a step type: ${types}` },
      ]);
      assert.deepEqual(problemsOf(playbook(['write'] as unknown as Json[])), [
        { path: 'steps[0]', message: 'expected a step (an object with a "type"), got the string "write"' },
      ]);
    });

    it('rejects a duplicate id at the second occurrence', function () {
      assertOnlyProblem(
        playbook([write('w'), review('r', 'w'), review('w', 'w')]),
        'steps[2].id',
        /the id "w" is used twice/,
      );
      assertHasProblem(
        playbook([
          write('w'),
          { type: 'parallel', id: 'fan', branches: [[write('a')], [write('b'), write('a')]] },
        ]),
        'steps[1].branches[1][1].id',
        /the id "a" is used twice/,
      );
    });

    it('rejects a reference to an id no step has', function () {
      assertOnlyProblem(
        playbook([write('w'), review('r', 'ghost')]),
        'steps[1].of',
        /no step has the id "ghost"/,
      );
    });

    it('rejects a reference to a step that runs later, outside loops', function () {
      assertOnlyProblem(
        playbook([review('r', 'w'), write('w')]),
        'steps[0].of',
        /"w" runs later.*refer only to steps that ran before/,
      );
      assertOnlyProblem(playbook([write('w', { continue: 'w' })]), 'steps[0].continue', /"w" runs later/);
      assertOnlyProblem(
        playbook([write('w'), loop('l', [write('x')], { succeeded: 'after' }), write('after')]),
        'steps[1].until.succeeded',
        /"after" runs later/,
      );
    });

    it('rejects a reference from a step before a loop into the loop', function () {
      assertOnlyProblem(
        playbook([review('r', 'inside'), loop('l', [write('inside')], { succeeded: 'inside' })]),
        'steps[0].of',
        /"inside" runs later/,
      );
    });

    it('rejects a reference across sibling parallel branches', function () {
      const fan = { type: 'parallel', id: 'fan', branches: [[write('a')], [review('r', 'a')]] };
      assertOnlyProblem(playbook([fan]), 'steps[0].branches[1][0].of', /"a" runs later or in another branch/);
      assertHasProblem(
        playbook([loop('l', [fan], { succeeded: 'r' })]),
        'steps[0].steps[0].branches[1][0].of',
        /"a" is in another parallel branch/,
      );
    });

    it('rejects a review of a step that is not a write', function () {
      assertOnlyProblem(
        playbook([{ type: 'plan', id: 'plan', worker: 'codex' }, review('r', 'plan')]),
        'steps[1].of',
        /"plan" is a plan step; a write step is needed/,
      );
    });

    it('rejects a continue that points at a review', function () {
      assertOnlyProblem(
        playbook([write('w'), review('r', 'w'), write('again', { continue: 'r' })]),
        'steps[2].continue',
        /"r" is a review step; a write step is needed/,
      );
    });

    it('rejects a condition that asks a verdict of a write, or whether a write passed', function () {
      assertOnlyProblem(
        playbook([
          write('w'),
          { type: 'apply', id: 'a', of: 'w', when: { verdict: { step: 'w', is: 'approve' } } },
        ]),
        'steps[1].when.verdict.step',
        /"w" is a write step; a review step is needed/,
      );
      assertOnlyProblem(
        playbook([
          write('w'),
          loop('l', [write('x')], { all: [{ succeeded: 'x' }, { not: { passed: 'w' } }] }),
        ]),
        'steps[1].until.all[1].not.passed',
        /"w" is a write step; a verify step is needed/,
      );
    });

    it('rejects an adjudicate with one candidate or a candidate named twice', function () {
      assertOnlyProblem(
        playbook([write('w'), { type: 'adjudicate', id: 'j', candidates: ['w'] }]),
        'steps[1].candidates',
        /expected array to have >=2 items/,
      );
      assertOnlyProblem(
        playbook([write('a'), write('b'), { type: 'adjudicate', id: 'j', candidates: ['a', 'a'] }]),
        'steps[2].candidates',
        /a candidate is named twice/,
      );
      assertOnlyProblem(
        playbook([write('a'), review('r', 'a'), { type: 'adjudicate', id: 'j', candidates: ['a', 'r'] }]),
        'steps[2].candidates[1]',
        /"r" is a review step; a write step is needed/,
      );
    });

    it(`rejects a loop max of 0 or ${MAX_ROUNDS + 1}`, function () {
      assertOnlyProblem(
        playbook([loop('l', [write('w')], { succeeded: 'w' }, 0)]),
        'steps[0].max',
        /expected number to be >=1/,
      );
      assertOnlyProblem(
        playbook([loop('l', [write('w')], { succeeded: 'w' }, MAX_ROUNDS + 1)]),
        'steps[0].max',
        new RegExp(`expected number to be <=${MAX_ROUNDS}`),
      );
    });

    it(`rejects steps nested more than ${MAX_DEPTH} deep, at the step too deep`, function () {
      assertOnlyProblem(
        nested(MAX_DEPTH + 1),
        'steps[1].steps[0].branches[0][0].then[0].steps[0]',
        new RegExp(`nested more than ${MAX_DEPTH} deep`),
      );
    });

    it(`rejects more than ${MAX_STEPS} steps, counting those nested in branches`, function () {
      const half = MAX_STEPS / 2;
      const branch = (side: string) => Array.from({ length: half }, (_, i) => write(`${side}${i}`));
      assertOnlyProblem(
        playbook([{ type: 'parallel', id: 'fan', branches: [branch('l'), branch('r')] }]),
        'steps',
        new RegExp(`^${MAX_STEPS + 1} steps; a playbook holds at most ${MAX_STEPS}$`),
      );
    });

    it('rejects a template variable that is not task, inputs.NAME or steps.ID.FIELD', function () {
      for (const variable of ['foo', 'steps.w', 'inputs.a.b', 'Task', '']) {
        assertOnlyProblem(
          playbook([write('w'), write('x', { task: `Use {{${variable}}} here` })]),
          'steps[1].task',
          /is not a known variable; use \{\{task\}\}, \{\{inputs\.NAME\}\} or \{\{steps\.ID\.FIELD\}\}/,
        );
      }
    });

    it('rejects a step field the step does not offer, listing the ones it does', function () {
      assertOnlyProblem(
        playbook([
          { type: 'plan', id: 'plan', worker: 'codex' },
          write('w', { task: '{{steps.plan.diff}}' }),
        ]),
        'steps[1].task',
        /\{\{steps\.plan\.diff\}\}: a plan step offers message$/,
      );
      assertOnlyProblem(
        playbook([write('w'), review('r', 'w', { focus: 'see {{steps.w.verdict}}' })]),
        'steps[1].focus',
        /a write step offers message, diff, files, stats/,
      );
    });

    it('rejects a template that names a step that runs later or an apply step', function () {
      assertOnlyProblem(
        playbook([write('w', { task: '{{steps.later.diff}}' }), write('later')]),
        'steps[0].task',
        /"later" runs later/,
      );
      assertOnlyProblem(
        playbook([
          write('w'),
          { type: 'apply', id: 'a', of: 'w' },
          write('x', { task: '{{steps.a.message}}' }),
        ]),
        'steps[2].task',
        /"a" is a apply step/,
      );
    });

    it('rejects a template naming an input that is not declared', function () {
      assertOnlyProblem(
        playbook([write('w', { task: 'in the style of {{inputs.missing}}' })]),
        'steps[0].task',
        /no input "missing" is declared under inputs/,
      );
    });

    it('rejects a worker {input} naming an undeclared input', function () {
      assertOnlyProblem(
        playbook([write('w', { worker: { input: 'x' } })]),
        'steps[0].worker.input',
        /no input "x" is declared/,
      );
      assertOnlyProblem(
        playbook([write('w', { worker: { otherThanInput: 'y' } })]),
        'steps[0].worker.otherThanInput',
        /no input "y" is declared/,
      );
    });

    describe('a worker { otherThan } (resolved at run time from who actually worked that step)', function () {
      it('rejects a step id no step has', function () {
        assertOnlyProblem(
          playbook([write('w'), review('r', 'w', { worker: { otherThan: 'ghost' } })]),
          'steps[1].worker.otherThan',
          /no step has the id "ghost"/,
        );
      });

      it('rejects a step that runs later, outside loops', function () {
        assertOnlyProblem(
          playbook([write('w', { worker: { otherThan: 'r' } }), review('r', 'w')]),
          'steps[0].worker.otherThan',
          /"r" runs later.*refer only to steps that ran before/,
        );
      });

      it('rejects the step itself, inside a loop too', function () {
        assertOnlyProblem(
          playbook([write('w', { worker: { otherThan: 'w' } })]),
          'steps[0].worker.otherThan',
          /^a step cannot be worked by the other CLI than itself/,
        );
        assertOnlyProblem(
          playbook([
            write('w'),
            loop('l', [review('r', 'w', { worker: { otherThan: 'r' } })], {
              verdict: { step: 'r', is: 'approve' },
            }),
          ]),
          'steps[1].steps[0].worker.otherThan',
          /^a step cannot be worked by the other CLI than itself/,
        );
      });

      it('rejects a step that has no worker: verify, adjudicate, apply or a container', function () {
        assertOnlyProblem(
          playbook([
            write('w'),
            { type: 'verify', id: 'check', of: 'w' },
            review('r', 'w', { worker: { otherThan: 'check' } }),
          ]),
          'steps[2].worker.otherThan',
          /"check" is a verify step; a plan or write or review step is needed/,
        );
        assertOnlyProblem(
          playbook([
            write('w'),
            loop('l', [write('x')], { succeeded: 'x' }),
            review('r', 'w', { worker: { otherThan: 'l' } }),
          ]),
          'steps[2].worker.otherThan',
          /"l" is a loop step/,
        );
      });

      it('holds { sameAs } to the same rules, at its own path', function () {
        assertOnlyProblem(
          playbook([write('w', { worker: { sameAs: 'w' } })]),
          'steps[0].worker.sameAs',
          /^a step cannot be worked by the same CLI as itself/,
        );
        assertOnlyProblem(
          playbook([write('w'), review('r', 'w', { worker: { sameAs: 'ghost' } })]),
          'steps[1].worker.sameAs',
          /no step has the id "ghost"/,
        );
        assertOnlyProblem(
          playbook([{ type: 'plan', id: 'p', worker: { sameAs: 'w' } }, write('w')]),
          'steps[0].worker.sameAs',
          /"w" runs later/,
        );
        assertOnlyProblem(
          playbook([
            write('w'),
            loop('l', [write('fix', { worker: { sameAs: 'r' }, continue: 'w' }), review('r', 'w')], {
              succeeded: 'r',
            }),
          ]),
          'steps[1].steps[0].worker.sameAs',
          /"r" runs later in the loop body/,
        );
        assertOnlyProblem(
          playbook([write('w', { worker: { sameAs: 'w', otherThan: 'w' } })]),
          'steps[0].worker',
          /./,
        );
      });

      it('rejects a step of a sibling parallel branch, at the nested path', function () {
        const fan = {
          type: 'parallel',
          id: 'fan',
          branches: [[write('a')], [write('b', { worker: { otherThan: 'a' } })]],
        };
        assertOnlyProblem(
          playbook([fan]),
          'steps[0].branches[1][0].worker.otherThan',
          /"a" runs later or in another branch/,
        );
      });

      it('rejects a step later in the same loop body unless the reference sits in an if of that body', function () {
        assertOnlyProblem(
          playbook([
            write('w'),
            loop('l', [write('fix', { worker: { otherThan: 'r' }, continue: 'w' }), review('r', 'w')], {
              verdict: { step: 'r', is: 'approve' },
            }),
          ]),
          'steps[1].steps[0].worker.otherThan',
          /"r" runs later in the loop body, so in round 1 its CLI is not known/,
        );
        // As the built-in handoff: the revision runs only once the review has run in an earlier round.
        const guarded = playbook([
          write('w'),
          loop(
            'l',
            [
              {
                type: 'if',
                id: 'again',
                when: { verdict: { step: 'r', is: 'request_changes' } },
                then: [write('fix', { worker: { otherThan: 'r' }, continue: 'w' })],
              },
              review('r', 'w', { worker: { otherThan: 'w' } }),
            ],
            { verdict: { step: 'r', is: 'approve' } },
          ),
        ]);
        assert.deepEqual(parsePlaybook(guarded, SOURCE), { ...guarded, inputs: {} });
      });

      it('rejects an if outside the loop as a guard: it runs before the body', function () {
        assertOnlyProblem(
          playbook([
            write('w'),
            {
              type: 'if',
              id: 'outer',
              when: { succeeded: 'w' },
              then: [
                loop('l', [write('fix', { worker: { otherThan: 'r' }, continue: 'w' }), review('r', 'w')], {
                  succeeded: 'r',
                }),
              ],
            },
          ]),
          'steps[1].then[0].steps[0].worker.otherThan',
          /"r" runs later in the loop body/,
        );
      });
    });

    it('rejects an {input} of the wrong input type', function () {
      const inputs = {
        n: { type: 'integer', default: 2, min: 1, max: 5 },
        who: { type: 'worker', default: 'gemini' },
        text: { type: 'string', default: '' },
      };
      assertOnlyProblem(
        playbook([write('w', { worker: { input: 'n' } })], { inputs }),
        'steps[0].worker.input',
        /the input "n" is an integer; worker is needed/,
      );
      assertOnlyProblem(
        playbook([loop('l', [write('w')], { succeeded: 'w' }, { input: 'who' })], { inputs }),
        'steps[0].max.input',
        /the input "who" is a worker; integer is needed/,
      );
      assertOnlyProblem(
        playbook(
          [
            write('w'),
            review('r', 'w'),
            {
              type: 'apply',
              id: 'a',
              of: 'w',
              when: { findingsAtLeast: { step: 'r', severity: { input: 'text' } } },
            },
          ],
          { inputs },
        ),
        'steps[2].when.findingsAtLeast.severity.input',
        /the input "text" is a string; severity is needed/,
      );
    });

    it('rejects an integer input whose default is outside its range', function () {
      assertOnlyProblem(
        playbook([write('w')], { inputs: { n: { type: 'integer', default: 9, min: 1, max: 5 } } }),
        'inputs.n.default',
        /the default 9 is outside 1-5/,
      );
      assertOnlyProblem(
        playbook([write('w')], { inputs: { n: { type: 'integer', default: 3, min: 5, max: 1 } } }),
        'inputs.n.default',
        /outside 5-1/,
      );
    });

    it('rejects an input name that breaks the name rule, at the name, saying the rule', function () {
      assertOnlyProblem(
        playbook([write('w')], { inputs: { Who: { type: 'worker', default: 'codex' } } }),
        'inputs.Who',
        /^an input name is 1-32 lower-case letters, digits or _ and starts with a letter$/,
      );
    });

    it('rejects an unknown input type and a default of the wrong kind, listing what is taken', function () {
      assert.deepEqual(
        problemsOf(playbook([write('w')], { inputs: { who: { type: 'cli', default: 'x' } } })),
        [
          {
            path: 'inputs.who.type',
            message:
              'expected an input type: "worker", "integer", "severity", "string" or "command", got the string "cli"',
          },
        ],
      );
      assert.deepEqual(
        problemsOf(playbook([write('w')], { inputs: { bar: { type: 'severity', default: 'severe' } } })),
        [
          {
            path: 'inputs.bar.default',
            message: 'expected "info", "low", "medium", "high" or "critical", got the string "severe"',
          },
        ],
      );
    });

    it('rejects a verify command {input} that names a non-command input', function () {
      assertOnlyProblem(
        playbook([write('w'), { type: 'verify', id: 'v', of: 'w', command: { input: 'style' } }], {
          inputs: { style: { type: 'string', default: 'terse' } },
        }),
        'steps[1].command.input',
        /the input "style" is a string; command is needed/,
      );
    });

    it('rejects an empty command element and an empty command', function () {
      assertOnlyProblem(
        playbook([write('w'), { type: 'verify', id: 'v', of: 'w', command: ['npm', ''] }]),
        'steps[1].command[1]',
        /expected string to have >=1 characters/,
      );
      assertOnlyProblem(
        playbook([write('w'), { type: 'verify', id: 'v', of: 'w', command: [] }]),
        'steps[1].command',
        /^a command needs at least its program, e\.g\. \["npm", "test"\]; leave command out/,
      );
    });

    it('rejects a template longer than the limit', function () {
      assertOnlyProblem(
        playbook([write('w', { task: 'x'.repeat(MAX_TEMPLATE_CHARS + 1) })]),
        'steps[0].task',
        new RegExp(`<=${MAX_TEMPLATE_CHARS}`),
      );
    });

    it('reports every problem in document order, and the error message names the source and the first five', function () {
      const value = playbook([
        review('r0', 'ghost0'),
        review('r1', 'ghost1'),
        write('w', { task: '{{nope}}' }),
        review('r2', 'ghost2'),
        review('r3', 'ghost3'),
        review('r4', 'ghost4'),
      ]);
      const problems = problemsOf(value);
      assert.deepEqual(
        problems.map((problem) => problem.path),
        ['steps[0].of', 'steps[1].of', 'steps[2].task', 'steps[3].of', 'steps[4].of', 'steps[5].of'],
      );
      let message = '';
      try {
        parsePlaybook(value, SOURCE);
      } catch (error) {
        message = (error as Error).message;
      }
      assert.match(
        message,
        new RegExp(`^${SOURCE.replace(/\./g, '\\.')}: steps\\[0\\]\\.of: no step has the id "ghost0"`),
      );
      assert.match(message, / \(and 1 more\)$/);
      assert.doesNotMatch(message, /ghost4/);
    });

    it('writes paths as the format shows them', function () {
      assert.equal(formatPath(['steps', 2, 'branches', 0, 1, 'of']), 'steps[2].branches[0][1].of');
      assert.equal(formatPath([]), '');
      assert.equal(formatPath([0, 'x']), '[0].x');
    });

    describe('a field of several forms: at the fault inside the form meant, or listing the forms', function () {
      const WORKER_FORMS =
        '"codex", "gemini", { "input": INPUT }, { "otherThan": STEP }, { "sameAs": STEP } or { "otherThanInput": INPUT }';
      const CONDITION_FORMS =
        'one condition: { "verdict": { "step": STEP, "is": "approve" | "request_changes" } }, ' +
        '{ "findingsAtLeast": { "step": STEP, "severity": SEVERITY } }, { "succeeded": STEP }, { "passed": STEP }, ' +
        '{ "all": [CONDITION, ...] }, { "any": [CONDITION, ...] } or { "not": CONDITION }';
      const applyWhen = (when: unknown): Json =>
        playbook([write('w'), review('r', 'w'), { type: 'apply', id: 'a', of: 'w', when }]);

      it('reports a verdict no review gives at steps[2].when.verdict.is, with the two it can be', function () {
        assert.deepEqual(problemsOf(applyWhen({ verdict: { step: 'r', is: 'yes' } })), [
          {
            path: 'steps[2].when.verdict.is',
            message: 'expected "approve" or "request_changes", got the string "yes"',
          },
        ]);
      });

      it('follows the condition the keys name down nested all / any / not', function () {
        assert.deepEqual(
          problemsOf(applyWhen({ all: [{ succeeded: 'w' }, { not: { verdict: { step: 'r' } } }] })),
          [
            {
              path: 'steps[2].when.all[1].not.verdict.is',
              message: 'missing; expected "approve" or "request_changes"',
            },
          ],
        );
        assert.deepEqual(problemsOf(applyWhen({ any: [{ passed: 'w' }, { not: 'r' }] })), [
          { path: 'steps[2].when.any[1].not', message: `expected ${CONDITION_FORMS}, got the string "r"` },
        ]);
        assert.deepEqual(problemsOf(applyWhen({ findingsAtLeast: { step: 'r', severity: 'huge' } })), [
          {
            path: 'steps[2].when.findingsAtLeast.severity',
            message:
              'expected "info", "low", "medium", "high", "critical" or { "input": INPUT }, got the string "huge"',
          },
        ]);
        assertOnlyProblem(
          applyWhen({ verdict: { step: 'r', is: 'approve', by: 'gemini' } }),
          'steps[2].when.verdict',
          /^Unrecognized key: "by"$/,
        );
      });

      it('lists the condition forms for a condition of two forms, of none, or left out', function () {
        assert.deepEqual(problemsOf(applyWhen({ succeeded: 'w', passed: 'w' })), [
          {
            path: 'steps[2].when',
            message: `expected ${CONDITION_FORMS}, got an object with the keys "succeeded", "passed"`,
          },
        ]);
        assert.deepEqual(problemsOf(applyWhen({})), [
          { path: 'steps[2].when', message: `expected ${CONDITION_FORMS}, got an empty object` },
        ]);
        assert.deepEqual(problemsOf(playbook([write('w'), { type: 'if', id: 'i', then: [write('x')] }])), [
          { path: 'steps[1].when', message: `missing; expected ${CONDITION_FORMS}` },
        ]);
      });

      it('reports worker "claude" at steps[0].worker, listing the worker forms', function () {
        assert.deepEqual(problemsOf(playbook([write('w', { worker: 'claude' })])), [
          { path: 'steps[0].worker', message: `expected ${WORKER_FORMS}, got the string "claude"` },
        ]);
        assert.deepEqual(problemsOf(playbook([write('w', { worker: { sameAs: 'a', otherThan: 'b' } })])), [
          {
            path: 'steps[0].worker',
            message: `expected ${WORKER_FORMS}, got an object with the keys "sameAs", "otherThan"`,
          },
        ]);
        assert.deepEqual(problemsOf(playbook([{ type: 'write', id: 'w' }])), [
          { path: 'steps[0].worker', message: `missing; expected ${WORKER_FORMS}` },
        ]);
      });

      it('reports a fault inside the worker form its key names, at that key', function () {
        assertOnlyProblem(
          playbook([write('w', { worker: { otherThan: 7 } })]),
          'steps[0].worker.otherThan',
          /expected string/,
        );
        assertOnlyProblem(
          playbook([write('w', { worker: { input: 'Writer' } })]),
          'steps[0].worker.input',
          /^an input name is 1-32 lower-case letters/,
        );
      });

      it('reports max "3" at steps[0].max, saying it takes a whole number or an input', function () {
        for (const [max, given] of [
          ['3', 'the string "3"'],
          [2.5, 'the number 2.5'],
          [{}, 'an empty object'],
        ] as const) {
          assert.deepEqual(problemsOf(playbook([loop('l', [write('w')], { succeeded: 'w' }, max)])), [
            {
              path: 'steps[0].max',
              message: `expected a whole number from 1 to ${MAX_ROUNDS} or { "input": INPUT }, got ${given}`,
            },
          ]);
        }
      });

      it('reports a verify command of neither form at the command, listing both', function () {
        for (const [command, given] of [
          ['npm test', 'the string "npm test"'],
          [{ inptu: 'tests' }, 'an object with the key "inptu"'],
        ] as const) {
          assert.deepEqual(
            problemsOf(playbook([write('w'), { type: 'verify', id: 'v', of: 'w', command }])),
            [
              {
                path: 'steps[1].command',
                message: `expected an argv list such as ["npm", "test"] or { "input": INPUT }, got ${given}`,
              },
            ],
          );
        }
      });
    });

    describe('a verify command: refused before anything runs when it leaves the jail', function () {
      const refused: [string[], number, RegExp][] = [
        [['sh', '-c', 'npm test'], 0, /^the program "sh" would run a command string or another program/],
        [['/usr/bin/env', 'npm', 'test'], 0, /would run a command string or another program/],
        [['node', '/etc/passwd'], 1, /^part 1 \("\/etc\/passwd"\) is an absolute path/],
        [
          ['npm', 'test', '--prefix=../other'],
          2,
          /^part 2 \("--prefix=\.\.\/other"\) leads out of the workspace/,
        ],
      ];

      it('refuses a shell or launcher, an absolute path or a path out of the workspace, at the part at fault', function () {
        for (const [command, part, message] of refused) {
          const expected = verifyCommandProblem(command);
          assert.match(expected ?? '', message);
          assert.deepEqual(
            problemsOf(playbook([write('w'), { type: 'verify', id: 'v', of: 'w', command }])),
            [{ path: `steps[1].command[${part}]`, message: expected }],
          );
        }
      });

      it("refuses the same in a command input's default, at the part at fault", function () {
        for (const [command, part] of refused) {
          assert.deepEqual(
            problemsOf(playbook([write('w')], { inputs: { tests: { type: 'command', default: command } } })),
            [{ path: `inputs.tests.default[${part}]`, message: verifyCommandProblem(command) }],
          );
        }
      });

      it('accepts commands that keep to the rules, and the built-in playbooks', function () {
        for (const command of [
          ['npm', 'test'],
          ['node', 'test/../scripts/check.js', '--out=reports/x.xml'],
        ]) {
          assert.doesNotThrow(() =>
            parsePlaybook(playbook([write('w'), { type: 'verify', id: 'v', of: 'w', command }]), SOURCE),
          );
        }
        assert.equal(BUILTIN_PLAYBOOKS.length, 8);
        for (const builtin of BUILTIN_PLAYBOOKS) {
          assert.doesNotThrow(() => parsePlaybook(builtin, `builtin:${builtin.name}`), builtin.name);
        }
      });
    });
  });

  describe('properties', function () {
    it('never throws anything but a PlaybookError with located problems, whatever the value', function () {
      fc.assert(fc.property(fc.oneof(fc.jsonValue(), fc.anything()), assertParsesOrLocatesProblems), {
        numRuns: 300,
      });
    });

    it('refuses a part of a valid playbook replaced by junk at that part or inside it, unions included', function () {
      fc.assert(
        fc.property(generatedPlaybook(), fc.nat(), fc.jsonValue(), (generated, pick, junk) => {
          const paths = allPaths(generated.playbook);
          const path = paths[pick % paths.length] ?? [];
          const value = setAt(generated.playbook, path, junk);
          assertParsesOrLocatesProblems(value);
          // Junk of a sound shape (an id for an id) is the reference check's: renaming a step faults the fields
          // that name it, wherever they are. That check has its own property below.
          if (playbookSchema.safeParse(value).success) return;
          // A step's or an input's type decides which fields it takes, so another type faults its siblings.
          const at = pathText(path[path.length - 1] === 'type' ? path.slice(0, -1) : path);
          for (const problem of problemsOf(value)) {
            assert.ok(
              at === '' ||
                problem.path === at ||
                problem.path.startsWith(`${at}.`) ||
                problem.path.startsWith(`${at}[`),
              `${JSON.stringify(junk)} at ${at}: ${JSON.stringify(problem)}`,
            );
          }
        }),
        { numRuns: 500 },
      );
    });

    it('refuses junk in a field of several forms at that field or inside it, never with a bare "Invalid input"', function () {
      const unionFields = (playbookValue: Json): Path[] =>
        allPaths(playbookValue).filter((path) =>
          ['worker', 'when', 'until', 'max', 'command', 'severity', 'not'].includes(
            String(path[path.length - 1]),
          ),
        );
      fc.assert(
        fc.property(generatedPlaybook(true), fc.nat(), fc.jsonValue(), (generated, pick, junk) => {
          const fields = unionFields(generated.playbook);
          const path = fields[pick % fields.length];
          assert.ok(path, 'a generated playbook with a review has a worker');
          const value = setAt(generated.playbook, path, junk);
          if (playbookSchema.safeParse(value).success) return;
          const at = pathText(path);
          for (const problem of problemsOf(value)) {
            assert.ok(
              problem.path === at || problem.path.startsWith(`${at}.`) || problem.path.startsWith(`${at}[`),
              `${JSON.stringify(junk)} at ${at}: ${JSON.stringify(problem)}`,
            );
            assert.doesNotMatch(problem.message, /^Invalid input$/);
          }
        }),
        { numRuns: 300 },
      );
    });

    it('generates every step type, verify steps with and without a command, and every condition kind', function () {
      const seen = new Set<string>();
      const note = (value: unknown): void => {
        if (Array.isArray(value)) value.forEach(note);
        else if (value !== null && typeof value === 'object') {
          const record = value as Json;
          if (typeof record.type === 'string' && typeof record.id === 'string') {
            seen.add(record.type);
            if (record.type === 'verify') {
              seen.add(
                record.command === undefined
                  ? 'verify without command'
                  : Array.isArray(record.command)
                    ? 'verify with argv'
                    : 'verify with input',
              );
            }
            if (record.type === 'loop' && typeof record.max !== 'number') seen.add('loop max input');
          }
          for (const key of ['verdict', 'findingsAtLeast', 'succeeded', 'passed', 'all', 'any', 'not']) {
            if (key in record && !('type' in record)) seen.add(key);
          }
          Object.values(record).forEach(note);
        }
      };
      for (const generated of fc.sample(generatedPlaybook(), { numRuns: 300, seed: 42 }))
        note(generated.playbook);
      assert.deepEqual(
        [...seen].sort(),
        [
          'adjudicate',
          'all',
          'any',
          'apply',
          'findingsAtLeast',
          'if',
          'loop',
          'loop max input',
          'not',
          'parallel',
          'passed',
          'plan',
          'review',
          'succeeded',
          'verdict',
          'verify',
          'verify with argv',
          'verify with input',
          'verify without command',
          'write',
        ].sort(),
      );
    });

    it('accepts every generated valid playbook unchanged, and parsing again gives the same playbook and hash', function () {
      fc.assert(
        fc.property(generatedPlaybook(), fc.integer(), (generated, seed) => {
          const parsed = parsePlaybook(generated.playbook, SOURCE);
          assert.deepEqual(parsed, generated.playbook);
          const again = parsePlaybook(JSON.parse(JSON.stringify(parsed)), SOURCE);
          assert.deepEqual(again, parsed);
          assert.equal(playbookHash(again), playbookHash(parsed));
          const shuffled = shuffleKeys(parsed, seeded(seed));
          assert.equal(playbookHash(shuffled as Playbook), playbookHash(parsed));
          assert.deepEqual(parsePlaybook(shuffled, SOURCE), parsed);
          assert.equal(playbookHash(parsePlaybook(shuffled, SOURCE)), playbookHash(parsed));
        }),
        { numRuns: 200 },
      );
    });

    it('rejects a generated playbook with one reference changed to an unknown id, at exactly that field', function () {
      const freshId = fc.stringMatching(/^[a-z][a-z0-9_]{0,31}$/).filter((id) => !/^s\d+$/.test(id));
      fc.assert(
        fc.property(generatedPlaybook(true), fc.nat(), freshId, (generated, pick, fresh) => {
          const reference = generated.references[pick % generated.references.length];
          assert.ok(reference, 'the generator always makes a reference');
          const value = reference.template ? `Improve {{steps.${fresh}.diff}}` : fresh;
          const problems = problemsOf(setAt(generated.playbook, reference.path, value));
          assert.deepEqual(problems, [
            { path: pathText(reference.path), message: `no step has the id "${fresh}"` },
          ]);
        }),
        { numRuns: 300 },
      );
    });
  });
});

describe('playbook inputs at run time', function () {
  const withInputs = parsePlaybook(
    playbook([write('w')], {
      inputs: {
        writer: { type: 'worker', default: 'codex' },
        rounds: { type: 'integer', default: 3, min: 1, max: 5 },
        threshold: { type: 'severity', default: 'high' },
        style: { type: 'string', default: 'terse' },
        tests: { type: 'command', default: [] },
      },
    }),
    SOURCE,
  );

  function problemsResolving(given: Record<string, unknown>, of: Playbook = withInputs): Problem[] {
    try {
      resolveInputs(of, given, 'run');
    } catch (error) {
      assert.ok(error instanceof PlaybookError, `a PlaybookError, not ${String(error)}`);
      return error.problems;
    }
    assert.fail(`accepted ${JSON.stringify(given)}`);
  }

  it('gives the defaults when nothing is given', function () {
    assert.deepEqual(resolveInputs(withInputs, {}, 'run'), {
      writer: 'codex',
      rounds: 3,
      threshold: 'high',
      style: 'terse',
      tests: [],
    });
  });

  it('takes given values over the defaults', function () {
    assert.deepEqual(
      resolveInputs(
        withInputs,
        { writer: 'gemini', rounds: 5, threshold: 'info', style: '', tests: ['npm', 'run', 'check'] },
        'run',
      ),
      { writer: 'gemini', rounds: 5, threshold: 'info', style: '', tests: ['npm', 'run', 'check'] },
    );
    assert.deepEqual(resolveInputs(withInputs, { rounds: 1 }, 'run'), {
      writer: 'codex',
      rounds: 1,
      threshold: 'high',
      style: 'terse',
      tests: [],
    });
  });

  it('rejects a value of the wrong type, at the input, saying what is expected', function () {
    assert.deepEqual(problemsResolving({ writer: 'claude' }), [
      { path: 'inputs.writer', message: 'expected "codex" or "gemini"' },
    ]);
    assert.deepEqual(problemsResolving({ threshold: 'severe' }), [
      { path: 'inputs.threshold', message: 'expected one of info, low, medium, high, critical' },
    ]);
    assert.deepEqual(problemsResolving({ style: 7 }), [
      { path: 'inputs.style', message: `expected a string of at most ${MAX_TEMPLATE_CHARS} characters` },
    ]);
    for (const tests of ['npm test', ['npm', ''], ['npm', 3]]) {
      assert.deepEqual(problemsResolving({ tests }), [
        { path: 'inputs.tests', message: 'expected an argv list of non-empty strings (no shell)' },
      ]);
    }
  });

  it('refuses a command value that leaves the verify jail, at the input, before anything runs', function () {
    for (const tests of [
      ['sh', '-c', 'x'],
      ['node', '/etc/passwd'],
      ['npm', 'test', '--prefix=../other'],
    ]) {
      const message = verifyCommandProblem(tests);
      assert.ok(message !== undefined, tests.join(' '));
      assert.deepEqual(problemsResolving({ tests }), [{ path: 'inputs.tests', message }]);
    }
    assert.deepEqual(
      resolveInputs(withInputs, { tests: ['npm', 'run', 'check', '--', 'src/a.ts'] }, 'run').tests,
      ['npm', 'run', 'check', '--', 'src/a.ts'],
    );
  });

  it('rejects an integer outside its range or not whole', function () {
    for (const rounds of [0, 6, 2.5, '3']) {
      assert.deepEqual(problemsResolving({ rounds }), [
        { path: 'inputs.rounds', message: 'expected a whole number from 1 to 5' },
      ]);
    }
  });

  it('rejects an unknown input, listing the ones the playbook takes', function () {
    assert.deepEqual(problemsResolving({ reviewer: 'gemini' }), [
      {
        path: 'inputs.reviewer',
        message: 'pair has no input "reviewer"; it takes writer, rounds, threshold, style, tests',
      },
    ]);
    const bare = parsePlaybook(playbook([write('w')]), SOURCE);
    assert.deepEqual(problemsResolving({ rounds: 2 }, bare), [
      { path: 'inputs.rounds', message: 'pair has no input "rounds"; it takes none' },
    ]);
  });

  it('reports every bad input at once', function () {
    assert.deepEqual(
      problemsResolving({ extra: 1, writer: 'x', rounds: 99 }).map((problem) => problem.path),
      ['inputs.extra', 'inputs.writer', 'inputs.rounds'],
    );
  });
});

describe('playbook text', function () {
  it('names a JSON syntax error, at the top', function () {
    for (const text of ['{', '{"format": 1,}', '', 'format: 1']) {
      let problems: Problem[] = [];
      try {
        parsePlaybookText(text, SOURCE);
      } catch (error) {
        assert.ok(error instanceof PlaybookError);
        problems = error.problems;
      }
      assert.equal(problems.length, 1, JSON.stringify(problems));
      assert.equal(problems[0]?.path, '');
      assert.ok(problems[0]?.message.startsWith('not valid JSON'), problems[0]?.message);
    }
  });

  it('parses and checks valid JSON text like the value it holds', function () {
    const value = everything();
    assert.deepEqual(parsePlaybookText(JSON.stringify(value, null, 2), SOURCE), value);
    assert.throws(
      () => parsePlaybookText(JSON.stringify(playbook([review('r', 'ghost')])), SOURCE),
      (error: unknown) => error instanceof PlaybookError && error.problems[0]?.path === 'steps[0].of',
    );
  });
});

describe('playbook hash', function () {
  it('sorts keys at every level, keeps array order and drops undefined', function () {
    assert.equal(
      canonicalJson({ b: [{ z: 1, a: 2 }, 3], a: { d: undefined, c: 'x' } }),
      '{"a":{"c":"x"},"b":[{"a":2,"z":1},3]}',
    );
  });

  it('is the first 12 hex digits of the SHA-256 of the canonical JSON', function () {
    const parsed = parsePlaybook(everything(), SOURCE);
    const hash = playbookHash(parsed);
    assert.match(hash, /^[0-9a-f]{12}$/);
    assert.equal(hash, createHash('sha256').update(canonicalJson(parsed)).digest('hex').slice(0, 12));
  });

  it('does not depend on key order', function () {
    const parsed = parsePlaybook(everything(), SOURCE);
    const reversed = reverseKeys(parsed) as Playbook;
    assert.notEqual(JSON.stringify(reversed), JSON.stringify(parsed));
    assert.equal(playbookHash(reversed), playbookHash(parsed));
    assert.equal(playbookHash(parsePlaybook(reversed, SOURCE)), playbookHash(parsed));
  });

  it('changes when a step, an input default or the step order changes', function () {
    const base = playbookHash(parsePlaybook(everything(), SOURCE));
    const variants: ((value: Json) => void)[] = [
      (value) => ((value.steps as Json[])[1] = write('draft', { worker: 'gemini' })),
      (value) => ((value.steps as Json[])[0] = { ...(value.steps as Json[])[0], task: 'Plan {{task}}' }),
      (value) =>
        ((value.inputs as Record<string, Json>).rounds = { type: 'integer', default: 4, min: 1, max: 5 }),
      (value) => ((value.steps as Json[])[11] = loop('retry', [write('third')], { passed: 'check' }, 2)),
      (value) => (value.description = 'another description'),
    ];
    const hashes = new Set([base]);
    for (const change of variants) {
      const value = everything();
      change(value);
      hashes.add(playbookHash(parsePlaybook(value, SOURCE)));
    }
    assert.equal(hashes.size, variants.length + 1);
    const swapped = playbook([write('a'), write('b')]);
    const unswapped = playbook([write('b'), write('a')]);
    assert.notEqual(
      playbookHash(parsePlaybook(swapped, SOURCE)),
      playbookHash(parsePlaybook(unswapped, SOURCE)),
    );
  });
});

/**
 * A playbook with `depth` levels of steps: a base write, then a loop holding a parallel holding an if holding a
 * loop (as far as `depth` reaches), the innermost level a write.
 */
function nested(depth: number): Json {
  const containers: ((inner: Json[], level: number) => Json)[] = [
    (inner, level) => loop(`loop${level}`, inner, { succeeded: 'base' }),
    (inner, level) => ({ type: 'parallel', id: `fan${level}`, branches: [inner, [write(`side${level}`)]] }),
    (inner, level) => ({ type: 'if', id: `if${level}`, when: { succeeded: 'base' }, then: inner }),
  ];
  let steps: Json[] = [write('deepest')];
  for (let level = depth - 1; level >= 1; level -= 1) {
    const container = containers[(level - 1) % containers.length];
    assert.ok(container);
    steps = [container(steps, level)];
  }
  return playbook([write('base'), ...steps]);
}

function assertParsesOrLocatesProblems(value: unknown): void {
  try {
    parsePlaybook(value, 'fuzz.json');
  } catch (error) {
    assert.ok(error instanceof PlaybookError, `only a PlaybookError, not ${String(error)}`);
    assert.ok(error.problems.length >= 1, 'at least one problem');
    for (const problem of error.problems) {
      assert.equal(typeof problem.path, 'string');
      assert.equal(typeof problem.message, 'string');
      assert.ok(problem.message.length > 0, 'a problem says something');
    }
    assert.ok(error.message.startsWith('fuzz.json: '), error.message);
  }
}

// The generator of valid playbooks: a sequence of operations, turned into steps with fresh ids (s0, s1, ...)
// that refer only to steps already run (or, in a loop body, to steps of the same body), recording where each
// reference is so that a property can break exactly one.

type WorkerChoice = 'codex' | 'gemini' | 'input' | 'otherThan' | 'sameAs';
type SimpleCondition = 'succeeded' | 'verdict' | 'findingsAtLeast' | 'passed';
interface ConditionChoice {
  wrap: 'none' | 'not' | 'all' | 'any';
  forms: SimpleCondition[];
  pick: number;
  severity: 'info' | 'low' | 'medium' | 'high' | 'critical' | 'input';
  approve: boolean;
}
interface WriteOp {
  kind: 'write';
  worker: WorkerChoice;
  pick: number;
  continues: boolean;
  templated: boolean;
}
interface ReviewOp {
  kind: 'review';
  worker: WorkerChoice;
  pick: number;
  redteam: boolean;
}
interface PlanOp {
  kind: 'plan';
  worker: WorkerChoice;
  pick: number;
  templated: boolean;
}
interface VerifyOp {
  kind: 'verify';
  pick: number;
  /** `workspace`: no command (the workspace's tests); `literal`: an argv; `input`: the `tests` input. */
  command: 'workspace' | 'literal' | 'input';
}
type InnerOp = WriteOp | ReviewOp | PlanOp | VerifyOp;
interface ApplyOp {
  kind: 'apply';
  pick: number;
  when: ConditionChoice | null;
}
interface AdjudicateOp {
  kind: 'adjudicate';
  pick: number;
  other: number;
}
interface ParallelOp {
  kind: 'parallel';
  branches: InnerOp[][];
}
interface LoopOp {
  kind: 'loop';
  max: number | 'input';
  body: InnerOp[];
  /** null: until the body's first review approves (or its first step succeeded). */
  until: ConditionChoice | null;
}
interface IfOp {
  kind: 'if';
  when: ConditionChoice;
  then: InnerOp[];
  else: InnerOp[] | null;
}
type Op = InnerOp | ApplyOp | AdjudicateOp | ParallelOp | LoopOp | IfOp;

interface Reference {
  path: Path;
  /** The reference is a {{steps.ID.diff}} in a template rather than a whole field. */
  template: boolean;
}
interface Generated {
  playbook: Json;
  references: Reference[];
}

/** The steps that have run at a point, by kind: what a reference there may name. */
interface Scope {
  writes: string[];
  reviews: string[];
  verifies: string[];
  plans: string[];
}

const LITERAL_COMMANDS = [
  ['npm', 'test'],
  ['npm', 'run', 'check', '--silent'],
  ['node', 'test/run.js', '--out=reports/x.xml'],
];

const workerChoice = fc.constantFrom<WorkerChoice>('codex', 'gemini', 'input', 'otherThan', 'sameAs');
const conditionChoice: fc.Arbitrary<ConditionChoice> = fc.record({
  wrap: fc.constantFrom<ConditionChoice['wrap']>('none', 'not', 'all', 'any'),
  forms: fc.array(fc.constantFrom<SimpleCondition>('succeeded', 'verdict', 'findingsAtLeast', 'passed'), {
    minLength: 1,
    maxLength: 3,
  }),
  pick: fc.nat(),
  severity: fc.constantFrom<ConditionChoice['severity']>(
    'info',
    'low',
    'medium',
    'high',
    'critical',
    'input',
  ),
  approve: fc.boolean(),
});
const writeOp: fc.Arbitrary<WriteOp> = fc.record({
  kind: fc.constant('write' as const),
  worker: workerChoice,
  pick: fc.nat(),
  continues: fc.boolean(),
  templated: fc.boolean(),
});
const reviewOp: fc.Arbitrary<ReviewOp> = fc.record({
  kind: fc.constant('review' as const),
  worker: workerChoice,
  pick: fc.nat(),
  redteam: fc.boolean(),
});
const innerOp: fc.Arbitrary<InnerOp> = fc.oneof(
  writeOp,
  reviewOp,
  fc.record({
    kind: fc.constant('plan' as const),
    worker: workerChoice,
    pick: fc.nat(),
    templated: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('verify' as const),
    pick: fc.nat(),
    command: fc.constantFrom<VerifyOp['command']>('workspace', 'literal', 'input'),
  }),
);
const arm = fc.array(innerOp, { minLength: 1, maxLength: 3 });
const op: fc.Arbitrary<Op> = fc.oneof(
  innerOp,
  fc.record({ kind: fc.constant('apply' as const), pick: fc.nat(), when: fc.option(conditionChoice) }),
  fc.record({ kind: fc.constant('adjudicate' as const), pick: fc.nat(), other: fc.nat() }),
  fc.record({
    kind: fc.constant('parallel' as const),
    branches: fc.array(arm, { minLength: 2, maxLength: 3 }),
  }),
  fc.record({
    kind: fc.constant('loop' as const),
    max: fc.oneof(fc.integer({ min: 1, max: MAX_ROUNDS }), fc.constant('input' as const)),
    body: fc.array(innerOp, { minLength: 1, maxLength: 4 }),
    until: fc.option(conditionChoice),
  }),
  fc.record({
    kind: fc.constant('if' as const),
    when: conditionChoice,
    then: arm,
    else: fc.option(arm),
  }),
);

/** Valid playbooks of at most 6 top-level operations (51 steps); `withReview` makes sure one has a reference. */
function generatedPlaybook(withReview = false): fc.Arbitrary<Generated> {
  const ops = withReview
    ? fc
        .tuple(writeOp, reviewOp, fc.array(op, { maxLength: 4 }))
        .map(([first, second, rest]) => [first, second, ...rest])
    : fc.tuple(writeOp, fc.array(op, { maxLength: 5 })).map(([first, rest]) => [first, ...rest]);
  return ops.map((list) => new PlaybookBuilder().build(list));
}

class PlaybookBuilder {
  private next = 0;
  private readonly references: Reference[] = [];

  build(ops: Op[]): Generated {
    const steps = this.steps(ops, ['steps'], { writes: [], reviews: [], verifies: [], plans: [] });
    return {
      playbook: {
        format: 1,
        name: 'generated',
        description: 'a generated playbook',
        inputs: {
          writer: { type: 'worker', default: 'gemini' },
          threshold: { type: 'severity', default: 'high' },
          rounds: { type: 'integer', default: 2, min: 1, max: 5 },
          tests: { type: 'command', default: ['npm', 'test'] },
        },
        steps,
      },
      references: this.references,
    };
  }

  /** The steps of `ops` at `path`; `scope` holds the steps they may refer to and grows with theirs. */
  private steps(ops: readonly Op[], path: Path, scope: Scope): Json[] {
    const out: Json[] = [];
    for (const item of ops) {
      // An adjudication needs two writes to choose from; without them the operation is left out.
      if (item.kind === 'adjudicate' && scope.writes.length < 2) continue;
      const at = [...path, out.length];
      const id = `s${this.next++}`;
      const writes = scope.writes;
      switch (item.kind) {
        case 'write': {
          const step: Json = { type: 'write', id, worker: this.worker(item.worker, item.pick, at, writes) };
          if (item.continues && writes.length > 0)
            step.continue = this.refer(writes, item.pick, [...at, 'continue']);
          if (item.templated && writes.length > 0) {
            const target = this.refer(writes, item.pick + 1, [...at, 'task'], true);
            step.task = `Improve {{steps.${target}.diff}}`;
          }
          out.push(step);
          writes.push(id);
          break;
        }
        case 'review':
          out.push({
            type: 'review',
            id,
            worker: this.worker(item.worker, item.pick, at, writes),
            of: this.refer(writes, item.pick, [...at, 'of']),
            ...(item.redteam ? { mode: 'redteam', focus: 'Break it. {{task}}' } : {}),
          });
          scope.reviews.push(id);
          break;
        case 'plan': {
          const step: Json = { type: 'plan', id, worker: this.worker(item.worker, item.pick, at, writes) };
          if (item.templated && writes.length > 0) {
            const target = this.refer(writes, item.pick, [...at, 'task'], true);
            step.task = `Improve {{steps.${target}.diff}}`;
          }
          out.push(step);
          scope.plans.push(id);
          break;
        }
        case 'verify': {
          const step: Json = { type: 'verify', id, of: this.refer(writes, item.pick, [...at, 'of']) };
          // A copy: an array shared by two steps stays shared through structuredClone, and a property breaks
          // one place only.
          if (item.command === 'literal')
            step.command = [...(LITERAL_COMMANDS[item.pick % LITERAL_COMMANDS.length] ?? [])];
          else if (item.command === 'input') step.command = { input: 'tests' };
          out.push(step);
          scope.verifies.push(id);
          break;
        }
        case 'apply': {
          const step: Json = { type: 'apply', id, of: this.refer(writes, item.pick, [...at, 'of']) };
          if (item.when) step.when = this.condition(item.when, [...at, 'when'], scope);
          out.push(step);
          break;
        }
        case 'adjudicate': {
          const first = item.pick % writes.length;
          const second = (first + 1 + (item.other % (writes.length - 1))) % writes.length;
          out.push({
            type: 'adjudicate',
            id,
            candidates: [
              this.refer(writes, first, [...at, 'candidates', 0]),
              this.refer(writes, second, [...at, 'candidates', 1]),
            ],
          });
          break;
        }
        case 'parallel': {
          // Each branch sees the steps before the parallel and its own; the steps after it see them all.
          const before = copyScope(scope);
          const branches = item.branches.map((branch, b) => {
            const local = copyScope(before);
            const steps = this.steps(branch, [...at, 'branches', b], local);
            mergeScope(scope, local, before);
            return steps;
          });
          out.push({ type: 'parallel', id, branches });
          break;
        }
        case 'loop': {
          const body = this.steps(item.body, [...at, 'steps'], scope);
          let until: Json;
          if (item.until) until = this.condition(item.until, [...at, 'until'], scope);
          else {
            const critique = body.find((step) => step.type === 'review');
            until = critique
              ? {
                  verdict: {
                    step: this.referTo(String(critique.id), [...at, 'until', 'verdict', 'step']),
                    is: 'approve',
                  },
                }
              : { succeeded: this.referTo(String(body[0]?.id), [...at, 'until', 'succeeded']) };
          }
          const max = item.max === 'input' ? { input: 'rounds' } : item.max;
          out.push({ type: 'loop', id, max, until, steps: body });
          break;
        }
        case 'if': {
          // Each arm sees the steps before the if; the steps after it see both arms' (each is false unless run).
          const when = this.condition(item.when, [...at, 'when'], scope);
          const before = copyScope(scope);
          const thenScope = copyScope(before);
          const step: Json = {
            type: 'if',
            id,
            when,
            then: this.steps(item.then, [...at, 'then'], thenScope),
          };
          mergeScope(scope, thenScope, before);
          if (item.else) {
            const elseScope = copyScope(before);
            step.else = this.steps(item.else, [...at, 'else'], elseScope);
            mergeScope(scope, elseScope, before);
          }
          out.push(step);
          break;
        }
      }
    }
    return out;
  }

  /** A condition over the steps in `scope`; a form with nothing to name falls back to `succeeded`. */
  private condition(choice: ConditionChoice, at: Path, scope: Scope): Json {
    const simple = (form: SimpleCondition, index: number, path: Path): Json => {
      const pick = choice.pick + index;
      if (form === 'verdict' && scope.reviews.length > 0) {
        return {
          verdict: {
            step: this.refer(scope.reviews, pick, [...path, 'verdict', 'step']),
            is: choice.approve ? 'approve' : 'request_changes',
          },
        };
      }
      if (form === 'findingsAtLeast' && scope.reviews.length > 0) {
        return {
          findingsAtLeast: {
            step: this.refer(scope.reviews, pick, [...path, 'findingsAtLeast', 'step']),
            severity: choice.severity === 'input' ? { input: 'threshold' } : choice.severity,
          },
        };
      }
      if (form === 'passed' && scope.verifies.length > 0) {
        return { passed: this.refer(scope.verifies, pick, [...path, 'passed']) };
      }
      const ran = [...scope.writes, ...scope.reviews, ...scope.verifies, ...scope.plans];
      return { succeeded: this.refer(ran, pick, [...path, 'succeeded']) };
    };
    const [first = 'succeeded'] = choice.forms;
    if (choice.wrap === 'none') return simple(first, 0, at);
    if (choice.wrap === 'not') return { not: simple(first, 0, [...at, 'not']) };
    const wrap = choice.wrap;
    return { [wrap]: choice.forms.map((form, i) => simple(form, i, [...at, wrap, i])) };
  }

  private worker(choice: WorkerChoice, pick: number, at: Path, writes: readonly string[]): unknown {
    if (choice === 'input') return { input: 'writer' };
    if (choice === 'otherThan' && writes.length > 0) {
      return { otherThan: this.refer(writes, pick, [...at, 'worker', 'otherThan']) };
    }
    if (choice === 'sameAs' && writes.length > 0) {
      return { sameAs: this.refer(writes, pick, [...at, 'worker', 'sameAs']) };
    }
    return choice === 'gemini' ? 'gemini' : 'codex';
  }

  private refer(ids: readonly string[], pick: number, path: Path, template = false): string {
    const id = ids[pick % ids.length];
    assert.ok(id !== undefined, 'a reference needs an earlier step');
    this.references.push({ path, template });
    return id;
  }

  private referTo(id: string, path: Path): string {
    this.references.push({ path, template: false });
    return id;
  }
}

function copyScope(scope: Scope): Scope {
  return {
    writes: [...scope.writes],
    reviews: [...scope.reviews],
    verifies: [...scope.verifies],
    plans: [...scope.plans],
  };
}

/** Adds to `into` the steps `local` gained since `before`. */
function mergeScope(into: Scope, local: Scope, before: Scope): void {
  for (const kind of ['writes', 'reviews', 'verifies', 'plans'] as const) {
    into[kind].push(...local[kind].slice(before[kind].length));
  }
}

function allPaths(value: unknown, path: Path = []): Path[] {
  const children: Path[] = [];
  if (Array.isArray(value)) value.forEach((item, i) => children.push(...allPaths(item, [...path, i])));
  else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) children.push(...allPaths(item, [...path, key]));
  }
  return [path, ...children];
}

/** A copy of `root` with the value at `path` replaced. */
function setAt(root: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let parent = copy;
  for (const part of path.slice(0, -1)) parent = parent[part] as Record<string | number, unknown>;
  parent[path[path.length - 1] as string | number] = value;
  return copy;
}

/** mulberry32: a small seeded generator, so that a failing shuffle replays from fast-check's seed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffleKeys(value: unknown, random: () => number): unknown {
  if (Array.isArray(value)) return value.map((item) => shuffleKeys(item, random));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value);
  for (let i = entries.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    const swap = entries[i] as [string, unknown];
    entries[i] = entries[j] as [string, unknown];
    entries[j] = swap;
  }
  return Object.fromEntries(entries.map(([key, item]) => [key, shuffleKeys(item, random)]));
}

function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([key, item]) => [key, reverseKeys(item)]),
  );
}
