// The typed messages the AdaDiff language server and its clients exchange, declared once and used
// by both sides (server/lsp and client/). Everything else is standard LSP: hover, codeLens (+
// resolve), workspace/executeCommand, work-done progress and $/cancelRequest.
//
// The wire format, not the core's types: every type here is a plain serializable interface (the
// server converts its core values into them, as rust-analyzer's lsp_ext does), and this folder
// imports nothing of the project outside shared/ (test/unit/boundaries.test.ts), so the
// client never bundles server logic. No `vscode` import: the server and the tests use it too.
import { NotificationType, RequestType, RequestType0, type WorkDoneProgressParams } from 'vscode-languageserver-protocol';

// ---------------------------------------------------------------------------------------------
// Settings: the `adadiff` section. The server reads it per resource with workspace/configuration
// (its shape and defaults: server/lsp/settings.ts); the client only names the section.

export const SETTINGS_SECTION = 'adadiff';

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

/** Sent at most every 50 ms while a preview or compare denoises, always with an image and for the last step. */
export interface PreviewProgressParams {
  id: string;
  /** 1-based step just finished (steps in between may not be reported). */
  step: number;
  total: number;
  /** Which render of a compare this is about; absent for a preview. */
  phase?: 'baseline' | 'predicted';
  /** The current x0 prediction as a PNG data URI, at most 512 px a side; sent every few steps (each costs a VAE decode), absent otherwise. */
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
  /** The policy's prediction from the prompt alone (the baseline when the model has no policy). */
  predictedSteps: number;
  /** The first-step-aware policy's choice, made after the first UNet call, when it made the choice. */
  refinedSteps?: number;
  baselineSteps: number;
  seed: number;
  /** The cost model's time for this render, including the VAE decodes of the intermediate images it streamed. */
  estimatedSeconds: number;
  /** Measured: text encoder, denoising loop with the intermediate images, VAE. */
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
  /** Generate the workspace's missing or stale assets (adadiff assets); one GenerateAssetsArgs, returns GenerateAssetsResult. */
  generateAssets: 'adadiff.server.generateAssets',
  /** Train a step policy for the model the settings choose; one TrainPolicyArgs, returns TrainPolicyResult. */
  trainPolicy: 'adadiff.server.trainPolicy',
  /** What trainPolicy would cost, or why it is refused; one TrainEstimateArgs, returns TrainEstimate. */
  estimateTraining: 'adadiff.server.estimateTraining',
  /** The image prompts in the workspace's files, for training; one { uri? }, returns WorkspacePromptsResult. */
  workspacePrompts: 'adadiff.server.workspacePrompts',
  /** A prompts file read as `adadiff train-policy --prompts` reads it; one PromptsFileArgs, returns PromptsFileResult. */
  promptsFile: 'adadiff.server.promptsFile',
} as const;

/**
 * Arguments of adadiff.server.generateAssets. Progress: the request's workDoneToken, else a
 * server-created one; cancel it, or the request, and the run stops after the step in flight and
 * answers with what it finished (`summary.cancelled`). Refused (RequestFailed) while the workspace
 * is untrusted, except check and dry runs, which write nothing.
 */
export interface GenerateAssetsArgs {
  /** A workspace folder URI; default: the folder holding the `only` outputs, else the first workspace folder. */
  folder?: string;
  /** Restrict the run to these outputs (file URIs, absolute or folder-relative paths); the lock keeps every other entry. */
  only?: string[];
  /** Overwrite files edited since they were generated, or that no lock entry accounts for. */
  force?: boolean;
  /** Plan and estimate (model loaded for the policy and cost model), write nothing. */
  dryRun?: boolean;
  /** Only say what is missing, stale or modified; loads no model. */
  check?: boolean;
}

/** What became of one asset (server/assets' AssetReport, with its line of words). */
export interface AssetOutcome {
  /** Workspace-relative output path. */
  out: string;
  /** Where the target is written: "README.md:12", "adadiff.yaml:4". */
  source: string;
  state: 'current' | 'missing' | 'stale' | 'modified' | 'untracked';
  /** Why it is stale or skipped, in words. */
  reasons: string[];
  action: 'generated' | 'would-generate' | 'skipped' | 'failed' | 'cancelled';
  /** Makes a check fail: missing, stale, modified, or an explicit output adadiff did not write. */
  outOfDate: boolean;
  steps?: number;
  baselineSteps?: number;
  estimatedSeconds?: number;
  seconds?: number;
  error?: string;
  /** The asset's line for a log, as `adadiff assets` prints it. */
  description: string;
}

/** A whole run (server/assets' AssetSummary), as the client shows and tests read it. */
export interface AssetRunSummary {
  root: string;
  lockFile: string;
  mode: 'generate' | 'check' | 'dry-run';
  assets: AssetOutcome[];
  counts: Record<AssetOutcome['state'], number> & { targets: number; generated: number; failed: number };
  /** Steps over the assets generated (or to generate, in a dry run), and what the fixed baseline would use. */
  stepsUsed: number;
  baselineSteps: number;
  /** From the cost model, before starting: the assets to generate, and the same at baseline steps. */
  estimatedSeconds: number;
  baselineEstimatedSeconds: number;
  /** Wall time of the whole run. */
  seconds: number;
  problems: { source: string; out?: string; message: string }[];
  warnings: string[];
  /** Lock entries no target asks for any more. */
  orphans: string[];
  cancelled: boolean;
  /** check: everything is current; otherwise: no problems and no failures. */
  ok: boolean;
}

export interface GenerateAssetsResult {
  summary: AssetRunSummary;
  /** The one line for a notification. */
  message: string;
}

/** Whether a lens's Generate asset goes through the asset core (the lock file, `adadiff assets`'s rules). */
export interface AssetTargetParams {
  /** The document the prompt is in. */
  uri: string;
  /** Its target, relative to the document (PromptCommandArgs.target). */
  target: string;
}

export interface AssetTargetResult {
  /** True when `adadiff assets` would find this target: a Markdown file in a workspace folder that its walk reads (not hidden, not in node_modules, not git-ignored). */
  managed: boolean;
}

/** Asked when the user runs Generate asset: the answer follows the files as they are then. */
export const AssetTargetRequest = new RequestType<AssetTargetParams, AssetTargetResult, void>('adadiff/assetTarget');

// ---------------------------------------------------------------------------------------------
// Training a step policy from the editor (issue #7): the server runs the same trainPolicy as
// `adadiff train-policy`, on its render worker. Refused (RequestFailed, with the reason) in an
// untrusted workspace, for the bundled model, for a model folder it cannot write to and for fewer
// than 8 prompts.

/** Arguments of adadiff.server.trainPolicy. */
export interface TrainPolicyArgs {
  /** Settings scope (a document or folder URI): its `adadiff.model.path` is the model trained. */
  uri?: string;
  /** Training prompts (with `heldOut`, at least 8). */
  prompts: string[];
  /** Prompts to evaluate the policy on; absent: every fifth of `prompts` is held out (about 20%). */
  heldOut?: string[];
  /** Seeds per prompt; default [0, 1]. Fewer, like fewer candidates or epochs, make a quicker, rougher policy. */
  seeds?: number[];
  /** Candidate step counts; default 5, 10, ..., 50. */
  candidates?: number[];
  /** Training epochs; default 150. */
  epochs?: number;
}

/**
 * Arguments of the client command adadiff.trainPolicy. The hover's link passes { uri } and the
 * command asks where the prompts come from; with `prompts` (tests, other extensions) it asks nothing.
 */
export type TrainPolicyCommandArgs = Partial<TrainPolicyArgs>;

/** The evaluation on the held-out prompts, as policy.json records it (in short). */
export interface TrainPolicySummary {
  prompts: number;
  /** Mean steps the policy chooses, against the baseline schedule's. */
  avgSteps: number;
  baselineSteps: number;
  /** 100 * (1 - avgSteps / baselineSteps). */
  savingPct: number;
  /** Fidelity threshold and the share of held-out images meeting it. */
  tau: number | null;
  shareMeetingTau: number | null;
  /** Mean fidelity (SSIM to the longest schedule's image) at the chosen steps. */
  meanQuality: number;
}

export interface TrainPolicyResult {
  model: string;
  modelPath: string;
  onnxPath: string;
  manifestPath: string;
  trainPrompts: number;
  heldOutPrompts: number;
  /** Wall time of the whole run, of which the reward table (0 when it came from the cache). */
  seconds: number;
  rewardTableSeconds: number;
  evaluation: TrainPolicySummary | null;
}

/** Arguments of adadiff.server.estimateTraining: counts instead of prompts (0 or absent: only the checks). */
export type TrainEstimateArgs = Omit<TrainPolicyArgs, 'prompts' | 'heldOut'> & { prompts?: number; heldOut?: number };

export interface TrainEstimate {
  model: string;
  modelPath: string;
  /** Whether the model already has a policy (training replaces it). */
  policy: boolean;
  provider: string;
  trainPrompts: number;
  heldOutPrompts: number;
  /** Images generated (reward table and evaluation) and the UNet steps they take. */
  images: number;
  unetSteps: number;
  /** From the calibrated cost of each part on this machine; cached table rows make it less. */
  seconds: number;
  /** The fewest prompts, training and held-out together, that the server trains on. */
  minPrompts: number;
}

export interface WorkspacePromptsResult {
  /** Distinct prompt texts, in file order. */
  prompts: string[];
  /** Files read. */
  files: number;
  /** True when a limit (files, size, prompts) cut the search short. */
  truncated: boolean;
}

/** Arguments of adadiff.server.promptsFile. */
export interface PromptsFileArgs {
  /** A file: URI. */
  uri: string;
}

export interface PromptsFileResult {
  /** One prompt a line; blank lines and lines starting with `#` are left out. */
  prompts: string[];
}

/** Sessions per model part (textEncoder, textEncoder2 for SDXL, unet, vaeDecoder, vaeEncoder) in one process. */
export type SessionCounts = Readonly<Record<'textEncoder' | 'textEncoder2' | 'unet' | 'vaeDecoder' | 'vaeEncoder', number>>;

export interface SessionsResult {
  /** The server's process: the text encoder hovers use. */
  main: SessionCounts;
  /** The render worker's process: the UNet and VAE (all zero before its first job). */
  worker: SessionCounts;
  /** The server process's resident memory; the render worker is a process of its own and not included. */
  rssBytes: number;
}

/**
 * A diagnostic: which sessions the server holds, and its memory. Each part is held once per model,
 * whichever process holds it; the tests read it (`npm run bench -- memory` reads both processes' memory from /proc).
 */
export const SessionsRequest = new RequestType0<SessionsResult, void>('adadiff/sessions');
