// The editor settings as the server gets them: what a user or a hand-edited settings.json sets, checked and
// turned into server options, with a warning for anything that cannot be used.
import assert from 'node:assert/strict';
import { readSettings, type SettingsSource } from '../../src/extension/settings';

function source(values: Record<string, unknown>): SettingsSource {
  return { get: <T>(key: string) => values[key] as T | undefined };
}

function read(values: Record<string, unknown>): {
  settings: ReturnType<typeof readSettings>;
  warnings: string[];
} {
  const warnings: string[] = [];
  const settings = readSettings(source(values), (line) => warnings.push(line));
  return { settings, warnings };
}

describe('editor settings', function () {
  it('gives the defaults when nothing is set, with no warning', function () {
    const { settings, warnings } = read({});
    assert.deepEqual(settings, {
      cliPaths: {},
      concurrency: 4,
      offlineModel: false,
      models: {},
      limits: {},
      extraEnvNames: [],
      mcpSessions: {},
      sandbox: 'auto',
    });
    assert.deepEqual(warnings, []);
  });

  it('reads the sandbox mode and bubblewrap path, and warns about a mode it does not know', function () {
    const given = read({ sandbox: 'required', bwrapPath: ' /opt/bin/bwrap ' });
    assert.equal(given.settings.sandbox, 'required');
    assert.equal(given.settings.bwrapPath, '/opt/bin/bwrap');
    const wrong = read({ sandbox: 'strict' });
    assert.equal(wrong.settings.sandbox, 'auto');
    assert.match(wrong.warnings.join('\n'), /tandem\.sandbox must be one of required, auto, off; using auto/);
  });

  it('turns seconds and KiB into the step limits, and keeps the models and env names', function () {
    const { settings, warnings } = read({
      codexModel: 'gpt-5.5',
      geminiModel: ' gemini-2.5-pro ',
      stepTimeoutSeconds: 120,
      idleTimeoutSeconds: 30,
      maxOutputKiB: 256,
      extraEnvNames: ['HTTPS_PROXY', 'NO_PROXY'],
      concurrency: 2,
    });
    assert.deepEqual(settings.models, { codex: 'gpt-5.5', gemini: 'gemini-2.5-pro' });
    assert.deepEqual(settings.limits, { timeoutMs: 120_000, idleTimeoutMs: 30_000, maxOutputBytes: 262_144 });
    assert.deepEqual(settings.extraEnvNames, ['HTTPS_PROXY', 'NO_PROXY']);
    assert.equal(settings.concurrency, 2);
    assert.deepEqual(warnings, []);
  });

  it('leaves out, with a warning naming the setting, values that cannot be used', function () {
    const { settings, warnings } = read({
      codexModel: '--dangerously-bypass',
      stepTimeoutSeconds: 0.5,
      idleTimeoutSeconds: 'soon',
      maxOutputKiB: 1_000_000,
      extraEnvNames: ['OK_NAME', 'BAD NAME', 3, '$(whoami)'],
      concurrency: 99,
    });
    assert.deepEqual(settings.models, {});
    assert.deepEqual(settings.limits, {});
    assert.deepEqual(settings.extraEnvNames, ['OK_NAME']);
    assert.equal(settings.concurrency, 16);
    for (const key of [
      'codexModel',
      'stepTimeoutSeconds',
      'idleTimeoutSeconds',
      'maxOutputKiB',
      'extraEnvNames',
      'concurrency',
    ]) {
      assert.ok(
        warnings.some((line) => line.startsWith(`tandem.${key}`)),
        `a warning names tandem.${key}: ${warnings.join(' | ')}`,
      );
    }
  });

  it('passes configured CLI paths trimmed and leaves empty ones to PATH', function () {
    const { settings } = read({ codexPath: ' /opt/codex ', geminiPath: '' });
    assert.deepEqual(settings.cliPaths, { codex: '/opt/codex' });
  });

  it('clamps concurrency to 1-16 and falls back to 4 for a fraction, warning each time', function () {
    assert.equal(read({ concurrency: 0 }).settings.concurrency, 1);
    const fraction = read({ concurrency: 2.5 });
    assert.equal(fraction.settings.concurrency, 4);
    assert.equal(fraction.warnings.length, 1);
  });

  it('turns the offline model on only for true', function () {
    assert.equal(read({ offlineModel: true }).settings.offlineModel, true);
    assert.equal(read({ offlineModel: 'true' }).settings.offlineModel, false);
  });

  it('turns the session settings into the HTTP server options and warns about a value out of range', function () {
    assert.deepEqual(read({ sessionIdleSeconds: 600, maxSessions: 8 }).settings.mcpSessions, {
      idleMs: 600_000,
      maxSessions: 8,
    });
    const bad = read({ sessionIdleSeconds: 0, maxSessions: 2.5 });
    assert.deepEqual(bad.settings.mcpSessions, {});
    assert.match(bad.warnings.join('\n'), /tandem\.sessionIdleSeconds 0 is not a whole number from 1/);
    assert.match(bad.warnings.join('\n'), /tandem\.maxSessions 2\.5 is not a whole number from 1 to 10000/);
  });

  it('refuses an env name list that is not a list', function () {
    const { settings, warnings } = read({ extraEnvNames: 'HTTPS_PROXY' });
    assert.deepEqual(settings.extraEnvNames, []);
    assert.match(warnings.join('\n'), /tandem\.extraEnvNames must be a list/);
  });
});
