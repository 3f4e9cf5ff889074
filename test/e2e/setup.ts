// What both e2e entry points (run.ts: code-server, electron.ts: @vscode/test-electron) prepare:
// a scratch copy of the test workspace with the model to use, and the extension-test suite
// bundled to the CommonJS module VS Code loads; for run.ts also the untrusted folder and its suite.
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as esbuild from 'esbuild';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { TRUST_MODEL } from './suite/answers';
import { NO_POLICY, TRAIN_ME } from './trainable-models';

export const ROOT = resolve(__dirname, '..', '..');

/**
 * The bundled models/default once it has been exported, else the small generated fixture model
 * (through adadiff.model.path); ADADIFF_E2E_MODEL overrides both. undefined = the bundled model.
 */
export async function testModelPath(): Promise<string | undefined> {
  if (process.env.ADADIFF_E2E_MODEL) return resolve(process.env.ADADIFF_E2E_MODEL);
  if (existsSync(join(ROOT, 'models', 'default', 'model_index.json'))) return undefined;
  return (await ensureFixtures()).optimum;
}

export interface Prepared {
  workspace: string;
  suite: string;
  model: string | undefined;
}

/** Under `home`: workspace/ (a copy of test/e2e/workspace, so generated assets stay out of the repo) and suite/index.js. */
export async function prepare(home: string): Promise<Prepared> {
  const workspace = join(home, 'workspace');
  cpSync(join(__dirname, 'workspace'), workspace, { recursive: true });
  const model = await testModelPath();
  if (model) {
    // The generated fixture model is tiny: 1000 steps at its 64x64 take a second or two, too short
    // to cancel. At 1024x1024 they take several, as 1000 steps of the bundled 64x64 model do.
    const slow = join(workspace, 'slow.md');
    writeFileSync(slow, readFileSync(slow, 'utf8').replace('steps: 1000', 'steps: 1000, size: 1024'));
  }
  // Copies of the generated fixture model without a policy, for "Train Step Policy" (trainable-models.ts).
  const fixture = (await ensureFixtures()).optimum;
  for (const dir of [TRAIN_ME, NO_POLICY]) cpSync(fixture, join(workspace, dir), { recursive: true });
  writeSettings(workspace, model ? { 'adadiff.model.path': model } : {});
  return { workspace, suite: await bundleSuite(home, 'index'), model };
}

function writeSettings(workspace: string, settings: Record<string, unknown>): void {
  mkdirSync(join(workspace, '.vscode'), { recursive: true });
  writeFileSync(join(workspace, '.vscode', 'settings.json'), JSON.stringify(settings, null, 2));
}

/** test/e2e/suite/NAME.ts bundled to HOME/suite/NAME.js. */
async function bundleSuite(home: string, name: 'index' | 'trust'): Promise<string> {
  const outfile = join(home, 'suite', `${name}.js`);
  await esbuild.build({
    entryPoints: [join(__dirname, 'suite', `${name}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode'],
    logLevel: 'warning',
  });
  return outfile;
}

/**
 * The folder for the trust suite, under `home`: the test workspace whose settings name a model
 * folder of its own (a copy of the generated fixture model, inside the folder, as a repository
 * would ship one), opened untrusted; and suite/trust.js.
 */
export async function prepareTrust(home: string): Promise<{ workspace: string; suite: string }> {
  const workspace = join(home, 'untrusted');
  cpSync(join(__dirname, 'workspace'), workspace, { recursive: true });
  cpSync((await ensureFixtures()).optimum, join(workspace, TRUST_MODEL), { recursive: true });
  writeSettings(workspace, { 'adadiff.model.path': TRUST_MODEL });
  return { workspace, suite: await bundleSuite(home, 'trust') };
}
