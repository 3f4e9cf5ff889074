// What kind of model a folder holds, decided once from its files and its UNet's inputs, and the
// rules that follow from it: which text features the UNet reads, whether guidance runs an
// unconditional batch, and what a render should use where no setting, prompt or policy says.
//
// The kinds are the layouts `optimum-cli export onnx` writes for the models people run:
//   SD 1.x/2.x   tokenizer/ + text_encoder/ (last_hidden_state); SD 2.x's text encoder config
//                already stops one layer early (num_hidden_layers 23 of OpenCLIP-H's 24), so its
//                last_hidden_state *is* the penultimate-layer feature Stability trained on.
//   SDXL         tokenizer/ + text_encoder/ and tokenizer_2/ + text_encoder_2/; the UNet reads
//                both encoders' hidden_states[-2] side by side, the pooled text_embeds of the
//                second and time_ids (original size, crop, target size).
// Few-step models keep those layouts and differ in how they are sampled:
//   LCM          the UNet takes the guidance scale as an embedding (timestep_cond), so there is
//                never an unconditional batch (diffusers' LatentConsistencyModelPipeline).
//   Turbo        SD-Turbo and SDXL-Turbo ship Euler ancestral with trailing spacing and are run
//                at guidance 0 for 1-4 steps (their model cards).

import { isSchedulerName, type SchedulerName } from '../limits';
import type { ModelFolder } from './contract';

export type LayoutKind = 'sd' | 'sdxl';
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';

export interface ModelLayout {
  readonly kind: LayoutKind;
  /** The layout in words, for doctor and the log: "SDXL", "SD 2.x". */
  readonly name: string;
  /** What else was detected, in words ("v-prediction", "LCM guidance embedding"). */
  readonly traits: readonly string[];
  readonly prediction: PredictionType;
  /** The UNet takes the guidance scale as timestep_cond (LCM): guidance never runs an unconditional batch. */
  readonly guidanceEmbedding: boolean;
  /**
   * SDXL's model_index.json force_zeros_for_empty_prompt: without a negative prompt the
   * unconditional row is zeros, not the encoding of "".
   */
  readonly zeroEmptyNegative: boolean;
  readonly fewStep?: 'turbo' | 'lcm';
  /**
   * What the model's own files say a render should use where no request, prompt, setting or
   * policy does (generation.ts, the 'model' source): the scheduler its config names, and for
   * few-step models their guidance and step count.
   */
  readonly recommended: { readonly scheduler?: SchedulerName; readonly guidance?: number; readonly baselineSteps?: number };
  /** The candidate step counts a step policy for it is trained over when none are given. */
  readonly candidates?: readonly number[];
  /** What a user should hear about (doctor prints them): a scheduler class we do not implement. */
  readonly notes: readonly string[];
}

/** Candidates for distilled few-step models: their useful range is 1 to 8 steps. */
export const FEW_STEP_CANDIDATES: readonly number[] = [1, 2, 3, 4, 6, 8];

/** diffusers' LatentConsistencyModelPipeline default guidance_scale (told to the UNet as w - 1). */
export const LCM_GUIDANCE = 8.5;

/** The diffusers scheduler classes AdaDiff implements, by the name settings and flags use. */
const SCHEDULER_BY_CLASS: Readonly<Record<string, SchedulerName>> = {
  DDIMScheduler: 'ddim',
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler-a',
  DPMSolverMultistepScheduler: 'dpmpp-2m',
  LCMScheduler: 'lcm',
};

/** The scheduler the folder's scheduler_config.json names, when AdaDiff implements it. */
export function configuredScheduler(config: Readonly<Record<string, unknown>>): SchedulerName | undefined {
  const name = typeof config._class_name === 'string' ? SCHEDULER_BY_CLASS[config._class_name] : undefined;
  if (name === 'dpmpp-2m' && config.use_karras_sigmas === true) return 'dpmpp-2m-karras';
  return name && isSchedulerName(name) ? name : undefined;
}

/**
 * The layout of `folder`. `unetInputs` are the UNet graph's input names when it is loaded: they
 * are what the UNet will really be fed, so they win over unet/config.json (which a hand-made
 * export may lack).
 */
export function detectLayout(folder: ModelFolder, unetInputs?: readonly string[]): ModelLayout {
  const scheduler = folder.schedulerConfig;
  const takes = (name: string) => unetInputs?.includes(name);
  const sdxl = !!folder.second || (unetInputs ? !!takes('text_embeds') : folder.unet.additionEmbedType === 'text_time');
  const guidanceEmbedding = unetInputs ? !!takes('timestep_cond') : folder.unet.timeCondProjDim !== undefined;
  const prediction = predictionType(scheduler.prediction_type);
  const className = typeof scheduler._class_name === 'string' ? scheduler._class_name : undefined;
  const configured = configuredScheduler(scheduler);
  const fewStep =
    guidanceEmbedding || className === 'LCMScheduler'
      ? 'lcm'
      : className === 'EulerAncestralDiscreteScheduler' && scheduler.timestep_spacing === 'trailing'
        ? 'turbo'
        : undefined;

  const traits: string[] = [];
  if (sdxl) traits.push('two text encoders (penultimate hidden states, pooled text_embeds, time_ids)');
  if (prediction !== 'epsilon') traits.push(prediction === 'v_prediction' ? 'v-prediction' : 'x0-prediction');
  if (guidanceEmbedding) traits.push('LCM guidance embedding (timestep_cond)');
  else if (fewStep === 'lcm') traits.push('LCM scheduler');
  if (fewStep === 'turbo') traits.push('few-step Turbo (Euler ancestral, trailing spacing)');

  const notes: string[] = [];
  if (className && !configured) {
    notes.push(`scheduler_config.json names ${className}, which AdaDiff does not implement; renders use the default scheduler unless one is chosen (adadiff.scheduler, --scheduler)`);
  }

  const recommended =
    fewStep === 'turbo'
      ? { scheduler: 'euler-a' as const, guidance: 0, baselineSteps: 4 }
      : fewStep === 'lcm'
        ? // An LCM-LoRA fused into a base UNet has no embedding and runs without guidance (diffusers' LCM-LoRA docs).
          { scheduler: 'lcm' as const, guidance: guidanceEmbedding ? LCM_GUIDANCE : 1, baselineSteps: 4 }
        : configured
          ? { scheduler: configured }
          : {};

  return {
    kind: sdxl ? 'sdxl' : 'sd',
    name: sdxl ? 'SDXL' : family(folder),
    traits,
    prediction,
    guidanceEmbedding,
    zeroEmptyNegative: sdxl && folder.index.force_zeros_for_empty_prompt !== false,
    ...(fewStep ? { fewStep, candidates: FEW_STEP_CANDIDATES } : {}),
    recommended,
    notes,
  };
}

/** SD 1.x conditions on CLIP ViT-L (768 wide), SD 2.x on OpenCLIP ViT-H (1024 wide). */
function family(folder: ModelFolder): string {
  const width = folder.unet.crossAttentionDim ?? folder.textEncoder.config?.hidden_size;
  return width === 768 ? 'SD 1.x' : width === 1024 ? 'SD 2.x' : 'SD 1.x/2.x-style';
}

function predictionType(value: unknown): PredictionType {
  return value === 'v_prediction' || value === 'sample' ? value : 'epsilon';
}
