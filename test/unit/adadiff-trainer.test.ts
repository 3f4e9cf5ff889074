import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TokenFeatures } from '../../server/adadiff/policy-net';
import { createRng } from '../../server/adadiff/random';
import { resolveRewardSettings } from '../../server/adadiff/reward';

// The paper's candidates: the made-up table below is written for them.
const DEFAULT_CANDIDATES = [5, 10, 15, 20, 25, 30, 35, 40, 45, 50];
import { choose, trainPolicyNet, type GradientEstimator, type TrainingExample } from '../../server/adadiff/trainer';

// A synthetic reward table. Words are random vectors; the first 20 ("detailed", "ornate", ...) share
// a common direction, as related words do in a text encoder, and every token carries a position
// vector. "Long" prompts have 10-16 words from the whole vocabulary and reach fidelity 0.90 only at
// 30 steps; "short" prompts have 1-3 plain words and are already faithful at 5 steps. The policy
// must tell them apart from token features alone, on prompts it has not seen.
const DIM = 24;
const TOKENS = 20;
const vocabRng = createRng(2024);
const gaussian = (scale: number) => Array.from({ length: DIM }, () => vocabRng.normal() * scale);
const detail = gaussian(2);
const vocabulary = Array.from({ length: 41 }, (_, id) => gaussian(1).map((v, j) => v + (id < 20 ? detail[j] : 0)));
const positions = Array.from({ length: TOKENS }, () => gaussian(0.5));
const BOS = 40;

function prompt(rng: ReturnType<typeof createRng>, long: boolean): TokenFeatures {
  const words = long ? 10 + Math.floor(rng.uniform() * 7) : 1 + Math.floor(rng.uniform() * 3);
  const ids = [BOS];
  for (let i = 0; i < words; i++) ids.push(long ? Math.floor(rng.uniform() * 40) : 20 + Math.floor(rng.uniform() * 20));
  const hidden = new Float32Array(TOKENS * DIM);
  const mask = new Float32Array(TOKENS);
  ids.forEach((id, t) => {
    mask[t] = 1;
    for (let j = 0; j < DIM; j++) hidden[t * DIM + j] = vocabulary[id][j] + positions[t][j] + 0.1 * rng.normal();
  });
  // Padding repeats the last word, as CLIP's tokenizer pads with the end token.
  for (let t = ids.length; t < TOKENS; t++) hidden.copyWithin(t * DIM, (ids.length - 1) * DIM, ids.length * DIM);
  return { hidden, tokens: TOKENS, dim: DIM, mask };
}

function quality(rng: ReturnType<typeof createRng>, long: boolean, seeds: number): number[][] {
  return Array.from({ length: seeds }, () =>
    DEFAULT_CANDIDATES.map((u) => {
      const q = long ? (u >= 30 ? 0.93 + (0.07 * (u - 30)) / 20 : 0.5 + 0.012 * u) : 0.93 + (0.07 * (u - 5)) / 45;
      return u === 50 ? 1 : Math.min(1, q + 0.003 * rng.normal());
    }),
  );
}

function dataset(seed: number, count: number): (TrainingExample & { long: boolean })[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, (_, i) => {
    const long = i % 2 === 0;
    return { long, features: prompt(rng, long), quality: quality(rng, long, 3) };
  });
}

// lambda = 1 pinned: the table's short prompts gain 0.0016 fidelity a step, so the fewest steps must
// win by a clear margin for the oracle to be 5 (at the default lambda 3 it is a near tie).
const reward = resolveRewardSettings('fidelity', DEFAULT_CANDIDATES, { lambda: 1 });
const train = dataset(1, 60);
const heldOut = dataset(2, 40);
const small = { hiddenDim: 16, mlpDim: 16 };

for (const estimator of ['reinforce', 'expected'] as GradientEstimator[]) {
  test(`${estimator}: picks 30 steps for long prompts and 5 for short ones, on held-out prompts`, () => {
    const result = trainPolicyNet(train, DEFAULT_CANDIDATES, reward, { estimator, epochs: 40, seed: 7, architecture: small });
    const wrong = heldOut.filter((e) => DEFAULT_CANDIDATES[choose(result.net, e.features).index] !== (e.long ? 30 : 5));
    assert.equal(wrong.length, 0, `${wrong.length} of ${heldOut.length} held-out prompts got the wrong steps`);
    assert.equal(result.log.length, 40);
    assert.ok(Math.abs(result.final.averageSteps - 17.5) < 1e-9, `average steps ${result.final.averageSteps}`);
    assert.ok(Math.abs(result.final.greedyReward - result.oracleReward) < 1e-9);
    assert.ok(result.log.at(-1)!.expectedReward > result.log[0].expectedReward + 0.1);
  });
}

test('training is deterministic in its seed', () => {
  const few = train.slice(0, 12);
  const a = trainPolicyNet(few, DEFAULT_CANDIDATES, reward, { epochs: 3, seed: 3, architecture: small });
  const b = trainPolicyNet(few, DEFAULT_CANDIDATES, reward, { epochs: 3, seed: 3, architecture: small });
  const c = trainPolicyNet(few, DEFAULT_CANDIDATES, reward, { epochs: 3, seed: 4, architecture: small });
  assert.deepEqual(a.log, b.log);
  assert.deepEqual(a.net.params, b.net.params);
  assert.notDeepEqual(a.net.params, c.net.params);
});

test('honours an aborted signal', () => {
  const controller = new AbortController();
  controller.abort(new Error('stop'));
  assert.throws(() => trainPolicyNet(train, DEFAULT_CANDIDATES, reward, { signal: controller.signal }), /stop/);
});
