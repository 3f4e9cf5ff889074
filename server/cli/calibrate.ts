// `adadiff calibrate`: measure the model's parts on this machine again (after a driver, hardware or
// load change) and replace the cached figures that hovers, CodeLens and asset ETAs read.
import { estimateSeconds, recalibrate } from '../adadiff/cost';
import { runtimeVersion } from '../engine';
import { defineCommand } from './command';
import { withModel } from './context';
import { json, model as modelOption } from './options';
import { runsUnconditional } from '../pipeline/generate';

export const calibrateCommand = defineCommand({
  name: 'calibrate',
  summary: 'measure the model on this machine again (the cost hovers and lenses show)',
  options: { model: modelOption, json },
  run: (values) =>
    withModel(values.model, async (handle, engine) => {
      const model = handle.model;
      const shape = { guided: runsUnconditional(model, handle.guidance) };
      const { calibration: cal, previous } = await recalibrate(model, shape, engine.calibrations, runtimeVersion());
      const [c, h, w] = model.latentShape();
      const steps = [...new Set([...(handle.policy?.manifest.candidates ?? [10, 25]), handle.baselineSteps])].sort((a, b) => a - b);
      const estimates = steps.map((s) => ({ steps: s, seconds: estimateSeconds(cal, s) }));
      if (values.json) {
        console.log(JSON.stringify({ model: { dir: values.model, name: model.folder.name }, runtime: runtimeVersion(), parts: model.providers, shape: { ...shape, latent: [c, h, w] }, calibration: cal, previous: previous ?? null, estimates }, null, 2));
        return 0;
      }
      const batch = shape.guided ? 2 : 1;
      console.log(`${model.folder.name} (${values.model}) on ${cal.provider}, ${runtimeVersion()}; median of ${cal.runs} runs after warm-up`);
      const rows: [string, string, number, number | undefined][] = [
        ['text encoder', model.providers.textEncoder.used, cal.textEncoderMs, previous?.textEncoderMs],
        [`UNet call (batch ${batch})`, model.providers.unet.used, cal.unetMs, previous?.unetMs],
        ['VAE decode', model.providers.vaeDecoder.used, cal.vaeMs, previous?.vaeMs],
      ];
      console.log(`  ${'part'.padEnd(20)} ${'provider'.padEnd(9)} ${'ms'.padStart(9)}${previous ? `  ${'before'.padStart(9)}` : ''}`);
      for (const [part, provider, now, before] of rows) {
        console.log(`  ${part.padEnd(20)} ${provider.padEnd(9)} ${now.toFixed(2).padStart(9)}${before !== undefined ? `  ${before.toFixed(2).padStart(9)}` : ''}`);
      }
      console.log(`  estimates (${w * model.vaeScaleFactor}x${h * model.vaeScaleFactor}): ${estimates.map((e) => `${e.steps} steps ${preciseSeconds(e.seconds)}`).join(', ')}`);
      if (!previous) console.log('  (no earlier figure for this model, provider and runtime: this is the first)');
      return 0;
    }),
});

/** Two decimals, not shared/format's rounding: a calibration is read for its precision. */
function preciseSeconds(s: number): string {
  return s < 1 ? `${(s * 1000).toFixed(0)} ms` : `${s.toFixed(2)} s`;
}
