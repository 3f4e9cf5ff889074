// Runs every test layer that needs no browser: unit tests of the core, the server over stdio, then
// reliability (fuzzed and hostile input, crashes; its long runs are `npm run bench -- reliability`).
// Node 20's test runner takes no globs, so the files are listed here.
import { spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const layers = process.argv.slice(2).length ? process.argv.slice(2) : ['test/unit', 'test/lsp', 'test/reliability', 'test/pool'];
const files = layers
  .filter((dir) => existsSync(dir))
  .flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.test.ts')).sort().map((f) => join(dir, f)));
if (files.length === 0) {
  console.error(`no test files in ${layers.join(', ')}`);
  process.exit(1);
}
const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(run.status ?? 1);
