// Calibration is bounded: a UNet that takes seconds per call (a full-size model on a CPU) is
// measured in a few calls, not warmup + runs of them; a fast one keeps the extra rounds that make
// its median robust. Run on simulated time: each part advances a fake clock by its cost.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measureCalibration } from '../../server/adadiff/cost';
import type { LoadedModel } from '../../server/model/session';

function fakeModel(ms: { text: number; unet: number; vae: number }) {
  let now = 0;
  const calls = { text: 0, unet: 0, vae: 0 };
  const model = {
    providers: { textEncoder: { used: 'cpu', tried: [] }, unet: { used: 'cpu', tried: [] }, vaeDecoder: { used: 'cpu', tried: [] } },
    tokenizer: { encode: () => ({ ids: [0, 1, 2], tokens: 2, dropped: 0 }) },
    latentShape: () => [4, 8, 8],
    encodeText: async (ids: number[][]) => {
      calls.text++;
      now += ms.text;
      return { hidden: new Float32Array(ids.length * 3 * 4), dims: [ids.length, 3, 4] };
    },
    unet: async (sample: Float32Array) => {
      calls.unet++;
      now += ms.unet;
      return sample;
    },
    decode: async () => {
      calls.vae++;
      now += ms.vae;
      return { data: new Float32Array(3), dims: [1, 3, 1, 1] };
    },
  } as unknown as LoadedModel;
  return { model, calls, clock: () => now };
}

test('a UNet of 5 s per call: one warm-up call and two measured, not 2 + 5', async () => {
  const { model, calls, clock } = fakeModel({ text: 40, unet: 5000, vae: 300 });
  const cal = await measureCalibration(model, { guided: true }, 'k', 5, 2, clock);
  assert.equal(calls.unet, 3);
  assert.equal(cal.runs, 2);
  assert.equal(cal.unetMs, 5000);
  assert.ok(clock() < 20_000, `${clock()} ms of simulated time`);
});

test('a UNet of 30 s per call is measured once after a single warm-up call', async () => {
  const { model, calls, clock } = fakeModel({ text: 40, unet: 30_000, vae: 300 });
  const cal = await measureCalibration(model, { guided: true }, 'k', 5, 2, clock);
  assert.equal(cal.runs, 1);
  assert.equal(calls.unet, 2);
});

test('a fast UNet: both warm-up rounds, then rounds while within the 1.5 s budget, at most 40', async () => {
  const medium = fakeModel({ text: 1, unet: 100, vae: 2 });
  const cal = await measureCalibration(medium.model, { guided: true }, 'k', 5, 2, medium.clock);
  assert.equal(cal.runs, Math.ceil(1500 / 103));
  assert.equal(medium.calls.unet, 2 + cal.runs);
  const fast = fakeModel({ text: 1, unet: 10, vae: 2 });
  assert.equal((await measureCalibration(fast.model, { guided: true }, 'k', 5, 2, fast.clock)).runs, 40);
});
