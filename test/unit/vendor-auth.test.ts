import assert from 'node:assert/strict';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkspaceJail } from '../../src/core/jail';
import type { AdapterConfig, InvocationContext } from '../../src/workers/cli-adapter';
import { codexSpec } from '../../src/workers/codex';
import { parseStepRequest, type WorkerKind } from '../../src/workers/contract';
import { geminiSpec } from '../../src/workers/gemini';

describe('isolated homes that keep a real login working', () => {
  let scratch: string;
  let userHome: string;
  let config: AdapterConfig;

  beforeEach(async () => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'tandem-auth-'));
    userHome = path.join(scratch, 'user');
    mkdirSync(path.join(scratch, 'ws'));
    config = {
      jail: await WorkspaceJail.open(path.join(scratch, 'ws')),
      stateDir: path.join(scratch, 'state'),
      userHome,
      sourceEnv: {},
    };
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  function context(kind: WorkerKind, extra: Partial<AdapterConfig> = {}): InvocationContext {
    const stepDir = path.join(scratch, `step-${kind}`);
    mkdirSync(stepDir, { recursive: true });
    const request = parseStepRequest({ kind, role: 'writer', cwd: '.', prompt: 'hi' }, kind);
    return { request, model: 'm', cwd: config.jail.root, stepDir, config: { ...config, ...extra } };
  }

  it('codex: links the user auth.json into the step CODEX_HOME and passes the API key names, not the rest of HOME', async () => {
    mkdirSync(path.join(userHome, '.codex'), { recursive: true });
    writeFileSync(path.join(userHome, '.codex', 'auth.json'), '{"tokens":{}}');
    writeFileSync(path.join(userHome, '.codex', 'config.toml'), 'model = "x"');
    const ctx = context('codex');
    const invocation = await codexSpec.buildInvocation(ctx);
    const codexHome = invocation.env.set?.CODEX_HOME ?? '';
    assert.ok(codexHome.startsWith(ctx.stepDir));
    assert.equal(lstatSync(path.join(codexHome, 'auth.json')).isSymbolicLink(), true);
    assert.equal(readlinkSync(path.join(codexHome, 'auth.json')), path.join(userHome, '.codex', 'auth.json'));
    assert.throws(() => lstatSync(path.join(codexHome, 'config.toml')), /ENOENT/);
    assert.deepEqual(invocation.env.extraNames, ['OPENAI_API_KEY', 'CODEX_API_KEY']);
    assert.ok(!invocation.args.some((arg) => arg.includes('model_provider')));
  });

  it('codex: follows CODEX_HOME of the user environment when it is set', async () => {
    const custom = path.join(scratch, 'custom-codex');
    mkdirSync(custom);
    writeFileSync(path.join(custom, 'auth.json'), '{}');
    const invocation = await codexSpec.buildInvocation(
      context('codex', { sourceEnv: { CODEX_HOME: custom } }),
    );
    assert.equal(
      readlinkSync(path.join(invocation.env.set?.CODEX_HOME ?? '', 'auth.json')),
      path.join(custom, 'auth.json'),
    );
  });

  it('gemini: links the user OAuth login into the step HOME and selects the matching auth type', async () => {
    mkdirSync(path.join(userHome, '.gemini'), { recursive: true });
    writeFileSync(path.join(userHome, '.gemini', 'oauth_creds.json'), '{}');
    writeFileSync(path.join(userHome, '.gemini', 'settings.json'), '{"model":{"name":"user-choice"}}');
    const invocation = await geminiSpec.buildInvocation(context('gemini'));
    const home = invocation.env.set?.HOME ?? '';
    assert.equal(lstatSync(path.join(home, '.gemini', 'oauth_creds.json')).isSymbolicLink(), true);
    const settings = JSON.parse(readFileSync(path.join(home, '.gemini', 'settings.json'), 'utf8')) as {
      security: { auth: { selectedType: string } };
      model: { name: string };
    };
    assert.equal(settings.security.auth.selectedType, 'oauth-personal');
    assert.equal(settings.model.name, 'm');
    assert.ok(invocation.env.extraNames?.includes('GEMINI_API_KEY'));
  });

  it('gemini: prefers an API key over a login, and Vertex AI when it is switched on', async () => {
    mkdirSync(path.join(userHome, '.gemini'), { recursive: true });
    writeFileSync(path.join(userHome, '.gemini', 'oauth_creds.json'), '{}');
    const withKey = await geminiSpec.buildInvocation(
      context('gemini', { sourceEnv: { GEMINI_API_KEY: 'k' } }),
    );
    const keyHome = withKey.env.set?.HOME ?? '';
    const keySettings = JSON.parse(readFileSync(path.join(keyHome, '.gemini', 'settings.json'), 'utf8')) as {
      security: { auth: { selectedType: string } };
    };
    assert.equal(keySettings.security.auth.selectedType, 'gemini-api-key');
    assert.throws(() => lstatSync(path.join(keyHome, '.gemini', 'oauth_creds.json')), /ENOENT/);
    rmSync(path.join(scratch, 'step-gemini'), { recursive: true });
    const vertex = await geminiSpec.buildInvocation(
      context('gemini', { sourceEnv: { GOOGLE_GENAI_USE_VERTEXAI: 'true' } }),
    );
    const vertexSettings = JSON.parse(
      readFileSync(path.join(vertex.env.set?.HOME ?? '', '.gemini', 'settings.json'), 'utf8'),
    ) as { security: { auth: { selectedType: string } } };
    assert.equal(vertexSettings.security.auth.selectedType, 'vertex-ai');
  });
});
