// `tandem-mcp` entry point. Subcommands join as their layers land; unknown ones fail with usage.
import { readFileSync } from 'node:fs';
import path from 'node:path';

const USAGE = `Usage: tandem-mcp <command>

Commands:
  version     print the version of tandem-mcp
  help        print this help
`;

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

export function main(argv: readonly string[]): number {
  const [command] = argv;
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
  process.exitCode = main(process.argv.slice(2));
}
