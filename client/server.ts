// Owns the LanguageClient: started lazily when a document the server cares about is open,
// restarted on demand, after workspace trust is granted and when the set of languages changes.
// A crashed server is restarted up to the RestartPolicy's limit; each crash, and giving up, is
// reported through onState, so that the status item can say so.
import * as vscode from 'vscode';
import {
  CloseAction,
  type CloseHandlerResult,
  ErrorAction,
  type ErrorHandler,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
  TransportKind,
} from 'vscode-languageclient/node';
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
import { RestartPolicy } from './restart-policy';

/** A crash of the server process (its connection closed without our asking). */
export interface ServerCrash {
  /** When the connection closed (ms since the epoch). */
  at: number;
  /** Crashes within the restart window, this one included. */
  crashes: number;
  maxRestarts: number;
  windowMs: number;
  /** True: restarted; false: the restarts are spent and the server stays stopped. */
  restarted: boolean;
}

/** The client's state; `crash` is the last crash of this client (a new client, e.g. after Restart Server, has none). */
export interface ServerState {
  state: 'starting' | 'running' | 'stopped';
  crash?: ServerCrash;
}

export class AdaDiffServer implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient> | undefined;
  /** Set when the client stopped restarting a crashing server; Restart Server clears it. */
  private gaveUp: ServerCrash | undefined;
  private readonly statusEmitter = new vscode.EventEmitter<StatusParams>();
  private readonly progressEmitter = new vscode.EventEmitter<PreviewProgressParams>();
  private readonly stateEmitter = new vscode.EventEmitter<ServerState>();
  private readonly disposables: vscode.Disposable[] = [this.statusEmitter, this.progressEmitter, this.stateEmitter];
  /** adadiff/status notifications from the server. */
  readonly onStatus = this.statusEmitter.event;
  /** adadiff/previewProgress notifications, for whichever preview asked. */
  readonly onPreviewProgress = this.progressEmitter.event;
  readonly onState = this.stateEmitter.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
    /** Added to the server's environment at every (re)start: secrets that must not travel in requests (pool-secret.ts). */
    private readonly env: () => Promise<Record<string, string>> = async () => ({}),
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

  /** The running client, starting it first if needed; rejects once the restarts after crashes are spent. */
  start(): Promise<LanguageClient> {
    if (this.gaveUp) return Promise.reject(new Error(`the language server crashed ${crashCount(this.gaveUp)} and is stopped: run “AdaDiff: Restart Server”`));
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

  /** A restart where a server runs or starts; nothing where none was wanted yet. */
  async restartIfRunning(): Promise<void> {
    if (this.client || this.starting) await this.restart();
  }

  /** Whether the running server executes `adadiff.server.recalibrate` (listed in its capabilities). */
  supportsRecalibrate(): boolean {
    return this.client?.initializeResult?.capabilities.executeCommandProvider?.commands.includes(ServerCommands.recalibrate) ?? false;
  }

  private async create(): Promise<LanguageClient> {
    const module = this.context.asAbsolutePath('dist/server.js');
    const env = { ...process.env, ...(await this.env()) };
    const serverOptions: ServerOptions = {
      run: { module, transport: TransportKind.ipc, options: { env } },
      debug: { module, transport: TransportKind.ipc, options: { env, execArgv: ['--nolazy', '--inspect=6011'] } },
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
    const crashes = this.crashHandler(() => client);
    clientOptions.errorHandler = crashes.handler;
    const client = new LanguageClient('adadiff', 'AdaDiff Language Server', serverOptions, clientOptions);
    client.onNotification(StatusNotification, (status) => this.statusEmitter.fire(status));
    client.onNotification(PreviewProgressNotification, (progress) => this.progressEmitter.fire(progress));
    client.onDidChangeState((e) => {
      // A client we stopped on purpose (restart, trust granted) is no news.
      if (client !== this.client) return;
      // Between a crash and its restart the client passes through 'stopped': the restart is the news.
      if (e.newState === State.Stopped && crashes.restarting()) return;
      const state = e.newState === State.Running ? 'running' : e.newState === State.Starting ? 'starting' : 'stopped';
      this.stateEmitter.fire({ state, crash: crashes.last() });
    });
    this.client = client;
    this.log.info(`starting the language server (${module}), workspace ${vscode.workspace.isTrusted ? 'trusted' : 'untrusted'}`);
    await client.start();
    void vscode.commands.executeCommand('setContext', 'adadiff.canRecalibrate', this.supportsRecalibrate());
    return client;
  }

  /**
   * One client's error handler: the connection's errors as vscode-languageclient's default handles
   * them (go on for the first three, then shut down); a closed connection is a crash, restarted
   * while the RestartPolicy allows. `handled: true` keeps the library's own pop-ups away: the
   * status item says it, and giving up gets a notification with a Restart Server button.
   */
  private crashHandler(client: () => LanguageClient): { handler: ErrorHandler; last(): ServerCrash | undefined; restarting(): boolean } {
    const policy = new RestartPolicy();
    let last: ServerCrash | undefined;
    let restarting = false;
    const handler: ErrorHandler = {
      error: (_error, _message, count) => ({ action: count !== undefined && count <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown }),
      closed: (): CloseHandlerResult => {
        if (client() !== this.client) return { action: CloseAction.DoNotRestart, handled: true };
        const verdict = policy.crashed();
        last = { at: Date.now(), crashes: verdict.crashes, maxRestarts: verdict.maxRestarts, windowMs: verdict.windowMs, restarted: verdict.restart };
        const within = crashCount(last);
        if (verdict.restart) {
          restarting = true;
          this.log.error(`the language server crashed (${within}); restarting it (restart ${verdict.crashes} of ${verdict.maxRestarts})`);
          this.stateEmitter.fire({ state: 'starting', crash: last });
          return { action: CloseAction.Restart, handled: true };
        }
        this.gaveUp = last;
        this.log.error(`the language server crashed ${within}; not restarting it again. Run "AdaDiff: Restart Server" to start it.`);
        void vscode.window
          .showErrorMessage(`AdaDiff: the language server crashed ${within} and was not restarted. Restart it when the cause is fixed; the log may say why it crashed.`, 'Restart Server', 'Show Log')
          .then((pick) => {
            if (pick === 'Restart Server') void vscode.commands.executeCommand('adadiff.restartServer');
            if (pick === 'Show Log') this.log.show(true);
          });
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    };
    return {
      handler,
      last: () => last,
      restarting: () => {
        // Consumed by the one 'stopped' the restart passes through.
        const was = restarting;
        restarting = false;
        return was;
      },
    };
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.starting = undefined;
    this.gaveUp = undefined;
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

/** "5 times within 3 minutes" */
export const crashCount = (c: ServerCrash): string => `${c.crashes} time${c.crashes === 1 ? '' : 's'} within ${c.windowMs / 60_000} minutes`;
