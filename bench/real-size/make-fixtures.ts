// Full-size random-weight models in the optimum (diffusers ONNX) layout, for `npm run bench --
// real-size`: SD 1.5 (fp32 and fp16) and SDXL base (fp16; fp32 on request) with the published layer
// configurations, text encoders and VAE decoders of the real sizes. Not test fixtures: gigabytes,
// written outside the repository (default ~/.cache/adadiff/full-size, or --out / ADADIFF_FULL_SIZE_DIR)
// and reused while a stamp says the generator has not changed.
//
//   npm run fixtures:full-size [-- --out DIR] [--only sd15-fp32,sd15-fp16,sdxl-fp16,sdxl-fp32] [--force]
//
// This file writes the small JSON files with the test fixtures' own code (model_index.json, the
// scheduler config, the tokenizers); bench/real-size/export_onnx.py (python3-torch, python3-onnx)
// writes the networks. The tokenizer is the fixtures' CLIP-style BPE (test/fixtures/clip-bpe.ts,
// about a thousand tokens): CLIP's own 49408-token vocabulary cannot be shipped or downloaded here.
// The text encoders' embedding tables have CLIP's 49408 rows all the same; the ids used are the first ones.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { learnClipBpe } from '../../test/fixtures/clip-bpe';
import { FIXTURE_VARIANTS, LAYOUT_FIXTURES, modelIndex, schedulerConfig, type VariantSpec, writeJson, writeTokenizerFolder } from '../../test/fixtures/make-fixtures';

export const PYTHON = process.env.ADADIFF_BENCH_PYTHON ?? '/usr/bin/python3';

export type FullSizeModel = 'sd15-fp32' | 'sd15-fp16' | 'sdxl-fp16' | 'sdxl-fp32';

interface ModelSpec {
  arch: 'sd15' | 'sdxl';
  dtype: 'fp32' | 'fp16';
  /** What the folder's small files imitate: an optimum export of runwayml/stable-diffusion-v1-5 or stabilityai/stable-diffusion-xl-base-1.0. */
  layout: VariantSpec;
  /** Bytes on disk, rounded up: checked against the free space before writing. */
  diskBytes: number;
}

const GB = 1024 ** 3;
export const FULL_SIZE: Readonly<Record<FullSizeModel, ModelSpec>> = {
  'sd15-fp32': { arch: 'sd15', dtype: 'fp32', layout: FIXTURE_VARIANTS.optimum, diskBytes: 4.2 * GB },
  'sd15-fp16': { arch: 'sd15', dtype: 'fp16', layout: FIXTURE_VARIANTS.optimum, diskBytes: 2.1 * GB },
  'sdxl-fp16': { arch: 'sdxl', dtype: 'fp16', layout: LAYOUT_FIXTURES['sdxl-fp16'], diskBytes: 7 * GB },
  'sdxl-fp32': { arch: 'sdxl', dtype: 'fp32', layout: LAYOUT_FIXTURES.sdxl, diskBytes: 14 * GB },
};
/** What the bench needs: SDXL in fp32 is 10 GB of UNet that nothing measures, so only on request. */
export const DEFAULT_MODELS: readonly FullSizeModel[] = ['sd15-fp32', 'sd15-fp16', 'sdxl-fp16'];

export function fullSizeRoot(): string {
  return process.env.ADADIFF_FULL_SIZE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'adadiff', 'full-size');
}

const STAMP = '.full-size-stamp';

/** Hash of what decides the files: the Python networks and exporter, this script and the fixture layout code. */
function sourceStamp(): string {
  const files = [join(__dirname, 'sd_nets.py'), join(__dirname, 'export_onnx.py'), __filename, join(__dirname, '../../test/fixtures/make-fixtures.ts'), join(__dirname, '../../test/fixtures/clip-bpe.ts')];
  const hash = createHash('sha256');
  for (const f of files) hash.update(readFileSync(f));
  return hash.digest('hex').slice(0, 16);
}

/** The folder of `model` when it is written and current, else undefined. */
export function fullSizeFolder(model: FullSizeModel, root = fullSizeRoot()): string | undefined {
  const dir = join(root, model);
  try {
    return readFileSync(join(dir, STAMP), 'utf8').trim() === sourceStamp() ? dir : undefined;
  } catch {
    return undefined;
  }
}

export interface PartReport {
  parameters: number;
  bytes: number;
  external_data: boolean;
  seconds: number;
}

async function writeModel(root: string, model: FullSizeModel): Promise<Record<string, PartReport>> {
  const spec = FULL_SIZE[model];
  const free = statfsSync(root).bavail * statfsSync(root).bsize;
  if (free < spec.diskBytes * 1.1) {
    throw new Error(`${model} needs about ${(spec.diskBytes / GB).toFixed(1)} GB on disk and ${root} has ${(free / GB).toFixed(1)} GB free; pass --out DIR on a larger disk`);
  }
  const tmp = join(root, `.tmp-${model}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  try {
    const bpe = learnClipBpe();
    await writeJson(join(tmp, 'model_index.json'), { ...modelIndex(spec.layout), _name_or_path: `adadiff full-size fixture ${model} (random weights)` });
    await writeJson(join(tmp, 'scheduler', 'scheduler_config.json'), schedulerConfig(spec.layout));
    await writeTokenizerFolder(join(tmp, 'tokenizer'), 'both', bpe);
    // SDXL's second tokenizer is OpenCLIP's: the same BPE, padded with "!".
    if (spec.arch === 'sdxl') await writeTokenizerFolder(join(tmp, 'tokenizer_2'), 'both', bpe, '!');
    const report = join(tmp, '.parts.json');
    const args = [join(__dirname, 'export_onnx.py'), '--arch', spec.arch, '--dtype', spec.dtype, '--out', tmp, '--report', report];
    const child = execFile(PYTHON, args, { maxBuffer: 64 << 20 });
    child.stdout!.pipe(process.stdout);
    // torch.onnx's tracer warnings are noise here; errors still come through in the exit status.
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`${PYTHON} ${args.join(' ')} failed (exit ${code}):\n${stderr}`);
    const parts = JSON.parse(await readFile(report, 'utf8')) as Record<string, PartReport>;
    await rm(report);
    await writeFile(join(tmp, STAMP), sourceStamp() + '\n');
    const dir = join(root, model);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    return parts;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Checks that the Python side can run, with what to install when it cannot. */
async function checkPython(): Promise<void> {
  try {
    await promisify(execFile)(PYTHON, ['-c', 'import torch, onnx, numpy']);
  } catch (err) {
    throw new Error(`${PYTHON} cannot import torch, onnx and numpy (${(err as Error).message.split('\n').filter(Boolean).pop()}); Debian/Ubuntu: apt install python3-torch python3-onnx python3-numpy`);
  }
}

async function main() {
  const argv = process.argv.slice(2);
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const root = value('--out') ?? fullSizeRoot();
  const only = value('--only')?.split(',') ?? DEFAULT_MODELS;
  const unknown = only.filter((m) => !(m in FULL_SIZE));
  if (unknown.length) throw new Error(`unknown model(s) ${unknown.join(', ')}; choose from ${Object.keys(FULL_SIZE).join(', ')}`);
  await checkPython();
  await mkdir(root, { recursive: true });
  for (const model of only as FullSizeModel[]) {
    if (!argv.includes('--force') && fullSizeFolder(model, root)) {
      console.log(`${model}: ${join(root, model)} is current`);
      continue;
    }
    console.log(`${model}: writing ${join(root, model)}`);
    const t0 = performance.now();
    const parts = await writeModel(root, model);
    const params = Object.values(parts).reduce((a, p) => a + p.parameters, 0);
    const bytes = Object.values(parts).reduce((a, p) => a + p.bytes, 0);
    console.log(`${model}: ${(params / 1e9).toFixed(3)}B parameters, ${(bytes / GB).toFixed(2)} GB of weights, in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  if (!existsSync(root)) throw new Error(`${root} was not written`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
