// The extensionTestsPath module of the main host session: the tests of this folder, in file-name order.
import { runMochaFiles } from '../mocha-run';

export function run(): Promise<void> {
  return runMochaFiles(__dirname);
}
