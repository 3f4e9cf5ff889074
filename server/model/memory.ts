// Will these graphs fit in this machine's memory? Checked before onnxruntime reads a byte of them:
// a model too big for the machine must end in a clear error that names the sizes, not in the
// kernel's out-of-memory killer taking the language server (and the editor's work) with it.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
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
/** A fixed allowance for the runtime's own buffers and the first call's activations. */
export const MEMORY_SLACK_BYTES = 256 * 1024 * 1024;

export interface MemoryNeed {
  /** The ONNX files and their external data, in bytes. */
  fileBytes: number;
  /** fileBytes x MEMORY_MARGIN + MEMORY_SLACK_BYTES. */
  neededBytes: number;
}

/** What the machine has: os.totalmem(), and os.freemem() (MemAvailable on Linux: free pages plus the page cache it can drop). */
export interface MachineMemory {
  totalBytes: number;
  availableBytes: number;
}

export const machineMemory = (): MachineMemory => ({ totalBytes: os.totalmem(), availableBytes: os.freemem() });

export async function memoryNeed(parts: readonly ModelPart[]): Promise<MemoryNeed> {
  let fileBytes = 0;
  for (const part of parts) {
    for (const file of [part.onnx, ...part.externalData]) fileBytes += (await fs.stat(file)).size;
  }
  return { fileBytes, neededBytes: Math.ceil(fileBytes * MEMORY_MARGIN) + MEMORY_SLACK_BYTES };
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
): Promise<MemoryNeed> {
  const need = await memoryNeed(parts);
  const files = `${what} ${parts.length === 1 ? 'is' : 'are'} ${formatBytes(need.fileBytes)} on disk, about ${formatBytes(need.neededBytes)} in memory once loaded`;
  if (need.neededBytes > machine.totalBytes) {
    throw new ModelError(parts[0].onnx, `is too large for this machine: ${files}, and it has ${formatBytes(machine.totalBytes)} in all. Use a smaller or fp16 export, or a machine with more memory`);
  }
  if (need.neededBytes > machine.availableBytes) {
    throw new ModelError(
      parts[0].onnx,
      `does not fit in the memory available now: ${files}, and ${formatBytes(machine.availableBytes)} of this machine's ${formatBytes(machine.totalBytes)} are available. Close other programs (or other models) and try again`,
    );
  }
  return need;
}
