// Calibrations are per model x provider x runtime: changing the model's weights, the provider a
// part runs on, the runtime version or the shape gives a new cache key, so a stale figure is never
// shown; `adadiff calibrate` measures again and replaces the cached one.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CalibrationStore, calibrationKey, getCalibration } from '../../server/adadiff/cost';
import { openModelFolder } from '../../server/model/folder';
import { loadModel, type LoadedModel } from '../../server/model/session';
import { buildOnce, CLI } from '../build';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { tempDir } from '../temp-dirs';

const tmp = tempDir('adadiff-calibration-');
const RUNTIME = 'onnxruntime-node 1.30.0';
let modelDir: string;

before(async () => {
  const fixtures = await ensureFixtures();
  modelDir = join(tmp, 'model');
  cpSync(fixtures.optimum, modelDir, { recursive: true });
});

async function open(dir: string): Promise<LoadedModel> {
  return loadModel(await openModelFolder(dir), { providers: ['cpu'] });
}

describe('calibration keys', () => {
  test('the same model, provider, runtime and shape give the same key', async () => {
    const [a, b] = [await open(modelDir), await open(modelDir)];
    try {
      assert.equal(await calibrationKey(a, { guided: true }, RUNTIME), await calibrationKey(b, { guided: true }, RUNTIME));
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });

  test('changing the model file gives a new key, and the cache measures again', async () => {
    const store = new CalibrationStore(join(tmp, 'cache', 'calibration.json'));
    const before = await open(modelDir);
    const first = await getCalibration(before, { guided: true }, store, RUNTIME);
    await before.dispose();

    // Same size, different weights (a retrained export): only the content differs.
    const weights = join(modelDir, 'unet', 'model.onnx_data');
    const bytes = readFileSync(weights);
    bytes[0] ^= 0xff;
    writeFileSync(weights, bytes);
    const later = new Date(Date.now() + 5_000);
    utimesSync(weights, later, later);

    const after = await open(modelDir);
    try {
      const key = await calibrationKey(after, { guided: true }, RUNTIME);
      assert.notEqual(key, first.key);
      assert.equal(await store.get(key), undefined, 'nothing cached for the new weights');
      const second = await getCalibration(after, { guided: true }, store, RUNTIME);
      assert.equal(second.key, key);
      const file = JSON.parse(readFileSync(join(tmp, 'cache', 'calibration.json'), 'utf8'));
      assert.deepEqual(Object.keys(file.entries).sort(), [first.key, key].sort());
    } finally {
      await after.dispose();
    }
  });

  test('a different provider, runtime version or shape gives a new key', async () => {
    const model = await open(modelDir);
    try {
      const base = await calibrationKey(model, { guided: true }, RUNTIME);
      const onGpu: LoadedModel = { ...model, providers: { ...model.providers, unet: { used: 'webgpu', tried: [{ name: 'webgpu' }] } } };
      const textOnGpu: LoadedModel = { ...model, providers: { ...model.providers, textEncoder: { used: 'cuda', tried: [{ name: 'cuda' }] } } };
      const keys = [
        base,
        await calibrationKey(onGpu, { guided: true }, RUNTIME),
        await calibrationKey(textOnGpu, { guided: true }, RUNTIME),
        await calibrationKey(model, { guided: true }, 'onnxruntime-node 1.31.0'),
        await calibrationKey(model, { guided: false }, RUNTIME),
        await calibrationKey(model, { guided: true, width: 32, height: 32 }, RUNTIME),
      ];
      assert.equal(new Set(keys).size, keys.length, `every change is a new key: ${keys.join(' ')}`);
    } finally {
      await model.dispose();
    }
  });
});

describe('adadiff calibrate', () => {
  const run = promisify(execFile);
  const env = { ...process.env, ADADIFF_CACHE_DIR: join(tmp, 'cli-cache'), ADADIFF_PROVIDERS: 'cpu' };

  test('measures, caches, and measures again on the next run', async () => {
    buildOnce();
    const first = JSON.parse((await run(process.execPath, [CLI, 'calibrate', '--model', modelDir, '--json'], { env })).stdout);
    assert.equal(first.calibration.provider, 'cpu');
    for (const part of ['textEncoderMs', 'unetMs', 'vaeMs']) assert.ok(first.calibration[part] > 0, part);
    assert.equal(first.previous, null);
    assert.ok(first.estimates.length > 0);
    const second = JSON.parse((await run(process.execPath, [CLI, 'calibrate', '--model', modelDir, '--json'], { env })).stdout);
    assert.equal(second.calibration.key, first.calibration.key);
    assert.notEqual(second.calibration.measuredAt, first.calibration.measuredAt, 'measured again, not read from the cache');
    assert.deepEqual(second.previous, first.calibration);
    const cached = JSON.parse(readFileSync(join(tmp, 'cli-cache', 'calibration.json'), 'utf8'));
    assert.deepEqual(cached.entries[first.calibration.key], second.calibration, 'the new figure replaced the old');

    const text = (await run(process.execPath, [CLI, 'calibrate', '--model', modelDir], { env })).stdout;
    assert.match(text, /UNet call \(batch 2\)\s+cpu\s+[\d.]+\s+[\d.]+/);
    assert.match(text, /estimates \(\d+x\d+\): \d+ steps/);
  });
});
