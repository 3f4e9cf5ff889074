// Turning a model output into (x0, eps), and the bookkeeping around Float32Array in / out.
//
// All schedulers write a noisy sample in variance-preserving form, x = alpha * x0 + sigma * eps with
// alpha^2 + sigma^2 = 1 (Euler's variance-exploding sample is x_ve = x / alpha, handled by the
// caller via `sampleScale`). With that one convention the three prediction types are:
//   epsilon:      eps = out,                x0 = (x - sigma * eps) / alpha
//   v_prediction: v = alpha * eps - sigma * x0  =>  x0 = alpha * x - sigma * v, eps = sigma * x + alpha * v
//   sample:       x0 = out,                 eps = (x - alpha * x0) / sigma

import type { SchedulerConfig } from '../../model/contract.js';

export type PredictionType = SchedulerConfig['prediction_type'];

/** x0 predicted from a model output, in float64. `sampleScale` maps the given sample to VP form. */
export function predictX0(
  type: PredictionType,
  modelOutput: Float32Array,
  sample: ArrayLike<number>,
  alpha: number,
  sigma: number,
  sampleScale = 1,
): Float64Array {
  checkLengths(modelOutput, sample);
  const n = sample.length;
  const x0 = new Float64Array(n);
  switch (type) {
    case 'epsilon':
      for (let i = 0; i < n; i++) x0[i] = (sample[i]! * sampleScale - sigma * modelOutput[i]!) / alpha;
      break;
    case 'v_prediction':
      for (let i = 0; i < n; i++) x0[i] = alpha * sample[i]! * sampleScale - sigma * modelOutput[i]!;
      break;
    case 'sample':
      for (let i = 0; i < n; i++) x0[i] = modelOutput[i]!;
      break;
  }
  return x0;
}

/** eps predicted from a model output (needed by DDIM, which re-noises towards the previous t). */
export function predictEps(
  type: PredictionType,
  modelOutput: Float32Array,
  sample: ArrayLike<number>,
  alpha: number,
  sigma: number,
): Float64Array {
  checkLengths(modelOutput, sample);
  const n = sample.length;
  const eps = new Float64Array(n);
  switch (type) {
    case 'epsilon':
      for (let i = 0; i < n; i++) eps[i] = modelOutput[i]!;
      break;
    case 'v_prediction':
      for (let i = 0; i < n; i++) eps[i] = alpha * modelOutput[i]! + sigma * sample[i]!;
      break;
    case 'sample':
      for (let i = 0; i < n; i++) eps[i] = (sample[i]! - alpha * modelOutput[i]!) / sigma;
      break;
  }
  return eps;
}

/** clip_sample: clamp x0 to [-1, 1] (diffusers' clip_sample_range default), in place. */
export function clipInPlace(x: Float64Array, range = 1): Float64Array {
  for (let i = 0; i < x.length; i++) x[i] = Math.min(range, Math.max(-range, x[i]!));
  return x;
}

export function scaled(sample: Float32Array, factor: number): Float32Array {
  const out = new Float32Array(sample.length);
  for (let i = 0; i < sample.length; i++) out[i] = sample[i]! * factor;
  return out;
}

function checkLengths(modelOutput: ArrayLike<number>, sample: ArrayLike<number>): void {
  if (modelOutput.length !== sample.length) {
    throw new RangeError(
      `scheduler: model output has ${modelOutput.length} values but the sample has ${sample.length}`,
    );
  }
}

/** `length` values from the generation's noise stream, checked: a short draw would leave part of the sample without noise. */
export function drawNoise(name: string, noise: (length: number) => Float32Array, length: number): Float32Array {
  const z = noise(length);
  if (z.length !== length) throw new RangeError(`${name} scheduler: noise callback returned ${z.length} values, expected ${length}`);
  return z;
}

/** Throws unless 0 <= stepIndex < steps; a wrong index would silently read the wrong sigma. */
export function checkStepIndex(name: string, stepIndex: number, steps: number): void {
  if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex >= steps) {
    throw new RangeError(`${name} scheduler: step index ${stepIndex} is outside 0..${steps - 1}`);
  }
}
