// The VS Code side of AdaDiff, kept thin: start the language server (which finds prompts, loads
// the models and serves hover, CodeLens and previews), show its status, and host the preview panel.
import * as vscode from 'vscode';
import type { PreviewSubject, PreviewView } from '../shared/preview-messages';
import { ClientCommands, type PromptCommandArgs, SETTINGS_SECTION, ServerCommands } from '../shared/protocol';
import { AssetCommands } from './assets-command';
import { PoolSecret } from './pool-secret';
import { errorMessage, PreviewPanel } from './preview-panel';
import { AdaDiffServer } from './server';
import { StatusItem, type StatusView } from './status';
import { TrainCommand } from './train-command';
import { targetUri, WriteRefused } from './workspace-write';

let server: AdaDiffServer | undefined;

/** What activate returns (`vscode.extensions.getExtension('adadiff.adadiff').exports`): for other extensions and the e2e tests. */
export interface AdaDiffApi {
  /** What the status item shows now. */
  status(): StatusView;
}

export function activate(context: vscode.ExtensionContext): AdaDiffApi {
  const log = vscode.window.createOutputChannel('AdaDiff', { log: true });
  const pool = new PoolSecret(context.secrets);
  server = new AdaDiffServer(context, log, () => pool.env());
  const panel = new PreviewPanel(context.extensionUri, server, log);
  const assets = new AssetCommands(server, log);
  const commands = new Commands(server, panel, log, assets);
  const train = new TrainCommand(server, context.extensionUri, log);
  const status = new StatusItem(server, log);
  context.subscriptions.push(
    log,
    server,
    status,
    panel,
    vscode.commands.registerCommand(ClientCommands.preview, (args?: unknown) => commands.preview(args)),
    vscode.commands.registerCommand(ClientCommands.generateAsset, (args?: unknown) => commands.generateAsset(args)),
    vscode.commands.registerCommand('adadiff.generateAllAssets', (within?: vscode.Uri) => assets.generateAll(within)),
    vscode.commands.registerCommand('adadiff.restartServer', () => commands.restart()),
    vscode.commands.registerCommand('adadiff.showLog', () => log.show(true)),
    vscode.commands.registerCommand('adadiff.recalibrate', () => commands.recalibrate()),
    vscode.commands.registerCommand(ClientCommands.trainPolicy, (args?: unknown) => train.run(args)),
    vscode.commands.registerCommand('adadiff.setPoolPassword', () => pool.ask()),
    // The server has the password in its environment: a new one needs a new server.
    pool.onDidChange(() => void server?.restartIfRunning()),
  );
  return { status: () => status.view() };
}

export function deactivate(): Promise<void> | undefined {
  return server?.stop();
}

const isPromptArgs = (x: unknown): x is PromptCommandArgs =>
  typeof x === 'object' && x !== null && typeof (x as PromptCommandArgs).prompt === 'string';

class Commands {
  constructor(
    private readonly server: AdaDiffServer,
    private readonly panel: PreviewPanel,
    private readonly log: vscode.LogOutputChannel,
    private readonly assets: AssetCommands,
  ) {}

  /**
   * From a lens or a hover link (the server's arguments), else the prompt at the cursor.
   * Resolves with what the panel shows (for tests and other extensions), undefined if cancelled.
   */
  async preview(args: unknown): Promise<PreviewView | undefined> {
    const prompt = isPromptArgs(args) ? args : await this.promptAtCursor(ClientCommands.preview);
    if (!prompt) return undefined;
    const beside = vscode.workspace.getConfiguration(SETTINGS_SECTION).get<boolean>('preview.openBeside', true);
    return this.panel.preview(subjectOf(prompt), beside);
  }

  /** Generates the prompt's image into its target (or a file the user picks); resolves with the workspace-relative path. */
  async generateAsset(args: unknown): Promise<string | undefined> {
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showWarningMessage('AdaDiff writes no files in an untrusted workspace.');
      return undefined;
    }
    const prompt = isPromptArgs(args) ? args : await this.promptAtCursor(ClientCommands.generateAsset);
    if (!prompt) return undefined;
    // Targets `adadiff assets` knows go through it (lock file, safety rules); others: the panel and a save dialog.
    if (await this.assets.knows(prompt)) return this.assets.generateTarget(prompt);
    const target = prompt.target
      ? targetUri(prompt.uri, prompt.target)
      : await vscode.window.showSaveDialog({ filters: { 'PNG image': ['png'] }, saveLabel: 'Generate' });
    if (!target) {
      if (prompt.target) void vscode.window.showErrorMessage(`AdaDiff cannot write to ${prompt.target}.`);
      return undefined;
    }
    const result = await this.panel.preview(subjectOf(prompt), true);
    if (!result) return undefined;
    try {
      const written = await this.panel.saveTo(target);
      if (written) this.log.info(`generated ${written} (${result.steps} steps, seed ${result.seed})`);
      return written;
    } catch (err) {
      if (!(err instanceof WriteRefused)) throw err;
      void vscode.window.showWarningMessage(err.message);
      return undefined;
    }
  }

  async restart(): Promise<void> {
    try {
      await this.server.restart();
    } catch (err) {
      this.log.error(`restart failed: ${errorMessage(err)}`);
      void vscode.window.showErrorMessage(`AdaDiff: the language server did not start: ${errorMessage(err)}`, 'Show Log').then((pick) => {
        if (pick) this.log.show(true);
      });
    }
  }

  async recalibrate(): Promise<void> {
    await this.server.start();
    if (!this.server.supportsRecalibrate()) {
      void vscode.window.showInformationMessage('This AdaDiff server does not support recalibration.');
      return;
    }
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'AdaDiff: measuring the cost of a denoising step…' },
      () => vscode.commands.executeCommand(ServerCommands.recalibrate),
    );
  }

  /**
   * The prompt under the cursor, as the server sees it: its CodeLens carry the command arguments.
   * Falls back to the selected text when the cursor is on no prompt (or lenses are turned off).
   */
  private async promptAtCursor(command: string): Promise<PromptCommandArgs | undefined> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('Open a document with an image prompt first.');
      return undefined;
    }
    const doc = editor.document;
    const pos = editor.selection.active;
    await this.server.start();
    const lenses = (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', doc.uri, 100)) ?? [];
    const candidates = lenses.filter((l) => l.command?.command === command && isPromptArgs(l.command.arguments?.[0]));
    const hit = candidates.find((l) => l.range.contains(pos)) ?? candidates.find((l) => l.range.start.line === pos.line);
    if (hit) return hit.command!.arguments![0] as PromptCommandArgs;
    if (!editor.selection.isEmpty) {
      const range = editor.selection;
      return { uri: doc.uri.toString(), range: { start: range.start, end: range.end }, prompt: doc.getText(range) };
    }
    void vscode.window.showInformationMessage('No image prompt at the cursor: put it on a prompt, or select the prompt text.');
    return undefined;
  }
}

function subjectOf(args: PromptCommandArgs): PreviewSubject {
  const resource = args.uri ? vscode.Uri.parse(args.uri) : undefined;
  const seed = args.seed ?? vscode.workspace.getConfiguration(SETTINGS_SECTION, resource).get<number>('seed', 0);
  return { uri: args.uri, prompt: args.prompt, negativePrompt: args.negativePrompt, seed, steps: args.steps, size: args.size, target: args.target };
}
