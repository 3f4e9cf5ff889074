// Runtime step policy: loads adadiff/policy.onnx + policy.json from a model folder and predicts the
// step count for a prompt's text-encoder features (the argmax over the candidates, as the paper
// does at inference).
//
// A policy is present when both files are: export.ts writes the graph first and the manifest last,
// so a folder with one of them is an interrupted export and has no policy. Present but broken
// (bad JSON, a manifest this build cannot read, a graph that does not load or has the wrong
// interface) is an error that names the file, never a silent fall back to the baseline.

import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { LoadedModel } from '../model/contract';
import { POLICY_DIR, POLICY_JSON, POLICY_ONNX } from './export';
import { type FeatureSource, POLICY_FIRST_STEP_ONNX, POLICY_IO, validatePolicyManifest, type PolicyManifest } from './policy-manifest';
import type { TokenFeatures } from './policy-net';
import { FileError } from '../errors';

export interface PolicyOutput {
  steps: number;
  candidates: number[];
  probabilities: number[];
}

export interface StepPolicy {
  readonly manifest: PolicyManifest;
  /** hidden: [1, L, D] text-encoder features; mask: [L], 1 for real tokens, 0 for padding. */
  predict(hidden: Float32Array, dims: readonly [number, number, number] | readonly number[], mask: Float32Array): Promise<PolicyOutput>;
  /**
   * The first-step-aware choice from the first UNet call's summary (first-step.ts), fed the same
   * prompt features too, which networks trained since 2026-12-04 do not read (policy-net.ts,
   * readsPrompt). Absent when the folder has no policy-first-step.onnx.
   */
  refine?(hidden: Float32Array, dims: readonly [number, number, number] | readonly number[], mask: Float32Array, firstStep: Float32Array): Promise<PolicyOutput>;
  dispose(): Promise<void>;
}

export class PolicyError extends FileError {
  override readonly name = 'PolicyError';
  readonly kind = 'policy';
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}

async function openGraph(file: string, inputs: readonly string[]): Promise<ort.InferenceSession> {
  let session: ort.InferenceSession;
  try {
    // One thread: the policy is a few small matrices, and ONNX Runtime's default pool (a thread per
    // core, spinning after each call) kept spinning into the first UNet steps of the image the
    // prediction was for, which took 7-15 ms instead of 6 (bench torch, per-step times).
    session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], intraOpNumThreads: 1, logSeverityLevel: 3 });
  } catch (err) {
    throw new PolicyError(file, `does not load in onnxruntime (${(err as Error).message}); train the policy again`);
  }
  const missing = inputs.filter((n) => !session.inputNames.includes(n));
  if (missing.length > 0 || !session.outputNames.includes(POLICY_IO.logits)) {
    await session.release();
    throw new PolicyError(
      file,
      `has inputs [${session.inputNames.join(', ')}] and outputs [${session.outputNames.join(', ')}], ` +
        `expected inputs ${inputs.join(', ')} and output ${POLICY_IO.logits}`,
    );
  }
  return session;
}

/** The policy's manifest, checked; null when the folder has no policy (both files), PolicyError when it is broken. */
export async function readPolicyManifest(modelDir: string): Promise<PolicyManifest | null> {
  const onnxPath = path.join(modelDir, POLICY_DIR, POLICY_ONNX);
  const manifestPath = path.join(modelDir, POLICY_DIR, POLICY_JSON);
  if (!(await exists(onnxPath)) || !(await exists(manifestPath))) return null;
  try {
    return validatePolicyManifest(JSON.parse(await fs.readFile(manifestPath, 'utf8')));
  } catch (err) {
    throw new PolicyError(manifestPath, `${(err as Error).message}; train the policy again (adadiff train-policy)`);
  }
}

export async function loadPolicy(modelDir: string): Promise<StepPolicy | null> {
  const manifest = await readPolicyManifest(modelDir);
  if (!manifest) return null;
  const onnxPath = path.join(modelDir, POLICY_DIR, POLICY_ONNX);
  const session = await openGraph(onnxPath, [POLICY_IO.hidden, POLICY_IO.mask]);
  let refined: ort.InferenceSession | undefined;
  if (manifest.firstStep) {
    const file = path.join(modelDir, POLICY_DIR, POLICY_FIRST_STEP_ONNX);
    if (!(await exists(file))) {
      await session.release();
      throw new PolicyError(file, 'is missing although policy.json describes a first-step-aware policy; train the policy again');
    }
    refined = await openGraph(file, [POLICY_IO.hidden, POLICY_IO.mask, POLICY_IO.firstStep]).catch(async (err) => {
      await session.release();
      throw err;
    });
  }

  const { dim } = manifest.features;
  const feeds = (hidden: Float32Array, dims: readonly number[], mask: Float32Array): Record<string, ort.Tensor> => {
    const [batch, tokens, width] = dims;
    if (dims.length !== 3 || batch !== 1) throw new RangeError(`policy: expected features [1, L, D], got [${dims.join(', ')}]`);
    if (width !== dim) {
      throw new RangeError(`policy: the text encoder gives ${width}-wide features, the policy was trained on ${dim}; train it for this model`);
    }
    if (hidden.length !== tokens * width) throw new RangeError(`policy: ${hidden.length} feature values for [1, ${tokens}, ${width}]`);
    if (mask.length !== tokens) throw new RangeError(`policy: mask has ${mask.length} entries for ${tokens} tokens`);
    if (!mask.some((v) => v > 0.5)) throw new RangeError('policy: the mask marks no real token');
    return {
      [POLICY_IO.hidden]: new ort.Tensor('float32', hidden, [1, tokens, width]),
      [POLICY_IO.mask]: new ort.Tensor('float32', mask, [1, tokens]),
    };
  };
  const run = async (s: ort.InferenceSession, input: Record<string, ort.Tensor>) =>
    stepFromLogits(manifest.candidates, (await s.run(input))[POLICY_IO.logits].data as Float32Array);
  return {
    manifest,
    predict: async (hidden, dims, mask) => run(session, feeds(hidden, dims, mask)),
    ...(refined && manifest.firstStep
      ? {
          refine: async (hidden: Float32Array, dims: readonly number[], mask: Float32Array, firstStep: Float32Array) => {
            const e = manifest.firstStep!.features.length;
            if (firstStep.length !== e) throw new RangeError(`policy: the first step gives ${firstStep.length} features, the policy reads ${e}`);
            return run(refined!, { ...feeds(hidden, dims, mask), [POLICY_IO.firstStep]: new ort.Tensor('float32', firstStep, [1, e]) });
          },
        }
      : {}),
    dispose: async () => {
      await session.release();
      await refined?.release();
    },
  };
}

/** Softmax probabilities and the argmax candidate. */
export function stepFromLogits(candidates: readonly number[], logits: ArrayLike<number>): PolicyOutput {
  if (logits.length !== candidates.length) {
    throw new Error(`policy: ${logits.length} logits for ${candidates.length} candidates`);
  }
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  const probabilities = exps.map((e) => e / sum);
  let best = 0;
  for (let i = 1; i < probabilities.length; i++) if (probabilities[i] > probabilities[best]) best = i;
  return { steps: candidates[best], candidates: [...candidates], probabilities };
}

/**
 * A prompt's features as the policy reads them, at training and at inference alike: exactly the
 * token features the UNet's cross-attention reads (TextEncoding: SD 1.x/2.x the text encoder's
 * last_hidden_state; SDXL both encoders' penultimate hidden states side by side, 768 + 1280 =
 * 2048 wide, not the pooled text_embeds, which carry no per-token structure for the attention
 * layers), and a mask of the real tokens (BOS, the prompt, EOS) from the first tokenizer; both
 * SDXL tokenizers split a prompt alike and differ only in padding. Keeping this in one place
 * keeps training and inference from drifting apart.
 */
/** Where promptFeatures' features come from for this model, as policy.json records it. */
export function featureSource(model: LoadedModel): FeatureSource {
  return model.layout.kind === 'sdxl' ? 'text_encoder+text_encoder_2.hidden_states[-2]' : 'text_encoder.last_hidden_state';
}

export async function promptFeatures(
  model: Pick<LoadedModel, 'tokenizer' | 'encodeText'>,
  prompt: string,
): Promise<TokenFeatures & { hidden: Float32Array; mask: Float32Array; droppedTokens: number }> {
  const encoded = model.tokenizer.encode(prompt);
  const text = await model.encodeText([prompt]);
  const [, tokens, dim] = text.dims;
  const mask = new Float32Array(tokens).map((_, i) => (i < encoded.tokens ? 1 : 0));
  return { hidden: text.hidden, tokens, dim, mask, droppedTokens: encoded.dropped };
}
