// Issue 15: every gemini step is built to leave the workspace untrusted, with Tandem's own policy file.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildChildEnv } from '../../src/core/env';
import { WorkspaceJail } from '../../src/core/jail';
import type { InvocationContext } from '../../src/workers/cli-adapter';
import { parseStepRequest, type Role } from '../../src/workers/contract';
import { geminiPolicy, geminiSpec } from '../../src/workers/gemini';

describe('gemini steps leave the workspace untrusted', () => {
  let scratch: string;

  beforeEach(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'tandem-gemini-trust-'));
    mkdirSync(path.join(scratch, 'ws'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  async function build(role: Role, extraEnvNames: string[] = []) {
    const stepDir = path.join(scratch, `step-${role}`);
    mkdirSync(stepDir);
    const context: InvocationContext = {
      request: parseStepRequest({ kind: 'gemini', role, cwd: '.', prompt: 'hi' }, 'gemini'),
      model: 'gemini-2.5-flash',
      cwd: path.join(scratch, 'ws'),
      stepDir,
      config: {
        jail: await WorkspaceJail.open(path.join(scratch, 'ws')),
        stateDir: scratch,
        sourceEnv: {},
        extraEnvNames,
      },
    };
    return geminiSpec.buildInvocation(context);
  }

  for (const [role, policy] of [
    ['writer', 'edit'],
    ['reviewer', 'read-only'],
    ['planner', 'read-only'],
    ['redteam', 'read-only'],
  ] as const) {
    it(`a ${role} gets GEMINI_CLI_TRUST_WORKSPACE=false, no --skip-trust and the ${policy} policy in its own home`, async () => {
      const invocation = await build(role);
      assert.equal(invocation.env.set?.GEMINI_CLI_TRUST_WORKSPACE, 'false');
      assert.ok(!invocation.args.includes('--skip-trust'));
      const policyFile = path.join(invocation.env.set?.HOME ?? '', '.gemini', 'policies', 'tandem.toml');
      assert.equal(readFileSync(policyFile, 'utf8'), geminiPolicy(policy));
      assert.equal(statSync(policyFile).mode & 0o777, 0o600);
      const settings = JSON.parse(
        readFileSync(path.join(invocation.env.set?.HOME ?? '', '.gemini', 'settings.json'), 'utf8'),
      ) as { experimental: { enableAgents: boolean }; hooksConfig: { enabled: boolean } };
      assert.equal(settings.experimental.enableAgents, false);
      assert.equal(settings.hooksConfig.enabled, false);
    });
  }

  it('keeps the workspace untrusted even when the user passes GEMINI_CLI_TRUST_WORKSPACE through', async () => {
    const invocation = await build('writer', ['GEMINI_CLI_TRUST_WORKSPACE']);
    const env = buildChildEnv(invocation.env, { PATH: '/usr/bin', GEMINI_CLI_TRUST_WORKSPACE: 'true' });
    assert.equal(env.GEMINI_CLI_TRUST_WORKSPACE, 'false');
  });
});
