// Will these graphs fit in this machine's memory? Checked before onnxruntime reads a byte of them:
// a model too big for the machine must end in a clear error that names the sizes, not in the
// kernel's out-of-memory killer taking the language server (and the editor's work) with it.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import { weightTypes } from '../onnx/weight-types';
import type { ModelPart } from './contract';
import { ModelError } from './errors';

/**
 * What loading a graph costs beyond its files: onnxruntime keeps the weights in memory (on the CPU
 * provider the prepacked copies of MatMul weights replace the originals rather than add to them),
 * plus its arena, the graph and a call's activations. Measured on a 512 MB fp32 UNet (the stand-in
 * of `npm run bench -- memory`): one CPU session grew the resident size by 1.05x the file, 1.18x
 * at the peak of loading; the margin and the slack cover that and a call's activations.
 */
export const MEMORY_MARGIN = 1.2;
/**
 * What a byte of float16 weights costs on the CPU provider at the peak of loading: for most of a
 * UNet's ops it has float32 kernels only, so onnxruntime casts the weights and keeps float32 copies
 * (twice the bytes) beside buffers of the originals. Measured on the SD 1.5-size fp16 UNet of
 * `npm run fixtures:full-size` (1.6 GB file; bench/real-size/session-rss.ts): resident size
 * +3.79x the file at the peak of loading, +2.84x after three calls; the same network in fp32 took
 * 1.02x its file after loading and 1.12x after the calls. graphOptimizationLevel 'basic' defers the
 * copies to the first calls (1.05x after loading, 3.2x after three calls), so it saves nothing.
 */
export const FP16_ON_CPU = 3.8;
/** A fixed allowance for the runtime's own buffers and the first call's activations. */
export const MEMORY_SLACK_BYTES = 256 * 1024 * 1024;

/** Where the weights will run: on the CPU provider, float16 weights cost FP16_ON_CPU per byte. */
export type WeightPlace = 'cpu' | 'gpu';

export interface MemoryNeed {
  /** The ONNX files and their external data, in bytes. */
  fileBytes: number;
  /** Of those, the float16 weights (the graphs' initializers, read without loading them). */
  float16Bytes: number;
  /** Where the estimate assumes the weights run. */
  place: WeightPlace;
  /** fileBytes x MEMORY_MARGIN + MEMORY_SLACK_BYTES, with float16 weights at FP16_ON_CPU per byte on the CPU. */
  neededBytes: number;
}

/** What the machine has: os.totalmem(), and os.freemem() (MemAvailable on Linux: free pages plus the page cache it can drop). */
export interface MachineMemory {
  totalBytes: number;
  availableBytes: number;
}

export const machineMemory = (): MachineMemory => ({ totalBytes: os.totalmem(), availableBytes: os.freemem() });

/** Bytes of float16 initializers in a graph; 0 when its wire format does not read (onnxruntime then says why, in its words). */
async function float16Weights(file: string): Promise<number> {
  try {
    return (await weightTypes(file)).bytes.float16 ?? 0;
  } catch {
    return 0;
  }
}

export async function memoryNeed(parts: readonly ModelPart[], place: WeightPlace = 'cpu'): Promise<MemoryNeed> {
  let fileBytes = 0;
  let float16Bytes = 0;
  for (const part of parts) {
    let partBytes = 0;
    for (const file of [part.onnx, ...part.externalData]) partBytes += (await fs.stat(file)).size;
    fileBytes += partBytes;
    if (place === 'cpu') float16Bytes += Math.min(await float16Weights(part.onnx), partBytes);
  }
  const neededBytes = Math.ceil((fileBytes - float16Bytes) * MEMORY_MARGIN + float16Bytes * FP16_ON_CPU) + MEMORY_SLACK_BYTES;
  return { fileBytes, float16Bytes, place, neededBytes };
}

export function formatBytes(bytes: number): string {
  const gib = bytes / 1024 ** 3;
  if (gib >= 1) return `${gib.toFixed(1)} GB`;
  return `${Math.max(1, Math.round(bytes / 1024 ** 2))} MB`;
}

/**
 * Throws a ModelError naming the sizes when `parts` will not fit: beyond the machine's total memory
 * (no amount of closing programs helps) or beyond what is available now (it may after closing some).
 * `what` names the parts in the message ("the UNet and VAE").
 */
export async function checkMemory(
  parts: readonly ModelPart[],
  what: string,
  machine: MachineMemory = machineMemory(),
  place: WeightPlace = 'cpu',
): Promise<MemoryNeed> {
  const need = await memoryNeed(parts, place);
  const fp16 = need.float16Bytes > 0 ? ` (${formatBytes(need.float16Bytes)} of float16 weights, which the CPU runs as float32)` : '';
  const files = `${what} ${parts.length === 1 ? 'is' : 'are'} ${formatBytes(need.fileBytes)} on disk, about ${formatBytes(need.neededBytes)} in memory once loaded${fp16}`;
  if (need.neededBytes > machine.totalBytes) {
    throw new ModelError(parts[0].onnx, `is too large for this machine: ${files}, and it has ${formatBytes(machine.totalBytes)} in all. ${need.float16Bytes > 0 ? 'Use a GPU provider, an fp32 export (smaller than fp16 on the CPU, which keeps both copies)' : 'Use a smaller or fp16 export (on a GPU provider)'}, or a machine with more memory`);
  }
  if (need.neededBytes > machine.availableBytes) {
    throw new ModelError(
      parts[0].onnx,
      `does not fit in the memory available now: ${files}, and ${formatBytes(machine.availableBytes)} of this machine's ${formatBytes(machine.totalBytes)} are available. Close other programs (or other models) and try again`,
    );
  }
  return need;
}
