// DPM-Solver++(2M) (Lu et al. 2022), as diffusers' DPMSolverMultistepScheduler with its defaults:
// algorithm_type "dpmsolver++", solver_order 2, solver_type "midpoint", lower_order_final true,
// final_sigmas_type "zero". Optional Karras sigmas.
//
// The sample stays in VP form x = alpha * x0 + sigma * eps (no input scaling, init noise sigma 1).
// Each step turns the model output into x0 and integrates exactly in lambda = log(alpha / sigma),
// using the previous step's x0 for a second-order (linear-in-lambda) correction.

import type { Scheduler, SchedulerConfig, SchedulerName } from '../../model/contract.js';
import {
  interpAtIndex,
  karrasSigmas,
  makeAlphasCumprod,
  roundHalfEven,
  sigmaToAlphaSigma,
  sigmaToTimestep,
  sigmasFromAlphasCumprod,
  spacedTimesteps,
} from './noise-schedule.js';
import { checkStepIndex, predictX0 } from './prediction.js';

/** 2M: second order, using one previous x0 (diffusers' solver_order = 2). */
const SOLVER_ORDER = 2;
/** diffusers' lower_order_final default: use first order at the end of short (< 15 step) runs. */
const LOWER_ORDER_FINAL = true;
/**
 * The last sigma is 0 (final_sigmas_type "zero"). lambda is then +inf there, so a second-order
 * step would divide by it; diffusers therefore always takes the last step at first order, which
 * also lands exactly on the predicted x0.
 */
const FINAL_SIGMA_ZERO = true;

export class DpmSolverPP2MScheduler implements Scheduler {
  readonly timesteps: number[];
  readonly initNoiseSigma = 1;
  /** steps + 1 VE sigmas, descending, ending in 0. */
  readonly sigmas: Float64Array;

  // Multistep state: the previous step's x0 (D1 needs it), and how many steps have been taken.
  private prevX0: Float64Array | null = null;
  private lowerOrderNums = 0;
  private nextIndex = 0;

  constructor(
    readonly name: Extract<SchedulerName, 'dpmpp-2m' | 'dpmpp-2m-karras'>,
    private readonly config: SchedulerConfig,
    readonly steps: number,
  ) {
    // lambda_min_clipped defaults to -inf in diffusers, so the last usable timestep is T itself.
    const trainSigmas = sigmasFromAlphasCumprod(makeAlphasCumprod(config));
    let timesteps = spacedTimesteps({
      spacing: config.timestep_spacing,
      numTrainTimesteps: config.num_train_timesteps,
      steps,
      stepsOffset: config.steps_offset,
      roundLinspace: true,
      extraPoint: true,
    });
    let sigmas: number[];
    if (config.use_karras_sigmas) {
      // Ramp over the full training range, then the nearest (rounded) training timestep for the
      // model, found by interpolating in log-sigma.
      sigmas = karrasSigmas(trainSigmas[0]!, trainSigmas[trainSigmas.length - 1]!, steps);
      const logSigmas = trainSigmas.map(Math.log);
      timesteps = sigmas.map((s) => roundHalfEven(sigmaToTimestep(s, logSigmas)));
    } else {
      sigmas = timesteps.map((t) => interpAtIndex(t, trainSigmas));
    }
    this.timesteps = timesteps;
    this.sigmas = Float64Array.from([...sigmas, 0]);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample; // VP sample: the model takes it as is.
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
    if (stepIndex === 0) this.reset();
    if (stepIndex !== this.nextIndex) {
      throw new Error(
        `${this.name} scheduler: multistep solver got step ${stepIndex} but expected ${this.nextIndex} (steps must run in order)`,
      );
    }

    const s0 = sigmaToAlphaSigma(this.sigmas[stepIndex]!);
    const t = sigmaToAlphaSigma(this.sigmas[stepIndex + 1]!);
    const x0 = predictX0(this.config.prediction_type, modelOutput, sample, s0.alpha, s0.sigmaVp);

    const isLast = stepIndex === this.steps - 1;
    const lowerOrderFinal = isLast && ((LOWER_ORDER_FINAL && this.steps < 15) || FINAL_SIGMA_ZERO);

    // lambda = log(alpha) - log(sigma); at sigma = 0 it is +inf and exp(-h) = 0, which is fine.
    const lambda = (c: { alpha: number; sigmaVp: number }) => Math.log(c.alpha) - Math.log(c.sigmaVp);
    const lambdaT = lambda(t);
    const lambdaS0 = lambda(s0);
    const h = lambdaT - lambdaS0;
    const ratio = t.sigmaVp / s0.sigmaVp;
    const phi = t.alpha * (Math.exp(-h) - 1); // alpha_t * (e^{-h} - 1)

    const prevSample = new Float32Array(sample.length);
    if (this.lowerOrderNums < 1 || lowerOrderFinal || this.prevX0 === null) {
      // First order: exactly DDIM in lambda.
      for (let i = 0; i < sample.length; i++) prevSample[i] = ratio * sample[i]! - phi * x0[i]!;
    } else {
      // Second order, midpoint form: D1 = (x0_s0 - x0_s1) / r0 with r0 = h_prev / h.
      const s1 = sigmaToAlphaSigma(this.sigmas[stepIndex - 1]!);
      const r0 = (lambdaS0 - lambda(s1)) / h;
      const m1 = this.prevX0;
      for (let i = 0; i < sample.length; i++) {
        const d1 = (x0[i]! - m1[i]!) / r0;
        prevSample[i] = ratio * sample[i]! - phi * x0[i]! - 0.5 * phi * d1;
      }
    }

    this.prevX0 = x0;
    if (this.lowerOrderNums < SOLVER_ORDER) this.lowerOrderNums++;
    this.nextIndex = stepIndex + 1;
    return { prevSample, predOriginal: Float32Array.from(x0) };
  }

  private reset(): void {
    this.prevX0 = null;
    this.lowerOrderNums = 0;
    this.nextIndex = 0;
  }
}
