// The strict command templates of the codex and gemini workers, and the step-request validation that
// guards what goes into them: fixed flags, typed slots, the prompt only ever on stdin.
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MAX_PROMPT_BYTES,
  ROLES,
  StepRequestError,
  modelNameSchema,
  parseStepRequest,
  type Role,
} from '../../src/workers/contract';
import { codexArgs, codexSandboxFor, type CodexSandbox } from '../../src/workers/codex';
import {
  GEMINI_UNTRUSTED_ENV,
  geminiArgs,
  geminiPolicy,
  geminiSettings,
  geminiToolPolicyFor,
} from '../../src/workers/gemini';

const READ_ONLY_ROLES: Role[] = ['reviewer', 'planner', 'adjudicator', 'redteam'];
/** `a reviewer`, `an adjudicator`: test names read as sentences. */
function withArticle(name: string): string {
  return /^[aeiou]/.test(name) ? `an ${name}` : `a ${name}`;
}
const WRITE_EXCLUSIONS = [
  'sandbox_workspace_write.exclude_slash_tmp=true',
  'sandbox_workspace_write.exclude_tmpdir_env_var=true',
  'sandbox_workspace_write.network_access=false',
];
const CWD = '/home/dev/project';
const LAST_MESSAGE = '/home/dev/.tandem/state/codex-step-1/last-message.txt';

/** The flag tokens (elements starting with `-`) of each template, in order. */
function codexFlags(sandbox: CodexSandbox, offline: boolean): string[] {
  return [
    '--json',
    '--skip-git-repo-check',
    '--ephemeral',
    '--sandbox',
    '-C',
    '-o',
    '-m',
    '-c',
    '-c',
    '-c',
    '--disable',
    ...(sandbox === 'workspace-write' ? ['-c', '-c', '-c'] : []),
    ...(offline ? ['-c', '-c'] : []),
    '--',
    '-',
  ];
}
const GEMINI_FLAGS = ['--approval-mode', '--output-format', '--model'];

function flagTokens(argv: string[]): string[] {
  return argv.filter((arg) => arg.startsWith('-'));
}

/** The `-c` values of an argv. */
function configValues(argv: string[]): string[] {
  return argv.flatMap((arg, index) => (arg === '-c' ? [argv[index + 1] ?? ''] : []));
}

/** Indexes where two argvs differ (they must have the same length). */
function differingSlots(a: string[], b: string[]): number[] {
  assert.equal(a.length, b.length);
  return a.flatMap((arg, index) => (arg === b[index] ? [] : [index]));
}

// modelNameSchema, restated without a regex: a letter or digit, then up to 99 of those or . _ : / -
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const MODEL_REST = `${ALNUM}._:/-`;
function isValidModelName(name: string): boolean {
  const units = name.split('');
  return (
    units.length >= 1 &&
    units.length <= 100 &&
    ALNUM.includes(units[0] ?? '') &&
    units.every((unit) => MODEL_REST.includes(unit))
  );
}

const alnumChar = fc.constantFrom(...ALNUM.split(''));
const modelChar = fc.constantFrom(...MODEL_REST.split(''));
/** Any valid model name, plus names that collide with template tokens (`exec`, `plan`, ...). */
const modelName = fc.oneof(
  fc.tuple(alnumChar, fc.string({ unit: modelChar, maxLength: 99 })).map(([first, rest]) => first + rest),
  fc.constantFrom('gpt-5.5', 'gemini-2.5-flash', 'models/x', 'org/model:tag', 'exec', 'plugins', 'plan'),
  fc.constantFrom('read-only', 'workspace-write', 'auto_edit', 'stream-json', 'approval_policy'),
);
const role = fc.constantFrom(...ROLES);
const absolutePath = fc
  .array(fc.string({ unit: fc.constantFrom(...`${ALNUM} ._-`.split('')), minLength: 1, maxLength: 12 }), {
    minLength: 1,
    maxLength: 5,
  })
  .map((segments) => `/${segments.join('/')}`);

const PATH_CHARS = `${ALNUM}/_-`;
const loopbackUrl = fc
  .tuple(
    fc.integer({ min: 1, max: 65535 }),
    fc.option(fc.string({ unit: fc.constantFrom(...PATH_CHARS.split('')), maxLength: 30 }), {
      nil: undefined,
    }),
  )
  .map(([port, tail]) => `http://127.0.0.1:${port}${tail === undefined ? '' : `/${tail}`}`);

/** The loopback URL rule, restated without a regex: http://127.0.0.1:<1-5 digits>[/<path chars>]. */
function isLoopbackUrl(url: string): boolean {
  const prefix = 'http://127.0.0.1:';
  if (!url.startsWith(prefix)) return false;
  const rest = url.slice(prefix.length);
  const slash = rest.indexOf('/');
  const port = slash === -1 ? rest : rest.slice(0, slash);
  const tail = slash === -1 ? '' : rest.slice(slash + 1);
  return (
    port.length >= 1 &&
    port.length <= 5 &&
    port.split('').every((c) => '0123456789'.includes(c)) &&
    tail.split('').every((c) => PATH_CHARS.includes(c))
  );
}

function request(overrides: Record<string, unknown>) {
  return { kind: 'codex' as const, role: 'writer' as const, cwd: '.', prompt: 'Fix the bug.', ...overrides };
}

function refusedWith(pattern: RegExp): (error: unknown) => true {
  return (error: unknown) => {
    assert.ok(error instanceof StepRequestError, `expected a StepRequestError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  };
}

describe('codex command template', () => {
  it('gives a writer the workspace-write sandbox', () => {
    assert.equal(codexSandboxFor('writer'), 'workspace-write');
  });

  for (const readOnlyRole of READ_ONLY_ROLES) {
    it(`gives ${withArticle(readOnlyRole)} the read-only sandbox`, () => {
      assert.equal(codexSandboxFor(readOnlyRole), 'read-only');
    });
  }

  it('renders the whole writer argv: fixed flags, typed slots, the prompt on stdin', () => {
    const argv = codexArgs({
      sandbox: 'workspace-write',
      cwd: CWD,
      model: 'gpt-5.5',
      lastMessageFile: LAST_MESSAGE,
    });
    assert.deepEqual(argv, [
      'exec',
      '--json',
      '--skip-git-repo-check',
      '--ephemeral',
      '--sandbox',
      'workspace-write',
      '-C',
      CWD,
      '-o',
      LAST_MESSAGE,
      '-m',
      'gpt-5.5',
      '-c',
      'approval_policy="never"',
      '-c',
      'analytics.enabled=false',
      '-c',
      'check_for_update_on_startup=false',
      '--disable',
      'plugins',
      '-c',
      'sandbox_workspace_write.exclude_slash_tmp=true',
      '-c',
      'sandbox_workspace_write.exclude_tmpdir_env_var=true',
      '-c',
      'sandbox_workspace_write.network_access=false',
      '--',
      '-',
    ]);
  });

  it('keeps a writer off /tmp, $TMPDIR and the network', () => {
    const argv = codexArgs({
      sandbox: 'workspace-write',
      cwd: CWD,
      model: 'gpt-5.5',
      lastMessageFile: LAST_MESSAGE,
    });
    for (const exclusion of WRITE_EXCLUSIONS) assert.ok(configValues(argv).includes(exclusion), exclusion);
  });

  for (const readOnlyRole of READ_ONLY_ROLES) {
    it(`runs ${withArticle(readOnlyRole)} read-only, with no workspace-write settings`, () => {
      const argv = codexArgs({
        sandbox: codexSandboxFor(readOnlyRole),
        cwd: CWD,
        model: 'gpt-5.5',
        lastMessageFile: LAST_MESSAGE,
      });
      assert.equal(argv[argv.indexOf('--sandbox') + 1], 'read-only');
      assert.ok(argv.every((arg) => !arg.startsWith('sandbox_workspace_write.')));
      assert.deepEqual(flagTokens(argv), codexFlags('read-only', false));
    });
  }

  it('never lets codex ask for approval, in either sandbox', () => {
    for (const sandbox of ['read-only', 'workspace-write'] as const) {
      const argv = codexArgs({ sandbox, cwd: CWD, model: 'gpt-5.5', lastMessageFile: LAST_MESSAGE });
      assert.ok(configValues(argv).includes('approval_policy="never"'), sandbox);
      assert.ok(!argv.includes('danger-full-access'));
      assert.ok(!argv.includes('--dangerously-bypass-approvals-and-sandbox'));
    }
  });

  it('points codex at the offline model through one provider table', () => {
    const argv = codexArgs({
      sandbox: 'read-only',
      cwd: CWD,
      model: 'gpt-5.5',
      lastMessageFile: LAST_MESSAGE,
      offlineBaseUrl: 'http://127.0.0.1:41667/v1',
      streamIdleTimeoutMs: 20_000,
    });
    assert.deepEqual(configValues(argv).slice(-2), [
      'model_provider="tandem_offline"',
      'model_providers.tandem_offline={name="Tandem offline model",base_url="http://127.0.0.1:41667/v1",' +
        'wire_api="responses",env_key="TANDEM_OFFLINE_API_KEY",supports_websockets=false,' +
        'request_max_retries=0,stream_max_retries=0,stream_idle_timeout_ms=20000}',
    ]);
    assert.deepEqual(argv.slice(-2), ['--', '-']);
  });

  it('refuses an offline URL that is not http://127.0.0.1:PORT/...', () => {
    for (const url of [
      'http://localhost:8080/v1',
      'https://127.0.0.1:8080/v1',
      'http://127.0.0.1/v1',
      'http://127.0.0.1:8080/v1?x=1',
      'http://127.0.0.1:80@evil.example/v1',
      'http://127.0.0.1.evil.example:80/v1',
      'http://127.0.0.1:123456/v1',
      'http://127.0.0.1:8080/v1\n',
      'http://127.0.0.1:8080/v1",env_key="OPENAI_API_KEY',
      'http://127.0.0.1:8080/v1"}\nmodel_provider="openai',
      '',
    ]) {
      assert.throws(
        () =>
          codexArgs({
            sandbox: 'read-only',
            cwd: CWD,
            model: 'gpt-5.5',
            lastMessageFile: LAST_MESSAGE,
            offlineBaseUrl: url,
          }),
        /The offline model URL must be http:\/\/127\.0\.0\.1:PORT/,
        JSON.stringify(url),
      );
    }
  });
});

describe('codex command template properties', () => {
  it('has exactly the template flags, in order, for any model, role, paths and endpoint', () => {
    fc.assert(
      fc.property(
        modelName,
        role,
        absolutePath,
        absolutePath,
        fc.option(loopbackUrl, { nil: undefined }),
        (model, stepRole, cwd, lastMessageFile, offlineBaseUrl) => {
          const sandbox = codexSandboxFor(stepRole);
          const argv = codexArgs({ sandbox, cwd, model, lastMessageFile, offlineBaseUrl });
          assert.deepEqual(flagTokens(argv), codexFlags(sandbox, offlineBaseUrl !== undefined));
          assert.equal(argv[0], 'exec');
          assert.equal(
            argv[argv.indexOf('--sandbox') + 1],
            stepRole === 'writer' ? 'workspace-write' : 'read-only',
          );
          assert.equal(argv[argv.indexOf('-C') + 1], cwd);
          assert.equal(argv[argv.indexOf('-o') + 1], lastMessageFile);
          assert.deepEqual(argv.slice(-2), ['--', '-']);
          assert.equal(
            WRITE_EXCLUSIONS.every((exclusion) => configValues(argv).includes(exclusion)),
            stepRole === 'writer',
          );
        },
      ),
    );
  });

  it('puts the model in exactly one slot, the one right after -m', () => {
    fc.assert(
      fc.property(modelName, role, (model, stepRole) => {
        const render = (name: string) =>
          codexArgs({
            sandbox: codexSandboxFor(stepRole),
            cwd: CWD,
            model: name,
            lastMessageFile: LAST_MESSAGE,
          });
        const argv = render(model);
        const slot = argv.indexOf('-m');
        assert.equal(argv.filter((arg) => arg === '-m').length, 1);
        assert.ok(!argv.includes('--model'));
        assert.equal(argv[slot + 1], model);
        // Against a name no template token equals, only the model slot changes.
        assert.deepEqual(differingSlots(argv, render('x')), model === 'x' ? [] : [slot + 1]);
      }),
    );
  });

  it('accepts an offline URL exactly when it is http://127.0.0.1:PORT[/path]', () => {
    const hostileChar = fc.constantFrom(
      '"',
      "'",
      '{',
      '}',
      ',',
      '=',
      ' ',
      '\n',
      '\\',
      '[',
      ']',
      '#',
      '?',
      '@',
      '.',
    );
    const hostileUrl = fc.oneof(
      fc
        .tuple(loopbackUrl, fc.string({ unit: hostileChar, minLength: 1, maxLength: 3 }), fc.string())
        .map(([url, junk, more]) => url + junk + more),
      fc.tuple(fc.string(), loopbackUrl).map(([junk, url]) => junk + url),
      fc.string({ unit: 'binary' }),
    );
    fc.assert(
      fc.property(fc.oneof(loopbackUrl, hostileUrl), (url) => {
        const render = () =>
          codexArgs({
            sandbox: 'workspace-write',
            cwd: CWD,
            model: 'gpt-5.5',
            lastMessageFile: LAST_MESSAGE,
            offlineBaseUrl: url,
          });
        if (!isLoopbackUrl(url)) {
          assert.throws(render, /The offline model URL must be http:\/\/127\.0\.0\.1:PORT/);
          return;
        }
        const argv = render();
        const holders = argv.filter((arg) => arg.includes(url));
        assert.equal(holders.length, 1);
        const table = holders[0] ?? '';
        assert.ok(table.startsWith('model_providers.tandem_offline={') && table.endsWith('}'));
        assert.equal(table.split(`base_url="${url}"`).length, 2);
        // Split on the table's own separators: the URL added no key and no value.
        const entries = table.slice('model_providers.tandem_offline={'.length, -1).split(',');
        assert.deepEqual(
          entries.map((entry) => entry.slice(0, entry.indexOf('='))),
          [
            'name',
            'base_url',
            'wire_api',
            'env_key',
            'supports_websockets',
            'request_max_retries',
            'stream_max_retries',
            'stream_idle_timeout_ms',
          ],
        );
        assert.equal(entries[1], `base_url="${url}"`);
      }),
    );
  });
});

describe('gemini command template', () => {
  it('gives a writer the edit policy', () => {
    assert.equal(geminiToolPolicyFor('writer'), 'edit');
  });

  for (const readOnlyRole of READ_ONLY_ROLES) {
    it(`gives ${withArticle(readOnlyRole)} the read-only policy`, () => {
      assert.equal(geminiToolPolicyFor(readOnlyRole), 'read-only');
    });
  }

  it('renders the whole argv: fixed flags, typed slots, no prompt, no --skip-trust', () => {
    assert.deepEqual(geminiArgs({ model: 'gemini-2.5-flash' }), [
      '--approval-mode',
      'default',
      '--output-format',
      'stream-json',
      '--model',
      'gemini-2.5-flash',
    ]);
  });

  it('tells gemini not to trust the workspace', () => {
    assert.deepEqual(GEMINI_UNTRUSTED_ENV, { GEMINI_CLI_TRUST_WORKSPACE: 'false' });
  });

  it('never runs any role in yolo mode', () => {
    const argv = geminiArgs({ model: 'gemini-2.5-flash' });
    assert.ok(!argv.includes('yolo') && !argv.includes('--yolo') && !argv.includes('-y'));
  });

  it('writes settings that try once, ignore a workspace .env, skip folder trust, load no agents or hooks and send no telemetry', () => {
    const settings = geminiSettings({ model: 'gemini-2.5-flash', authType: 'gemini-api-key' });
    assert.deepEqual(settings, {
      security: { auth: { selectedType: 'gemini-api-key' }, folderTrust: { enabled: false } },
      general: { disableAutoUpdate: true, disableUpdateNag: true, maxAttempts: 1 },
      privacy: { usageStatisticsEnabled: false },
      telemetry: { enabled: false },
      ide: { enabled: false },
      model: { name: 'gemini-2.5-flash' },
      advanced: { ignoreLocalEnv: true },
      experimental: { enableAgents: false },
      hooksConfig: { enabled: false },
    });
  });

  it('lets a writer edit through the allowed-path checker, and denies shell, web fetch and skills', () => {
    assert.equal(
      geminiPolicy('edit'),
      [
        '# Written by Tandem for one step; rebuilt for every step.',
        '[[rule]]',
        'toolName = ["run_shell_command", "activate_skill", "web_fetch"]',
        'decision = "deny"',
        'priority = 900',
        '',
        '[[rule]]',
        'toolName = "write_file"',
        'decision = "allow"',
        'priority = 100',
        '',
        '[[safety_checker]]',
        'toolName = "write_file"',
        'priority = 100',
        '[safety_checker.checker]',
        'type = "in-process"',
        'name = "allowed-path"',
        'required_context = ["environment"]',
        '',
        '[[rule]]',
        'toolName = "replace"',
        'decision = "allow"',
        'priority = 100',
        '',
        '[[safety_checker]]',
        'toolName = "replace"',
        'priority = 100',
        '[safety_checker.checker]',
        'type = "in-process"',
        'name = "allowed-path"',
        'required_context = ["environment"]',
        '',
      ].join('\n'),
    );
  });

  it('denies a read-only role every edit, shell, web fetch and skill, and allows nothing', () => {
    const policy = geminiPolicy('read-only');
    assert.match(
      policy,
      /^toolName = \["write_file", "replace", "run_shell_command", "activate_skill", "web_fetch"\]\ndecision = "deny"$/m,
    );
    assert.doesNotMatch(policy, /"allow"/);
  });
});

describe('gemini command template properties', () => {
  it('has exactly the template flags, the model right after --model, and no prompt flag', () => {
    fc.assert(
      fc.property(modelName, role, (model, stepRole) => {
        const render = (name: string) => geminiArgs({ model: name });
        const argv = render(model);
        assert.deepEqual(flagTokens(argv), GEMINI_FLAGS);
        const slot = argv.indexOf('--model');
        assert.equal(argv[slot + 1], model);
        assert.deepEqual(differingSlots(argv, render('x')), model === 'x' ? [] : [slot + 1]);
        assert.equal(argv[argv.indexOf('--approval-mode') + 1], 'default');
        assert.ok(!argv.includes('--skip-trust'), stepRole);
        assert.ok(argv.every((arg) => arg !== '-p' && arg !== '--prompt' && !arg.startsWith('--prompt=')));
        assert.ok(!argv.includes('yolo'));
      }),
    );
  });

  it('keeps the fixed settings for any model and auth type', () => {
    fc.assert(
      fc.property(
        modelName,
        fc.constantFrom('gemini-api-key', 'vertex-ai', 'oauth-personal'),
        (model, authType) => {
          const settings = geminiSettings({ model, authType }) as {
            general: { maxAttempts: number };
            advanced: { ignoreLocalEnv: boolean };
            security: { folderTrust: { enabled: boolean }; auth: { selectedType: string } };
            telemetry: { enabled: boolean };
            privacy: { usageStatisticsEnabled: boolean };
            model: { name: string };
          };
          assert.equal(settings.general.maxAttempts, 1);
          assert.equal(settings.advanced.ignoreLocalEnv, true);
          assert.equal(settings.security.folderTrust.enabled, false);
          assert.equal(settings.telemetry.enabled, false);
          assert.equal(settings.privacy.usageStatisticsEnabled, false);
          assert.equal(settings.model.name, model);
          assert.equal(settings.security.auth.selectedType, authType);
        },
      ),
    );
  });
});

describe('model names', () => {
  it('accepts every name built from the schema alphabet', () => {
    fc.assert(
      fc.property(modelName, (model) => {
        assert.ok(isValidModelName(model), model);
        assert.equal(modelNameSchema.safeParse(model).success, true);
        assert.equal(parseStepRequest(request({ model }), 'codex').model, model);
      }),
    );
  });

  const badChar = fc.constantFrom(
    ' ',
    '\t',
    '\n',
    '\r',
    '"',
    "'",
    '=',
    '`',
    '$',
    ';',
    '{',
    '}',
    ',',
    '\\',
    '\0',
    'é',
  );
  const invalidModelName = fc.oneof(
    fc.string({ maxLength: 20 }).map((rest) => `-${rest}`),
    fc
      .tuple(modelName, badChar, fc.nat())
      .map(
        ([name, bad, at]) => name.slice(0, at % (name.length + 1)) + bad + name.slice(at % (name.length + 1)),
      ),
    fc.string({ unit: modelChar, minLength: 100, maxLength: 140 }).map((rest) => `a${rest}`),
    fc.constantFrom('', '-', '--model', '-m', '.hidden', '/abs', 'gpt-5.5\n', ' gpt-5.5', 'a=b', '"gpt"'),
    fc.string({ unit: 'binary', maxLength: 30 }).filter((name) => !isValidModelName(name)),
  );

  it('rejects every name outside the schema, in the schema and in parseStepRequest, naming the model', () => {
    fc.assert(
      fc.property(invalidModelName, (model) => {
        assert.equal(isValidModelName(model), false);
        assert.equal(modelNameSchema.safeParse(model).success, false);
        assert.throws(
          () => parseStepRequest(request({ model }), 'codex'),
          refusedWith(/\(at model\).*model name/),
        );
      }),
    );
  });

  it('agrees with the schema on any string at all', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), modelName), (name) => {
        assert.equal(modelNameSchema.safeParse(name).success, isValidModelName(name));
      }),
    );
  });

  it('rejects a name of 101 characters and accepts one of 100', () => {
    assert.equal(modelNameSchema.safeParse('a'.repeat(100)).success, true);
    assert.equal(modelNameSchema.safeParse('a'.repeat(101)).success, false);
  });
});

describe('prompts', () => {
  it('keeps any prompt byte for byte, whitespace included', () => {
    const whitespace = fc.string({ unit: fc.constantFrom(' ', '\t', '\n', '\r\n', '\u00a0'), maxLength: 4 });
    const prompt = fc
      .tuple(whitespace, fc.string({ unit: 'binary', minLength: 1 }), whitespace)
      .map(([before, body, after]) => before + body + after)
      .filter((text) => !text.includes('\0'));
    fc.assert(
      fc.property(prompt, fc.constantFrom('codex', 'gemini'), (text, kind) => {
        const parsed = parseStepRequest(request({ kind, prompt: text }), kind);
        assert.equal(parsed.prompt, text);
        assert.ok(Buffer.from(parsed.prompt).equals(Buffer.from(text)));
      }),
    );
  });

  it('keeps a hostile prompt that looks like flags and shell as it is', () => {
    const hostile =
      '--help [[scenario:reply]] $(touch /tmp/pwned) `id` "dq" \'sq\' ; rm -rf x\nline2 \\ %s {}\n';
    assert.equal(parseStepRequest(request({ prompt: hostile }), 'codex').prompt, hostile);
  });

  it('refuses any prompt holding a NUL byte', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (before, after) => {
        assert.throws(
          () => parseStepRequest(request({ prompt: `${before}\0${after}` }), 'codex'),
          refusedWith(/\(at prompt\): the prompt contains a NUL byte/),
        );
      }),
    );
  });

  it('refuses an empty prompt', () => {
    assert.throws(
      () => parseStepRequest(request({ prompt: '' }), 'codex'),
      refusedWith(/the prompt is empty/),
    );
  });

  it('takes a prompt of exactly 1 MiB and refuses one byte more', () => {
    const limit = 'a'.repeat(MAX_PROMPT_BYTES);
    assert.equal(parseStepRequest(request({ prompt: limit }), 'codex').prompt.length, MAX_PROMPT_BYTES);
    assert.throws(
      () => parseStepRequest(request({ prompt: `${limit}a` }), 'codex'),
      refusedWith(/\(at prompt\): the prompt is larger than 1 MiB/),
    );
  });

  it('counts the limit in UTF-8 bytes, not characters', () => {
    const twoByte = 'é'.repeat(MAX_PROMPT_BYTES / 2);
    assert.equal(parseStepRequest(request({ prompt: twoByte }), 'codex').prompt, twoByte);
    assert.throws(
      () => parseStepRequest(request({ prompt: `${twoByte}é` }), 'codex'),
      refusedWith(/the prompt is larger than 1 MiB/),
    );
    const fourByte = '😀'.repeat(MAX_PROMPT_BYTES / 4);
    assert.equal(parseStepRequest(request({ prompt: fourByte }), 'codex').prompt, fourByte);
    assert.throws(() => parseStepRequest(request({ prompt: `${fourByte}x` }), 'codex'), refusedWith(/1 MiB/));
  });

  it('refuses a request for the other kind of worker', () => {
    assert.throws(
      () => parseStepRequest(request({ kind: 'gemini' }), 'codex'),
      refusedWith(/This is the codex adapter; the request asks for gemini/),
    );
  });
});
