// The first-step-aware policy's ground rules: which schedules share their first UNet call, that
// reusing it gives exactly the N-step image, and what its summary holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureFixtures } from '../fixtures/make-fixtures';
import { openModelFolder } from '../../server/model/folder';
import { loadModel, type LoadedModel } from '../../server/model/session';
import { firstUnetCall, generate } from '../../server/pipeline/generate';
import { encodePng } from '../../server/pipeline/png';
import { firstStep, firstStepDim, firstStepFeatureNames, firstStepFeatures, sharedFirstCall } from '../../server/adadiff/first-step';
import { SCHEDULER_NAMES } from '../../server/pipeline/schedulers';
import { tempDir } from '../temp-dirs';

// The fixture model with trailing timestep spacing, as the bundled model and SD-Turbo-era exports ship.
let modelPromise: Promise<LoadedModel> | undefined;
const fixtureModel = () =>
  (modelPromise ??= (async () => {
    const dir = join(tempDir('adadiff-trailing-'), 'model');
    cpSync((await ensureFixtures()).optimum, dir, { recursive: true });
    const file = join(dir, 'scheduler', 'scheduler_config.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), timestep_spacing: 'trailing' }));
    return loadModel(await openModelFolder(dir), { providers: ['cpu'] });
  })());

const CANDIDATES = [4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50];
const config = (spacing: string) => ({ _class_name: 'DDIMScheduler', beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, timestep_spacing: spacing, steps_offset: 1 });

test('trailing spacing: every scheduler starts every schedule with the same call; leading: not all', () => {
  for (const name of SCHEDULER_NAMES) assert.deepEqual(sharedFirstCall(config('trailing'), name, CANDIDATES), { shared: true }, name);
  for (const name of ['ddim', 'euler', 'dpmpp-2m'] as const) {
    const r = sharedFirstCall(config('leading'), name, CANDIDATES);
    assert.equal(r.shared, false, name);
    assert.match(r.reason!, /the 4-step schedule starts at timestep \d+, the 5-step one at \d+/);
  }
});

test('generate() reusing the first call gives byte-identical images at every step count, for each scheduler', async () => {
  const model = await fixtureModel();
  for (const scheduler of ['ddim', 'euler', 'dpmpp-2m', 'lcm'] as const) {
    const base = { prompt: 'a red apple on a table', seed: 3, guidance: 7, scheduler };
    const first = await firstUnetCall(model, { ...base, steps: 4 });
    for (const steps of [4, 6, 10]) {
      const plain = await generate(model, { ...base, steps });
      const reused = await generate(model, { ...base, steps, first });
      assert.ok(encodePng(plain.image).equals(encodePng(reused.image)), `${scheduler} at ${steps} steps`);
      assert.equal(reused.timings.unetMs.length, steps);
      assert.equal(reused.timings.unetMs[0], first.ms);
    }
  }
});

test('a first call made for other settings is refused, not silently used', async () => {
  const model = await fixtureModel();
  const base = { prompt: 'a red apple', guidance: 7, scheduler: 'ddim' as const };
  const first = await firstUnetCall(model, { ...base, seed: 1, steps: 4 });
  await assert.rejects(generate(model, { ...base, seed: 2, steps: 4, first }), /made for another schedule/);
  await assert.rejects(generate(model, { ...base, seed: 1, steps: 8, first: { ...first, timestep: 500 } }), /made for another schedule/);
});

test('the summary: per-channel x0 statistics and the guidance direction, zero without guidance', async () => {
  const model = await fixtureModel();
  const guided = await firstStep(model, { prompt: 'a castle', seed: 0, guidance: 7, scheduler: 'ddim', steps: 4 });
  const [c] = guided.call.shape;
  assert.equal(guided.features.length, firstStepDim(c));
  assert.equal(firstStepFeatureNames(c).length, guided.features.length);
  assert.equal(firstStepFeatureNames(c)[0], 'x0_mean[0]');
  assert.ok(guided.features.every(Number.isFinite));
  assert.ok(guided.features.slice(3 * c).every((v) => v > 0), 'guidance direction measured');
  const plain = await firstStep(model, { prompt: 'a castle', seed: 0, guidance: 1, scheduler: 'ddim', steps: 4 });
  assert.ok(plain.features.slice(3 * c).every((v) => v === 0), 'no unconditional branch, no direction');
  // The summary by hand on a made-up call: one channel, 2x2, values 0, 1, 2, 3.
  const made = firstStepFeatures({ ...plain.call, shape: [1, 2, 2], guided: false, predOriginal: new Float32Array([0, 1, 2, 3]) });
  assert.deepEqual(Array.from(made), [1.5, Math.fround(Math.sqrt(1.25)), 1.5, 0]);
  // Other seeds, other summaries: the policy can tell images apart.
  const other = await firstStep(model, { prompt: 'a castle', seed: 1, guidance: 7, scheduler: 'ddim', steps: 4 });
  assert.notDeepEqual(Array.from(other.features), Array.from(guided.features));
});
