// The standard entry point for machines that can download VS Code (or have one: set
// VSCODE_EXECUTABLE_PATH): the same extension tests (test/e2e/suite) in Electron via
// @vscode/test-electron. Machines without internet use test/e2e/run.ts (code-server).
//
//   npm run build && npm run test:electron
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTests } from '@vscode/test-electron';
import { prepare, ROOT } from './setup';

async function main(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'adadiff-electron-'));
  const { workspace, suite } = await prepare(home);
  await runTests({
    vscodeExecutablePath: process.env.VSCODE_EXECUTABLE_PATH,
    extensionDevelopmentPath: ROOT,
    extensionTestsPath: suite,
    launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust', '--user-data-dir', join(home, 'user-data')],
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
