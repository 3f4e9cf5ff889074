// What the first-step-aware policy reads besides the prompt: a summary of the generation's first
// UNet call, which every candidate schedule shares when its first timestep and scaled noise are the
// same (trailing spacing). Reading it costs nothing extra, since generate() reuses the call.
//
// The summary is per latent channel, so its size depends only on the channel count:
//   x0 mean, x0 std, x0 edge energy (mean |difference| between neighbouring latents), and the std
//   of the guidance direction (conditional minus unconditional output; 0 without guidance).
// A prompt the model is sure of gives a sharp, high-contrast x0 already at t = 999; a vague or
// unknown one gives a flat average that the later steps still have to decide.

import type { LoadedModel, SchedulerName } from '../model/contract';
import { firstUnetCall, pipelineSchedulerConfig, type FirstCall } from '../pipeline/generate';
import { createScheduler } from '../pipeline/schedulers';

export const FIRST_STEP_STATS = ['x0_mean', 'x0_std', 'x0_edges', 'guidance_std'] as const;

export const firstStepDim = (channels: number): number => FIRST_STEP_STATS.length * channels;

/** Names of the summary's entries, in order (for policy.json). */
export const firstStepFeatureNames = (channels: number): string[] =>
  FIRST_STEP_STATS.flatMap((stat) => Array.from({ length: channels }, (_, c) => `${stat}[${c}]`));

export function firstStepFeatures(call: FirstCall): Float32Array {
  const [c, h, w] = call.shape;
  const plane = h * w;
  const x0 = call.predOriginal;
  const out = new Float32Array(firstStepDim(c));
  for (let ch = 0; ch < c; ch++) {
    const o = ch * plane;
    let sum = 0;
    let sq = 0;
    let edges = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = x0[o + y * w + x];
        sum += v;
        sq += v * v;
        if (x + 1 < w) edges += Math.abs(x0[o + y * w + x + 1] - v);
        if (y + 1 < h) edges += Math.abs(x0[o + (y + 1) * w + x] - v);
      }
    }
    const mean = sum / plane;
    out[ch] = mean;
    out[c + ch] = Math.sqrt(Math.max(sq / plane - mean * mean, 0));
    out[2 * c + ch] = edges / Math.max((w - 1) * h + (h - 1) * w, 1);
    if (call.guided) {
      const n = call.output.length / 2;
      let dSum = 0;
      let dSq = 0;
      for (let i = 0; i < plane; i++) {
        const d = call.output[n + o + i] - call.output[o + i];
        dSum += d;
        dSq += d * d;
      }
      const dMean = dSum / plane;
      out[3 * c + ch] = Math.sqrt(Math.max(dSq / plane - dMean * dMean, 0));
    }
  }
  return out;
}

/**
 * Whether every schedule in `steps` starts with the same UNet call for this model's scheduler
 * config: the same first timestep, the same initial noise scale and the same input scaling. Checked
 * by building the schedulers and comparing, not assumed per scheduler name.
 */
export function sharedFirstCall(schedulerConfig: unknown, scheduler: SchedulerName, steps: readonly number[]): { shared: boolean; reason?: string } {
  const config = pipelineSchedulerConfig(schedulerConfig);
  const probe = new Float32Array([1]);
  const first = steps.map((n) => {
    const s = createScheduler(scheduler, config, n);
    return { n, t: s.timesteps[0], sigma: s.initNoiseSigma, scale: s.scaleModelInput(probe, 0)[0] };
  });
  const ref = first[0];
  const other = first.find((f) => f.t !== ref.t || f.sigma !== ref.sigma || f.scale !== ref.scale);
  if (!other) return { shared: true };
  return {
    shared: false,
    reason: `${scheduler}: the ${ref.n}-step schedule starts at timestep ${ref.t}, the ${other.n}-step one at ${other.t}` +
      (other.t === ref.t ? ` with another noise or input scale` : ''),
  };
}

export interface FirstStep {
  call: FirstCall;
  features: Float32Array;
}

/** The first call of a generation with these settings, and its summary. `steps` is any schedule that shares it. */
export async function firstStep(
  model: LoadedModel,
  opts: { prompt: string; negativePrompt?: string; seed: number; guidance: number; scheduler: SchedulerName; width?: number; height?: number; steps: number; signal?: AbortSignal },
): Promise<FirstStep> {
  const call = await firstUnetCall(model, opts);
  return { call, features: firstStepFeatures(call) };
}
