// Which ONNX Runtime session options pay off for the UNet, the part a generation calls tens of
// times: one UNet call at the guidance batch (2) per variant, the variants interleaved round by
// round so a load change on the machine hits them all alike. Each variant changes one thing
// against the options the product uses (server/model/session.ts sessionOptions).
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { openModelFolder } from '../server/model/folder';
import { sessionOptions } from '../server/model/session';
import type { BenchSection } from './run';
import { median, ms, noteLoad, percentile, resolveBenchModel } from './util';

const BATCH = 2;
const ROUNDS = Number(process.env.ADADIFF_BENCH_ROUNDS ?? 40);
const CALLS_PER_ROUND = 3;
/** Between variants: lets the previous session's spinning threads go idle, so it does not slow the next one. */
const PAUSE_MS = 30;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

interface Variant {
  name: string;
  options: ort.InferenceSession.SessionOptions;
  /** Run with a preallocated output tensor in `fetches` (onnxruntime writes into it). */
  preallocated?: boolean;
}

/** Values for the symbolic dims exporters use, for a batch-2 call at the model's default size. */
function dimValues(latent: number, sequence: number): Record<string, number> {
  return { batch: BATCH, batch_size: BATCH, sequence: sequence, sequence_length: sequence, height: latent, width: latent, num_channels: 4, channels: 4 };
}

function feedsFor(session: ort.InferenceSession, dims: Record<string, number>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const meta of session.inputMetadata) {
    if (!meta.isTensor) throw new Error(`${meta.name} is not a tensor input`);
    const shape = meta.shape.map((d) => (typeof d === 'number' ? d : (dims[d] ?? BATCH)));
    const size = shape.reduce((a, b) => a * b, 1);
    if (/timestep|^t$/.test(meta.name)) {
      feeds[meta.name] = meta.type === 'int64' ? new ort.Tensor('int64', new BigInt64Array(size).fill(500n), shape) : new ort.Tensor('float32', new Float32Array(size).fill(500), shape);
    } else {
      const data = new Float32Array(size);
      for (let i = 0; i < size; i++) data[i] = Math.sin(i * 12.9898) * 0.5;
      feeds[meta.name] = new ort.Tensor('float32', data, shape);
    }
  }
  return feeds;
}

export const benchSessionOptions: BenchSection = {
  name: 'session-options',
  async run() {
    const model = await resolveBenchModel();
    const folder = await openModelFolder(model.dir);
    const latent = folder.unet.sampleSize ?? 64;
    const sequence = folder.textEncoder.maxPositions ?? 77;
    const dims = dimValues(latent, sequence);
    const overrides = Object.fromEntries(Object.entries(dims).filter(([k]) => /batch|sequence|height|width/.test(k)));
    const threads = availableParallelism();
    const chosen = sessionOptions('shared');
    const variants: Variant[] = [
      { name: 'product', options: chosen },
      // The CLI's share: every core, with onnxruntime's default spinning between ops.
      { name: 'dedicated (CLI)', options: sessionOptions('dedicated') },
      { name: 'level basic', options: { ...chosen, graphOptimizationLevel: 'basic' } },
      { name: 'level extended', options: { ...chosen, graphOptimizationLevel: 'extended' } },
      { name: 'free dims fixed', options: { ...chosen, freeDimensionOverrides: overrides } },
      ...[...new Set([1, 2, threads])].map((n) => ({ name: `threads ${n}`, options: { ...chosen, intraOpNumThreads: n } })),
      { name: 'preallocated out', options: chosen, preallocated: true },
      // Denormal floats are slow on x86 unless flushed; trained weights can produce them.
      { name: 'denormals as zero', options: { ...chosen, extra: { session: { ...((chosen.extra as { session?: object })?.session ?? {}), set_denormal_as_zero: '1' } } } },
    ];
    console.log(`model ${model.dir}: UNet at batch ${BATCH}, ${latent}x${latent} latents, sequence ${sequence}; product (editor) options: level ${chosen.graphOptimizationLevel}, ${chosen.intraOpNumThreads} intra-op threads (availableParallelism ${threads}), spinning off, no free-dim overrides; dedicated (CLI): ${threads} threads, spinning on`);
    const loadBefore = noteLoad('before');

    const sessions: { variant: Variant; session: ort.InferenceSession; createMs: number; feeds: Record<string, ort.Tensor>; fetches: ort.InferenceSession.FetchesType }[] = [];
    try {
      for (const variant of variants) {
        const t0 = performance.now();
        const session = await ort.InferenceSession.create(join(folder.unet.onnx), { ...variant.options, executionProviders: ['cpu'] });
        const createMs = performance.now() - t0;
        const feeds = feedsFor(session, dims);
        const out = session.outputMetadata[0];
        const sample = Object.values(feeds).find((t) => t.dims.length === 4)!;
        const fetches: ort.InferenceSession.FetchesType = variant.preallocated
          ? { [out.name]: new ort.Tensor('float32', new Float32Array(sample.size), sample.dims) }
          : [out.name];
        for (let i = 0; i < 3; i++) await session.run(feeds, fetches); // warm-up
        sessions.push({ variant, session, createMs, feeds, fetches });
      }
      const times = new Map<string, number[]>(variants.map((v) => [v.name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const s of sessions) {
          await sleep(PAUSE_MS);
          const t0 = performance.now();
          for (let i = 0; i < CALLS_PER_ROUND; i++) await s.session.run(s.feeds, s.fetches);
          times.get(s.variant.name)!.push((performance.now() - t0) / CALLS_PER_ROUND);
        }
      }
      const loadAfter = noteLoad('after');
      const base = median(times.get('product')!);
      const baseP10 = percentile(times.get('product')!, 10);
      const rows = sessions.map((s) => {
        const t = times.get(s.variant.name)!;
        const [m, p10] = [median(t), percentile(t, 10)];
        return { variant: s.variant.name, unetMs: m, p10Ms: p10, ratioToProduct: m / base, p10RatioToProduct: p10 / baseP10, createMs: s.createMs };
      });
      console.log(`  ${'variant'.padEnd(22)} ${'median'.padStart(10)} ${'ratio'.padStart(6)} ${'p10'.padStart(10)} ${'ratio'.padStart(6)}  session creation`);
      for (const r of rows) {
        console.log(`  ${r.variant.padEnd(22)} ${ms(r.unetMs).padStart(10)} ${r.ratioToProduct.toFixed(2).padStart(6)} ${ms(r.p10Ms).padStart(10)} ${r.p10RatioToProduct.toFixed(2).padStart(6)}  ${ms(r.createMs, 0)}`);
      }
      console.log(`  (UNet call; ${ROUNDS} rounds x ${CALLS_PER_ROUND} calls, variants interleaved; ratio = variant / product, < 1 is faster than the product's options;`);
      console.log(`   p10 shows the cost with the least interference from other processes, the median what a busy machine gives)`);
      return { model: model.dir, note: model.note, batch: BATCH, latent, sequence, threads, rounds: ROUNDS, callsPerRound: CALLS_PER_ROUND, loadBefore, loadAfter, rows };
    } finally {
      await Promise.all(sessions.map((s) => s.session.release()));
    }
  },
};
