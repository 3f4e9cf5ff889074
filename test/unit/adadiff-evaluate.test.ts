import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePng } from '../../server/pipeline/png';
import { evaluateOnTable, formatEvaluationTable, pearson, plotEvaluation, promptWords } from '../../server/adadiff/evaluate';
import type { RewardTable } from '../../server/adadiff/reward-table';

// Three prompts, two seeds, columns 5, 10, 20 (+ 8 as the fixed baseline). Quality is made up so
// every strategy's figures can be checked by hand.
const table: RewardTable = {
  steps: [5, 8, 10, 20],
  prompts: ['cat', 'a dog in the rain', 'castle, ornate, intricate, towers'],
  seeds: [0, 1],
  rows: [
    [
      { quality: [0.95, 0.96, 0.97, 1], ms: [50, 80, 100, 200] },
      { quality: [0.93, 0.96, 0.97, 1], ms: [50, 80, 100, 200] },
    ],
    [
      { quality: [0.8, 0.88, 0.92, 1], ms: [50, 80, 100, 200] },
      { quality: [0.86, 0.9, 0.94, 1], ms: [50, 80, 100, 200] },
    ],
    [
      { quality: [0.6, 0.7, 0.85, 1], ms: [50, 80, 100, 200] },
      { quality: [0.7, 0.8, 0.89, 1], ms: [50, 80, 100, 200] },
    ],
  ],
  width: 64,
  height: 64,
  scorer: { kind: 'fidelity', id: 'test' },
  generatedSeconds: 0,
};

const close = (a: number | null, b: number) => assert.ok(a !== null && Math.abs(a - b) < 1e-12, `${a} != ${b}`);

test('evaluateOnTable: policy, fixed, random, word-count and full baselines by hand', () => {
  // The policy gives the short prompt 5, the medium 10 and the long one 20: average 35/3.
  const e = evaluateOnTable({ table, chosenSteps: [5, 10, 20], candidates: [5, 10, 20], baselineSteps: 20, fixedSteps: 8, tau: 0.9 });
  close(e.avgSteps, 35 / 3);
  close(e.savingPct, 100 * (1 - 35 / 3 / 20));
  close(e.meanQuality, ((0.95 + 0.93) / 2 + (0.92 + 0.94) / 2 + 1) / 3);
  close(e.shareMeetingTau, (1 + 1 + 1) / 3);
  close(e.avgSeconds, (50 + 100 + 200) / 3 / 1000);
  close(e.baselineSeconds, 0.2);
  // fixed 8 for everyone
  close(e.baselines.fixed.meanQuality, (0.96 + 0.89 + 0.75) / 3);
  close(e.baselines.fixed.shareMeetingTau, (1 + 0.5 + 0) / 3);
  // random: each prompt gets 5, 10, 20 with probability 1/3
  const meanAt = (j: number) => table.rows.reduce((s, r) => s + (r[0].quality[j] + r[1].quality[j]) / 2, 0) / 3;
  close(e.baselines.random.meanQuality, (meanAt(0) + meanAt(2) + meanAt(3)) / 3);
  close(e.baselines.random.avgSteps, 35 / 3);
  // word count: 1, 5 and 4 words -> 'cat' 5, the castle (4 words) 10, the dog (5 words) 20
  close(e.baselines.wordCount.avgSteps, 35 / 3);
  close(e.baselines.wordCount.meanQuality, ((0.95 + 0.93) / 2 + 1 + (0.85 + 0.89) / 2) / 3);
  close(e.baselines.full.meanQuality, 1);
  assert.deepEqual(e.fixedCurve.map((r) => r.steps), [5, 10, 20]);
  // Counted per image: two seeds each.
  assert.deepEqual(e.stepHistogram, { '5': 2, '10': 2, '20': 2 });
  close(e.stepsLengthCorrelation, pearson([5, 10, 20], [1, 5, 4])!);
  assert.equal(e.promptsSha256.length, 64);
  assert.throws(
    () => evaluateOnTable({ table, chosenSteps: [5, 10, 30], candidates: [5, 10, 20], baselineSteps: 20, fixedSteps: 8, tau: 0.9 }),
    /no column for 30/,
  );

  const png = plotEvaluation({ ...e, occlusion: [] });
  const img = decodePng(png);
  assert.deepEqual([img.width, img.height], [640, 420]);
  // Not blank: the policy's red marker is somewhere.
  let red = 0;
  for (let i = 0; i < img.data.length; i += 3) if (img.data[i] === 214 && img.data[i + 1] === 39) red++;
  assert.ok(red > 20, `${red} red pixels`);
  const md = formatEvaluationTable({ ...e, occlusion: [{ word: 'ornate', deltaSteps: 4, prompts: 2 }] });
  assert.match(md, /\| AdaDiff policy, prompt only \| 11\.7 \|/);
  assert.match(md, /ornate \(\+4\.0\)/);
});

test('evaluateOnTable: the least fixed count meeting tau as often, the oracles and Spearman, by hand', () => {
  const e = evaluateOnTable({ table, chosenSteps: [5, 10, 20], candidates: [5, 10, 20], baselineSteps: 20, fixedSteps: 8, tau: 0.9 });
  // Images meeting 0.9 at fixed 5 / 8 / 10 / 20: 2/6, 3/6, 4/6, 6/6; the policy meets it on all 6.
  assert.equal(e.baselines.fixedSameShare?.steps, 20);
  close(e.baselines.fixedSameShare!.shareMeetingTau, 1);
  // Least candidate meeting tau on every seed: cat 5, dog 10, castle 20 (8 is no candidate).
  close(e.oracles!.prompt.avgSteps, 35 / 3);
  close(e.oracles!.prompt.shareMeetingTau, 1);
  close(e.oracles!.image.avgSteps, 35 / 3);
  close(e.oracleSpearman!, 1);
  const md = formatEvaluationTable({ ...e, occlusion: [] });
  assert.match(md, /fixed 20 steps \(least meeting tau as often as the prompt-only policy\) \| 20\.0 \|/);
  assert.match(md, /bound: prompt oracle/);
});

test('evaluateOnTable: per-image choices of a first-step-aware policy', () => {
  const e = evaluateOnTable({ table, chosenSteps: [[5, 5], [10, 8], [20, 10]], candidates: [5, 10, 20], baselineSteps: 20, fixedSteps: 10, tau: 0.9 });
  close(e.avgSteps, 58 / 6);
  // Every image meets 0.9 but the castle's second seed at 10 steps (0.89).
  close(e.shareMeetingTau, 5 / 6);
  assert.deepEqual(e.stepHistogram, { '5': 2, '8': 1, '10': 2, '20': 1 });
  assert.equal(e.baselines.fixedSameShare?.steps, 20);
  // Same multiset for random and word count.
  close(e.baselines.random.avgSteps, 58 / 6);
  close(e.baselines.wordCount.avgSteps, 58 / 6);
  close(e.avgSeconds, (50 + 50 + 100 + 80 + 200 + 100) / 6 / 1000);
  // Against the prompt-only policy's 35/3 steps average the first-step policy spends fewer; against 5 steps a uniform one spends more.
  const promptOnly = evaluateOnTable({ table, chosenSteps: [5, 10, 20], candidates: [5, 10, 20], baselineSteps: 20, fixedSteps: 10, tau: 0.9 });
  assert.match(formatEvaluationTable({ ...promptOnly, occlusion: [] }, { ...e, occlusion: [] }), /17\.1% fewer steps than the prompt-only policy/);
  const fewest = evaluateOnTable({ table, chosenSteps: [5, 5, 5], candidates: [5, 10, 20], baselineSteps: 20, fixedSteps: 5, tau: 0.9 });
  assert.match(formatEvaluationTable({ ...fewest, occlusion: [] }, { ...e, occlusion: [] }), /93\.3% more steps than the prompt-only policy/);
  assert.throws(() => evaluateOnTable({ table, chosenSteps: [[5], [10, 8], [20, 10]], candidates: [5, 10, 20], baselineSteps: 20, fixedSteps: 10, tau: 0.9 }), /1 choices for 2 seeds/);
});

test('pearson and promptWords', () => {
  close(pearson([1, 2, 3], [2, 4, 6]), 1);
  close(pearson([1, 2, 3], [3, 2, 1]), -1);
  assert.equal(pearson([1, 1, 1], [1, 2, 3]), null);
  assert.deepEqual(promptWords('a castle,  ornate; (intricate) - towers'), ['a', 'castle', 'ornate', '(intricate)', 'towers']);
});
