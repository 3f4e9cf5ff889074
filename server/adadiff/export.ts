// Writes a trained policy into a model folder: adadiff/policy.onnx (the network as an ONNX graph,
// so inference needs only onnxruntime, which the extension loads anyway) and adadiff/policy.json
// (the manifest). The graph computes exactly policy-net.ts's forward, batched:
//
//   last_hidden_state [B, L, D] float32, attention_mask [B, L] float32 (1 real token, 0 padding)
//     -> logits [B, K] float32
//
// The TypeScript forward drops padded tokens; the graph keeps the fixed [B, L] layout and adds a
// -1e9 bias to padded keys before each softmax instead, which exp() turns into exact zeros in
// float32. Padded query rows of the self-attention are computed but never pooled.
//
// The manifest is written after the graph: policy.ts treats a folder with only one of the two
// as having no policy, so an interrupted export never leaves a half-valid policy behind.

import { mkdir, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { GraphBuilder, attr, tensor } from '../onnx';
import { POLICY_FIRST_STEP_ONNX, POLICY_IO, validatePolicyManifest, type PolicyManifest } from './policy-manifest';
import { attentionParamNames, extraDimOf, readsPrompt, type PolicyNet } from './policy-net';

export const POLICY_DIR = 'adadiff';
export const POLICY_ONNX = 'policy.onnx';
export const POLICY_JSON = 'policy.json';

/** Large enough that exp(bias - max) is 0 in float32 for any realistic score, small enough to stay finite. */
const MASK_BIAS = 1e9;

export function buildPolicyGraph(net: PolicyNet, metadata: Record<string, string> = {}): Uint8Array {
  const { outputs: k } = net.architecture;
  const g = new GraphBuilder('adadiff_policy');
  const f32 = (name: string, dims: number[], values: ArrayLike<number>) => g.initializer(name, tensor('float32', dims, values));
  const param = (name: string, scale = 1) => {
    const t = net.params[name];
    return f32(name, t.shape, scale === 1 ? t.data : t.data.map((v) => v * scale));
  };

  // Every graph takes the prompt's features, also one that does not read them (readsPrompt false),
  // so the runtime feeds all policies alike.
  const hidden = g.input(POLICY_IO.hidden, 'float32', ['batch', 'tokens', net.architecture.inputDim]);
  const mask = g.input(POLICY_IO.mask, 'float32', ['batch', 'tokens']);
  const parts: string[] = readsPrompt(net.architecture) ? [pooledPrompt(g, net, hidden, mask, f32, param)] : [];
  const e = extraDimOf(net.architecture);
  if (e > 0) {
    const extra = g.input(POLICY_IO.firstStep, 'float32', ['batch', e]);
    const n = net.extraNormalizer!;
    parts.push(g.op('Mul', [g.op('Sub', [extra, f32('first_step.mean', [e], n.mean)]), f32('first_step.scale', [e], n.scale)], {}, 'first_step.standardised'));
  }
  const head = parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: attr.int(1) }, 'head');
  const fc1 = g.op('Tanh', [g.op('Add', [g.op('MatMul', [head, param('mlp.fc1.weight')]), param('mlp.fc1.bias')])]);
  g.op('Add', [g.op('MatMul', [fc1, param('mlp.fc2.weight')]), param('mlp.fc2.bias')], {}, POLICY_IO.logits);
  g.output(POLICY_IO.logits, 'float32', ['batch', k]);
  return g.toBytes({
    opset: 17,
    docString: 'AdaDiff step policy: text-encoder token features -> logits over candidate step counts',
    metadata,
  });
}

/** The pooled prompt code [B, H]: standardise, project, self-attention layers, attention pooling. */
function pooledPrompt(
  g: GraphBuilder,
  net: PolicyNet,
  hidden: string,
  mask: string,
  f32: (name: string, dims: number[], values: ArrayLike<number>) => string,
  param: (name: string, scale?: number) => string,
): string {
  const { inputDim: d, hiddenDim: h } = net.architecture;
  const int64 = (values: number[]) => g.constant(tensor('int64', [values.length], values), 'axes');
  // (mask - 1) * 1e9: 0 for real tokens, -1e9 for padding; [B, L] and [B, 1, L] for key columns.
  const one = g.constant(tensor('float32', [], [1]), 'one');
  const big = g.constant(tensor('float32', [], [MASK_BIAS]), 'mask_bias');
  const tokenBias = g.op('Mul', [g.op('Sub', [mask, one]), big], {}, 'token_bias');
  const keyBias = g.op('Unsqueeze', [tokenBias, int64([1])], {}, 'key_bias');

  const mean = f32('input.mean', [d], net.normalizer.mean);
  const scale = f32('input.scale', [d], net.normalizer.scale);
  const x = g.op('Mul', [g.op('Sub', [hidden, mean]), scale], {}, 'standardised');
  let z = g.op('Add', [g.op('MatMul', [x, param('proj.weight')]), param('proj.bias')], {}, 'projected');

  // 1/sqrt(H) is folded into the query weights (computed in float64 before rounding to float32).
  const invSqrtH = 1 / Math.sqrt(h);
  for (let l = 0; l < net.architecture.attentionLayers; l++) {
    const names = attentionParamNames(l);
    const q = g.op('MatMul', [z, param(names.query, invSqrtH)]);
    const kT = g.op('Transpose', [g.op('MatMul', [z, param(names.key)])], { perm: attr.ints([0, 2, 1]) });
    const scores = g.op('Add', [g.op('MatMul', [q, kT]), keyBias]);
    const weights = g.op('Softmax', [scores], { axis: attr.int(-1) });
    const v = g.op('MatMul', [z, param(names.value)]);
    z = g.op('Add', [z, g.op('MatMul', [weights, v])], {}, `attn${l}.out`);
  }

  const poolQuery = f32('pool.query', [h, 1], net.params['pool.query'].data.map((v) => v * invSqrtH));
  const poolScores = g.op('Add', [g.op('Squeeze', [g.op('MatMul', [z, poolQuery]), int64([2])]), tokenBias]);
  const poolWeights = g.op('Unsqueeze', [g.op('Softmax', [poolScores], { axis: attr.int(-1) }), int64([1])]);
  return g.op('Squeeze', [g.op('MatMul', [poolWeights, z]), int64([1])], {}, 'pooled');
}

export interface ExportedPolicy {
  onnxPath: string;
  manifestPath: string;
}

/**
 * Writes adadiff/policy.onnx (and policy-first-step.onnx when `firstStepNet` is given), then
 * adadiff/policy.json, each atomically (temp file + rename).
 */
export async function exportPolicy(net: PolicyNet, manifest: PolicyManifest, modelDir: string, firstStepNet?: PolicyNet): Promise<ExportedPolicy> {
  if ((firstStepNet === undefined) !== (manifest.firstStep === undefined)) {
    throw new Error('export: a first-step network and its manifest section go together');
  }
  validatePolicyManifest(manifest);
  if (
    manifest.architecture.inputDim !== net.architecture.inputDim ||
    manifest.architecture.outputs !== net.architecture.outputs ||
    manifest.architecture.hiddenDim !== net.architecture.hiddenDim
  ) {
    throw new Error('export: the manifest describes a different network than the one given');
  }
  const dir = path.join(modelDir, POLICY_DIR);
  await mkdir(dir, { recursive: true });
  const onnxPath = path.join(dir, POLICY_ONNX);
  const manifestPath = path.join(dir, POLICY_JSON);
  const bytes = buildPolicyGraph(net, {
    'adadiff.candidates': manifest.candidates.join(','),
    'adadiff.baseline_steps': String(manifest.baselineSteps),
  });
  await writeAtomic(onnxPath, bytes);
  if (firstStepNet) await writeAtomic(path.join(dir, POLICY_FIRST_STEP_ONNX), buildPolicyGraph(firstStepNet, { 'adadiff.candidates': manifest.candidates.join(',') }));
  await writeAtomic(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  return { onnxPath, manifestPath };
}

async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}
