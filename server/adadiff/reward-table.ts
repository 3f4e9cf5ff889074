// The reward table: for each prompt and seed, an image at every candidate step count from the same
// initial noise (generate() draws the initial latents from the seed before anything else), each
// scored by a quality scorer. Training and evaluation then run over the table, not the model.
//
// Building it is the expensive part (a prompt x seed costs sum(candidates) UNet calls), so it is
// cached on disk as JSON lines, one line per finished prompt x seed, in a file named by a hash of
// everything that changes the numbers (model hash, scheduler, guidance, size, negative prompt,
// scorer, reference steps). An interrupted run resumes where it stopped; a truncated last line
// (killed mid-write) is ignored. Lines hold a map from step count to score, so a later run that
// asks for extra step counts reuses what is there and generates only what is missing.

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { CpuShare, LoadedModel, PromptTokenizer, SchedulerName } from '../model/contract';
import { sessionOptions } from '../model/session';
import { generateSchedules, throwIfCancelled, type UnetCallTiming } from '../pipeline/generate';
import type { RgbImage } from '../pipeline/png';
import { resize } from '../pipeline/resize';
import type { ScorerKind } from './reward';
import { ssim } from './ssim';

export interface QualityScorer {
  readonly kind: ScorerKind;
  /** Names the scorer in cache keys: change it and cached scores are not reused. */
  readonly id: string;
  /**
   * Score of `image`. `reference` is the image the longest schedule made from the same noise; it is
   * generated only for scorers that compare against it (kind 'fidelity').
   */
  score(image: RgbImage, context: { prompt: string; reference?: RgbImage }): Promise<number>;
  dispose?(): Promise<void>;
}

/** SSIM to the longest schedule's image (RGB, 11x11 Gaussian window): needs no pretrained network. */
export const fidelityScorer: QualityScorer = {
  kind: 'fidelity',
  id: 'ssim-rgb-gauss11-1.5',
  score: async (image, { reference }) => {
    if (!reference) throw new Error('fidelity scorer: no reference image');
    return ssim(image, reference);
  },
};

/**
 * A user's ONNX image scorer (a CLIP-score or aesthetic export). Contract: a float input named
 * `image` (or the only rank-4 float input) [1, 3, H, W] with RGB in 0..1; optionally an `input_ids`
 * input [1, L] (int64 or int32) that receives the prompt as the diffusion model's tokenizer encodes
 * it; the first output holds the score (its first element is used). When the graph fixes H and W
 * to another size, the image is resized bilinearly.
 */
export async function loadOnnxScorer(file: string, tokenizer?: PromptTokenizer, cpu: CpuShare = 'shared'): Promise<QualityScorer> {
  const bytes = await fs.readFile(file).catch((err: Error) => {
    throw new Error(`scorer ${file}: ${err.message}`);
  });
  let session: ort.InferenceSession;
  try {
    // The model's CPU share: with ONNX Runtime's defaults (a thread per core, spinning after each
    // call) its pool would spin into the next image's UNet steps, as the policy's measurably did.
    session = await ort.InferenceSession.create(bytes, { ...sessionOptions(cpu), executionProviders: ['cpu'] });
  } catch (err) {
    throw new Error(`scorer ${file}: does not load in onnxruntime (${(err as Error).message})`);
  }
  const meta = session.inputMetadata as readonly ort.InferenceSession.ValueMetadata[];
  const tensors = meta.filter((m): m is ort.InferenceSession.TensorValueMetadata => m.isTensor);
  const imageInput =
    tensors.find((m) => m.name === 'image') ?? tensors.find((m) => m.shape.length === 4 && m.type.startsWith('float'));
  if (!imageInput) throw new Error(`scorer ${file}: needs an input named "image" [1, 3, H, W] (inputs: ${session.inputNames.join(', ')})`);
  const idsInput = tensors.find((m) => m.name === 'input_ids');
  const others = session.inputNames.filter((n) => n !== imageInput.name && n !== idsInput?.name);
  if (others.length > 0) throw new Error(`scorer ${file}: unexpected inputs ${others.join(', ')} (the contract is image and optional input_ids)`);
  if (idsInput && !tokenizer) throw new Error(`scorer ${file}: takes input_ids, so it needs the model's tokenizer`);
  const fixed = (d: number | string | undefined) => (typeof d === 'number' && d > 0 ? d : undefined);
  const digest = createHash('sha256').update(bytes).digest('hex').slice(0, 16);

  return {
    kind: 'onnx',
    id: `onnx-${digest}`,
    async score(image, { prompt }) {
      const h = fixed(imageInput.shape[2]) ?? image.height;
      const w = fixed(imageInput.shape[3]) ?? image.width;
      const feeds: Record<string, ort.Tensor> = {
        [imageInput.name]: new ort.Tensor('float32', toChw(resize(image, w, h)), [1, 3, h, w]),
      };
      if (idsInput && tokenizer) {
        const ids = tokenizer.encode(prompt).ids;
        const len = fixed(idsInput.shape[1]);
        if (len !== undefined && len !== ids.length) {
          throw new Error(`scorer ${file}: input_ids takes ${len} tokens, the model's tokenizer gives ${ids.length}`);
        }
        feeds[idsInput.name] =
          idsInput.type === 'int32'
            ? new ort.Tensor('int32', Int32Array.from(ids), [1, ids.length])
            : new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [1, ids.length]);
      }
      const out = await session.run(feeds);
      const value = Number(out[session.outputNames[0]].data[0]);
      if (!Number.isFinite(value)) throw new Error(`scorer ${file}: returned ${value}`);
      return value;
    },
    dispose: () => session.release(),
  };
}

function toChw(image: RgbImage): Float32Array {
  const plane = image.width * image.height;
  const out = new Float32Array(plane * 3);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) out[c * plane + i] = image.data[i * 3 + c] / 255;
  return out;
}

export interface TableGeneration {
  scheduler: SchedulerName;
  guidance: number;
  /** Image size; the model's default when absent. */
  width?: number;
  height?: number;
  negativePrompt?: string;
}

export interface RewardTableOptions extends TableGeneration {
  prompts: readonly string[];
  seeds: readonly number[];
  /** Step counts to generate; the largest is the fidelity reference. */
  steps: readonly number[];
  scorer: QualityScorer;
  /** Where the JSON-lines cache lives; no caching when absent. */
  cacheDir?: string;
  /** Who makes the missing rows: this process one by one (localRows, the default), or a pool of workers (server/pool/). */
  rows?: RowRunnerFactory;
  signal?: AbortSignal;
  onProgress?: (progress: TableProgress) => void;
}

export interface TableProgress {
  /** Prompt x seed pairs finished (from the cache or generated) and in all. */
  done: number;
  total: number;
  /** Pairs that came from the cache. */
  cached: number;
  elapsedSeconds: number;
  /** Remaining seconds at the pace so far (UNet steps per second); null before anything was measured. */
  etaSeconds: number | null;
  prompt: string;
  seed: number;
}

export interface TableRow {
  /** Score per step count, in the order of `RewardTable.steps`. */
  quality: number[];
  /** Generation wall time per step count in ms (as measured when the row was made). */
  ms: number[];
}

export interface RewardTable {
  steps: number[];
  prompts: string[];
  seeds: number[];
  /** rows[prompt][seed] */
  rows: TableRow[][];
  width: number;
  height: number;
  scorer: { kind: ScorerKind; id: string };
  cacheFile?: string;
  /** Wall time spent generating in this call (0 when everything was cached). */
  generatedSeconds: number;
}

/** One prompt x seed as the cache holds it: score and milliseconds per step count. */
export interface RowLine {
  prompt: string;
  seed: number;
  quality: Record<string, number>;
  ms: Record<string, number>;
}

/** What one row needs besides the model: the table's generation settings and its scorer. */
export interface RowSettings extends TableGeneration {
  scorer: QualityScorer;
}

/** One row to make: the step counts it lacks, and what the cache already holds of it. */
export interface RowTask {
  prompt: string;
  seed: number;
  missing: number[];
  /** The longest step count of the table: the fidelity reference. */
  reference: number;
  previous?: RowLine;
}

/**
 * Makes rows. `onRow` is called once per finished row, in any order, and awaited before the next
 * call (it appends to the cache file); a rejection of `run` stops the table, keeping the rows
 * already passed to `onRow`.
 */
export interface RowRunner {
  run(tasks: readonly RowTask[], onRow: (task: RowTask, line: RowLine) => Promise<void>, signal?: AbortSignal): Promise<void>;
}

export type RowRunnerFactory = (model: LoadedModel, settings: RowSettings) => RowRunner | Promise<RowRunner>;

/** This process, one row after the other. */
export const localRows: RowRunnerFactory = (model, settings) => ({
  async run(tasks, onRow, signal) {
    for (const task of tasks) {
      throwIfCancelled(signal);
      await onRow(task, await scoreRow(model, settings, task, signal));
    }
  },
});

const CACHE_VERSION = 1;

/** Everything that changes a row's numbers; its hash names the cache file. */
export async function tableSettings(model: LoadedModel, opts: RowSettings, reference: number) {
  const [, lh, lw] = model.latentShape(opts.width, opts.height);
  return {
    v: CACHE_VERSION,
    model: await model.folder.hash(),
    scheduler: opts.scheduler,
    guidance: opts.guidance,
    width: lw * model.vaeScaleFactor,
    height: lh * model.vaeScaleFactor,
    negativePrompt: opts.negativePrompt ?? '',
    scorer: opts.scorer.id,
    reference,
  };
}

export async function buildRewardTable(model: LoadedModel, opts: RewardTableOptions): Promise<RewardTable> {
  const steps = [...new Set(opts.steps)].sort((a, b) => a - b);
  if (steps.length === 0 || !steps.every((s) => Number.isInteger(s) && s > 0)) throw new Error('reward table: steps must be positive integers');
  if (opts.prompts.length === 0) throw new Error('reward table: no prompts');
  if (opts.seeds.length === 0) throw new Error('reward table: no seeds');
  const reference = steps[steps.length - 1];
  const settings = await tableSettings(model, opts, reference);
  const { width, height } = settings;
  const key = createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, 16);
  const cacheFile = opts.cacheDir ? path.join(opts.cacheDir, `reward-table-${key}.jsonl`) : undefined;
  const cache = cacheFile ? await openCache(cacheFile, settings) : new Map<string, RowLine>();

  const pairs = opts.prompts.flatMap((prompt, p) => opts.seeds.map((seed, s) => ({ prompt, seed, p, s })));
  const missingOf = (line: RowLine | undefined) => steps.filter((u) => line?.quality[u] === undefined);
  // Work in UNet steps, for the ETA: a missing score needs its image, and fidelity the reference too.
  const work = (line: RowLine | undefined) => {
    const missing = missingOf(line);
    if (missing.length === 0) return 0;
    const needsReference = opts.scorer.kind === 'fidelity' && !missing.includes(reference);
    return missing.reduce((a, b) => a + b, 0) + (needsReference ? reference : 0);
  };
  let workDone = 0;
  let workLeft = 0;
  let done = 0;
  let cached = 0;
  const started = performance.now();
  const rows: TableRow[][] = opts.prompts.map(() => []);
  const where = new Map<string, { p: number; s: number }[]>();

  const place = (prompt: string, seed: number, line: RowLine) => {
    for (const { p, s } of where.get(cacheKey(prompt, seed)) ?? []) {
      rows[p][s] = { quality: steps.map((u) => line.quality[u]), ms: steps.map((u) => line.ms[u] ?? NaN) };
      done++;
      const elapsedSeconds = (performance.now() - started) / 1000;
      opts.onProgress?.({
        done,
        total: pairs.length,
        cached,
        elapsedSeconds,
        etaSeconds: workDone > 0 ? (elapsedSeconds / workDone) * workLeft : workLeft === 0 ? 0 : null,
        prompt,
        seed,
      });
    }
  };
  const tasks: RowTask[] = [];
  for (const { prompt, seed, p, s } of pairs) {
    const id = cacheKey(prompt, seed);
    const at = where.get(id);
    // A prompt listed twice is one row, placed twice.
    if (at) {
      at.push({ p, s });
      continue;
    }
    where.set(id, [{ p, s }]);
    const line = cache.get(id);
    const missing = missingOf(line);
    if (missing.length > 0) tasks.push({ prompt, seed, missing, reference, ...(line ? { previous: line } : {}) });
  }
  workLeft = tasks.reduce((sum, t) => sum + work(t.previous), 0);
  for (const id of where.keys()) {
    const line = cache.get(id);
    if (line && missingOf(line).length === 0) {
      cached += where.get(id)!.length;
      place(line.prompt, line.seed, line);
    }
  }
  throwIfCancelled(opts.signal);
  const runner = await (opts.rows ?? localRows)(model, opts);
  await runner.run(
    tasks,
    async (task, line) => {
      const todo = work(task.previous);
      cache.set(cacheKey(task.prompt, task.seed), line);
      if (cacheFile) await fs.appendFile(cacheFile, JSON.stringify(line) + '\n');
      workDone += todo;
      workLeft -= todo;
      place(task.prompt, task.seed, line);
    },
    opts.signal,
  );
  return {
    steps,
    prompts: [...opts.prompts],
    seeds: [...opts.seeds],
    rows,
    width,
    height,
    scorer: { kind: opts.scorer.kind, id: opts.scorer.id },
    cacheFile,
    generatedSeconds: workDone > 0 ? (performance.now() - started) / 1000 : 0,
  };
}

const cacheKey = (prompt: string, seed: number) => `${seed}\u0000${prompt}`;

/**
 * One row: the images at its missing step counts from the seed's noise, scored. Local runs and pool
 * workers both call this. The images are denoised in lockstep (generateSchedules), each exactly
 * the image generate() makes with its count. A row's `ms` is what that image takes alone: the text
 * encoder, the count times one UNet call as this row measured it where a call carried one image
 * (the longest schedule's last steps), and the image's VAE decode.
 */
export async function scoreRow(model: LoadedModel, opts: RowSettings, task: RowTask, signal?: AbortSignal): Promise<RowLine> {
  const { prompt, seed, missing, reference, previous } = task;
  // The reference first: fidelity scores every other image against it.
  const wantReference = opts.scorer.kind === 'fidelity' || missing.includes(reference);
  const counts = [...new Set([...(wantReference ? [reference] : []), ...missing])];
  const made = await generateSchedules(model, {
    prompt,
    negativePrompt: opts.negativePrompt,
    steps: counts,
    seed,
    guidance: opts.guidance,
    scheduler: opts.scheduler,
    width: opts.width,
    height: opts.height,
    signal,
  });
  const stepMs = singleImageCallMs(made.calls);
  const byCount = new Map(made.images.map((m) => [m.steps, m]));
  const ref = wantReference ? byCount.get(reference)!.image : undefined;
  const line: RowLine = { prompt, seed, quality: { ...previous?.quality }, ms: { ...previous?.ms } };
  for (const steps of missing) {
    const image = byCount.get(steps)!;
    line.ms[steps] = made.textEncoderMs + steps * stepMs + image.vaeMs;
    line.quality[steps] = await opts.scorer.score(image.image, { prompt, reference: ref });
  }
  return line;
}

/** One UNet call's time for one image: the median of the calls that carried one, else the batched calls' time per image. */
function singleImageCallMs(calls: readonly UnetCallTiming[]): number {
  const singles = calls.filter((c) => c.images === 1).map((c) => c.ms).sort((a, b) => a - b);
  if (singles.length > 0) return singles[Math.floor(singles.length / 2)];
  return calls.reduce((sum, c) => sum + c.ms, 0) / Math.max(1, calls.reduce((sum, c) => sum + c.images, 0));
}

/** Reads the cache file, creating it with a header line (the settings, for people) when absent. */
async function openCache(file: string, settings: object): Promise<Map<string, RowLine>> {
  const cache = new Map<string, RowLine>();
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, JSON.stringify({ header: settings }) + '\n');
    return cache;
  }
  // An interrupted write leaves a partial last line; end it so the next append starts clean.
  if (text.length > 0 && !text.endsWith('\n')) await fs.appendFile(file, '\n');
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    let line: RowLine;
    try {
      line = JSON.parse(raw);
    } catch {
      continue; // a line cut short by an interrupted write
    }
    if (typeof line.prompt !== 'string' || typeof line.seed !== 'number' || typeof line.quality !== 'object') continue;
    const id = cacheKey(line.prompt, line.seed);
    const prev = cache.get(id);
    cache.set(id, prev ? { ...line, quality: { ...prev.quality, ...line.quality }, ms: { ...prev.ms, ...line.ms } } : line);
  }
  return cache;
}
