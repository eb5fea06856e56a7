// The extensionTestsPath module: VS Code's extension host loads it and awaits run(); mocha runs every
// *.test.js beside it (compiled by the project tsc into out/test/host/suite/), in file-name order.
import { readdirSync } from 'node:fs';
import path from 'node:path';

export async function run(): Promise<void> {
  // mocha 12 is an ES module: import() it rather than require it from this CommonJS file.
  const { default: Mocha } = await import('mocha');
  const mocha = new Mocha({
    ui: 'bdd',
    reporter: 'spec',
    color: false,
    timeout: 60_000,
    slow: 5_000,
    forbidOnly: true,
  });
  const files = readdirSync(__dirname)
    .filter((name) => name.endsWith('.test.js'))
    .sort();
  for (const name of files) mocha.addFile(path.join(__dirname, name));
  if (files.length === 0) throw new Error(`no host test files (*.test.js) in ${__dirname}`);

  await new Promise<void>((resolve, reject) => {
    mocha.run((failures) => {
      if (failures > 0) reject(new Error(`${failures} host test(s) failed`));
      else resolve();
    });
  });
}
