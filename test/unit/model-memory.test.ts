// The memory check before loading, the split between the text part (what the language server's
// main thread holds) and the UNet and VAE, and graphs whose external data reaches past 2 GB.
import assert from 'node:assert/strict';
import { cpSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { onnx } from 'onnx-proto';
import { ModelError } from '../../server/model/errors';
import { openModelFolder } from '../../server/model/folder';
import { checkMemory, FP16_ON_CPU, MEMORY_MARGIN, MEMORY_SLACK_BYTES, memoryNeed } from '../../server/model/memory';
import { weightTypes } from '../../server/onnx/weight-types';
import { liveSessions, loadModel, loadTextModel, loadTextPart } from '../../server/model/session';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { tempDir } from '../temp-dirs';

const GB = 1024 ** 3;
const tmp = tempDir('adadiff-memory-');

/** A copy of a fixture whose UNet's external data file is `bytes` long: a sparse tail, so it costs no disk. */
async function withUnetData(bytes: number): Promise<string> {
  const dir = path.join(tmp, `unet-${bytes}`);
  cpSync((await ensureFixtures()).optimum, dir, { recursive: true });
  await fs.truncate(path.join(dir, 'unet', 'model.onnx_data'), bytes);
  return dir;
}

/**
 * A copy of a fixture whose UNet weights sit `hole` bytes into their external data file: every
 * offset in the graph is past 2 GB, where 32-bit offsets would wrap.
 */
async function withFarExternalData(hole: number): Promise<string> {
  const dir = path.join(tmp, `far-${hole}`);
  cpSync((await ensureFixtures()).optimum, dir, { recursive: true });
  const graphFile = path.join(dir, 'unet', 'model.onnx');
  const dataFile = path.join(dir, 'unet', 'model.onnx_data');
  const proto = onnx.ModelProto.decode(await fs.readFile(graphFile));
  let moved = 0;
  for (const init of proto.graph!.initializer ?? []) {
    for (const entry of init.externalData ?? []) {
      if (entry.key === 'offset') {
        entry.value = String(Number(entry.value) + hole);
        moved++;
      }
    }
  }
  assert.ok(moved > 0, 'the fixture UNet keeps its weights in external data');
  await fs.writeFile(graphFile, onnx.ModelProto.encode(proto).finish());
  const data = await fs.readFile(dataFile);
  const handle = await fs.open(dataFile, 'w');
  try {
    await handle.write(data, 0, data.length, hole);
  } finally {
    await handle.close();
  }
  return dir;
}

/**
 * A copy of the fp16 fixture whose UNet declares `bytes` more float16 weights in external data (a
 * sparse tail of model.onnx_data): the memory check reads the declaration, onnxruntime never gets there.
 */
async function withFloat16Weights(bytes: number): Promise<string> {
  const dir = path.join(tmp, `fp16-${bytes}`);
  cpSync((await ensureFixtures()).fp16, dir, { recursive: true });
  const graphFile = path.join(dir, 'unet', 'model.onnx');
  const dataFile = path.join(dir, 'unet', 'model.onnx_data');
  const offset = (await fs.stat(dataFile)).size;
  const proto = onnx.ModelProto.decode(await fs.readFile(graphFile));
  proto.graph!.initializer!.push(
    onnx.TensorProto.create({
      name: 'padding',
      dataType: onnx.TensorProto.DataType.FLOAT16,
      dims: [bytes / 2],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: 'model.onnx_data' },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(bytes) },
      ],
    }),
  );
  await fs.writeFile(graphFile, onnx.ModelProto.encode(proto).finish());
  await fs.truncate(dataFile, offset + bytes);
  return dir;
}

describe('weight types, read from the wire format', () => {
  test('counts each initializer by its element type, inline or in external data, as onnx-proto decodes it', async () => {
    const fixtures = await ensureFixtures();
    for (const file of [path.join(fixtures.fp16, 'unet', 'model.onnx'), path.join(fixtures.optimum, 'text_encoder', 'model.onnx'), 'models/default/unet/model.onnx']) {
      const proto = onnx.ModelProto.decode(await fs.readFile(file));
      const expected: Record<string, number> = {};
      for (const init of proto.graph!.initializer!) {
        const type = init.dataType === 10 ? 'float16' : init.dataType === 1 ? 'float32' : init.dataType === 7 ? 'int64' : `other ${init.dataType}`;
        const external = init.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
        const size = external ? Number(init.externalData!.find((e) => e.key === 'length')!.value) : init.rawData!.length;
        expected[type] = (expected[type] ?? 0) + size;
      }
      assert.deepEqual((await weightTypes(file)).bytes, expected, file);
    }
    assert.ok(((await weightTypes(path.join(fixtures.fp16, 'unet', 'model.onnx'))).bytes.float16 ?? 0) > 0);
  });

  test('a file that is not ONNX, or is cut short, is an error naming it', async () => {
    const bad = path.join(tmp, 'notes.onnx');
    await fs.writeFile(bad, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x7f, 1, 2]));
    await assert.rejects(weightTypes(bad), /notes\.onnx is not a readable ONNX model: field 1 runs past its message/);
    // A graph followed by a long run of zeros (a sparse tail): refused at the first zero, not walked.
    const padded = path.join(tmp, 'padded.onnx');
    await fs.copyFile(path.join((await ensureFixtures()).optimum, 'text_encoder', 'model.onnx'), padded);
    await fs.truncate(padded, 64 * GB);
    const started = performance.now();
    await assert.rejects(weightTypes(padded), /padded\.onnx is not a readable ONNX model: no field at byte \d+/);
    assert.ok(performance.now() - started < 5000);
  });
});

describe('the memory check', () => {
  test('sums the ONNX files and their external data, with the stated margin', async () => {
    const folder = await openModelFolder((await ensureFixtures()).optimum);
    const files = [folder.unet.onnx, ...folder.unet.externalData];
    assert.ok(folder.unet.externalData.length > 0);
    let bytes = 0;
    for (const f of files) bytes += (await fs.stat(f)).size;
    const need = await memoryNeed([folder.unet]);
    assert.equal(need.fileBytes, bytes);
    assert.equal(need.neededBytes, Math.ceil(bytes * MEMORY_MARGIN) + MEMORY_SLACK_BYTES);
  });

  test('float16 weights cost FP16_ON_CPU per byte on the CPU and their file size on a GPU', async () => {
    const folder = await openModelFolder((await ensureFixtures()).fp16);
    const types = await weightTypes(folder.unet.onnx);
    const cpu = await memoryNeed([folder.unet], 'cpu');
    const gpu = await memoryNeed([folder.unet], 'gpu');
    assert.equal(cpu.float16Bytes, types.bytes.float16);
    assert.equal(cpu.neededBytes, Math.ceil((cpu.fileBytes - cpu.float16Bytes) * MEMORY_MARGIN + cpu.float16Bytes * FP16_ON_CPU) + MEMORY_SLACK_BYTES);
    assert.equal(gpu.float16Bytes, 0);
    assert.equal(gpu.neededBytes, Math.ceil(gpu.fileBytes * MEMORY_MARGIN) + MEMORY_SLACK_BYTES);
  });

  test('an fp16 model that fits in memory as float16 but not as float32: refused on the CPU, named as float16', async () => {
    const folder = await openModelFolder(await withFloat16Weights(6 * GB));
    const machine = { totalBytes: 16 * GB, availableBytes: 14 * GB };
    await assert.rejects(checkMemory([folder.unet], 'the UNet', machine, 'cpu'), (err: Error) => {
      assert.ok(err instanceof ModelError);
      assert.match(err.message, /too large for this machine: the UNet is 6\.0 GB on disk, about 2\d\.\d GB in memory once loaded \(6\.0 GB of float16 weights, which the CPU runs as float32\), and it has 16\.0 GB in all\. Use a GPU provider/);
      return true;
    });
    const need = await checkMemory([folder.unet], 'the UNet', machine, 'gpu');
    assert.ok(need.neededBytes < 8 * GB);
  });

  test('loadModel on the CPU refuses such a model before onnxruntime opens it', async () => {
    // Half the machine: it would fit as float16, not as float32.
    const bytes = 2 * Math.floor(os.totalmem() / 4);
    assert.ok(bytes * FP16_ON_CPU > os.totalmem());
    const folder = await openModelFolder(await withFloat16Weights(bytes));
    const before = liveSessions();
    await assert.rejects(loadModel(folder, { providers: ['cpu'] }), /unet[\\/]model\.onnx: is too large for this machine: the UNet and VAE are [\d.]+ GB on disk, about [\d.]+ GB in memory once loaded \([\d.]+ GB of float16 weights/);
    assert.deepEqual(liveSessions(), before);
  });

  test('a model bigger than the machine: the error names the sizes and the machine\'s total', async () => {
    const folder = await openModelFolder(await withUnetData(20 * GB));
    await assert.rejects(checkMemory([folder.unet], 'the UNet', { totalBytes: 16 * GB, availableBytes: 12 * GB }), (err: Error) => {
      assert.ok(err instanceof ModelError);
      assert.equal(err.file, folder.unet.onnx);
      assert.match(err.message, /too large for this machine: the UNet is 20\.0 GB on disk, about 24\.\d GB in memory once loaded, and it has 16\.0 GB in all/);
      return true;
    });
  });

  test('a model that fits the machine but not its free memory says to close programs', async () => {
    const folder = await openModelFolder(await withUnetData(4 * GB));
    await assert.rejects(checkMemory([folder.unet], 'the UNet', { totalBytes: 16 * GB, availableBytes: 3 * GB }), /does not fit in the memory available now: the UNet is 4\.0 GB on disk.*3\.0 GB of this machine's 16\.0 GB are available\. Close other programs/);
    const need = await checkMemory([folder.unet], 'the UNet', { totalBytes: 16 * GB, availableBytes: 8 * GB });
    assert.equal(need.fileBytes, 4 * GB + (await fs.stat(folder.unet.onnx)).size);
  });

  test('loadModel refuses before onnxruntime opens the UNet, and keeps nothing open', async () => {
    const folder = await openModelFolder(await withUnetData(2 * os.totalmem()));
    const before = liveSessions();
    await assert.rejects(loadModel(folder, { providers: ['cpu'] }), (err: Error) => {
      assert.ok(err instanceof ModelError, String(err));
      assert.match(err.message, /unet[\\/]model\.onnx: is too large for this machine: the UNet and VAE are [\d.]+ GB on disk/);
      return true;
    });
    assert.deepEqual(liveSessions(), before, 'the text encoder opened before the check is released again');
  });
});

describe('the text part alone', () => {
  test('loadTextModel opens the text encoder only; a LoadedModel around it opens the UNet and VAE once', async () => {
    const folder = await openModelFolder((await ensureFixtures()).fp16);
    const base = liveSessions();
    const textModel = await loadTextModel(folder, { providers: ['cpu'] });
    const part = await loadTextPart(folder, { providers: ['cpu'] });
    let full;
    try {
      assert.deepEqual(liveSessions(), { ...base, textEncoder: base.textEncoder + 2 });
      full = await loadModel(folder, { providers: ['cpu'], text: part });
      assert.deepEqual(liveSessions(), { ...base, textEncoder: base.textEncoder + 2, unet: base.unet + 1, vaeDecoder: base.vaeDecoder + 1, vaeEncoder: base.vaeEncoder + (folder.vaeEncoder ? 1 : 0) });
      // The same features either way, and the sizes hovers use agree with the UNet's.
      const prompts = ['a red apple'];
      assert.deepEqual((await textModel.encodeText(prompts)).hidden, (await full.encodeText(prompts)).hidden);
      assert.deepEqual(textModel.layout, full.layout);
      assert.deepEqual(textModel.latentShape(), full.latentShape());
      assert.equal(textModel.textDim, full.textDim);
      const [c, h, w] = full.latentShape();
      const text = await full.encodeText(prompts);
      const eps = await full.unet(new Float32Array(c * h * w).fill(0.5), [1, c, h, w], 500, text);
      assert.ok(eps.every(Number.isFinite));
    } finally {
      await full?.dispose();
      await part.dispose();
      await textModel.dispose();
    }
    assert.deepEqual(liveSessions(), base, 'a LoadedModel built around a text part leaves that part to its owner, which releases it');
  });
});

describe('external data past 2 GB', () => {
  test('weights at offsets beyond 2^31 load and give the same UNet output', async () => {
    const plain = await openModelFolder((await ensureFixtures()).optimum);
    const far = await openModelFolder(await withFarExternalData(2.5 * GB));
    assert.ok((await fs.stat(far.unet.externalData[0])).size > 2.5 * GB);
    const [a, b] = [await loadModel(plain, { providers: ['cpu'] }), await loadModel(far, { providers: ['cpu'] })];
    try {
      const [c, h, w] = a.latentShape();
      const text = await a.encodeText(['a lighthouse']);
      const sample = Float32Array.from({ length: c * h * w }, (_, i) => Math.cos(i));
      assert.deepEqual(await b.unet(sample, [1, c, h, w], 321, text), await a.unet(sample, [1, c, h, w], 321, text));
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });
});
