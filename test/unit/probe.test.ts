import assert from 'node:assert/strict';
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { probeResultSchema, type ProbeResult, type WorkerKind } from '../../src/workers/contract';
import {
  clearProbeCache,
  CODEX_TESTED_RANGE,
  compareVersions,
  GEMINI_TESTED_RANGE,
  parseVersion,
  probeAll,
  probeCli,
  satisfiesRange,
  type Version,
} from '../../src/workers/probe';
import { fixture } from '../support/processes';

const REPO = path.resolve(__dirname, '..', '..', '..');
const REAL_BIN = path.join(REPO, 'node_modules', '.bin');
const NODE_DIR = path.dirname(process.execPath);
const CODEX_HINT = 'npm install -g @openai/codex';
const GEMINI_HINT = 'npm install -g @google/gemini-cli';

function version(text: string): Version {
  const parsed = parseVersion(text);
  assert.ok(parsed, `${text} should parse`);
  return parsed;
}

describe('CLI probe', function () {
  // gemini --version takes seconds, more on a loaded machine.
  this.timeout(60_000);

  let work: string;
  let emptyHome: string;
  let counter = 0;

  /** A directory of its own for one test. */
  function scratch(name: string): string {
    const dir = path.join(work, `${name}-${++counter}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Installs fake-cli-version.cjs as `<dir>/<name>`, printing `versionText` (absent: exit 3). */
  function fakeCli(
    name: string,
    versionText?: string,
  ): { binary: string; calls: () => { home: string; envNames: string[]; argv: string[] }[] } {
    const dir = scratch(`bin-${name}`);
    const binary = path.join(dir, name);
    copyFileSync(fixture('fake-cli-version.cjs'), binary);
    chmodSync(binary, 0o755);
    if (versionText !== undefined) writeFileSync(path.join(dir, 'version.txt'), versionText);
    const calls = (): { home: string; envNames: string[]; argv: string[] }[] => {
      try {
        return readFileSync(path.join(dir, 'calls.log'), 'utf8')
          .split('\n')
          .filter((line) => line.length > 0)
          .map((line) => JSON.parse(line) as { home: string; envNames: string[]; argv: string[] });
      } catch {
        return [];
      }
    };
    return { binary, calls };
  }

  /** An env with node on PATH (the fixtures' shebang needs it) plus the given names. */
  function fakeEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { PATH: NODE_DIR, ...extra };
  }

  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'tandem-probe-test-'));
    emptyHome = scratch('empty-home');
    for (const name of ['fake-cli-garbage.cjs', 'fake-cli-hang.cjs', 'fake-cli-version.cjs']) {
      chmodSync(fixture(name), 0o755);
    }
  });
  beforeEach(() => clearProbeCache());
  after(() => rmSync(work, { recursive: true, force: true }));

  describe('the real CLIs (devDependencies)', () => {
    it('finds codex 0.169.0 in the tested range with every feature', async () => {
      const result = await probeCli('codex', {
        binaryPath: path.join(REAL_BIN, 'codex'),
        env: fakeEnv(),
        homeDir: emptyHome,
      });
      probeResultSchema.parse(result);
      assert.equal(result.installed, true);
      assert.equal(result.path, path.join(REAL_BIN, 'codex'));
      assert.equal(result.version, '0.169.0');
      assert.equal(result.testedRange, CODEX_TESTED_RANGE);
      assert.equal(result.versionInTestedRange, true);
      assert.deepEqual(result.features, { jsonEvents: true, sandboxModes: true, resume: true });
      assert.equal(result.error, null);
    });

    it('finds gemini 0.61.0 in the tested range with every feature', async () => {
      const result = await probeCli('gemini', {
        binaryPath: path.join(REAL_BIN, 'gemini'),
        env: fakeEnv(),
        homeDir: emptyHome,
      });
      assert.equal(result.installed, true);
      assert.equal(result.version, '0.61.0');
      assert.equal(result.testedRange, GEMINI_TESTED_RANGE);
      assert.equal(result.versionInTestedRange, true);
      assert.deepEqual(result.features, { jsonEvents: true, sandboxModes: true, resume: true });
      assert.equal(result.error, null);
    });

    it('looks both up on PATH in parallel and leaves the HOME it was given untouched', async () => {
      const home = scratch('home-untouched');
      const [codex, gemini] = await probeAll({
        env: { PATH: [REAL_BIN, NODE_DIR].join(path.delimiter), HOME: home },
        homeDir: home,
      });
      assert.equal(codex.kind, 'codex');
      assert.equal(codex.path, path.join(REAL_BIN, 'codex'));
      assert.equal(codex.version, '0.169.0');
      assert.equal(gemini.kind, 'gemini');
      assert.equal(gemini.path, path.join(REAL_BIN, 'gemini'));
      assert.equal(gemini.version, '0.61.0');
      // Both CLIs write into their home even for --version; the probe gives them a scratch one.
      assert.deepEqual(readdirSync(home), []);
    });
  });

  describe('a missing CLI', () => {
    for (const [kind, hint] of [
      ['codex', CODEX_HINT],
      ['gemini', GEMINI_HINT],
    ] as const) {
      it(`reports ${kind} as not installed with the exact install hint when PATH lacks it`, async () => {
        const result = await probeCli(kind, {
          env: fakeEnv({ PATH: scratch('empty-path') }),
          homeDir: emptyHome,
        });
        probeResultSchema.parse(result);
        assert.equal(result.installed, false);
        assert.equal(result.path, null);
        assert.equal(result.version, null);
        assert.equal(result.installHint, hint);
        assert.equal(result.versionInTestedRange, false);
        assert.deepEqual(result.features, { jsonEvents: false, sandboxModes: false, resume: false });
        assert.match(result.error ?? '', new RegExp(`${kind} was not found on PATH`));
        assert.ok(result.error?.includes(hint));
      });
    }

    it('reports a configured path with no file behind it as not installed, without throwing', async () => {
      const missing = path.join(work, 'no-such-dir', 'codex');
      const result = await probeCli('codex', { binaryPath: missing, env: fakeEnv(), homeDir: emptyHome });
      assert.equal(result.installed, false);
      assert.equal(result.path, null);
      assert.equal(result.installHint, CODEX_HINT);
      assert.ok(result.error?.includes(missing));
    });

    it('reports a relative configured path as unusable rather than resolving it against the cwd', async () => {
      const result = await probeCli('gemini', {
        binaryPath: 'bin/gemini',
        env: fakeEnv(),
        homeDir: emptyHome,
      });
      assert.equal(result.installed, false);
      assert.match(result.error ?? '', /relative path/);
    });

    it('reports a file that is not executable as not installed', async () => {
      const dir = scratch('not-executable');
      const binary = path.join(dir, 'codex');
      writeFileSync(binary, 'not a program');
      chmodSync(binary, 0o644);
      const result = await probeCli('codex', { binaryPath: binary, env: fakeEnv(), homeDir: emptyHome });
      assert.equal(result.installed, false);
    });
  });

  describe('a CLI that misbehaves on --version', () => {
    it('reports garbage output as installed with no version, quoting it redacted and truncated', async () => {
      const result = await probeCli('codex', {
        binaryPath: fixture('fake-cli-garbage.cjs'),
        env: fakeEnv(),
        homeDir: emptyHome,
      });
      probeResultSchema.parse(result);
      assert.equal(result.installed, true);
      assert.equal(result.path, fixture('fake-cli-garbage.cjs'));
      assert.equal(result.version, null);
      assert.equal(result.versionInTestedRange, false);
      assert.deepEqual(result.features, { jsonEvents: false, sandboxModes: false, resume: false });
      const error = result.error ?? '';
      assert.match(error, /printed "OPENAI_API_KEY=\[REDACTED\]/);
      assert.match(error, /not a codex version \(expected `codex-cli X\.Y\.Z`\)/);
      assert.ok(error.includes(CODEX_HINT), error);
      assert.ok(!JSON.stringify(result).includes('FIXTURESECRET'));
      // 4 KiB of random bytes are cut to a short quote.
      assert.ok(error.length < 600, `error is ${error.length} chars`);
      assert.ok(!/(?![\n\t])\p{Cc}|\ufffd|\\u00/u.test(error), 'unprintable bytes are replaced');
    });

    it('stops a binary that hangs on --version at the timeout and says so', async () => {
      const started = Date.now();
      const result = await probeCli('gemini', {
        binaryPath: fixture('fake-cli-hang.cjs'),
        env: fakeEnv(),
        homeDir: emptyHome,
        timeoutMs: 500,
      });
      assert.ok(Date.now() - started < 5_000, 'the probe returned soon after the timeout');
      assert.equal(result.installed, true);
      assert.equal(result.version, null);
      assert.match(result.error ?? '', /gave no answer within 0\.5 s and was stopped/);
    });

    it('reports a non-zero exit with what the binary said on stderr', async () => {
      const { binary } = fakeCli('codex');
      const result = await probeCli('codex', { binaryPath: binary, env: fakeEnv(), homeDir: emptyHome });
      assert.equal(result.installed, true);
      assert.equal(result.version, null);
      assert.match(
        result.error ?? '',
        /exited with code 3 and printed "fake-cli: no version.txt next to me"/,
      );
    });

    it('parses strictly: a bare version is not codex output, and codex output is not gemini output', async () => {
      const codex = await probeCli('codex', {
        binaryPath: fakeCli('codex', '0.169.0\n').binary,
        env: fakeEnv(),
        homeDir: emptyHome,
      });
      assert.equal(codex.version, null);
      assert.match(codex.error ?? '', /printed "0\.169\.0"/);
      const gemini = await probeCli('gemini', {
        binaryPath: fakeCli('gemini', 'codex-cli 0.61.0\n').binary,
        env: fakeEnv(),
        homeDir: emptyHome,
      });
      assert.equal(gemini.version, null);
      assert.match(gemini.error ?? '', /expected `X\.Y\.Z`/);
    });
  });

  describe('versions and the tested range', () => {
    it('flags codex 0.100.0 as outside the tested range, with no features it cannot vouch for', async () => {
      const result = await probeCli('codex', {
        binaryPath: fakeCli('codex', 'codex-cli 0.100.0\n').binary,
        env: fakeEnv(),
        homeDir: emptyHome,
      });
      assert.equal(result.version, '0.100.0');
      assert.equal(result.versionInTestedRange, false);
      assert.equal(result.error, null);
      assert.deepEqual(result.features, { jsonEvents: false, sandboxModes: false, resume: false });
      const warning = result.warnings.find((text) => text.includes('outside the tested range'));
      assert.ok(warning, JSON.stringify(result.warnings));
      assert.ok(warning.includes(CODEX_TESTED_RANGE));
      assert.ok(warning.includes('npm install -g @openai/codex@0.169.0'));
    });

    it('gives codex 0.150.0 JSON events (since 0.144) but not the features first seen in the tested range', async () => {
      const result = await probeCli('codex', {
        binaryPath: fakeCli('codex', 'codex-cli 0.150.0\n').binary,
        env: fakeEnv(),
        homeDir: emptyHome,
      });
      assert.deepEqual(result.features, { jsonEvents: true, sandboxModes: false, resume: false });
    });

    it('keeps every feature above the tested range but warns that the version is untested', async () => {
      const result = await probeCli('gemini', {
        binaryPath: fakeCli('gemini', '0.62.0\n').binary,
        env: fakeEnv(),
        homeDir: emptyHome,
      });
      assert.equal(result.versionInTestedRange, false);
      assert.deepEqual(result.features, { jsonEvents: true, sandboxModes: true, resume: true });
      assert.ok(result.warnings.some((text) => text.includes('outside the tested range >=0.61.0 <0.62.0')));
    });

    it('compares X.Y.Z[-pre] by semver precedence', () => {
      const order = [
        '0.9.9',
        '0.61.0-alpha',
        '0.61.0-alpha.1',
        '0.61.0-alpha.beta',
        '0.61.0-beta.2',
        '0.61.0-beta.11',
        '0.61.0',
        '0.61.1',
        '0.100.0',
        '1.0.0',
      ];
      for (let i = 0; i + 1 < order.length; i++) {
        const [lower = '', higher = ''] = [order[i], order[i + 1]];
        assert.ok(compareVersions(version(lower), version(higher)) < 0, `${lower} < ${higher}`);
        assert.ok(compareVersions(version(higher), version(lower)) > 0, `${higher} > ${lower}`);
      }
      assert.equal(compareVersions(version('0.61.0'), version('0.61.0')), 0);
    });

    it('refuses anything that is not X.Y.Z[-pre]', () => {
      for (const text of ['0.61', 'v0.61.0', '0.61.0 ', '01.2.3', '0.61.0-', '0.61.0+build', '1.2.3.4', '']) {
        assert.equal(parseVersion(text), null, JSON.stringify(text));
      }
    });

    it('matches the tested ranges, with a prerelease counting as untested', () => {
      assert.ok(satisfiesRange(version('0.169.0'), CODEX_TESTED_RANGE));
      assert.ok(satisfiesRange(version('0.169.9'), CODEX_TESTED_RANGE));
      assert.ok(!satisfiesRange(version('0.168.9'), CODEX_TESTED_RANGE));
      assert.ok(!satisfiesRange(version('0.170.0'), CODEX_TESTED_RANGE));
      assert.ok(!satisfiesRange(version('0.170.0-alpha.1'), CODEX_TESTED_RANGE));
      assert.ok(!satisfiesRange(version('0.169.1-beta'), CODEX_TESTED_RANGE));
      assert.ok(satisfiesRange(version('0.61.5'), GEMINI_TESTED_RANGE));
      assert.ok(satisfiesRange(version('1.0.0-rc.2'), '>=1.0.0-rc.1 <1.0.0'));
    });
  });

  describe('authentication, by variable names and file presence only', () => {
    const SECRET = 'sk-proj-PROBETESTSECRET0123456789abcdef';

    interface AuthCase {
      title: string;
      kind: WorkerKind;
      env?: Record<string, string>;
      files?: string[];
      codexHome?: string;
      mode: ProbeResult['auth']['mode'];
      source: string | null;
      warning?: RegExp;
    }

    const cases: AuthCase[] = [
      {
        title: 'codex: CODEX_API_KEY',
        kind: 'codex',
        env: { CODEX_API_KEY: SECRET },
        mode: 'api_key',
        source: 'CODEX_API_KEY is set',
      },
      {
        title: 'codex: OPENAI_API_KEY',
        kind: 'codex',
        env: { OPENAI_API_KEY: SECRET },
        mode: 'api_key',
        source: 'OPENAI_API_KEY is set',
      },
      {
        title: 'codex: ~/.codex/auth.json',
        kind: 'codex',
        files: ['.codex/auth.json'],
        mode: 'login',
        source: '~/.codex/auth.json exists',
      },
      {
        title: 'codex: $CODEX_HOME/auth.json',
        kind: 'codex',
        codexHome: 'elsewhere',
        files: ['elsewhere/auth.json'],
        mode: 'login',
        source: '$CODEX_HOME/auth.json exists',
      },
      {
        title: 'codex: CODEX_HOME set hides ~/.codex/auth.json, as it does for codex',
        kind: 'codex',
        codexHome: 'elsewhere',
        files: ['.codex/auth.json'],
        mode: 'none',
        source: null,
        warning: /set OPENAI_API_KEY or run `codex login`.*need none/,
      },
      {
        title: 'codex: an empty OPENAI_API_KEY is no key',
        kind: 'codex',
        env: { OPENAI_API_KEY: '' },
        mode: 'none',
        source: null,
        warning: /set OPENAI_API_KEY or run `codex login`/,
      },
      {
        title: 'gemini: GEMINI_API_KEY',
        kind: 'gemini',
        env: { GEMINI_API_KEY: SECRET },
        mode: 'api_key',
        source: 'GEMINI_API_KEY is set',
      },
      {
        title: 'gemini: Vertex AI with project and location',
        kind: 'gemini',
        env: {
          GOOGLE_GENAI_USE_VERTEXAI: 'true',
          GOOGLE_CLOUD_PROJECT: 'my-project',
          GOOGLE_CLOUD_LOCATION: 'us-central1',
          GEMINI_API_KEY: SECRET,
        },
        mode: 'vertex',
        source: 'GOOGLE_GENAI_USE_VERTEXAI=true and GOOGLE_CLOUD_PROJECT is set',
      },
      {
        title: 'gemini: Vertex AI express mode with GOOGLE_API_KEY',
        kind: 'gemini',
        env: { GOOGLE_GENAI_USE_VERTEXAI: 'true', GOOGLE_API_KEY: SECRET },
        mode: 'vertex',
        source: 'GOOGLE_GENAI_USE_VERTEXAI=true and GOOGLE_API_KEY is set (express mode)',
      },
      {
        title: 'gemini: GOOGLE_API_KEY alone, which gemini 0.61 does not use for the Gemini API',
        kind: 'gemini',
        env: { GOOGLE_API_KEY: SECRET },
        mode: 'none',
        source: null,
        warning: /GOOGLE_API_KEY is set, but gemini reads it only for Vertex AI/,
      },
      {
        title: 'gemini: ~/.gemini/oauth_creds.json',
        kind: 'gemini',
        files: ['.gemini/oauth_creds.json'],
        mode: 'login',
        source: '~/.gemini/oauth_creds.json exists',
      },
      {
        title: 'gemini: nothing',
        kind: 'gemini',
        mode: 'none',
        source: null,
        warning: /set GEMINI_API_KEY or run `gemini` once to log in.*need none/,
      },
    ];

    for (const testCase of cases) {
      it(`${testCase.title} → ${testCase.mode}, and no value appears in the result`, async () => {
        const home = scratch('home');
        for (const file of testCase.files ?? []) {
          mkdirSync(path.dirname(path.join(home, file)), { recursive: true });
          // The probe must never read these: their content would show up if it did.
          writeFileSync(path.join(home, file), JSON.stringify({ token: SECRET }));
        }
        const env = fakeEnv({
          ...testCase.env,
          ...(testCase.codexHome ? { CODEX_HOME: path.join(home, testCase.codexHome) } : {}),
        });
        const { binary, calls } = fakeCli(
          testCase.kind,
          testCase.kind === 'codex' ? 'codex-cli 0.169.0\n' : '0.61.0\n',
        );
        const result = await probeCli(testCase.kind, { binaryPath: binary, env, homeDir: home });
        assert.deepEqual(result.auth, { mode: testCase.mode, source: testCase.source });
        if (testCase.warning) {
          assert.ok(
            result.warnings.some((text) => testCase.warning?.test(text)),
            JSON.stringify(result.warnings),
          );
        } else {
          assert.deepEqual(result.warnings, []);
        }
        const json = JSON.stringify(result);
        assert.ok(!json.includes('PROBETESTSECRET'), json);
        for (const value of Object.values(testCase.env ?? {}).filter((value) => value.length > 0)) {
          if (value !== 'true') assert.ok(!json.includes(value), `${value} leaked into ${json}`);
        }
        // --version got no credential and not the home the CLI would log in from.
        const [call] = calls();
        assert.ok(call);
        assert.deepEqual(call.argv, ['--version']);
        for (const name of Object.keys(testCase.env ?? {})) assert.ok(!call.envNames.includes(name), name);
        assert.notEqual(call.home, home);
      });
    }

    it('warns when Vertex AI is switched on without a project or key', async () => {
      const result = await probeCli('gemini', {
        binaryPath: path.join(work, 'absent', 'gemini'),
        env: fakeEnv({ GOOGLE_GENAI_USE_VERTEXAI: 'true' }),
        homeDir: emptyHome,
      });
      assert.equal(result.auth.mode, 'none');
      assert.ok(
        result.warnings.some((text) =>
          /GOOGLE_GENAI_USE_VERTEXAI=true makes gemini use Vertex AI/.test(text),
        ),
      );
    });

    it('detects auth even when the CLI is not installed', async () => {
      const result = await probeCli('codex', {
        env: fakeEnv({ PATH: scratch('empty-path'), OPENAI_API_KEY: SECRET }),
        homeDir: emptyHome,
      });
      assert.equal(result.installed, false);
      assert.deepEqual(result.auth, { mode: 'api_key', source: 'OPENAI_API_KEY is set' });
      assert.ok(!JSON.stringify(result).includes('PROBETESTSECRET'));
    });
  });

  describe('workspace .env files', () => {
    it('says nothing about .env or .gemini/.env in the workspace: no step of either CLI reads them', async () => {
      const workspace = scratch('ws-env');
      writeFileSync(path.join(workspace, '.env'), 'GEMINI_API_KEY=planted\n');
      mkdirSync(path.join(workspace, '.gemini'));
      writeFileSync(path.join(workspace, '.gemini', '.env'), 'GOOGLE_GEMINI_BASE_URL=http://attacker\n');
      const gemini = await probeCli('gemini', {
        binaryPath: fakeCli('gemini', '0.61.0\n').binary,
        env: fakeEnv({ GEMINI_API_KEY: 'x'.repeat(20) }),
        homeDir: emptyHome,
        workspaceDir: workspace,
      });
      assert.deepEqual(gemini.warnings, []);
      const codex = await probeCli('codex', {
        binaryPath: fakeCli('codex', 'codex-cli 0.169.0\n').binary,
        env: fakeEnv({ OPENAI_API_KEY: 'x'.repeat(20) }),
        homeDir: emptyHome,
        workspaceDir: workspace,
      });
      assert.deepEqual(codex.warnings, []);
    });
  });

  describe('the --version cache', () => {
    it('does not spawn again for the same unchanged binary', async () => {
      const { binary, calls } = fakeCli('codex', 'codex-cli 0.169.0\n');
      const first = await probeCli('codex', { binaryPath: binary, env: fakeEnv(), homeDir: emptyHome });
      const second = await probeCli('codex', { binaryPath: binary, env: fakeEnv(), homeDir: emptyHome });
      assert.equal(calls().length, 1);
      assert.deepEqual(second, first);
    });

    it('spawns once for two probes at the same time', async () => {
      const { binary, calls } = fakeCli('gemini', '0.61.0\n');
      const results = await Promise.all([
        probeCli('gemini', { binaryPath: binary, env: fakeEnv(), homeDir: emptyHome }),
        probeCli('gemini', { binaryPath: binary, env: fakeEnv(), homeDir: emptyHome }),
      ]);
      assert.equal(calls().length, 1);
      assert.deepEqual(results[0], results[1]);
    });

    it('probes again when the binary changes (size or mtime) and after clearProbeCache()', async () => {
      const { binary, calls } = fakeCli('codex', 'codex-cli 0.169.0\n');
      await probeCli('codex', { binaryPath: binary, env: fakeEnv(), homeDir: emptyHome });
      appendFileSync(binary, '// updated\n');
      await probeCli('codex', { binaryPath: binary, env: fakeEnv(), homeDir: emptyHome });
      assert.equal(calls().length, 2);
      clearProbeCache();
      await probeCli('codex', { binaryPath: binary, env: fakeEnv(), homeDir: emptyHome });
      assert.equal(calls().length, 3);
    });

    it('keeps auth and warnings fresh: only the --version answer is cached', async () => {
      const { binary, calls } = fakeCli('codex', 'codex-cli 0.169.0\n');
      const before = await probeCli('codex', { binaryPath: binary, env: fakeEnv(), homeDir: emptyHome });
      const after = await probeCli('codex', {
        binaryPath: binary,
        env: fakeEnv({ OPENAI_API_KEY: 'x'.repeat(20) }),
        homeDir: emptyHome,
      });
      assert.equal(calls().length, 1);
      assert.equal(before.auth.mode, 'none');
      assert.equal(after.auth.mode, 'api_key');
    });

    it('does not cache a failure', async () => {
      const { binary, calls } = fakeCli('codex', 'garbage\n');
      await probeCli('codex', { binaryPath: binary, env: fakeEnv(), homeDir: emptyHome });
      await probeCli('codex', { binaryPath: binary, env: fakeEnv(), homeDir: emptyHome });
      assert.equal(calls().length, 2);
    });
  });
});
