// Euler ancestral, as diffusers' EulerAncestralDiscreteScheduler: the Euler step of the
// probability-flow ODE goes only down to sigma_down, and fresh noise of size sigma_up brings the
// sample back to sigma_next (sigma_down^2 + sigma_up^2 = sigma_next^2). What SD-Turbo and
// SDXL-Turbo ship with (trailing spacing). The noise comes from the generation's seeded stream,
// so an image is the same for the same seed.

import type { Scheduler } from '../../model/contract.js';
import { EulerFamilyScheduler } from './euler.js';
import { drawNoise } from './prediction.js';

export class EulerAncestralScheduler extends EulerFamilyScheduler implements Scheduler {
  readonly name = 'euler-a' as const;

  step(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    noise: (length: number) => Float32Array,
  ): { prevSample: Float32Array; predOriginal: Float32Array } {
    const { sigma, next, x0 } = this.x0At(modelOutput, stepIndex, sample);
    const sigmaUp = Math.sqrt((next * next * (sigma * sigma - next * next)) / (sigma * sigma));
    const sigmaDown = Math.sqrt(next * next - sigmaUp * sigmaUp);
    const dt = sigmaDown - sigma;
    const prevSample = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) prevSample[i] = sample[i]! + ((sample[i]! - x0[i]!) / sigma) * dt;
    // The last step lands on sigma 0 with no noise to add; drawing none keeps the stream unchanged.
    if (sigmaUp > 0) {
      const z = drawNoise(this.name, noise, sample.length);
      for (let i = 0; i < sample.length; i++) prevSample[i] += z[i]! * sigmaUp;
    }
    return { prevSample, predOriginal: Float32Array.from(x0) };
  }
}
