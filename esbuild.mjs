// Bundles the extension (vscode external), the tandem-mcp CLI and the webview front end into dist/.
import * as esbuild from 'esbuild';
import { chmod, rm } from 'node:fs/promises';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const common = {
  bundle: true,
  minify: production,
  sourcemap: !production,
  sourcesContent: false,
  logLevel: 'warning',
  legalComments: 'none',
};

const builds = [
  {
    ...common,
    entryPoints: ['src/extension/extension.ts'],
    outfile: 'dist/extension.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode'],
    // The bundle's first statement: extension.ts measures its timings from here, so the time spent evaluating
    // the bundled modules it imports counts as activation cost. 'use strict' stays the first statement, or the
    // bundle would lose strict mode.
    banner: { js: "'use strict';\nvar __tandemBundleStart = performance.now();" },
  },
  {
    ...common,
    entryPoints: ['src/cli/main.ts'],
    outfile: 'dist/cli.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
  },
  {
    ...common,
    entryPoints: ['media/dashboard.ts'],
    outfile: 'dist/media/dashboard.js',
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
  },
];

await rm('dist', { recursive: true, force: true });
if (watch) {
  for (const options of builds) {
    const ctx = await esbuild.context(options);
    await ctx.watch();
  }
} else {
  await Promise.all(builds.map((options) => esbuild.build(options)));
  await chmod('dist/cli.js', 0o755);
}
