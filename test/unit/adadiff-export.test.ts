import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildPolicyGraph, exportPolicy } from '../../server/adadiff/export';
import { loadPolicy, stepFromLogits } from '../../server/adadiff/policy';
import type { PolicyManifest } from '../../server/adadiff/policy-manifest';
import { createPolicyNet, forward, softmax, type PolicyArchitecture, type PolicyNet } from '../../server/adadiff/policy-net';
import { createRng } from '../../server/adadiff/random';
import { DEFAULT_CANDIDATES } from '../../server/adadiff/reward';
import { testManifest } from '../fixtures/with-policy';
import { tempDirAsync } from '../temp-dirs';

const D = 32;
const L = 12;
const K = DEFAULT_CANDIDATES.length;

function randomNet(arch: PolicyArchitecture, seed: number): PolicyNet {
  const net = createPolicyNet(arch, seed);
  const rng = createRng(seed + 100);
  for (const t of Object.values(net.params)) for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal() * 0.4;
  for (let j = 0; j < arch.inputDim; j++) {
    net.normalizer.mean[j] = rng.normal();
    net.normalizer.scale[j] = 0.3 + rng.uniform();
  }
  return net;
}

/** B prompts of L tokens with `real[b]` real tokens each; padding holds junk, as CLIP's does. */
function batch(real: number[], seed: number) {
  const rng = createRng(seed);
  const hidden = new Float32Array(real.length * L * D).map(() => rng.normal() * 3);
  const mask = new Float32Array(real.length * L).map((_, i) => (i % L < real[i / L | 0] ? 1 : 0));
  return { hidden, mask };
}

const manifestFor = (net: PolicyNet): PolicyManifest => testManifest(net, L);

for (const attentionLayers of [0, 1, 2]) {
  test(`ONNX logits equal the TypeScript forward within 1e-5 (${attentionLayers} attention layers, batch of 4)`, async () => {
    const net = randomNet({ inputDim: D, hiddenDim: 16, attentionLayers, mlpDim: 24, outputs: DEFAULT_CANDIDATES.length }, attentionLayers);
    const real = [L, 1, 5, 9];
    const { hidden, mask } = batch(real, 7);
    const session = await ort.InferenceSession.create(Buffer.from(buildPolicyGraph(net)));
    try {
      const out = await session.run({
        last_hidden_state: new ort.Tensor('float32', hidden, [real.length, L, D]),
        attention_mask: new ort.Tensor('float32', mask, [real.length, L]),
      });
      assert.deepEqual(out.logits.dims, [real.length, DEFAULT_CANDIDATES.length]);
      const onnx = out.logits.data as Float32Array;
      let worst = 0;
      real.forEach((_, b) => {
        const ts = forward(net, {
          hidden: hidden.subarray(b * L * D, (b + 1) * L * D),
          tokens: L,
          dim: D,
          mask: mask.subarray(b * L, (b + 1) * L),
        }).logits;
        for (let j = 0; j < K; j++) worst = Math.max(worst, Math.abs(onnx[b * K + j] - ts[j]));
      });
      assert.ok(worst < 1e-5, `max |onnx - ts| = ${worst}`);
    } finally {
      await session.release();
    }
  });
}

test('exportPolicy + loadPolicy: predict gives the argmax of the TypeScript forward', async () => {
  const dir = await tempDirAsync('adadiff-policy-');
  try {
    assert.equal(await loadPolicy(dir), null);
    const net = randomNet({ inputDim: D, hiddenDim: 16, attentionLayers: 1, mlpDim: 16, outputs: DEFAULT_CANDIDATES.length }, 3);
    const manifest = manifestFor(net);
    const { onnxPath, manifestPath } = await exportPolicy(net, manifest, dir);
    assert.deepEqual(JSON.parse(await readFile(manifestPath, 'utf8')), JSON.parse(JSON.stringify(manifest)));
    const policy = await loadPolicy(dir);
    assert.ok(policy);
    try {
      assert.equal(policy.manifest.baselineSteps, 50);
      for (const [i, n] of [3, 12, 1].entries()) {
        const { hidden, mask } = batch([n], 20 + i);
        const p = await policy.predict(hidden, [1, L, D], mask);
        const expected = softmax(forward(net, { hidden, tokens: L, dim: D, mask }).logits);
        const best = expected.indexOf(Math.max(...expected));
        assert.equal(p.steps, DEFAULT_CANDIDATES[best]);
        assert.deepEqual(p.candidates, DEFAULT_CANDIDATES);
        p.probabilities.forEach((v, j) => assert.ok(Math.abs(v - expected[j]) < 1e-5));
      }
      await assert.rejects(policy.predict(new Float32Array(L * 8), [1, L, 8], new Float32Array(L).fill(1)), /8-wide/);
      await assert.rejects(policy.predict(new Float32Array(L * D), [1, L, D], new Float32Array(L)), /no real token/);
    } finally {
      await policy.dispose();
    }

    // Only the graph (an interrupted export) is no policy; present but broken is an error naming the file.
    await rm(manifestPath);
    assert.equal(await loadPolicy(dir), null);
    await writeFile(manifestPath, '{"format": "adadiff-policy", "version": 9}');
    await assert.rejects(loadPolicy(dir), /policy\.json: .*version 9/);
    await writeFile(manifestPath, 'not json');
    await assert.rejects(loadPolicy(dir), /policy\.json/);
    await writeFile(manifestPath, JSON.stringify(manifest));
    await writeFile(onnxPath, 'garbage');
    await assert.rejects(loadPolicy(dir), /policy\.onnx: does not load/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

for (const readsPrompt of [true, false]) test(`first-step-aware export${readsPrompt ? ' with the prompt code' : ', per-image features alone'}: ONNX equals the TypeScript forward; refine() uses them; a missing graph is an error`, async () => {
  const dir = await tempDirAsync('adadiff-policy-');
  try {
    const E = 4;
    const promptOnly = randomNet({ inputDim: D, hiddenDim: 16, attentionLayers: 0, mlpDim: 16, outputs: DEFAULT_CANDIDATES.length }, 5);
    const refined = randomNet({ inputDim: D, hiddenDim: 16, attentionLayers: 0, mlpDim: 16, outputs: DEFAULT_CANDIDATES.length, extraDim: E, readsPrompt }, 6);
    refined.extraNormalizer = { mean: Float64Array.from([0.1, 0.2, -0.3, 0]), scale: Float64Array.from([2, 1, 0.5, 3]) };
    const manifest: PolicyManifest = {
      ...manifestFor(promptOnly),
      firstStep: { file: 'policy-first-step.onnx', features: ['a', 'b', 'c', 'd'], architecture: refined.architecture, images: 0, finalGreedyReward: 0, oracleReward: 0, trainingSeconds: 0 },
    };
    await assert.rejects(exportPolicy(promptOnly, manifest, dir), /go together/);
    await exportPolicy(promptOnly, manifest, dir, refined);
    const policy = (await loadPolicy(dir))!;
    const refine = policy.refine!;
    assert.ok(refine);
    try {
      let changed = 0;
      for (const [i, n] of [3, 12, 1].entries()) {
        const { hidden, mask } = batch([n], 40 + i);
        for (const extra of [[0, 0, 0, 0], [3, -2, 1, 0.5], [-1, 4, 0, 2]]) {
          const p = await refine(hidden, [1, L, D], mask, Float32Array.from(extra));
          const expected = softmax(forward(refined, { hidden, tokens: L, dim: D, mask, extra: Float32Array.from(extra) }).logits);
          p.probabilities.forEach((v, j) => assert.ok(Math.abs(v - expected[j]) < 1e-5, `${v} vs ${expected[j]}`));
          assert.equal(p.steps, DEFAULT_CANDIDATES[expected.indexOf(Math.max(...expected))]);
          if (p.steps !== (await policy.predict(hidden, [1, L, D], mask)).steps) changed++;
        }
      }
      assert.ok(changed > 0, 'the per-image features change some choices');
      // Without the prompt code the prompt's features are fed but change nothing.
      const extra = Float32Array.from([3, -2, 1, 0.5]);
      const [a, b] = [batch([3], 7), batch([12], 8)];
      const pa = (await refine(a.hidden, [1, L, D], a.mask, extra)).probabilities;
      const pb = (await refine(b.hidden, [1, L, D], b.mask, extra)).probabilities;
      assert.equal(pa.some((v, j) => Math.abs(v - pb[j]) > 1e-7), readsPrompt, readsPrompt ? 'the prompt code changes the output' : 'the prompt is ignored');
      await assert.rejects(refine(batch([3], 1).hidden, [1, L, D], batch([3], 1).mask, new Float32Array(3)), /reads 4/);
    } finally {
      await policy.dispose();
    }
    await rm(path.join(dir, 'adadiff', 'policy-first-step.onnx'));
    await assert.rejects(loadPolicy(dir), /policy-first-step\.onnx: is missing/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('stepFromLogits: softmax and argmax', () => {
  const p = stepFromLogits([5, 10, 20], [0, 2, 1]);
  assert.equal(p.steps, 10);
  assert.ok(Math.abs(p.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  assert.throws(() => stepFromLogits([5, 10], [1]), /1 logits for 2/);
});
