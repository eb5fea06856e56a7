// Specification of the child-process environment allowlist and of which variable names hold secrets.
import * as assert from 'node:assert/strict';
import {
  BASE_ENV_NAMES,
  EnvNameError,
  EnvValueError,
  HEADLESS_ENV,
  assertEnvName,
  baseEnvNames,
  buildChildEnv,
  describeEnvNames,
  isSecretName,
  lookupEnv,
} from '../../src/core/env';

const parentEnv: NodeJS.ProcessEnv = {
  PATH: '/usr/local/bin:/usr/bin',
  HOME: '/home/ada',
  USER: 'ada',
  LANG: 'en_GB.UTF-8',
  TERM: 'xterm-256color',
  SECRET_TOKEN: 'tok-123456',
  OPENAI_API_KEY: 'sk-test-123456',
  NODE_OPTIONS: '--require /tmp/evil.js',
  LD_PRELOAD: '/tmp/evil.so',
};

function refusedName(name: string): (error: unknown) => true {
  return (error: unknown) => {
    assert.ok(error instanceof EnvNameError, `expected an EnvNameError, got ${String(error)}`);
    assert.equal(error.code, 'INVALID_ENV_NAME');
    assert.equal(error.envName, name);
    assert.ok(error.message.includes(JSON.stringify(name)), error.message);
    assert.match(error.message, /letter or an underscore/);
    return true;
  };
}

describe('env allowlist', () => {
  describe('buildChildEnv', () => {
    it('passes the base names that are present in the source env', () => {
      const env = buildChildEnv({}, parentEnv, 'linux');
      assert.equal(env.PATH, '/usr/local/bin:/usr/bin');
      assert.equal(env.HOME, '/home/ada');
      assert.equal(env.USER, 'ada');
      assert.equal(env.LANG, 'en_GB.UTF-8');
    });

    it('drops a variable that is not on the allowlist, such as SECRET_TOKEN', () => {
      const env = buildChildEnv({}, parentEnv, 'linux');
      assert.equal('SECRET_TOKEN' in env, false);
      assert.equal('OPENAI_API_KEY' in env, false);
      assert.equal('NODE_OPTIONS' in env, false);
      assert.equal('LD_PRELOAD' in env, false);
    });

    it('gives a headless child NO_COLOR=1 and no TERM', () => {
      const env = buildChildEnv({}, parentEnv, 'linux');
      assert.equal(env.NO_COLOR, '1');
      assert.equal('TERM' in env, false);
      assert.deepEqual(HEADLESS_ENV, { NO_COLOR: '1' });
    });

    it('holds exactly the headless defaults and the base names present, nothing else', () => {
      const env = buildChildEnv({}, parentEnv, 'linux');
      assert.deepEqual(describeEnvNames(env), ['HOME', 'LANG', 'NO_COLOR', 'PATH', 'USER']);
    });

    it('skips a base name that is absent rather than setting it empty', () => {
      const env = buildChildEnv({}, { PATH: '/bin' }, 'linux');
      assert.equal('HOME' in env, false);
      assert.equal('TZ' in env, false);
    });

    it('keeps a base name whose value is the empty string', () => {
      const env = buildChildEnv({}, { PATH: '/bin', TZ: '' }, 'linux');
      assert.equal(env.TZ, '');
    });

    it('passes an extra name through when the source env has it', () => {
      const env = buildChildEnv({ extraNames: ['OPENAI_API_KEY'] }, parentEnv, 'linux');
      assert.equal(env.OPENAI_API_KEY, 'sk-test-123456');
      assert.equal('SECRET_TOKEN' in env, false);
    });

    it('skips an extra name the source env does not have', () => {
      const env = buildChildEnv({ extraNames: ['GEMINI_API_KEY'] }, parentEnv, 'linux');
      assert.equal('GEMINI_API_KEY' in env, false);
    });

    it('lets an explicit value override a passed-through one', () => {
      const env = buildChildEnv(
        { extraNames: ['OPENAI_API_KEY'], set: { HOME: '/tmp/isolated', OPENAI_API_KEY: 'sk-other-654321' } },
        parentEnv,
        'linux',
      );
      assert.equal(env.HOME, '/tmp/isolated');
      assert.equal(env.OPENAI_API_KEY, 'sk-other-654321');
    });

    it('adds an explicit value that is not in the source env, such as CODEX_HOME', () => {
      const env = buildChildEnv({ set: { CODEX_HOME: '/tmp/codex-home' } }, parentEnv, 'linux');
      assert.equal(env.CODEX_HOME, '/tmp/codex-home');
    });

    it('lets an explicit value replace the NO_COLOR default', () => {
      const env = buildChildEnv({ set: { NO_COLOR: '' } }, parentEnv, 'linux');
      assert.equal(env.NO_COLOR, '');
    });

    it('leaves out omitted base names and defaults, but still applies explicit values', () => {
      const env = buildChildEnv(
        { omitNames: ['HOME', 'USER', 'NO_COLOR'], set: { USER: 'worker' } },
        parentEnv,
        'linux',
      );
      assert.equal('HOME' in env, false);
      assert.equal('NO_COLOR' in env, false);
      assert.equal(env.USER, 'worker');
      assert.equal(env.PATH, '/usr/local/bin:/usr/bin');
    });

    it('reads process.env when no source is given', () => {
      const env = buildChildEnv();
      assert.equal(env.PATH, process.env.PATH);
    });

    it('refuses an invalid extra name, with the name in the message', () => {
      assert.throws(
        () => buildChildEnv({ extraNames: ['OPENAI-API-KEY'] }, parentEnv, 'linux'),
        refusedName('OPENAI-API-KEY'),
      );
    });

    it('refuses an invalid explicit name, with the name in the message', () => {
      assert.throws(() => buildChildEnv({ set: { 'A=B': 'x' } }, parentEnv, 'linux'), refusedName('A=B'));
    });

    it('refuses an invalid omitted name, with the name in the message', () => {
      assert.throws(() => buildChildEnv({ omitNames: ['1HOME'] }, parentEnv, 'linux'), refusedName('1HOME'));
    });

    it('refuses an explicit value holding a NUL byte, naming the variable but not the value', () => {
      assert.throws(
        () => buildChildEnv({ set: { CODEX_HOME: '/tmp/a\0b-secretish' } }, parentEnv, 'linux'),
        (error: unknown) => {
          assert.ok(error instanceof EnvValueError);
          assert.equal(error.code, 'INVALID_ENV_VALUE');
          assert.equal(error.envName, 'CODEX_HOME');
          assert.match(error.message, /CODEX_HOME/);
          assert.doesNotMatch(error.message, /secretish/);
          return true;
        },
      );
    });

    it('refuses a passed-through value holding a NUL byte', () => {
      assert.throws(() => buildChildEnv({}, { PATH: '/bin\0/evil' }, 'linux'), EnvValueError);
    });

    it('matches names case-sensitively on POSIX, so Path is not PATH', () => {
      const env = buildChildEnv({}, { Path: '/bin' }, 'linux');
      assert.equal('PATH' in env, false);
      assert.equal('Path' in env, false);
    });

    it('looks names up case-insensitively on win32 and keeps one key per variable', () => {
      const source = { Path: 'C:\\Windows', SystemRoot: 'C:\\Windows', openai_api_key: 'sk-win-123456' };
      const env = buildChildEnv({ extraNames: ['OPENAI_API_KEY'] }, source, 'win32');
      assert.equal(env.PATH, 'C:\\Windows');
      assert.equal(env.SYSTEMROOT, 'C:\\Windows');
      assert.equal(env.OPENAI_API_KEY, 'sk-win-123456');
      assert.deepEqual(describeEnvNames(env), ['NO_COLOR', 'OPENAI_API_KEY', 'PATH', 'SYSTEMROOT']);
    });

    it('on win32 lets an explicit value in another spelling replace the passed-through one', () => {
      const env = buildChildEnv(
        { set: { Path: 'D:\\tools' }, omitNames: ['no_color'] },
        { PATH: 'C:\\x' },
        'win32',
      );
      assert.deepEqual(env, { Path: 'D:\\tools' });
    });
  });

  describe('lookupEnv', () => {
    it('prefers the exact spelling on win32 when several spellings exist', () => {
      assert.equal(lookupEnv({ path: 'lower', PATH: 'upper' }, 'PATH', 'win32'), 'upper');
    });

    it('finds another spelling only on win32', () => {
      assert.equal(lookupEnv({ Path: 'x' }, 'PATH', 'win32'), 'x');
      assert.equal(lookupEnv({ Path: 'x' }, 'PATH', 'darwin'), undefined);
    });
  });

  describe('base names', () => {
    it('adds the Windows essentials only on win32', () => {
      assert.ok(baseEnvNames('win32').includes('SYSTEMROOT'));
      assert.ok(baseEnvNames('win32').includes('PATHEXT'));
      assert.ok(!baseEnvNames('linux').includes('SYSTEMROOT'));
      assert.deepEqual(BASE_ENV_NAMES, baseEnvNames(process.platform));
    });

    it('holds only valid names and no TERM', () => {
      for (const name of baseEnvNames('win32')) assertEnvName(name);
      assert.ok(!baseEnvNames('linux').includes('TERM'));
    });
  });

  describe('assertEnvName', () => {
    it('accepts letters, digits and underscores not starting with a digit', () => {
      for (const name of ['PATH', '_X', 'a1', 'OPENAI_API_KEY']) assertEnvName(name);
    });

    for (const name of ['', '1ABC', 'A-B', 'A B', 'A=B', 'A\0B', 'ÄPFEL', '$HOME']) {
      it(`refuses ${JSON.stringify(name)} with the name in the message`, () => {
        assert.throws(() => assertEnvName(name), refusedName(name));
      });
    }
  });

  describe('isSecretName', () => {
    for (const name of [
      'OPENAI_API_KEY',
      'GEMINI_API_KEY',
      'GOOGLE_API_KEY',
      'ANTHROPIC_API_KEY',
      'GITHUB_TOKEN',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_SESSION_TOKEN',
      'SECRET_TOKEN',
      'DB_PASSWORD',
      'DB_PASSWD',
      'DB_PWD',
      'MYSQL_PASS',
      'GOOGLE_APPLICATION_CREDENTIALS',
      'Authorization',
      'Set-Cookie',
      'x-api-key',
      'apiKey',
      'APIKey',
      'clientSecret',
      'private_key',
      'GITHUB_PAT',
      'openai_api_key',
      'API_KEY_2',
    ]) {
      it(`treats ${name} as secret`, () => assert.equal(isSecretName(name), true));
    }

    for (const name of [
      'PATH',
      'HOME',
      'PWD',
      'OLDPWD',
      'KEYBOARD_LAYOUT',
      'MONKEY',
      'TOKENIZERS_PARALLELISM',
      'max_tokens',
      'input_tokens',
      'total_token_usage',
      'totalTokenCount',
      'TOKEN_LIMIT',
      'GEMINI_AUTH_TYPE',
      'PASSWORD_FILE',
      'DESKTOP_SESSION',
      'XDG_SESSION_TYPE',
      'session_id',
      'author',
      '',
    ]) {
      it(`treats ${JSON.stringify(name)} as not secret`, () => assert.equal(isSecretName(name), false));
    }
  });

  describe('describeEnvNames', () => {
    it('lists the names sorted and never the values', () => {
      const names = describeEnvNames({ PATH: '/bin', OPENAI_API_KEY: 'sk-value-123456', HOME: '/h' });
      assert.deepEqual(names, ['HOME', 'OPENAI_API_KEY', 'PATH']);
      assert.ok(!names.join(' ').includes('sk-value'));
    });
  });
});
