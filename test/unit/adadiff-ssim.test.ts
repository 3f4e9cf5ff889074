import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ssim } from '../../server/adadiff/ssim';
import type { RgbImage } from '../../server/pipeline/png';

const W = 32;
const H = 24;

/** A ramp with wrap-around edges, and a copy with uniform noise in [-amp, amp] from MINSTD. */
function pair(amp: number): [RgbImage, RgbImage] {
  const a = new Uint8Array(W * H * 3);
  const b = new Uint8Array(W * H * 3);
  let s = 12345;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < 3; c++) {
        const i = (y * W + x) * 3 + c;
        const v = (x * 8 + y * 5 + c * 60) % 256;
        a[i] = v;
        s = (s * 48271) % 2147483647;
        b[i] = Math.min(255, Math.max(0, v + (s % (2 * amp + 1)) - amp));
      }
    }
  }
  return [
    { width: W, height: H, data: a },
    { width: W, height: H, data: b },
  ];
}

function constant(value: number, w = 16, h = 16): RgbImage {
  return { width: w, height: h, data: new Uint8Array(w * h * 3).fill(value) };
}

test('identical images score exactly 1', () => {
  const [a, b] = pair(20);
  assert.equal(ssim(a, a), 1);
  assert.equal(ssim(b, { ...b, data: b.data.slice() }), 1);
});

test('constant images follow the luminance term by hand: (2ab + C1) / (a^2 + b^2 + C1)', () => {
  const c1 = (0.01 * 255) ** 2;
  const expected = (2 * 100 * 140 + c1) / (100 ** 2 + 140 ** 2 + c1);
  assert.ok(Math.abs(ssim(constant(100), constant(140)) - expected) < 1e-12);
});

test('noisy ramp matches the reference formula (scipy gaussian_filter, sigma 1.5, truncate 3.5, cropped)', () => {
  // Values printed by scipy.ndimage for the same images; see the comment at the top of ssim.ts.
  assert.ok(Math.abs(ssim(...pair(20)) - 0.8454105472403141) < 1e-9);
  assert.ok(Math.abs(ssim(...pair(60)) - 0.48851730170012025) < 1e-9);
});

test('symmetric in its arguments', () => {
  const [a, b] = pair(30);
  assert.ok(Math.abs(ssim(a, b) - ssim(b, a)) < 1e-12);
});

test('lower for more noise', () => {
  const scores = [5, 15, 40, 80].map((amp) => ssim(...pair(amp)));
  for (let i = 1; i < scores.length; i++) assert.ok(scores[i] < scores[i - 1], `${scores}`);
  assert.ok(scores[0] < 1);
});

test('images smaller than the window use the largest odd window that fits', () => {
  const v = ssim(constant(50, 6, 8), constant(60, 6, 8));
  const c1 = (0.01 * 255) ** 2;
  assert.ok(Math.abs(v - (2 * 50 * 60 + c1) / (50 ** 2 + 60 ** 2 + c1)) < 1e-12);
});

test('rejects mismatched sizes and non-RGB buffers', () => {
  assert.throws(() => ssim(constant(1, 16, 16), constant(1, 16, 15)), /sizes differ/);
  assert.throws(() => ssim({ width: 2, height: 2, data: new Uint8Array(16) }, constant(1, 2, 2)), /RGB/);
});
