// The language server: standard LSP (hover, codeLens + resolve, executeCommand, work-done progress,
// cancellation) over the vscode-free core, plus the typed messages of shared/protocol.ts.
//
// Threads: hovers and lenses run on this thread (text encoder + policy: milliseconds); previews run
// in the render worker, a child process (renderer.ts), because onnxruntime-node blocks the calling
// thread for each UNet call and for each session it creates. So a hover never waits behind a
// generation, nor behind a multi-gigabyte UNet loading, and a crash of the worker fails its job,
// not the server. Each model part has one session per server: the tokenizer, text encoder and
// policy here, the UNet and VAE in the worker only (it borrows this process's text encoder, see
// remote-text.ts), and the cost hovers show is measured there (remote-costs.ts).
//
// Why not the other way round (everything in the worker, hovers asking it)? A hover would then
// wait behind every UNet call of a preview: seconds per step for a full-size model.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  type CancellationToken,
  type CodeAction,
  CodeActionKind,
  type CodeLens,
  CodeLensRefreshRequest,
  type Connection,
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  type Hover,
  type InitializeResult,
  LSPErrorCodes,
  MarkupKind,
  ResponseError,
  TextDocuments,
  TextDocumentSyncKind,
  type WorkDoneProgressParams,
  type WorkDoneProgressReporter,
} from 'vscode-languageserver';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { estimateSeconds } from '../adadiff/cost';
import { bundledModelDir } from '../cli/args';
import { Engine, type ModelParts } from '../engine';
import { liveSessions, loadTextModel, type TextModel } from '../model/session';
import {
  AssetTargetRequest,
  ClientCommands,
  CompareRequest,
  SessionsRequest,
  type CompareResult,
  type InitializationOptions,
  type PreviewParams,
  PreviewProgressNotification,
  PreviewRequest,
  type PreviewResult,
  ServerCommands,
} from '../../shared/protocol';
import type { PromptSpan } from '../prompts/types';
import { AssetsCommand } from './assets-command';
import { abortSignal } from './cancellation';
import { PolicyTraining, TRAINING_COMMANDS } from './train-command';
import { PromptIndex, spanAt, touches } from './documents';
import { clampedTextDocuments } from './text-documents';
import { Engines } from './handles';
import { ModelManager, ModelUnavailable, type ReadyModel } from './models';
import { RemoteCosts } from './remote-costs';
import { commandArgs, cutOffLensTitle, cutOffMarkdown, hasAssetTarget, hoverMarkdown, lensTitle, lensTooltip, unavailableMarkdown } from './present';
import { CancelledError, Renderer, type StepEvent } from './renderer';
import { generationSettings, SettingsCache } from './settings';
import { useStepPolicyFix, wantsKind } from './steps-fix';

/** Intermediate images per preview: enough to watch it sharpen, few enough VAE decodes. */
const PREVIEW_IMAGES = 8;

interface LensData {
  uri: string;
  version: number;
  index: number;
}

export function defaultCacheDir(): string {
  return process.env.ADADIFF_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'adadiff');
}

/** A prompt's own `steps: N` option overrides the policy (`steps: auto` does not). */
const fixedSteps = (span: PromptSpan): number | undefined => (typeof span.options.steps === 'number' ? span.options.steps : undefined);

const cancelled = () => new ResponseError(LSPErrorCodes.RequestCancelled, 'cancelled');

/** Settle with the work, or reject with RequestCancelled as soon as the token fires. */
function untilCancelled<T>(work: Promise<T>, token: CancellationToken): Promise<T> {
  if (token.isCancellationRequested) return Promise.reject(cancelled());
  return new Promise<T>((resolve, reject) => {
    const sub = token.onCancellationRequested(() => reject(cancelled()));
    work.then(resolve, reject).finally(() => sub.dispose());
  });
}

export function startServer(connection: Connection): void {
  const documents = new TextDocuments(clampedTextDocuments);
  const prompts = new PromptIndex();
  // The worker borrows the text encoder hovers use (remote-text.ts).
  const renderer = new Renderer(async ({ model, providers }) => (await engines.get(providers).open(model)).model);
  let cacheDir = defaultCacheDir();
  let trusted = true;
  let workspaceFolders: string[] = [];
  let canRefreshLenses = false;
  let canCreateProgress = false;
  let settings: SettingsCache = new SettingsCache(connection, false);
  let engines: Engines<TextModel>;
  let models: ModelManager;
  let assets: AssetsCommand;
  let training: PolicyTraining;

  /** Lenses show the model's predictions: after a settings, calibration or policy change the client fetches them again. */
  const refreshLenses = () => {
    if (canRefreshLenses) void connection.sendRequest(CodeLensRefreshRequest.type).catch(() => undefined);
  };

  connection.onInitialize((params): InitializeResult => {
    const init = (params.initializationOptions ?? {}) as InitializationOptions;
    trusted = init.trusted !== false;
    cacheDir = init.cacheDir || cacheDir;
    const caps = params.capabilities;
    settings = new SettingsCache(connection, !!caps.workspace?.configuration);
    canRefreshLenses = !!caps.workspace?.codeLens?.refreshSupport;
    canCreateProgress = !!caps.window?.workDoneProgress;
    workspaceFolders = (params.workspaceFolders ?? [])
      .map((f) => f.uri)
      .concat(params.workspaceFolders ? [] : params.rootUri ? [params.rootUri] : [])
      .filter((u) => u.startsWith('file:'))
      .map((u) => fileURLToPath(u));
    // This thread opens the text part only; the costs come from the worker, which holds the rest.
    const textParts = (providers: string[]): ModelParts<TextModel> => ({
      load: (folder, opts) => loadTextModel(folder, opts),
      costs: (model, store) => new RemoteCosts({ model, store, renderer, providers, cacheDir, onChange: (outcome) => models.costsChanged(model.folder.dir, outcome) }),
    });
    engines = new Engines((order) => new Engine({ cacheDir, providers: order, parts: textParts(order ?? []) }));
    models = new ModelManager(connection, engines, {
      trusted,
      bundledDir: init.bundledModelPath || bundledModelDir(),
      workspaceFolders: () => workspaceFolders,
      refreshLenses,
    });
    assets = new AssetsCommand({
      renderer,
      settings,
      models,
      cacheDir: () => cacheDir,
      trusted: () => trusted,
      workspaceFolders: () => workspaceFolders,
      log: (line) => connection.console.info(line),
    });
    training = new PolicyTraining({
      settings,
      models,
      renderer,
      trusted,
      cacheDir,
      progress: progressFor,
      workspaceFolders: () => workspaceFolders,
      openText: (path) => documents.get(pathToFileURL(path).href)?.getText(),
      refreshLenses,
    });
    return {
      capabilities: {
        textDocumentSync: TextDocumentSyncKind.Incremental,
        hoverProvider: true,
        codeLensProvider: { resolveProvider: true },
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
        executeCommandProvider: { commands: [ServerCommands.recalibrate, ServerCommands.generateAssets, ...TRAINING_COMMANDS] },
        workspace: { workspaceFolders: { supported: true, changeNotifications: true } },
      },
      serverInfo: { name: 'adadiff', version: require('../../package.json').version },
    };
  });

  connection.onInitialized(() => {
    void connection.client.register(DidChangeConfigurationNotification.type, { section: 'adadiff' }).catch(() => undefined);
    connection.workspace.onDidChangeWorkspaceFolders((e) => {
      const removed = new Set(e.removed.map((f) => fileURLToPath(f.uri)));
      workspaceFolders = workspaceFolders.filter((f) => !removed.has(f)).concat(e.added.map((f) => fileURLToPath(f.uri)));
    });
  });

  connection.onDidChangeConfiguration(() => {
    settings.forget();
    prompts.clear();
    models.reset();
    refreshLenses();
  });

  documents.onDidClose((e) => {
    prompts.forget(e.document.uri);
    settings.forget(e.document.uri);
  });

  async function spansOf(uri: string): Promise<{ doc: TextDocument; spans: PromptSpan[]; cutOff: boolean } | undefined> {
    const doc = documents.get(uri);
    if (!doc) return undefined;
    const s = await settings.get(uri);
    return { doc, ...(await prompts.scan(doc, s.prompts)) };
  }

  connection.onHover(async (params, token): Promise<Hover | null> => {
    const found = await untilCancelled(spansOf(params.textDocument.uri), token);
    const span = found && spanAt(found.spans, params.position);
    if (!span) return found?.cutOff ? { contents: { kind: MarkupKind.Markdown, value: cutOffMarkdown(found.doc.getText().length) } } : null;
    const uri = params.textDocument.uri;
    const s = await settings.get(uri);
    let value: string;
    try {
      const { model, prediction, policyChoice, generation } = await untilCancelled(models.predict(s, uri, span.text, fixedSteps(span)), token);
      value = hoverMarkdown({ uri, span, prediction, policyChoice, generation, modelName: model.name, note: model.choice.note });
    } catch (err) {
      if (!(err instanceof ModelUnavailable)) throw err;
      value = unavailableMarkdown(err.message, err.choice.note);
    }
    return { contents: { kind: MarkupKind.Markdown, value }, range: span.range };
  });

  connection.onCodeLens(async (params, token): Promise<CodeLens[]> => {
    const uri = params.textDocument.uri;
    const s = await untilCancelled(settings.get(uri), token);
    if (!s.codeLens.enabled) return [];
    const found = await untilCancelled(spansOf(uri), token);
    if (!found) return [];
    const top = { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };
    const cutOff: CodeLens[] = found.cutOff ? [{ range: top, command: { title: cutOffLensTitle(found.doc.getText().length), command: '' } }] : [];
    return cutOff.concat(found.spans.flatMap((span, index) => {
      const args = commandArgs(uri, span);
      const range = { start: span.range.start, end: span.range.start };
      const lenses: CodeLens[] = [
        { range, data: { uri, version: found.doc.version, index } satisfies LensData },
        { range, command: { title: 'Preview', command: ClientCommands.preview, arguments: [args] } },
      ];
      if (hasAssetTarget(span)) lenses.push({ range, command: { title: 'Generate asset', command: ClientCommands.generateAsset, arguments: [args] } });
      return lenses;
    }));
  });

  connection.onCodeLensResolve(async (lens, token): Promise<CodeLens> => {
    const data = lens.data as LensData | undefined;
    if (!data || lens.command) return lens;
    const found = await untilCancelled(spansOf(data.uri), token);
    const span = found && found.doc.version === data.version ? found.spans[data.index] : undefined;
    if (!span) return { ...lens, command: { title: 'AdaDiff: …', command: '' } };
    const s = await settings.get(data.uri);
    try {
      const { prediction, policyChoice } = await untilCancelled(models.predict(s, data.uri, span.text, fixedSteps(span)), token);
      const tooltip = lensTooltip(prediction);
      return { ...lens, command: { title: lensTitle(prediction, policyChoice), command: '', ...(tooltip ? { tooltip } : {}) } };
    } catch (err) {
      if (!(err instanceof ModelUnavailable)) throw err;
      return { ...lens, command: { title: 'AdaDiff: model not loaded (hover for details)', command: '' } };
    }
  });

  // Asked at every cursor move: only prompts whose steps are an integer literal in code cost a
  // prediction, and those are cached as for hovers.
  connection.onCodeAction(async (params, token): Promise<CodeAction[]> => {
    if (!wantsKind(params.context.only, CodeActionKind.QuickFix)) return [];
    const uri = params.textDocument.uri;
    const found = await untilCancelled(spansOf(uri), token);
    const touched = (found?.spans ?? []).filter((span) => {
      const literal = span.options.stepsRange;
      return literal && (touches(span.range, params.range) || touches(literal, params.range));
    });
    if (!touched.length) return [];
    const s = await settings.get(uri);
    const actions = new Map<string, CodeAction>();
    for (const span of touched) {
      try {
        const { policyChoice } = await untilCancelled(models.predict(s, uri, span.text, fixedSteps(span)), token);
        const fix = useStepPolicyFix(uri, span, policyChoice);
        // Prompts in one list share their steps literal: the same rewrite is offered once.
        if (fix) actions.set(JSON.stringify(fix.edit), fix);
      } catch (err) {
        if (!(err instanceof ModelUnavailable)) throw err;
        return []; // the hover says what is wrong with the model
      }
    }
    return [...actions.values()];
  });

  /** Client-initiated progress when the request carries a token, else server-initiated (it has its own cancel button). */
  async function progressFor(params: WorkDoneProgressParams, title: string): Promise<{ reporter: WorkDoneProgressReporter; cancel?: CancellationToken }> {
    if (params.workDoneToken === undefined && canCreateProgress) {
      const reporter = await connection.window.createWorkDoneProgress();
      reporter.begin(title, 0, undefined, true);
      return { reporter, cancel: reporter.token };
    }
    const reporter = connection.window.attachWorkDoneProgress(params.workDoneToken);
    reporter.begin(title, 0, undefined, true);
    return { reporter };
  }

  /** What preview and compare share: settings, the loaded model, the job and its progress. */
  async function startRender(params: PreviewParams, title: string, token: CancellationToken) {
    const s = await untilCancelled(settings.get(params.uri), token);
    let model: ReadyModel;
    try {
      model = await untilCancelled(models.get(s, params.uri), token);
    } catch (err) {
      if (err instanceof ModelUnavailable) throw new ResponseError(LSPErrorCodes.RequestFailed, err.message);
      throw err;
    }
    const job = {
      model: model.choice.dir,
      cacheDir,
      providers: model.choice.providers,
      settings: generationSettings(s),
      request: { prompt: params.prompt, negativePrompt: params.negativePrompt, seed: params.seed, steps: params.steps, width: params.size?.width, height: params.size?.height },
      previews: PREVIEW_IMAGES,
    };
    const progress = await progressFor(params, title);
    const onStep = (e: StepEvent) => {
      const label = e.phase ? `${e.phase}: ` : '';
      progress.reporter.report(Math.round((100 * e.step) / e.total), `${label}step ${e.step}/${e.total}`);
      void connection.sendNotification(PreviewProgressNotification, {
        id: params.id,
        step: e.step,
        total: e.total,
        phase: e.phase,
        image: e.image && `data:image/png;base64,${Buffer.from(e.image).toString('base64')}`,
      });
    };
    return { model, job, onStep, signal: abortSignal(token, progress.cancel), progress: progress.reporter };
  }

  const asResponseError = (err: unknown): unknown =>
    err instanceof CancelledError || (err instanceof Error && err.name === 'CancelledError') ? cancelled() : err instanceof ResponseError ? err : new ResponseError(LSPErrorCodes.RequestFailed, (err as Error)?.message ?? String(err));

  connection.onRequest(PreviewRequest, async (params, token): Promise<PreviewResult> => {
    const { model, job, onStep, signal, progress } = await startRender(params, 'AdaDiff preview', token);
    try {
      const o = await renderer.preview(job, signal, onStep);
      const cal = await model.handle.calibration(undefined, undefined, model.handle.generation({ settings: job.settings, request: job.request }).guidance);
      return {
        id: params.id,
        png: Buffer.from(o.png).toString('base64'),
        width: o.width,
        height: o.height,
        prompt: params.prompt,
        negativePrompt: params.negativePrompt,
        steps: o.steps,
        predictedSteps: o.predictedSteps,
        ...(o.refinedSteps !== undefined ? { refinedSteps: o.refinedSteps } : {}),
        baselineSteps: o.baselineSteps,
        seed: o.seed,
        // Like with like: the measured time includes the intermediate images the panel showed.
        estimatedSeconds: estimateSeconds(cal, o.steps) + (o.previewImages * cal.vaeMs) / 1000,
        actualSeconds: o.seconds,
        model: o.model,
        provider: o.provider,
        policy: o.policy,
      };
    } catch (err) {
      throw asResponseError(err);
    } finally {
      progress.done();
    }
  });

  connection.onRequest(CompareRequest, async (params, token): Promise<CompareResult> => {
    const { job, onStep, signal, progress } = await startRender(params, 'AdaDiff compare', token);
    try {
      const o = await renderer.compare(job, signal, onStep);
      const image = (r: typeof o.baseline) => ({ png: Buffer.from(r.png).toString('base64'), steps: r.steps, seconds: r.seconds });
      return {
        id: params.id,
        prompt: params.prompt,
        seed: o.predicted.seed,
        width: o.predicted.width,
        height: o.predicted.height,
        baseline: image(o.baseline),
        predicted: image(o.predicted),
        fidelity: o.fidelity,
        model: o.predicted.model,
        provider: o.predicted.provider,
      };
    } catch (err) {
      throw asResponseError(err);
    } finally {
      progress.done();
    }
  });

  // The client asks before it sends a lens's Generate asset through generateAssets.
  connection.onRequest(AssetTargetRequest, (params) => assets.assetTarget(params));

  // Not connection.onExecuteCommand: that deletes params.workDoneToken, and progressFor needs it to
  // report on the client's own progress (a notification with Cancel) rather than create one.
  connection.onRequest(ExecuteCommandRequest.type, async (params, token) => {
    if (TRAINING_COMMANDS.includes(params.command)) return training.execute(params, token);
    if (params.command === ServerCommands.generateAssets) {
      const progress = await progressFor(params, 'AdaDiff: generating assets');
      try {
        return await assets.run(params.arguments?.[0], progress.reporter, abortSignal(token, progress.cancel));
      } catch (err) {
        throw asResponseError(err);
      } finally {
        progress.reporter.done();
      }
    }
    if (params.command !== ServerCommands.recalibrate) throw new ResponseError(LSPErrorCodes.RequestFailed, `unknown command ${params.command}`);
    const uri = (params.arguments?.[0] as { uri?: string } | undefined)?.uri;
    const s = await settings.get(uri);
    await untilCancelled(models.recalibrate(s, uri), token);
    refreshLenses();
    return null;
  });

  // Which sessions this server holds, per thread and part, and its resident memory: for the tests
  // and `npm run bench -- memory`, which check that every part is held once.
  connection.onRequest(SessionsRequest, async () => ({
    main: liveSessions(),
    worker: await renderer.sessions(),
    rssBytes: process.memoryUsage.rss(),
  }));

  connection.onShutdown(async () => {
    await renderer.dispose();
    await engines?.dispose();
  });

  documents.listen(connection);
  connection.listen();
}
