// The denoising loop: one function drives the CLI, the language server, asset generation and the
// reward table, so an image made anywhere from the same inputs is the same image.
import type { SchedulerConfig, SchedulerName } from '../model/contract';
import type { LoadedModel } from '../model/session';
import { GaussianNoise } from './noise';
import type { RgbImage } from './png';
import { createScheduler, resolveSchedulerConfig } from './schedulers';

export interface GenerateOptions {
  prompt: string;
  negativePrompt?: string;
  steps: number;
  seed: number;
  guidance: number;
  scheduler: SchedulerName;
  width?: number;
  height?: number;
  signal?: AbortSignal;
  /** Called after every step; `preview()` decodes the current x0 prediction (costs one VAE call). */
  onStep?: (progress: StepProgress) => void | Promise<void>;
}

export interface StepProgress {
  step: number;
  total: number;
  preview: () => Promise<RgbImage>;
}

export interface GenerateResult {
  image: RgbImage;
  width: number;
  height: number;
  /** Prompt tokens cut off past the text encoder's length. */
  droppedTokens: number;
  timings: { textEncoderMs: number; unetMs: number[]; vaeMs: number; totalMs: number };
}

export class CancelledError extends Error {
  constructor() {
    super('generation cancelled');
    this.name = 'CancelledError';
  }
}

export function throwIfCancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

/** Decoded VAE output [1,3,H,W] in -1..1 -> 8-bit RGB. */
export function toRgb(data: Float32Array, width: number, height: number): RgbImage {
  const plane = width * height;
  const out = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const v = Math.round(((data[c * plane + i] + 1) / 2) * 255);
      out[i * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, data: out };
}

/**
 * The scheduler config as diffusers' Stable Diffusion pipelines use it: clip_sample is forced off,
 * since DDIM's default (and old PNDM-era configs) would clamp the x0 prediction of *latents* to
 * [-1, 1], which only makes sense for pixel-space models.
 */
export function pipelineSchedulerConfig(raw: unknown): SchedulerConfig {
  return { ...resolveSchedulerConfig(raw), clip_sample: false };
}

export async function generate(model: LoadedModel, opts: GenerateOptions): Promise<GenerateResult> {
  if (!Number.isInteger(opts.steps) || opts.steps < 1 || opts.steps > 1000) {
    throw new RangeError(`steps must be an integer from 1 to 1000, got ${opts.steps}`);
  }
  if (!Number.isFinite(opts.guidance) || opts.guidance < 0) {
    throw new RangeError(`guidance must be a number >= 0, got ${opts.guidance}`);
  }
  const started = performance.now();
  const [channels, h, w] = model.latentShape(opts.width, opts.height);
  const width = w * model.vaeScaleFactor;
  const height = h * model.vaeScaleFactor;
  const latentSize = channels * h * w;
  // Guidance 1 (or less) makes the unconditional branch cancel out: skip it and halve the cost.
  const guided = opts.guidance > 1;

  const positive = model.tokenizer.encode(opts.prompt);
  const negative = model.tokenizer.encode(opts.negativePrompt ?? '');
  let t0 = performance.now();
  const text = await model.encodeText(guided ? [negative.ids, positive.ids] : [positive.ids]);
  const textEncoderMs = performance.now() - t0;
  throwIfCancelled(opts.signal);

  const scheduler = createScheduler(opts.scheduler, pipelineSchedulerConfig(model.folder.schedulerConfig), opts.steps);
  const noise = new GaussianNoise(opts.seed);
  let latents = noise.next(latentSize);
  for (let i = 0; i < latents.length; i++) latents[i] *= scheduler.initNoiseSigma;

  const batch = guided ? 2 : 1;
  const unetMs: number[] = [];
  const modelInput = new Float32Array(latentSize * batch);
  for (let i = 0; i < scheduler.timesteps.length; i++) {
    throwIfCancelled(opts.signal);
    const scaled = scheduler.scaleModelInput(latents, i);
    modelInput.set(scaled, 0);
    if (guided) modelInput.set(scaled, latentSize);
    t0 = performance.now();
    const out = await model.unet(modelInput, [batch, channels, h, w], scheduler.timesteps[i], text.hidden, text.dims);
    unetMs.push(performance.now() - t0);
    let eps = out;
    if (guided) {
      eps = new Float32Array(latentSize);
      for (let j = 0; j < latentSize; j++) {
        const uncond = out[j];
        eps[j] = uncond + opts.guidance * (out[latentSize + j] - uncond);
      }
    }
    const { prevSample, predOriginal } = scheduler.step(eps, i, latents, (n) => noise.next(n));
    latents = prevSample;
    await opts.onStep?.({
      step: i + 1,
      total: scheduler.timesteps.length,
      preview: async () => decodeToRgb(model, predOriginal, [channels, h, w]),
    });
  }
  throwIfCancelled(opts.signal);
  t0 = performance.now();
  const image = await decodeToRgb(model, latents, [channels, h, w]);
  const vaeMs = performance.now() - t0;
  return {
    image,
    width: image.width,
    height: image.height,
    droppedTokens: positive.dropped,
    timings: { textEncoderMs, unetMs, vaeMs, totalMs: performance.now() - started },
  };
}

async function decodeToRgb(model: LoadedModel, latents: Float32Array, [c, h, w]: [number, number, number]): Promise<RgbImage> {
  const decoded = await model.decode(latents, [1, c, h, w]);
  const [, , height, width] = decoded.dims;
  return toRgb(decoded.data, width, height);
}
