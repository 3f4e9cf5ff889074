// Which step counts a policy should choose from, measured: a reward table over a fine grid of
// step counts, then for every image the least count whose image meets tau (SSIM to the longest
// schedule's image), and what each candidate set costs against the fine grid (the per-image oracle
// restricted to the set: the least candidate at or above the image's need).
//
//   node --import tsx scripts/candidate-steps.ts --prompts FILE [--model DIR] [--seeds 0,1]
//     [--grid 2,3,4,5,6,7,8,10,12,15,20,25,30,35,40,45,50] [--tau 0.9] [--scheduler ddim] [--sets '5,10,...,50;4,5,6,...']
// Uses (and fills) the reward-table cache of train-policy and eval.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parsePromptLines } from '../server/adadiff/prompt-list';
import { buildRewardTable, fidelityScorer } from '../server/adadiff/reward-table';
import { cacheDir, cliModel } from '../server/cli/context';
import { bundledModelDir } from '../server/cli/args';
import type { SchedulerName } from '../server/model/contract';

const { values } = parseArgs({
  options: {
    prompts: { type: 'string' },
    model: { type: 'string' },
    seeds: { type: 'string', default: '0,1' },
    grid: { type: 'string', default: '2,3,4,5,6,7,8,10,12,15,20,25,30,35,40,45,50' },
    tau: { type: 'string', default: '0.9' },
    scheduler: { type: 'string', default: 'ddim' },
    guidance: { type: 'string', default: '7' },
    sets: { type: 'string', default: '5,10,15,20,25,30,35,40,45,50;4,5,6,8,10,12,15,20,25,30,40,50' },
  },
});
if (!values.prompts) throw new Error('--prompts FILE is required');
const ints = (s: string) => s.split(',').map((v) => Number.parseInt(v, 10));

async function main(): Promise<void> {
  const prompts = parsePromptLines(readFileSync(values.prompts!, 'utf8'));
  const grid = ints(values.grid!).sort((a, b) => a - b);
  const tau = Number(values.tau);
  const model = await cliModel(values.model ?? bundledModelDir());
  try {
    const t0 = performance.now();
    const table = await buildRewardTable(model, {
      prompts,
      seeds: ints(values.seeds!),
      steps: grid,
      scheduler: values.scheduler as SchedulerName,
      guidance: Number(values.guidance),
      scorer: fidelityScorer,
      cacheDir: join(cacheDir(), 'reward-tables'),
    });
    const need = table.rows.flatMap((seeds) => seeds.map((r) => grid.find((_, j) => r.quality[j] >= tau) ?? grid[grid.length - 1]));
    const images = need.length;
    console.log(`${prompts.length} prompts x ${table.seeds.length} seeds = ${images} images, ${values.scheduler}, tau ${tau} (table ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    console.log('least steps meeting tau, per image:');
    for (const n of grid) {
      const k = need.filter((v) => v === n).length;
      if (k) console.log(`  ${String(n).padStart(3)}: ${String(k).padStart(4)} (${((100 * k) / images).toFixed(1)}%)`);
    }
    const fine = need.reduce((a, b) => a + b, 0) / images;
    console.log(`mean least steps on the grid: ${fine.toFixed(2)}`);
    // Per pair, the reward table costs the sum of the candidates in UNet calls and one image each.
    for (const set of values.sets!.split(';').map(ints)) {
      const sorted = [...set].sort((a, b) => a - b);
      const rounded = need.map((n) => sorted.find((c) => c >= n) ?? sorted[sorted.length - 1]);
      const mean = rounded.reduce((a, b) => a + b, 0) / images;
      const unet = sorted.reduce((a, b) => a + b, 0);
      console.log(`candidates {${sorted.join(', ')}}: per-image oracle ${mean.toFixed(2)} steps (+${((100 * (mean - fine)) / fine).toFixed(1)}% over the grid); table ${unet} UNet calls and ${sorted.length} images per prompt x seed`);
    }
  } finally {
    await model.dispose();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
