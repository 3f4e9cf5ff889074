// K-fold cross-validation of step-policy settings over a model's training prompts, so that reward
// and training defaults are chosen without looking at the held-out prompts `adadiff eval` reports
// on. The reward table comes from the same cache `adadiff train-policy` fills (run that first, or
// this builds it); each setting then trains in seconds per fold.
//
//   node --import tsx scripts/policy-cv.ts [--model DIR] [--prompts FILE] [--folds 5] [--seeds 0,1] [--first-step] \
//     [--grid 'gamma=1,2,4;lambda=3;entropy=0.05;decay=1']   (also tau, seed, epochs, lr, attention, hidden, mlp)
// --first-step cross-validates the first-step-aware policy (per image, prompt features plus the
// first UNet call's summary) instead of the prompt-only one; folds always split by prompt.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { firstStep } from '../server/adadiff/first-step';
import { promptFeatures } from '../server/adadiff/policy';
import { evaluateOnTable } from '../server/adadiff/evaluate';
import { DEFAULT_CANDIDATES, resolveRewardSettings } from '../server/adadiff/reward';
import { buildRewardTable, fidelityScorer } from '../server/adadiff/reward-table';
import { choose, trainPolicyNet, type TrainingExample } from '../server/adadiff/trainer';
import { bundledModelDir, readPromptsFile } from '../server/cli/args';
import { cacheDir, cliModel } from '../server/cli/context';
import { DEFAULTS } from '../server/engine';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    prompts: { type: 'string', default: 'models/recipe/policy-train.txt' },
    folds: { type: 'string', default: '5' },
    seeds: { type: 'string', default: '0,1' },
    grid: { type: 'string', default: 'gamma=1;lambda=3;entropy=0.05;decay=1' },
    'first-step': { type: 'boolean', default: false },
  },
});

/** 'gamma=1,2;lambda=3' -> every combination, as objects. */
function expandGrid(spec: string): Record<string, number>[] {
  let combos: Record<string, number>[] = [{}];
  for (const part of spec.split(';').filter(Boolean)) {
    const [key, list] = part.split('=');
    combos = combos.flatMap((c) => list.split(',').map((v) => ({ ...c, [key.trim()]: Number(v) })));
  }
  return combos;
}

async function main(): Promise<void> {
  const model = await cliModel(values.model ?? bundledModelDir());
  try {
    const prompts = await readPromptsFile(values.prompts!);
    const seeds = values.seeds!.split(',').map(Number);
    const candidates = [...DEFAULT_CANDIDATES];
    const table = await buildRewardTable(model, {
      prompts,
      seeds,
      steps: candidates,
      scheduler: DEFAULTS.scheduler,
      guidance: DEFAULTS.guidance,
      scorer: fidelityScorer,
      cacheDir: join(cacheDir(), 'reward-tables'),
    });
    // One example per prompt, or per image for the first-step-aware policy; `of` names its prompt and seed.
    const examples: (TrainingExample & { p: number; s?: number })[] = [];
    for (const [p, prompt] of prompts.entries()) {
      const features = await promptFeatures(model, prompt);
      if (!values['first-step']) {
        examples.push({ p, features, quality: table.rows[p].map((r) => r.quality) });
        continue;
      }
      for (const [s, seed] of seeds.entries()) {
        const first = await firstStep(model, { prompt, seed, steps: candidates[0], scheduler: DEFAULTS.scheduler, guidance: DEFAULTS.guidance });
        examples.push({ p, s, features: { ...features, extra: first.features }, quality: [table.rows[p][s].quality] });
      }
    }
    const extraDim = values['first-step'] ? examples[0].features.extra!.length : 0;
    const folds = Number(values.folds);
    const foldOf = examples.map((e) => e.p % folds);
    console.log(`${prompts.length} prompts x ${seeds.length} seeds, ${folds}-fold cross-validation; per setting: held-out avg steps, share of images with fidelity >= tau, mean fidelity, and fixed steps at the same average (interpolated)`);
    for (const combo of expandGrid(values.grid!)) {
      const reward = resolveRewardSettings('fidelity', candidates, { gamma: combo.gamma, lambda: combo.lambda, tau: combo.tau });
      const tau = reward.highQuality.rule === 'threshold' ? reward.highQuality.tau : 0.9;
      // Every prompt's choice comes from the fold that held it out; the figures are `adadiff eval`'s.
      const chosenSteps = prompts.map(() => seeds.map(() => 0));
      for (let f = 0; f < folds; f++) {
        const train = examples.filter((_, i) => foldOf[i] !== f);
        const { net } = trainPolicyNet(train, candidates, reward, {
          entropyBonus: combo.entropy,
          weightDecay: combo.decay,
          seed: combo.seed ?? 0,
          epochs: combo.epochs,
          learningRate: combo.lr,
          architecture: { attentionLayers: combo.attention, hiddenDim: combo.hidden, mlpDim: combo.mlp, extraDim, ...(extraDim > 0 ? { readsPrompt: false } : {}) },
        });
        examples.forEach((e, i) => {
          if (foldOf[i] !== f) return;
          const steps = candidates[choose(net, e.features).index];
          if (e.s === undefined) chosenSteps[e.p].fill(steps);
          else chosenSteps[e.p][e.s] = steps;
        });
      }
      const avg = chosenSteps.flat().reduce((a, b) => a + b, 0) / chosenSteps.flat().length;
      const hi = candidates.findIndex((c) => c >= avg);
      const lo = Math.max(0, hi - 1);
      const e = evaluateOnTable({ table, chosenSteps, candidates, baselineSteps: reward.baselineSteps, fixedSteps: candidates[hi], tau });
      // Fixed steps at the same average: linear interpolation between the neighbouring candidates.
      const t = candidates[hi] === candidates[lo] ? 0 : (avg - candidates[lo]) / (candidates[hi] - candidates[lo]);
      const [a, b] = [e.fixedCurve[lo], e.fixedCurve[hi]];
      const share = (x: { shareMeetingTau: number | null }) => x.shareMeetingTau ?? 0;
      const label = Object.entries(combo).map(([k, v]) => `${k}=${v}`).join(' ');
      const same = e.baselines.fixedSameShare;
      console.log(
        `${label.padEnd(44)} steps ${avg.toFixed(1).padStart(5)}  meeting tau ${(100 * share(e)).toFixed(1).padStart(5)}%  fidelity ${e.meanQuality.toFixed(4)}  spearman ${e.oracleSpearman?.toFixed(2) ?? 'n/a'}` +
          `  | fixed ${avg.toFixed(1)}: ${(100 * (share(a) + t * (share(b) - share(a)))).toFixed(1)}%, ${(a.meanQuality + t * (b.meanQuality - a.meanQuality)).toFixed(4)}` +
          `  | as often: ${same ? `fixed ${same.steps} (${(100 * (1 - avg / same.steps)).toFixed(0)}% fewer)` : 'no fixed count'}`,
      );
    }
  } finally {
    await model.dispose();
  }
}

void main();
