// ONNX Runtime (the product's pipeline and session options) against PyTorch (the recipe's own torch
// modules and DDIM loop, bench/torch_generate.py) on the bundled model: same prompt, steps,
// guidance and weights, this CPU, the sides alternating in blocks within one run so a change in the
// machine's load hits all of them. PyTorch: /usr/bin/python3, torch.set_num_threads(cores),
// OPENBLAS_NUM_THREADS=1, against the CLI's sessions (every core); a second pair, PyTorch on one
// thread against the editor's sessions (one core left to the editor), shows the single-core gap.
// Skipped, with the reason, where python3-torch is missing or the model is not a models/recipe export.
import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Engine } from '../server/engine';
import { sessionOptions } from '../server/model/session';
import { tempDir } from '../test/temp-dirs';
import type { BenchSection } from './run';
import { median, noteLoad, resolveBenchModel } from './util';

const PYTHON = process.env.ADADIFF_BENCH_PYTHON ?? '/usr/bin/python3';
const PROMPT = 'red apple emoji';
const STEPS = 25;
const BLOCKS = Number(process.env.ADADIFF_BENCH_TORCH_BLOCKS ?? 4);
const PER_BLOCK = 3;

interface TorchRun {
  text_encoder_ms: number;
  loop_ms: number;
  vae_ms: number;
  total_ms: number;
}

async function torchBlock(model: string, guidance: number, threads: number, seed: number): Promise<{ runs?: TorchRun[]; skipped?: string; torch?: string }> {
  const args = [join(__dirname, 'torch_generate.py'), '--model', model, '--prompt', PROMPT, '--steps', String(STEPS), '--guidance', String(guidance), '--seed', String(seed), '--repeats', String(PER_BLOCK), '--threads', String(threads)];
  try {
    const { stdout } = await promisify(execFile)(PYTHON, args, { env: { ...process.env, OPENBLAS_NUM_THREADS: '1' }, maxBuffer: 1 << 20 });
    return JSON.parse(stdout.trim().split('\n').pop()!);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') return { skipped: `${PYTHON} not found` };
    throw new Error(`${PYTHON} bench/torch_generate.py failed: ${e.stderr ?? e.message}`);
  }
}

type OrtRun = { totalMs: number; textEncoderMs: number; loopMs: number; vaeMs: number };

export const benchTorch: BenchSection = {
  name: 'torch',
  async run() {
    const model = await resolveBenchModel();
    const cacheDir = tempDir('adadiff-bench-torch-');
    // Both CPU shares of the product: the CLI's (every core, as PyTorch gets) and the editor's (one core left).
    const engines = { dedicated: new Engine({ cacheDir, cpu: 'dedicated' }), shared: new Engine({ cacheDir, cpu: 'shared' }) };
    const cores = availableParallelism();
    try {
      const handles = { dedicated: await engines.dedicated.open(model.dir), shared: await engines.shared.open(model.dir) };
      const guidance = handles.dedicated.guidance;
      const threads = { dedicated: sessionOptions('dedicated').intraOpNumThreads!, shared: sessionOptions('shared').intraOpNumThreads! };
      console.log(`"${PROMPT}", ${STEPS} DDIM steps, guidance ${guidance} (UNet at batch 2), ${BLOCKS} alternating blocks of ${PER_BLOCK} runs per side, after one warm-up run each`);
      const loadBefore = noteLoad('before');
      const ort: Record<'dedicated' | 'shared', OrtRun[]> = { dedicated: [], shared: [] };
      const render = async (share: 'dedicated' | 'shared', seed: number) => {
        const r = (await handles[share].render({ prompt: PROMPT, steps: STEPS, seed, guidance, scheduler: 'ddim' })).result.timings;
        return { totalMs: r.totalMs, textEncoderMs: r.textEncoderMs, loopMs: r.unetMs.reduce((a, b) => a + b, 0), vaeMs: r.vaeMs };
      };
      await render('dedicated', 0); // warm-up
      await render('shared', 0);
      const torchAll: TorchRun[] = [];
      const torch1: TorchRun[] = [];
      let torchVersion: string | undefined;
      for (let block = 0; block < BLOCKS; block++) {
        const tAll = await torchBlock(model.dir, guidance, cores, block * 10 + 1);
        if (tAll.skipped) {
          console.log(`PyTorch side skipped: ${tAll.skipped}`);
          return { model: model.dir, note: model.note, skipped: tAll.skipped };
        }
        torchVersion = tAll.torch;
        torchAll.push(...tAll.runs!);
        for (let i = 0; i < PER_BLOCK; i++) ort.dedicated.push(await render('dedicated', block * 10 + i + 1));
        torch1.push(...(await torchBlock(model.dir, guidance, 1, block * 10 + 5)).runs!);
        for (let i = 0; i < PER_BLOCK; i++) ort.shared.push(await render('shared', block * 10 + i + 1));
      }
      const loadAfter = noteLoad('after');
      const summary = (label: string, total: number[], text: number[], loop: number[], vae: number[]) => {
        const row = { label, totalMs: median(total), textEncoderMs: median(text), loopMs: median(loop), vaeMs: median(vae), runs: total.length };
        console.log(`  ${label.padEnd(48)} ${row.totalMs.toFixed(1).padStart(8)} ms  (text ${row.textEncoderMs.toFixed(1)}, ${STEPS} UNet steps ${row.loopMs.toFixed(1)} = ${(row.loopMs / STEPS).toFixed(2)}/step, VAE ${row.vaeMs.toFixed(1)})`);
        return row;
      };
      const ortRow = (share: 'dedicated' | 'shared', what: string) =>
        summary(`ONNX Runtime, ${what} (${threads[share]} thread${threads[share] === 1 ? '' : 's'})`, ort[share].map((r) => r.totalMs), ort[share].map((r) => r.textEncoderMs), ort[share].map((r) => r.loopMs), ort[share].map((r) => r.vaeMs));
      const torchRow = (runs: TorchRun[], n: number) =>
        summary(`PyTorch ${torchVersion} (${n} thread${n === 1 ? '' : 's'})`, runs.map((r) => r.total_ms), runs.map((r) => r.text_encoder_ms), runs.map((r) => r.loop_ms), runs.map((r) => r.vae_ms));
      const rows = [ortRow('dedicated', 'CLI'), ortRow('shared', 'editor'), torchRow(torchAll, cores), torchRow(torch1, 1)];
      // The goal compares like with like: every core on both sides (the CLI against PyTorch's own threads).
      const speedup = rows[2].totalMs / rows[0].totalMs;
      const editorVsTorch1 = rows[3].totalMs / rows[1].totalMs;
      console.log(`CLI vs PyTorch (${cores} threads each): ${speedup.toFixed(2)}x faster ${speedup >= 1.5 ? '(goal >= 1.5x met)' : '(goal >= 1.5x MISSED)'}; editor (${threads.shared} thread${threads.shared === 1 ? '' : 's'}) vs PyTorch (1 thread): ${editorVsTorch1.toFixed(2)}x`);
      return { model: model.dir, note: model.note, prompt: PROMPT, steps: STEPS, guidance, cores, threads, torch: torchVersion, loadBefore, loadAfter, rows, speedupVsTorch: speedup, editorVsTorch1Thread: editorVsTorch1 };
    } finally {
      await engines.dedicated.dispose();
      await engines.shared.dispose();
    }
  },
};
