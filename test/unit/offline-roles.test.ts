// The offline model's role tags and its replies to a CLI's tool output: what makes a scripted run repeatable.
import assert from 'node:assert/strict';
import { stableToolOutput } from '../../src/offline/model-server';
import { roleScenario } from '../../src/offline/roles';
import { plannerPrompt, writerPrompt } from '../../src/orchestrator/prompts';

describe('offline model role tags', () => {
  it('percent-decodes values as scenario tags do, and keeps a lone % as it is', () => {
    const prompt = plannerPrompt(
      '[[role:planner scenario=reply text=1.%20Create%20a.txt%0A2.%20Done]] Plan.',
    );
    assert.deepEqual(roleScenario(prompt, 'codex'), {
      name: 'reply',
      args: { text: '1. Create a.txt\n2. Done' },
    });
    const odd = writerPrompt('[[role:writer scenario=write path=100%.txt]] Write.');
    assert.deepEqual(roleScenario(odd, 'gemini'), { name: 'write', args: { path: '100%.txt' } });
  });

  it('matches a tag by step name, so a revision round can be scripted apart from the first', () => {
    const task = '[[role:writer step=write scenario=http429]] [[scenario:write path=a.txt]] Add a.txt.';
    assert.equal(roleScenario(writerPrompt(task, 'write'), 'codex')?.name, 'http429');
    assert.equal(roleScenario(writerPrompt(task, 'write-retry1'), 'codex'), undefined);
  });
});

describe('offline model tool output in replies', () => {
  it('drops the lines that change from run to run and the directories of absolute paths', () => {
    const codex =
      'Chunk ID: 3c3328\nWall time: 0.0021 seconds\nProcess exited with code 0\nOriginal token count: 0\nOutput:\n';
    assert.equal(stableToolOutput(codex), 'Process exited with code 0\nOutput:\n');
    const gemini =
      'Successfully created and wrote to new file: /work/x/.tandem/isolation/copies/run-20261125T120000Z-abc123-write-1/p.txt.';
    assert.equal(stableToolOutput(gemini), 'Successfully created and wrote to new file: p.txt.');
    assert.equal(stableToolOutput(gemini.replace('abc123', 'def456')), stableToolOutput(gemini));
  });
});
