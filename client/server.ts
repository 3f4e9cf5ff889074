// Owns the LanguageClient: started lazily when a document the server cares about is open,
// restarted on demand, after workspace trust is granted and when the set of languages changes.
// A crashed server is restarted by the client's default error handler.
import * as vscode from 'vscode';
import { LanguageClient, type LanguageClientOptions, type ServerOptions, State, TransportKind } from 'vscode-languageclient/node';
import { BUILTIN_PROMPT_LANGUAGES, entryLanguageId } from '../shared/languages';
import {
  ClientCommands,
  type InitializationOptions,
  PreviewProgressNotification,
  type PreviewProgressParams,
  SETTINGS_SECTION,
  ServerCommands,
  StatusNotification,
  type StatusParams,
} from '../shared/protocol';

export class AdaDiffServer implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient> | undefined;
  private readonly statusEmitter = new vscode.EventEmitter<StatusParams>();
  private readonly progressEmitter = new vscode.EventEmitter<PreviewProgressParams>();
  private readonly stateEmitter = new vscode.EventEmitter<'starting' | 'running' | 'stopped'>();
  private readonly disposables: vscode.Disposable[] = [this.statusEmitter, this.progressEmitter, this.stateEmitter];
  /** adadiff/status notifications from the server. */
  readonly onStatus = this.statusEmitter.event;
  /** adadiff/previewProgress notifications, for whichever preview asked. */
  readonly onPreviewProgress = this.progressEmitter.event;
  readonly onState = this.stateEmitter.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      vscode.workspace.onDidOpenTextDocument((doc) => {
        if (!this.client && this.wants(doc)) void this.start();
      }),
      // A trusted workspace may name its own model and lets the server write: start over with the new options.
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        if (this.client) void this.restart();
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (this.client && e.affectsConfiguration(`${SETTINGS_SECTION}.prompts.languages`)) void this.restart();
      }),
    );
    if (vscode.workspace.textDocuments.some((doc) => this.wants(doc))) void this.start();
  }

  private languages(): string[] {
    // Languages with a built-in prompt finder, and those `adadiff.prompts.languages` adds (an entry
    // `mdx=markdown` is the language id mdx, scanned as Markdown by the server).
    const extra = vscode.workspace.getConfiguration(SETTINGS_SECTION).get<string[]>('prompts.languages', []);
    return [...new Set([...BUILTIN_PROMPT_LANGUAGES, ...extra.map(entryLanguageId)])];
  }

  private wants(doc: vscode.TextDocument): boolean {
    return (doc.uri.scheme === 'file' || doc.uri.scheme === 'untitled') && this.languages().includes(doc.languageId);
  }

  /** The running client, starting it first if needed. */
  start(): Promise<LanguageClient> {
    this.starting ??= this.create().catch((err: unknown) => {
      this.starting = undefined;
      throw err;
    });
    return this.starting;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Whether the running server executes `adadiff.server.recalibrate` (listed in its capabilities). */
  supportsRecalibrate(): boolean {
    return this.client?.initializeResult?.capabilities.executeCommandProvider?.commands.includes(ServerCommands.recalibrate) ?? false;
  }

  private async create(): Promise<LanguageClient> {
    const module = this.context.asAbsolutePath('dist/server.js');
    const serverOptions: ServerOptions = {
      run: { module, transport: TransportKind.ipc },
      debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6011'] } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: this.languages().flatMap((language) => [
        { scheme: 'file', language },
        { scheme: 'untitled', language },
      ]),
      // Evaluated at every (re)start, so a restart after trust is granted sends trusted: true.
      initializationOptions: (): InitializationOptions => ({
        trusted: vscode.workspace.isTrusted,
        bundledModelPath: this.context.asAbsolutePath('models/default'),
        cacheDir: this.context.globalStorageUri.fsPath,
      }),
      // The server pulls settings per resource (workspace/configuration); this only tells it when to pull again.
      synchronize: { configurationSection: SETTINGS_SECTION },
      outputChannel: this.log,
      // The hover's Preview / Generate asset / Train a step policy links are command: links; only ours may run.
      markdown: { isTrusted: { enabledCommands: [ClientCommands.preview, ClientCommands.generateAsset, ClientCommands.trainPolicy] } },
    };
    const client = new LanguageClient('adadiff', 'AdaDiff Language Server', serverOptions, clientOptions);
    client.onNotification(StatusNotification, (status) => this.statusEmitter.fire(status));
    client.onNotification(PreviewProgressNotification, (progress) => this.progressEmitter.fire(progress));
    client.onDidChangeState((e) => {
      // A client we stopped on purpose (restart, trust granted) is no news; one that stopped by
      // itself gave up restarting a crashing server.
      if (client !== this.client) return;
      this.stateEmitter.fire(e.newState === State.Running ? 'running' : e.newState === State.Starting ? 'starting' : 'stopped');
    });
    this.client = client;
    this.log.info(`starting the language server (${module}), workspace ${vscode.workspace.isTrusted ? 'trusted' : 'untrusted'}`);
    await client.start();
    void vscode.commands.executeCommand('setContext', 'adadiff.canRecalibrate', this.supportsRecalibrate());
    return client;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.starting = undefined;
    try {
      await client?.dispose();
    } catch (err) {
      this.log.warn(`stopping the language server: ${String(err)}`);
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
