// Extension tests in an untrusted folder (code-server started with workspace trust enabled, the
// folder not trusted): its settings name a model of its own (adadiff.model.path, restricted by
// package.json's capabilities.untrustedWorkspaces), and AdaDiff must use the bundled one and
// write nothing. Then the folder is trusted and the workspace model is used. What only the
// workbench shows (notifications, the preview's Save button, the Trust button) the runner reads
// and clicks when asked (askRunner).
import * as assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { SETTINGS_SECTION } from '../../../shared/protocol';
import { TRUST_MODEL } from './answers';
import { adadiff, askRunner, figure, FOX, hoverText, LIGHTHOUSE, lensesFor, notifications, open, positionOf, promptArgs, test, waitFor, workspace } from './harness';

export { run } from './harness';

const UNTRUSTED = 'AdaDiff writes no files in an untrusted workspace.';

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
  const shown = (await notifications()).map((n) => n.message);
  figure(`untrusted: the notifications read ${JSON.stringify(shown)}`);
  assert.ok(shown.includes(UNTRUSTED), `"${UNTRUSTED}" is shown; notifications: ${JSON.stringify(shown)}`);
  assert.ok(shown.some((n) => /Training a step policy is disabled in an untrusted workspace/.test(n)), `the training refusal is shown; notifications: ${JSON.stringify(shown)}`);
  assert.deepEqual(await askRunner('save-button'), { disabled: true, title: 'Saving is disabled in an untrusted workspace' });
});

test('trusting the folder: the server restarts with the workspace model, and Save is enabled', async () => {
  const granted = new Promise<void>((resolve) => vscode.workspace.onDidGrantWorkspaceTrust(() => resolve()));
  await vscode.commands.executeCommand('workbench.trust.manage');
  const t0 = Date.now();
  await askRunner('trust');
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
  // The panel learns of the trust by a message.
  await waitFor('Save enabled in the open preview', async () => ((await askRunner('save-button')).disabled ? undefined : true), 20_000);
  figure(`trust granted -> a hover from the workspace model ${hoverMs} ms after the click`);
});
