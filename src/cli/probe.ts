// `tandem-mcp probe`: is each CLI installed, which version, in the tested range, how it would authenticate.
import path from 'node:path';
import { defaultProcessRegistry, describeContainment } from '../core/exec';
import { SANDBOX_MODES, Sandbox, sandboxWarning, type SandboxStatus } from '../core/sandbox';
import type { ProbeResult } from '../workers/contract';
import { buildProbeReport, probeAll } from '../workers/probe';
import { EXIT, parseArgs } from './args';

export function describeProbe(result: ProbeResult): string {
  const lines = [`${result.kind}: ${result.installed ? 'installed' : 'not installed'}`];
  const row = (label: string, value: string): void => {
    lines.push(`  ${`${label}:`.padEnd(10)} ${value}`);
  };
  if (result.installed) {
    row('path', result.path ?? '-');
    const range = result.versionInTestedRange ? 'in the tested range' : 'outside the tested range';
    row(
      'version',
      result.version === null ? 'unknown' : `${result.version} (${range} ${result.testedRange})`,
    );
    const features = Object.entries(result.features)
      .filter(([, present]) => present)
      .map(([name]) => name);
    row('features', features.length > 0 ? features.join(', ') : 'none known');
  } else {
    row('install', result.installHint);
  }
  row('auth', result.auth.source === null ? result.auth.mode : `${result.auth.mode} (${result.auth.source})`);
  if (result.error !== null) row('error', result.error);
  for (const warning of result.warnings) row('warning', warning);
  return lines.join('\n');
}

function describeProcessContainment(): string {
  const { mechanism, detail } = describeContainment();
  return `process containment: ${mechanism}\n  ${detail}`;
}

export function describeSandbox(status: SandboxStatus): string {
  const lines = [`sandbox: ${status.works ? 'works' : 'not available'} (mode ${status.mode})`];
  const row = (label: string, value: string): void => {
    lines.push(`  ${`${label}:`.padEnd(10)} ${value}`);
  };
  if (status.tool !== null) row('tool', `${status.tool}${status.version ? ` ${status.version}` : ''}`);
  if (status.path !== null) row('path', status.path);
  if (status.problem !== null) row('problem', status.problem);
  const warning = sandboxWarning(status);
  if (warning !== null) row('warning', warning);
  return lines.join('\n');
}

export async function probeCommand(args: readonly string[]): Promise<number> {
  const parsed = parseArgs('probe', args, {
    flags: {
      json: 'boolean',
      'codex-path': 'value',
      'gemini-path': 'value',
      workspace: 'value',
      sandbox: 'value',
      'bwrap-path': 'value',
    },
  });
  const bwrapPath = parsed.string('bwrap-path');
  const sandbox = new Sandbox({
    mode: parsed.choice('sandbox', SANDBOX_MODES) ?? 'auto',
    ...(bwrapPath === undefined ? {} : { bwrapPath: path.resolve(bwrapPath) }),
  });
  const codexPath = parsed.string('codex-path');
  const geminiPath = parsed.string('gemini-path');
  const options = {
    workspaceDir: path.resolve(parsed.string('workspace') ?? process.cwd()),
    ...(codexPath === undefined ? {} : { codexPath: path.resolve(codexPath) }),
    ...(geminiPath === undefined ? {} : { geminiPath: path.resolve(geminiPath) }),
  };
  // `--version` children run in their own process groups, so a Ctrl-C here would not reach them.
  const onSignal = (signal: NodeJS.Signals): void => {
    defaultProcessRegistry.killAllNow();
    process.exit(signal === 'SIGINT' ? EXIT.interrupted : EXIT.terminated);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const [results, sandboxStatus] = await Promise.all([probeAll(options), sandbox.status()]);
    process.stdout.write(
      parsed.has('json')
        ? `${JSON.stringify(buildProbeReport(results, sandboxStatus), null, 2)}\n`
        : `${[...results.map(describeProbe), describeProcessContainment(), describeSandbox(sandboxStatus)].join('\n\n')}\n`,
    );
    return EXIT.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
