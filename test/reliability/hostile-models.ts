// Model folders built to hurt the server that opens them: huge or absurdly nested JSON, a sparse
// 1 GB tokenizer.json, symlinks out of the folder (to a device that never ends, and to a regular
// file as the Hugging Face cache lays models out), a UNet whose fixed dims ask for terabytes, and a
// policy.json whose lengths do not match its graph. Each is a copy of a good fixture in a temporary
// folder, made with the file system calls that cost nothing (truncate for the gigabyte).
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import { tempDir } from '../temp-dirs';

export interface HostileModel {
  name: string;
  /** Builds the folder from a copy of the good fixture (or of one with a policy, when `withPolicy`). */
  make(dir: string, outside: string): void;
  withPolicy?: boolean;
  /** What the error (hover, status, preview) must say; undefined: the folder is fine and must load. */
  error?: RegExp;
  /**
   * The error is the UNet's, which only the render worker opens (one copy per part): hovers
   * answer with the steps, and what opens the UNet (a preview, measuring the cost) fails.
   */
  unet?: boolean;
}

const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);

function editJson(file: string, edit: (value: Record<string, unknown>) => void): void {
  const value = JSON.parse(readFileSync(file, 'utf8'));
  edit(value);
  writeFileSync(file, JSON.stringify(value));
}

/** Gives the UNet's `sample` input these fixed dims (the graph is small; its weights stay where they are). */
function fixUnetSampleDims(dir: string, dims: number[]): void {
  const file = join(dir, 'unet', 'model.onnx');
  const model = onnx.ModelProto.decode(readFileSync(file));
  const sample = model.graph!.input!.find((i) => i.name === 'sample')!;
  sample.type!.tensorType!.shape!.dim = dims.map((d) => ({ dimValue: d }));
  writeFileSync(file, onnx.ModelProto.encode(model).finish());
  editJson(join(dir, 'unet', 'config.json'), (c) => delete c.sample_size);
}

export const HOSTILE_MODELS: HostileModel[] = [
  {
    name: 'model_index.json of 100 MB',
    make: (dir) => writeFileSync(join(dir, 'model_index.json'), JSON.stringify({ _class_name: 'StableDiffusionPipeline', padding: 'x'.repeat(100 * 1024 * 1024) })),
    error: /model_index\.json: is 100\.0 MB, larger than such a file ever is/,
  },
  {
    name: 'model_index.json nested 100,000 deep',
    make: (dir) => writeFileSync(join(dir, 'model_index.json'), `{"_class_name": "StableDiffusionPipeline", "deep": ${deep(100_000)}}`),
    error: /model_index\.json: is nested 100001 levels deep/,
  },
  {
    name: 'tokenizer.json nested 100,000 deep',
    make: (dir) => writeFileSync(join(dir, 'tokenizer', 'tokenizer.json'), `{"version": "1.0", "model": ${deep(100_000)}}`),
    error: /tokenizer\.json: is nested 100001 levels deep/,
  },
  {
    name: 'a 1 GB tokenizer.json (sparse)',
    make: (dir) => truncateSync(join(dir, 'tokenizer', 'tokenizer.json'), 1024 ** 3),
    error: /tokenizer\.json: is 1\.0 GB, larger than such a file ever is/,
  },
  {
    name: 'tokenizer.json a symlink out of the folder to /dev/zero',
    make: (dir) => {
      rmSync(join(dir, 'tokenizer', 'tokenizer.json'));
      symlinkSync('/dev/zero', join(dir, 'tokenizer', 'tokenizer.json'));
    },
    error: /tokenizer\.json.*not a regular file/,
  },
  {
    name: "the UNet's external weights a symlink out of the folder to /dev/zero",
    make: (dir) => {
      rmSync(join(dir, 'unet', 'model.onnx_data'));
      symlinkSync('/dev/zero', join(dir, 'unet', 'model.onnx_data'));
    },
    error: /model\.onnx_data.*not a regular file/,
  },
  {
    name: "the UNet's external weights a symlink out of the folder to a regular file (the Hugging Face cache layout)",
    make: (dir, outside) => {
      const blob = join(outside, 'blobs', 'unet-weights');
      mkdirSync(join(outside, 'blobs'), { recursive: true });
      cpSync(join(dir, 'unet', 'model.onnx_data'), blob);
      rmSync(join(dir, 'unet', 'model.onnx_data'));
      symlinkSync(blob, join(dir, 'unet', 'model.onnx_data'));
    },
    // onnxruntime refuses external data that resolves outside the graph's folder; say so up front.
    error: /model\.onnx_data: is a symlink to .*outside.*--local-dir/,
  },
  {
    name: 'a UNet whose fixed dims ask for terabytes',
    make: (dir) => fixUnetSampleDims(dir, [1, 4, 1 << 20, 1 << 20]),
    error: /unet.*fixed at 1048576x1048576 latents.*larger than the 4096/i,
    unet: true,
  },
  {
    // The graph leaves its channels free, so they come from the config.
    name: "a UNet config whose in_channels ask for terabytes",
    make: (dir) => editJson(join(dir, 'unet', 'config.json'), (c) => (c.in_channels = 1 << 30)),
    error: /unet.*1073741824 channels/i,
    unet: true,
  },
  {
    name: 'policy.json with fewer candidates than the graph has logits',
    withPolicy: true,
    make: (dir) => editJson(join(dir, 'adadiff', 'policy.json'), (m) => ((m.candidates as number[]).length = 3)),
    error: /policy.*(logits|candidates)/,
  },
  {
    name: 'policy.json whose feature width does not match the text encoder',
    withPolicy: true,
    make: (dir) => editJson(join(dir, 'adadiff', 'policy.json'), (m) => ((m.features as { dim: number }).dim = 7)),
    error: /policy/,
  },
];

/** A fresh copy of `source` made hostile; `outside` is a folder beside it for symlink targets. */
export function makeHostileModel(model: HostileModel, source: string): { dir: string; root: string } {
  const root = tempDir('adadiff-hostile-model-');
  const dir = join(root, 'model');
  cpSync(source, dir, { recursive: true });
  model.make(dir, join(root, 'outside'));
  return { dir, root };
}
