// What every request handler of the language server reads: built once at `initialize` from the
// client's parameters (server.ts), then handed to each handler module. The handlers take it as an
// argument, so a test can run one in-process against a context of its own.
import type { CancellationToken, Connection, TextDocuments, WorkDoneProgressParams, WorkDoneProgressReporter } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { PromptSpan } from '../prompts/types';
import type { AssetsCommand } from './assets-command';
import type { PromptIndex } from './documents';
import type { ModelManager } from './models';
import type { Renderer } from './renderer';
import type { SettingsCache } from './settings';
import type { TextThread } from './text-thread';
import type { PolicyTraining } from './train-command';

export interface Progress {
  reporter: WorkDoneProgressReporter;
  /** The Cancel of a progress the server created itself (the request had no token of its own). */
  cancel?: CancellationToken;
}

export interface ServerContext {
  connection: Connection;
  settings: SettingsCache;
  models: ModelManager;
  renderer: Renderer;
  /** Holds the text encoders' sessions (text-thread.ts). */
  textThread: TextThread;
  assets: AssetsCommand;
  training: PolicyTraining;
  /** Per-user cache: calibrations, reward tables. */
  cacheDir: string;
  /** The prompts of an open document, with the document; undefined when it is not open. */
  spansOf(uri: string): Promise<{ doc: TextDocument; spans: PromptSpan[]; cutOff: boolean } | undefined>;
  /** Client-initiated progress when the request carries a token, else server-initiated (with its own Cancel). */
  progressFor(params: WorkDoneProgressParams, title: string): Promise<Progress>;
  /** Lenses show the model's predictions: after a settings, calibration or policy change the client fetches them again. */
  refreshLenses(): void;
}

/** The document half of the context: prompts found in the open documents, with their settings. */
export function spansOfDocuments(documents: Pick<TextDocuments<TextDocument>, 'get'>, prompts: PromptIndex, settings: () => SettingsCache): ServerContext['spansOf'] {
  return async (uri) => {
    const doc = documents.get(uri);
    if (!doc) return undefined;
    const s = await settings().get(uri);
    return { doc, ...(await prompts.scan(doc, s.prompts)) };
  };
}

export function progressOf(connection: Connection, canCreateProgress: boolean): ServerContext['progressFor'] {
  return async (params, title) => {
    if (params.workDoneToken === undefined && canCreateProgress) {
      const reporter = await connection.window.createWorkDoneProgress();
      reporter.begin(title, 0, undefined, true);
      return { reporter, cancel: reporter.token };
    }
    const reporter = connection.window.attachWorkDoneProgress(params.workDoneToken);
    reporter.begin(title, 0, undefined, true);
    return { reporter };
  };
}
