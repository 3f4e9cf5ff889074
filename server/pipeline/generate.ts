// The denoising loop: one function drives the CLI, the language server, asset generation and the
// reward table, so an image made anywhere from the same inputs is the same image.
import type { Scheduler, SchedulerConfig, SchedulerName, TextEncoding } from '../model/contract';
import { integerRule, isIntegerIn, STEPS } from '../limits';
import type { LoadedModel } from '../model/session';
import { CancelledError } from '../errors';
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

/** Everything a denoising loop for `steps` needs before its first UNet call. */
interface LoopSetup {
  scheduler: Scheduler;
  noise: GaussianNoise;
  latents: Float32Array;
  shape: [number, number, number];
  guided: boolean;
  text: TextEncoding;
  textEncoderMs: number;
  droppedTokens: number;
}

async function setUpLoop(model: LoadedModel, opts: Omit<GenerateOptions, 'onStep'>): Promise<LoopSetup> {
  if (!isIntegerIn(opts.steps, STEPS)) throw new RangeError(`steps must be ${integerRule(STEPS)}, got ${opts.steps}`);
  if (!Number.isFinite(opts.guidance) || opts.guidance < 0) {
    throw new RangeError(`guidance must be a number >= 0, got ${opts.guidance}`);
  }
  const shape = model.latentShape(opts.width, opts.height);
  const guided = runsUnconditional(model, opts.guidance);
  const positive = model.tokenizer.encode(opts.prompt);
  const t0 = performance.now();
  const text = await encodePrompts(model, opts.prompt, guided ? (opts.negativePrompt ?? '') : undefined);
  const textEncoderMs = performance.now() - t0;
  throwIfCancelled(opts.signal);
  const scheduler = createScheduler(opts.scheduler, pipelineSchedulerConfig(model.folder.schedulerConfig), opts.steps);
  const noise = new GaussianNoise(opts.seed);
  const latents = noise.next(shape[0] * shape[1] * shape[2]);
  for (let i = 0; i < latents.length; i++) latents[i] *= scheduler.initNoiseSigma;
  return { scheduler, noise, latents, shape, guided, text, textEncoderMs, droppedTokens: positive.dropped };
}

/**
 * Whether classifier-free guidance runs the unconditional batch row. Guidance 1 (or less) makes
 * it cancel out, so it is skipped at half the cost (SD-Turbo and SDXL-Turbo run at 0); an LCM
 * UNet is told the guidance as an embedding instead (LatentConsistencyModelPipeline never runs
 * it, and so takes no negative prompt).
 */
export function runsUnconditional(model: Pick<LoadedModel, 'layout'>, guidance: number): boolean {
  return guidance > 1 && !model.layout.guidanceEmbedding;
}

/** Why a negative prompt has no effect at this guidance on this model, when it has none. */
export function negativeIgnored(model: LoadedModel, guidance: number): string | undefined {
  if (runsUnconditional(model, guidance)) return undefined;
  return model.layout.guidanceEmbedding
    ? 'an LCM model is told the guidance as an embedding and runs no unconditional batch'
    : `guidance ${guidance} runs no unconditional batch`;
}

/**
 * The UNet's text rows: [negative, prompt] under guidance, else [prompt]. Where the model's
 * config asks for it (SDXL's force_zeros_for_empty_prompt) an empty negative prompt is zeros, as
 * diffusers' pipeline makes it, not the encoding of "".
 */
async function encodePrompts(model: LoadedModel, prompt: string, negative: string | undefined): Promise<TextEncoding> {
  if (negative === undefined) return model.encodeText([prompt]);
  if (negative !== '' || !model.layout.zeroEmptyNegative) return model.encodeText([negative, prompt]);
  const cond = await model.encodeText([prompt]);
  const [, l, d] = cond.dims;
  const hidden = new Float32Array(2 * l * d);
  hidden.set(cond.hidden, l * d);
  const pooled = cond.pooled && new Float32Array(2 * cond.pooled.length);
  pooled?.set(cond.pooled!, cond.pooled!.length);
  return { hidden, dims: [2, l, d], ...(pooled ? { pooled } : {}) };
}

/** The UNet's input at step `i`: the scaled latents, twice under guidance (unconditional, conditional). */
function unetInput(setup: LoopSetup, latents: Float32Array, i: number): Float32Array {
  const scaled = setup.scheduler.scaleModelInput(latents, i);
  if (!setup.guided) return scaled;
  const input = new Float32Array(scaled.length * 2);
  input.set(scaled, 0);
  input.set(scaled, scaled.length);
  return input;
}

/** Classifier-free guidance: uncond + g (cond - uncond), or the output itself without guidance. */
function guide(out: Float32Array, guided: boolean, guidance: number): Float32Array {
  if (!guided) return out;
  const n = out.length / 2;
  const eps = new Float32Array(n);
  for (let j = 0; j < n; j++) eps[j] = out[j] + guidance * (out[n + j] - out[j]);
  return eps;
}

/**
 * The first UNet call of a generation, made before the step count is chosen. With trailing
 * timestep spacing every schedule starts with the same call (the same timestep and the same scaled
 * noise), so a policy can read it and generate() can reuse it: the image is still exactly the
 * N-step image. `sharedFirstCall` (first-step.ts) says whether a scheduler's schedules share it.
 */
export interface FirstCall {
  timestep: number;
  /** The UNet's input and raw output (both halves under guidance). */
  input: Float32Array;
  output: Float32Array;
  ms: number;
  /** The latents' shape [C, h, w]. */
  shape: [number, number, number];
  guided: boolean;
  /** The x0 prediction after the call (from the guided noise prediction). */
  predOriginal: Float32Array;
}

/** Runs the first UNet call of a `steps`-step generation (any step count whose schedule shares it). */
export async function firstUnetCall(model: LoadedModel, opts: Omit<GenerateOptions, 'onStep'>): Promise<FirstCall> {
  const setup = await setUpLoop(model, opts);
  const [c, h, w] = setup.shape;
  const input = unetInput(setup, setup.latents, 0);
  const timestep = setup.scheduler.timesteps[0];
  const t0 = performance.now();
  const output = await model.unet(input, [setup.guided ? 2 : 1, c, h, w], timestep, setup.text, opts.guidance);
  const ms = performance.now() - t0;
  const { predOriginal } = setup.scheduler.step(guide(output, setup.guided, opts.guidance), 0, setup.latents, (n) => setup.noise.next(n));
  return { timestep, input, output, ms, shape: setup.shape, guided: setup.guided, predOriginal };
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export async function generate(model: LoadedModel, opts: GenerateOptions & { first?: FirstCall }): Promise<GenerateResult> {
  const started = performance.now();
  const setup = await setUpLoop(model, opts);
  const { scheduler, noise, shape, guided } = setup;
  const [channels, h, w] = shape;
  let latents = setup.latents;
  const unetMs: number[] = [];
  for (let i = 0; i < scheduler.timesteps.length; i++) {
    throwIfCancelled(opts.signal);
    const input = unetInput(setup, latents, i);
    let out: Float32Array;
    if (i === 0 && opts.first) {
      // Reused only when it is this very call; anything else is a caller's mistake, not a fallback.
      if (opts.first.timestep !== scheduler.timesteps[0] || !sameValues(opts.first.input, input)) {
        throw new Error(`the first UNet call given was made for another schedule (timestep ${opts.first.timestep}, this one starts at ${scheduler.timesteps[0]})`);
      }
      out = opts.first.output;
      unetMs.push(opts.first.ms);
    } else {
      const t0 = performance.now();
      out = await model.unet(input, [guided ? 2 : 1, channels, h, w], scheduler.timesteps[i], setup.text, opts.guidance);
      unetMs.push(performance.now() - t0);
    }
    const { prevSample, predOriginal } = scheduler.step(guide(out, guided, opts.guidance), i, latents, (n) => noise.next(n));
    latents = prevSample;
    await opts.onStep?.({
      step: i + 1,
      total: scheduler.timesteps.length,
      preview: async () => decodeToRgb(model, predOriginal, shape),
    });
  }
  throwIfCancelled(opts.signal);
  const t0 = performance.now();
  const image = await decodeToRgb(model, latents, shape);
  const vaeMs = performance.now() - t0;
  return {
    image,
    width: image.width,
    height: image.height,
    droppedTokens: setup.droppedTokens,
    timings: { textEncoderMs: setup.textEncoderMs, unetMs, vaeMs, totalMs: performance.now() - started },
  };
}

async function decodeToRgb(model: LoadedModel, latents: Float32Array, [c, h, w]: [number, number, number]): Promise<RgbImage> {
  const decoded = await model.decode(latents, [1, c, h, w]);
  const [, , height, width] = decoded.dims;
  return toRgb(decoded.data, width, height);
}
