// The extensionTestsPath module of the workspace-trust session (test/host/run.mjs starts a second editor with
// workspace trust on and the folder untrusted): the tests of this folder, in file-name order.
import { runMochaFiles } from '../mocha-run';

export function run(): Promise<void> {
  return runMochaFiles(__dirname);
}
