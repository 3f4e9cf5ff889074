// The models people run, at their real size (random weights; bench/real-size/make-fixtures.ts
// writes them): not part of a plain `npm run bench`, since on a small CPU it takes many minutes.
//
//   npm run fixtures:full-size        (once: about 13 GB under ~/.cache/adadiff/full-size)
//   npm run bench -- real-size
//   ADADIFF_BENCH_REAL_SIZE_BLOCKS=3          alternating blocks of one UNet call per side
//   ADADIFF_BENCH_REAL_SIZE_COST_S=300        how long to wait for the server's cost measurement per model
//   ADADIFF_BENCH_REAL_SIZE_PARTS=unet,server  which of the two measurements below to run
//
// 1. One SD 1.5 UNet call at 512x512 (latents 64x64) and batch 2 (classifier-free guidance), fp32:
//    ONNX Runtime through the product's own path (loadModel, the CLI's session options: every core)
//    against PyTorch (bench/real-size/torch_unet.py: the same architecture with the same weights,
//    torch.set_num_threads(cores) and as many OpenBLAS threads), in alternating blocks after a warm-up call each, and both
//    outputs for the same input compared (that they agree is what shows the weights are the same).
// 2. The language server with the SD 1.5 fixture in fp32 and the SD 1.5 and SDXL ones in fp16 (how they are usually
//    shipped): a first hover (which loads the text encoders), then a hover every 20 ms while the
//    render worker loads the UNet and VAE and measures the cost; resident memory of the server and
//    its worker (/proc, as `bench memory` reads it) against the weights' size at each point.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { openModelFolder } from '../server/model/folder';
import { formatBytes } from '../server/model/memory';
import { loadModel, sessionOptions } from '../server/model/session';
import { SessionsRequest } from '../shared/protocol';
import { startServer } from '../test/lsp/harness';
import { tempDir } from '../test/temp-dirs';
import { HOVER_GAP_MS, lat, memoryOf, openPromptDocument, weightBytes } from './memory';
import { type FullSizeModel, fullSizeFolder, fullSizeRoot, PYTHON } from './real-size/make-fixtures';
import type { BenchSection } from './run';
import { median, noteLoad, percentile } from './util';

const BLOCKS = Number(process.env.ADADIFF_BENCH_REAL_SIZE_BLOCKS ?? 3);
const COST_WAIT_MS = Number(process.env.ADADIFF_BENCH_REAL_SIZE_COST_S ?? 300) * 1000;
const LOAD_TIMEOUT_MS = 600_000;
/**
 * Prompts in the hovered document: the first HOVER_PROMPTS hovers are first ones (no cached
 * prediction), later ones repeat them. More would outlast the prompt scan's time budget on a busy
 * 2-core machine, and the hovers would say that instead of predicting.
 */
const HOVER_PROMPTS = 400;
const BATCH = 2;
const LATENT = 64;
const CONTEXT = 768;
const SEQUENCE = 77;
const PARTS = (process.env.ADADIFF_BENCH_REAL_SIZE_PARTS ?? 'unet,server').split(',');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The input torch_unet.py's bench_input builds: sample[i] = sin(0.01 i), hidden[i] = 0.5 cos(0.003 i). */
function benchInput() {
  const sample = Float32Array.from({ length: BATCH * 4 * LATENT * LATENT }, (_, i) => Math.sin(i * 0.01));
  const hidden = Float32Array.from({ length: BATCH * SEQUENCE * CONTEXT }, (_, i) => 0.5 * Math.cos(i * 0.003));
  return { sample, dims: [BATCH, 4, LATENT, LATENT] as [number, number, number, number], text: { hidden, dims: [BATCH, SEQUENCE, CONTEXT] as [number, number, number] } };
}

/** torch_unet.py as a process that stays up between blocks: one JSON request and answer a line. */
class TorchUnet {
  private readonly child: ChildProcess;
  private readonly lines: AsyncIterator<string>;
  private constructor(model: string, threads: number) {
    this.child = spawn(PYTHON, [join(__dirname, 'real-size', 'torch_unet.py'), '--model', model, '--threads', String(threads), '--batch', String(BATCH), '--latent', String(LATENT)], {
      // Debian's torch does its matrix products in OpenBLAS (BLAS_INFO=generic), its convolutions in
      // oneDNN: both get the threads, or PyTorch's GEMMs would run on one core while ONNX Runtime's use all.
      env: { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.lines = createInterface({ input: this.child.stdout! })[Symbol.asyncIterator]();
  }
  static async start(model: string, threads: number): Promise<{ torch?: TorchUnet; ready: Record<string, unknown> }> {
    const t = new TorchUnet(model, threads);
    const ready = await t.next();
    if (!ready.ready) {
      t.stop();
      return { ready };
    }
    return { torch: t, ready };
  }
  private async next(): Promise<Record<string, unknown>> {
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`${PYTHON} bench/real-size/torch_unet.py exited (code ${this.child.exitCode})`);
    return JSON.parse(value);
  }
  async ask(request: object): Promise<Record<string, unknown>> {
    this.child.stdin!.write(JSON.stringify(request) + '\n');
    return this.next();
  }
  stop() {
    this.child.kill();
  }
}

async function unetSpeed(dir: string): Promise<Record<string, unknown>> {
  const cores = availableParallelism();
  const threads = sessionOptions('dedicated').intraOpNumThreads!;
  const input = benchInput();
  const t0 = performance.now();
  const model = await loadModel(await openModelFolder(dir), { cpu: 'dedicated', providers: ['cpu'] });
  const ortLoadMs = performance.now() - t0;
  const { torch, ready } = await TorchUnet.start(dir, cores);
  if (!torch) {
    await model.dispose();
    console.log(`PyTorch side skipped: ${String(ready.skipped)}`);
    return { skipped: ready.skipped };
  }
  try {
    console.log(`SD 1.5 UNet (${(Number(ready.parameters) / 1e6).toFixed(1)}M parameters, fp32), one call at batch ${BATCH}, latents ${LATENT}x${LATENT} (512x512 px); ONNX Runtime ${threads} threads (the CLI's options), PyTorch ${String(ready.torch)} ${String(ready.threads)} threads`);
    console.log(`loaded: ONNX Runtime (text encoder, UNet, VAE sessions) ${(ortLoadMs / 1000).toFixed(1)} s, PyTorch (UNet built, weights drawn) ${(Number(ready.build_ms) / 1000).toFixed(1)} s`);
    const ortCall = async () => {
      const t = performance.now();
      const out = await model.unet(input.sample, input.dims, 500, input.text);
      return { ms: performance.now() - t, out };
    };
    // Warm-up on both sides, and the check that they compute the same function.
    const { out } = await ortCall();
    const file = join(tempDir('adadiff-bench-real-size-'), 'torch.f32');
    await torch.ask({ cmd: 'output', path: file });
    const theirs = new Float32Array(readFileSync(file).buffer.slice(0));
    rmSync(file, { force: true });
    let maxDiff = 0;
    let maxAbs = 0;
    for (let i = 0; i < out.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(out[i] - theirs[i]));
      maxAbs = Math.max(maxAbs, Math.abs(theirs[i]));
    }
    console.log(`same weights: max |ONNX Runtime - PyTorch| ${maxDiff.toExponential(2)} over outputs up to ${maxAbs.toFixed(3)} (${out.length} values)`);
    const loadBefore = noteLoad('before');
    const ort: number[] = [];
    const pt: number[] = [];
    for (let b = 0; b < BLOCKS; b++) {
      pt.push(...((await torch.ask({ cmd: 'run', calls: 1 })).ms as number[]));
      ort.push((await ortCall()).ms);
      console.log(`  block ${b + 1}/${BLOCKS}: ONNX Runtime ${(ort[b] / 1000).toFixed(2)} s, PyTorch ${(pt[b] / 1000).toFixed(2)} s`);
    }
    const loadAfter = noteLoad('after');
    const row = (label: string, xs: number[]) => {
      console.log(`  ${label.padEnd(34)} median ${(median(xs) / 1000).toFixed(2).padStart(7)} s   min ${(Math.min(...xs) / 1000).toFixed(2).padStart(7)} s   (${xs.length} calls)`);
      return { label, medianMs: median(xs), minMs: Math.min(...xs), calls: xs };
    };
    const rows = [row(`ONNX Runtime (${threads} threads)`, ort), row(`PyTorch ${String(ready.torch)} (${String(ready.threads)} threads)`, pt)];
    const speedup = median(pt) / median(ort);
    console.log(`ONNX Runtime vs PyTorch per SD 1.5 UNet call: ${speedup.toFixed(2)}x ${speedup >= 1.3 ? '(goal >= 1.3x met)' : '(goal >= 1.3x MISSED)'}`);
    return { model: dir, batch: BATCH, latent: LATENT, threads, torch: ready.torch, torchThreads: ready.threads, ortLoadMs, torchBuildMs: ready.build_ms, maxAbsDiff: maxDiff, maxAbsOutput: maxAbs, loadBefore, loadAfter, rows, speedupVsTorch: speedup };
  } finally {
    torch.stop();
    await model.dispose();
  }
}

interface Loading {
  model: string;
  weightBytes: number;
  rssIdle: number;
  firstHoverMs: number;
  rssText: number;
  /** From the first hover until the render worker holds the UNet and VAE sessions. */
  unetLoadedMs?: number;
  rssLoaded?: number;
  hoversWhileLoading: number[];
  costMeasuredMs?: number;
  hoversWhileMeasuring: number[];
  rssEnd: number;
  peak: number;
}

/** The server on `model`: hovers while the worker loads the UNet and VAE and measures their cost. */
export async function serverLoading(model: string): Promise<Loading> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'adadiff-bench-real-size-'));
  const server = await startServer({ init: { trusted: true, bundledModelPath: model, cacheDir }, settings: () => ({ model: { path: model } }) });
  try {
    const pid = server.child.pid!;
    const { hover } = openPromptDocument(server, HOVER_PROMPTS, true);
    await sleep(500);
    const rssIdle = memoryOf(pid).rss;
    const t0 = performance.now();
    const firstHoverMs = await hover(0);
    const rssText = memoryOf(pid).rss;
    let unetLoadedMs: number | undefined;
    let rssLoaded: number | undefined;
    let costMeasuredMs: number | undefined;
    let stop = false;
    const watchSessions = (async () => {
      while (!stop && unetLoadedMs === undefined) {
        const s = await server.conn.sendRequest(SessionsRequest);
        if (s.worker.unet > 0 && s.worker.vaeDecoder > 0) {
          unetLoadedMs = performance.now() - t0;
          rssLoaded = memoryOf(pid).rss;
        } else await sleep(200);
      }
    })();
    const cost = server.waitForCost(model, COST_WAIT_MS).then(
      () => (costMeasuredMs = performance.now() - t0),
      () => undefined,
    );
    let settled = false;
    void cost.then(() => (settled = true));
    const hoversWhileLoading: number[] = [];
    const hoversWhileMeasuring: number[] = [];
    let next = 1;
    while (!settled && performance.now() - t0 < LOAD_TIMEOUT_MS) {
      (unetLoadedMs === undefined ? hoversWhileLoading : hoversWhileMeasuring).push(await hover(next++ % HOVER_PROMPTS));
      await sleep(HOVER_GAP_MS);
    }
    stop = true;
    await Promise.all([cost, watchSessions]);
    const { rss: rssEnd, peak } = memoryOf(pid);
    return { model, weightBytes: await weightBytes(model), rssIdle, firstHoverMs, rssText, unetLoadedMs, rssLoaded, hoversWhileLoading, costMeasuredMs, hoversWhileMeasuring, rssEnd, peak };
  } finally {
    await server.stop();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

function printLoading(name: string, r: Loading) {
  const mb = formatBytes;
  const ratio = (rss?: number) => (rss === undefined ? 'n/a' : `${mb(rss)} (${(rss / r.weightBytes).toFixed(2)}x the weights)`);
  const s = (ms?: number) => (ms === undefined ? 'not within the wait' : `${(ms / 1000).toFixed(1)} s`);
  console.log(`\n${name}: ${r.model}, weights ${mb(r.weightBytes)}`);
  console.log(`  RSS idle ${mb(r.rssIdle)}; after the first hover (text encoders loaded) ${ratio(r.rssText)}; first hover ${(r.firstHoverMs / 1000).toFixed(2)} s`);
  console.log(`  UNet + VAE loaded in the render worker after ${s(r.unetLoadedMs)}: RSS ${ratio(r.rssLoaded)}`);
  console.log(`  cost measured after ${s(r.costMeasuredMs)}; RSS then ${ratio(r.rssEnd)}, peak (VmHWM, sum over processes) ${ratio(r.peak)}`);
  console.log(`  hovers while the UNet and VAE load:     ${lat(r.hoversWhileLoading)}`);
  console.log(`  hovers while the worker measures cost:  ${lat(r.hoversWhileMeasuring)}`);
}

const summary = (r: Loading) => ({
  ...r,
  hoversWhileLoading: r.hoversWhileLoading.length ? { count: r.hoversWhileLoading.length, p50Ms: median(r.hoversWhileLoading), p95Ms: percentile(r.hoversWhileLoading, 95), maxMs: Math.max(...r.hoversWhileLoading) } : { count: 0 },
  hoversWhileMeasuring: r.hoversWhileMeasuring.length ? { count: r.hoversWhileMeasuring.length, p50Ms: median(r.hoversWhileMeasuring), p95Ms: percentile(r.hoversWhileMeasuring, 95), maxMs: Math.max(...r.hoversWhileMeasuring) } : { count: 0 },
  rssLoadedOverWeights: r.rssLoaded === undefined ? undefined : r.rssLoaded / r.weightBytes,
  peakOverWeights: r.peak / r.weightBytes,
});

export const benchRealSize: BenchSection = {
  name: 'real-size',
  optIn: true,
  async run() {
    const root = fullSizeRoot();
    const want: FullSizeModel[] = ['sd15-fp32', 'sd15-fp16', 'sdxl-fp16'];
    const found = Object.fromEntries(want.map((m) => [m, fullSizeFolder(m, root)])) as Record<FullSizeModel, string | undefined>;
    const missing = want.filter((m) => !found[m]);
    if (missing.length) {
      console.log(`missing or out of date under ${root}: ${missing.join(', ')}. Create them with \`npm run fixtures:full-size\` (python3-torch and python3-onnx; about 13 GB of disk and 15 minutes on 2 cores), or point ADADIFF_FULL_SIZE_DIR at where they are`);
      if (missing.length === want.length) return { skipped: `no full-size fixtures under ${root}` };
    }
    const results: Record<string, unknown> = { root, missing };
    if (found['sd15-fp32'] && PARTS.includes('unet')) results.unet = await unetSpeed(found['sd15-fp32']);
    const servers: Record<string, unknown> = {};
    for (const m of ['sd15-fp32', 'sd15-fp16', 'sdxl-fp16'] as const) {
      if (!found[m] || !PARTS.includes('server')) continue;
      const r = await serverLoading(found[m]!);
      printLoading(m, r);
      servers[m] = summary(r);
    }
    results.server = servers;
    results.loadAfter = noteLoad('after');
    return results;
  },
};
