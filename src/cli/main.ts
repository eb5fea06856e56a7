// `tandem-mcp` entry point. Subcommands join as their layers land; unknown ones fail with usage.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { defaultProcessRegistry } from '../core/exec';
import type { ProbeResult } from '../workers/contract';
import { buildProbeReport, probeAll, type ProbeAllOptions } from '../workers/probe';

const USAGE = `Usage: tandem-mcp <command> [options]

Commands:
  probe       check the codex and gemini CLIs: installed, version, tested range, auth, warnings
                --json               print the JSON document described in docs/probe.md
                --codex-path PATH    probe this codex binary instead of \`codex\` on PATH
                --gemini-path PATH   probe this gemini binary instead of \`gemini\` on PATH
                --workspace DIR      the workspace to check for .env files (default: the current directory)
              A missing CLI is reported, not an error: the exit code is 0 unless the usage is wrong (2).
  version     print the version of tandem-mcp
  help        print this help
`;

class UsageError extends Error {}

function packageVersion(): string {
  // dist/cli.js sits one level below package.json; out/src/cli/main.js three levels.
  for (const candidate of ['../package.json', '../../../package.json']) {
    try {
      const manifest = JSON.parse(readFileSync(path.join(__dirname, candidate), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (manifest.name === 'tandem' && manifest.version) return manifest.version;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}

interface ProbeCommand {
  json: boolean;
  options: ProbeAllOptions;
}

function parseProbeArgs(args: readonly string[]): ProbeCommand {
  const command: ProbeCommand = { json: false, options: { workspaceDir: process.cwd() } };
  const valueFlags: Record<string, (value: string) => void> = {
    '--codex-path': (value) => (command.options.codexPath = path.resolve(value)),
    '--gemini-path': (value) => (command.options.geminiPath = path.resolve(value)),
    '--workspace': (value) => (command.options.workspaceDir = path.resolve(value)),
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--json') {
      command.json = true;
      continue;
    }
    const equals = arg.indexOf('=');
    const flag = equals > 0 ? arg.slice(0, equals) : arg;
    const apply = Object.hasOwn(valueFlags, flag) ? valueFlags[flag] : undefined;
    if (!apply) throw new UsageError(`probe: unknown argument "${arg}"`);
    const value = equals > 0 ? arg.slice(equals + 1) : args[++i];
    if (value === undefined || value === '') throw new UsageError(`probe: ${flag} needs a value`);
    apply(value);
  }
  return command;
}

function describeProbe(result: ProbeResult): string {
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

async function runProbe(args: readonly string[]): Promise<number> {
  const { json, options } = parseProbeArgs(args);
  // `--version` children run in their own process groups, so a Ctrl-C here would not reach them.
  const onSignal = (signal: NodeJS.Signals): void => {
    defaultProcessRegistry.killAllNow();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const results = await probeAll(options);
    process.stdout.write(
      json
        ? `${JSON.stringify(buildProbeReport(results), null, 2)}\n`
        : `${results.map(describeProbe).join('\n\n')}\n`,
    );
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'probe') return await runProbe(rest);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`tandem-mcp: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  switch (command) {
    case 'version':
    case '--version':
      process.stdout.write(`tandem-mcp ${packageVersion()}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`tandem-mcp: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`tandem-mcp: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
