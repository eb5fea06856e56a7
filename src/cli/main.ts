// `tandem-mcp` entry point: picks the command and maps usage errors to exit code 2; each command lives in
// its own file next to this one.
import { TANDEM_VERSION } from '../version';
import { EXIT, UsageError } from './args';
import { demoCommand } from './demo';
import { panicCommand } from './panic';
import { playbooksCommand } from './playbooks';
import { probeCommand } from './probe';
import { runCommand } from './run';
import { runsCommand } from './runs';
import { serveCommand } from './serve';
import { USAGE } from './usage';

const COMMANDS: Record<string, (args: readonly string[]) => Promise<number>> = {
  serve: serveCommand,
  run: runCommand,
  runs: runsCommand,
  playbooks: playbooksCommand,
  panic: panicCommand,
  demo: demoCommand,
  probe: probeCommand,
};

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'version':
    case '--version':
      process.stdout.write(`tandem-mcp ${TANDEM_VERSION}\n`);
      return EXIT.ok;
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return EXIT.ok;
  }
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!run) {
    process.stderr.write(`tandem-mcp: unknown command "${command}"\n\n${USAGE}`);
    return EXIT.usage;
  }
  if (command !== 'serve') {
    // `tandem-mcp runs list | head`: a reader that stops early is not an error (serve watches stdout itself).
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      process.exit(process.exitCode ?? EXIT.ok);
    });
  }
  try {
    return await run(rest);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`tandem-mcp: ${error.message}\n\n${USAGE}`);
    return EXIT.usage;
  }
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  main(argv).then(
    (code) => {
      process.exitCode = code;
      // serve has closed everything it opened; a handle a library left behind must not keep it alive.
      if (argv[0] === 'serve') process.exit(code);
    },
    (error: unknown) => {
      process.stderr.write(`tandem-mcp: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = EXIT.failed;
    },
  );
}
