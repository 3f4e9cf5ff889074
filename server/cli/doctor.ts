// `adadiff doctor`: what can run here and why not, and whether the model opens, before a user
// wonders why generation is slow or fails.
import * as ort from 'onnxruntime-node';
import { errorText } from '../errors';
import { defaultProviders, providerAvailability } from '../model/providers';
import { defineCommand } from './command';
import { cacheDir, cliProviders, withModel } from './context';
import { json, model as modelOption } from './options';

export const doctorCommand = defineCommand({
  name: 'doctor',
  summary: 'check execution providers and the model folder',
  options: { model: modelOption, json },
  async run(values) {
    const modelDir = values.model;
    const order = cliProviders() ?? defaultProviders();
    const providers = providerAvailability([...new Set([...order, ...defaultProviders(), 'cpu'])]);
    const report: Record<string, unknown> = {
      runtime: `onnxruntime-node ${ort.env.versions.common}`,
      platform: `${process.platform}-${process.arch}`,
      node: process.version,
      providerOrder: order,
      providers,
      cacheDir: cacheDir(),
    };
    let ok = true;
    try {
      report.model = await withModel(modelDir, async (handle) => ({
        dir: modelDir,
        name: handle.model.folder.name,
        hash: (await handle.model.folder.hash()).slice(0, 10),
        layout: {
          kind: handle.model.layout.kind,
          name: handle.model.layout.name,
          traits: handle.model.layout.traits,
          scheduler: handle.scheduler,
          guidance: handle.guidance,
          baselineSteps: handle.baselineSteps,
        },
        parts: handle.model.providers,
        warnings: [...handle.model.folder.warnings, ...handle.model.layout.notes],
        policy: handle.policy ? { candidates: handle.policy.manifest.candidates, baselineSteps: handle.baselineSteps } : null,
        calibration: await handle.calibration(),
      }));
    } catch (err) {
      ok = false;
      report.model = { dir: modelDir, error: errorText(err) };
    }
    if (values.json) {
      console.log(JSON.stringify(report, null, 2));
      return ok ? 0 : 1;
    }
    console.log(`${report.runtime} on ${report.platform}, Node ${report.node}`);
    console.log(`execution providers (tried in order ${order.join(', ')}):`);
    for (const p of providers) console.log(`  ${p.available ? 'yes' : 'no '} ${p.name}${p.reason ? `: ${p.reason}` : ''}`);
    const model = report.model as Record<string, any>;
    if (!ok) {
      console.log(`model ${modelDir}: ERROR ${model.error}`);
      return 1;
    }
    console.log(`model ${model.name} (${model.dir}), hash ${model.hash}`);
    const layout = model.layout;
    console.log(`  layout     ${layout.name}${layout.traits.length ? `: ${layout.traits.join('; ')}` : ''}`);
    console.log(`  renders    ${layout.scheduler}, guidance ${layout.guidance}, baseline ${layout.baselineSteps} steps`);
    // A part's failure is worth a line only when it says more than the provider list above.
    const known = new Map(providers.map((p) => [p.name, p.reason]));
    for (const [part, choice] of Object.entries(model.parts as Record<string, { used: string; tried: { name: string; error?: string }[] } | undefined>)) {
      if (!choice) continue;
      const extra = choice.tried.filter((t) => t.error && t.error !== known.get(t.name)).map((t) => `\n      not ${t.name}: ${t.error}`);
      console.log(`  ${part.padEnd(12)} runs on ${choice.used}${extra.join('')}`);
    }
    for (const w of model.warnings as string[]) console.log(`  warning: ${w}`);
    console.log(model.policy ? `  step policy: candidates ${model.policy.candidates.join(', ')}, baseline ${model.policy.baselineSteps}` : '  step policy: none (baseline steps are used; train one with `adadiff train-policy`)');
    const cal = model.calibration;
    console.log(`  cost on ${cal.provider}: text encoder ${cal.textEncoderMs.toFixed(1)} ms, UNet call ${cal.unetMs.toFixed(1)} ms, VAE ${cal.vaeMs.toFixed(1)} ms`);
    return 0;
  },
});
