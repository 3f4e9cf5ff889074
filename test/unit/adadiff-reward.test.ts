import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  candidateRewards,
  DEFAULT_CANDIDATES,
  highQualityMask,
  promptRewards,
  resolveRewardSettings,
  stepSaving,
} from '../../server/adadiff/reward';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

test('defaults: fidelity uses tau 0.90, an ONNX scorer top-5, N = the longest candidate', () => {
  const f = resolveRewardSettings('fidelity', DEFAULT_CANDIDATES);
  assert.deepEqual(f, { lambda: 3, gamma: 1, baselineSteps: 50, highQuality: { rule: 'threshold', tau: 0.9 } });
  const s = resolveRewardSettings('onnx', [4, 8, 12], { topK: 2, lambda: 0.5 });
  assert.deepEqual(s, { lambda: 0.5, gamma: 1, baselineSteps: 12, highQuality: { rule: 'top-k', k: 2 } });
  assert.throws(() => resolveRewardSettings('onnx', [4, 8], { topK: 3 }), /top-k/);
  assert.throws(() => resolveRewardSettings('fidelity', [4, 8], { gamma: -1 }), /gamma/);
});

test('O(u) = 1 - (u/N)^2', () => {
  close(stepSaving(0, 50), 1);
  close(stepSaving(25, 50), 0.75);
  close(stepSaving(50, 50), 0);
});

test('threshold rule: R = O + lambda Q at or above tau, else -gamma', () => {
  const settings = resolveRewardSettings('fidelity', [10, 20, 40], { lambda: 2, gamma: 3 });
  const r = candidateRewards([0.85, 0.9, 1], [10, 20, 40], settings);
  close(r[0], -3);
  close(r[1], 1 - (20 / 40) ** 2 + 2 * 0.9);
  close(r[2], 0 + 2 * 1);
});

test('top-k rule ranks within the candidates, ties in favour', () => {
  assert.deepEqual(highQualityMask([0.3, 0.5, 0.1, 0.5], { rule: 'top-k', k: 2 }), [false, true, false, true]);
  assert.deepEqual(highQualityMask([0.3, 0.5, 0.1, 0.4], { rule: 'top-k', k: 1 }), [false, true, false, false]);
});

test('a prompt reward is the mean over seeds of the per-seed reward', () => {
  const settings = resolveRewardSettings('fidelity', [10, 20]);
  const r = promptRewards([[0.95, 1], [0.5, 1]], [10, 20], settings);
  close(r[0], (1 - 0.25 + 3 * 0.95 + -1) / 2);
  close(r[1], 3);
  assert.throws(() => promptRewards([[1]], [10, 20], settings), /1 quality scores for 2/);
});

test('default lambda: a prompt whose fidelity still climbs earns more steps than one that has levelled off', () => {
  // Both pass tau everywhere. Near 20 steps the saving term falls by ~0.08 per 5 steps; the hard
  // prompt gains 0.04 fidelity per 5 steps, the easy one 0.005. With lambda = 1 both would take the
  // fewest steps (a single step count for every prompt); the default must tell them apart.
  const candidates = [15, 20, 25];
  const argmax = (r: number[]) => candidates[r.indexOf(Math.max(...r))];
  const hard = [[0.91, 0.95, 0.99]];
  const easy = [[0.97, 0.975, 0.98]];
  const settings = resolveRewardSettings('fidelity', candidates, { baselineSteps: 50 });
  assert.equal(argmax(promptRewards(hard, candidates, settings)), 25);
  assert.equal(argmax(promptRewards(easy, candidates, settings)), 15);
  const flat = resolveRewardSettings('fidelity', candidates, { baselineSteps: 50, lambda: 1 });
  assert.equal(argmax(promptRewards(hard, candidates, flat)), 15);
});
