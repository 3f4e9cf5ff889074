// Extension tests in an untrusted folder (code-server started with workspace trust enabled, the
// folder not trusted): its settings name a model of its own (adadiff.model.path, restricted by
// package.json's capabilities.untrustedWorkspaces), and AdaDiff must use the bundled one and
// write nothing. Then the folder is trusted and the workspace model is used. What only the
// workbench shows (notifications, the preview's Save button, the Trust button) the runner reads
// and clicks: a line "@@e2e NAME" asks it to (run.ts), and it answers in handshake/NAME.json.
import * as assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { SETTINGS_SECTION } from '../../../shared/protocol';
import { adadiff, figure, FOX, hoverText, LIGHTHOUSE, lensesFor, open, positionOf, promptArgs, test, waitFor, workspace } from './harness';
import { TRUST_MODEL, type UntrustedUi } from './trust-handshake';

export { run } from './harness';

const UNTRUSTED = 'AdaDiff writes no files in an untrusted workspace.';

/** Asks the e2e runner to look at or click something in the workbench; resolves with its answer. */
async function askRunner<T>(name: string): Promise<T> {
  const answer = join(__dirname, '..', 'handshake', `${name}.json`);
  console.log(`@@e2e ${name}`);
  const text = await waitFor(`the runner's answer to ${name}`, () => (existsSync(answer) ? readFileSync(answer, 'utf8') : undefined), 60_000);
  const parsed = JSON.parse(text) as T | { error: string };
  if (parsed && typeof parsed === 'object' && 'error' in parsed) throw new Error(`the runner, at ${name}: ${parsed.error}`);
  return parsed as T;
}

/** Every file under the workspace folder with its size and modification time. */
function tree(dir = workspace().fsPath, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const rel = `${prefix}${e.name}`;
    if (e.isDirectory()) return [`${rel}/`, ...tree(join(dir, e.name), `${rel}/`)];
    const st = statSync(join(dir, e.name));
    return [`${rel} ${st.size} ${st.mtimeMs}`];
  });
}

const hoverFor = (doc: vscode.TextDocument, model: RegExp) =>
  waitFor(`a hover naming ${model}`, async () => {
    const text = await hoverText(doc, positionOf(doc, FOX, 5));
    return model.test(text) ? text : undefined;
  });

let before: string[] = [];

test('untrusted: the folder names its own model; hovers and the status item use the bundled one', async () => {
  assert.equal(vscode.workspace.isTrusted, false, 'code-server opened the folder in Restricted Mode');
  before = tree();
  const settings = JSON.parse(readFileSync(join(workspace().fsPath, '.vscode', 'settings.json'), 'utf8'));
  assert.equal(settings['adadiff.model.path'], TRUST_MODEL, 'the workspace settings name a model');
  // package.json's capabilities.untrustedWorkspaces.restrictedConfigurations at work.
  const config = vscode.workspace.getConfiguration(SETTINGS_SECTION);
  assert.equal(config.get<string>('model.path'), '', 'VS Code withholds the restricted setting in an untrusted folder');
  assert.equal(config.inspect<string>('model.path')?.workspaceValue, undefined, 'inspect() too');
  const doc = await open('README.md');
  const text = await hoverFor(doc, /Model: `default`/);
  assert.doesNotMatch(text, new RegExp(TRUST_MODEL));
  const status = await waitFor('the status item ready', async () => ((await adadiff()).status().accessibility.startsWith('AdaDiff: ready') ? (await adadiff()).status() : undefined), 30_000);
  // The tooltip's Markdown escapes its text: `default&nbsp;\(bundled\)`.
  assert.match(status.tooltip, /Model: default(&nbsp;|\s)\\?\(bundled\\?\)/);
  assert.match(status.tooltip, /Path: \S*\/models\/default/);
  assert.doesNotMatch(status.tooltip, new RegExp(TRUST_MODEL));
});

test('untrusted: Generate Asset, Generate All Assets and Train Step Policy refuse; a preview renders; nothing is written', async () => {
  const doc = await open('README.md');
  const all = await lensesFor(doc, FOX);
  const generate = all.find((l) => l.command?.command === 'adadiff.generateAsset');
  assert.ok(generate, 'the Generate asset lens is there (it refuses when run)');
  assert.equal(await vscode.commands.executeCommand('adadiff.generateAsset', promptArgs(generate)), undefined);
  assert.equal(await vscode.commands.executeCommand('adadiff.generateAllAssets'), undefined);
  const prompts = ['a red circle', 'a cat', 'a green apple', 'a yellow star', 'a blue square', 'a castle', 'a market', 'a sailor', 'two dogs', 'a city'];
  assert.equal(await vscode.commands.executeCommand('adadiff.trainPolicy', { prompts, seeds: [0], candidates: [2, 4], epochs: 2 }), undefined);
  // The preview writes nothing and is allowed; its Save button is what the runner checks next.
  const fence = all.find((l) => promptArgs(l)?.prompt === LIGHTHOUSE && l.command?.command === 'adadiff.preview');
  const view = await vscode.commands.executeCommand<{ image: string } | undefined>('adadiff.preview', { ...promptArgs(fence!), steps: 4 });
  assert.match(view?.image ?? '', /^data:image\/png;base64,/);
  assert.deepEqual(tree(), before, 'no file in the workspace (assets, lock, the model folder\'s policy) was written or touched');
});

test('untrusted: the refusals are on screen, and the preview\'s Save button is disabled', async () => {
  await vscode.commands.executeCommand('notifications.showList');
  const ui = await askRunner<UntrustedUi>('untrusted-ui');
  await vscode.commands.executeCommand('notifications.hideList');
  assert.ok(ui.notifications.includes(UNTRUSTED), `"${UNTRUSTED}" is shown; notifications: ${JSON.stringify(ui.notifications)}`);
  figure(`untrusted: the notifications read ${JSON.stringify(ui.notifications)}`);
  assert.ok(
    ui.notifications.some((n) => /trains no step policy in an untrusted workspace/.test(n)),
    `the training refusal is shown; notifications: ${JSON.stringify(ui.notifications)}`,
  );
  assert.deepEqual(ui.save, { disabled: true, title: 'Saving is disabled in an untrusted workspace' });
});

test('trusting the folder: the server restarts with the workspace model, and Save is enabled', async () => {
  const granted = new Promise<void>((resolve) => vscode.workspace.onDidGrantWorkspaceTrust(() => resolve()));
  await vscode.commands.executeCommand('workbench.trust.manage');
  const t0 = Date.now();
  await askRunner<object>('trust');
  await Promise.race([granted, new Promise((_, reject) => setTimeout(() => reject(new Error('no onDidGrantWorkspaceTrust within 30 s of the click')), 30_000))]);
  assert.equal(vscode.workspace.isTrusted, true);
  const doc = await open('README.md');
  const text = await hoverFor(doc, new RegExp(`Model: \`${TRUST_MODEL}\``));
  assert.match(text, /no trained step policy/, 'the workspace model (the fixture, without a policy) answers');
  const hoverMs = Date.now() - t0;
  const status = await waitFor('the status item naming the workspace model', async () => {
    const s = (await adadiff()).status();
    return s.accessibility.startsWith('AdaDiff: ready') && s.tooltip.includes(`Model: ${TRUST_MODEL}`) ? s : undefined;
  }, 30_000);
  assert.doesNotMatch(status.tooltip, /bundled/);
  const ui = await askRunner<UntrustedUi>('trusted-ui');
  assert.equal(ui.save?.disabled, false, 'the open preview learnt of the trust: Save is enabled');
  figure(`trust granted -> a hover from the workspace model ${hoverMs} ms after the click`);
});
