// The typed messages the AdaDiff language server and its clients exchange, declared once and used
// by both sides (server/lsp and client/). Everything else is standard LSP: hover, codeLens (+
// resolve), workspace/executeCommand, work-done progress and $/cancelRequest.
//
// No `vscode` import here: this file is bundled into the server, the VS Code client and the tests.
import { NotificationType, RequestType, type WorkDoneProgressParams } from 'vscode-languageserver-protocol';

// ---------------------------------------------------------------------------------------------
// Settings: the `adadiff` section, read per resource with workspace/configuration.

export type SchedulerSetting = 'auto' | 'ddim' | 'euler' | 'dpmpp-2m' | 'dpmpp-2m-karras' | 'lcm';

export interface AdaDiffSettings {
  /** `adadiff.model.path`: a diffusers ONNX model folder; '' = the bundled model. Ignored in an untrusted workspace. */
  model: { path: string };
  /** `adadiff.providers`: execution providers to try in order (e.g. ["cuda", "cpu"]); [] = the platform's default order. */
  providers: string[];
  /** `adadiff.baselineSteps`: the fixed schedule savings are measured against (used as is when the model has no policy). */
  baselineSteps: number;
  /** `adadiff.guidance`: classifier-free guidance scale; 0 = the model's policy manifest or default. */
  guidance: number;
  /** `adadiff.size`: "WIDTHxHEIGHT", '' = the model's default size. */
  size: string;
  /** `adadiff.scheduler`: 'auto' = what the policy was trained with, else the engine default. */
  scheduler: SchedulerSetting;
  /** `adadiff.seed`: the seed previews start from. */
  seed: number;
  /** `adadiff.codeLens.enabled`. */
  codeLens: { enabled: boolean };
  /** `adadiff.prompts.*`: extend the prompt finder. */
  prompts: {
    /** Extra identifier fragments that mark a prompt (besides "prompt"). */
    names: string[];
    /** Extra callees whose first argument is a prompt (besides pipe, pipeline, generate, txt2img, images.generate). */
    callees: string[];
    /** Extra language ids to look for prompts in. */
    languages: string[];
  };
}

export const SETTINGS_SECTION = 'adadiff';

export const DEFAULT_SETTINGS: AdaDiffSettings = {
  model: { path: '' },
  providers: [],
  baselineSteps: 50,
  guidance: 0,
  size: '',
  scheduler: 'auto',
  seed: 0,
  codeLens: { enabled: true },
  prompts: { names: [], callees: [], languages: [] },
};

/** Sent as `initializationOptions` by the client. */
export interface InitializationOptions {
  /** Workspace trust: when false no model is loaded from a workspace setting and nothing is written to the workspace. */
  trusted?: boolean;
  /** The model shipped with the extension (models/default); defaults to the one beside the server bundle. */
  bundledModelPath?: string;
  /** Per-user cache (calibrations); defaults to $XDG_CACHE_HOME/adadiff. */
  cacheDir?: string;
}

// ---------------------------------------------------------------------------------------------
// Server -> client: model and execution-provider status (drives the status item).

export type ModelState = 'loading' | 'ready' | 'error';

export interface StatusParams {
  state: ModelState;
  /** The model this status is about. */
  model?: {
    name: string;
    path: string;
    /** True when it is the model shipped with the extension. */
    bundled: boolean;
  };
  /** Execution provider actually used per model part, e.g. { text_encoder: 'cpu', unet: 'cuda', vae_decoder: 'cuda' }. */
  providers?: Record<string, string>;
  /**
   * Per model part, the providers tried before the one in `providers` and why each was not used
   * (e.g. { unet: [{ name: 'cuda', error: 'the CUDA provider is not installed ...' }] }); parts that
   * run on their first choice are absent.
   */
  providersNotUsed?: Record<string, { name: string; error: string }[]>;
  /** Whether the model has a trained step policy (without one, steps are the baseline). */
  policy?: boolean;
  /** One line for the status item / its tooltip. */
  message: string;
  /** More: the full error (a ModelError names the file at fault), or what was loaded from where. */
  detail?: string;
}

export const StatusNotification = new NotificationType<StatusParams>('adadiff/status');

// ---------------------------------------------------------------------------------------------
// Client -> server: render a preview, streaming the image as it sharpens.

export interface ImageSize {
  width: number;
  height: number;
}

export interface PreviewParams extends WorkDoneProgressParams {
  /** Chosen by the client; echoed in every progress notification and in the result. */
  id: string;
  /** The document the prompt is in: its settings (model, size, ...) apply. */
  uri?: string;
  prompt: string;
  negativePrompt?: string;
  seed?: number;
  /** 'auto' (the default) = the policy's prediction. */
  steps?: number | 'auto';
  size?: ImageSize;
}

export interface PreviewProgressParams {
  id: string;
  /** 1-based step just finished. */
  step: number;
  total: number;
  /** Which render of a compare this is about; absent for a preview. */
  phase?: 'baseline' | 'predicted';
  /** The current x0 prediction as a PNG data URI; sent every few steps (each costs a VAE decode), absent otherwise. */
  image?: string;
}

export const PreviewProgressNotification = new NotificationType<PreviewProgressParams>('adadiff/previewProgress');

export interface PreviewResult {
  id: string;
  /** The final image, base64 PNG (with A1111-style parameters text inside). */
  png: string;
  width: number;
  height: number;
  prompt: string;
  negativePrompt?: string;
  /** Steps actually run. */
  steps: number;
  /** The policy's prediction (the baseline when the model has no policy). */
  predictedSteps: number;
  baselineSteps: number;
  seed: number;
  estimatedSeconds: number;
  actualSeconds: number;
  /** Model name. */
  model: string;
  /** Execution provider the UNet ran on. */
  provider: string;
  /** Whether the model has a trained policy. */
  policy: boolean;
}

/** Cancel with $/cancelRequest: the generation is aborted and the request fails with RequestCancelled. */
export const PreviewRequest = new RequestType<PreviewParams, PreviewResult, void>('adadiff/preview');

// ---------------------------------------------------------------------------------------------
// Client -> server: the baseline steps and the predicted steps from the same seed, side by side.

export type CompareParams = Omit<PreviewParams, 'steps'>;

export interface CompareImage {
  png: string;
  steps: number;
  seconds: number;
}

export interface CompareResult {
  id: string;
  prompt: string;
  seed: number;
  width: number;
  height: number;
  baseline: CompareImage;
  predicted: CompareImage;
  /** SSIM of the predicted image against the baseline image, 0..1 (1 = identical). */
  fidelity: number;
  model: string;
  provider: string;
}

export const CompareRequest = new RequestType<CompareParams, CompareResult, void>('adadiff/compare');

// ---------------------------------------------------------------------------------------------
// Commands. The lens/hover commands below are *client* commands (they open the preview panel and
// then send adadiff/preview); the server puts them in CodeLens and in hover `command:` links with
// these arguments. Editors other than VS Code map them as they like.

export const ClientCommands = {
  preview: 'adadiff.preview',
  generateAsset: 'adadiff.generateAsset',
  trainPolicy: 'adadiff.trainPolicy',
} as const;

/** Arguments of adadiff.preview and adadiff.generateAsset (one object, JSON-encoded in hover links). */
export interface PromptCommandArgs {
  uri: string;
  /** Range of the prompt in the document, LSP positions. */
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
  prompt: string;
  negativePrompt?: string;
  seed?: number;
  steps?: number | 'auto';
  size?: ImageSize;
  /** Markdown image target / `out` option: where Generate asset writes, relative to the document. */
  target?: string;
}

/** Commands the server executes itself via workspace/executeCommand (listed in executeCommandProvider). */
export const ServerCommands = {
  /** Forget the cached cost calibration and measure again; returns the new status. No arguments (or { uri }). */
  recalibrate: 'adadiff.server.recalibrate',
} as const;
