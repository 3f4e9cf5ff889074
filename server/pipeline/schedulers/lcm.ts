// Latent Consistency Model multistep sampling (Luo et al. 2023), as diffusers' LCMScheduler.
//
// The consistency model maps any x_t straight to x0 (with boundary-condition scalings that make it
// the identity at t = 0); between steps the estimate is re-noised to the next, lower timestep with
// fresh Gaussian noise. That noise is the only stochastic part of any scheduler here.

import type { Scheduler, SchedulerConfig } from '../../model/contract.js';
import { linspace, makeAlphasCumprod } from './noise-schedule.js';
import { checkStepIndex, clipInPlace, drawNoise, predictX0 } from './prediction.js';

/** Consistency-model constants used by diffusers' LCMScheduler (sigma_data, timestep_scaling). */
const SIGMA_DATA = 0.5;
const TIMESTEP_SCALING = 10;

export class LcmScheduler implements Scheduler {
  readonly name = 'lcm' as const;
  readonly timesteps: number[];
  readonly initNoiseSigma = 1;
  readonly alphasCumprod: Float64Array;
  private readonly finalAlphaCumprod: number;

  constructor(private readonly config: SchedulerConfig, readonly steps: number) {
    const T = config.num_train_timesteps;
    const original = config.original_inference_steps;
    this.alphasCumprod = makeAlphasCumprod(config);
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : this.alphasCumprod[0]!;

    // The distillation schedule: `original` evenly strided timesteps k-1, 2k-1, ..., ending at T-1.
    const k = Math.floor(T / original);
    const origin: number[] = [];
    for (let i = original; i >= 1; i--) origin.push(i * k - 1);
    if (steps > origin.length) {
      throw new RangeError(
        `lcm scheduler: ${steps} steps exceed original_inference_steps (${origin.length}) the model was distilled with`,
      );
    }
    // Pick `steps` of them, evenly by index from the noisiest one (floor of linspace without endpoint).
    this.timesteps = linspace(0, origin.length, steps, false).map((x) => origin[Math.floor(x)]!);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    noise: (length: number) => Float32Array,
  ): { prevSample: Float32Array; predOriginal: Float32Array } {
    checkStepIndex(this.name, stepIndex, this.steps);
    const t = this.timesteps[stepIndex]!;
    const isLast = stepIndex === this.steps - 1;
    const prevT = isLast ? t : this.timesteps[stepIndex + 1]!;
    const abar = this.alphasCumprod[t]!;
    const abarPrev = prevT >= 0 ? this.alphasCumprod[prevT]! : this.finalAlphaCumprod;

    // Boundary condition: c_skip(0) = 1, c_out(0) = 0, so f(x, 0) = x. Scaling t by 10 makes the
    // skip term negligible for every t the sampler visits (c_skip(19) ~ 7e-4).
    const st = t * TIMESTEP_SCALING;
    const cSkip = SIGMA_DATA ** 2 / (st * st + SIGMA_DATA ** 2);
    const cOut = st / Math.sqrt(st * st + SIGMA_DATA ** 2);

    const x0 = predictX0(this.config.prediction_type, modelOutput, sample, Math.sqrt(abar), Math.sqrt(1 - abar));
    if (this.config.clip_sample) clipInPlace(x0);
    const denoised = new Float64Array(sample.length);
    for (let i = 0; i < sample.length; i++) denoised[i] = cOut * x0[i]! + cSkip * sample[i]!;

    let prevSample: Float32Array;
    if (isLast) {
      prevSample = Float32Array.from(denoised);
    } else {
      const z = drawNoise(this.name, noise, sample.length);
      const a = Math.sqrt(abarPrev);
      const s = Math.sqrt(1 - abarPrev);
      prevSample = new Float32Array(sample.length);
      for (let i = 0; i < sample.length; i++) prevSample[i] = a * denoised[i]! + s * z[i]!;
    }
    // The consistency output (after the boundary scalings) is LCM's x0 estimate and what the
    // pipeline decodes, so it is what we report.
    return { prevSample, predOriginal: Float32Array.from(denoised) };
  }
}
