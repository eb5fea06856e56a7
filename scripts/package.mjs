// Builds the release .vsix: the production bundle (dist/ is self-contained, so no node_modules go in), then
// `vsce package --no-dependencies`, then a check of what went in: it fails when the package is 2 MiB or more
// or holds a file outside the short list an installed extension needs (see ALLOWED).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAX_BYTES = 2 * 1024 * 1024;
const STEP_TIMEOUT_MS = 180_000;

/** What the .vsix may hold: the bundle, the manifest, README, LICENSE and the webview's css and icons. */
const ALLOWED = [
  /^\[Content_Types\]\.xml$/,
  /^extension\.vsixmanifest$/,
  /^extension\/dist\/.+$/,
  /^extension\/package\.json$/,
  /^extension\/readme\.md$/i, // vsce writes README.md as readme.md
  /^extension\/LICENSE[^/]*$/,
  /^extension\/media\/[^/]+\.(css|svg)$/,
];
/** Inside the allowed folders, still refused: source maps (the .vscodeignore keeps them out). */
const REFUSED = [/\.map$/];

function fail(message) {
  console.error(`package: FAILED: ${message}`);
  process.exit(1);
}

/** Runs node with `args` in the repository, output passed through; fails the script when it fails. */
function runNode(what, args) {
  console.log(`package: ${what}`);
  const result = spawnSync(process.execPath, args, {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: STEP_TIMEOUT_MS,
    // vsce asks before it goes on without a LICENSE or with a star activation: no stdin, so it never waits.
    env: { ...process.env, CI: 'true' },
  });
  if (result.error) fail(`${what}: ${result.error.message}`);
  if (result.status !== 0) fail(`${what} exited with ${result.status ?? result.signal}`);
}

/** The entries of a zip file from its central directory: name and uncompressed size. */
function zipEntries(file) {
  const data = readFileSync(file);
  // The end-of-central-directory record: its signature, searched from the end (a comment may follow it).
  let end = -1;
  for (let at = data.length - 22; at >= Math.max(0, data.length - 22 - 0xffff); at -= 1) {
    if (data.readUInt32LE(at) === 0x06054b50) {
      end = at;
      break;
    }
  }
  if (end < 0) fail(`${path.basename(file)} is not a zip file (no end of central directory)`);
  const count = data.readUInt16LE(end + 10);
  let at = data.readUInt32LE(end + 16);
  const entries = [];
  for (let index = 0; index < count; index += 1) {
    if (data.readUInt32LE(at) !== 0x02014b50) fail(`${path.basename(file)}: broken central directory`);
    const size = data.readUInt32LE(at + 24);
    const nameLength = data.readUInt16LE(at + 28);
    const extraLength = data.readUInt16LE(at + 30);
    const commentLength = data.readUInt16LE(at + 32);
    const name = data.toString('utf8', at + 46, at + 46 + nameLength);
    entries.push({ name, size });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const vsix = `${manifest.name}-${manifest.version}.vsix`;
const vsixPath = path.join(root, vsix);
const vsce = path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
if (!existsSync(vsce)) fail('@vscode/vsce is not installed: run npm ci');
if (!existsSync(path.join(root, 'LICENSE'))) fail('LICENSE is missing: the package must carry its license');

rmSync(vsixPath, { force: true });
runNode('production build (node esbuild.mjs --production)', ['esbuild.mjs', '--production']);
runNode(`vsce package --no-dependencies --no-rewrite-relative-links --out ${vsix}`, [
  vsce,
  'package',
  '--no-dependencies',
  // The README's screenshot and doc links are relative: kept as they are (the package is not on a forge).
  '--no-rewrite-relative-links',
  '--out',
  vsix,
]);
if (!existsSync(vsixPath)) fail(`vsce reported success but wrote no ${vsix}`);

const bytes = statSync(vsixPath).size;
const entries = zipEntries(vsixPath);
console.log(`package: ${vsix} holds:`);
for (const entry of entries) {
  console.log(`  ${String(Math.ceil(entry.size / 1024)).padStart(6)} KiB  ${entry.name}`);
}
const unexpected = entries
  .map((entry) => entry.name)
  .filter(
    (name) => !ALLOWED.some((pattern) => pattern.test(name)) || REFUSED.some((pattern) => pattern.test(name)),
  );
const problems = [];
if (unexpected.length > 0) {
  problems.push(`files that do not belong in the package: ${unexpected.join(', ')} (fix .vscodeignore)`);
}
if (bytes >= MAX_BYTES) {
  problems.push(`${(bytes / 1024).toFixed(1)} KiB, at or above the ${MAX_BYTES / 1024} KiB limit`);
}
for (const needed of ['extension/package.json', 'extension/dist/extension.js', 'extension/dist/cli.js']) {
  if (!entries.some((entry) => entry.name === needed)) problems.push(`${needed} is missing`);
}
const summary = `${vsix}: ${(bytes / 1024).toFixed(1)} KiB, ${entries.length} files`;
if (problems.length > 0) fail(`${summary}; ${problems.join('; ')}`);
console.log(`package: ${summary}`);
