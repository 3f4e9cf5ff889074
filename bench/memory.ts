// What the language server holds in memory and how hovers fare while a model loads, for this
// build and, side by side in the same run, for another git ref (default `main`, built from
// `git archive` into a temporary folder): before and after a change to who loads what.
//
// One scenario per build and model, on a fresh calibration cache (a first start): open a Markdown
// file with many prompts, hover the first prompt and ask for a preview at once (a user hovering,
// then previewing), and keep hovering other prompts (each a first hover: no cached prediction)
// until the preview is back; then wait for the cost to be measured, preview three more times and
// hover 100 prompts more. While the model loads, hovers come every 20 ms (a pointer moving over
// prompts); the first is counted apart, since on any build it also loads the text encoder. The server's resident memory (VmRSS of its process and its children: main thread and
// render worker) is read from /proc at each point, and its peak (VmHWM) at the end.
//
// Models: the bundled one, the optimum and fp16 fixtures, and a weight-heavy stand-in (the optimum
// fixture with its UNet replaced by 8 dense 4096x4096 layers: 512 MB of fp32 weights, a load that
// takes seconds, calls that take a fraction of one at 16x16). It is not an SD layout (the full-size
// SD 1.5 and SDXL fixtures are bench/real-size/make-fixtures.ts's, measured by `npm run bench --
// real-size`), only weights that dominate the server's memory, so that RSS / weights means
// something; pass real exports in ADADIFF_BENCH_MEMORY_MODELS.
//
//   npm run bench -- memory
//   ADADIFF_BENCH_MEMORY_REF=<git ref>              what "before" is (default main)
//   ADADIFF_BENCH_MEMORY_MODELS=/path/a:/path/b     more model folders (full-size exports)
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { HoverRequest } from 'vscode-languageserver-protocol/node';
import { openModelFolder } from '../server/model/folder';
import { GraphBuilder } from '../server/onnx/graph';
import { rawTensor } from '../server/onnx/tensor';
import { formatBytes } from '../server/model/memory';
import { PreviewRequest, SessionsRequest } from '../shared/protocol';
import { ensureFixtures } from '../test/fixtures/make-fixtures';
import { ROOT, startServer, type TestServer } from '../test/lsp/harness';
import { benchPrompts } from './prompts';
import type { BenchSection } from './run';
import { DEFAULT_MODEL_DIR, median, noteLoad, percentile } from './util';

const PROMPTS = 1500;
/** Between two hovers while the model loads: a pointer moving over prompts, not a flood that saturates the thread. */
export const HOVER_GAP_MS = 20;
const WARM_HOVERS = 100;
/** Steps per preview: enough UNet calls to be a render, few enough for the heavy stand-in. */
const STEPS = 10;
const HEAVY = { width: 4096, layers: 8 };

/**
 * The optimum fixture with a UNet of HEAVY.layers dense layers over the latent's channels
 * (sample -> per-pixel MatMuls -> 0.95 sample + 0.05 branch), weights in model.onnx_data. The
 * weights are small uniform values (a fast generator: the bench writes half a gigabyte).
 */
async function heavyModel(): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'adadiff-bench-heavy-')), 'heavy-unet');
  cpSync((await ensureFixtures()).optimum, dir, { recursive: true });
  rmSync(join(dir, 'unet'), { recursive: true });
  let seed = 12345;
  const weights = (rows: number, cols: number) => {
    const values = new Float32Array(rows * cols);
    const scale = 1 / Math.sqrt(rows);
    for (let i = 0; i < values.length; i++) {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      values[i] = (seed / 2 ** 32 - 0.5) * 2 * scale;
    }
    return rawTensor('float32', [rows, cols], new Uint8Array(values.buffer));
  };
  const b = new GraphBuilder('unet');
  const sample = b.input('sample', 'float32', ['batch_size', 'num_channels', 'height', 'width']);
  b.input('timestep', 'float32', []);
  b.input('encoder_hidden_states', 'float32', ['batch_size', 'sequence_length', 32]);
  let h = b.op('Transpose', [sample], { perm: { kind: 'ints', value: [0, 2, 3, 1] } });
  h = b.op('MatMul', [h, b.initializer('proj_in', weights(4, HEAVY.width))]);
  for (let i = 0; i < HEAVY.layers; i++) h = b.op('Tanh', [b.op('MatMul', [h, b.initializer(`layer_${i}`, weights(HEAVY.width, HEAVY.width))])]);
  h = b.op('MatMul', [h, b.initializer('proj_out', weights(HEAVY.width, 4))]);
  const branch = b.op('Transpose', [h], { perm: { kind: 'ints', value: [0, 3, 1, 2] } });
  const k = (v: number) => b.constant(rawTensor('float32', [], new Uint8Array(Float32Array.of(v).buffer)));
  b.op('Add', [b.op('Mul', [sample, k(0.95)]), b.op('Mul', [branch, k(0.05)])], {}, 'out_sample');
  b.output('out_sample', 'float32', ['batch_size', 'num_channels', 'height', 'width']);
  await b.save(join(dir, 'unet', 'model.onnx'), { externalData: { location: 'model.onnx_data' } });
  // 16x16 images (2x2 latents): each call is 8 x 4096^2 x rows multiply-adds, not minutes of them.
  await writeFile(join(dir, 'unet', 'config.json'), JSON.stringify({ _class_name: 'UNet2DConditionModel', sample_size: 2, in_channels: 4, out_channels: 4, cross_attention_dim: 32 }));
  return dir;
}

/** The CLI bundle of `ref`, built from its tree with this checkout's node_modules (in `dir`, which the caller removes). */
function buildRef(ref: string): { cli: string; commit: string; dir: string } {
  const commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', ref], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(tmpdir(), `adadiff-bench-${commit}-`));
  execFileSync('sh', ['-c', `git -C "${ROOT}" archive ${commit} | tar -x -C "${dir}"`]);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(process.execPath, ['esbuild.mjs'], { cwd: dir, stdio: 'inherit' });
  return { cli: join(dir, 'dist', 'cli.js'), commit, dir };
}

/**
 * Resident and peak memory of a process and its descendants, in bytes (Linux /proc): the render
 * worker is a child process on builds since the reliability work, a thread before, and both
 * count. The peak is the sum of each process's own peak, an upper bound.
 */
export function memoryOf(pid: number): { rss: number; peak: number } {
  let rss = 0;
  let peak = 0;
  for (const p of [pid, ...descendants(pid)]) {
    let status: string;
    try {
      status = readFileSync(`/proc/${p}/status`, 'utf8');
    } catch {
      continue; // exited between the listing and the read
    }
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    rss += kb('VmRSS');
    peak += kb('VmHWM');
  }
  return { rss, peak };
}

function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      children.push(...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number));
    }
  } catch {
    return [];
  }
  children = [...new Set(children)];
  return [...children, ...children.flatMap(descendants)];
}

/** The ONNX files and external data a server loads for this model. */
export async function weightBytes(dir: string): Promise<number> {
  const folder = await openModelFolder(dir);
  let bytes = 0;
  for (const part of [folder.textEncoder, ...(folder.second ? [folder.second.textEncoder] : []), folder.unet, folder.vaeDecoder, ...(folder.vaeEncoder ? [folder.vaeEncoder] : [])]) {
    for (const file of [part.onnx, ...part.externalData]) bytes += (await stat(file)).size;
  }
  return bytes;
}

interface Run {
  rssIdle: number;
  rssFirstPreview: number;
  rssAfterPreviews: number;
  peak: number;
  firstHoverMs: number;
  /** Every hover after the first (which loads the text part) until the cold preview returned. */
  duringLoadMs: number[];
  coldPreviewMs: number;
  costMeasuredMs: number;
  warmHoverMs: number[];
  sessions?: unknown;
}

/** A Markdown file of `count` image prompts, one every other line, and a timed hover on the i-th (each a first hover). */
export function openPromptDocument(server: TestServer, count = PROMPTS, requireSteps = false): { uri: string; prompts: string[]; hover(i: number): Promise<number> } {
  const prompts = benchPrompts(count, 21);
  const uri = server.open('memory.md', 'markdown', prompts.map((p, i) => `![${p}](img/${i}.png)`).join('\n\n') + '\n');
  const hover = async (i: number) => {
    const t0 = performance.now();
    const h = await server.conn.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: 2 * i, character: 3 } });
    if (!h) throw new Error(`no hover on prompt ${i}`);
    // On a busy machine a long document can outlast the prompt scan's time budget, and the hover
    // then says so instead of predicting: that is not the hover being measured.
    const text = typeof h.contents === 'object' && 'value' in h.contents ? h.contents.value : JSON.stringify(h.contents);
    if (requireSteps && !/\bsteps\b/.test(text)) throw new Error(`the hover on prompt ${i} has no step prediction: ${text.slice(0, 300)}`);
    return performance.now() - t0;
  };
  return { uri, prompts, hover };
}

async function scenario(cli: string | undefined, model: string): Promise<Run> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'adadiff-bench-memory-'));
  const server: TestServer = await startServer({
    cli,
    init: { trusted: true, bundledModelPath: model, cacheDir },
    settings: () => ({ model: { path: model } }),
  });
  try {
    const pid = server.child.pid!;
    const { uri, prompts, hover } = openPromptDocument(server);
    await new Promise((r) => setTimeout(r, 500));
    const rssIdle = memoryOf(pid).rss;

    const t0 = performance.now();
    let coldPreviewMs = NaN;
    const firstHover = hover(0);
    const preview = server.conn
      .sendRequest(PreviewRequest, { id: 'cold', uri, prompt: prompts[0], steps: STEPS })
      .then(() => (coldPreviewMs = performance.now() - t0));
    const firstHoverMs = await firstHover;
    const duringLoadMs: number[] = [];
    let next = 1;
    while (Number.isNaN(coldPreviewMs) && next < PROMPTS - WARM_HOVERS) {
      duringLoadMs.push(await hover(next++));
      await new Promise((r) => setTimeout(r, HOVER_GAP_MS));
    }
    await preview;
    const rssFirstPreview = memoryOf(pid).rss;
    await server.waitForCost(model, 300_000);
    const costMeasuredMs = performance.now() - t0;
    for (let i = 1; i <= 3; i++) await server.conn.sendRequest(PreviewRequest, { id: `warm-${i}`, uri, prompt: prompts[i], steps: STEPS });
    const warmHoverMs: number[] = [];
    for (let i = 0; i < WARM_HOVERS && next < PROMPTS; i++) warmHoverMs.push(await hover(next++));
    const { rss: rssAfterPreviews, peak } = memoryOf(pid);
    // Only builds that have adadiff/sessions answer it.
    const sessions = await Promise.race([server.conn.sendRequest(SessionsRequest).catch(() => undefined), new Promise((r) => setTimeout(() => r(undefined), 5000))]);
    return { rssIdle, rssFirstPreview, rssAfterPreviews, peak, firstHoverMs, duringLoadMs, coldPreviewMs, costMeasuredMs, warmHoverMs, sessions };
  } finally {
    await server.stop();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

const mb = (b: number) => formatBytes(b);
export const lat = (xs: number[]) => (xs.length === 0 ? 'none (the preview was back first)' : `p50 ${median(xs).toFixed(1)} / p95 ${percentile(xs, 95).toFixed(1)} / max ${Math.max(...xs).toFixed(0)} ms (${xs.length})`);

function summary(run: Run, weights: number) {
  return {
    rssIdleBytes: run.rssIdle,
    rssFirstPreviewBytes: run.rssFirstPreview,
    rssAfterPreviewsBytes: run.rssAfterPreviews,
    peakBytes: run.peak,
    rssOverWeights: run.rssAfterPreviews / weights,
    loadedOverWeights: (run.rssAfterPreviews - run.rssIdle) / weights,
    firstHoverMs: run.firstHoverMs,
    hoverDuringLoad: run.duringLoadMs.length ? { count: run.duringLoadMs.length, p50Ms: median(run.duringLoadMs), p95Ms: percentile(run.duringLoadMs, 95), maxMs: Math.max(...run.duringLoadMs) } : { count: 0 },
    coldPreviewMs: run.coldPreviewMs,
    costMeasuredMs: run.costMeasuredMs,
    warmHover: { p50Ms: median(run.warmHoverMs), p95Ms: percentile(run.warmHoverMs, 95) },
    sessions: run.sessions,
  };
}

export const benchMemory: BenchSection = {
  name: 'memory',
  async run() {
    const ref = process.env.ADADIFF_BENCH_MEMORY_REF ?? 'main';
    const fixtures = await ensureFixtures();
    const heavy = await heavyModel();
    const models = [
      ...(existsSync(join(DEFAULT_MODEL_DIR, 'model_index.json')) ? [DEFAULT_MODEL_DIR] : []),
      fixtures.optimum,
      fixtures.fp16,
      heavy,
      ...(process.env.ADADIFF_BENCH_MEMORY_MODELS ?? '').split(':').filter(Boolean),
    ];
    const before = buildRef(ref);
    try {
      return await compare(models, ref, before);
    } finally {
      // Half a gigabyte of stand-in weights and a build: not left behind in the temporary folder.
      rmSync(dirname(heavy), { recursive: true, force: true });
      rmSync(before.dir, { recursive: true, force: true });
    }
  },
};

async function compare(models: string[], ref: string, before: ReturnType<typeof buildRef>): Promise<Record<string, unknown>> {
  const here = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
  const afterLabel = `this build (${here}${dirty ? '+changes' : ''})`;
  const beforeLabel = `${ref} (${before.commit})`;
  const results: Record<string, unknown> = { before: beforeLabel, after: afterLabel, loadBefore: noteLoad('before') };
  const rows: Record<string, unknown>[] = [];
  for (const model of models) {
    const weights = await weightBytes(model);
    // Before, then after, on the same model back to back: the machine's load is alike for both.
    const old = await scenario(before.cli, model);
    const now = await scenario(undefined, model);
    const [o, n] = [summary(old, weights), summary(now, weights)];
    rows.push({ model, weightBytes: weights, before: o, after: n });
    const line = (label: string, a: string, b: string) => console.log(`  ${label.padEnd(40)}${a.padEnd(44)}${b}`);
    console.log(`\n${model}: weights ${mb(weights)} (ONNX files and external data)`);
    line('', beforeLabel, afterLabel);
    line('RSS idle (server started)', mb(old.rssIdle), mb(now.rssIdle));
    line('RSS after the first preview', mb(old.rssFirstPreview), mb(now.rssFirstPreview));
    line('RSS after 4 previews + hovers', mb(old.rssAfterPreviews), mb(now.rssAfterPreviews));
    line('peak RSS (VmHWM)', mb(old.peak), mb(now.peak));
    line('RSS / weights (goal <= 1.2)', o.rssOverWeights.toFixed(2), n.rssOverWeights.toFixed(2));
    line('(RSS - idle) / weights', o.loadedOverWeights.toFixed(2), n.loadedOverWeights.toFixed(2));
    line('first hover (cold server)', `${old.firstHoverMs.toFixed(0)} ms`, `${now.firstHoverMs.toFixed(0)} ms`);
    line('later hovers until the preview is back', lat(old.duringLoadMs), lat(now.duringLoadMs));
    line('cold preview (load + render)', `${old.coldPreviewMs.toFixed(0)} ms`, `${now.coldPreviewMs.toFixed(0)} ms`);
    line('cost measured (status) at', `${old.costMeasuredMs.toFixed(0)} ms`, `${now.costMeasuredMs.toFixed(0)} ms`);
    line('warm hovers', lat(old.warmHoverMs), lat(now.warmHoverMs));
    if (now.sessions) console.log(`  sessions (this build): ${JSON.stringify(now.sessions)}`);
  }
  results.models = rows;
  results.loadAfter = noteLoad('after');
  return results;
}
