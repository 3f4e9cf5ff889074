// Opening and running every fixture flavour, the error for each kind of broken folder, and
// execution-provider fallback on a machine without GPU providers.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { BROKEN_KINDS, VARIANTS, ensureFixtures, makeBrokenFixture, type BrokenKind } from '../fixtures/make-fixtures';
import { ModelError } from '../../server/model/errors';
import { openModelFolder } from '../../server/model/folder';
import { CUDA_INSTALL_COMMAND, defaultProviders, providerAvailability } from '../../server/model/providers';
import { loadModel } from '../../server/model/session';
import { tempDirAsync } from '../temp-dirs';

for (const variant of VARIANTS) {
  test(`${variant}: loads and runs text encoder, UNet and VAE once`, async () => {
    const dir = (await ensureFixtures())[variant];
    const folder = await openModelFolder(dir);
    assert.equal(folder.dir, dir);
    assert.ok(folder.name.length > 0);
    const model = await loadModel(folder, { providers: ['cpu'] });
    try {
      assert.equal(model.providers.unet.used, 'cpu');
      const [c, h, w] = model.latentShape();
      assert.deepEqual(model.latentShape(w * model.vaeScaleFactor, h * model.vaeScaleFactor), [c, h, w]);

      assert.equal(model.tokenizer.encode('a red apple').ids.length, model.tokenizer.maxLength);
      const text = await model.encodeText(['', 'a red apple']);
      assert.deepEqual(text.dims, [2, model.tokenizer.maxLength, model.textDim]);
      assert.equal(text.hidden.length, 2 * model.tokenizer.maxLength * model.textDim);
      assert.ok(text.hidden.every(Number.isFinite));

      const sample = Float32Array.from({ length: 2 * c * h * w }, (_, i) => Math.sin(i));
      const eps = await model.unet(sample, [2, c, h, w], 499, text);
      assert.equal(eps.length, sample.length);
      assert.ok(eps.every(Number.isFinite));

      const image = await model.decode(eps.subarray(0, c * h * w), [1, c, h, w]);
      assert.deepEqual(image.dims, [1, 3, h * model.vaeScaleFactor, w * model.vaeScaleFactor]);
      assert.equal(image.data.length, 3 * h * w * model.vaeScaleFactor ** 2);
      assert.ok(image.data.every(Number.isFinite));

      if (model.encodeImage) {
        const latents = await model.encodeImage(image.data, image.dims);
        assert.deepEqual(latents.dims, [1, c, h, w]);
      }
    } finally {
      await model.dispose();
    }
  });
}

test('the hash is sha256 of the scheduler config, tokenizer, text encoder, UNet and VAE decoder files with external data, cached', async () => {
  const folder = await openModelFolder((await ensureFixtures()).optimum);
  assert.equal(folder.unet.externalData.length, 1);
  assert.equal(path.basename(folder.unet.externalData[0]), 'model.onnx_data');
  const sha = createHash('sha256');
  const tokenizer = ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json']
    .map((f) => path.join(folder.tokenizerDir, f))
    .filter((f) => existsSync(f));
  assert.ok(tokenizer.length > 0);
  const parts = [folder.textEncoder, folder.unet, folder.vaeDecoder];
  const files = [path.join(folder.dir, 'scheduler', 'scheduler_config.json'), ...tokenizer, ...parts.flatMap((p) => [p.onnx, ...p.externalData])];
  for (const file of files) sha.update(await fs.readFile(file));
  const expected = sha.digest('hex');
  assert.equal(await folder.hash(), expected);
  assert.equal(await folder.hash(), expected);
  assert.match(expected, /^[0-9a-f]{64}$/);

  // Another timestep spacing makes other images from the same weights: the hash must change.
  const copy = await tempDirAsync('adadiff-model-');
  await fs.cp(folder.dir, copy, { recursive: true });
  const configFile = path.join(copy, 'scheduler', 'scheduler_config.json');
  const config = JSON.parse(await fs.readFile(configFile, 'utf8'));
  await fs.writeFile(configFile, JSON.stringify({ ...config, timestep_spacing: config.timestep_spacing === 'trailing' ? 'leading' : 'trailing' }));
  assert.notEqual(await (await openModelFolder(copy)).hash(), expected);
  await fs.rm(copy, { recursive: true });

  const script = await openModelFolder((await ensureFixtures())['diffusers-script']);
  assert.deepEqual(script.unet.externalData.map((f) => path.basename(f)), ['weights.pb']);
});

test('configs: VAE scaling factor defaults to 0.18215, unet sample size sets the default latent', async () => {
  const folder = await openModelFolder((await ensureFixtures()).optimum);
  const copy = await tempDirAsync('adadiff-model-');
  await fs.cp(folder.dir, copy, { recursive: true });
  await fs.rm(path.join(copy, 'vae_decoder', 'config.json'));
  const bare = await openModelFolder(copy);
  assert.equal(bare.vaeDecoder.scalingFactor, 0.18215);
  assert.equal(bare.vaeDecoder.scaleFactor, 8);

  await fs.writeFile(path.join(copy, 'vae_decoder', 'config.json'), JSON.stringify({ scaling_factor: 0.13025, latent_channels: 4 }));
  await fs.writeFile(path.join(copy, 'unet', 'config.json'), JSON.stringify({ sample_size: 12, in_channels: 4, cross_attention_dim: 32 }));
  const configured = await openModelFolder(copy);
  assert.equal(configured.vaeDecoder.scalingFactor, 0.13025);
  assert.equal(configured.unet.sampleSize, 12);
  const model = await loadModel(configured, { providers: ['cpu'] });
  try {
    assert.deepEqual(model.latentShape(), [4, 12, 12]);
    assert.deepEqual(model.latentShape(128, 64), [4, 8, 16]);
    assert.throws(() => model.latentShape(100, 64), RangeError);
  } finally {
    await model.dispose();
  }

  await fs.writeFile(path.join(copy, 'unet', 'config.json'), JSON.stringify({ sample_size: 'big' }));
  await assert.rejects(openModelFolder(copy), (e: unknown) => e instanceof ModelError && e.file === path.join(copy, 'unet', 'config.json') && /sample_size must be/.test(e.message));
  await fs.writeFile(path.join(copy, 'unet', 'config.json'), '{"sample_size": 64');
  await assert.rejects(openModelFolder(copy), (e: unknown) => e instanceof ModelError && /unet[/\\]config\.json: is not valid JSON/.test(e.message));
});

/** For each broken kind: the file the message must name, and words for the problem. */
const BROKEN: Record<BrokenKind, { file: (dir: string) => string; problem: RegExp }> = {
  'not-a-model': { file: (dir) => dir, problem: /is not a model folder: model_index\.json, .*unet\/model\.onnx.* are missing; a model folder .* holds/ },
  'missing-unet': { file: (dir) => path.join(dir, 'unet', 'model.onnx'), problem: /is missing/ },
  'truncated-unet': { file: (dir) => path.join(dir, 'unet', 'model.onnx'), problem: /is truncated or not an ONNX model \(onnxruntime: .*Protobuf parsing failed/ },
  'missing-external-data': { file: (dir) => path.join(dir, 'unet', 'model.onnx_data'), problem: /is missing: unet\/model\.onnx keeps its weights in this external data file/ },
  'wrong-input-name': { file: (dir) => path.join(dir, 'unet', 'model.onnx'), problem: /has no input for the noisy latents: expected one named sample .*; found inputs x \(float32/ },
  'wrong-sample-rank': { file: (dir) => path.join(dir, 'unet', 'model.onnx'), problem: /input sample for the noisy latents has rank 3 .*; expected rank 4/ },
};

for (const kind of BROKEN_KINDS) {
  test(`broken folder (${kind}): one ModelError naming the file and the problem`, async () => {
    const dir = await makeBrokenFixture(kind);
    const expected = BROKEN[kind];
    await assert.rejects(
      openModelFolder(dir).then((folder) => loadModel(folder, { providers: ['cpu'] })),
      (e: unknown) => {
        assert.ok(e instanceof ModelError, `expected a ModelError, got ${String(e)}`);
        assert.equal(e.file, expected.file(dir));
        assert.ok(e.message.startsWith(`${expected.file(dir)}: `), e.message);
        assert.match(e.problem, expected.problem);
        return true;
      },
    );
  });
}

test('provider fallback: cuda then cpu ends on cpu with the reason cuda was not used', async () => {
  const model = await loadModel(await openModelFolder((await ensureFixtures()).optimum), { providers: ['cuda', 'cpu'] });
  try {
    for (const part of [model.providers.textEncoder, model.providers.unet, model.providers.vaeDecoder]) {
      assert.equal(part.used, 'cpu');
      assert.equal(part.tried.length, 2);
      assert.equal(part.tried[0].name, 'cuda');
      assert.ok(part.tried[0].error && part.tried[0].error.length > 10, 'cuda has a reason');
      assert.deepEqual(part.tried[1], { name: 'cpu' });
    }
    // Where the CUDA provider library is absent (this project's .npmrc skips it), say how to get it.
    const cuda = model.providers.unet.tried[0].error!;
    if (/not installed/.test(cuda)) assert.ok(cuda.includes(CUDA_INSTALL_COMMAND));
  } finally {
    await model.dispose();
  }
});

test('provider fallback: an unknown provider name gets a clear reason; none left is a ModelError', async () => {
  const folder = await openModelFolder((await ensureFixtures()).optimum);
  const model = await loadModel(folder, { providers: ['warp-drive', 'cpu'] });
  try {
    assert.equal(model.providers.unet.used, 'cpu');
    assert.match(model.providers.unet.tried[0].error!, /unknown execution provider "warp-drive"; onnxruntime-node .* offers .*cpu/);
  } finally {
    await model.dispose();
  }
  await assert.rejects(
    loadModel(folder, { providers: ['warp-drive'] }),
    (e: unknown) => e instanceof ModelError && e.file === folder.textEncoder.onnx && /no execution provider could run it: warp-drive: unknown/.test(e.message),
  );
});

test('default provider order per platform ends on cpu', () => {
  assert.deepEqual(defaultProviders('linux'), ['cuda', 'webgpu', 'cpu']);
  assert.deepEqual(defaultProviders('win32'), ['cuda', 'dml', 'webgpu', 'cpu']);
  assert.deepEqual(defaultProviders('darwin'), ['coreml', 'webgpu', 'cpu']);
  const report = providerAvailability(['cpu', 'dml', 'coreml']);
  assert.deepEqual(report[0], { name: 'cpu', available: true });
  if (process.platform === 'linux') {
    assert.match(report[1].reason!, /DirectML is only available on Windows/);
    assert.match(report[2].reason!, /CoreML is only available on macOS/);
  }
});

test('a fixed batch and size is accepted (free dimension overrides)', async () => {
  const folder = await openModelFolder((await ensureFixtures())['diffusers-script']);
  const model = await loadModel(folder, { providers: ['cpu'], shape: { batch: 1, width: 64, height: 64 } });
  try {
    const [c, h, w] = model.latentShape(64, 64);
    const text = await model.encodeText(['apple']);
    const eps = await model.unet(new Float32Array(c * h * w), [1, c, h, w], 1, text);
    assert.equal(eps.length, c * h * w);
  } finally {
    await model.dispose();
  }
});
