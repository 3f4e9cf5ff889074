// Is a generation as cheap as its parts? Measures whole generations and, in the same run, the
// calibrated parts (text encoder + steps x UNet call + VAE); the ratio shows the loop's overhead
// (scheduler math, guidance mixing, copies). Goal: <= 1.05.
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

export const benchGeneration: BenchSection = {
  name: 'generation',
  async run() {
    const engine = new Engine({ cacheDir: join(tmpdir(), `adadiff-bench-${process.pid}`) });
    const handle = await engine.open(benchModelDir());
    try {
      const cal = await measureCalibration(handle.model, { guided: handle.guidance > 1 }, 'bench', 20, 5);
      console.log(`parts on ${cal.provider}: text encoder ${cal.textEncoderMs.toFixed(2)} ms, UNet call ${cal.unetMs.toFixed(2)} ms, VAE ${cal.vaeMs.toFixed(2)} ms`);
      const rows = [];
      for (const steps of STEPS) {
        const totals: number[] = [];
        for (const [i, prompt] of PROMPTS.entries()) {
          const out = await handle.render({ prompt, steps, seed: i });
          totals.push(out.result.timings.totalMs);
        }
        totals.sort((a, b) => a - b);
        const measured = totals[totals.length >> 1];
        const parts = estimateSeconds(cal, steps) * 1000;
        const ratio = measured / parts;
        rows.push({ steps, measuredMs: measured, partsMs: parts, ratio });
        console.log(`${String(steps).padStart(3)} steps: generation ${measured.toFixed(1)} ms (median of ${totals.length}), parts ${parts.toFixed(1)} ms, ratio ${ratio.toFixed(3)} ${ratio <= 1.05 ? '(goal <= 1.05 met)' : '(goal <= 1.05 MISSED)'}`);
      }
      return { model: handle.model.folder.name, provider: cal.provider, calibration: cal, rows };
    } finally {
      await engine.dispose();
    }
  },
};
