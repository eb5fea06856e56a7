// The playbook format: a declarative, deterministic step graph. A playbook names its typed inputs and a list
// of steps: plan, write, review, verify, adjudicate, apply, and the structure around them (parallel branches,
// bounded loops, conditions). Checked in two passes: the shape with zod, then the references (every step a
// step or template names exists, comes earlier, and has the kind the reference needs). Every error carries
// the exact path of the field at fault, e.g. `steps[2].branches[0][1].of`, even inside a field of several forms.
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { SEVERITIES } from '../model';
import { verifyCommandProblem } from './verify-command';

export const PLAYBOOK_FORMAT = 1;
export const MAX_STEPS = 64;
export const MAX_DEPTH = 4;
export const MAX_ROUNDS = 10;
export const MAX_BRANCHES = 4;
export const MAX_TEMPLATE_CHARS = 20_000;

const ID = /^[a-z][a-z0-9_]{0,31}$/;
const idSchema = z
  .string()
  .regex(ID, 'a step id is 1-32 lower-case letters, digits or _ and starts with a letter');
const inputNameSchema = z
  .string()
  .regex(ID, 'an input name is 1-32 lower-case letters, digits or _ and starts with a letter');

/** How a value looks, for a message that says what was given: `the string "3"`, `an object with the key "x"`. */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') {
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return `the ${typeof value} ${String(value)}`;
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0) return 'an empty object';
    const shown = keys.slice(0, 5).map((key) => JSON.stringify(key));
    return `an object with the key${keys.length > 1 ? 's' : ''} ${shown.join(', ')}${keys.length > 5 ? ', ...' : ''}`;
  }
  return typeof value;
}

/** `"a", "b" or "c"`. */
function listOf(items: readonly string[]): string {
  return items.length < 2
    ? (items[0] ?? '')
    : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

/** "expected FORMS, got the string "x"", or "missing; expected FORMS" for a field left out. */
function expecting(forms: string, given: unknown): string {
  return given === undefined
    ? `missing; expected ${forms}`
    : `expected ${forms}, got ${describeValue(given)}`;
}

/** The message of a field that takes one of `forms`, for zod's `error` option (it passes the bad value). */
function oneOf(forms: string): (issue: { input?: unknown }) => string {
  return (issue) => expecting(forms, issue.input);
}

/**
 * Which CLI works a step: a fixed one, the value of an input, the other CLI than an input's value, or, from who
 * actually worked an earlier step (fallbacks included), the other CLI than it or the same CLI as it.
 */
export const workerRefSchema = z.union(
  [
    z.enum(['codex', 'gemini']),
    z.object({ input: inputNameSchema }).strict(),
    z.object({ otherThan: idSchema }).strict(),
    z.object({ sameAs: idSchema }).strict(),
    z.object({ otherThanInput: inputNameSchema }).strict(),
  ],
  {
    error: oneOf(
      '"codex", "gemini", { "input": INPUT }, { "otherThan": STEP }, { "sameAs": STEP } or { "otherThanInput": INPUT }',
    ),
  },
);
export type WorkerRef = z.infer<typeof workerRefSchema>;

const templateSchema = z.string().min(1).max(MAX_TEMPLATE_CHARS);
const QUOTED_SEVERITIES = SEVERITIES.map((severity) => `"${severity}"`);
const severityRefSchema = z.union([z.enum(SEVERITIES), z.object({ input: inputNameSchema }).strict()], {
  error: oneOf(listOf([...QUOTED_SEVERITIES, '{ "input": INPUT }'])),
});

/** A command as argv: at most 64 parts, none empty. */
const argvSchema = z.array(z.string().min(1).max(4096)).max(64);

/**
 * The verify command's jail, as far as it can be judged before anything runs (see verify-command.ts), reported
 * at the part at fault: the rules judge each part on its own, in order, so that part is the shortest refused
 * prefix's last.
 */
function refuseUnsafeCommand(argv: readonly unknown[], context: z.RefinementCtx): void {
  if (!argv.every((part): part is string => typeof part === 'string')) return;
  if (verifyCommandProblem(argv) === undefined) return;
  for (let end = 1; end <= argv.length; end += 1) {
    const problem = verifyCommandProblem(argv.slice(0, end));
    if (problem !== undefined) {
      context.addIssue({ code: 'custom', message: problem, path: [end - 1] });
      return;
    }
  }
}

export type Condition =
  | { verdict: { step: string; is: 'approve' | 'request_changes' } }
  | { findingsAtLeast: { step: string; severity: z.infer<typeof severityRefSchema> } }
  | { succeeded: string }
  | { passed: string }
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition };

const CONDITION_FORMS = listOf([
  '{ "verdict": { "step": STEP, "is": "approve" | "request_changes" } }',
  '{ "findingsAtLeast": { "step": STEP, "severity": SEVERITY } }',
  '{ "succeeded": STEP }',
  '{ "passed": STEP }',
  '{ "all": [CONDITION, ...] }',
  '{ "any": [CONDITION, ...] }',
  '{ "not": CONDITION }',
]);

export const conditionSchema: z.ZodType<Condition> = z.lazy(() =>
  z.union(
    [
      z
        .object({
          verdict: z
            .object({
              step: idSchema,
              is: z.enum(['approve', 'request_changes'], { error: oneOf('"approve" or "request_changes"') }),
            })
            .strict(),
        })
        .strict(),
      z
        .object({ findingsAtLeast: z.object({ step: idSchema, severity: severityRefSchema }).strict() })
        .strict(),
      z.object({ succeeded: idSchema }).strict(),
      z.object({ passed: idSchema }).strict(),
      z.object({ all: z.array(conditionSchema).min(1).max(8) }).strict(),
      z.object({ any: z.array(conditionSchema).min(1).max(8) }).strict(),
      z.object({ not: conditionSchema }).strict(),
    ],
    { error: oneOf(`one condition: ${CONDITION_FORMS}`) },
  ),
);

/** What a failed step does: retried on the failure classes named, then (if allowed) given to the other CLI. */
export const resilienceSchema = z
  .object({
    /** Extra attempts for a rate-limited or timed-out step; default 2 for rate limits, 0 otherwise. */
    retries: z.number().int().min(0).max(5).optional(),
    /** First wait before a retry; doubled each time. Default 1000 ms. */
    backoffMs: z.number().int().min(0).max(60_000).optional(),
    /** Hand the step to the other CLI after the retries fail. Default false. */
    fallback: z.boolean().optional(),
  })
  .strict();
export type Resilience = z.infer<typeof resilienceSchema>;

const base = { id: idSchema, title: z.string().max(200).optional() };

export type Step =
  | {
      type: 'plan';
      id: string;
      title?: string | undefined;
      worker: WorkerRef;
      task?: string | undefined;
      onFailure?: Resilience | undefined;
    }
  | {
      type: 'write';
      id: string;
      title?: string | undefined;
      worker: WorkerRef;
      task?: string | undefined;
      continue?: string | undefined;
      onFailure?: Resilience | undefined;
    }
  | {
      type: 'review';
      id: string;
      title?: string | undefined;
      worker: WorkerRef;
      of: string;
      mode?: 'review' | 'redteam' | undefined;
      focus?: string | undefined;
      onFailure?: Resilience | undefined;
    }
  | {
      type: 'verify';
      id: string;
      title?: string | undefined;
      of: string;
      command?: string[] | { input: string } | undefined;
    }
  | { type: 'adjudicate'; id: string; title?: string | undefined; candidates: string[] }
  | { type: 'apply'; id: string; title?: string | undefined; of: string; when?: Condition | undefined }
  | { type: 'parallel'; id: string; title?: string | undefined; branches: Step[][] }
  | {
      type: 'loop';
      id: string;
      title?: string | undefined;
      max: number | { input: string };
      until: Condition;
      steps: Step[];
    }
  | {
      type: 'if';
      id: string;
      title?: string | undefined;
      when: Condition;
      then: Step[];
      else?: Step[] | undefined;
    };

const STEP_TYPES = ['plan', 'write', 'review', 'verify', 'adjudicate', 'apply', 'parallel', 'loop', 'if'];
const INPUT_TYPES = ['worker', 'integer', 'severity', 'string', 'command'];

/** The message of a discriminated union: the types there are, or that an object with a type is needed. */
function typeError(
  what: string,
  types: readonly string[],
): (issue: z.core.$ZodRawIssue) => string | undefined {
  const forms = listOf(types.map((type) => `"${type}"`));
  return (issue) => {
    if (issue.code === 'invalid_union') {
      const given = isRecord(issue.input) ? issue.input.type : undefined;
      return expecting(`${article(what)} type: ${forms}`, given);
    }
    if (issue.code === 'invalid_type')
      return expecting(`${article(what)} (an object with a "type")`, issue.input);
    return undefined;
  };
}

export const stepSchema: z.ZodType<Step> = z.lazy(() =>
  z.discriminatedUnion(
    'type',
    [
      z
        .object({
          type: z.literal('plan'),
          ...base,
          worker: workerRefSchema,
          task: templateSchema.optional(),
          onFailure: resilienceSchema.optional(),
        })
        .strict(),
      z
        .object({
          type: z.literal('write'),
          ...base,
          worker: workerRefSchema,
          task: templateSchema.optional(),
          continue: idSchema.optional(),
          onFailure: resilienceSchema.optional(),
        })
        .strict(),
      z
        .object({
          type: z.literal('review'),
          ...base,
          worker: workerRefSchema,
          of: idSchema,
          mode: z.enum(['review', 'redteam'], { error: oneOf('"review" or "redteam"') }).optional(),
          focus: templateSchema.optional(),
          onFailure: resilienceSchema.optional(),
        })
        .strict(),
      z
        .object({
          type: z.literal('verify'),
          ...base,
          of: idSchema,
          command: z
            .union(
              [
                argvSchema
                  .min(1, {
                    error:
                      'a command needs at least its program, e.g. ["npm", "test"]; leave command out to run the workspace\'s tests',
                  })
                  .superRefine(refuseUnsafeCommand),
                z.object({ input: inputNameSchema }).strict(),
              ],
              { error: oneOf('an argv list such as ["npm", "test"] or { "input": INPUT }') },
            )
            .optional(),
        })
        .strict(),
      z
        .object({
          type: z.literal('adjudicate'),
          ...base,
          candidates: z.array(idSchema).min(2).max(MAX_BRANCHES),
        })
        .strict(),
      z
        .object({ type: z.literal('apply'), ...base, of: idSchema, when: conditionSchema.optional() })
        .strict(),
      z
        .object({
          type: z.literal('parallel'),
          ...base,
          branches: z.array(z.array(stepSchema).min(1)).min(2).max(MAX_BRANCHES),
        })
        .strict(),
      z
        .object({
          type: z.literal('loop'),
          ...base,
          max: z.union(
            [z.number().int().min(1).max(MAX_ROUNDS), z.object({ input: inputNameSchema }).strict()],
            { error: oneOf(`a whole number from 1 to ${MAX_ROUNDS} or { "input": INPUT }`) },
          ),
          until: conditionSchema,
          steps: z.array(stepSchema).min(1),
        })
        .strict(),
      z
        .object({
          type: z.literal('if'),
          ...base,
          when: conditionSchema,
          then: z.array(stepSchema).min(1),
          else: z.array(stepSchema).min(1).optional(),
        })
        .strict(),
    ],
    { error: typeError('step', STEP_TYPES) },
  ),
);

export const inputSpecSchema = z.discriminatedUnion(
  'type',
  [
    z
      .object({
        type: z.literal('worker'),
        default: z.enum(['codex', 'gemini'], { error: oneOf('"codex" or "gemini"') }),
        description: z.string().max(500).optional(),
      })
      .strict(),
    z
      .object({
        type: z.literal('integer'),
        default: z.number().int(),
        min: z.number().int(),
        max: z.number().int(),
        description: z.string().max(500).optional(),
      })
      .strict(),
    z
      .object({
        type: z.literal('severity'),
        default: z.enum(SEVERITIES, { error: oneOf(listOf(QUOTED_SEVERITIES)) }),
        description: z.string().max(500).optional(),
      })
      .strict(),
    z
      .object({
        type: z.literal('string'),
        default: z.string().max(MAX_TEMPLATE_CHARS),
        description: z.string().max(500).optional(),
      })
      .strict(),
    z
      .object({
        type: z.literal('command'),
        /** argv; empty: the workspace's own test command (npm test when package.json has one). */
        default: argvSchema.superRefine(refuseUnsafeCommand),
        description: z.string().max(500).optional(),
      })
      .strict(),
  ],
  { error: typeError('input', INPUT_TYPES) },
);
export type InputSpec = z.infer<typeof inputSpecSchema>;

export const playbookSchema = z
  .object({
    format: z.literal(PLAYBOOK_FORMAT),
    name: z
      .string()
      .regex(/^[a-z][a-z0-9_-]{0,63}$/, 'a playbook name is lower-case letters, digits, - or _'),
    description: z.string().max(2000),
    inputs: z.record(inputNameSchema, inputSpecSchema).default({}),
    steps: z.array(stepSchema).min(1),
  })
  .strict();
export type Playbook = z.infer<typeof playbookSchema>;

/** A playbook that cannot run, with every problem found (each with its path). */
export class PlaybookError extends Error {
  constructor(
    readonly source: string,
    readonly problems: { path: string; message: string }[],
  ) {
    super(
      `${source}: ${problems
        .slice(0, 5)
        .map((problem) => `${problem.path || '(top)'}: ${problem.message}`)
        .join('; ')}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''}`,
    );
    this.name = 'PlaybookError';
  }
}

/** `steps[2].branches[0][1].of` from ['steps', 2, 'branches', 0, 1, 'of']. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** What a step makes available to later steps, templates and conditions. */
export const STEP_FIELDS: Record<'plan' | 'write' | 'review' | 'verify' | 'adjudicate', readonly string[]> = {
  plan: ['message'],
  write: ['message', 'diff', 'files', 'stats'],
  review: ['message', 'verdict', 'findings'],
  verify: ['passed', 'exitCode', 'output'],
  adjudicate: ['chosen', 'explanation'],
};

type Producer = keyof typeof STEP_FIELDS;
const TEMPLATE_VARIABLE = /\{\{\s*([^{}]*?)\s*\}\}/g;

interface Declared {
  type: Step['type'];
  /** Which parallel branch (by path) the step is in; steps of sibling branches cannot see each other. */
  branch: string;
}

/** The variables a template uses, as written: "task", "inputs.x", "steps.write.diff". */
export function templateVariables(template: string): string[] {
  return [...template.matchAll(TEMPLATE_VARIABLE)].map((match) => match[1] ?? '');
}

/**
 * The second pass: ids unique, every reference to an earlier step (or one of the same loop), of the right kind,
 * every template variable known, loops and nesting bounded. Returns the problems found, in document order.
 */
export function checkReferences(playbook: Playbook): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const declared = new Map<string, Declared>();
  let count = 0;
  const problem = (path: (string | number)[], message: string): void => {
    problems.push({ path: formatPath(path), message });
  };

  // First every id with its type and branch, so a loop body may refer to a step later in the same body.
  const declare = (
    steps: readonly Step[],
    path: (string | number)[],
    branch: string,
    depth: number,
  ): void => {
    steps.forEach((step, index) => {
      const at = [...path, index];
      count += 1;
      if (declared.has(step.id))
        problem([...at, 'id'], `the id "${step.id}" is used twice; ids must be unique`);
      else declared.set(step.id, { type: step.type, branch });
      if (depth > MAX_DEPTH) problem(at, `steps are nested more than ${MAX_DEPTH} deep`);
      if (step.type === 'parallel') {
        step.branches.forEach((branchSteps, b) =>
          declare(branchSteps, [...at, 'branches', b], `${branch}/${step.id}:${b}`, depth + 1),
        );
      } else if (step.type === 'loop') declare(step.steps, [...at, 'steps'], branch, depth + 1);
      else if (step.type === 'if') {
        declare(step.then, [...at, 'then'], branch, depth + 1);
        if (step.else) declare(step.else, [...at, 'else'], branch, depth + 1);
      }
    });
  };
  declare(playbook.steps, ['steps'], '', 1);
  if (count > MAX_STEPS) problem(['steps'], `${count} steps; a playbook holds at most ${MAX_STEPS}`);

  const inputs = playbook.inputs;
  for (const [name, spec] of Object.entries(inputs)) {
    if (
      spec.type === 'integer' &&
      (spec.default < spec.min || spec.default > spec.max || spec.min > spec.max)
    ) {
      problem(['inputs', name, 'default'], `the default ${spec.default} is outside ${spec.min}-${spec.max}`);
    }
  }
  const needInput = (path: (string | number)[], name: string, types: readonly InputSpec['type'][]): void => {
    const spec = Object.hasOwn(inputs, name) ? inputs[name] : undefined;
    if (!spec) problem(path, `no input "${name}" is declared under inputs`);
    else if (!types.includes(spec.type)) {
      problem(path, `the input "${name}" is ${article(spec.type)}; ${types.join(' or ')} is needed here`);
    }
  };

  // Then the references, walking in execution order with the set of steps that have run by then.
  const visible = new Set<string>();
  // `guarded`: the ids of enclosing loop bodies as seen from inside an `if` arm within those loops, where a step
  // that runs later in the body may already have run in an earlier round when the arm is taken.
  const walk = (
    steps: readonly Step[],
    path: (string | number)[],
    branch: string,
    loopIds: Set<string>,
    guarded: ReadonlySet<string>,
  ): void => {
    steps.forEach((step, index) => {
      const at = [...path, index];
      /** Checks a reference; true when it is sound. */
      const refer = (field: (string | number)[], id: string, kinds: readonly Step['type'][]): boolean => {
        const target = declared.get(id);
        if (!target) {
          problem([...at, ...field], `no step has the id "${id}"`);
          return false;
        }
        if (!visible.has(id) && !loopIds.has(id)) {
          problem(
            [...at, ...field],
            `"${id}" runs later or in another branch; refer only to steps that ran before`,
          );
          return false;
        }
        // A step of the same loop body that has not run yet in this pass is seen only from its own branch (or
        // branches nested in it): a sibling branch runs at the same time, so its result is never certain.
        const sameLine =
          target.branch === '' || target.branch === branch || branch.startsWith(`${target.branch}/`);
        if (!visible.has(id) && !sameLine) {
          problem([...at, ...field], `"${id}" is in another parallel branch`);
          return false;
        }
        if (!kinds.includes(target.type)) {
          problem(
            [...at, ...field],
            `"${id}" is a ${target.type} step; a ${kinds.join(' or ')} step is needed`,
          );
          return false;
        }
        return true;
      };
      const worker = (ref: WorkerRef, field: string): void => {
        if (typeof ref === 'string') return;
        if ('input' in ref) needInput([...at, field, 'input'], ref.input, ['worker']);
        else if ('otherThanInput' in ref)
          needInput([...at, field, 'otherThanInput'], ref.otherThanInput, ['worker']);
        else {
          const form = 'otherThan' in ref ? 'otherThan' : 'sameAs';
          const id = 'otherThan' in ref ? ref.otherThan : ref.sameAs;
          const where = [...at, field, form];
          if (id === step.id) {
            problem(
              where,
              form === 'otherThan'
                ? 'a step cannot be worked by the other CLI than itself; name the step it must differ from'
                : 'a step cannot be worked by the same CLI as itself; name the step whose CLI it takes',
            );
          } else if (
            refer([field, form], id, ['plan', 'write', 'review']) &&
            !visible.has(id) &&
            !guarded.has(id)
          ) {
            // Unlike a condition (false) or a review of it (skipped), a worker needs the step to have run.
            problem(
              where,
              `"${id}" runs later in the loop body, so in round 1 its CLI is not known; name a step that ran before, or put this step in an if that runs once "${id}" has run`,
            );
          }
        }
      };
      const template = (text: string | undefined, field: string): void => {
        if (text === undefined) return;
        for (const variable of templateVariables(text)) {
          const parts = variable.split('.');
          if (variable === 'task') continue;
          if (parts[0] === 'inputs' && parts.length === 2) {
            needInput([...at, field], parts[1] as string, [
              'worker',
              'integer',
              'severity',
              'string',
              'command',
            ]);
            continue;
          }
          if (parts[0] === 'steps' && parts.length === 3) {
            const id = parts[1] as string;
            const fieldName = parts[2] as string;
            refer([field], id, ['plan', 'write', 'review', 'verify', 'adjudicate']);
            const target = declared.get(id);
            if (target && target.type in STEP_FIELDS) {
              const fields = STEP_FIELDS[target.type as Producer];
              if (!fields.includes(fieldName)) {
                problem(
                  [...at, field],
                  `{{${variable}}}: ${article(target.type)} step offers ${fields.join(', ')}`,
                );
              }
            }
            continue;
          }
          problem(
            [...at, field],
            `{{${variable}}} is not a known variable; use {{task}}, {{inputs.NAME}} or {{steps.ID.FIELD}}`,
          );
        }
      };
      const condition = (cond: Condition, field: (string | number)[]): void => {
        if ('verdict' in cond) refer([...field, 'verdict', 'step'], cond.verdict.step, ['review']);
        else if ('findingsAtLeast' in cond) {
          refer([...field, 'findingsAtLeast', 'step'], cond.findingsAtLeast.step, ['review']);
          const severity = cond.findingsAtLeast.severity;
          if (typeof severity !== 'string') {
            needInput([...at, ...field, 'findingsAtLeast', 'severity', 'input'], severity.input, [
              'severity',
            ]);
          }
        } else if ('succeeded' in cond) {
          refer([...field, 'succeeded'], cond.succeeded, ['plan', 'write', 'review', 'verify']);
        } else if ('passed' in cond) refer([...field, 'passed'], cond.passed, ['verify']);
        else if ('all' in cond) cond.all.forEach((inner, i) => condition(inner, [...field, 'all', i]));
        else if ('any' in cond) cond.any.forEach((inner, i) => condition(inner, [...field, 'any', i]));
        else condition(cond.not, [...field, 'not']);
      };

      switch (step.type) {
        case 'plan':
          worker(step.worker, 'worker');
          template(step.task, 'task');
          break;
        case 'write':
          worker(step.worker, 'worker');
          template(step.task, 'task');
          if (step.continue !== undefined) refer(['continue'], step.continue, ['write']);
          break;
        case 'review':
          worker(step.worker, 'worker');
          refer(['of'], step.of, ['write']);
          template(step.focus, 'focus');
          break;
        case 'verify':
          refer(['of'], step.of, ['write']);
          if (step.command !== undefined && !Array.isArray(step.command)) {
            needInput([...at, 'command', 'input'], step.command.input, ['command']);
          }
          break;
        case 'adjudicate':
          step.candidates.forEach((id, i) => refer(['candidates', i], id, ['write']));
          if (new Set(step.candidates).size !== step.candidates.length) {
            problem([...at, 'candidates'], 'a candidate is named twice');
          }
          break;
        case 'apply':
          refer(['of'], step.of, ['write', 'adjudicate']);
          if (step.when) condition(step.when, ['when']);
          if (step.when && declared.get(step.of)?.type === 'adjudicate') {
            // The adjudication already decides which change is acceptable; a second rule would be ignored.
            problem([...at, 'when'], 'applying an adjudication takes no condition: the adjudication decides');
          }
          break;
        case 'parallel': {
          const before = new Set(visible);
          const seen: string[] = [];
          step.branches.forEach((branchSteps, b) => {
            // Each branch sees what ran before the parallel step, not its siblings.
            visible.clear();
            for (const id of before) visible.add(id);
            walk(branchSteps, [...at, 'branches', b], `${branch}/${step.id}:${b}`, loopIds, guarded);
            seen.push(...[...visible].filter((id) => !before.has(id)));
          });
          for (const id of seen) visible.add(id);
          for (const id of before) visible.add(id);
          break;
        }
        case 'loop': {
          if (typeof step.max !== 'number') {
            needInput([...at, 'max', 'input'], step.max.input, ['integer']);
            const spec = Object.hasOwn(inputs, step.max.input) ? inputs[step.max.input] : undefined;
            if (spec?.type === 'integer' && (spec.min < 1 || spec.max > MAX_ROUNDS)) {
              problem(
                [...at, 'max', 'input'],
                `the input "${step.max.input}" allows ${spec.min}-${spec.max} rounds; a loop runs 1-${MAX_ROUNDS}`,
              );
            }
          }
          const body = new Set(loopIds);
          collectIds(step.steps, body);
          walk(step.steps, [...at, 'steps'], branch, body, guarded);
          condition(step.until, ['until']);
          break;
        }
        case 'if': {
          condition(step.when, ['when']);
          // The two arms never both run: `else` sees what ran before the `if`, not `then`'s steps.
          const before = new Set(visible);
          walk(step.then, [...at, 'then'], branch, loopIds, loopIds);
          const afterThen = new Set(visible);
          if (step.else) {
            visible.clear();
            for (const id of before) visible.add(id);
            walk(step.else, [...at, 'else'], branch, loopIds, loopIds);
          }
          for (const id of afterThen) visible.add(id);
          break;
        }
      }
      visible.add(step.id);
    });
  };
  walk(playbook.steps, ['steps'], '', new Set(), new Set());
  return problems;
}

/** "an apply", "a write". */
function article(word: string): string {
  return `${/^[aeiou]/.test(word) ? 'an' : 'a'} ${word}`;
}

function collectIds(steps: readonly Step[], into: Set<string>): void {
  for (const step of steps) {
    into.add(step.id);
    if (step.type === 'parallel') for (const branch of step.branches) collectIds(branch, into);
    else if (step.type === 'loop') collectIds(step.steps, into);
    else if (step.type === 'if') {
      collectIds(step.then, into);
      if (step.else) collectIds(step.else, into);
    }
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The part of `root` at `path`, or undefined where the path leads nowhere. */
function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const part of path) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

/**
 * Of the forms of a union that all refused `value`, the one it was meant to take, or undefined when none stands
 * out. A form of another kind (an object where a string goes, a string not among the allowed values) is out; of
 * the rest, the one that knows the most of the value's keys (`verdict` for `{ "verdict": ... }`), then the one
 * whose fault lies deepest.
 */
function intendedForm(
  forms: readonly (readonly z.core.$ZodIssue[])[],
  value: unknown,
): readonly z.core.$ZodIssue[] | undefined {
  let best: { issues: readonly z.core.$ZodIssue[]; keys: number; depth: number } | undefined;
  let tied = false;
  for (const issues of forms) {
    const atRoot = issues.filter((issue) => issue.path.length === 0);
    if (atRoot.some((issue) => ['invalid_type', 'invalid_value', 'invalid_union'].includes(issue.code)))
      continue;
    const unknownKeys = new Set(
      atRoot.flatMap((issue) => (issue.code === 'unrecognized_keys' ? issue.keys : [])),
    );
    const keys = isRecord(value) ? Object.keys(value).filter((key) => !unknownKeys.has(key)).length : 1;
    const depth = Math.max(0, ...issues.map((issue) => issue.path.length));
    if (!best || keys > best.keys || (keys === best.keys && depth > best.depth)) {
      best = { issues, keys, depth };
      tied = false;
    } else if (keys === best.keys && depth === best.depth) tied = true;
  }
  return best && !tied && best.keys > 0 ? best.issues : undefined;
}

/**
 * Zod's issues as problems, each at its full path. A union refused as a whole is reported inside the form the
 * value was meant to take, at the path of the fault there (`steps[2].when.verdict.is`); when no form stands
 * out, at the union with its message, which lists the forms.
 */
function shapeProblems(
  issues: readonly z.core.$ZodIssue[],
  root: unknown,
  prefix: readonly PropertyKey[] = [],
): { path: string; message: string }[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union') {
      const form = intendedForm(issue.errors, valueAt(root, path));
      if (form) return shapeProblems(form, root, path);
    }
    // A record key that breaks its rule: the rule, not zod's "Invalid key in record".
    const message =
      issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
    return [{ path: formatPath(path), message }];
  });
}

/** zod's words for a field left out ("expected string, received undefined"), said plainly. */
function missingField(issue: z.core.$ZodRawIssue): string | undefined {
  return issue.code === 'invalid_type' && issue.input === undefined
    ? `missing; expected ${issue.expected}`
    : undefined;
}

/** Parses and checks a playbook; throws a PlaybookError listing every problem with its path. */
export function parsePlaybook(value: unknown, source: string): Playbook {
  const parsed = playbookSchema.safeParse(value, { error: missingField });
  if (!parsed.success) throw new PlaybookError(source, shapeProblems(parsed.error.issues, value));
  const problems = checkReferences(parsed.data);
  if (problems.length > 0) throw new PlaybookError(source, problems);
  return parsed.data;
}

/** Parses JSON text first, naming the line and column of a syntax error. */
export function parsePlaybookText(text: string, source: string): Playbook {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new PlaybookError(source, [{ path: '', message: `not valid JSON: ${(error as Error).message}` }]);
  }
  return parsePlaybook(value, source);
}

/** Keys sorted at every level: the same playbook always gives the same text, whatever its key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The playbook's version hash: the first 12 hex digits of the SHA-256 of its canonical JSON. */
export function playbookHash(playbook: Playbook): string {
  return createHash('sha256').update(canonicalJson(playbook)).digest('hex').slice(0, 12);
}

/** The inputs a run uses: the defaults, overridden by the given values, each checked against its spec. */
export function resolveInputs(
  playbook: Playbook,
  given: Record<string, unknown>,
  source: string,
): Record<string, unknown> {
  const problems: { path: string; message: string }[] = [];
  const resolved: Record<string, unknown> = {};
  for (const name of Object.keys(given)) {
    if (!Object.hasOwn(playbook.inputs, name)) {
      const known = Object.keys(playbook.inputs);
      problems.push({
        path: `inputs.${name}`,
        message: `${playbook.name} has no input "${name}"${known.length ? `; it takes ${known.join(', ')}` : '; it takes none'}`,
      });
    }
  }
  for (const [name, spec] of Object.entries(playbook.inputs)) {
    const value = Object.hasOwn(given, name) ? given[name] : spec.default;
    const path = `inputs.${name}`;
    switch (spec.type) {
      case 'worker':
        if (value !== 'codex' && value !== 'gemini')
          problems.push({ path, message: 'expected "codex" or "gemini"' });
        break;
      case 'integer':
        if (typeof value !== 'number' || !Number.isInteger(value) || value < spec.min || value > spec.max) {
          problems.push({ path, message: `expected a whole number from ${spec.min} to ${spec.max}` });
        }
        break;
      case 'severity':
        if (!SEVERITIES.includes(value as (typeof SEVERITIES)[number])) {
          problems.push({ path, message: `expected one of ${SEVERITIES.join(', ')}` });
        }
        break;
      case 'string':
        if (typeof value !== 'string' || value.length > MAX_TEMPLATE_CHARS) {
          problems.push({ path, message: `expected a string of at most ${MAX_TEMPLATE_CHARS} characters` });
        }
        break;
      case 'command':
        if (
          !Array.isArray(value) ||
          value.length > 64 ||
          value.some((part) => typeof part !== 'string' || part === '')
        ) {
          problems.push({ path, message: 'expected an argv list of non-empty strings (no shell)' });
        } else {
          // The same jail as a verify step's own command: refused here, before anything runs.
          const problem = verifyCommandProblem(value as string[]);
          if (problem !== undefined) problems.push({ path, message: problem });
        }
        break;
    }
    resolved[name] = value;
  }
  if (problems.length > 0) throw new PlaybookError(source, problems);
  return resolved;
}
