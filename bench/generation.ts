// Is a generation as cheap as its parts? Measures whole generations and, in the same run, the
// calibrated parts (text encoder + steps x UNet call + VAE), alternating in blocks; the ratio shows
// the loop's overhead (scheduler math, guidance mixing, copies). Goal: <= 1.05.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { estimateSeconds, measureCalibration } from '../server/adadiff/cost';
import { Engine } from '../server/engine';
import type { BenchSection } from './run';

const PROMPTS = ['red apple emoji', 'cat face', 'rocket', 'a smiling sun with sunglasses emoji', 'flag of japan'];
const STEPS = [10, 25, 50];

export function benchModelDir(): string {
  const dir = process.env.ADADIFF_BENCH_MODEL ?? join(__dirname, '..', 'models', 'default');
  if (!existsSync(join(dir, 'model_index.json'))) throw new Error(`no model at ${dir}; set ADADIFF_BENCH_MODEL`);
  return dir;
}

/** Parts and generations alternate in blocks, so a drift in the machine's speed (a shared VM's is 30-40% over minutes) hits both sides of each ratio. */
const BLOCKS = 3;

export const benchGeneration: BenchSection = {
  name: 'generation',
  async run() {
    const engine = new Engine({ cacheDir: join(tmpdir(), `adadiff-bench-${process.pid}`) });
    const handle = await engine.open(benchModelDir());
    try {
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
      const ratios = new Map<number, { measured: number[]; parts: number[]; ratio: number[] }>(STEPS.map((s) => [s, { measured: [], parts: [], ratio: [] }]));
      let cal = await measureCalibration(handle.model, { guided: handle.guidance > 1 }, 'bench', 20, 5);
      for (let block = 0; block < BLOCKS; block++) {
        if (block > 0) cal = await measureCalibration(handle.model, { guided: handle.guidance > 1 }, 'bench', 20, 5);
        console.log(`block ${block + 1}: parts on ${cal.provider}: text encoder ${cal.textEncoderMs.toFixed(2)} ms, UNet call ${cal.unetMs.toFixed(2)} ms, VAE ${cal.vaeMs.toFixed(2)} ms`);
        for (const steps of STEPS) {
          const totals: number[] = [];
          for (const [i, prompt] of PROMPTS.entries()) totals.push((await handle.render({ prompt, steps, seed: i })).result.timings.totalMs);
          const r = ratios.get(steps)!;
          const parts = estimateSeconds(cal, steps) * 1000;
          r.measured.push(median(totals));
          r.parts.push(parts);
          r.ratio.push(median(totals) / parts);
        }
      }
      const rows = STEPS.map((steps) => {
        const r = ratios.get(steps)!;
        const row = { steps, measuredMs: median(r.measured), partsMs: median(r.parts), ratio: median(r.ratio), blockRatios: r.ratio };
        console.log(
          `${String(steps).padStart(3)} steps: generation ${row.measuredMs.toFixed(1)} ms, parts ${row.partsMs.toFixed(1)} ms (medians of ${BLOCKS} blocks x ${PROMPTS.length} prompts), ratio ${row.ratio.toFixed(3)} [blocks ${r.ratio.map((x) => x.toFixed(3)).join(', ')}] ${row.ratio <= 1.05 ? '(goal <= 1.05 met)' : '(goal <= 1.05 MISSED)'}`,
        );
        return row;
      });
      return { model: handle.model.folder.name, provider: cal.provider, calibration: cal, blocks: BLOCKS, rows };
    } finally {
      await engine.dispose();
    }
  },
};
