// The latents' geometry: the [C, h, w] a render of a given image size needs, and the limits a
// graph's fixed dims must meet before anything is allocated from them.
import { SIDE, SIZE_RULE } from '../limits';
import { ModelError } from './errors';

/** [C, h, w] for an image of width x height (one side given: a square), each side a multiple of `scale`. */
export function latentSides(channels: number, width: number | undefined, height: number | undefined, scale: number): [number, number, number] {
  const w = width ?? (height as number);
  const h = height ?? (width as number);
  checkImageSize(w, h, scale);
  return [channels, h / scale, w / scale];
}

/** Latent channels of any diffusers UNet (4 for SD, 16 for SD3, 7 for upscalers), with room to spare. */
const MAX_LATENT_CHANNELS = 256;

/**
 * A graph's fixed dims are what the latents get allocated from: dims that ask for terabytes must
 * be refused here, in words, not met with "Invalid typed array length" at the first render.
 */
export function checkSampleDims(file: string, channels: number, fixedSides: unknown[], scale: number): void {
  if (channels > MAX_LATENT_CHANNELS) throw new ModelError(file, `its sample input has ${channels} channels; no UNet has more than ${MAX_LATENT_CHANNELS} latent channels`);
  for (const side of fixedSides) {
    if (typeof side === 'number' && side * scale > SIDE.max) {
      throw new ModelError(file, `its sample input is fixed at ${fixedSides.join('x')} latents, images of ${side * scale} pixels a side: larger than the ${SIDE.max} a render can take (${SIZE_RULE})`);
    }
  }
}

export function checkImageSize(width: number, height: number, scale: number): void {
  for (const [name, value] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(value) || value <= 0 || value % scale !== 0) {
      throw new RangeError(`${name} must be a positive multiple of ${scale}, got ${value}`);
    }
  }
}

/** A graph's or config's dim when it is a positive number, else the fallback (symbolic dims are strings). */
export function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && value > 0 ? value : fallback;
}

export function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === 'number' && value > 0 ? value : undefined;
}
