// The language server: standard LSP (hover, codeLens + resolve, executeCommand, work-done progress,
// cancellation) over the vscode-free core, plus the typed messages of shared/protocol.ts.
//
// Threads: hovers and lenses run on this thread (tokenizer + policy here, the text encoder in this
// process's text thread, text-thread.ts: milliseconds); previews run in the render worker, a child
// process (renderer.ts), because onnxruntime-node blocks the calling thread for each UNet call and
// for each session it creates. So a hover never waits behind a generation, the server answers while
// a multi-gigabyte UNet or a big text encoder loads, and a crash of the worker fails its job, not
// the server. Each model part has one session per server: the text encoder in the text thread, the
// UNet and VAE in the worker only (it borrows this process's text encoder, see remote-text.ts), and
// the cost hovers show is measured there (remote-costs.ts).
//
// Why not the other way round (everything in the worker, hovers asking it)? A hover would then
// wait behind every UNet call of a preview: seconds per step for a full-size model.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  CodeActionKind,
  CodeLensRefreshRequest,
  type Connection,
  DidChangeConfigurationNotification,
  type InitializeParams,
  type InitializeResult,
  TextDocuments,
  TextDocumentSyncKind,
} from 'vscode-languageserver';
import { bundledModelDir } from '../cli/args';
import { Engine, type ModelParts } from '../engine';
import { loadTextModel, type TextModel } from '../model/session';
import type { InitializationOptions } from '../../shared/protocol';
import { AssetsCommand } from './assets-command';
import { registerCommands, SERVER_COMMANDS } from './commands';
import { progressOf, type ServerContext, spansOfDocuments } from './context';
import { PromptIndex } from './documents';
import { registerEditorFeatures } from './editor-features';
import { Engines } from './handles';
import { ModelManager } from './models';
import { RemoteCosts } from './remote-costs';
import { registerRenderRequests } from './render-requests';
import { Renderer } from './renderer';
import { TextThread } from './text-thread';
import { SettingsCache } from './settings';
import { clampedTextDocuments } from './text-documents';
import { PolicyTraining } from './train-command';

export function defaultCacheDir(): string {
  return process.env.ADADIFF_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'adadiff');
}

const CAPABILITIES: InitializeResult['capabilities'] = {
  textDocumentSync: TextDocumentSyncKind.Incremental,
  hoverProvider: true,
  codeLensProvider: { resolveProvider: true },
  codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
  executeCommandProvider: { commands: [...SERVER_COMMANDS] },
  workspace: { workspaceFolders: { supported: true, changeNotifications: true } },
};

/** The workspace folders of `initialize`, as paths (only file: folders; rootUri for old clients). */
function initialFolders(params: InitializeParams): string[] {
  return (params.workspaceFolders ?? [])
    .map((f) => f.uri)
    .concat(params.workspaceFolders ? [] : params.rootUri ? [params.rootUri] : [])
    .filter((u) => u.startsWith('file:'))
    .map((u) => fileURLToPath(u));
}

export function startServer(connection: Connection): void {
  // Phase 1, before the client says anything: the documents, and the render worker's side.
  const documents = new TextDocuments(clampedTextDocuments);
  const prompts = new PromptIndex();
  // The text encoders' sessions, in a thread of this process (text-thread.ts); the render worker
  // borrows the text encoder hovers use (remote-text.ts).
  const textThread = new TextThread();
  const renderer = new Renderer(async ({ model, providers }) => (await engines.get(providers).open(model)).model);
  let engines: Engines<TextModel>;
  let workspaceFolders: string[] = [];
  let ctx: ServerContext | undefined;

  // Phase 2, initialize: what the client told us (trust, cache folder, capabilities) builds the
  // context every handler reads, then the handlers are registered over it.
  connection.onInitialize((params): InitializeResult => {
    ctx = createContext(params);
    registerEditorFeatures(ctx);
    registerRenderRequests(ctx);
    registerCommands(ctx);
    return { capabilities: CAPABILITIES, serverInfo: { name: 'adadiff', version: require('../../package.json').version } };
  });

  function createContext(params: InitializeParams): ServerContext {
    const init = (params.initializationOptions ?? {}) as InitializationOptions;
    const trusted = init.trusted !== false;
    const cacheDir = init.cacheDir || defaultCacheDir();
    const caps = params.capabilities;
    const settings = new SettingsCache(connection, !!caps.workspace?.configuration);
    const canRefreshLenses = !!caps.workspace?.codeLens?.refreshSupport;
    workspaceFolders = initialFolders(params);
    const refreshLenses = () => {
      if (canRefreshLenses) void connection.sendRequest(CodeLensRefreshRequest.type).catch(() => undefined);
    };
    // This process opens the text part only (its sessions in the text thread); the costs come from
    // the worker, which holds the rest.
    const textParts = (providers: string[]): ModelParts<TextModel> => ({
      load: async (folder, opts) => loadTextModel(folder, { ...opts, text: await textThread.textPart({ model: folder.dir, providers }, folder.tokenizerDir) }),
      costs: (model, store) => new RemoteCosts({ model, store, renderer, providers, cacheDir, onChange: (outcome) => models.costsChanged(model.folder.dir, outcome) }),
    });
    engines = new Engines((order) => new Engine({ cacheDir, providers: order, parts: textParts(order ?? []) }));
    const models: ModelManager = new ModelManager(connection, engines, {
      trusted,
      bundledDir: init.bundledModelPath || bundledModelDir(),
      workspaceFolders: () => workspaceFolders,
      refreshLenses,
      firstStep: (job) => renderer.firstStep({ ...job, cacheDir }),
    });
    const progressFor = progressOf(connection, !!caps.window?.workDoneProgress);
    return {
      connection,
      settings,
      models,
      renderer,
      textThread,
      cacheDir,
      spansOf: spansOfDocuments(documents, prompts, () => settings),
      progressFor,
      refreshLenses,
      assets: new AssetsCommand({
        renderer,
        settings,
        models,
        cacheDir: () => cacheDir,
        trusted: () => trusted,
        workspaceFolders: () => workspaceFolders,
        log: (line) => connection.console.info(line),
      }),
      training: new PolicyTraining({
        settings,
        models,
        renderer,
        trusted,
        cacheDir,
        progress: progressFor,
        workspaceFolders: () => workspaceFolders,
        openText: (path) => documents.get(pathToFileURL(path).href)?.getText(),
        refreshLenses,
      }),
    };
  }

  // Phase 3, the session's life: folders and settings change, documents close, the client shuts down.
  connection.onInitialized(() => {
    void connection.client.register(DidChangeConfigurationNotification.type, { section: 'adadiff' }).catch(() => undefined);
    connection.workspace.onDidChangeWorkspaceFolders((e) => {
      const removed = new Set(e.removed.map((f) => fileURLToPath(f.uri)));
      workspaceFolders = workspaceFolders.filter((f) => !removed.has(f)).concat(e.added.map((f) => fileURLToPath(f.uri)));
    });
  });

  connection.onDidChangeConfiguration(() => {
    if (!ctx) return;
    ctx.settings.forget();
    prompts.clear();
    ctx.models.reset();
    ctx.refreshLenses();
  });

  documents.onDidClose((e) => {
    prompts.forget(e.document.uri);
    ctx?.settings.forget(e.document.uri);
  });

  connection.onShutdown(async () => {
    await renderer.dispose();
    await engines?.dispose();
    await textThread.dispose();
  });

  documents.listen(connection);
  connection.listen();
}
