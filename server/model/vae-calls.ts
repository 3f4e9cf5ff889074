// The VAE sessions bound to the roles the pipeline calls them by: decode latents to an image, and
// (img2img's way in) encode an image to latents, with the model's scaling factor applied here.
import type * as ort from 'onnxruntime-node';
import type { LoadedModel, ModelFolder } from './contract';
import { checkLength, floatTensor, toFloat32 } from './feeds';
import { findSlot, rejectUnknownInputs, type SlotRole } from './inputs';
import type { PartSession } from './session';

const FLOATS: ort.Tensor.Type[] = ['float32', 'float16'];

const ROLES = {
  latents: { what: 'the latents', names: ['latent_sample', 'latents', 'latent', 'z', 'sample'], ranks: [4], types: FLOATS },
  image: { what: 'the image', names: ['sample', 'image', 'images', 'pixel_values'], ranks: [4], types: FLOATS, anyName: true },
  latentOut: { what: 'the latents', names: ['latent_sample', 'latent_parameters', 'latent_dist', 'latents'], ranks: [4], types: FLOATS, anyName: true },
} satisfies Record<string, SlotRole>;

export function bindVae(decoder: PartSession, encoder: PartSession | undefined, folder: ModelFolder, channels: number): Pick<LoadedModel, 'decode' | 'encodeImage'> {
  const latentSlot = findSlot(decoder.file, decoder.inputs, ROLES.latents, 'input');
  rejectUnknownInputs(decoder.file, decoder.inputs, [latentSlot], 'a VAE decoder takes the latents only');
  const imageOut = findSlot(decoder.file, decoder.outputs, ROLES.image, 'output');
  const encoderSlots = encoder && {
    image: findSlot(encoder.file, encoder.inputs, ROLES.image, 'input'),
    latents: findSlot(encoder.file, encoder.outputs, ROLES.latentOut, 'output'),
  };

  const decode: LoadedModel['decode'] = async (latents, dims) => {
    checkLength('decode latents', latents, dims);
    const scaled = new Float32Array(latents.length);
    const inverse = 1 / folder.vaeDecoder.scalingFactor;
    for (let i = 0; i < latents.length; i++) scaled[i] = latents[i] * inverse;
    const out = await decoder.session.run({ [latentSlot.name]: floatTensor(latentSlot.type, scaled, dims) }, [imageOut.name]);
    const image = out[imageOut.name];
    const [b, c, h, w] = image.dims;
    return { data: toFloat32(image), dims: [b, c, h, w] };
  };
  if (!encoder || !encoderSlots) return { decode };

  const encodeImage: NonNullable<LoadedModel['encodeImage']> = async (image, dims) => {
    checkLength('encodeImage image', image, dims);
    const out = await encoder.session.run({ [encoderSlots.image.name]: floatTensor(encoderSlots.image.type, image, dims) }, [encoderSlots.latents.name]);
    const tensor = out[encoderSlots.latents.name];
    const [b, c, h, w] = tensor.dims;
    const values = toFloat32(tensor);
    // optimum exports the distribution's parameters (mean, log-variance) as 2C channels;
    // the mean is the deterministic encoding. diffusers' script exports a C-channel sample.
    const keep = c === 2 * channels ? channels : c;
    const plane = h * w;
    const data = new Float32Array(b * keep * plane);
    for (let n = 0; n < b; n++) {
      for (let i = 0; i < keep * plane; i++) data[n * keep * plane + i] = values[n * c * plane + i] * folder.vaeDecoder.scalingFactor;
    }
    return { data, dims: [b, keep, h, w] as [number, number, number, number] };
  };
  return { decode, encodeImage };
}
