// Lockstep denoising (generateSchedules, what reward-table rows are made with): each step count's
// image is the one generate() makes alone, whatever the scheduler, the spacing and whether the
// export lets a call carry a timestep per row. Up to float rounding: a batched MatMul may take
// another kernel than a one-row one (the fixture UNet at guidance 1 differs by 2e-7), so images are
// compared to within one 8-bit level, which any mix-up of rows, timesteps or texts far exceeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureFixtures, type Variant } from '../fixtures/make-fixtures';
import { openModelFolder } from '../../server/model/folder';
import { loadModel, type LoadedModel } from '../../server/model/session';
import { generate, generateSchedules } from '../../server/pipeline/generate';
import type { RgbImage } from '../../server/pipeline/png';
import { SCHEDULER_NAMES } from '../../server/pipeline/schedulers';
import { sharedFirstCall } from '../../server/adadiff/first-step';
import { CancelledError } from '../../server/errors';
import { tempDir } from '../temp-dirs';

const models = new Map<string, Promise<LoadedModel>>();
const fixtureModel = (variant: Variant, spacing: 'leading' | 'trailing') => {
  const key = `${variant}/${spacing}`;
  if (!models.has(key)) {
    models.set(
      key,
      (async () => {
        const dir = join(tempDir('adadiff-lockstep-'), 'model');
        cpSync((await ensureFixtures())[variant], dir, { recursive: true });
        const file = join(dir, 'scheduler', 'scheduler_config.json');
        writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), timestep_spacing: spacing }));
        return loadModel(await openModelFolder(dir), { providers: ['cpu'] });
      })(),
    );
  }
  return models.get(key)!;
};

const COUNTS = [10, 4, 6, 5];

function maxLevelDiff(a: RgbImage, b: RgbImage): number {
  assert.deepEqual([a.width, a.height], [b.width, b.height]);
  let d = 0;
  for (let i = 0; i < a.data.length; i++) d = Math.max(d, Math.abs(a.data[i] - b.data[i]));
  return d;
}

async function assertSameAsAlone(model: LoadedModel, scheduler: (typeof SCHEDULER_NAMES)[number], guidance: number) {
  const base = { prompt: 'a red apple on a wooden table', negativePrompt: 'blurry', seed: 5, guidance, scheduler };
  const together = await generateSchedules(model, { ...base, steps: COUNTS });
  assert.deepEqual(together.images.map((i) => i.steps), COUNTS);
  for (const made of together.images) {
    const alone = await generate(model, { ...base, steps: made.steps });
    assert.ok(maxLevelDiff(alone.image, made.image) <= 1, `${scheduler} at ${made.steps} steps, guidance ${guidance}`);
    assert.equal(made.unetMs.length, made.steps);
  }
  return together;
}

test('rank-1 timesteps: every count in one batched call per step, and each image is the one generate() makes', async () => {
  for (const spacing of ['trailing', 'leading'] as const) {
    const model = await fixtureModel('diffusers-script', spacing);
    assert.equal(model.unetBatch.rowTimesteps, true);
    for (const scheduler of SCHEDULER_NAMES) {
      for (const guidance of [7, 1]) {
        const { calls } = await assertSameAsAlone(model, scheduler, guidance);
        // Step index i runs the counts longer than i: 4 images for i < 4, then 3, 2, and 1 up to 10.
        const images = calls.map((c) => c.images);
        // The counts share their first call where sharedFirstCall says so (trailing spacing, and Karras sigmas, which all start at the largest sigma).
        const firstShared = sharedFirstCall(model.folder.schedulerConfig, scheduler, COUNTS).shared;
        if (spacing === 'trailing') assert.ok(firstShared, scheduler);
        assert.deepEqual(images, [firstShared ? 1 : 4, 4, 4, 4, 3, 2, 1, 1, 1, 1], `${spacing} ${scheduler} guidance ${guidance}`);
      }
    }
  }
});

test('a scalar timestep export runs one image per call, and still gives the images generate() makes', async () => {
  const model = await fixtureModel('optimum', 'trailing');
  assert.equal(model.unetBatch.rowTimesteps, false);
  const { calls } = await assertSameAsAlone(model, 'ddim', 7);
  assert.ok(calls.every((c) => c.images === 1));
  // The shared first call is still made once: 1 + (4 + 4 + 4) + 3 + 2 + 1 x 4 calls.
  assert.equal(calls.length, 1 + 12 + 3 + 2 + 4);
  const [c, h, w] = model.latentShape();
  const text = await model.encodeText(['a', 'b']);
  await assert.rejects(model.unet(new Float32Array(2 * c * h * w), [2, c, h, w], [10, 20], text), /takes one for the whole batch/);
});

test('bad counts are refused before any work, and a cancel stops the lockstep loop', async () => {
  const model = await fixtureModel('diffusers-script', 'trailing');
  const base = { prompt: 'a cat', seed: 0, guidance: 7, scheduler: 'ddim' as const };
  await assert.rejects(generateSchedules(model, { ...base, steps: [] }), /no step counts/);
  await assert.rejects(generateSchedules(model, { ...base, steps: [4, 0] }), /steps must be/);
  const controller = new AbortController();
  const running = generateSchedules(model, { ...base, steps: [4, 50], signal: controller.signal });
  controller.abort();
  await assert.rejects(running, CancelledError);
});
