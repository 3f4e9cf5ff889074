// Extension tests, run inside a real VS Code (code-server, or Electron via test/e2e/electron.ts)
// with the real language server. VS Code loads this module and calls run(); a rejection fails the
// run. Harness in harness.ts; the untrusted folder's tests are trust.ts.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as vscode from 'vscode';
import type { Lock } from '../../../server/assets';
import type { AssetRunSummary, TrainPolicyResult } from '../../../shared/protocol';
import { TRAIN_ME } from '../trainable-models';
import {
  adadiff,
  askRunner,
  ASTRONAUT,
  childProcesses,
  figure,
  FOX,
  hoverText,
  LIGHTHOUSE,
  lensesFor,
  notifications,
  open,
  positionOf,
  promptArgs,
  serverPids,
  test,
  waitFor,
  withRunner,
  workspace,
} from './harness';

export { run } from './harness';

function checkCostLens(all: vscode.CodeLens[], line: number): void {
  const titles = all.filter((l) => l.range.start.line === line).map((l) => l.command?.title ?? '');
  assert.ok(
    titles.some((t) => /\d+ steps/.test(t)),
    `a lens on line ${line + 1} shows the predicted steps; titles: ${JSON.stringify(titles)}`,
  );
  assert.ok(titles.includes('Preview'), `a Preview lens on line ${line + 1}; titles: ${JSON.stringify(titles)}`);
}


test('Markdown: lenses on the image alt text (with Generate asset) and on the prompt fence', async () => {
  const doc = await open('README.md');
  const all = await lensesFor(doc, FOX);
  const foxLine = positionOf(doc, FOX).line;
  checkCostLens(all, foxLine);
  const generate = all.find((l) => l.command?.command === 'adadiff.generateAsset');
  assert.equal(promptArgs(generate!)?.target, 'images/fox.png');
  assert.equal(generate!.range.start.line, foxLine);
  const fence = all.find((l) => promptArgs(l)?.prompt === LIGHTHOUSE && l.command?.command === 'adadiff.preview');
  assert.ok(fence, `a Preview lens for the fenced prompt; got ${JSON.stringify(all.map((l) => promptArgs(l)?.prompt))}`);
  assert.equal(promptArgs(fence)?.seed, 7, 'the fence option seed: 7 travels with the lens');
});

test('Markdown: hover on the alt text shows predicted steps, time and the Preview link', async () => {
  const doc = await open('README.md');
  const text = await waitFor('a hover', async () => (await hoverText(doc, positionOf(doc, FOX, 5))) || undefined);
  assert.match(text, /steps/i);
  assert.match(text, /command:adadiff\.preview/);
  assert.equal(await hoverText(doc, new vscode.Position(0, 3)), '', 'no hover on the heading');
});

test('Python: lens and hover on the prompt= argument of pipe()', async () => {
  const doc = await open('app.py');
  const all = await lensesFor(doc, ASTRONAUT);
  const line = positionOf(doc, ASTRONAUT).line;
  checkCostLens(all, line);
  const preview = all.find((l) => promptArgs(l)?.prompt === ASTRONAUT);
  assert.equal(promptArgs(preview!)?.negativePrompt, 'blurry', 'the negative prompt attaches to its positive prompt');
  const text = await hoverText(doc, positionOf(doc, ASTRONAUT, 8));
  assert.match(text, /steps/i);
  assert.equal(await hoverText(doc, positionOf(doc, 'runwayml', 2)), '', 'a model id is no prompt');
});

test('Preview Prompt opens the preview panel with the final image', async () => {
  const doc = await open('README.md');
  const lens = (await lensesFor(doc, LIGHTHOUSE)).find((l) => promptArgs(l)?.prompt === LIGHTHOUSE && l.command?.command === 'adadiff.preview')!;
  const view = await vscode.commands.executeCommand<{ image: string; steps: number; seed: number; width: number } | undefined>(
    'adadiff.preview',
    promptArgs(lens),
  );
  assert.ok(view, 'the preview finished');
  assert.match(view.image, /^data:image\/png;base64,iVBORw0KGgo/);
  assert.equal(view.seed, 7);
  assert.ok(view.steps > 0 && view.width > 0);
  // The tab model reaches the extension host a little after the panel opens.
  const previewTabs = () =>
    vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith('adadiff.preview'));
  await waitFor('the preview tab', async () => (previewTabs().length ? true : undefined), 10_000);
  // A second preview reuses the panel.
  await vscode.commands.executeCommand('adadiff.preview', { ...promptArgs(lens), seed: 8 });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(previewTabs().length, 1, 'one reusable preview panel');
});

test('Preview Prompt from the command palette uses the prompt at the cursor', async () => {
  const doc = await open('app.py');
  const editor = vscode.window.activeTextEditor!;
  const at = positionOf(doc, ASTRONAUT, 4);
  editor.selection = new vscode.Selection(at, at);
  const view = await vscode.commands.executeCommand<{ prompt: string } | undefined>('adadiff.preview');
  assert.equal(view?.prompt, ASTRONAUT);
});

test('Generate asset writes the PNG to the Markdown image target', async () => {
  const doc = await open('README.md');
  const lens = (await lensesFor(doc, FOX)).find((l) => l.command?.command === 'adadiff.generateAsset')!;
  const written = await vscode.commands.executeCommand<string | undefined>('adadiff.generateAsset', promptArgs(lens));
  assert.equal(written, 'images/fox.png');
  const bytes = await vscode.workspace.fs.readFile(vscode.Uri.joinPath(workspace(), 'images', 'fox.png'));
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal((await readLock()).assets['images/fox.png']?.sha256, sha256(bytes), 'written through the asset core: the lock accounts for it');
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const readLock = async (): Promise<Lock> => JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.joinPath(workspace(), 'adadiff.lock.json'))));

test('Generate All Assets writes the missing images and the lock; a second run generates nothing', async () => {
  const fox = vscode.Uri.joinPath(workspace(), 'images', 'fox.png');
  // The lens test above generated it: delete it, so this run has something to do.
  await vscode.workspace.fs.delete(fox).then(undefined, () => undefined);
  const summary = await vscode.commands.executeCommand<AssetRunSummary | undefined>('adadiff.generateAllAssets');
  assert.ok(summary, 'the command resolves with the summary');
  assert.ok(summary.ok && !summary.cancelled, JSON.stringify(summary.problems));
  assert.deepEqual(summary.assets.filter((a) => a.action === 'generated').map((a) => a.out), ['images/fox.png']);
  assert.ok(summary.stepsUsed > 0 && summary.baselineSteps >= summary.stepsUsed, `${summary.stepsUsed} steps, baseline ${summary.baselineSteps}`);
  const bytes = await vscode.workspace.fs.readFile(fox);
  assert.equal((await readLock()).assets['images/fox.png'].sha256, sha256(bytes));
  const again = await vscode.commands.executeCommand<AssetRunSummary | undefined>('adadiff.generateAllAssets');
  assert.equal(again?.counts.generated, 0);
  assert.equal(again?.counts.current, summary.counts.targets);
});

test('Train Step Policy trains the configured model; its hovers then use the policy', async () => {
  const config = vscode.workspace.getConfiguration('adadiff');
  const previous = config.inspect<string>('model.path')?.workspaceValue;
  await config.update('model.path', TRAIN_ME, vscode.ConfigurationTarget.Workspace);
  let trained = TRAIN_ME.split('/').pop()!;
  try {
    const doc = await open('README.md');
    const offer = await waitFor('a hover from the model without a policy', async () => {
      const text = await hoverText(doc, positionOf(doc, FOX, 5));
      return /no trained step policy/.test(text) ? text : undefined;
    });
    assert.match(offer, /\[Train a step policy\]\(command:adadiff\.trainPolicy\?/);
    const prompts = [
      'a red circle', 'a cat', 'a green apple', 'a yellow star', 'a blue square on white',
      'a castle on a hill at sunset, ornate towers, dramatic clouds, oil painting',
      'a busy market street in the rain at night, neon signs, reflections, crowds with umbrellas',
      'portrait of an old sailor with a pipe, detailed wrinkles, rembrandt lighting',
      'two dogs playing with a ball in a park', 'an isometric city block with shops, trees and cars',
    ];
    // With prompts in its arguments the command asks nothing (no quick pick, no confirmation).
    const result = await vscode.commands.executeCommand<TrainPolicyResult | undefined>('adadiff.trainPolicy', { prompts, seeds: [0], candidates: [2, 4, 8], epochs: 20 });
    assert.ok(result, 'the training finished (an error would show as a message and resolve undefined)');
    trained = result.model;
    const folder = vscode.Uri.joinPath(workspace(), TRAIN_ME, 'adadiff');
    assert.equal(result.onnxPath, vscode.Uri.joinPath(folder, 'policy.onnx').fsPath);
    assert.ok((await vscode.workspace.fs.stat(vscode.Uri.joinPath(folder, 'policy.onnx'))).size > 0);
    const manifest = JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.joinPath(folder, 'policy.json'))));
    assert.deepEqual(manifest.candidates, [2, 4, 8]);
    assert.equal(manifest.evaluation.prompts, 2, 'every fifth prompt held out and evaluated');
    assert.equal(result.evaluation?.baselineSteps, 8);
    await waitFor('a hover with the new policy', async () => (/instead of 8/.test(await hoverText(doc, positionOf(doc, FOX, 5))) ? true : undefined), 30_000);
  } finally {
    await config.update('model.path', previous, vscode.ConfigurationTarget.Workspace);
    // Back to the model the other tests use, answering hovers, before they start.
    const doc = await open('README.md');
    await waitFor('hovers from the configured model again', async () => {
      const text = await hoverText(doc, positionOf(doc, FOX, 5));
      return text && !text.includes(`\`${trained}\``) ? true : undefined;
    });
  }
});

test('Recalibrate runs the server\'s adadiff.server.recalibrate', async () => {
  await vscode.commands.executeCommand('adadiff.recalibrate');
  const doc = await open('README.md');
  await lensesFor(doc, FOX);
});

/** The one language server process (waits for it: a restart forks a new one). */
const onlyServer = () => waitFor('the language server process', () => (serverPids().length === 1 ? serverPids()[0] : undefined), 30_000);

/** Kills the server with SIGKILL; resolves when a hover answers again with the model's steps. */
async function killAndWaitForHover(doc: vscode.TextDocument): Promise<{ killed: number; hoverMs: number }> {
  const killed = await onlyServer();
  const t0 = Date.now();
  process.kill(killed, 'SIGKILL');
  await waitFor('a hover from the restarted server', async () => {
    if (serverPids().includes(killed)) return undefined;
    return /steps/.test(await hoverText(doc, positionOf(doc, FOX, 5))) ? true : undefined;
  }, 60_000);
  return { killed, hoverMs: Date.now() - t0 };
}

test('The server killed with SIGKILL: the client restarts it, the status item says so, hovers and lenses answer again', async () => {
  const api = await adadiff();
  const doc = await open('README.md');
  await lensesFor(doc, FOX);
  const pid = await onlyServer();
  // The previews above started a render worker: it must not outlive its server.
  const workers = childProcesses(pid).map((p) => p.pid);
  assert.ok(workers.length > 0, 'the server has a render worker (the previews above ran on it)');
  const t0 = Date.now();
  process.kill(pid, 'SIGKILL');
  const shown = await waitFor('the status item to show the restart', () => (/restarted after a crash/.test(api.status().text) ? api.status() : undefined), 30_000);
  const statusMs = Date.now() - t0;
  assert.match(shown.accessibility, /; the language server crashed at .* and was restarted \(restart 1 of 4 within 3 minutes; after that it stays stopped\)$/);
  assert.match(shown.tooltip, /⚠ The language server crashed at .* and was restarted \(restart 1 of 4 within 3 minutes/);
  assert.equal(shown.command, 'adadiff.showLog');
  const text = await waitFor('a hover from the restarted server', async () => {
    const t = await hoverText(doc, positionOf(doc, FOX, 5));
    return /steps/.test(t) ? t : undefined;
  }, 60_000);
  const hoverMs = Date.now() - t0;
  assert.match(text, /command:adadiff\.preview/);
  const restarted = await onlyServer();
  assert.notEqual(restarted, pid, 'a new server process');
  checkCostLens(await lensesFor(doc, FOX), positionOf(doc, FOX).line);
  const readyMs = await waitFor('the status item ready again', () => (/^AdaDiff: ready/.test(api.status().accessibility) ? Date.now() - t0 : undefined), 30_000);
  assert.match(api.status().text, /restarted after a crash/, 'the note stays once the restarted server is ready');
  await withRunner('the rendered status item', async () => {
    assert.match((await askRunner('status-item')).text, /restarted after a crash/, 'the status bar shows it');
  });
  await waitFor('the killed server\'s render worker to exit', () => (workers.every((w) => !isAlive(w)) ? true : undefined), 10_000);
  figure(`server SIGKILL -> status item says restarted ${statusMs} ms, hover answers ${hoverMs} ms, status ready ${readyMs} ms; its render worker exited too`);
});

test('Killed more often than the limit: the client stops restarting, the status item says how to restart, Restart Server works', async () => {
  const api = await adadiff();
  const doc = await open('README.md');
  // The test above used restart 1 of 4; three more are restarted.
  const times: number[] = [];
  for (let restart = 2; restart <= 4; restart++) {
    times.push((await killAndWaitForHover(doc)).hoverMs);
    assert.match(api.status().accessibility, new RegExp(`restarted \\(restart ${restart} of 4 within 3 minutes`));
  }
  // The fifth crash within 3 minutes: no restart.
  const last = await onlyServer();
  process.kill(last, 'SIGKILL');
  const stopped = await waitFor('the status item to say the server stays stopped', () => (/not restarted/.test(api.status().accessibility) ? api.status() : undefined), 30_000);
  assert.match(stopped.accessibility, /^AdaDiff: error, The language server crashed 5 times within 3 minutes and was not restarted/);
  assert.match(stopped.tooltip, /Restart Server/);
  assert.match(stopped.text, /AdaDiff stopped: click to restart/);
  assert.equal(stopped.command, 'adadiff.restartServer', 'a click on the item restarts the server');
  await withRunner('the notification and the rendered status item', async () => {
    const shown = await waitFor('the notification', async () => (await notifications()).find((n) => /language server crashed 5 times/.test(n.message)), 20_000);
    assert.match(shown.message, /^AdaDiff: the language server crashed 5 times within 3 minutes and was not restarted/);
    assert.deepEqual(shown.buttons, ['Restart Server', 'Show Log']);
    const rendered = await askRunner('status-item');
    assert.match(rendered.text, /AdaDiff stopped: click to restart/);
    assert.match(rendered.ariaLabel, /crashed 5 times within 3 minutes and was not restarted/);
  });
  await new Promise((r) => setTimeout(r, 3000));
  assert.deepEqual(serverPids(), [], 'no server process comes back by itself');
  assert.equal(await hoverText(doc, positionOf(doc, FOX, 5)), '', 'no hovers from a stopped server');
  // What a command says meanwhile: the restart, not "client is not running".
  await assert.rejects(Promise.resolve(vscode.commands.executeCommand('adadiff.recalibrate')), /crashed 5 times within 3 minutes and is stopped: run “AdaDiff: Restart Server”/);
  await vscode.commands.executeCommand(stopped.command);
  await lensesFor(doc, FOX);
  await waitFor('the status item ready, without the crash note', () => (/^AdaDiff: ready/.test(api.status().accessibility) && !/crash/.test(api.status().text) ? true : undefined), 30_000);
  figure(`restarts 2-4: hover answers ${times.join(', ')} ms after the kill; the 5th crash within 3 minutes left it stopped`);
});

/** A zombie (an orphan nobody has reaped yet) is dead too. */
function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('Restart Server brings the lenses back', async () => {
  await vscode.commands.executeCommand('adadiff.restartServer');
  const doc = await open('README.md');
  await lensesFor(doc, FOX);
});
