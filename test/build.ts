// Tests that spawn the CLI or the server run the bundles in dist/, the way users run them.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..');
export const CLI = join(ROOT, 'dist', 'cli.js');
let built = false;

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Bundles dist/ when it is missing or older than server/ or shared/, so what runs is the current source. */
export function buildOnce(): void {
  if (built) return;
  if (!existsSync(CLI) || statSync(CLI).mtimeMs < Math.max(...['server', 'shared'].map((dir) => newestSource(join(ROOT, dir))))) {
    execFileSync(process.execPath, [join(ROOT, 'esbuild.mjs')], { cwd: ROOT, stdio: 'inherit' });
  }
  built = true;
}
