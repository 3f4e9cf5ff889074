// What a generation costs on this machine: text encoder + steps x UNet call + VAE decode, each
// measured once per model x execution provider x size and cached, so hovers answer instantly and
// the figure is this device's, not a guess.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { threadId } from 'node:worker_threads';
import { type LoadedModel, sessionOptions, type TextModel } from '../model/session';

export interface Calibration {
  key: string;
  provider: string;
  textEncoderMs: number;
  /** One UNet call at the batch the guidance needs (2 with classifier-free guidance). */
  unetMs: number;
  vaeMs: number;
  measuredAt: string;
  runs: number;
  /** calibrationHint's value when it was measured: how a thread without the UNet finds it. */
  hint?: string;
  /** The provider each part ran on, and why not the ones before it: what the status shows before the UNet is loaded again. */
  parts?: LoadedModel['providers'];
}

export interface CalibrationShape {
  guided: boolean;
  width?: number;
  height?: number;
}

const CACHE_VERSION = 1;

export function estimateSeconds(cal: Calibration, steps: number): number {
  return (cal.textEncoderMs + steps * cal.unetMs + cal.vaeMs) / 1000;
}

/** The saving of `steps` against `baselineSteps`, as a fraction of the baseline's time. */
export function savingFraction(cal: Calibration, steps: number, baselineSteps: number): number {
  const base = estimateSeconds(cal, baselineSteps);
  return base > 0 ? 1 - estimateSeconds(cal, steps) / base : 0;
}

/**
 * What a calibration is valid for: the model's weights (a changed file changes the hash), the
 * provider every part runs on, the runtime's version, the session options (they include the thread
 * count, which follows the CPUs this process may use) and the shape. Any change is a new key, so a
 * stale figure is never shown; the old entry is simply no longer asked for.
 */
export async function calibrationKey(model: LoadedModel, shape: CalibrationShape, runtimeVersion: string): Promise<string> {
  const [c, h, w] = model.latentShape(shape.width, shape.height);
  const providers = Object.entries(model.providers).map(([part, p]) => `${part}=${p?.used}`).join(',');
  const parts = [CACHE_VERSION, await model.folder.hash(), providers, runtimeVersion, JSON.stringify(sessionOptions(model.cpu)), shape.guided ? 2 : 1, c, h, w];
  return createHash('sha256').update(parts.join('|')).digest('hex').slice(0, 24);
}

/**
 * What finds a calibration without the UNet loaded (the language server's main thread holds only
 * the text encoder): the files' paths, sizes and times (not their hash, which reads gigabytes), the
 * provider order asked for (not the providers used, which only loading the UNet tells), the
 * runtime, the session options and the shape asked for. A figure found by it was right when it was
 * measured; the render worker checks it against calibrationKey once it loads the UNet.
 */
export async function calibrationHint(model: TextModel, shape: CalibrationShape, runtimeVersion: string): Promise<string> {
  const f = model.folder;
  const files = [f.textEncoder, f.unet, f.vaeDecoder].flatMap((part) => [part.onnx, ...part.externalData]);
  const stats = await Promise.all(files.map(async (file) => {
    const s = await stat(file);
    return `${file}:${s.size}:${s.mtimeMs}`;
  }));
  const size = `${shape.width ?? 'default'}x${shape.height ?? 'default'}`;
  const parts = [CACHE_VERSION, ...stats, model.providerOrder.join(','), runtimeVersion, JSON.stringify(sessionOptions(model.cpu)), shape.guided ? 2 : 1, size];
  return createHash('sha256').update(parts.join('|')).digest('hex').slice(0, 24);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * Keep measuring, after `runs`, while within this budget: on a small model a few dozen rounds cost
 * under a second and make the median robust to a busy machine's load spikes (5 runs under a
 * fluctuating load were off by up to 40% against the generations that followed, `npm run bench --
 * eta`); on a large model `runs` rounds already exceed it, so first use stays as quick as before.
 */
const BUDGET_MS = 1500;
const MAX_RUNS = 40;
/**
 * A cap on the whole measurement: a full-size UNet on a CPU takes seconds per call, and `warmup`
 * plus `runs` rounds of it would hold the render worker for a minute. Past the cap the warm-up
 * stops after one round and the median is of the rounds measured so far (at least one).
 */
const CAP_MS = 10_000;

/**
 * Warm up, then the median of several rounds of each part, on zero inputs of the real shapes. The
 * parts are interleaved within each round, so a change in the machine's load during the
 * measurement shifts all three alike instead of one of them.
 */
export async function measureCalibration(
  model: LoadedModel,
  shape: CalibrationShape,
  key: string,
  runs = 5,
  warmup = 2,
  /** Milliseconds, for a test to run the bounds on simulated time. */
  clock: () => number = () => performance.now(),
): Promise<Calibration> {
  const [c, h, w] = model.latentShape(shape.width, shape.height);
  const batch = shape.guided ? 2 : 1;
  const prompts = new Array<string>(batch).fill('');
  const text = await model.encodeText(prompts);
  const latents = new Float32Array(batch * c * h * w);
  const parts = [
    () => model.encodeText(prompts),
    // Any guidance scale: an LCM UNet's cost does not depend on the embedding's values.
    () => model.unet(latents, [batch, c, h, w], 500, text, 1),
    () => model.decode(latents.subarray(0, c * h * w), [1, c, h, w]),
  ];
  const warming = clock();
  for (let i = 0; i < warmup && (i === 0 || clock() - warming < CAP_MS / 4); i++) for (const part of parts) await part();
  const times: number[][] = parts.map(() => []);
  const started = clock();
  let rounds = 0;
  const elapsed = () => clock() - started;
  while (rounds === 0 || (rounds < runs && elapsed() < CAP_MS) || (rounds < MAX_RUNS && elapsed() < BUDGET_MS)) {
    for (const [i, part] of parts.entries()) {
      const t0 = clock();
      await part();
      times[i].push(clock() - t0);
    }
    rounds++;
  }
  const [textEncoderMs, unetMs, vaeMs] = times.map(median);
  return {
    key,
    provider: model.providers.unet.used,
    textEncoderMs,
    unetMs,
    vaeMs,
    measuredAt: new Date().toISOString(),
    runs: rounds,
  };
}

let tmpCounter = 0;

/** A JSON file of calibrations by key; written atomically so a crash never leaves half a file. */
export class CalibrationStore {
  private entries: Record<string, Calibration> | undefined;

  constructor(private readonly file: string) {}

  private async load(): Promise<Record<string, Calibration>> {
    if (!this.entries) {
      try {
        const parsed = JSON.parse(await readFile(this.file, 'utf8'));
        this.entries = parsed && typeof parsed === 'object' && parsed.version === CACHE_VERSION ? parsed.entries : {};
      } catch {
        this.entries = {}; // missing or unreadable: measure again rather than fail a hover
      }
    }
    return this.entries!;
  }

  async get(key: string): Promise<Calibration | undefined> {
    return (await this.load())[key];
  }

  /** The latest calibration measured under this hint, read from the file afresh (another thread may have written it). */
  async findByHint(hint: string): Promise<Calibration | undefined> {
    this.entries = undefined;
    const found = Object.values(await this.load()).filter((c) => c.hint === hint);
    return found.sort((a, b) => b.measuredAt.localeCompare(a.measuredAt))[0];
  }

  async put(cal: Calibration): Promise<void> {
    const entries = await this.load();
    entries[cal.key] = cal;
    await mkdir(dirname(this.file), { recursive: true });
    // One name per write: writes overlap (two requests measuring at once, or the server's main
    // thread and its render worker, one pid), and a shared name lets one rename the other's away.
    const tmp = `${this.file}.${process.pid}.${threadId}.${++tmpCounter}.tmp`;
    await writeFile(tmp, JSON.stringify({ version: CACHE_VERSION, entries }, null, 1));
    await rename(tmp, this.file);
  }

  async clear(): Promise<void> {
    this.entries = {};
    await mkdir(dirname(this.file), { recursive: true });
    await writeFile(this.file, JSON.stringify({ version: CACHE_VERSION, entries: {} }));
  }
}

/** What a thread without the UNet needs of a calibration: the hint to find it, and the providers the parts ran on. */
async function findable(model: LoadedModel, shape: CalibrationShape, runtimeVersion: string): Promise<Pick<Calibration, 'hint' | 'parts'>> {
  return { hint: await calibrationHint(model, shape, runtimeVersion), parts: model.providers };
}

/** Measure again and replace the cached figure (`adadiff calibrate`); returns the new one and the one it replaces. */
export async function recalibrate(
  model: LoadedModel,
  shape: CalibrationShape,
  store: CalibrationStore,
  runtimeVersion: string,
): Promise<{ calibration: Calibration; previous?: Calibration }> {
  const key = await calibrationKey(model, shape, runtimeVersion);
  const previous = await store.get(key);
  const calibration = { ...(await measureCalibration(model, shape, key)), ...(await findable(model, shape, runtimeVersion)) };
  await store.put(calibration);
  return { calibration, previous };
}

/** The cached calibration for this model and shape, measured now if there is none. */
export async function getCalibration(
  model: LoadedModel,
  shape: CalibrationShape,
  store: CalibrationStore,
  runtimeVersion: string,
): Promise<Calibration> {
  const key = await calibrationKey(model, shape, runtimeVersion);
  const cached = await store.get(key);
  if (cached?.hint && cached.parts) return cached;
  // Measured before hints were recorded: record this one, so a thread without the UNet finds it.
  if (cached) {
    const hinted = { ...cached, ...(await findable(model, shape, runtimeVersion)) };
    await store.put(hinted);
    return hinted;
  }
  const cal = { ...(await measureCalibration(model, shape, key)), ...(await findable(model, shape, runtimeVersion)) };
  await store.put(cal);
  return cal;
}
