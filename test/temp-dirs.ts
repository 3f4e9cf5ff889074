// Temporary directories for tests, removed when the test file's process exits (node --test runs
// each file in its own process), so that a full run does not leave its workspaces, caches and model
// copies in the system's temp folder, pass or fail. A test that needs a directory to outlive it
// (a crash's leftovers it inspects) keeps using it until its process ends, which is all it needs.
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const created: string[] = [];
process.on('exit', () => {
  for (const dir of created) rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
});

/** mkdtemp in the system's temp folder, removed at exit. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

export async function tempDirAsync(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}
