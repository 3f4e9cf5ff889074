// DDIM (Song et al. 2020), deterministic (eta = 0), as diffusers' DDIMScheduler.
//
// Each step predicts (x0, eps) at t and re-noises x0 to the previous timestep along the same eps:
//   x_prev = sqrt(abar_prev) * x0 + sqrt(1 - abar_prev) * eps.
// With eta = 0 there is no fresh noise, so `noise` is never called.

import type { Scheduler, SchedulerConfig } from '../../model/contract.js';
import { makeAlphasCumprod, spacedTimesteps } from './noise-schedule.js';
import { checkStepIndex, clipInPlace, predictEps, predictX0 } from './prediction.js';

export class DdimScheduler implements Scheduler {
  readonly name = 'ddim' as const;
  readonly timesteps: number[];
  readonly initNoiseSigma = 1;
  /** abar over the training timesteps (exposed for tests and diagnostics). */
  readonly alphasCumprod: Float64Array;
  /** abar used after the last step: 1 (land exactly on x0) or abar[0], per set_alpha_to_one. */
  readonly finalAlphaCumprod: number;
  private readonly stride: number;

  constructor(private readonly config: SchedulerConfig, readonly steps: number) {
    const T = config.num_train_timesteps;
    this.alphasCumprod = makeAlphasCumprod(config);
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : this.alphasCumprod[0]!;
    this.timesteps = spacedTimesteps({
      spacing: config.timestep_spacing,
      numTrainTimesteps: T,
      steps,
      stepsOffset: config.steps_offset,
      roundLinspace: true,
      extraPoint: false,
    });
    for (const t of this.timesteps) {
      if (t < 0 || t >= T) throw new RangeError(`ddim scheduler: timestep ${t} outside 0..${T - 1} (check steps_offset)`);
    }
    // diffusers steps back by a fixed T // N rather than to the next listed timestep. For
    // leading spacing these coincide; for linspace/trailing it is diffusers' behaviour, kept so
    // images match it.
    this.stride = Math.floor(T / steps);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample; // DDIM's model input is the VP sample itself.
  }

  step(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    _noise?: (length: number) => Float32Array, // deterministic: never called
  ): {
    prevSample: Float32Array;
    predOriginal: Float32Array;
  } {
    checkStepIndex(this.name, stepIndex, this.steps);
    const t = this.timesteps[stepIndex]!;
    const prevT = t - this.stride;
    const abar = this.alphasCumprod[t]!;
    const abarPrev = prevT >= 0 ? this.alphasCumprod[prevT]! : this.finalAlphaCumprod;
    const alpha = Math.sqrt(abar);
    const sigma = Math.sqrt(1 - abar);

    const type = this.config.prediction_type;
    const x0 = predictX0(type, modelOutput, sample, alpha, sigma);
    // eps comes from the raw model output, before clipping (diffusers' use_clipped_model_output = false).
    const eps = predictEps(type, modelOutput, sample, alpha, sigma);
    if (this.config.clip_sample) clipInPlace(x0);

    const a = Math.sqrt(abarPrev);
    const s = Math.sqrt(1 - abarPrev);
    const prevSample = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) prevSample[i] = a * x0[i]! + s * eps[i]!;
    return { prevSample, predOriginal: Float32Array.from(x0) };
  }
}
