// Runs the same host tests (out/test/host/suite) in desktop VS Code through @vscode/test-electron, for machines
// that can download VS Code (it cannot here: use test/host/run.mjs with code-server). On Linux without a display
// run it under xvfb-run. Env: VSCODE_TEST_VERSION (default 'stable'; '1.101.0' checks the oldest supported
// engine), TANDEM_HOST_KEEP=1 keeps the temp folders.
// Needs `tsc -p tsconfig.json` and `node esbuild.mjs` first.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runTests } from '@vscode/test-electron';
import { prepareFixture, root, testsPath } from './fixture.mjs';

for (const built of [path.join(root, 'dist', 'extension.js'), testsPath]) {
  if (!existsSync(built)) {
    console.error(
      `host-electron: ${path.relative(root, built)} is missing: run tsc and node esbuild.mjs first`,
    );
    process.exit(1);
  }
}

const fixture = prepareFixture();
let exitCode;
try {
  exitCode = await runTests({
    version: process.env.VSCODE_TEST_VERSION ?? 'stable',
    // The download is cached beside code-server, in the git-ignored .host/.
    cachePath: path.join(root, '.host', 'vscode-test'),
    extensionDevelopmentPath: root,
    extensionTestsPath: testsPath,
    launchArgs: [
      fixture.workspace,
      '--user-data-dir',
      fixture.userDataDir,
      '--extensions-dir',
      fixture.extensionsDir,
      '--disable-workspace-trust',
      '--disable-gpu',
      '--skip-welcome',
      '--skip-release-notes',
    ],
    extensionTestsEnv: { CI: process.env.CI ?? '' },
  });
} catch (error) {
  // runTests rejects when the download fails or the tests fail (TestRunFailedError carries the code).
  console.error(`host-electron: FAILED: ${error instanceof Error ? error.message : String(error)}`);
  exitCode = typeof error?.code === 'number' ? error.code : 1;
} finally {
  const kept = fixture.cleanup(process.env.TANDEM_HOST_KEEP === '1');
  if (kept) console.log(`host-electron: ${kept}`);
}
process.exitCode = exitCode;
