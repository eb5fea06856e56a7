// The one contract every worker adapter must meet, run against the fake adapter (unit tests) and both
// real adapters driving the real CLIs against the offline model server (integration tests).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { JailError } from '../../src/core/jail';
import { DEFAULT_WRITE_CONTENT } from '../../src/offline/model-server';
import {
  StepRequestError,
  stepResultSchema,
  type StepRequestInput,
  type StepResult,
  type WorkerAdapter,
  type WorkerEvent,
} from '../../src/workers/contract';
import { isProcessAlive } from '../support/processes';

export interface ContractSubject {
  adapter: WorkerAdapter;
  /** The workspace root the adapter's jail is bound to. */
  root: string;
  /** Prompts as the model received them, oldest first. */
  promptsSeen(): string[];
  /** Idle timeout for the hang case: long enough for the CLI to start and print its first event. */
  hangIdleTimeoutMs: number;
  /**
   * The CLI may exit 0 before its stdout is flushed when the reader falls behind (gemini on a loaded machine:
   * the 5 MB stream ends mid-event and the result event is lost). The adapter must then say so, not succeed.
   */
  floodMayLoseTail?: boolean;
}

export const HOSTILE_PROMPT =
  '--help [[scenario:echo]] $(touch pwned) `touch pwned` ; rm -rf x && echo "dq" \'sq\' | cat\nline2 \\ $HOME %s {}\n--model foo';

export function describeWorkerContract(
  name: string,
  setup: () => Promise<ContractSubject>,
  teardown: () => Promise<void>,
): void {
  describe(`worker contract: ${name}`, function () {
    let subject: ContractSubject;
    let workspace: string;
    let counter = 0;

    before(async () => {
      subject = await setup();
    });
    after(teardown);

    beforeEach(() => {
      counter += 1;
      workspace = `case-${counter}`;
      mkdirSync(path.join(subject.root, workspace), { recursive: true });
    });

    function request(prompt: string, extra: Partial<StepRequestInput> = {}): StepRequestInput {
      return { kind: subject.adapter.kind, role: 'writer', cwd: workspace, prompt, ...extra };
    }

    function checkShape(result: StepResult): void {
      assert.deepEqual(stepResultSchema.parse(result), result);
      assert.equal(result.kind, subject.adapter.kind);
    }

    it('answers a plain prompt: succeeded, with the final message and token usage', async () => {
      const events: WorkerEvent[] = [];
      const result = await subject.adapter.runStep(
        request('[[scenario:reply text=contract-reply]] Say hello.'),
        {
          onEvent: (event) => events.push(event),
        },
      );
      checkShape(result);
      assert.equal(result.status, 'succeeded', result.errorMessage);
      assert.match(result.finalMessage, /contract-reply/);
      assert.ok(result.usage && result.usage.totalTokens > 0);
      assert.ok(result.eventCount > 0);
      assert.equal(result.malformedEventCount, 0);
      assert.ok(events.some((event) => event.type === 'started'));
      assert.deepEqual(result.filesChanged, []);
    });

    it('lets a writer write a file in its working directory with the CLI own tool', async () => {
      const result = await subject.adapter.runStep(
        request('[[scenario:write path=notes.txt]] Write the notes.'),
      );
      checkShape(result);
      assert.equal(result.status, 'succeeded', result.errorMessage);
      const written = path.join(subject.root, workspace, 'notes.txt');
      assert.equal(readFileSync(written, 'utf8'), DEFAULT_WRITE_CONTENT);
      assert.deepEqual(result.filesChanged, [{ path: 'notes.txt', change: 'added' }]);
    });

    for (const role of ['reviewer', 'redteam', 'planner'] as const) {
      it(`refuses a ${role} that tries to write: no file appears and nothing is reported changed`, async () => {
        const result = await subject.adapter.runStep(
          request('[[scenario:write path=intrusion.txt]] Write it.', { role }),
        );
        checkShape(result);
        assert.equal(existsSync(path.join(subject.root, workspace, 'intrusion.txt')), false);
        assert.deepEqual(result.filesChanged, []);
      });
    }

    it('classifies an HTTP 429 from the model as rate_limited', async () => {
      const result = await subject.adapter.runStep(request('[[scenario:http429]] Go.'));
      checkShape(result);
      assert.equal(result.status, 'rate_limited', result.errorMessage);
      assert.ok(result.errorMessage && result.errorMessage.length > 0);
    });

    it('classifies an HTTP 500 from the model as failed', async () => {
      const result = await subject.adapter.runStep(request('[[scenario:http500]] Go.'));
      checkShape(result);
      assert.equal(result.status, 'failed', result.errorMessage);
    });

    it('stops a mid-stream hang on the idle timeout and leaves no process behind', async function () {
      this.timeout(subject.hangIdleTimeoutMs + 30_000);
      let pid: number | undefined;
      const result = await subject.adapter.runStep(
        request('[[scenario:hang]] Go.', {
          limits: { idleTimeoutMs: subject.hangIdleTimeoutMs, killGraceMs: 500 },
        }),
        {
          onEvent: (event) => {
            if (event.type === 'started') pid = event.pid;
          },
        },
      );
      checkShape(result);
      assert.equal(result.status, 'timed_out', result.errorMessage);
      assert.equal(result.timedOut, true);
      if (pid !== undefined) assert.equal(isProcessAlive(pid), false);
    });

    it('cancels through the abort signal', async function () {
      this.timeout(60_000);
      const controller = new AbortController();
      const result = await subject.adapter.runStep(request('[[scenario:hang]] Go.'), {
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === 'started') setTimeout(() => controller.abort(), 300);
        },
      });
      checkShape(result);
      assert.equal(result.status, 'cancelled');
    });

    it('bounds a 5 MB reply by the output cap', async function () {
      this.timeout(60_000);
      const cap = 64 * 1024;
      const result = await subject.adapter.runStep(
        request('[[scenario:flood bytes=5242880]] Go.', { limits: { maxOutputBytes: cap } }),
      );
      checkShape(result);
      const lostTail =
        subject.floodMayLoseTail === true &&
        result.status === 'cli_error' &&
        /without a final result event/.test(result.errorMessage ?? '');
      if (!lostTail) assert.equal(result.status, 'succeeded', result.errorMessage);
      assert.ok(
        result.finalMessage.length <= cap + 100,
        `final message is ${result.finalMessage.length} chars`,
      );
    });

    it('delivers a prompt full of shell metacharacters and a leading --help verbatim to the model', async () => {
      const result = await subject.adapter.runStep(request(HOSTILE_PROMPT));
      checkShape(result);
      assert.equal(result.status, 'succeeded', result.errorMessage);
      assert.ok(subject.promptsSeen().includes(HOSTILE_PROMPT), 'the model saw the prompt byte for byte');
      assert.equal(existsSync(path.join(subject.root, workspace, 'pwned')), false);
    });

    it('refuses a working directory outside the workspace before starting anything', async () => {
      const before = subject.promptsSeen().length;
      await assert.rejects(
        subject.adapter.runStep(request('[[scenario:reply]] Hi.', { cwd: '../..' })),
        JailError,
      );
      assert.equal(subject.promptsSeen().length, before);
    });

    it('refuses an invalid model name or an empty prompt with a message that says what to fix', async () => {
      await assert.rejects(
        subject.adapter.runStep(request('Hi.', { model: '--dangerous' })),
        (error: unknown) => {
          return error instanceof StepRequestError && /model/.test(error.message);
        },
      );
      await assert.rejects(subject.adapter.runStep(request('')), StepRequestError);
    });

    it('reports a file it did not create as unchanged, and one it modified as modified', async () => {
      writeFileSync(path.join(subject.root, workspace, 'existing.txt'), 'before');
      writeFileSync(path.join(subject.root, workspace, 'notes.txt'), 'old content');
      const result = await subject.adapter.runStep(
        request('[[scenario:write path=notes.txt]] Rewrite the notes.'),
      );
      assert.equal(result.status, 'succeeded', result.errorMessage);
      assert.equal(readFileSync(path.join(subject.root, workspace, 'existing.txt'), 'utf8'), 'before');
      const changed = result.filesChanged.map((change) => `${change.change} ${change.path}`);
      assert.ok(!changed.some((entry) => entry.includes('existing.txt')));
      assert.deepEqual(changed, ['modified notes.txt']);
    });
  });
}
