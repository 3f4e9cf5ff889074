// The GPU check (test/gpu/check.sh runs the bundle of this file): the same generation on every
// execution provider asked for, each provider alone (no fallback, so a provider that cannot run
// is reported with its reason rather than silently replaced by CPU), images compared with CPU's
// within a tolerance, and per-step times per provider. Exit code: 0 when every provider that ran
// matched CPU, 1 when one did not (or CPU itself failed); a provider that is unavailable is not a
// failure: this check must also run, and say why, on a machine without a GPU.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { measureCalibration } from '../../server/adadiff/cost';
import { errorText } from '../../server/errors';
import { openModelFolder } from '../../server/model/folder';
import { providerUnavailableReason } from '../../server/model/providers';
import { loadModel } from '../../server/model/session';
import { generate } from '../../server/pipeline/generate';
import { encodePng, type RgbImage } from '../../server/pipeline/png';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    providers: { type: 'string', default: 'cpu,webgpu,cuda' },
    prompt: { type: 'string', default: 'red apple emoji' },
    steps: { type: 'string', default: '20' },
    guidance: { type: 'string', default: '7' },
    seed: { type: 'string', default: '1' },
    /** Largest mean absolute difference per 8-bit channel value allowed against CPU's image. */
    'max-mean-diff': { type: 'string', default: '3' },
    /** Smallest PSNR (dB) against CPU's image. */
    'min-psnr': { type: 'string', default: '30' },
    out: { type: 'string' },
  },
});

interface ProviderResult {
  provider: string;
  available: boolean;
  reason?: string;
  parts?: Record<string, string>;
  loadMs?: number;
  steps?: { firstMs: number; medianMs: number; minMs: number; maxMs: number };
  generationMs?: number;
  calibration?: { textEncoderMs: number; unetMs: number; vaeMs: number; runs: number };
  vsCpu?: { meanAbsDiff: number; maxAbsDiff: number; psnrDb: number; withinTolerance: boolean };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function compare(a: RgbImage, b: RgbImage): { meanAbsDiff: number; maxAbsDiff: number; psnrDb: number } {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`image sizes differ: ${a.width}x${a.height} vs ${b.width}x${b.height}`);
  let sum = 0;
  let sq = 0;
  let max = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    sum += d;
    sq += d * d;
    if (d > max) max = d;
  }
  const mse = sq / a.data.length;
  return { meanAbsDiff: sum / a.data.length, maxAbsDiff: max, psnrDb: mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse) };
}

async function main(): Promise<number> {
  const modelDir = resolve(values.model ?? join(process.cwd(), 'models', 'default'));
  const outDir = resolve(values.out ?? process.env.OUT ?? join(process.cwd(), '.gpu', 'out'));
  mkdirSync(outDir, { recursive: true });
  const steps = Number(values.steps);
  const guidance = Number(values.guidance);
  const seed = Number(values.seed);
  const maxMeanDiff = Number(values['max-mean-diff']);
  const minPsnr = Number(values['min-psnr']);
  const providers = values.providers!.split(',').map((p) => p.trim()).filter(Boolean);
  if (providers[0] !== 'cpu') providers.unshift('cpu'); // the reference image
  console.log(`onnxruntime-node ${ort.env.versions.common}, Node ${process.version}, ${process.platform}-${process.arch}`);
  console.log(`model ${modelDir}; "${values.prompt}", ${steps} steps, guidance ${guidance}, seed ${seed}; tolerance: mean |diff| <= ${maxMeanDiff}/255 and PSNR >= ${minPsnr} dB against cpu`);
  console.log(`LD_LIBRARY_PATH=${process.env.LD_LIBRARY_PATH ?? ''}${process.env.VK_DRIVER_FILES ? ` VK_DRIVER_FILES=${process.env.VK_DRIVER_FILES}` : ''}`);

  const folder = await openModelFolder(modelDir);
  const results: ProviderResult[] = [];
  let reference: RgbImage | undefined;
  let ok = true;
  for (const provider of providers) {
    const precheck = providerUnavailableReason(provider);
    if (precheck) {
      results.push({ provider, available: false, reason: precheck });
      console.log(`\n[${provider}] unavailable: ${precheck}`);
      continue;
    }
    console.log(`\n[${provider}]`);
    const t0 = performance.now();
    let model;
    try {
      model = await loadModel(folder, { providers: [provider] });
    } catch (err) {
      const reason = errorText(err);
      results.push({ provider, available: false, reason });
      console.log(`  unavailable: could not create a session: ${reason}`);
      if (provider === 'cpu') ok = false;
      continue;
    }
    const loadMs = performance.now() - t0;
    try {
      const parts = Object.fromEntries(Object.entries(model.providers).map(([part, c]) => [part, c!.used]));
      const opts = { prompt: values.prompt!, steps, seed, guidance, scheduler: 'ddim' as const };
      await generate(model, { ...opts, steps: Math.min(steps, 3) }); // warm-up: kernel/shader compilation, allocations
      const result = await generate(model, opts);
      const t = result.timings;
      const cal = await measureCalibration(model, { guided: guidance > 1 }, 'gpu-check', 10, 2);
      const row: ProviderResult = {
        provider,
        available: true,
        parts,
        loadMs,
        steps: { firstMs: t.unetMs[0], medianMs: median(t.unetMs), minMs: Math.min(...t.unetMs), maxMs: Math.max(...t.unetMs) },
        generationMs: t.totalMs,
        calibration: { textEncoderMs: cal.textEncoderMs, unetMs: cal.unetMs, vaeMs: cal.vaeMs, runs: cal.runs },
      };
      writeFileSync(join(outDir, `${provider}.png`), encodePng(result.image));
      console.log(`  parts: ${Object.entries(parts).map(([p, u]) => `${p}=${u}`).join(', ')}; sessions created in ${loadMs.toFixed(0)} ms`);
      console.log(`  per step (UNet call, batch ${guidance > 1 ? 2 : 1}): median ${row.steps!.medianMs.toFixed(2)} ms, min ${row.steps!.minMs.toFixed(2)}, max ${row.steps!.maxMs.toFixed(2)}, first ${row.steps!.firstMs.toFixed(2)}`);
      console.log(`  per-step times: ${t.unetMs.map((v) => v.toFixed(1)).join(' ')}`);
      console.log(`  generation ${t.totalMs.toFixed(1)} ms (text encoder ${t.textEncoderMs.toFixed(1)}, VAE ${t.vaeMs.toFixed(1)}); calibration: text ${cal.textEncoderMs.toFixed(2)}, UNet ${cal.unetMs.toFixed(2)}, VAE ${cal.vaeMs.toFixed(2)} ms`);
      if (provider === 'cpu') {
        reference = result.image;
      } else if (reference) {
        const diff = compare(reference, result.image);
        const withinTolerance = diff.meanAbsDiff <= maxMeanDiff && diff.psnrDb >= minPsnr;
        row.vsCpu = { ...diff, withinTolerance };
        if (!withinTolerance) ok = false;
        console.log(`  vs cpu: mean |diff| ${diff.meanAbsDiff.toFixed(3)}, max ${diff.maxAbsDiff}, PSNR ${diff.psnrDb.toFixed(1)} dB: ${withinTolerance ? 'within tolerance' : 'OUT OF TOLERANCE'}`);
      }
      results.push(row);
    } finally {
      await model.dispose();
    }
  }

  console.log('\nsummary');
  const cpu = results.find((r) => r.provider === 'cpu' && r.available);
  for (const r of results) {
    if (!r.available) {
      console.log(`  ${r.provider.padEnd(7)} unavailable: ${r.reason}`);
      continue;
    }
    const speed = cpu && r !== cpu ? `, ${(cpu.steps!.medianMs / r.steps!.medianMs).toFixed(2)}x cpu's step speed` : '';
    const match = r.vsCpu ? `, vs cpu PSNR ${r.vsCpu.psnrDb.toFixed(1)} dB ${r.vsCpu.withinTolerance ? 'OK' : 'MISMATCH'}` : '';
    console.log(`  ${r.provider.padEnd(7)} step ${r.steps!.medianMs.toFixed(2)} ms${speed}, generation ${r.generationMs!.toFixed(0)} ms${match}`);
  }
  writeFileSync(join(outDir, 'gpu-check.json'), JSON.stringify({ date: new Date().toISOString(), model: modelDir, steps, guidance, seed, results }, null, 2) + '\n');
  console.log(`\nimages and gpu-check.json in ${outDir}`);
  console.log(ok ? 'GPU CHECK OK' : 'GPU CHECK FAILED');
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
