import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Adam,
  backward,
  createPolicyNet,
  deserializePolicyNet,
  fitNormalizer,
  forward,
  parameterNames,
  serializePolicyNet,
  zeroGrads,
  type PolicyArchitecture,
  type PolicyNet,
  type TokenFeatures,
} from '../../server/adadiff/policy-net';
import { createRng } from '../../server/adadiff/random';

function randomFeatures(seed: number, tokens: number, dim: number, real: number): TokenFeatures {
  const rng = createRng(seed);
  const hidden = new Float64Array(tokens * dim).map(() => rng.normal() + 0.5);
  const mask = new Float32Array(tokens).map((_, t) => (t < real ? 1 : 0));
  return { hidden, tokens, dim, mask };
}

/** Every parameter and the normaliser random and non-zero, so no gradient path is trivially zero. */
function randomNet(arch: PolicyArchitecture, seed: number): PolicyNet {
  const net = createPolicyNet(arch, seed);
  const rng = createRng(seed + 1);
  for (const t of Object.values(net.params)) for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal() * 0.35;
  for (let j = 0; j < arch.inputDim; j++) {
    net.normalizer.mean[j] = rng.normal() * 0.3;
    net.normalizer.scale[j] = 0.5 + rng.uniform();
  }
  return net;
}

// [1, 3] joins 3 per-image features to the prompt code before the MLP; the last case is the
// first-step-aware shape, which reads those features alone.
for (const [attentionLayers, extraDim, readsPrompt] of [[0, 0, true], [1, 0, true], [2, 0, true], [1, 3, true], [0, 3, false]] as const) {
  test(`finite differences match backward for every parameter tensor (${attentionLayers} attention layers, ${extraDim} per-image features${readsPrompt ? '' : ', no prompt code'})`, () => {
    const arch = { inputDim: 7, hiddenDim: 6, attentionLayers, mlpDim: 5, outputs: 4, extraDim, readsPrompt };
    const net = randomNet(arch, 11 + attentionLayers);
    const f = { ...randomFeatures(3, 9, 7, 6), ...(extraDim ? { extra: [0.4, -1.3, 2.2] } : {}) };
    if (extraDim) net.extraNormalizer = { mean: Float64Array.from([0.1, -0.2, 0.3]), scale: Float64Array.from([1.5, 0.7, 0.9]) };
    const rng = createRng(99);
    const weights = Array.from({ length: 4 }, () => rng.normal());
    // A nonlinear objective of the logits: log pi(a) for a fixed a plus a linear term.
    const objective = (logits: Float64Array) => {
      const max = Math.max(...logits);
      const lse = max + Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0));
      return logits[2] - lse + logits.reduce((s, v, j) => s + weights[j] * v, 0);
    };
    const cache = forward(net, f);
    const max = Math.max(...cache.logits);
    const exps = cache.logits.map((v) => Math.exp(v - max));
    const z = exps.reduce((a, b) => a + b, 0);
    const dLogits = Array.from(cache.logits, (_, j) => (j === 2 ? 1 : 0) - exps[j] / z + weights[j]);
    const grads = zeroGrads(net);
    backward(net, cache, dLogits, grads);

    const names = parameterNames(arch);
    assert.equal(names.length, Object.keys(net.params).length);
    const eps = 1e-6;
    for (const name of names) {
      const p = net.params[name].data;
      const numeric = new Float64Array(p.length);
      for (let i = 0; i < p.length; i++) {
        const keep = p[i];
        p[i] = keep + eps;
        const up = objective(forward(net, f).logits);
        p[i] = keep - eps;
        const down = objective(forward(net, f).logits);
        p[i] = keep;
        numeric[i] = (up - down) / (2 * eps);
      }
      const analytic = grads[name].data;
      let diff = 0;
      let norm = 0;
      for (let i = 0; i < p.length; i++) {
        diff += (numeric[i] - analytic[i]) ** 2;
        norm += numeric[i] ** 2 + analytic[i] ** 2;
      }
      assert.ok(norm > 1e-12, `${name}: gradient is zero, the test would prove nothing`);
      const rel = Math.sqrt(diff) / Math.sqrt(norm);
      assert.ok(rel < 1e-4, `${name}: relative error ${rel}`);
    }
  });
}

test('padding does not change the output', () => {
  const arch = { inputDim: 5, hiddenDim: 4, attentionLayers: 1, mlpDim: 3, outputs: 3 };
  const net = randomNet(arch, 5);
  const short = randomFeatures(8, 4, 5, 4);
  const padded: TokenFeatures = {
    hidden: Float64Array.from([...short.hidden, ...Array.from({ length: 3 * 5 }, (_, i) => 100 + i)]),
    tokens: 7,
    dim: 5,
    mask: [1, 1, 1, 1, 0, 0, 0],
  };
  assert.deepEqual(forward(net, padded).logits, forward(net, short).logits);
  assert.throws(() => forward(net, { ...short, mask: [0, 0, 0, 0] }), /no real tokens/);
  assert.throws(() => forward(net, { ...short, dim: 6 }), /width 6/);
});

test('a fresh network is close to uniform and deterministic in its seed', () => {
  const arch = { inputDim: 16, hiddenDim: 8, attentionLayers: 1, mlpDim: 8, outputs: 10 };
  const f = randomFeatures(1, 6, 16, 6);
  const a = forward(createPolicyNet(arch, 4), f).logits;
  assert.deepEqual(a, forward(createPolicyNet(arch, 4), f).logits);
  assert.notDeepEqual(a, forward(createPolicyNet(arch, 5), f).logits);
  for (const v of a) assert.ok(Math.abs(v) < 0.1);
});

test('the normaliser standardises real tokens only', () => {
  const f: TokenFeatures = { hidden: [1, 10, 3, 30, 99, 99], tokens: 3, dim: 2, mask: [1, 1, 0] } as unknown as TokenFeatures;
  const { mean, scale } = fitNormalizer([{ ...f, hidden: Float64Array.from(f.hidden) }], 2);
  assert.deepEqual(Array.from(mean), [2, 20]);
  assert.ok(Math.abs(scale[0] - 1 / Math.sqrt(1 + 1e-6)) < 1e-12);
  assert.ok(Math.abs(scale[1] - 1 / Math.sqrt(100 + 1e-6)) < 1e-12);
});

test('serialisation round-trips exactly and rejects malformed input', () => {
  const arch = { inputDim: 6, hiddenDim: 5, attentionLayers: 2, mlpDim: 4, outputs: 3 };
  const net = randomNet(arch, 21);
  const back = deserializePolicyNet(JSON.parse(JSON.stringify(serializePolicyNet(net))));
  const f = randomFeatures(2, 5, 6, 5);
  assert.deepEqual(forward(back, f).logits, forward(net, f).logits);
  const broken = serializePolicyNet(net);
  broken.params['mlp.fc1.weight'].data.pop();
  assert.throws(() => deserializePolicyNet(broken), /mlp\.fc1\.weight/);
  assert.throws(() => deserializePolicyNet({ format: 'other' }), /not a serialised policy/);
});

test('Adam minimises a quadratic and ascends when asked to maximise', () => {
  const params = { w: { shape: [3], data: Float64Array.from([5, -3, 1]) } };
  const adam = new Adam(params, { learningRate: 0.1 });
  for (let i = 0; i < 500; i++) {
    adam.step({ w: { shape: [3], data: params.w.data.map((v) => 2 * v) } });
  }
  for (const v of params.w.data) assert.ok(Math.abs(v) < 1e-2, `${params.w.data}`);
  const up = { w: { shape: [1], data: Float64Array.from([0]) } };
  new Adam(up, { learningRate: 0.5 }).step({ w: { shape: [1], data: Float64Array.from([1]) } }, true);
  assert.ok(Math.abs(up.w.data[0] - 0.5) < 1e-6);
});

test('Adam weight decay shrinks weight matrices by lr * decay per step and leaves 1-D tensors alone', () => {
  const params = {
    w: { shape: [2, 2], data: Float64Array.from([1, -2, 3, 4]) },
    b: { shape: [2], data: Float64Array.from([1, -1]) },
  };
  const zero = { w: { shape: [2, 2], data: new Float64Array(4) }, b: { shape: [2], data: new Float64Array(2) } };
  const adam = new Adam(params, { learningRate: 0.1, weightDecay: 0.5 });
  adam.step(zero, true);
  adam.step(zero, true);
  // With a zero gradient Adam's own step is 0, so only the decay acts: w * (1 - 0.1 * 0.5)^2.
  assert.deepEqual(Array.from(params.w.data), [1, -2, 3, 4].map((v) => v * 0.95 * 0.95));
  assert.deepEqual(Array.from(params.b.data), [1, -1]);
  assert.throws(() => new Adam(params, { weightDecay: -1 }), /weight decay/);
});
