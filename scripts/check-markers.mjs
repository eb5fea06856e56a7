// Fails the build when src/ holds unfinished markers or any way to run a shell string.
// Only src/core/exec/ may touch node:child_process, and it must do so with shell: false.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

const root = 'src';
const execDir = path.join('src', 'core', 'exec');

const rules = [
  { pattern: /\bNYI\b/, why: 'unfinished marker NYI' },
  { pattern: /not\s+implemented/i, why: 'unfinished marker "not implemented"' },
  { pattern: /\b(TODO|FIXME|XXX)\b/, why: 'unfinished marker' },
  { pattern: /shell\s*:\s*(true|['"`])/, why: 'shell execution (shell option set)' },
  { pattern: /\b(execSync|execFileSync|spawnSync)\s*\(/, why: 'synchronous child process' },
  { pattern: /(^|[^.\w])exec\s*\(/, why: 'shell execution (exec)' },
  { pattern: /\bchild_process\.exec\b/, why: 'shell execution (child_process.exec)' },
  { pattern: /['"](\/bin\/)?(ba|z|da)?sh['"]\s*,\s*\[\s*['"]-c['"]/, why: 'shell execution (sh -c)' },
];
const childProcessImport = /(from\s+|require\(\s*)['"](node:)?child_process['"]/;

async function* walk(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(full);
    else if (/\.(ts|js|mjs|cjs)$/.test(entry.name)) yield full;
  }
}

const problems = [];
for await (const file of walk(root)) {
  const lines = (await readFile(file, 'utf8')).split('\n');
  lines.forEach((line, index) => {
    for (const rule of rules) {
      if (rule.pattern.test(line)) problems.push(`${file}:${index + 1}: ${rule.why}: ${line.trim()}`);
    }
    if (childProcessImport.test(line) && !file.startsWith(execDir + path.sep)) {
      problems.push(
        `${file}:${index + 1}: child_process imported outside ${execDir}: use the safe exec helper`,
      );
    }
  });
}

if (problems.length > 0) {
  console.error(`check-markers: ${problems.length} problem(s) in ${root}/:`);
  for (const problem of problems) console.error(`  ${problem}`);
  process.exit(1);
}
console.log(`check-markers: ${root}/ is clean (no unfinished markers, no shell execution).`);
