// The OS sandbox (bubblewrap) around verification commands: real bwrap, real processes, real files. A planted
// secret in a fake HOME, writes outside the copy, the host's /tmp, a loopback listener and the host's pid space
// stay out of reach; a double-forked daemon dies with the step; "required" refuses without bubblewrap, "auto"
// says so in the run summary.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startProcess } from '../../src/core/exec';
import { findTree } from '../../src/core/exec/tree';
import { Sandbox, clearSandboxProbeCache, sandboxExecProfile } from '../../src/core/sandbox';
import type { RunSummary } from '../../src/orchestrator/summary';
import { builtinPlaybook } from '../../src/orchestrator/playbook/library';
import { resolveInputs } from '../../src/orchestrator/playbook/schema';
import { openHarness, type McpHarness } from '../support/mcp-harness';
import { FIXTURES, fixture, killQuietly, waitUntilGone } from '../support/processes';

// Outside /tmp, so the sandbox's private /tmp holds no mount point of ours and must be empty.
function tempDir(prefix: string): string {
  return mkdtempSync(path.join('/var/tmp', prefix));
}

/** What the verification command reports from inside: each probe's outcome as JSON on stdout. */
const PROBE_SCRIPT = `
const fs = require('fs');
const net = require('net');
const out = {};
const attempt = (name, fn) => { try { out[name] = fn(); } catch (error) { out[name] = 'refused:' + error.code; } };
const config = JSON.parse(fs.readFileSync('probe-config.json', 'utf8'));
attempt('ssh', () => fs.readFileSync(config.ssh, 'utf8'));
attempt('writeRoot', () => { fs.writeFileSync(config.rootFile, 'x'); return 'written'; });
attempt('writeEtc', () => { fs.writeFileSync(config.etcFile, 'x'); return 'written'; });
attempt('writeCopy', () => { fs.writeFileSync('written-in-copy.txt', 'x'); return 'written'; });
attempt('tmp', () => fs.readdirSync(config.tmp));
out.pid = process.pid;
const socket = net.connect(config.port, '127.0.0.1');
const done = (result) => { out.connect = result; socket.destroy(); console.log('PROBE ' + JSON.stringify(out)); };
socket.on('connect', () => done('connected'));
socket.on('error', (error) => done('refused:' + error.code));
`;

describe('OS sandbox of verification commands (bubblewrap)', function () {
  this.timeout(60_000);
  let harness: McpHarness | undefined;
  let home: string;
  let savedHome: string | undefined;
  let listener: net.Server;
  let port: number;
  const hostTmpFile = path.join(os.tmpdir(), `tandem-sandbox-planted-${process.pid}`);

  beforeEach(async function () {
    clearSandboxProbeCache();
    home = tempDir('tandem-sandbox-home-');
    mkdirSync(path.join(home, '.ssh'));
    writeFileSync(path.join(home, '.ssh', 'id_ed25519'), 'PLANTED-SECRET-KEY\n');
    savedHome = process.env.HOME;
    process.env.HOME = home;
    writeFileSync(hostTmpFile, 'host tmp\n');
    listener = net.createServer((socket) => socket.end());
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    port = (listener.address() as net.AddressInfo).port;
  });

  afterEach(async function () {
    process.env.HOME = savedHome;
    await harness?.close();
    harness = undefined;
    await new Promise((resolve) => listener?.close(resolve));
    rmSync(hostTmpFile, { force: true });
    rmSync(home, { recursive: true, force: true });
  });

  async function workspace(): Promise<string> {
    const root = tempDir('tandem-sandbox-ws-');
    writeFileSync(path.join(root, 'README.md'), '# sandboxed\n');
    writeFileSync(
      path.join(root, 'probe-config.json'),
      JSON.stringify({
        ssh: path.join(home, '.ssh', 'id_ed25519'),
        rootFile: path.join(root, 'escaped.txt'),
        etcFile: '/etc/tandem-sandbox-escape',
        tmp: '/tmp',
        port,
      }),
    );
    return root;
  }

  async function runVerify(
    mode: 'required' | 'auto' | 'off',
    bwrapPath?: string,
  ): Promise<{ summary: RunSummary; log: string; root: string }> {
    const root = await workspace();
    harness = await openHarness({ root, sandbox: mode, ...(bwrapPath ? { bwrapPath } : {}) });
    const loaded = builtinPlaybook('parallel_adjudicate');
    assert.ok(loaded);
    const { orchestrator, store } = harness.services;
    const started = await orchestrator.startPlaybook({
      owner: 'agent-a',
      task: '[[role:writer cli=codex scenario=write path=a.txt content=one]] [[role:writer cli=gemini scenario=write path=a.txt content=two]] Write a.txt.',
      playbook: loaded.playbook,
      source: loaded.source,
      hash: loaded.hash,
      inputs: resolveInputs(loaded.playbook, { verify: ['node', '-e', PROBE_SCRIPT] }, loaded.source),
      apply: 'never',
    });
    await orchestrator.finished(started.id);
    const summary = JSON.parse((await store.readRunFile(started.id, 'summary.json')) ?? '{}') as RunSummary;
    const log = (await store.readRunFile(started.id, 'verify-verify_codex.log')) ?? '';
    return { summary, log, root };
  }

  function probeOf(log: string): Record<string, unknown> {
    const line = log.split('\n').find((text) => text.startsWith('PROBE '));
    assert.ok(line, `the verification printed its probe:\n${log}`);
    return JSON.parse(line.slice('PROBE '.length)) as Record<string, unknown>;
  }

  it('keeps a verification command to its copy: no home secret, no write outside, an empty /tmp, no network, its own pids', async function () {
    const { log, root, summary } = await runVerify('required');
    const probe = probeOf(log);
    assert.equal(probe.ssh, 'refused:ENOENT', 'the planted ~/.ssh key is not there');
    assert.match(String(probe.writeRoot), /^refused:E(ROFS|NOENT|ACCES)$/, 'no write to the workspace root');
    assert.equal(existsSync(path.join(root, 'escaped.txt')), false);
    assert.equal(probe.writeEtc, 'refused:EROFS', 'no write to /etc');
    assert.equal(probe.writeCopy, 'written', "the copy's own write works");
    assert.deepEqual(probe.tmp, [], 'a private, empty /tmp');
    assert.equal(probe.connect, 'refused:ECONNREFUSED', 'the loopback listener is out of reach');
    assert.ok(Number(probe.pid) <= 3, `a low pid in its own namespace, got ${String(probe.pid)}`);
    assert.deepEqual(summary.warnings, []);
    rmSync(root, { recursive: true, force: true });
  });

  it('without the sandbox ("off") the same command reaches all of them, so the test above can fail', async function () {
    const { log, root } = await runVerify('off');
    const probe = probeOf(log);
    assert.equal(probe.ssh, 'PLANTED-SECRET-KEY\n');
    assert.equal(probe.connect, 'connected');
    assert.ok(Number(probe.pid) > 3);
    rmSync(root, { recursive: true, force: true });
  });

  it('"required" refuses to start the command when bubblewrap is missing, and says how to install it', async function () {
    const { log, root } = await runVerify('required', path.join(home, 'no-such-bwrap'));
    assert.doesNotMatch(log, /^PROBE \{/m, 'nothing ran');
    assert.match(log, /sandbox is required.*bubblewrap was not found.*apt-get install bubblewrap/);
    assert.match(log, /\(exit none\)/);
    rmSync(root, { recursive: true, force: true });
  });

  it('"auto" runs without bubblewrap and puts the warning in summary.json and summary.md', async function () {
    const { summary, log, root } = await runVerify('auto', path.join(home, 'no-such-bwrap'));
    assert.match(log, /^PROBE \{/m, 'the command ran unsandboxed');
    assert.equal(summary.warnings.length, 1);
    assert.match(
      summary.warnings[0] ?? '',
      /No OS sandbox: bubblewrap was not found.*verification commands run without one \(sandbox mode "auto"\)\. Install bubblewrap/,
    );
    const markdown = (await harness?.services.store.readRunFile(summary.run.id, 'summary.md')) ?? '';
    assert.match(markdown, /## Warnings\n\n- No OS sandbox: bubblewrap was not found/);
    rmSync(root, { recursive: true, force: true });
  });

  for (const how of ['cancelled', 'timed out'] as const) {
    it(`ends a double-forked setsid daemon started inside the sandbox when the step is ${how}`, async function () {
      const copy = tempDir('tandem-sandbox-copy-');
      const sandbox = new Sandbox({ mode: 'required' });
      const wrapped = await sandbox.wrap({
        command: process.execPath,
        args: [fixture('fork-grandchild.cjs'), '--detach', '--ignore-sigterm'],
        cwd: copy,
        policy: { writable: [copy], readable: [FIXTURES], network: false },
      });
      assert.equal(wrapped.sandboxed, 'bubblewrap');
      let reported!: () => void;
      const started = new Promise<void>((resolve) => (reported = resolve));
      const running = startProcess({
        command: wrapped.command,
        args: wrapped.args,
        cwd: copy,
        killGraceMs: 500,
        // The timeout case: long enough for the fixture to report on a loaded machine, then it ends the step.
        ...(how === 'timed out' ? { timeoutMs: 8000 } : {}),
        onStdout: (chunk) => {
          if (chunk.includes('grandchildPid')) reported();
        },
      });
      await started;
      const pids = findTree(running.pid as number, running.pid as number).map((identity) => identity.pid);
      // bwrap, its init, the fixture and the daemon (in a session of its own) at least.
      assert.ok(pids.length >= 4, `the sandbox's processes as the host sees them: ${pids.join(', ')}`);
      try {
        if (how === 'cancelled') running.cancel();
        const result = await running.result;
        assert.equal(how === 'cancelled' ? result.cancelled : result.timedOut, true);
        assert.deepEqual(await waitUntilGone(pids, 10_000), [], 'every process of the sandbox is gone');
      } finally {
        killQuietly(pids);
        rmSync(copy, { recursive: true, force: true });
      }
    });
  }

  it("shows a read-only folder without Tandem's state in it, and never the user's home", async function () {
    const root = await workspace();
    mkdirSync(path.join(root, '.tandem', 'runs', 'other-run'), { recursive: true });
    writeFileSync(path.join(root, '.tandem', 'runs', 'other-run', 'summary.json'), '{}');
    const script =
      "const fs = require('fs'); const r = (f) => { try { return f(); } catch (e) { return 'refused:' + e.code; } };" +
      "console.log(JSON.stringify({ state: r(() => fs.readdirSync('.tandem')), readme: r(() => fs.readFileSync('README.md', 'utf8')), write: r(() => fs.writeFileSync('x.txt', 'x')), home: r(() => fs.readdirSync(process.argv[1])) }));";
    const wrapped = await new Sandbox({ mode: 'required', userHome: home }).wrap({
      command: process.execPath,
      args: ['-e', script, home],
      cwd: root,
      // A folder above the home asked for as readable is left out, not shown with the home in it.
      policy: { writable: [], readable: [root, path.dirname(home)], network: true },
    });
    const result = await startProcess({ command: wrapped.command, args: wrapped.args, cwd: root }).result;
    assert.equal(result.exitCode, 0, result.stderr.text);
    assert.deepEqual(JSON.parse(result.stdout.text), {
      state: [],
      readme: '# sandboxed\n',
      write: 'refused:EROFS',
      home: 'refused:ENOENT',
    });
    rmSync(root, { recursive: true, force: true });
  });

  it('ends the daemon when the command itself exits, with no cancel at all: the pid namespace goes with it', async function () {
    const copy = tempDir('tandem-sandbox-copy-');
    const wrapped = await new Sandbox({ mode: 'required' }).wrap({
      command: process.execPath,
      args: [
        '-e',
        "const { spawn } = require('child_process'); const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' }); c.unref(); require('fs').writeFileSync('daemon.pid', String(c.pid)); setTimeout(() => process.exit(0), 300);",
      ],
      cwd: copy,
      policy: { writable: [copy], network: false },
    });
    const seen: number[] = [];
    const running = startProcess({ command: wrapped.command, args: wrapped.args, cwd: copy });
    const watch = setInterval(() => {
      for (const identity of findTree(running.pid as number, running.pid as number)) {
        if (!seen.includes(identity.pid)) seen.push(identity.pid);
      }
    }, 20);
    try {
      const result = await running.result;
      assert.equal(result.exitCode, 0, result.stderr.text);
      assert.ok(readFileSync(path.join(copy, 'daemon.pid'), 'utf8').length > 0);
      assert.deepEqual(await waitUntilGone(seen, 10_000), []);
    } finally {
      clearInterval(watch);
      killQuietly(seen);
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('reports bubblewrap in the status: path, version, and that it works', async function () {
    const status = await new Sandbox({ mode: 'auto' }).status();
    assert.equal(status.tool, 'bubblewrap');
    assert.equal(status.path, '/usr/bin/bwrap');
    assert.match(status.version ?? '', /^\d+\.\d+/);
    assert.equal(status.works, true);
    assert.equal(status.problem, null);
    const off = await new Sandbox({ mode: 'off' }).status();
    assert.equal(off.works, false);
    assert.equal(off.mode, 'off');
  });

  it('writes a sandbox-exec profile for macOS with the same rules (text only: not run on this machine)', function () {
    const profile = sandboxExecProfile({
      policy: { writable: ['/w/copy', '/w/step "dir"'], network: false },
      readable: ['/opt/node'],
      userHome: '/Users/me',
    });
    assert.match(profile, /^\(version 1\)\n\(allow default\)\n/);
    assert.match(profile, /\(deny file-read\* \(subpath "\/Users\/me"\)\)/);
    assert.match(profile, /\(allow file-read\* \(subpath "\/opt\/node"\) \(subpath "\/w\/copy"\)/);
    assert.match(
      profile,
      /\(deny file-write\*\)\n\(allow file-write\* \(subpath "\/w\/copy"\) \(subpath "\/w\/step \\"dir\\""\)/,
    );
    assert.match(profile, /\(deny network\*\)\n$/);
    const online = sandboxExecProfile({
      policy: { writable: [], network: true },
      readable: [],
      userHome: '/Users/me',
    });
    assert.doesNotMatch(online, /network/);
    assert.doesNotMatch(online, /\(allow file-read\*/, 'no filterless allow that would allow every read');
  });
});
