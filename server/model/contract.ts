// Types at the boundary between a model folder on disk and the rest of the core.
// A model folder follows the Hugging Face diffusers ONNX layout (see README "Model folders").

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

export type SchedulerName = 'ddim' | 'euler' | 'dpmpp-2m' | 'dpmpp-2m-karras' | 'lcm';

/** One scheduler instance is built per generation for a fixed number of steps. */
export interface Scheduler {
  readonly name: SchedulerName;
  /** Model timesteps, one per denoising step, in the order they are used. */
  readonly timesteps: number[];
  /** Multiply the initial unit-variance noise by this. */
  readonly initNoiseSigma: number;
  /** Input scaling the model expects at step i (identity for DDIM/LCM, 1/sqrt(sigma^2+1) for Euler/DPM). */
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
