import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodePng, encodePng, readPngText } from '../../server/pipeline/png';
import { formatParameters, parseParameters } from '../../server/pipeline/parameters';
import { GaussianNoise, validateSeed } from '../../server/pipeline/noise';

const image = { width: 3, height: 2, data: Uint8Array.from({ length: 18 }, (_, i) => i * 13) };

test('PNG round-trips pixels and keeps a Latin-1 text chunk as tEXt', () => {
  const png = encodePng(image, { parameters: 'café\nSteps: 5' });
  assert.deepEqual(decodePng(png), image);
  assert.equal(readPngText(png).parameters, 'café\nSteps: 5');
  assert.ok(png.includes(Buffer.from('tEXtparameters')));
});

test('text outside Latin-1 goes into iTXt as UTF-8', () => {
  const text = '🍎 りんご\nSteps: 10';
  const png = encodePng(image, { parameters: text });
  assert.ok(png.includes(Buffer.from('iTXtparameters')));
  assert.equal(readPngText(png).parameters, text);
});

test('same pixels and text give the same bytes', () => {
  assert.ok(encodePng(image, { parameters: 'x' }).equals(encodePng(image, { parameters: 'x' })));
});

test('wrong buffer length is refused', () => {
  assert.throws(() => encodePng({ width: 2, height: 2, data: new Uint8Array(5) }), /expected 2x2x3/);
});

test('parameters text follows A1111 and parses back', () => {
  const text = formatParameters({
    prompt: 'a red apple, shiny',
    negativePrompt: 'blurry',
    steps: 15,
    scheduler: 'dpmpp-2m-karras',
    guidance: 7.5,
    seed: 42,
    width: 64,
    height: 64,
    modelHash: '0123456789abcdef',
    modelName: 'default',
    predictedSteps: 15,
    baselineSteps: 50,
  });
  assert.equal(
    text,
    'a red apple, shiny\nNegative prompt: blurry\nSteps: 15, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 42, ' +
      'Size: 64x64, Model hash: 0123456789, Model: default, AdaDiff predicted steps: 15, AdaDiff baseline steps: 50',
  );
  const parsed = parseParameters(text);
  assert.equal(parsed.prompt, 'a red apple, shiny');
  assert.equal(parsed.negativePrompt, 'blurry');
  assert.equal(parsed.fields['Steps'], '15');
  assert.equal(parsed.fields['Sampler'], 'DPM++ 2M Karras');
  assert.equal(parsed.fields['AdaDiff baseline steps'], '50');
});

test('values with commas or colons are quoted and parse back', () => {
  const text = formatParameters({
    prompt: 'p', steps: 5, scheduler: 'ddim', guidance: 1, seed: 0, width: 8, height: 8,
    modelHash: 'abc', modelName: 'my, model: v2', baselineSteps: 50,
  });
  assert.equal(parseParameters(text).fields['Model'], 'my, model: v2');
});

test('seeded noise is reproducible, standard normal, and seeds differ', () => {
  const a = new GaussianNoise(7).next(20000);
  assert.deepEqual(a, new GaussianNoise(7).next(20000));
  assert.notDeepEqual(a.subarray(0, 10), new GaussianNoise(8).next(10));
  const mean = a.reduce((s, x) => s + x, 0) / a.length;
  const variance = a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length;
  assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.05, `variance ${variance}`);
});

test('noise values are pinned: the seed stream is a file format', () => {
  // Changing the PRNG changes every image users made from a seed; this catches it.
  const first = Array.from(new GaussianNoise(1234).next(4), (x) => Number(x.toFixed(6)));
  assert.deepEqual(first, PINNED);
});

test('seeds outside uint32 are refused', () => {
  assert.throws(() => validateSeed(-1), /seed must be an integer/);
  assert.throws(() => validateSeed(2 ** 32), /seed must be an integer/);
  assert.throws(() => validateSeed(1.5), /seed must be an integer/);
});

// From an independent Python implementation of splitmix32 + xoshiro128** + Box-Muller.
const PINNED = [-0.764659, -1.008764, -0.135241, 1.509435];
