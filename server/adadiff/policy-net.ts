// The AdaDiff step policy network: text-encoder token features [L, D] -> logits over K candidate
// step counts. The paper uses three self-attention layers and an MLP; ours is the small version of
// the same shape, which a reward table of a few hundred prompts can train without overfitting:
//
//   x      = (features - mean) * scale                 fixed per-feature standardisation, fitted on
//                                                        the training prompts (CLIP features have a
//                                                        few huge dimensions that would dominate)
//   z      = x Wp + bp                                  [n, H] projection
//   z      = z + softmax(z Wq (z Wk)^T / sqrt(H)) z Wv  single-head self-attention, residual,
//                                                        `attentionLayers` times (default 0, see
//                                                        DEFAULT_ARCHITECTURE)
//   p      = softmax(z q / sqrt(H))^T z                 attention pooling with a learned query
//   logits = tanh(p W1 + b1) W2 + b2                    2-layer MLP
//
// Only real tokens take part (the padding mask drops the rest before anything is computed), so the
// output does not depend on how far a prompt is padded. Forward and backward are written by hand
// in Float64Array; training happens in TypeScript and needs no autograd library. The same graph is
// exported to ONNX by export.ts, where padding is masked with a large negative bias instead.

import { createRng } from './random';

export interface PolicyArchitecture {
  /** Text-encoder feature width D. */
  inputDim: number;
  /** Width H of the projected token features. */
  hiddenDim: number;
  /** Residual single-head self-attention layers before pooling. */
  attentionLayers: number;
  /** Width of the MLP's hidden layer. */
  mlpDim: number;
  /** Number of candidate step counts K. */
  outputs: number;
  /**
   * Width E of a per-image feature vector joined to the pooled prompt code before the MLP (the
   * first-step-aware policy's summary of the first UNet call); 0 or absent for prompt-only.
   */
  extraDim?: number;
  /**
   * Whether the MLP reads the pooled prompt code; absent means true. The first-step-aware network
   * reads only the first UNet call's summary: that call has already read the prompt, through the
   * model's own cross-attention, and a second path from the text features let the network learn the
   * training prompts' phrasing instead. On the bundled model's hand-written held-out prompts its
   * choices ranked like the prompt oracle at Spearman 0.51 with the prompt code and 0.71 without
   * (models/default/README.md, *Step policy*).
   */
  readsPrompt?: boolean;
}

/**
 * Default size: no self-attention layer, which made every prompt's pooled code alike in
 * cross-validation (models/default/README.md, *Step policy*); `attentionLayers` stays a setting.
 */
export const DEFAULT_ARCHITECTURE = { hiddenDim: 32, attentionLayers: 0, mlpDim: 32 } as const;

export interface Tensor {
  shape: number[];
  data: Float64Array;
}

/** Trainable tensors by name; the names are stable and used by export and serialisation. */
export type PolicyParams = Record<string, Tensor>;

export interface Normalizer {
  mean: Float64Array;
  scale: Float64Array;
}

export interface PolicyNet {
  architecture: PolicyArchitecture;
  /** Fixed standardisation of the input features (not trained): x = (f - mean) * scale. */
  normalizer: Normalizer;
  /** The same for the per-image features (architecture.extraDim entries). */
  extraNormalizer?: Normalizer;
  params: PolicyParams;
}

/** One prompt's text-encoder output: `hidden` is [tokens, dim] row-major; mask 1 = real, 0 = padding. */
export interface TokenFeatures {
  hidden: Float32Array | Float64Array;
  tokens: number;
  dim: number;
  mask: ArrayLike<number>;
  /** Per-image features (architecture.extraDim of them), for the first-step-aware policy. */
  extra?: ArrayLike<number>;
}

export const extraDimOf = (arch: PolicyArchitecture): number => arch.extraDim ?? 0;
export const readsPrompt = (arch: PolicyArchitecture): boolean => arch.readsPrompt !== false;

export const attentionParamNames = (layer: number) =>
  ({ query: `attn${layer}.query`, key: `attn${layer}.key`, value: `attn${layer}.value` }) as const;

/** Parameter names in a fixed order (for logs, serialisation and the gradient test). */
export function parameterNames(arch: PolicyArchitecture): string[] {
  const names: string[] = [];
  if (readsPrompt(arch)) {
    names.push('proj.weight', 'proj.bias');
    for (let l = 0; l < arch.attentionLayers; l++) names.push(...Object.values(attentionParamNames(l)));
    names.push('pool.query');
  }
  names.push('mlp.fc1.weight', 'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias');
  return names;
}

function parameterShapes(arch: PolicyArchitecture): Record<string, number[]> {
  const { inputDim: d, hiddenDim: h, mlpDim: m, outputs: k } = arch;
  // The order is the initialisation order (createPolicyNet draws from one generator), so a policy
  // retrained with the same seed comes out the same.
  const prompt = readsPrompt(arch);
  const shapes: Record<string, number[]> = {
    ...(prompt ? { 'proj.weight': [d, h], 'proj.bias': [h], 'pool.query': [h] } : {}),
    'mlp.fc1.weight': [(prompt ? h : 0) + extraDimOf(arch), m],
    'mlp.fc1.bias': [m],
    'mlp.fc2.weight': [m, k],
    'mlp.fc2.bias': [k],
  };
  for (let l = 0; prompt && l < arch.attentionLayers; l++) {
    for (const name of Object.values(attentionParamNames(l))) shapes[name] = [h, h];
  }
  return shapes;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function validateArchitecture(arch: PolicyArchitecture): void {
  for (const key of ['inputDim', 'hiddenDim', 'mlpDim', 'outputs'] as const) {
    if (!Number.isInteger(arch[key]) || arch[key] < 1) throw new Error(`policy: ${key} must be a positive integer`);
  }
  if (!Number.isInteger(arch.attentionLayers) || arch.attentionLayers < 0) {
    throw new Error('policy: attentionLayers must be a non-negative integer');
  }
  if (!Number.isInteger(extraDimOf(arch)) || extraDimOf(arch) < 0) throw new Error('policy: extraDim must be a non-negative integer');
  if (arch.readsPrompt !== undefined && typeof arch.readsPrompt !== 'boolean') throw new Error('policy: readsPrompt must be true or false');
  if (!readsPrompt(arch) && extraDimOf(arch) === 0) throw new Error('policy: a network that reads no prompt needs per-image features (extraDim)');
}

/**
 * A freshly initialised network: weights ~ N(0, 1/fan_in), biases and the pooling query zero (so
 * pooling starts as a plain mean over tokens), and a near-zero output layer so the initial policy
 * is close to uniform over the candidates, the usual start for policy gradient.
 */
export function createPolicyNet(arch: PolicyArchitecture, seed = 0): PolicyNet {
  validateArchitecture(arch);
  const rng = createRng(seed);
  const params: PolicyParams = {};
  for (const [name, shape] of Object.entries(parameterShapes(arch))) {
    const data = new Float64Array(size(shape));
    if (shape.length === 2 && name !== 'mlp.fc2.weight') {
      const std = 1 / Math.sqrt(shape[0]);
      for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
    } else if (name === 'mlp.fc2.weight') {
      for (let i = 0; i < data.length; i++) data[i] = rng.normal() * 0.01;
    }
    params[name] = { shape, data };
  }
  const identity = (n: number): Normalizer => ({ mean: new Float64Array(n), scale: new Float64Array(n).fill(1) });
  return {
    architecture: { ...arch },
    normalizer: identity(arch.inputDim),
    ...(extraDimOf(arch) > 0 ? { extraNormalizer: identity(extraDimOf(arch)) } : {}),
    params,
  };
}

/** Per-entry mean and 1/std of the per-image features over the training images. */
export function fitExtraNormalizer(features: TokenFeatures[], dim: number): Normalizer {
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  for (const f of features) {
    if (f.extra?.length !== dim) throw new Error(`policy: per-image features must have ${dim} entries`);
    for (let j = 0; j < dim; j++) {
      mean[j] += f.extra[j];
      sq[j] += f.extra[j] * f.extra[j];
    }
  }
  const scale = new Float64Array(dim);
  for (let j = 0; j < dim; j++) {
    mean[j] /= features.length;
    scale[j] = 1 / Math.sqrt(Math.max(sq[j] / features.length - mean[j] * mean[j], 0) + 1e-6);
  }
  return { mean, scale };
}

/** Per-feature mean and 1/std over every real token of the training prompts. */
export function fitNormalizer(features: TokenFeatures[], dim: number): { mean: Float64Array; scale: Float64Array } {
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  let count = 0;
  for (const f of features) {
    checkFeatures(f, dim);
    for (let t = 0; t < f.tokens; t++) {
      if (!(f.mask[t] > 0.5)) continue;
      count++;
      for (let j = 0; j < dim; j++) {
        const v = f.hidden[t * dim + j];
        mean[j] += v;
        sq[j] += v * v;
      }
    }
  }
  if (count === 0) throw new Error('policy: no real tokens to fit the input normalisation on');
  const scale = new Float64Array(dim);
  for (let j = 0; j < dim; j++) {
    mean[j] /= count;
    const variance = Math.max(sq[j] / count - mean[j] * mean[j], 0);
    // The floor keeps constant features (e.g. the BOS token's dims) from being blown up.
    scale[j] = 1 / Math.sqrt(variance + 1e-6);
  }
  return { mean, scale };
}

function checkFeatures(f: TokenFeatures, dim: number): void {
  if (f.dim !== dim) throw new Error(`policy: features have width ${f.dim}, the policy expects ${dim}`);
  if (f.hidden.length !== f.tokens * f.dim) {
    throw new Error(`policy: features hold ${f.hidden.length} values, expected ${f.tokens} x ${f.dim}`);
  }
  if (f.mask.length !== f.tokens) throw new Error(`policy: mask has ${f.mask.length} entries for ${f.tokens} tokens`);
}

/** The MLP's input: the pooled prompt code, then the standardised per-image features. */
function mlpInput(net: PolicyNet, pooled: Float64Array, f: TokenFeatures): Float64Array {
  const e = extraDimOf(net.architecture);
  if (e === 0) return pooled;
  if (f.extra?.length !== e) throw new Error(`policy: this policy reads ${e} per-image features, got ${f.extra?.length ?? 0}`);
  const { mean, scale } = net.extraNormalizer!;
  const out = new Float64Array(pooled.length + e);
  out.set(pooled);
  for (let j = 0; j < e; j++) out[pooled.length + j] = (f.extra[j] - mean[j]) * scale[j];
  return out;
}

// ---- dense helpers (row-major) ---------------------------------------------------------------

/** out[m,n] += a[m,k] b[k,n] (a fresh zero `out` by default) */
function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number, out: Float64Array = new Float64Array(m * n)) {
  for (let i = 0; i < m; i++) {
    const o = i * n;
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      if (av === 0) continue;
      const bo = p * n;
      for (let j = 0; j < n; j++) out[o + j] += av * b[bo + j];
    }
  }
  return out;
}

/** out[k,n] += a[m,k]^T b[m,n] */
function matmulAT(a: Float64Array, b: Float64Array, m: number, k: number, n: number, out: Float64Array) {
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      if (av === 0) continue;
      const o = p * n;
      const bo = i * n;
      for (let j = 0; j < n; j++) out[o + j] += av * b[bo + j];
    }
  }
  return out;
}

/** out[m,k] += a[m,n] b[k,n]^T */
function matmulBT(a: Float64Array, b: Float64Array, m: number, n: number, k: number, out: Float64Array) {
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      let acc = 0;
      for (let j = 0; j < n; j++) acc += a[i * n + j] * b[p * n + j];
      out[i * k + p] += acc;
    }
  }
  return out;
}

/** Softmax of each row of a [rows, cols] matrix, in place. */
function softmaxRows(s: Float64Array, rows: number, cols: number): Float64Array {
  for (let i = 0; i < rows; i++) {
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = Math.max(max, s[i * cols + j]);
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += s[i * cols + j] = Math.exp(s[i * cols + j] - max);
    for (let j = 0; j < cols; j++) s[i * cols + j] /= sum;
  }
  return s;
}

/** Backward of a row softmax: dS = A * (dA - rowsum(dA * A)), scaled. */
function softmaxRowsBackward(a: Float64Array, dA: Float64Array, rows: number, cols: number, scale: number) {
  const dS = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += dA[i * cols + j] * a[i * cols + j];
    for (let j = 0; j < cols; j++) dS[i * cols + j] = a[i * cols + j] * (dA[i * cols + j] - dot) * scale;
  }
  return dS;
}

export function softmax(logits: ArrayLike<number>): Float64Array {
  const p = Float64Array.from(logits);
  return softmaxRows(p, 1, p.length);
}

// ---- forward / backward -----------------------------------------------------------------------

interface AttentionCache {
  input: Float64Array;
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  weights: Float64Array;
}

/** Everything backward needs from one forward pass. */
export interface ForwardCache {
  n: number;
  x: Float64Array;
  layers: AttentionCache[];
  z: Float64Array;
  pool: Float64Array;
  pooled: Float64Array;
  /** pooled, joined by the standardised per-image features. */
  head: Float64Array;
  hidden: Float64Array;
  logits: Float64Array;
}

/** Logits for one prompt (and the cache for `backward`). */
export function forward(net: PolicyNet, f: TokenFeatures): ForwardCache {
  const { inputDim: d, hiddenDim: h } = net.architecture;
  checkFeatures(f, d);
  const P = net.params;
  const real: number[] = [];
  for (let t = 0; t < f.tokens; t++) if (f.mask[t] > 0.5) real.push(t);
  const n = real.length;
  if (n === 0) throw new Error('policy: the prompt has no real tokens (mask is all zero)');

  if (!readsPrompt(net.architecture)) {
    const none = new Float64Array(0);
    return mlpForward(net, { n, x: none, layers: [], z: none, pool: none, pooled: none }, f);
  }
  const { mean, scale } = net.normalizer;
  const x = new Float64Array(n * d);
  real.forEach((t, i) => {
    for (let j = 0; j < d; j++) x[i * d + j] = (f.hidden[t * d + j] - mean[j]) * scale[j];
  });
  let z = matmul(x, P['proj.weight'].data, n, d, h);
  const bp = P['proj.bias'].data;
  for (let i = 0; i < n; i++) for (let j = 0; j < h; j++) z[i * h + j] += bp[j];

  const invSqrtH = 1 / Math.sqrt(h);
  const layers: AttentionCache[] = [];
  for (let l = 0; l < net.architecture.attentionLayers; l++) {
    const names = attentionParamNames(l);
    const q = matmul(z, P[names.query].data, n, h, h);
    const kk = matmul(z, P[names.key].data, n, h, h);
    const v = matmul(z, P[names.value].data, n, h, h);
    const weights = new Float64Array(n * n);
    matmulBT(q, kk, n, h, n, weights);
    for (let i = 0; i < weights.length; i++) weights[i] *= invSqrtH;
    softmaxRows(weights, n, n);
    const next = z.slice();
    matmul(weights, v, n, n, h, next);
    layers.push({ input: z, q, k: kk, v, weights });
    z = next;
  }

  const query = P['pool.query'].data;
  const pool = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let acc = 0;
    for (let j = 0; j < h; j++) acc += z[i * h + j] * query[j];
    pool[i] = acc * invSqrtH;
  }
  softmaxRows(pool, 1, n);
  const pooled = matmul(pool, z, 1, n, h);
  return mlpForward(net, { n, x, layers, z, pool, pooled }, f);
}

function mlpForward(net: PolicyNet, prompt: Omit<ForwardCache, 'head' | 'hidden' | 'logits'>, f: TokenFeatures): ForwardCache {
  const { mlpDim: m, outputs: k } = net.architecture;
  const P = net.params;
  const head = mlpInput(net, prompt.pooled, f);
  const hidden = matmul(head, P['mlp.fc1.weight'].data, 1, head.length, m);
  const b1 = P['mlp.fc1.bias'].data;
  for (let j = 0; j < m; j++) hidden[j] = Math.tanh(hidden[j] + b1[j]);
  const logits = matmul(hidden, P['mlp.fc2.weight'].data, 1, m, k);
  const b2 = P['mlp.fc2.bias'].data;
  for (let j = 0; j < k; j++) logits[j] += b2[j];
  return { ...prompt, head, hidden, logits };
}

/** Gradients with the same names and shapes as the parameters, all zero. */
export function zeroGrads(net: PolicyNet): PolicyParams {
  const grads: PolicyParams = {};
  for (const [name, t] of Object.entries(net.params)) grads[name] = { shape: t.shape, data: new Float64Array(t.data.length) };
  return grads;
}

/** Accumulates d(objective)/d(params) into `grads`, given d(objective)/d(logits) for this forward pass. */
export function backward(net: PolicyNet, cache: ForwardCache, dLogits: ArrayLike<number>, grads: PolicyParams): void {
  const { inputDim: d, hiddenDim: h, mlpDim: m, outputs: k } = net.architecture;
  const P = net.params;
  const { n } = cache;
  const dl = Float64Array.from(dLogits);

  // MLP
  matmulAT(cache.hidden, dl, 1, m, k, grads['mlp.fc2.weight'].data);
  for (let j = 0; j < k; j++) grads['mlp.fc2.bias'].data[j] += dl[j];
  const dHidden = new Float64Array(m);
  matmulBT(dl, P['mlp.fc2.weight'].data, 1, k, m, dHidden);
  for (let j = 0; j < m; j++) dHidden[j] *= 1 - cache.hidden[j] * cache.hidden[j];
  const headDim = cache.head.length;
  matmulAT(cache.head, dHidden, 1, headDim, m, grads['mlp.fc1.weight'].data);
  for (let j = 0; j < m; j++) grads['mlp.fc1.bias'].data[j] += dHidden[j];
  // The per-image features are inputs, not parameters: only the pooled part carries on backwards.
  if (!readsPrompt(net.architecture)) return;
  const dHead = new Float64Array(headDim);
  matmulBT(dHidden, P['mlp.fc1.weight'].data, 1, m, headDim, dHead);
  const dPooled = dHead.subarray(0, h);

  // attention pooling: pooled = pool^T z, pool = softmax(z q / sqrt(H))
  const invSqrtH = 1 / Math.sqrt(h);
  const dz = new Float64Array(n * h);
  matmulAT(cache.pool, dPooled, 1, n, h, dz);
  const dPool = new Float64Array(n);
  matmulBT(dPooled, cache.z, 1, h, n, dPool);
  const dScores = softmaxRowsBackward(cache.pool, dPool, 1, n, invSqrtH);
  matmul(dScores, cache.z, 1, n, h, grads['pool.query'].data);
  const query = P['pool.query'].data;
  for (let i = 0; i < n; i++) for (let j = 0; j < h; j++) dz[i * h + j] += dScores[i] * query[j];

  // self-attention layers, last first: out = in + A V, A = softmax(Q K^T / sqrt(H))
  let dOut = dz;
  for (let l = cache.layers.length - 1; l >= 0; l--) {
    const c = cache.layers[l];
    const names = attentionParamNames(l);
    const dIn = dOut.slice();
    const dA = new Float64Array(n * n);
    matmulBT(dOut, c.v, n, h, n, dA);
    const dV = matmulAT(c.weights, dOut, n, n, h, new Float64Array(n * h));
    const dS = softmaxRowsBackward(c.weights, dA, n, n, invSqrtH);
    const dQ = matmul(dS, c.k, n, n, h);
    const dK = matmulAT(dS, c.q, n, n, h, new Float64Array(n * h));
    matmulAT(c.input, dQ, n, h, h, grads[names.query].data);
    matmulAT(c.input, dK, n, h, h, grads[names.key].data);
    matmulAT(c.input, dV, n, h, h, grads[names.value].data);
    matmulBT(dQ, P[names.query].data, n, h, h, dIn);
    matmulBT(dK, P[names.key].data, n, h, h, dIn);
    matmulBT(dV, P[names.value].data, n, h, h, dIn);
    dOut = dIn;
  }

  // projection
  matmulAT(cache.x, dOut, n, d, h, grads['proj.weight'].data);
  const db = grads['proj.bias'].data;
  for (let i = 0; i < n; i++) for (let j = 0; j < h; j++) db[j] += dOut[i * h + j];
}

// ---- Adam -------------------------------------------------------------------------------------

export interface AdamOptions {
  /** Step size. Default 3e-3. */
  learningRate?: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  epsilon?: number;
  /**
   * Decoupled weight decay (AdamW, Loshchilov & Hutter): every step shrinks each weight matrix by
   * learningRate * weightDecay * w, independent of the gradient. Biases, the pooling query and
   * anything 1-D are left alone. Default 0.
   */
  weightDecay?: number;
}

/** Adam (Kingma & Ba) with bias correction; `step` ascends when `maximize` is set. */
export class Adam {
  private readonly m: Record<string, Float64Array> = {};
  private readonly v: Record<string, Float64Array> = {};
  private t = 0;
  private readonly lr: number;
  private readonly b1: number;
  private readonly b2: number;
  private readonly eps: number;
  private readonly wd: number;

  constructor(private readonly params: PolicyParams, options: AdamOptions = {}) {
    this.lr = options.learningRate ?? 3e-3;
    this.b1 = options.beta1 ?? 0.9;
    this.b2 = options.beta2 ?? 0.999;
    this.eps = options.epsilon ?? 1e-8;
    this.wd = options.weightDecay ?? 0;
    if (!(this.wd >= 0)) throw new Error('adam: weight decay must be >= 0');
    for (const [name, t] of Object.entries(params)) {
      this.m[name] = new Float64Array(t.data.length);
      this.v[name] = new Float64Array(t.data.length);
    }
  }

  step(grads: PolicyParams, maximize = false): void {
    this.t++;
    const c1 = 1 - this.b1 ** this.t;
    const c2 = 1 - this.b2 ** this.t;
    const sign = maximize ? 1 : -1;
    for (const [name, t] of Object.entries(this.params)) {
      const g = grads[name].data;
      const m = this.m[name];
      const v = this.v[name];
      const decay = t.shape.length >= 2 ? 1 - this.lr * this.wd : 1;
      for (let i = 0; i < g.length; i++) {
        t.data[i] *= decay;
        m[i] = this.b1 * m[i] + (1 - this.b1) * g[i];
        v[i] = this.b2 * v[i] + (1 - this.b2) * g[i] * g[i];
        t.data[i] += (sign * this.lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + this.eps);
      }
    }
  }
}

// ---- (de)serialisation ------------------------------------------------------------------------

/** JSON form of a network: plain arrays, so it survives JSON.stringify exactly (doubles round-trip). */
export interface SerializedPolicyNet {
  format: 'adadiff-policy-net';
  version: 1;
  architecture: PolicyArchitecture;
  normalizer: { mean: number[]; scale: number[] };
  extraNormalizer?: { mean: number[]; scale: number[] };
  params: Record<string, { shape: number[]; data: number[] }>;
}

export function serializePolicyNet(net: PolicyNet): SerializedPolicyNet {
  const params: SerializedPolicyNet['params'] = {};
  for (const name of parameterNames(net.architecture)) {
    params[name] = { shape: [...net.params[name].shape], data: Array.from(net.params[name].data) };
  }
  return {
    format: 'adadiff-policy-net',
    version: 1,
    architecture: { ...net.architecture },
    normalizer: { mean: Array.from(net.normalizer.mean), scale: Array.from(net.normalizer.scale) },
    ...(net.extraNormalizer ? { extraNormalizer: { mean: Array.from(net.extraNormalizer.mean), scale: Array.from(net.extraNormalizer.scale) } } : {}),
    params,
  };
}

export function deserializePolicyNet(value: unknown): PolicyNet {
  const s = value as SerializedPolicyNet;
  if (!s || s.format !== 'adadiff-policy-net' || s.version !== 1) {
    throw new Error('policy: not a serialised policy network (format adadiff-policy-net, version 1)');
  }
  validateArchitecture(s.architecture);
  const shapes = parameterShapes(s.architecture);
  const params: PolicyParams = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const t = s.params?.[name];
    if (!t || t.shape.join() !== shape.join() || t.data.length !== size(shape)) {
      throw new Error(`policy: parameter ${name} is missing or not of shape [${shape}]`);
    }
    params[name] = { shape, data: Float64Array.from(t.data) };
  }
  const d = s.architecture.inputDim;
  if (s.normalizer?.mean?.length !== d || s.normalizer?.scale?.length !== d) {
    throw new Error(`policy: input normalisation must have ${d} entries`);
  }
  const e = extraDimOf(s.architecture);
  if (e > 0 && (s.extraNormalizer?.mean?.length !== e || s.extraNormalizer?.scale?.length !== e)) {
    throw new Error(`policy: per-image feature normalisation must have ${e} entries`);
  }
  return {
    architecture: { ...s.architecture },
    normalizer: { mean: Float64Array.from(s.normalizer.mean), scale: Float64Array.from(s.normalizer.scale) },
    ...(e > 0 ? { extraNormalizer: { mean: Float64Array.from(s.extraNormalizer!.mean), scale: Float64Array.from(s.extraNormalizer!.scale) } } : {}),
    params,
  };
}
