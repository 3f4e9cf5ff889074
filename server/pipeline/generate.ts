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

/** What every schedule of one prompt x seed shares: the text encoding and the latents' shape. */
interface Conditioning {
  shape: [number, number, number];
  guided: boolean;
  text: TextEncoding;
  textEncoderMs: number;
  droppedTokens: number;
}

/** One schedule being denoised: its scheduler, its own noise stream (from the seed) and latents. */
interface Run {
  scheduler: Scheduler;
  noise: GaussianNoise;
  latents: Float32Array;
  unetMs: number[];
}

type SharedOptions = Omit<GenerateOptions, 'steps' | 'onStep'>;

function checkSteps(steps: number): void {
  if (!isIntegerIn(steps, STEPS)) throw new RangeError(`steps must be ${integerRule(STEPS)}, got ${steps}`);
}

async function condition(model: LoadedModel, opts: SharedOptions): Promise<Conditioning> {
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
  return { shape, guided, text, textEncoderMs, droppedTokens: positive.dropped };
}

/** A schedule's start: the initial latents are the first thing drawn from the seed, so every step count starts from the same noise. */
function startRun(model: LoadedModel, opts: SharedOptions, { shape }: Conditioning, steps: number): Run {
  const scheduler = createScheduler(opts.scheduler, pipelineSchedulerConfig(model.folder.schedulerConfig), steps);
  const noise = new GaussianNoise(opts.seed);
  const latents = noise.next(shape[0] * shape[1] * shape[2]);
  for (let i = 0; i < latents.length; i++) latents[i] *= scheduler.initNoiseSigma;
  return { scheduler, noise, latents, unetMs: [] };
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
function unetInput(run: Run, guided: boolean, i: number): Float32Array {
  const scaled = run.scheduler.scaleModelInput(run.latents, i);
  if (!guided) return scaled;
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
  checkSteps(opts.steps);
  const cond = await condition(model, opts);
  const run = startRun(model, opts, cond, opts.steps);
  const [c, h, w] = cond.shape;
  const input = unetInput(run, cond.guided, 0);
  const timestep = run.scheduler.timesteps[0];
  const t0 = performance.now();
  const output = await model.unet(input, [cond.guided ? 2 : 1, c, h, w], timestep, cond.text, opts.guidance);
  const ms = performance.now() - t0;
  const { predOriginal } = run.scheduler.step(guide(output, cond.guided, opts.guidance), 0, run.latents, (n) => run.noise.next(n));
  return { timestep, input, output, ms, shape: cond.shape, guided: cond.guided, predOriginal };
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Latent cells one UNet call may take when it batches several schedules: those of one guided
 * SD 1.5 image (2 x 64 x 64), so a batched call never needs more activation memory than a plain
 * SD 1.5 generation. Smaller latents get more images per call (the bundled model's 16 x 16: 16);
 * larger ones run one image per call, as generate() does.
 */
const BATCH_CELLS = 2 * 64 * 64;

/** One batched UNet call of a lockstep run: how many distinct images it carried and how long it took. */
export interface UnetCallTiming {
  images: number;
  ms: number;
}

/**
 * Denoises every run in lockstep: at each step index the runs still going are batched into as few
 * UNet calls as the model allows, each batch row with its own timestep, and runs whose input is the
 * very same (the shared first call of trailing spacing) share one row. The UNet's rows are
 * computed independently, so a run's image is the one it would be alone (exactly so on the CPU
 * provider: generate-schedules.test.ts checks it).
 */
async function denoise(
  model: LoadedModel,
  opts: SharedOptions,
  cond: Conditioning,
  runs: readonly Run[],
  hooks: { first?: FirstCall; onStep?: GenerateOptions['onStep'] } = {},
): Promise<UnetCallTiming[]> {
  const { guided, shape } = cond;
  const [channels, h, w] = shape;
  const rowsPerImage = guided ? 2 : 1;
  const perCall = Math.max(
    1,
    Math.min(model.unetBatch.rowTimesteps ? Math.floor(BATCH_CELLS / (rowsPerImage * h * w)) : 1, Math.floor((model.unetBatch.maxRows ?? Infinity) / rowsPerImage)),
  );
  const texts = new Map<number, TextEncoding>();
  const textFor = (images: number) => {
    let text = texts.get(images);
    if (!text) texts.set(images, (text = repeatRows(cond.text, images)));
    return text;
  };
  const calls: UnetCallTiming[] = [];
  const longest = Math.max(...runs.map((r) => r.scheduler.timesteps.length));
  for (let i = 0; i < longest; i++) {
    throwIfCancelled(opts.signal);
    // The distinct UNet inputs of this step index, each with the runs that need it.
    const distinct: { timestep: number; input: Float32Array; runs: Run[]; output?: Float32Array }[] = [];
    for (const run of runs) {
      if (i >= run.scheduler.timesteps.length) continue;
      const timestep = run.scheduler.timesteps[i];
      const input = unetInput(run, guided, i);
      const same = distinct.find((d) => d.timestep === timestep && sameValues(d.input, input));
      if (same) same.runs.push(run);
      else distinct.push({ timestep, input, runs: [run] });
    }
    if (i === 0 && hooks.first) {
      const first = hooks.first;
      const match = distinct.find((d) => d.timestep === first.timestep && sameValues(d.input, first.input));
      // Reused only when it is this very call; anything else is a caller's mistake, not a fallback.
      if (!match) throw new Error(`the first UNet call given was made for another schedule (timestep ${first.timestep}, this one starts at ${distinct[0].timestep})`);
      match.output = first.output;
      for (const run of match.runs) run.unetMs.push(first.ms / match.runs.length);
    }
    const todo = distinct.filter((d) => !d.output);
    for (let at = 0; at < todo.length; at += perCall) {
      const batch = todo.slice(at, at + perCall);
      const cells = rowsPerImage * channels * h * w;
      const sample = new Float32Array(batch.length * cells);
      batch.forEach((d, k) => sample.set(d.input, k * cells));
      const timesteps = batch.flatMap((d) => Array<number>(rowsPerImage).fill(d.timestep));
      const t0 = performance.now();
      const out = await model.unet(sample, [batch.length * rowsPerImage, channels, h, w], batch.length === 1 ? batch[0].timestep : timesteps, textFor(batch.length), opts.guidance);
      const ms = performance.now() - t0;
      calls.push({ images: batch.length, ms });
      batch.forEach((d, k) => {
        d.output = out.subarray(k * cells, (k + 1) * cells);
        for (const run of d.runs) run.unetMs.push(ms / batch.length / d.runs.length);
      });
    }
    for (const d of distinct) {
      const eps = guide(d.output!, guided, opts.guidance);
      for (const run of d.runs) {
        const { prevSample, predOriginal } = run.scheduler.step(eps, i, run.latents, (n) => run.noise.next(n));
        run.latents = prevSample;
        await hooks.onStep?.({
          step: i + 1,
          total: run.scheduler.timesteps.length,
          preview: async () => decodeToRgb(model, predOriginal, shape),
        });
      }
    }
  }
  throwIfCancelled(opts.signal);
  return calls;
}

/** The text rows repeated for `images` images in one call: [negative, prompt] (or [prompt]) per image. */
function repeatRows(text: TextEncoding, images: number): TextEncoding {
  if (images === 1) return text;
  const repeat = (data: Float32Array) => {
    const out = new Float32Array(data.length * images);
    for (let k = 0; k < images; k++) out.set(data, k * data.length);
    return out;
  };
  const [rows, l, d] = text.dims;
  return { hidden: repeat(text.hidden), dims: [rows * images, l, d], ...(text.pooled ? { pooled: repeat(text.pooled) } : {}) };
}

export async function generate(model: LoadedModel, opts: GenerateOptions & { first?: FirstCall }): Promise<GenerateResult> {
  const started = performance.now();
  checkSteps(opts.steps);
  const cond = await condition(model, opts);
  const run = startRun(model, opts, cond, opts.steps);
  await denoise(model, opts, cond, [run], { first: opts.first, onStep: opts.onStep });
  const t0 = performance.now();
  const image = await decodeToRgb(model, run.latents, cond.shape);
  const vaeMs = performance.now() - t0;
  return {
    image,
    width: image.width,
    height: image.height,
    droppedTokens: cond.droppedTokens,
    timings: { textEncoderMs: cond.textEncoderMs, unetMs: run.unetMs, vaeMs, totalMs: performance.now() - started },
  };
}

export interface ScheduleImage {
  steps: number;
  image: RgbImage;
  /** This schedule's share of each step's UNet call time. */
  unetMs: number[];
  vaeMs: number;
}

export interface SchedulesResult {
  /** One per step count asked for, in that order. */
  images: ScheduleImage[];
  textEncoderMs: number;
  droppedTokens: number;
  /** Every UNet call made, with the number of images it carried. */
  calls: UnetCallTiming[];
}

/**
 * The images of one prompt and seed at several step counts, each exactly the image generate()
 * makes with that count, denoised in lockstep: the text is encoded once, each step index is one
 * batched UNet call where the model allows (unetBatch), and a first call the schedules share is
 * made once. What the reward table builds its rows with.
 */
export async function generateSchedules(model: LoadedModel, opts: SharedOptions & { steps: readonly number[] }): Promise<SchedulesResult> {
  if (opts.steps.length === 0) throw new RangeError('generateSchedules: no step counts');
  opts.steps.forEach(checkSteps);
  const cond = await condition(model, opts);
  const runs = opts.steps.map((steps) => startRun(model, opts, cond, steps));
  const calls = await denoise(model, opts, cond, runs);
  const images: ScheduleImage[] = [];
  for (const [k, run] of runs.entries()) {
    const t0 = performance.now();
    const image = await decodeToRgb(model, run.latents, cond.shape);
    images.push({ steps: opts.steps[k], image, unetMs: run.unetMs, vaeMs: performance.now() - t0 });
  }
  return { images, textEncoderMs: cond.textEncoderMs, droppedTokens: cond.droppedTokens, calls };
}

async function decodeToRgb(model: LoadedModel, latents: Float32Array, [c, h, w]: [number, number, number]): Promise<RgbImage> {
  const decoded = await model.decode(latents, [1, c, h, w]);
  const [, , height, width] = decoded.dims;
  return toRgb(decoded.data, width, height);
}
