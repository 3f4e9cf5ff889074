// What travels through the pool's queues: one reward-table row or one asset image per job, the
// model identity it needs, and what comes back. Both ends check what they receive: a worker refuses
// a malformed job or one for another model, the coordinator refuses a result that is too large,
// malformed or not the answer to its job, before anything is written.
import { PNG } from 'pngjs';
import type { RowLine, RowTask } from '../adadiff/reward-table';
import type { AssetRenderSpec, ModelIdentity, RenderedAsset } from '../assets/generate';
import { GUIDANCE, isImageSize, isIntegerIn, isNumberIn, isSchedulerName, SCHEDULER_NAMES, SEED, STEPS, type SchedulerName } from '../limits';
import { AdaDiffError } from '../errors';

/** BullMQ's key prefix for the pool: its queues, and the workers' presence keys below it. */
export const PREFIX = 'adadiff';
export const PRESENCE_PREFIX = `${PREFIX}:workers:`;
/** A coordinator keeps its run's key alive; a worker drops the jobs of a run whose coordinator is gone (killed). */
export const RUN_PREFIX = `${PREFIX}:runs:`;
export const JOB_VERSION = 1;

const short = (hash: string | null) => (hash ? hash.slice(0, 16) : 'none');

/** A worker listens only on its model's queues, so a job reaches only workers that have its model. */
export const rowQueue = (modelHash: string) => `rows.${short(modelHash)}`;
export const assetQueue = (identity: ModelIdentity) => `assets.${short(identity.hash)}.${short(identity.policy)}`;

export class JobError extends AdaDiffError {
  override readonly name = 'JobError';
  readonly kind = 'job';
}

/** One reward-table row: the table's settings, its scorer, and the row's task. */
export interface RowJob {
  v: typeof JOB_VERSION;
  kind: 'row';
  run: string;
  model: { name: string; hash: string };
  settings: { scheduler: SchedulerName; guidance: number; width?: number; height?: number; negativePrompt?: string };
  scorer: string;
  task: RowTask;
}

export interface AssetJob {
  v: typeof JOB_VERSION;
  kind: 'asset';
  run: string;
  model: ModelIdentity;
  spec: AssetRenderSpec;
}

export type PoolJob = RowJob | AssetJob;

/** Who did a job and how long it took there: the coordinator's per-worker rates. */
export interface JobReceipt {
  worker: string;
  jobMs: number;
}

export interface RowResult extends JobReceipt {
  line: RowLine;
}
/** The PNG travels as base64 in the job's JSON return value. */
export interface AssetResult extends JobReceipt {
  asset: Omit<RenderedAsset, 'png'> & { png: string };
}

/** Limits on what a job or result may hold: a prompt is a line of text, a row a few numbers. */
export const LIMITS = {
  textChars: 10_000,
  workerIdChars: 200,
  rowResultBytes: 256 * 1024,
  /** Per pixel: raw RGB plus PNG's filter bytes and deflate's worst case, with room for the text chunk. */
  pngBytes: (width: number, height: number) => Math.ceil(width * height * 3 * 1.02) + height + 64 * 1024,
} as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isText = (v: unknown, max: number = LIMITS.textChars): v is string => typeof v === 'string' && v.length <= max;
const isHash = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{16,128}$/.test(v);

function fail(what: string, why: string): never {
  throw new JobError(`${what}: ${why}`);
}

function checkSize(what: string, width: unknown, height: unknown): void {
  if (width === undefined && height === undefined) return;
  if (!isIntegerIn(width, { min: 1, max: 1e6 }) || !isIntegerIn(height, { min: 1, max: 1e6 }) || !isImageSize(width, height)) fail(what, `bad size ${String(width)}x${String(height)}`);
}

function checkStepMap(what: string, map: unknown, finite: boolean): asserts map is Record<string, number> {
  if (!isObj(map)) fail(what, 'expected a map from step count to number');
  for (const [k, v] of Object.entries(map)) {
    if (!isIntegerIn(Number(k), STEPS) || String(Number(k)) !== k) fail(what, `"${k}" is not a step count`);
    if (typeof v !== 'number' || (finite && !Number.isFinite(v))) fail(what, `the value for ${k} steps is not a number`);
  }
}

function checkRowLine(what: string, v: unknown): asserts v is RowLine {
  if (!isObj(v) || !isText(v.prompt) || !isIntegerIn(v.seed, SEED)) fail(what, 'expected prompt, seed, quality and ms');
  checkStepMap(`${what} quality`, v.quality, true);
  checkStepMap(`${what} ms`, v.ms, false);
}

function checkModel(v: unknown, withPolicy: boolean): void {
  if (!isObj(v) || !isText(v.name, 1000) || !isHash(v.hash)) fail('job', 'expected the model name and hash');
  if (withPolicy && v.policy !== null && !isHash(v.policy)) fail('job', 'bad policy hash');
}

/** A worker's check of what it took from a queue. */
export function parseJob(data: unknown): PoolJob {
  if (!isObj(data)) fail('job', 'not an object');
  if (data.v !== JOB_VERSION) fail('job', `format ${String(data.v)}, this worker reads ${JOB_VERSION} (update the worker or the coordinator)`);
  if (!isText(data.run, 200)) fail('job', 'no run id');
  if (data.kind === 'row') {
    checkModel(data.model, false);
    const s = data.settings;
    if (!isObj(s) || !isSchedulerName(s.scheduler) || !isNumberIn(s.guidance, GUIDANCE)) fail('row job', `settings need a scheduler (${SCHEDULER_NAMES.join(', ')}) and a guidance`);
    checkSize('row job', s.width, s.height);
    if (s.negativePrompt !== undefined && !isText(s.negativePrompt)) fail('row job', 'bad negative prompt');
    if (!isText(data.scorer, 200)) fail('row job', 'no scorer id');
    const t = data.task;
    if (!isObj(t) || !isText(t.prompt) || !isIntegerIn(t.seed, SEED) || !isIntegerIn(t.reference, STEPS)) fail('row job', 'the task needs prompt, seed and reference');
    if (!Array.isArray(t.missing) || t.missing.length === 0 || t.missing.length > 100 || !t.missing.every((u) => isIntegerIn(u, STEPS))) fail('row job', 'missing must list step counts');
    if (t.previous !== undefined) checkRowLine('row job previous', t.previous);
    return data as unknown as RowJob;
  }
  if (data.kind === 'asset') {
    checkModel(data.model, true);
    const s = data.spec;
    if (!isObj(s) || !isText(s.prompt) || !isIntegerIn(s.seed, SEED)) fail('asset job', 'the spec needs prompt and seed');
    if (s.steps !== 'auto' && !isIntegerIn(s.steps, STEPS)) fail('asset job', 'steps must be auto or a step count');
    if (s.negativePrompt !== undefined && !isText(s.negativePrompt)) fail('asset job', 'bad negative prompt');
    checkSize('asset job', s.width, s.height);
    return data as unknown as AssetJob;
  }
  fail('job', `unknown kind ${JSON.stringify(data.kind)}`);
}

function checkReceipt(what: string, v: unknown): JobReceipt {
  if (!isObj(v) || !isText(v.worker, LIMITS.workerIdChars) || !isNumberIn(v.jobMs, { min: 0, max: 1e9 })) fail(what, 'no worker id or time');
  return { worker: v.worker, jobMs: v.jobMs as number };
}

/** The coordinator's check of a row: valid, small, and the answer to `job` (every step count asked for). */
export function parseRowResult(value: unknown, job: RowJob): { line: RowLine } & JobReceipt {
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? '');
  if (bytes > LIMITS.rowResultBytes) fail('row result', `${bytes} bytes, over the ${LIMITS.rowResultBytes} a row may take`);
  const receipt = checkReceipt('row result', value);
  const line = (value as Obj).line;
  checkRowLine('row result', line);
  if (line.prompt !== job.task.prompt || line.seed !== job.task.seed) fail('row result', 'answers another prompt or seed');
  for (const u of job.task.missing) {
    if (line.quality[u] === undefined || line.ms[u] === undefined) fail('row result', `no score for ${u} steps`);
  }
  return { line: { prompt: line.prompt, seed: line.seed, quality: line.quality, ms: line.ms }, ...receipt };
}

/** The coordinator's check of an image: a PNG of the size it claims, within the bytes that size allows, made as the job asked. */
export function parseAssetResult(value: unknown, job: AssetJob): { asset: RenderedAsset } & JobReceipt {
  const receipt = checkReceipt('asset result', value);
  const a = (value as Obj).asset;
  if (!isObj(a)) fail('asset result', 'no asset');
  const { width, height, seed, steps, scheduler, guidance, baselineSteps, png } = a;
  if (!isIntegerIn(width, { min: 1, max: 1e6 }) || !isIntegerIn(height, { min: 1, max: 1e6 }) || !isImageSize(width, height)) fail('asset result', 'bad size');
  if (job.spec.width !== undefined && (width !== job.spec.width || height !== job.spec.height)) fail('asset result', `${width}x${height}, the job asked for ${job.spec.width}x${job.spec.height}`);
  if (seed !== job.spec.seed) fail('asset result', `seed ${String(seed)}, the job asked for ${job.spec.seed}`);
  if (!isIntegerIn(steps, STEPS) || (job.spec.steps !== 'auto' && steps !== job.spec.steps)) fail('asset result', `steps ${String(steps)}, the job asked for ${job.spec.steps}`);
  if (!isIntegerIn(baselineSteps, STEPS)) fail('asset result', 'bad baseline steps');
  if (!isSchedulerName(scheduler) || !isNumberIn(guidance, GUIDANCE)) fail('asset result', 'bad scheduler or guidance');
  const maxBytes = LIMITS.pngBytes(width, height);
  if (typeof png !== 'string' || png.length > Math.ceil((maxBytes * 4) / 3) + 4) fail('asset result', `the image is over the ${maxBytes} bytes a ${width}x${height} PNG may take`);
  const bytes = Buffer.from(png, 'base64');
  let decoded: { width: number; height: number };
  try {
    decoded = PNG.sync.read(bytes);
  } catch (err) {
    fail('asset result', `not a PNG (${(err as Error).message})`);
  }
  if (decoded.width !== width || decoded.height !== height) fail('asset result', `the PNG is ${decoded.width}x${decoded.height}, the result says ${width}x${height}`);
  return { asset: { png: bytes, width, height, seed, steps, scheduler, guidance, baselineSteps }, ...receipt };
}
