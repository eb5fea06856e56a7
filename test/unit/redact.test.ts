// Specification of the redactor: what it masks, what it must leave alone, and that masking is stable.
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { MIN_SECRET_LENGTH, REDACTED, Redactor, getDefaultRedactor, redact } from '../../src/core/redact';

// Realistic-looking but fake credentials, assembled so that no scanner mistakes this file for a leak.
const openAiKey = 'sk-' + 'proj-' + 'Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_Ab3dEf6hIj9kLm2';
const legacyOpenAiKey = 'sk-' + 'Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3dEf6hIj9kLm2n';
const anthropicKey = 'sk-' + 'ant-api03-' + 'Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z-Ab3dEf6hIj9kLm2nOp5q';
const googleKey = 'AI' + 'za' + 'SyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW';
const githubTokens = ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'].map(
  (prefix) => prefix + 'A1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvWxYz',
);
const githubPat = 'github' + '_pat_' + '11ABCDEFG0123456789_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789';
const slackTokens = ['xoxb-', 'xoxp-', 'xoxa-', 'xoxr-', 'xoxs-'].map(
  (prefix) => prefix + '1234567890-AbCdEfGhIj',
);
const awsKeyIds = ['AK' + 'IAIOSFODNN7EXAMPLE', 'AS' + 'IAIOSFODNN7EXAMPLE'];
const jwt =
  'eyJ' +
  'hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.' +
  'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
const gitSha = '3f786850e387550fdab836ed7e6dc881de23001b';

/** Asserts the secret is gone and the text around it is exactly what was expected. */
function assertRedacts(redactor: Redactor, input: string, expected: string, secret?: string): void {
  const output = redactor.redact(input);
  assert.equal(output, expected);
  if (secret !== undefined) assert.ok(!output.includes(secret), `${secret} survived in ${output}`);
}

describe('redact', () => {
  const redactor = new Redactor();

  describe('token formats masked without knowing the value', () => {
    it('masks an OpenAI project key and keeps the text around it', () => {
      assertRedacts(redactor, `key ${openAiKey} end`, `key ${REDACTED} end`, openAiKey);
    });

    it('masks a legacy OpenAI key', () => {
      assertRedacts(redactor, `(${legacyOpenAiKey})`, `(${REDACTED})`, legacyOpenAiKey);
    });

    it('masks an Anthropic key', () => {
      assertRedacts(redactor, `x ${anthropicKey}.`, `x ${REDACTED}.`, anthropicKey);
    });

    it('masks a Google API key', () => {
      assertRedacts(redactor, `key=${googleKey}&alt=json`, `key=${REDACTED}&alt=json`, googleKey);
      assertRedacts(redactor, `"${googleKey}"`, `"${REDACTED}"`, googleKey);
    });

    for (const token of [...githubTokens, githubPat]) {
      it(`masks a GitHub token starting ${token.slice(0, 4)}`, () => {
        assertRedacts(redactor, `push with ${token} now`, `push with ${REDACTED} now`, token);
      });
    }

    for (const token of slackTokens) {
      it(`masks a Slack token starting ${token.slice(0, 5)}`, () => {
        assertRedacts(redactor, `slack: ${token}`, `slack: ${REDACTED}`, token);
      });
    }

    for (const keyId of awsKeyIds) {
      it(`masks an AWS access key id starting ${keyId.slice(0, 4)}`, () => {
        assertRedacts(redactor, `id ${keyId} here`, `id ${REDACTED} here`, keyId);
      });
    }

    it('masks a JWT', () => {
      assertRedacts(redactor, `cookie was ${jwt};`, `cookie was ${REDACTED};`, jwt);
    });

    it('masks the body of a PEM private key and keeps its armour lines', () => {
      const pem =
        '-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nabcdef==\n-----END RSA PRIVATE KEY-----';
      assertRedacts(
        redactor,
        `before\n${pem}\nafter`,
        `before\n-----BEGIN RSA PRIVATE KEY-----\n${REDACTED}\n-----END RSA PRIVATE KEY-----\nafter`,
        'MIIEpAIBAAKCAQEA7',
      );
    });

    it('masks a PEM private key inside a JSON string', () => {
      const input = '{"k":"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\n-----END PRIVATE KEY-----\\n"}';
      const output = redactor.redact(input);
      assert.equal(output, `{"k":"-----BEGIN PRIVATE KEY-----${REDACTED}-----END PRIVATE KEY-----\\n"}`);
      assert.doesNotThrow(() => JSON.parse(output));
    });

    it('masks a PEM private key cut short by a log limit to the end of the text', () => {
      assertRedacts(
        redactor,
        'key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA',
        `key:\n-----BEGIN OPENSSH PRIVATE KEY-----\n${REDACTED}`,
        'b3BlbnNzaC1rZXktdjEAAAAA',
      );
    });

    it('leaves a PEM certificate alone, since it is public', () => {
      const cert = '-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE\n-----END CERTIFICATE-----';
      assert.equal(redactor.redact(cert), cert);
    });
  });

  describe('credentials recognised by their context', () => {
    it('masks the token of an Authorization: Bearer header', () => {
      assertRedacts(
        redactor,
        'Authorization: Bearer abcdefghij',
        `Authorization: Bearer ${REDACTED}`,
        'abcdefghij',
      );
    });

    it('masks a bare Bearer token that looks like a credential', () => {
      assertRedacts(redactor, 'sent Bearer 9f8e7d6c5b4a and', `sent Bearer ${REDACTED} and`, '9f8e7d6c5b4a');
    });

    it('masks Basic credentials inside a quoted header', () => {
      assertRedacts(
        redactor,
        'curl -H "Authorization: Basic dXNlcjpwYXNz" https://example.test',
        `curl -H "Authorization: Basic ${REDACTED}" https://example.test`,
        'dXNlcjpwYXNz',
      );
    });

    it('masks NAME=value when the name is secret-named', () => {
      assertRedacts(
        redactor,
        'env DB_PASSWORD=hunter2 ./run',
        `env DB_PASSWORD=${REDACTED} ./run`,
        'hunter2',
      );
    });

    it('masks a quoted NAME=value and keeps the quotes', () => {
      assertRedacts(
        redactor,
        "export GITHUB_TOKEN='my token value'",
        `export GITHUB_TOKEN='${REDACTED}'`,
        'my token value',
      );
    });

    it('masks NAME: value in YAML or a header', () => {
      assertRedacts(redactor, 'api_key: abc123xyz\nname: x', `api_key: ${REDACTED}\nname: x`, 'abc123xyz');
    });

    it('masks a "name": "value" JSON pair and keeps the line valid JSON', () => {
      const input = '{"apiKey": "s3cr3t-value", "user": "ada", "client_secret": 123456}';
      const output = redactor.redact(input);
      assert.equal(output, `{"apiKey": "${REDACTED}", "user": "ada", "client_secret": "${REDACTED}"}`);
      assert.deepEqual(JSON.parse(output), { apiKey: REDACTED, user: 'ada', client_secret: REDACTED });
    });

    it('masks a JSON pair escaped inside another JSON string', () => {
      const input = JSON.stringify({ arguments: JSON.stringify({ password: 'p4ss word', n: 1 }) });
      const output = redactor.redact(input);
      assert.ok(!output.includes('p4ss'), output);
      const inner = JSON.parse((JSON.parse(output) as { arguments: string }).arguments) as unknown;
      assert.deepEqual(inner, { password: REDACTED, n: 1 });
    });

    it('masks a secret-named assignment nested in the value of another', () => {
      assertRedacts(
        redactor,
        'run --env=API_KEY=abc123 next',
        `run --env=API_KEY=${REDACTED} next`,
        'abc123',
      );
    });

    it('masks a secret-named assignment inside an ordinary JSON string', () => {
      assertRedacts(
        redactor,
        '{"command": "env GITHUB_TOKEN=abc123 gh pr list", "cwd": "."}',
        `{"command": "env GITHUB_TOKEN=${REDACTED} gh pr list", "cwd": "."}`,
        'abc123',
      );
    });

    it('masks a --flag=value whose name is secret-named', () => {
      assertRedacts(
        redactor,
        'cli --api-key=abc123 --model x',
        `cli --api-key=${REDACTED} --model x`,
        'abc123',
      );
    });

    it('masks the password of URL credentials and keeps the user and host', () => {
      assertRedacts(
        redactor,
        'git clone https://x-access-token:pa55word@github.com/o/r.git',
        `git clone https://x-access-token:${REDACTED}@github.com/o/r.git`,
        'pa55word',
      );
    });

    it('masks secret-named query parameters and keeps the others', () => {
      assertRedacts(
        redactor,
        'GET /cb?code=1&access_token=abc123&key=zzz999&state=ok#top',
        `GET /cb?code=1&access_token=${REDACTED}&key=${REDACTED}&state=ok#top`,
        'abc123',
      );
    });
  });

  describe('ordinary text left alone', () => {
    for (const text of [
      'PATH=/usr/bin:/bin HOME=/home/ada PWD=/work',
      'the key idea is that the bearer token is sent with Basic auth',
      'Session: started; key: idea; password: forgotten',
      `commit ${gitSha}`,
      `sha=${gitSha}`,
      'max_tokens=4096 total_token_usage: 1234 {"input_tokens": 12, "private": true}',
      'https://github.com/owner/repo?tab=readme#install',
      'task-sk-learn-estimator-config-file and risk-assessment-template-v2',
      'see https://user@example.com/path and ssh://git@host:22/repo',
      'KEYBOARD_LAYOUT=us MONKEY=banana',
    ]) {
      it(`keeps ${JSON.stringify(text)}`, () => assert.equal(redactor.redact(text), text));
    }
  });

  describe('known values', () => {
    it('masks a value added with addSecret wherever it appears', () => {
      const known = new Redactor();
      known.addSecret('correct-horse');
      assert.equal(known.redact('a correct-horse b correct-horse'), `a ${REDACTED} b ${REDACTED}`);
    });

    it(`ignores a value shorter than ${MIN_SECRET_LENGTH} characters`, () => {
      const known = new Redactor({ secretValues: ['abcde'] });
      assert.equal(known.redact('abcde abcdef'), 'abcde abcdef');
    });

    it('masks the longer of two overlapping secrets whole', () => {
      const known = new Redactor({ secretValues: ['abcdef', 'abcdefghijkl'] });
      assert.equal(known.redact('x abcdefghijkl y abcdef'), `x ${REDACTED} y ${REDACTED}`);
    });

    it('masks a secret holding regular-expression characters literally', () => {
      const known = new Redactor({ secretValues: ['a.b*c+(d)[e]$'] });
      assert.equal(known.redact('x a.b*c+(d)[e]$ y aXbbc'), `x ${REDACTED} y aXbbc`);
    });

    it('takes the values of secret-named variables from an env, and not of others', () => {
      const fromEnv = new Redactor({
        env: { GEMINI_API_KEY: 'gemini-value-123', PATH: '/usr/bin/secretive', SHORT_TOKEN: 'abc' },
      });
      assert.equal(
        fromEnv.redact('got gemini-value-123 from /usr/bin/secretive abc'),
        `got ${REDACTED} from /usr/bin/secretive abc`,
      );
    });

    it('masks known formats and values added to the shared default redactor through redact()', () => {
      getDefaultRedactor().addSecret('added-at-runtime-42');
      assert.equal(redact(`v=added-at-runtime-42 k=${openAiKey}`), `v=${REDACTED} k=${REDACTED}`);
      assert.equal(getDefaultRedactor(), getDefaultRedactor());
    });
  });

  describe('redactValue', () => {
    it('returns a deep copy with strings redacted and secret-named keys masked whole', () => {
      const input = {
        command: ['codex', 'exec', `--key=${openAiKey}`],
        env: { PATH: '/usr/bin', OPENAI_API_KEY: 'anything', credentials: { user: 'a', pass: 'b' } },
        nested: [{ note: `token ${githubTokens[0] ?? ''}`, token: 12345, private: true, apiKey: null }],
        usage: { input_tokens: 10, total_token_usage: { total: 12 } },
      };
      const output = new Redactor().redactValue(input);
      assert.deepEqual(output, {
        command: ['codex', 'exec', `--key=${REDACTED}`],
        env: { PATH: '/usr/bin', OPENAI_API_KEY: REDACTED, credentials: REDACTED },
        nested: [{ note: `token ${REDACTED}`, token: REDACTED, private: true, apiKey: null }],
        usage: { input_tokens: 10, total_token_usage: { total: 12 } },
      });
      assert.equal(input.env.OPENAI_API_KEY, 'anything', 'the input is not modified');
    });

    it('redacts keys too', () => {
      const known = new Redactor({ secretValues: ['ada-lovelace-1815'] });
      assert.deepEqual(known.redactValue({ 'ada-lovelace-1815': 1 }), { [REDACTED]: 1 });
    });

    it('keeps a __proto__ key from parsed JSON as plain data', () => {
      const parsed = JSON.parse('{"__proto__": {"polluted": "yes"}}') as object;
      const output = new Redactor().redactValue(parsed);
      assert.equal(Object.getPrototypeOf(output), Object.prototype);
      assert.deepEqual(Object.keys(output), ['__proto__']);
    });

    it('copies a cycle without looping', () => {
      const cyclic: { name: string; self?: unknown } = { name: 'loop' };
      cyclic.self = cyclic;
      const output = new Redactor().redactValue(cyclic);
      assert.equal(output.self, output);
      assert.notEqual(output, cyclic);
    });

    it('redacts the message and stack of an Error and keeps its type', () => {
      const error = new Error(`failed with ${openAiKey}`);
      const output = new Redactor().redactValue(error);
      assert.ok(output instanceof Error);
      assert.equal(output.message, `failed with ${REDACTED}`);
      assert.ok(!(output.stack ?? '').includes(openAiKey));
    });

    it('returns primitives unchanged', () => {
      const copy = new Redactor();
      assert.equal(copy.redactValue(42), 42);
      assert.equal(copy.redactValue(null), null);
      assert.equal(copy.redactValue(undefined), undefined);
    });
  });

  describe('stability', () => {
    it('is idempotent on text full of secrets and masks', () => {
      const text = [
        `OPENAI_API_KEY=${openAiKey}`,
        'Authorization: Bearer abc123def',
        `{"token": "${jwt}", "key": 5}`,
        'https://u:p4ss@h/?token=t0k&x=1',
        '-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----',
        `already ${REDACTED} and key=${REDACTED}`,
      ].join('\n');
      const once = redactor.redact(text);
      assert.equal(redactor.redact(once), once);
    });

    it('never masks the mask itself, nor lets a secret inside the mask count', () => {
      const odd = new Redactor({ secretValues: ['REDACTED', 'EDACTED]'] });
      assert.equal(odd.redact(`a ${REDACTED} b`), `a ${REDACTED} b`);
    });

    it('finishes on a megabyte of input built to make regular expressions backtrack', () => {
      const size = 1 << 20;
      const fragments = [
        'a=',
        'key="',
        'k=\\"',
        'eyJa.',
        'sk-',
        'a://b:',
        '-----BEGIN ',
        'Bearer ',
        '?token=',
      ];
      for (const fragment of fragments) {
        const adversarial = fragment.repeat(Math.ceil(size / fragment.length));
        assert.equal(typeof redactor.redact(adversarial), 'string');
      }
      const mixed = ('a ' + 'a='.repeat(8) + '"' + 'x'.repeat(50)).repeat(Math.ceil(size / 70));
      assert.equal(typeof redactor.redact(mixed), 'string');
    });
  });

  describe('properties', () => {
    const alphanumeric = fc.constantFrom(
      ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'.split(''),
    );
    const secretValue = fc
      .string({ unit: alphanumeric, minLength: MIN_SECRET_LENGTH, maxLength: 40 })
      // A value that is part of the mask's own text cannot be told apart from the mask.
      .filter((value) => !REDACTED.includes(value));
    // Random text salted with the fragments the patterns look for, so they actually get exercised.
    const fragment = fc.constantFrom(
      'sk-',
      'eyJ',
      'key=',
      'token: ',
      '"apiKey": "',
      '\\"',
      'Bearer ',
      'https://u:',
      '@',
      '?',
      '&',
      '=',
      ':',
      '-----BEGIN PRIVATE KEY-----',
      '-----END PRIVATE KEY-----',
      REDACTED,
      '[',
      ']',
      '\n',
      ' ',
      '0123456789',
    );
    const text = fc
      .array(fc.oneof(fc.string({ maxLength: 8 }), fragment), { maxLength: 30 })
      .map((parts) => parts.join(''));

    it('never lets a known secret through, whatever surrounds it', () => {
      fc.assert(
        fc.property(fc.string(), secretValue, (surround, secret) => {
          const known = new Redactor({ secretValues: [secret] });
          assert.ok(!known.redact(surround + secret + surround).includes(secret));
        }),
        { numRuns: 500 },
      );
    });

    it('never lets a known secret through, even among pattern fragments', () => {
      fc.assert(
        fc.property(text, secretValue, (surround, secret) => {
          const known = new Redactor({ secretValues: [secret] });
          assert.ok(!known.redact(surround + secret + surround).includes(secret));
        }),
        { numRuns: 500 },
      );
    });

    it('is idempotent on random strings', () => {
      fc.assert(
        fc.property(fc.string(), (input) => {
          const once = redact(input);
          assert.equal(redact(once), once);
        }),
        { numRuns: 1000 },
      );
    });

    it('is idempotent on random strings salted with pattern fragments', () => {
      fc.assert(
        fc.property(text, (input) => {
          const once = redactor.redact(input);
          assert.equal(redactor.redact(once), once);
        }),
        { numRuns: 2000 },
      );
    });
  });
});
