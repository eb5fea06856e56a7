// docs/summary-schema.md against the schemas summary.json is written and read with: every field the schemas
// have is documented, every documented field exists, and each documented list of values is the schema's own.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  FILE_CHANGES,
  RUN_KINDS,
  RUN_STATUSES,
  STRATEGIES,
  VERDICTS,
  changeRecordSchema,
  findingSchema,
  runRecordSchema,
  stepRecordSchema,
} from '../../src/orchestrator/model';
import { runSummarySchema } from '../../src/orchestrator/summary';
import { ROLES, STEP_STATUSES } from '../../src/workers/contract';

const doc = readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'summary-schema.md'), 'utf8');

/** The text between `start` and the next `end` (both exclusive). */
function between(start: string, end: string): string {
  const from = doc.indexOf(start);
  assert.ok(from >= 0, `the doc has ${start}`);
  const to = doc.indexOf(end, from + start.length);
  assert.ok(to >= 0, `the doc has ${end} after ${start}`);
  return doc.slice(from + start.length, to);
}

const ticked = (text: string): string[] =>
  [...text.matchAll(/`([^`]+)`/g)].map((match) => match[1] as string);

/** A field table's rows: each row's field names (first cell) with its type cell. */
function tableRows(section: string): { fields: string[]; type: string }[] {
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => {
      const cells = line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim());
      return { fields: ticked(cells[0] ?? ''), type: cells[1] ?? '' };
    });
}

function documented(section: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const row of tableRows(section)) {
    for (const field of row.fields) {
      assert.ok(!fields.has(field), `${field} is documented twice`);
      fields.set(field, row.type);
    }
  }
  return fields;
}

const sorted = (values: Iterable<string>): string[] => [...values].sort();

describe('docs/summary-schema.md', function () {
  const runFields = documented(between('**RunRecord**', '**StepRecord**'));
  const stepFields = documented(between('**StepRecord**', '**ChangeRecord**'));

  it('lists the top-level fields of summary.json as the schema has them', function () {
    const block = between('## `summary.json`, schema version 2', '**RunRecord**');
    const keys = [...block.matchAll(/^\s+(\w+):/gm)].map((match) => match[1] as string);
    assert.deepEqual(sorted(keys), sorted(Object.keys(runSummarySchema.shape)));
    assert.match(block, /schemaVersion: 2,/);
    assert.equal(runSummarySchema.shape.schemaVersion.value, 2);
  });

  it('documents every RunRecord field, and no other', function () {
    assert.deepEqual(sorted(runFields.keys()), sorted(Object.keys(runRecordSchema.shape)));
  });

  it('documents every StepRecord field, and no other', function () {
    assert.deepEqual(sorted(stepFields.keys()), sorted(Object.keys(stepRecordSchema.shape)));
  });

  it('gives the values of each enumerated field exactly as the schema accepts them', function () {
    const cases: [string, string | undefined, readonly string[]][] = [
      ['run kind', runFields.get('kind'), RUN_KINDS],
      ['run strategy', runFields.get('strategy'), STRATEGIES],
      ['run status', runFields.get('status'), RUN_STATUSES],
      ['step role', stepFields.get('role'), ROLES],
      ['step status', stepFields.get('status'), ['running', ...STEP_STATUSES]],
      ['step verdict', stepFields.get('verdict'), VERDICTS],
    ];
    for (const [what, type, values] of cases) {
      assert.ok(type !== undefined, `${what} is documented`);
      assert.deepEqual(sorted(ticked(type)), sorted(values), what);
    }
    // Each accepts what the doc says, and refuses a value it does not list.
    assert.equal(stepRecordSchema.shape.status.safeParse('running').success, true);
    assert.equal(stepRecordSchema.shape.status.safeParse('paused').success, false);
    assert.equal(runRecordSchema.shape.strategy.safeParse('pair_programming').success, false);
  });

  it('names the file change kinds, and the schema refuses any other', function () {
    const kinds = (stepFields.get('filesChanged') ?? '').split('`change`:')[1] ?? '';
    assert.deepEqual(sorted(ticked(kinds)), sorted(FILE_CHANGES));
    const file = { path: 'a.txt', change: 'renamed' };
    assert.equal(stepRecordSchema.shape.filesChanged.safeParse([file]).success, false);
    assert.equal(stepRecordSchema.shape.filesChanged.safeParse([{ ...file, change: 'added' }]).success, true);
  });

  it('lists the finding and ChangeRecord fields as the schemas have them', function () {
    const findings = stepFields.get('findings') ?? '';
    const shape = /\{ ([^}]+) \}/.exec(findings)?.[1] ?? '';
    assert.deepEqual(
      sorted(shape.split(',').map((field) => field.trim().replace(/\?$/, ''))),
      sorted(Object.keys(findingSchema.shape)),
    );
    const change = between('**ChangeRecord**', '**decisions**');
    const fileKeys = Object.keys(changeRecordSchema.shape.files.element.shape);
    // Its own fields; `filesChanged` is named for the change kinds it shares.
    const names = ticked(change).filter((name) => /^\w+$/.test(name) && name !== 'filesChanged');
    assert.deepEqual(
      sorted(new Set(names)),
      sorted(new Set([...Object.keys(changeRecordSchema.shape), ...fileKeys])),
    );
  });
});
