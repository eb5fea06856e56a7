// What an extensionTestsPath module does (suite/index.ts, trust/index.ts): VS Code's extension host loads it and
// awaits run(), which runs mocha on every *.test.js beside it (compiled by the project tsc into out/test/host/),
// in file-name order.
import { readdirSync } from 'node:fs';
import path from 'node:path';

export async function runMochaFiles(dir: string): Promise<void> {
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
  const files = readdirSync(dir)
    .filter((name) => name.endsWith('.test.js'))
    .sort();
  for (const name of files) mocha.addFile(path.join(dir, name));
  if (files.length === 0) throw new Error(`no host test files (*.test.js) in ${dir}`);

  await new Promise<void>((resolve, reject) => {
    mocha.run((failures) => {
      if (failures > 0) reject(new Error(`${failures} host test(s) failed`));
      else resolve();
    });
  });
}
