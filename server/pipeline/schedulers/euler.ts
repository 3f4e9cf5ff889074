// Euler discrete (Karras et al. 2022, Algorithm 2 without churn), as diffusers' EulerDiscreteScheduler.
//
// Works in variance-exploding space x = x0 + sigma * eps and takes one Euler step of the
// probability-flow ODE dx/dsigma = (x - x0) / sigma per model call, ending at sigma = 0.

import type { Scheduler, SchedulerConfig } from '../../model/contract.js';
import {
  interpAtIndex,
  karrasSigmas,
  makeAlphasCumprod,
  sigmaToAlphaSigma,
  sigmaToTimestep,
  sigmasFromAlphasCumprod,
  spacedTimesteps,
} from './noise-schedule.js';
import { checkStepIndex, predictX0, scaled } from './prediction.js';

/** Euler's timesteps and sigmas for `steps` steps, shared with Euler ancestral (diffusers builds both alike). */
export function eulerSchedule(config: SchedulerConfig, steps: number): { timesteps: number[]; sigmas: Float64Array; initNoiseSigma: number } {
  const trainSigmas = sigmasFromAlphasCumprod(makeAlphasCumprod(config));
  let timesteps = spacedTimesteps({
    spacing: config.timestep_spacing,
    numTrainTimesteps: config.num_train_timesteps,
    steps,
    stepsOffset: config.steps_offset,
    roundLinspace: false,
    extraPoint: false,
  });
  // Linear interpolation in sigma between neighbouring training timesteps (np.interp).
  let sigmas = timesteps.map((t) => interpAtIndex(t, trainSigmas));
  if (config.use_karras_sigmas) {
    sigmas = karrasSigmas(sigmas[sigmas.length - 1]!, sigmas[0]!, steps);
    const logSigmas = trainSigmas.map(Math.log);
    timesteps = sigmas.map((s) => sigmaToTimestep(s, logSigmas));
  }
  const maxSigma = Math.max(...sigmas);
  // linspace/trailing start at t = T-1, where x_T ~ N(0, sigma^2 + 1) is approximated by sigma
  // alone; leading starts lower, so diffusers keeps the exact sqrt(sigma^2 + 1).
  const initNoiseSigma =
    config.timestep_spacing === 'linspace' || config.timestep_spacing === 'trailing' ? maxSigma : Math.sqrt(maxSigma * maxSigma + 1);
  return { timesteps, sigmas: Float64Array.from([...sigmas, 0]), initNoiseSigma };
}

/** What Euler and Euler ancestral share: the schedule and the model's input scaling. */
export abstract class EulerFamilyScheduler {
  abstract readonly name: 'euler' | 'euler-a';
  /** Fractional for linspace spacing: the model sees the interpolated timestep, as in diffusers. */
  readonly timesteps: number[];
  readonly initNoiseSigma: number;
  /** steps + 1 sigmas, descending, ending in 0. */
  readonly sigmas: Float64Array;

  constructor(protected readonly config: SchedulerConfig, readonly steps: number) {
    ({ timesteps: this.timesteps, sigmas: this.sigmas, initNoiseSigma: this.initNoiseSigma } = eulerSchedule(config, steps));
  }

  /** The model was trained on VP inputs: x_ve / sqrt(sigma^2 + 1). */
  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array {
    checkStepIndex(this.name, stepIndex, this.steps);
    return scaled(sample, sigmaToAlphaSigma(this.sigmas[stepIndex]!).alpha);
  }

  /** sigma at step i and the x0 the model output means there (the model saw the VP sample alpha * x). */
  protected x0At(modelOutput: Float32Array, stepIndex: number, sample: Float32Array): { sigma: number; next: number; x0: Float64Array } {
    checkStepIndex(this.name, stepIndex, this.steps);
    const sigma = this.sigmas[stepIndex]!;
    const { alpha, sigmaVp } = sigmaToAlphaSigma(sigma);
    return { sigma, next: this.sigmas[stepIndex + 1]!, x0: predictX0(this.config.prediction_type, modelOutput, sample, alpha, sigmaVp, alpha) };
  }
}

export class EulerScheduler extends EulerFamilyScheduler implements Scheduler {
  readonly name = 'euler' as const;

  step(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    _noise?: (length: number) => Float32Array, // deterministic: never called
  ): {
    prevSample: Float32Array;
    predOriginal: Float32Array;
  } {
    const { sigma, next, x0 } = this.x0At(modelOutput, stepIndex, sample);
    const dt = next - sigma;
    const prevSample = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const derivative = (sample[i]! - x0[i]!) / sigma;
      prevSample[i] = sample[i]! + derivative * dt;
    }
    return { prevSample, predOriginal: Float32Array.from(x0) };
  }
}
