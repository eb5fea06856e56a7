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
  resolveInputs,
  templateVariables,
  type Playbook,
} from '../../src/orchestrator/playbook/schema';

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

    it('rejects an unknown step type, listing the types there are', function () {
      assertOnlyProblem(
        playbook([write('w'), { type: 'deploy', id: 'd', of: 'w' }]),
        'steps[1].type',
        /'plan'.*'write'.*'review'.*'verify'.*'adjudicate'.*'apply'.*'parallel'.*'loop'.*'if'/,
      );
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

    it('rejects an input name that breaks the name rule, at the name', function () {
      assertHasProblem(
        playbook([write('w')], { inputs: { Who: { type: 'worker', default: 'codex' } } }),
        'inputs.Who',
        /.+/,
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
      assertHasProblem(
        playbook([write('w'), { type: 'verify', id: 'v', of: 'w', command: [] }]),
        'steps[1].command',
        /.+/,
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
  });

  describe('properties', function () {
    it('never throws anything but a PlaybookError with located problems, whatever the value', function () {
      fc.assert(fc.property(fc.oneof(fc.jsonValue(), fc.anything()), assertParsesOrLocatesProblems), {
        numRuns: 300,
      });
    });

    it('never throws anything but a PlaybookError when any part of a valid playbook is replaced by junk', function () {
      fc.assert(
        fc.property(generatedPlaybook(), fc.nat(), fc.jsonValue(), (generated, pick, junk) => {
          const paths = allPaths(generated.playbook);
          const path = paths[pick % paths.length] ?? [];
          assertParsesOrLocatesProblems(setAt(generated.playbook, path, junk));
        }),
        { numRuns: 300 },
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
// that refer only to writes already run (or, in a loop body, to writes of the same body), recording where each
// reference is so that a property can break exactly one.

type WorkerChoice = 'codex' | 'gemini' | 'input' | 'otherThan' | 'sameAs';
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
interface ApplyOp {
  kind: 'apply';
  pick: number;
  guarded: boolean;
}
interface AdjudicateOp {
  kind: 'adjudicate';
  pick: number;
  other: number;
}
interface ParallelOp {
  kind: 'parallel';
  branches: (WriteOp | ReviewOp)[][];
}
interface LoopOp {
  kind: 'loop';
  max: number;
  body: (WriteOp | ReviewOp)[];
}
type Op = WriteOp | ReviewOp | ApplyOp | AdjudicateOp | ParallelOp | LoopOp;

interface Reference {
  path: Path;
  /** The reference is a {{steps.ID.diff}} in a template rather than a whole field. */
  template: boolean;
}
interface Generated {
  playbook: Json;
  references: Reference[];
}

const workerChoice = fc.constantFrom<WorkerChoice>('codex', 'gemini', 'input', 'otherThan', 'sameAs');
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
const innerOp = fc.oneof(writeOp, reviewOp);
const op: fc.Arbitrary<Op> = fc.oneof(
  writeOp,
  reviewOp,
  fc.record({ kind: fc.constant('apply' as const), pick: fc.nat(), guarded: fc.boolean() }),
  fc.record({ kind: fc.constant('adjudicate' as const), pick: fc.nat(), other: fc.nat() }),
  fc.record({
    kind: fc.constant('parallel' as const),
    branches: fc.array(fc.array(innerOp, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 3 }),
  }),
  fc.record({
    kind: fc.constant('loop' as const),
    max: fc.integer({ min: 1, max: MAX_ROUNDS }),
    body: fc.array(innerOp, { minLength: 1, maxLength: 4 }),
  }),
);

/** Valid playbooks of at most 6 top-level operations (60 steps); `withReview` makes sure one has a reference. */
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
    const steps = this.steps(ops, ['steps'], []);
    return {
      playbook: {
        format: 1,
        name: 'generated',
        description: 'a generated playbook',
        inputs: { writer: { type: 'worker', default: 'gemini' } },
        steps,
      },
      references: this.references,
    };
  }

  /** The steps of `ops` at `path`; `writes` holds the writes they may refer to and grows with theirs. */
  private steps(ops: readonly Op[], path: Path, writes: string[]): Json[] {
    const out: Json[] = [];
    for (const item of ops) {
      // An adjudication needs two writes to choose from; without them the operation is left out.
      if (item.kind === 'adjudicate' && writes.length < 2) continue;
      const at = [...path, out.length];
      const id = `s${this.next++}`;
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
          break;
        case 'apply': {
          const step: Json = { type: 'apply', id, of: this.refer(writes, item.pick, [...at, 'of']) };
          if (item.guarded)
            step.when = { succeeded: this.refer(writes, item.pick, [...at, 'when', 'succeeded']) };
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
          // Each branch sees the writes before the parallel and its own; the steps after it see them all.
          const before = [...writes];
          const branches = item.branches.map((branch, b) => {
            const local = [...before];
            const steps = this.steps(branch, [...at, 'branches', b], local);
            writes.push(...local.slice(before.length));
            return steps;
          });
          out.push({ type: 'parallel', id, branches });
          break;
        }
        case 'loop': {
          const body = this.steps(item.body, [...at, 'steps'], writes);
          const critique = body.find((step) => step.type === 'review');
          const until = critique
            ? {
                verdict: {
                  step: this.referTo(String(critique.id), [...at, 'until', 'verdict', 'step']),
                  is: 'approve',
                },
              }
            : { succeeded: this.referTo(String(body[0]?.id), [...at, 'until', 'succeeded']) };
          out.push({ type: 'loop', id, max: item.max, until, steps: body });
          break;
        }
      }
    }
    return out;
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

  private refer(writes: readonly string[], pick: number, path: Path, template = false): string {
    const id = writes[pick % writes.length];
    assert.ok(id !== undefined, 'a reference needs an earlier write');
    this.references.push({ path, template });
    return id;
  }

  private referTo(id: string, path: Path): string {
    this.references.push({ path, template: false });
    return id;
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
