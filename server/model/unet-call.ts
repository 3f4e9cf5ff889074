// A UNet session bound to the roles the denoising loop calls it by: whatever an exporter named its
// inputs, and whichever dtypes and ranks it chose, the loop calls `call(sample, dims, t, text)`.
import type * as ort from 'onnxruntime-node';
import type { LoadedModel, ModelFolder } from './contract';
import { ModelError } from './errors';
import { checkLength, floatTensor, intTensor, toFloat32 } from './feeds';
import { findSlot, rejectUnknownInputs, type SlotRole } from './inputs';
import { checkSampleDims, latentSides, numberOr, numberOrUndefined } from './latent-geometry';
import type { PartSession } from './session';
import { unetConditioning } from './unet-conditioning';

const FLOATS: ort.Tensor.Type[] = ['float32', 'float16'];

const ROLES = {
  sample: { what: 'the noisy latents', names: ['sample', 'latent_sample', 'latents', 'noisy_latents', 'latent_model_input'], ranks: [4], types: FLOATS },
  timestep: { what: 'the timestep', names: ['timestep', 'timesteps', 't'], ranks: [0, 1], types: ['float32', 'float16', 'int64', 'int32'] },
  hidden: { what: 'the text features', names: ['encoder_hidden_states', 'text_embeddings', 'context', 'hidden_states'], ranks: [3], types: FLOATS },
  unetOut: { what: 'the noise prediction', names: ['out_sample', 'sample', 'noise_pred'], ranks: [4], types: FLOATS, anyName: true },
} satisfies Record<string, SlotRole>;

export interface BoundUnet {
  /** Latent channels, from the graph's sample input (else the configs). */
  channels: number;
  /** Width of the text features the graph declares, when it fixes it. */
  hiddenDim?: number;
  latentShape: LoadedModel['latentShape'];
  call: LoadedModel['unet'];
  batch: LoadedModel['unetBatch'];
}

/** `fixedBatch`: the batch dim the load options fixed (LoadOptions.shape), if they did. */
export function bindUnet(unet: PartSession, folder: ModelFolder, fixedBatch?: number): BoundUnet {
  const scale = folder.vaeDecoder.scaleFactor;
  const sampleSlot = findSlot(unet.file, unet.inputs, ROLES.sample, 'input');
  const timestepSlot = findSlot(unet.file, unet.inputs, ROLES.timestep, 'input');
  const hiddenSlot = findSlot(unet.file, unet.inputs, ROLES.hidden, 'input');
  const conditioning = unetConditioning(unet.file, unet.inputs, folder);
  rejectUnknownInputs(
    unet.file,
    unet.inputs,
    [sampleSlot, timestepSlot, hiddenSlot, ...conditioning.slots],
    'supported are SD 1.x/2.x UNets (sample, timestep, encoder_hidden_states), SDXL (+ text_embeds, time_ids) and LCM (+ timestep_cond)',
  );
  const unetOut = findSlot(unet.file, unet.outputs, ROLES.unetOut, 'output');

  const channels = numberOr(sampleSlot.shape[1], folder.unet.inChannels ?? folder.vaeDecoder.latentChannels ?? 4);
  const fixedH = sampleSlot.shape[2];
  const fixedW = sampleSlot.shape[3];
  checkSampleDims(unet.file, channels, [fixedH, fixedW], scale);
  const defaultSide = folder.unet.sampleSize ?? numberOr(fixedH, 64);
  const maxRows = numberOrUndefined(sampleSlot.shape[0]) ?? fixedBatch;
  const freeTimestepRows = timestepSlot.shape.length === 1 && numberOrUndefined(timestepSlot.shape[0]) === undefined;

  return {
    channels,
    hiddenDim: numberOrUndefined(hiddenSlot.shape[2]),
    batch: { ...(maxRows !== undefined ? { maxRows } : {}), rowTimesteps: freeTimestepRows },

    latentShape(width?: number, height?: number): [number, number, number] {
      if (width === undefined && height === undefined) return [channels, defaultSide, defaultSide];
      const [, lh, lw] = latentSides(channels, width, height, scale);
      if ((typeof fixedH === 'number' && fixedH !== lh) || (typeof fixedW === 'number' && fixedW !== lw)) {
        throw new ModelError(unet.file, `takes only ${fixedW}x${fixedH} latents (${numberOr(fixedW, lw) * scale}x${numberOr(fixedH, lh) * scale} images), not ${lw * scale}x${lh * scale}`);
      }
      return [channels, lh, lw];
    },

    async call(sample, dims, timestep, text, guidance) {
      checkLength('unet sample', sample, dims);
      checkLength('unet text features', text.hidden, text.dims);
      const batch = dims[0];
      // Rank 1 timesteps hold one value per batch row unless the export fixed the dim (to 1).
      const tDims = timestepSlot.shape.length === 0 ? [] : [numberOr(timestepSlot.shape[0], batch)];
      let tValues: number[];
      if (typeof timestep === 'number') tValues = new Array<number>(tDims.length === 0 ? 1 : tDims[0]).fill(timestep);
      else if (freeTimestepRows && timestep.length === batch) tValues = [...timestep];
      else throw new RangeError(`unet: ${timestep.length} timesteps for ${batch} rows, and this export takes ${freeTimestepRows ? 'one per row' : 'one for the whole batch'}`);
      const tTensor =
        timestepSlot.type === 'int64' || timestepSlot.type === 'int32' ? intTensor(timestepSlot.type, tValues, tDims) : floatTensor(timestepSlot.type, Float32Array.from(tValues), tDims);
      const out = await unet.session.run(
        {
          [sampleSlot.name]: floatTensor(sampleSlot.type, sample, dims),
          [timestepSlot.name]: tTensor,
          [hiddenSlot.name]: floatTensor(hiddenSlot.type, text.hidden, text.dims),
          ...conditioning.feeds({ batch, width: dims[3] * scale, height: dims[2] * scale, text, guidance }),
        },
        [unetOut.name],
      );
      return toFloat32(out[unetOut.name]);
    },
  };
}
