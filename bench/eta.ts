// Is the ETA a hover shows true? For 50 prompts of varied length: the estimate the product shows
// (calibrated parts, measured on first use exactly as the server does, for the steps it would use)
// against the measured time of that generation, one after the other in one run.
import { estimateSeconds } from '../server/adadiff/cost';
import { Engine } from '../server/engine';
import { tempDir } from '../test/temp-dirs';
import { benchPrompts } from './prompts';
import type { BenchSection } from './run';
import { median, noteLoad, percentile, resolveBenchModel } from './util';

const COUNT = Number(process.env.ADADIFF_BENCH_ETA_PROMPTS ?? 50);
/** Without a step policy every prompt would get the baseline; cycling steps shows how the error depends on them. */
const CYCLE = [10, 20, 30, 40, 50];

export const benchEta: BenchSection = {
  name: 'eta',
  async run() {
    const model = await resolveBenchModel();
    const engine = new Engine({ cacheDir: tempDir('adadiff-bench-eta-') });
    const handle = await engine.open(model.dir);
    try {
      const loadBefore = noteLoad('before');
      const t0 = performance.now();
      const cal = await handle.calibration(); // what the server measures on first use (fresh cache)
      const calibrationMs = performance.now() - t0;
      console.log(`calibration on ${cal.provider} (${cal.runs} runs after warm-up, took ${calibrationMs.toFixed(0)} ms): text encoder ${cal.textEncoderMs.toFixed(2)} ms, UNet call ${cal.unetMs.toFixed(2)} ms, VAE ${cal.vaeMs.toFixed(2)} ms`);
      const stepsSource = handle.policy ? 'the step policy' : `no step policy: steps cycle ${CYCLE.join(', ')}`;
      console.log(`${COUNT} prompts, steps from ${stepsSource}, guidance ${handle.guidance}, scheduler ${handle.scheduler}`);
      const rows: { prompt: string; words: number; steps: number; predictedMs: number; generationMs: number; renderMs: number; relError: number; renderRelError: number; unetStepMs: number; unetMeanMs: number; overheadPerStepMs: number; textEncoderMs: number; vaeMs: number }[] = [];
      for (const [i, prompt] of benchPrompts(COUNT).entries()) {
        const prediction = await handle.predict(prompt);
        const steps = handle.policy ? prediction.steps : CYCLE[i % CYCLE.length];
        const predictedMs = estimateSeconds(cal, steps) * 1000;
        const r0 = performance.now();
        const out = await handle.render({ prompt, steps, seed: i });
        const renderMs = performance.now() - r0;
        const generationMs = out.result.timings.totalMs;
        const t = out.result.timings;
        rows.push({ prompt, words: prompt.split(/\s+/).length, steps, predictedMs, generationMs, renderMs, relError: Math.abs(predictedMs - generationMs) / generationMs, renderRelError: Math.abs(predictedMs - renderMs) / renderMs, unetStepMs: median(t.unetMs), unetMeanMs: t.unetMs.reduce((a, b) => a + b, 0) / t.unetMs.length, overheadPerStepMs: (t.totalMs - t.textEncoderMs - t.vaeMs - t.unetMs.reduce((a, b) => a + b, 0)) / steps, textEncoderMs: t.textEncoderMs, vaeMs: t.vaeMs });
      }
      const loadAfter = noteLoad('after');
      const errors = rows.map((r) => r.relError);
      const bias = median(rows.map((r) => (r.predictedMs - r.generationMs) / r.generationMs));
      const summary = {
        medianRelError: median(errors),
        p90RelError: percentile(errors, 90),
        medianSignedError: bias,
        renderMedianRelError: median(rows.map((r) => r.renderRelError)),
        renderP90RelError: percentile(rows.map((r) => r.renderRelError), 90),
      };
      const bySteps = [...new Set(rows.map((r) => r.steps))].sort((a, b) => a - b).map((steps) => {
        const rs = rows.filter((r) => r.steps === steps);
        return { steps, n: rs.length, predictedMs: median(rs.map((r) => r.predictedMs)), measuredMs: median(rs.map((r) => r.generationMs)), medianRelError: median(rs.map((r) => r.relError)), p90RelError: percentile(rs.map((r) => r.relError), 90) };
      });
      console.log('  steps   n  predicted   measured  median err  p90 err');
      for (const b of bySteps) {
        console.log(`  ${String(b.steps).padStart(5)} ${String(b.n).padStart(3)} ${b.predictedMs.toFixed(1).padStart(8)} ms ${b.measuredMs.toFixed(1).padStart(8)} ms ${(b.medianRelError * 100).toFixed(1).padStart(9)}% ${(b.p90RelError * 100).toFixed(1).padStart(7)}%`);
      }
      const goal = summary.medianRelError <= 0.1 ? 'goal <= 10% met' : 'goal <= 10% MISSED';
      console.log(`generation time: median relative error ${(summary.medianRelError * 100).toFixed(1)}% (${goal}), p90 ${(summary.p90RelError * 100).toFixed(1)}%, median signed ${(bias * 100).toFixed(1)}% (+ = estimate too high)`);
      const parts = { unetStepMs: median(rows.map((r) => r.unetStepMs)), unetMeanMs: median(rows.map((r) => r.unetMeanMs)), overheadPerStepMs: median(rows.map((r) => r.overheadPerStepMs)), textEncoderMs: median(rows.map((r) => r.textEncoderMs)), vaeMs: median(rows.map((r) => r.vaeMs)) };
      console.log(`where it comes from: UNet call in the loop median ${parts.unetStepMs.toFixed(2)} ms, mean ${parts.unetMeanMs.toFixed(2)} ms (calibrated ${cal.unetMs.toFixed(2)}), loop overhead ${parts.overheadPerStepMs.toFixed(3)} ms/step, text encoder ${parts.textEncoderMs.toFixed(2)} ms (${cal.textEncoderMs.toFixed(2)}), VAE ${parts.vaeMs.toFixed(2)} ms (${cal.vaeMs.toFixed(2)})`);
      console.log(`whole render (+ policy, PNG encode): median ${(summary.renderMedianRelError * 100).toFixed(1)}%, p90 ${(summary.renderP90RelError * 100).toFixed(1)}%`);
      return { model: model.dir, note: model.note, provider: cal.provider, calibration: cal, calibrationMs, stepsSource, loadBefore, loadAfter, ...summary, measuredParts: parts, bySteps, rows };
    } finally {
      await engine.dispose();
    }
  },
};
