// The fixture models and the ONNX writer they are built with: every fixture loads in
// onnxruntime-node with the inputs real exporters declare, runs, stays finite over a 50-step
// DDIM loop, keeps its UNet weights external where real exports do, and the broken folders
// fail the way they are named for.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it, before } from 'node:test';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, attr, float16ToFloat32, float32ToFloat16, fromHalfBits, tensor, toHalfBits } from '../../server/onnx';
import { learnClipBpe, tokenizerJson, tokenizerConfigJson, BOS, EOS } from '../fixtures/clip-bpe';
import { OPTIMUM_DIMS, Rng, unet } from '../fixtures/fixture-models';
import { BROKEN_KINDS, FIXTURE_VARIANTS, VARIANTS, Variant, VariantSpec, ensureFixtures, makeBrokenFixture } from '../fixtures/make-fixtures';

type Meta = { name: string; type: string; rank: number };

function metadata(session: ort.InferenceSession, which: 'inputMetadata' | 'outputMetadata'): Meta[] {
  return session[which].map((m) => {
    assert.ok(m.isTensor, `${m.name} is a tensor`);
    return { name: m.name, type: m.type, rank: m.shape.length };
  });
}

/** A float tensor of the model's float type (fp16 travels as Uint16Array bit patterns). */
function floatTensor(type: 'float32' | 'float16', values: Float32Array, dims: number[]): ort.Tensor {
  return type === 'float16' ? new ort.Tensor('float16', float32ToFloat16(values), dims) : new ort.Tensor('float32', values, dims);
}

function toFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float16') return float16ToFloat32(t.data as Uint16Array);
  assert.equal(t.type, 'float32');
  return t.data as Float32Array;
}

function timestepTensor(spec: VariantSpec, t: number, batch: number): ort.Tensor {
  const dims = spec.timestep.rank === 0 ? [] : [batch];
  const n = spec.timestep.rank === 0 ? 1 : batch;
  switch (spec.timestep.dtype) {
    case 'int64': return new ort.Tensor('int64', new BigInt64Array(n).fill(BigInt(t)), dims);
    case 'float16': return new ort.Tensor('float16', float32ToFloat16(new Float32Array(n).fill(t)), dims);
    case 'float32': return new ort.Tensor('float32', new Float32Array(n).fill(t), dims);
  }
}

const bpe = learnClipBpe();
// @huggingface/tokenizers is ESM-only as far as TypeScript's Node16 resolution is concerned, and
// this file compiles as CommonJS: load it with import().
const loadTokenizers = () => import('@huggingface/tokenizers');
type Tokenizer = InstanceType<Awaited<ReturnType<typeof loadTokenizers>>['Tokenizer']>;
let tokenizer: Tokenizer;

/** CLIP-style ids padded with EOS to 77, in the dtype the text encoder declares. */
function inputIds(prompt: string, type: string): ort.Tensor {
  const ids = tokenizer.encode(prompt).ids.slice(0, 77);
  while (ids.length < 77) ids.push(bpe.vocab[EOS]);
  return type === 'int32'
    ? new ort.Tensor('int32', Int32Array.from(ids), [1, 77])
    : new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, 77]);
}

const isFinite32 = (a: Float32Array) => a.every(Number.isFinite);
const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

interface Sessions {
  text: ort.InferenceSession;
  unet: ort.InferenceSession;
  vae: ort.InferenceSession;
}

async function openSessions(dir: string): Promise<Sessions> {
  const [text, unetSession, vae] = await Promise.all(
    ['text_encoder', 'unet', 'vae_decoder'].map((m) => ort.InferenceSession.create(path.join(dir, m, 'model.onnx'))),
  );
  return { text, unet: unetSession, vae };
}

/** Deterministic DDIM (scaled_linear 0.00085..0.012, leading spacing, steps_offset 1), batch 1. */
async function ddim(s: Sessions, spec: VariantSpec, prompt: string, steps: number): Promise<{ latents: Float32Array; peak: number }> {
  const { last_hidden_state: context } = await s.text.run({ input_ids: inputIds(prompt, metadata(s.text, 'inputMetadata')[0].type) });
  const betas = Array.from({ length: 1000 }, (_, i) => (Math.sqrt(0.00085) + (i / 999) * (Math.sqrt(0.012) - Math.sqrt(0.00085))) ** 2);
  const alphaBar: number[] = [];
  betas.reduce((p, b) => (alphaBar.push(p * (1 - b)), p * (1 - b)), 1);
  const ratio = Math.floor(1000 / steps);
  let x = new Rng(42).normals(4 * 8 * 8, 1);
  let peak = 0;
  for (let i = steps - 1; i >= 0; i--) {
    const t = i * ratio + 1;
    const out = await s.unet.run({
      sample: floatTensor(spec.float, x, [1, 4, 8, 8]),
      timestep: timestepTensor(spec, t, 1),
      encoder_hidden_states: context,
    });
    const eps = toFloat32(out.out_sample);
    const a = alphaBar[t];
    const aPrev = t - ratio >= 0 ? alphaBar[t - ratio] : alphaBar[0];
    x = x.map((xi, j) => {
      const x0 = (xi - Math.sqrt(1 - a) * eps[j]) / Math.sqrt(a);
      return Math.sqrt(aPrev) * x0 + Math.sqrt(1 - aPrev) * eps[j];
    });
    peak = Math.max(peak, maxAbs(x));
  }
  return { latents: x, peak };
}

let folders: Record<Variant, string>;
before(async () => {
  const t0 = performance.now();
  folders = await ensureFixtures();
  tokenizer = new (await loadTokenizers()).Tokenizer(tokenizerJson(bpe), tokenizerConfigJson());
  console.log(`# ensureFixtures: ${(performance.now() - t0).toFixed(0)} ms`);
});

for (const variant of VARIANTS) {
  const spec = FIXTURE_VARIANTS[variant];
  describe(`fixture ${variant}`, () => {
    it('has the diffusers ONNX layout', () => {
      const dir = folders[variant];
      for (const f of ['model_index.json', 'scheduler/scheduler_config.json', 'text_encoder/model.onnx', 'unet/model.onnx', 'unet/config.json', 'vae_decoder/model.onnx', 'vae_decoder/config.json', 'tokenizer/tokenizer_config.json', 'tokenizer/special_tokens_map.json']) {
        assert.ok(existsSync(path.join(dir, f)), f);
      }
      assert.equal(existsSync(path.join(dir, 'tokenizer/tokenizer.json')), spec.tokenizer !== 'bpe');
      assert.equal(existsSync(path.join(dir, 'tokenizer/vocab.json')), spec.tokenizer !== 'json');
      assert.equal(existsSync(path.join(dir, 'tokenizer/merges.txt')), spec.tokenizer !== 'json');
      assert.equal(existsSync(path.join(dir, 'vae_encoder/model.onnx')), spec.vaeEncoder);
      const vae = JSON.parse(readFileSync(path.join(dir, 'vae_decoder/config.json'), 'utf8'));
      assert.equal(vae.scaling_factor, 0.18215);
      const sched = JSON.parse(readFileSync(path.join(dir, 'scheduler/scheduler_config.json'), 'utf8'));
      assert.deepEqual([sched.beta_schedule, sched.steps_offset, sched.timestep_spacing], ['scaled_linear', 1, 'leading']);
    });

    it('declares the inputs and outputs real exports declare', async () => {
      const s = await openSessions(folders[variant]);
      const F = spec.float;
      assert.deepEqual(metadata(s.text, 'inputMetadata'), [{ name: 'input_ids', type: spec.idsType, rank: 2 }]);
      assert.deepEqual(metadata(s.text, 'outputMetadata'), [
        { name: 'last_hidden_state', type: F, rank: 3 },
        { name: 'pooler_output', type: F, rank: 2 },
      ]);
      assert.deepEqual(metadata(s.unet, 'inputMetadata'), [
        { name: 'sample', type: F, rank: 4 },
        { name: 'timestep', type: spec.timestep.dtype, rank: spec.timestep.rank },
        { name: 'encoder_hidden_states', type: F, rank: 3 },
      ]);
      assert.deepEqual(metadata(s.unet, 'outputMetadata'), [{ name: 'out_sample', type: F, rank: 4 }]);
      assert.deepEqual(metadata(s.vae, 'inputMetadata'), [{ name: 'latent_sample', type: F, rank: 4 }]);
      assert.deepEqual(metadata(s.vae, 'outputMetadata'), [{ name: 'sample', type: F, rank: 4 }]);
      if (spec.vaeEncoder) {
        const enc = await ort.InferenceSession.create(path.join(folders[variant], 'vae_encoder/model.onnx'));
        assert.deepEqual(metadata(enc, 'inputMetadata'), [{ name: 'sample', type: F, rank: 4 }]);
        assert.deepEqual(metadata(enc, 'outputMetadata'), [{ name: 'latent_sample', type: F, rank: 4 }]);
        const out = await enc.run({ sample: floatTensor(F, new Rng(5).normals(3 * 64 * 64, 0.5), [1, 3, 64, 64]) });
        assert.deepEqual(out.latent_sample.dims, [1, 4, 8, 8]);
      }
    });

    it('runs text encoder, one UNet step and the VAE decoder with finite outputs', async () => {
      const s = await openSessions(folders[variant]);
      const text = await s.text.run({ input_ids: inputIds('a red apple', spec.idsType) });
      assert.deepEqual(text.last_hidden_state.dims, [1, 77, 32]);
      assert.deepEqual(text.pooler_output.dims, [1, 32]);
      assert.ok(isFinite32(toFloat32(text.last_hidden_state)));
      // CLIP pools the hidden state at the first EOS: 'a red apple' is BOS + 3 tokens, EOS at 4.
      const hidden = toFloat32(text.last_hidden_state);
      assert.deepEqual(toFloat32(text.pooler_output), hidden.slice(4 * 32, 5 * 32));

      const batch = 2;
      const context = toFloat32(text.last_hidden_state);
      const out = await s.unet.run({
        sample: floatTensor(spec.float, new Rng(7).normals(batch * 4 * 8 * 8, 1), [batch, 4, 8, 8]),
        timestep: timestepTensor(spec, 981, batch),
        encoder_hidden_states: floatTensor(spec.float, Float32Array.from({ length: batch * context.length }, (_, i) => context[i % context.length]), [batch, 77, 32]),
      });
      assert.deepEqual(out.out_sample.dims, [batch, 4, 8, 8]);
      assert.equal(out.out_sample.type, spec.float);
      assert.ok(isFinite32(toFloat32(out.out_sample)));

      const image = await s.vae.run({ latent_sample: floatTensor(spec.float, new Rng(8).normals(4 * 8 * 8, 5), [1, 4, 8, 8]) });
      assert.deepEqual(image.sample.dims, [1, 3, 64, 64]);
      const pixels = toFloat32(image.sample);
      assert.ok(pixels.every((v) => v >= -1 && v <= 1));
    });

    it('stays tame over 50 DDIM steps, and the prompt and step count change the result', async () => {
      const s = await openSessions(folders[variant]);
      const apple = await ddim(s, spec, 'a red apple', 50);
      const rocket = await ddim(s, spec, 'a rocket launch into space at night', 50);
      const fewSteps = await ddim(s, spec, 'a red apple', 10);
      for (const r of [apple, rocket, fewSteps]) {
        assert.ok(isFinite32(r.latents));
        assert.ok(r.peak < 10, `latents peak at ${r.peak}`);
      }
      const diff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => m + Math.abs(v - b[i]), 0) / a.length;
      assert.ok(diff(apple.latents, rocket.latents) > 0.01, 'prompts differ');
      assert.ok(diff(apple.latents, fewSteps.latents) > 1e-3, 'step counts differ');
      const image = await s.vae.run({ latent_sample: floatTensor(spec.float, apple.latents.map((v) => v / 0.18215), [1, 4, 8, 8]) });
      assert.ok(toFloat32(image.sample).every((v) => v >= -1 && v <= 1));
    });

    it(spec.unetExternalData ? `keeps UNet weights external in unet/${spec.unetExternalData}` : 'keeps UNet weights inline', () => {
      const unetDir = path.join(folders[variant], 'unet');
      const model = onnx.ModelProto.decode(readFileSync(path.join(unetDir, 'model.onnx')));
      const external = model.graph!.initializer!.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
      if (!spec.unetExternalData) {
        assert.equal(external.length, 0);
        return;
      }
      const dataFile = path.join(unetDir, spec.unetExternalData);
      const modelSize = statSync(path.join(unetDir, 'model.onnx')).size;
      assert.ok(modelSize < 4096, `model.onnx is ${modelSize} bytes`);
      assert.ok(statSync(dataFile).size > 2 * modelSize);
      assert.ok(external.length >= 2);
      for (const t of external) {
        const entries = Object.fromEntries(t.externalData!.map((e) => [e.key, e.value]));
        assert.equal(entries.location, spec.unetExternalData);
        assert.ok(Number(entries.offset) + Number(entries.length) <= statSync(dataFile).size);
        assert.equal(t.rawData!.length, 0);
      }
    });
  });
}

describe('fixture tokenizers', () => {
  it('tokenizer.json loads in @huggingface/tokenizers and encodes like CLIP', async () => {
    const json = JSON.parse(readFileSync(path.join(folders.optimum, 'tokenizer/tokenizer.json'), 'utf8'));
    const config = JSON.parse(readFileSync(path.join(folders.optimum, 'tokenizer/tokenizer_config.json'), 'utf8'));
    const tok = new (await loadTokenizers()).Tokenizer(json, config);
    const e = tok.encode('A red   Apple');
    assert.deepEqual(e.tokens, [BOS, 'a</w>', 'red</w>', 'apple</w>', EOS]);
    assert.equal(e.ids[1], 320); // 'a</w>' has the same id as in openai/clip's vocabulary
    assert.deepEqual(tok.encode('cat rocket').tokens, [BOS, 'cat</w>', 'rocket</w>', EOS]);
    assert.deepEqual(tok.encode('zebra!').tokens.slice(-2), ['!</w>', EOS]); // unseen words fall back to pieces
    assert.equal(tok.decode(tok.encode('a cat, riding a rocket').ids, { skip_special_tokens: true }), 'a cat, riding a rocket');
  });

  it('vocab.json + merges.txt match tokenizer.json and hold the byte alphabet', () => {
    const dir = path.join(folders['diffusers-script'], 'tokenizer');
    const vocab: Record<string, number> = JSON.parse(readFileSync(path.join(dir, 'vocab.json'), 'utf8'));
    const merges = readFileSync(path.join(dir, 'merges.txt'), 'utf8').trimEnd().split('\n');
    assert.equal(merges[0], '#version: 0.2');
    const json = JSON.parse(readFileSync(path.join(folders.optimum, 'tokenizer/tokenizer.json'), 'utf8'));
    assert.deepEqual(vocab, json.model.vocab);
    assert.deepEqual(merges.slice(1), json.model.merges);
    const ids = Object.values(vocab);
    assert.deepEqual(new Set(ids).size, ids.length);
    assert.equal(vocab[EOS], ids.length - 1);
    assert.equal(vocab[BOS], ids.length - 2);
    assert.ok(merges.length > 200);
    const base = Object.keys(vocab).slice(0, 512);
    assert.equal(base.filter((t) => t.endsWith('</w>')).length, 256);
    assert.equal(vocab['!'], 0);
  });
});

describe('broken fixtures', () => {
  const load = (dir: string) => ort.InferenceSession.create(path.join(dir, 'unet/model.onnx'));

  it('are generated for every kind', async () => {
    for (const kind of BROKEN_KINDS) assert.ok(existsSync(await makeBrokenFixture(kind)), kind);
  });
  it('not-a-model has no model_index.json', async () => {
    assert.ok(!existsSync(path.join(await makeBrokenFixture('not-a-model'), 'model_index.json')));
  });
  it('missing-unet lacks unet/model.onnx but keeps the rest', async () => {
    const dir = await makeBrokenFixture('missing-unet');
    assert.ok(!existsSync(path.join(dir, 'unet/model.onnx')));
    assert.ok(existsSync(path.join(dir, 'model_index.json')));
  });
  it('truncated-unet fails to load', async () => {
    await assert.rejects(load(await makeBrokenFixture('truncated-unet')));
  });
  it('missing-external-data fails to load', async () => {
    await assert.rejects(load(await makeBrokenFixture('missing-external-data')), /model\.onnx_data|external|No such file|open/i);
  });
  it('wrong-input-name loads with x instead of sample', async () => {
    const s = await load(await makeBrokenFixture('wrong-input-name'));
    assert.deepEqual(s.inputNames, ['x', 'timestep', 'encoder_hidden_states']);
  });
  it('wrong-sample-rank loads with a rank-3 sample', async () => {
    const s = await load(await makeBrokenFixture('wrong-sample-rank'));
    assert.equal(metadata(s, 'inputMetadata')[0].rank, 3);
  });
});

describe('server/onnx writer', () => {
  it('is deterministic for a seed', () => {
    const spec = { float: 'float32', timestep: { dtype: 'float32', rank: 0 }, dims: OPTIMUM_DIMS } as const;
    assert.deepEqual(unet(spec, new Rng(9)).toBytes(), unet(spec, new Rng(9)).toBytes());
  });

  it('converts float16 with round-to-nearest-even', () => {
    const cases: [number, number][] = [[0, 0], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [1e6, 0x7c00], [2 ** -24, 0x0001], [2 ** -26, 0], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [0.1, 0x2e66]];
    for (const [v, bits] of cases) assert.equal(toHalfBits(v), bits, `toHalf(${v})`);
    assert.ok(Number.isNaN(fromHalfBits(toHalfBits(NaN))));
    for (const v of [0.5, -3.25, 1024, 6.103515625e-5]) assert.equal(fromHalfBits(toHalfBits(v)), v);
  });

  it('writes a policy-shaped graph (attention pooling + MLP) that matches a JS reference', async () => {
    // logits = W2 . gelu(W1 . sum_s softmax_s(x.q) x_s + b1) with GELU via Erf (Gelu is opset 20).
    const rng = new Rng(11);
    const [S, D, H, K] = [5, 8, 6, 3];
    const q = rng.normals(D, 1), w1 = rng.normals(D * H, 0.5), b1 = rng.normals(H, 0.1), w2 = rng.normals(H * K, 0.5);
    const b = new GraphBuilder('policy');
    const x = b.input('features', 'float32', ['batch', 'tokens', D]);
    const scores = b.op('MatMul', [x, b.constant(tensor('float32', [D, 1], q))]);
    const weights = b.op('Softmax', [scores], { axis: attr.int(1) });
    const axes = b.constant(tensor('int64', [1], [1]));
    const pooled = b.op('ReduceSum', [b.op('Mul', [x, weights]), axes], { keepdims: attr.int(0) });
    const h = b.op('Add', [b.op('MatMul', [pooled, b.constant(tensor('float32', [D, H], w1))]), b.constant(tensor('float32', [H], b1))]);
    const half = b.constant(tensor('float32', [], [0.5])), one = b.constant(tensor('float32', [], [1])), rsqrt2 = b.constant(tensor('float32', [], [Math.SQRT1_2]));
    const gelu = b.op('Mul', [b.op('Mul', [h, half]), b.op('Add', [one, b.op('Erf', [b.op('Mul', [h, rsqrt2])])])]);
    b.op('MatMul', [gelu, b.constant(tensor('float32', [H, K], w2))], {}, 'logits');
    b.output('logits', 'float32', ['batch', K]);
    const session = await ort.InferenceSession.create(b.toBytes({ opset: 17 }));
    const feats = rng.normals(S * D, 1);
    const got = (await session.run({ features: new ort.Tensor('float32', feats, [1, S, D]) })).logits.data as Float32Array;

    const s = Array.from({ length: S }, (_, i) => feats.slice(i * D, (i + 1) * D).reduce((a, v, j) => a + v * q[j], 0));
    const e = s.map((v) => Math.exp(v - Math.max(...s)));
    const p = Array.from({ length: D }, (_, j) => e.reduce((a, ei, i) => a + (ei / e.reduce((x, y) => x + y)) * feats[i * D + j], 0));
    const erf = (z: number) => { // Abramowitz-Stegun 7.1.26, |error| < 1.5e-7
      const t = 1 / (1 + 0.3275911 * Math.abs(z));
      const y = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-z * z);
      return Math.sign(z) * y;
    };
    const g = Array.from({ length: H }, (_, k) => {
      const v = p.reduce((a, pj, j) => a + pj * w1[j * H + k], b1[k]);
      return 0.5 * v * (1 + erf(v * Math.SQRT1_2));
    });
    const want = Array.from({ length: K }, (_, k) => g.reduce((a, gi, i) => a + gi * w2[i * K + k], 0));
    want.forEach((v, k) => assert.ok(Math.abs(v - got[k]) < 1e-4, `logit ${k}: ${got[k]} vs ${v}`));
  });

  it('rejects undefined inputs, duplicate names and non-integer int attributes', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    assert.throws(() => b.op('Relu', ['nope']), /not defined/);
    assert.throws(() => b.input('x', 'float32', [2]), /defined twice/);
    b.op('LeakyRelu', [x], { alpha: attr.int(0.5) }, 'y');
    b.output('y', 'float32', [2]);
    assert.throws(() => b.toBytes(), /not an integer/);
  });

  it('keeps small initializers inline and writes big ones to the external file', async () => {
    const dir = path.join(__dirname, '../fixtures/models/.writer-test');
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [null, 300]);
    const big = b.constant(tensor('float32', [300], new Float32Array(300).fill(2)));
    const small = b.constant(tensor('float32', [1], [1]));
    b.op('Add', [b.op('Mul', [x, big]), small], {}, 'y');
    b.output('y', 'float32', [null, 300]);
    const saved = await b.save(path.join(dir, 'model.onnx'), { externalData: { location: 'weights.pb' } });
    assert.equal(saved.externalBytes, 1200);
    const session = await ort.InferenceSession.create(saved.modelPath);
    assert.deepEqual(session.inputMetadata[0], { name: 'x', isTensor: true, type: 'float32', shape: ['', 300] }); // an unknown dim reads back as ''
    const y = await session.run({ x: new ort.Tensor('float32', new Float32Array(300).fill(3), [1, 300]) });
    assert.ok((y.y.data as Float32Array).every((v) => v === 7));
  });
});
