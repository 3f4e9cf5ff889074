// Types at the boundary between a model folder on disk and the rest of the core.
// A model folder follows the Hugging Face diffusers ONNX layout (see README "Model folders").
import type { SchedulerName } from '../limits';
import type { ModelLayout } from './layout';

/** scheduler/scheduler_config.json as diffusers writes it; every field optional on disk. */
export interface SchedulerConfig {
  _class_name?: string;
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
  prediction_type: 'epsilon' | 'v_prediction' | 'sample';
  timestep_spacing: 'leading' | 'trailing' | 'linspace';
  steps_offset: number;
  set_alpha_to_one: boolean;
  clip_sample: boolean;
  use_karras_sigmas: boolean;
  /** LCM: the schedule the consistency model was distilled from. */
  original_inference_steps: number;
}

/** The sampler names are limits.ts's, with the other names and bounds settings and flags check. */
export type { SchedulerName };

/** One scheduler instance is built per generation for a fixed number of steps. */
export interface Scheduler {
  readonly name: SchedulerName;
  /** Model timesteps, one per denoising step, in the order they are used. */
  readonly timesteps: number[];
  /** Multiply the initial unit-variance noise by this. */
  readonly initNoiseSigma: number;
  /** Input scaling the model expects at step i (1/sqrt(sigma^2+1) for Euler, identity for the others). */
  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array;
  /**
   * One update. `noise` supplies fresh unit Gaussian noise for stochastic steps (LCM); deterministic
   * schedulers never call it. Returns the next sample and the current prediction of x0.
   */
  step(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    noise: (length: number) => Float32Array,
  ): { prevSample: Float32Array; predOriginal: Float32Array };
}

// ---------------------------------------------------------------------------------------------
// A model folder opened from disk (server/model/folder.ts) and loaded into ONNX Runtime sessions
// (server/model/session.ts). Paths are absolute.

/** One ONNX file of a model (text_encoder, text_encoder_2, unet, vae_decoder, vae_encoder). */
export interface ModelPart {
  /** .../<part>/model.onnx */
  readonly onnx: string;
  /** External weight files the graph refers to (model.onnx_data, weights.pb, ...), in first-use order. */
  readonly externalData: readonly string[];
  /** <part>/config.json as written by diffusers, when present. */
  readonly config?: Readonly<Record<string, unknown>>;
}

export type TextEncoderPart = ModelPart & {
  /** max_position_embeddings from config.json: the longest prompt the encoder takes. */
  readonly maxPositions?: number;
};

export interface ModelFolder {
  readonly dir: string;
  /** model_index.json `_name_or_path` when set, else the folder's name. */
  readonly name: string;
  /** model_index.json, raw. */
  readonly index: Readonly<Record<string, unknown>>;
  /** scheduler/scheduler_config.json, raw: the scheduler module resolves defaults. */
  readonly schedulerConfig: Readonly<Record<string, unknown>>;
  readonly tokenizerDir: string;
  readonly textEncoder: TextEncoderPart;
  /**
   * SDXL's second tokenizer and text encoder (tokenizer_2/, text_encoder_2/, as optimum's
   * ORTStableDiffusionXLPipeline export writes them); present together or not at all.
   */
  readonly second?: { readonly tokenizerDir: string; readonly textEncoder: TextEncoderPart };
  readonly unet: ModelPart & {
    /** Default latent size (sample_size * vaeScaleFactor = default image size). */
    readonly sampleSize?: number;
    readonly inChannels?: number;
    readonly crossAttentionDim?: number;
    /** LCM: width of the guidance embedding the UNet takes as timestep_cond. */
    readonly timeCondProjDim?: number;
    /** 'text_time' for SDXL: the UNet takes the pooled text_embeds and the size time_ids. */
    readonly additionEmbedType?: string;
  };
  readonly vaeDecoder: ModelPart & {
    /** Latents are divided by this before decoding; 0.18215 (SD 1.x/2.x) when no config says otherwise. */
    readonly scalingFactor: number;
    readonly latentChannels?: number;
    /** Pixels per latent cell: 2^(len(block_out_channels) - 1), 8 by default. */
    readonly scaleFactor: number;
  };
  readonly vaeEncoder?: ModelPart;
  /** adadiff/policy.onnx and adadiff/policy.json, only when both are present. */
  readonly policy?: { readonly onnx: string; readonly json: string };
  /** Things that do not stop the model from working but a user should hear about (doctor prints them). */
  readonly warnings: readonly string[];
  /**
   * sha256 hex of the text encoder, UNet and VAE decoder graphs, each followed by its external data,
   * in that order: what A1111's "Model hash" shows the first 10 characters of. Streamed on first
   * call and cached by path, size and mtime.
   */
  hash(): Promise<string>;
}

export interface PromptEncoding {
  /** Exactly `maxLength` ids: BOS, the prompt's tokens, EOS, then padding. */
  readonly ids: number[];
  /** Real tokens including BOS and EOS. */
  readonly tokens: number;
  /** Prompt tokens cut off to fit `maxLength`. */
  readonly dropped: number;
}

export interface PromptTokenizer {
  readonly maxLength: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  /** Never throws on odd text (control characters, lone surrogates, huge strings). */
  encode(text: string): PromptEncoding;
}

export interface ProviderAttempt {
  readonly name: string;
  /** Why this provider is not the one used; absent for the one used. */
  readonly error?: string;
}

/** Which execution provider runs a model part, and why the ones before it in the list do not. */
export interface ProviderChoice {
  readonly used: string;
  readonly tried: readonly ProviderAttempt[];
}

/**
 * What the UNet is conditioned on, one row per prompt. SD 1.x/2.x: the text encoder's
 * last_hidden_state. SDXL: both encoders' penultimate hidden states side by side (text_encoder's
 * first), as diffusers' StableDiffusionXLPipeline.encode_prompt builds them.
 */
export interface TextEncoding {
  /** Token features [B, L, D], float32. */
  readonly hidden: Float32Array;
  readonly dims: [number, number, number];
  /** Pooled features [B, D']: SDXL's text_embeds (second encoder), else the encoder's pooler_output when it has one. */
  readonly pooled?: Float32Array;
}

/** How much of the CPU a model's sessions may take: 'shared' beside an editor, 'dedicated' for a CLI batch. */
export type CpuShare = 'shared' | 'dedicated';

export interface LoadedModel {
  readonly folder: ModelFolder;
  readonly tokenizer: PromptTokenizer;
  /** What kind of model the folder holds and the rules that follow from it (layout.ts). */
  readonly layout: ModelLayout;
  readonly providers: {
    readonly textEncoder: ProviderChoice;
    readonly textEncoder2?: ProviderChoice;
    readonly unet: ProviderChoice;
    readonly vaeDecoder: ProviderChoice;
    readonly vaeEncoder?: ProviderChoice;
  };
  /** Hidden size D of the text encoder's token features (the UNet's cross-attention width). */
  readonly textDim: number;
  /** Pixels per latent cell (8 for SD). */
  readonly vaeScaleFactor: number;
  /** The CPU share its sessions were created with (part of what a calibration is valid for). */
  readonly cpu: CpuShare;
  /** The execution providers its sessions were asked to try, in order. */
  readonly providerOrder: readonly string[];
  /** Latent [C, h, w] for an image size; without one, the UNet's default sample_size. */
  latentShape(width?: number, height?: number): [number, number, number];
  /** Tokenizes (with each encoder's own tokenizer) and encodes the prompts, one row each. */
  encodeText(prompts: readonly string[]): Promise<TextEncoding>;
  /**
   * One UNet call; returns the model output (noise or v prediction) with the sample's shape.
   * `text` has one row per batch row. `guidance` is the scale a UNet with a guidance embedding
   * (LCM's timestep_cond) is told; other UNets ignore it. SDXL's time_ids follow from the sample's size.
   * `timestep` is one for every row, or one per batch row where `unetBatch.rowTimesteps`.
   */
  unet(sample: Float32Array, dims: [number, number, number, number], timestep: number | readonly number[], text: TextEncoding, guidance?: number): Promise<Float32Array>;
  /**
   * What one UNet call may batch: at most `maxRows` rows where the export or the load options fix
   * the batch dim, and whether each row may have its own timestep (a rank-1 timestep with a free
   * dim). What lets generateSchedules denoise several step counts in one call.
   */
  readonly unetBatch: { readonly maxRows?: number; readonly rowTimesteps: boolean };
  /** Latents (not yet divided by the scaling factor) -> image [B, 3, H, W] in about -1..1. */
  decode(latents: Float32Array, dims: [number, number, number, number]): Promise<{ data: Float32Array; dims: [number, number, number, number] }>;
  /** Image [B, 3, H, W] in -1..1 -> latents (mean, times the scaling factor); only with a vae_encoder. */
  encodeImage?(image: Float32Array, dims: [number, number, number, number]): Promise<{ data: Float32Array; dims: [number, number, number, number] }>;
  dispose(): Promise<void>;
}
