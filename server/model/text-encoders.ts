// The prompt side of a model: one tokenizer + CLIP text encoder (SD 1.x/2.x), or two (SDXL), and
// the one rule of which outputs the UNet is conditioned on (see TextEncoding in contract.ts):
//   one encoder:  last_hidden_state, and pooler_output when the graph has it;
//   two encoders: each encoder's hidden_states[-2] (the penultimate layer, before the final layer
//                 norm), concatenated along the feature axis in folder order, and the second
//                 encoder's projected text_embeds as the pooled features, as diffusers'
//                 StableDiffusionXLPipeline.encode_prompt builds them. optimum exports the hidden
//                 states of an SDXL pipeline's encoders as outputs hidden_states.0 ... hidden_states.N.

import type * as ort from 'onnxruntime-node';
import type { PromptTokenizer, TextEncoderPart, TextEncoding } from './contract';
import { ModelError } from './errors';
import { intTensor, toFloat32 } from './feeds';
import { findOptionalSlot, findSlot, rejectUnknownInputs, type SlotRole, type TensorSlot } from './inputs';
import type { PartSession } from './session';
import { loadTokenizer } from './tokenizer';

const FLOATS: ort.Tensor.Type[] = ['float32', 'float16'];

const ROLES = {
  inputIds: { what: 'the prompt token ids', names: ['input_ids', 'ids', 'tokens', 'text_input_ids'], ranks: [2], types: ['int32', 'int64'] },
  attentionMask: { what: 'the attention mask', names: ['attention_mask'], ranks: [2], types: ['int32', 'int64'] },
  hiddenOut: { what: 'the token features', names: ['last_hidden_state', 'hidden_states', 'text_embeddings'], ranks: [3], types: FLOATS, anyName: true },
  pooledOut: { what: 'the pooled features', names: ['pooler_output', 'text_embeds', 'pooled_output'], ranks: [2], types: FLOATS, anyName: true },
  textEmbedsOut: { what: "SDXL's pooled text_embeds", names: ['text_embeds'], ranks: [2], types: FLOATS },
} satisfies Record<string, SlotRole>;

const HIDDEN_STATE = /^hidden_states\.(\d+)$/;

interface Encoder {
  readonly tokenizer: PromptTokenizer;
  readonly part: PartSession;
  readonly ids: TensorSlot;
  readonly mask?: TensorSlot;
  readonly features: TensorSlot;
  readonly pooled?: TensorSlot;
}

export interface TextEncoders {
  /** The first encoder's tokenizer: what token counts, dropped tokens and the policy's mask come from. */
  readonly tokenizer: PromptTokenizer;
  /** The feature width when every graph declares it (the sum of both for SDXL). */
  readonly declaredDim?: number;
  readonly parts: readonly PartSession[];
  encode(prompts: readonly string[]): Promise<TextEncoding>;
}

/** A part opened with its sequence dim fixed to `sequence` (when the caller fixes shapes). */
export type OpenPart = (part: TextEncoderPart, sequence?: number) => Promise<PartSession>;

export async function openTextEncoders(
  encoders: readonly { tokenizerDir: string; part: TextEncoderPart }[],
  open: OpenPart,
  fixShapes: boolean,
): Promise<TextEncoders> {
  const dual = encoders.length === 2;
  const opened: Encoder[] = [];
  for (const [i, { tokenizerDir, part: config }] of encoders.entries()) {
    // Tokenizer first: the sequence length it pads to is what the encoder's dims get fixed to.
    let tokenizer = await loadTokenizer(tokenizerDir, { maxLength: config.maxPositions });
    const part = await open(config, fixShapes ? tokenizer.maxLength : undefined);
    const ids = findSlot(part.file, part.inputs, ROLES.inputIds, 'input');
    const mask = findOptionalSlot(part.file, part.inputs, ROLES.attentionMask, 'input');
    rejectUnknownInputs(part.file, part.inputs, [ids, mask], 'a CLIP text encoder takes input_ids only');
    const fixedLength = ids.shape[1];
    if (typeof fixedLength === 'number' && fixedLength < tokenizer.maxLength) tokenizer = await loadTokenizer(tokenizerDir, { maxLength: fixedLength });
    const features = dual ? penultimate(part) : findSlot(part.file, part.outputs, ROLES.hiddenOut, 'output');
    const pooled = dual
      ? i === 1
        ? findSlot(part.file, part.outputs, ROLES.textEmbedsOut, 'output')
        : undefined
      : findOptionalSlot(part.file, part.outputs, ROLES.pooledOut, 'output');
    opened.push({ tokenizer, part, ids, mask, features, pooled });
  }
  const widths = opened.map((e) => e.features.shape[2]);
  const declaredDim = widths.every((w) => typeof w === 'number' && w > 0) ? (widths as number[]).reduce((a, b) => a + b, 0) : undefined;

  return {
    tokenizer: opened[0].tokenizer,
    declaredDim,
    parts: opened.map((e) => e.part),
    async encode(prompts) {
      if (prompts.length === 0) throw new RangeError('encodeText needs at least one prompt');
      const outs = [];
      for (const encoder of opened) outs.push(await run(encoder, prompts));
      const pooled = opened.findIndex((e) => e.pooled);
      return { ...concatFeatures(outs.map((o) => o.features)), ...(pooled >= 0 ? { pooled: outs[pooled].pooled } : {}) };
    },
  };
}

/** hidden_states[-2] of an encoder that exports its hidden states (optimum: hidden_states.0 ... hidden_states.N). */
function penultimate(part: PartSession): TensorSlot {
  const layers = part.outputs
    .map((slot) => ({ slot, index: Number(HIDDEN_STATE.exec(slot.name)?.[1] ?? NaN) }))
    .filter((o) => Number.isInteger(o.index));
  const last = Math.max(-1, ...layers.map((o) => o.index));
  const slot = layers.find((o) => o.index === last - 1)?.slot;
  if (!slot || last < 1) {
    throw new ModelError(
      part.file,
      `has no hidden_states.N outputs (found ${part.outputs.map((s) => s.name).join(', ')}); an SDXL text encoder is read at its penultimate layer, ` +
        'which optimum-cli export onnx writes as hidden_states.0 ... hidden_states.N: export the model again with it',
    );
  }
  if (slot.shape.length !== 3 || !FLOATS.includes(slot.type)) {
    throw new ModelError(part.file, `output ${slot.name} is ${slot.type} [${slot.shape.join(', ')}]; expected float [batch, sequence, width]`);
  }
  return slot;
}

async function run(encoder: Encoder, prompts: readonly string[]): Promise<{ features: ort.Tensor; pooled?: Float32Array }> {
  const ids = prompts.map((p) => encoder.tokenizer.encode(p).ids);
  const length = ids[0].length;
  const dims = [ids.length, length];
  const feeds: Record<string, ort.Tensor> = { [encoder.ids.name]: intTensor(encoder.ids.type, ids.flat(), dims) };
  // CLIP in Stable Diffusion attends to padding too: an all-ones mask reproduces that.
  if (encoder.mask) feeds[encoder.mask.name] = intTensor(encoder.mask.type, new Array<number>(ids.length * length).fill(1), dims);
  const fetches = encoder.pooled ? [encoder.features.name, encoder.pooled.name] : [encoder.features.name];
  const out = await encoder.part.session.run(feeds, fetches);
  const pooled = encoder.pooled ? toFloat32(out[encoder.pooled.name]) : undefined;
  return { features: out[encoder.features.name], ...(pooled ? { pooled } : {}) };
}

/** [B, L, D1] and [B, L, D2] -> [B, L, D1 + D2], row by row (torch.concat(..., dim=-1)). */
function concatFeatures(parts: readonly ort.Tensor[]): { hidden: Float32Array; dims: [number, number, number] } {
  const [b, l] = parts[0].dims;
  if (parts.length === 1) return { hidden: toFloat32(parts[0]), dims: [b, l, parts[0].dims[2]] };
  if (parts.some((p) => p.dims[0] !== b || p.dims[1] !== l)) {
    throw new Error(`the text encoders disagree on batch and length: ${parts.map((p) => `[${p.dims.join(', ')}]`).join(' and ')}`);
  }
  const widths = parts.map((p) => p.dims[2]);
  const total = widths.reduce((a, c) => a + c, 0);
  const values = parts.map(toFloat32);
  const hidden = new Float32Array(b * l * total);
  for (let row = 0; row < b * l; row++) {
    let at = row * total;
    for (const [i, w] of widths.entries()) {
      hidden.set(values[i].subarray(row * w, (row + 1) * w), at);
      at += w;
    }
  }
  return { hidden, dims: [b, l, total] };
}
