// The UNet inputs beyond sample, timestep and encoder_hidden_states, found in the graph's own
// inputs and filled the way diffusers' pipelines fill them:
//   text_embeds    SDXL: the second text encoder's pooled, projected features, one row per batch row.
//   time_ids       SDXL: (original height, width, crop top, left, target height, width); the
//                  pipeline's defaults are the image size and no crop, for the unconditional row too.
//   timestep_cond  LCM: the guidance scale w as a sinusoidal embedding of (w - 1) * 1000, as in
//                  LatentConsistencyModelPipeline.get_guidance_scale_embedding.

import type * as ort from 'onnxruntime-node';
import type { ModelFolder, TextEncoding } from './contract';
import { ModelError } from './errors';
import { floatTensor } from './feeds';
import { findOptionalSlot, type SlotRole, type TensorSlot } from './inputs';

const FLOATS: ort.Tensor.Type[] = ['float32', 'float16'];

const ROLES = {
  textEmbeds: { what: "SDXL's pooled text_embeds", names: ['text_embeds'], ranks: [2], types: FLOATS },
  timeIds: { what: "SDXL's time_ids", names: ['time_ids'], ranks: [2], types: FLOATS },
  timestepCond: { what: "LCM's guidance embedding", names: ['timestep_cond'], ranks: [2], types: FLOATS },
} satisfies Record<string, SlotRole>;

/** SDXL base's six: original size, crop top-left, target size. The refiner's five add an aesthetic score. */
const TIME_IDS = 6;

export interface UnetConditioning {
  /** The extra slots the graph has, for rejectUnknownInputs. */
  readonly slots: readonly TensorSlot[];
  /** Feeds for one call: `batch` rows of an image `width` x `height` pixels. */
  feeds(args: { batch: number; width: number; height: number; text: TextEncoding; guidance?: number }): Record<string, ort.Tensor>;
}

export function unetConditioning(file: string, inputs: readonly TensorSlot[], folder: ModelFolder): UnetConditioning {
  const textEmbeds = findOptionalSlot(file, inputs, ROLES.textEmbeds, 'input');
  const timeIds = findOptionalSlot(file, inputs, ROLES.timeIds, 'input');
  const timestepCond = findOptionalSlot(file, inputs, ROLES.timestepCond, 'input');
  if (!!textEmbeds !== !!timeIds) {
    throw new ModelError(file, `takes ${textEmbeds ? 'text_embeds' : 'time_ids'} without ${textEmbeds ? 'time_ids' : 'text_embeds'}; an SDXL UNet takes both`);
  }
  if (textEmbeds && !folder.second) {
    throw new ModelError(file, "takes SDXL's text_embeds and time_ids, but the folder has no tokenizer_2/ and text_encoder_2/ to make them");
  }
  const timeIdCount = timeIds?.shape[1];
  if (typeof timeIdCount === 'number' && timeIdCount !== TIME_IDS) {
    throw new ModelError(
      file,
      `takes ${timeIdCount} time_ids; only SDXL base's ${TIME_IDS} (original size, crop, target size) are supported` +
        (timeIdCount === 5 ? ' (5 is the SDXL refiner, whose aesthetic-score conditioning this pipeline does not feed)' : ''),
    );
  }
  const embeddingDim = timestepCond ? fixedDim(timestepCond.shape[1]) ?? folder.unet.timeCondProjDim : undefined;
  if (timestepCond && embeddingDim === undefined) {
    throw new ModelError(file, 'takes timestep_cond of a width neither the graph nor unet/config.json (time_cond_proj_dim) gives');
  }
  const pooledDim = textEmbeds ? fixedDim(textEmbeds.shape[1]) : undefined;

  return {
    slots: [textEmbeds, timeIds, timestepCond].filter((s): s is TensorSlot => !!s),
    feeds({ batch, width, height, text, guidance }) {
      const feeds: Record<string, ort.Tensor> = {};
      if (textEmbeds && timeIds) {
        if (!text.pooled || text.dims[0] !== batch) {
          throw new RangeError(`unet: SDXL needs the pooled text_embeds of ${batch} prompt rows, got ${text.pooled ? text.dims[0] : 'none'}`);
        }
        const dim = text.pooled.length / batch;
        if (pooledDim !== undefined && dim !== pooledDim) throw new RangeError(`unet: text_embeds are ${dim} wide, the UNet takes ${pooledDim}`);
        feeds[textEmbeds.name] = floatTensor(textEmbeds.type, text.pooled, [batch, dim]);
        const ids = new Float32Array(batch * TIME_IDS);
        for (let row = 0; row < batch; row++) ids.set(sdxlTimeIds(width, height), row * TIME_IDS);
        feeds[timeIds.name] = floatTensor(timeIds.type, ids, [batch, TIME_IDS]);
      }
      if (timestepCond && embeddingDim !== undefined) {
        if (guidance === undefined) throw new RangeError('unet: an LCM UNet (timestep_cond) needs the guidance scale');
        const row = guidanceEmbedding(guidance - 1, embeddingDim);
        const data = new Float32Array(batch * embeddingDim);
        for (let r = 0; r < batch; r++) data.set(row, r * embeddingDim);
        feeds[timestepCond.name] = floatTensor(timestepCond.type, data, [batch, embeddingDim]);
      }
      return feeds;
    },
  };
}

/** diffusers' default add_time_ids: original_size = target_size = (height, width), crops_coords_top_left = (0, 0). */
export function sdxlTimeIds(width: number, height: number): number[] {
  return [height, width, 0, 0, height, width];
}

/**
 * The guidance embedding of w (LCM passes w = guidance_scale - 1): w * 1000 times frequencies
 * exp(-ln(10000) * i / (half - 1)), sines then cosines, zero-padded to an odd width.
 */
export function guidanceEmbedding(w: number, dim: number): Float32Array {
  const half = Math.floor(dim / 2);
  if (half < 2) throw new RangeError(`a guidance embedding needs a width of at least 4, got ${dim}`);
  const out = new Float32Array(dim);
  const scale = Math.log(10000) / (half - 1);
  for (let i = 0; i < half; i++) {
    // Rounded to float32 where torch's float32 arithmetic rounds.
    const arg = Math.fround(Math.fround(w * 1000) * Math.fround(Math.exp(-i * scale)));
    out[i] = Math.sin(arg);
    out[half + i] = Math.cos(arg);
  }
  return out;
}

function fixedDim(d: number | string | undefined): number | undefined {
  return typeof d === 'number' && d > 0 ? d : undefined;
}
