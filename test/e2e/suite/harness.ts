// What the extension-test suites (index.ts: trust disabled; trust.ts: an untrusted folder) share:
// a list of async checks reported one line each (deliberately no test framework), and the ways
// to wait for the server, open documents and read its hovers and lenses through the vscode API.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { AdaDiffApi } from '../../../client/extension';
import type { PromptCommandArgs } from '../../../shared/protocol';
import type { Asked } from './answers';

const tests: [string, () => Promise<void>][] = [];
export const test = (name: string, fn: () => Promise<void>) => tests.push([name, fn]);

/** VS Code calls this; a rejection fails the run. */
export async function run(): Promise<void> {
  const failed: string[] = [];
  for (const [name, fn] of tests) {
    const t0 = Date.now();
    try {
      await fn();
      console.log(`✔ ${name} (${Date.now() - t0} ms)`);
    } catch (err) {
      failed.push(name);
      console.error(`✖ ${name} (${Date.now() - t0} ms)\n${err instanceof Error ? err.stack : String(err)}`);
    }
  }
  console.log(`${tests.length - failed.length} of ${tests.length} extension tests passed`);
  if (failed.length) throw new Error(`failed: ${failed.join('; ')}`);
}

/** A line the e2e runner prints as it is (figures for the report). */
export const figure = (line: string) => console.log(`✔ figure: ${line}`);

let asked = 0;

/**
 * Asks the e2e runner for what only the workbench shows or lets one do (../answers.ts); resolves
 * with its answer. The bundle runs from HOME/suite/, the runner answers in HOME/handshake/.
 */
export async function askRunner<K extends keyof Asked>(name: K): Promise<Asked[K]> {
  const answer = join(__dirname, '..', 'handshake', `${name}-${++asked}.json`);
  console.log(`@@e2e ${name} ${answer}`);
  const text = await waitFor(`the runner's answer to ${name}`, () => (existsSync(answer) ? readFileSync(answer, 'utf8') : undefined), 60_000);
  const parsed = JSON.parse(text) as Asked[K] | { error: string };
  if (parsed && typeof parsed === 'object' && 'error' in parsed) throw new Error(`the runner, at ${name}: ${String(parsed.error)}`);
  return parsed as Asked[K];
}

/**
 * Runs `check` when a runner answers (run.ts sets ADADIFF_E2E_RUNNER in code-server's environment);
 * under @vscode/test-electron nobody does, and the line says what went unchecked.
 */
export async function withRunner(what: string, check: () => Promise<void>): Promise<void> {
  if (process.env.ADADIFF_E2E_RUNNER) return check();
  console.log(`  (no e2e runner to read the workbench: ${what} not checked here; test/e2e/run.ts checks it)`);
}

/** The notification center's notifications, as the runner reads them. */
export async function notifications(): Promise<Asked['notifications']> {
  await vscode.commands.executeCommand('notifications.showList');
  try {
    return await askRunner('notifications');
  } finally {
    await vscode.commands.executeCommand('notifications.hideList');
  }
}

export const workspace = () => vscode.workspace.workspaceFolders![0].uri;

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export async function open(file: string): Promise<vscode.TextDocument> {
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(workspace(), file));
  await vscode.window.showTextDocument(doc);
  return doc;
}

/** The document's lenses, resolved (cost titles come from codeLens/resolve). */
export const lenses = async (doc: vscode.TextDocument) =>
  (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', doc.uri, 100)) ?? [];

export const promptArgs = (lens: vscode.CodeLens): PromptCommandArgs | undefined => lens.command?.arguments?.[0] as PromptCommandArgs | undefined;

/** Waits until the server has started, loaded its model and answers with lenses for `prompt`. */
export const lensesFor = (doc: vscode.TextDocument, prompt: string) =>
  waitFor(`CodeLens for "${prompt}"`, async () => {
    const all = await lenses(doc);
    return all.some((l) => promptArgs(l)?.prompt === prompt && l.command?.command === 'adadiff.preview') ? all : undefined;
  });

export const positionOf = (doc: vscode.TextDocument, text: string, offset = 3): vscode.Position => {
  const at = doc.getText().indexOf(text);
  assert.ok(at >= 0, `"${text}" is in ${doc.uri.path}`);
  return doc.positionAt(at + offset);
};

export async function hoverText(doc: vscode.TextDocument, position: vscode.Position): Promise<string> {
  const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', doc.uri, position);
  return (hovers ?? [])
    .flatMap((h) => h.contents)
    .map((c) => (typeof c === 'string' ? c : c.value))
    .join('\n');
}

/** The extension's API (activate's return value): the status item's text and tooltip. */
export async function adadiff(): Promise<AdaDiffApi> {
  const ext = vscode.extensions.getExtension<AdaDiffApi>('adadiff.adadiff');
  assert.ok(ext, 'the AdaDiff extension is installed');
  return ext.isActive ? ext.exports : ext.activate();
}

/**
 * The language server's process: the child of this extension host (the client forks it here)
 * running dist/server.js. Linux ps.
 */
export function serverPids(): number[] {
  return childProcesses(process.pid)
    .filter((p) => /dist\/server\.js/.test(p.args))
    .map((p) => p.pid);
}

export function childProcesses(pid: number): { pid: number; args: string }[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ pid: Number(m[1]), args: m[2] }));
  } catch {
    return []; // ps exits 1 when there are none
  }
}

export const FOX = 'a watercolor fox in a snowy forest, soft morning light';
export const LIGHTHOUSE = 'a lighthouse on a cliff at dusk, oil painting';
export const ASTRONAUT = 'an astronaut riding a horse on mars, photorealistic';
