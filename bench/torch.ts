// ONNX Runtime (the product's pipeline and session options) against PyTorch (the recipe's own torch
// modules and DDIM loop, bench/torch_generate.py) on the bundled model: same prompt, steps,
// guidance and weights, this CPU, the two sides alternating in blocks within one run so a change in
// the machine's load hits both. PyTorch runs as the brief for this comparison says:
// /usr/bin/python3, torch.set_num_threads(2), OPENBLAS_NUM_THREADS=1; a second PyTorch row with one
// thread shows how much of the gap is threading. Skipped, with the reason, where python3-torch is
// missing or the model is not a models/recipe export.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Engine } from '../server/engine';
import { sessionOptions } from '../server/model/session';
import type { BenchSection } from './run';
import { median, noteLoad, resolveBenchModel } from './util';

const PYTHON = process.env.ADADIFF_BENCH_PYTHON ?? '/usr/bin/python3';
const PROMPT = 'red apple emoji';
const STEPS = 25;
const BLOCKS = Number(process.env.ADADIFF_BENCH_TORCH_BLOCKS ?? 2);
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

export const benchTorch: BenchSection = {
  name: 'torch',
  async run() {
    const model = await resolveBenchModel();
    const engine = new Engine({ cacheDir: mkdtempSync(join(tmpdir(), 'adadiff-bench-torch-')) });
    const handle = await engine.open(model.dir);
    try {
      const guidance = handle.guidance;
      const ortThreads = sessionOptions().intraOpNumThreads;
      console.log(`"${PROMPT}", ${STEPS} DDIM steps, guidance ${guidance} (UNet at batch 2), ${BLOCKS} alternating blocks of ${PER_BLOCK} runs per side, after one warm-up run each`);
      const loadBefore = noteLoad('before');
      await handle.render({ prompt: PROMPT, steps: STEPS, seed: 0, guidance, scheduler: 'ddim' }); // warm-up
      const ort: { totalMs: number; textEncoderMs: number; loopMs: number; vaeMs: number }[] = [];
      const torch2: TorchRun[] = [];
      const torch1: TorchRun[] = [];
      let torchVersion: string | undefined;
      for (let block = 0; block < BLOCKS; block++) {
        const t2 = await torchBlock(model.dir, guidance, 2, block * 10 + 1);
        if (t2.skipped) {
          console.log(`PyTorch side skipped: ${t2.skipped}`);
          return { model: model.dir, note: model.note, skipped: t2.skipped };
        }
        torchVersion = t2.torch;
        torch2.push(...t2.runs!);
        for (let i = 0; i < PER_BLOCK; i++) {
          const r = (await handle.render({ prompt: PROMPT, steps: STEPS, seed: block * 10 + i + 1, guidance, scheduler: 'ddim' })).result.timings;
          ort.push({ totalMs: r.totalMs, textEncoderMs: r.textEncoderMs, loopMs: r.unetMs.reduce((a, b) => a + b, 0), vaeMs: r.vaeMs });
        }
        torch1.push(...(await torchBlock(model.dir, guidance, 1, block * 10 + 5)).runs!);
      }
      const loadAfter = noteLoad('after');
      const summary = (label: string, total: number[], text: number[], loop: number[], vae: number[]) => {
        const row = { label, totalMs: median(total), textEncoderMs: median(text), loopMs: median(loop), vaeMs: median(vae), runs: total.length };
        console.log(`  ${label.padEnd(34)} ${row.totalMs.toFixed(1).padStart(8)} ms  (text ${row.textEncoderMs.toFixed(1)}, ${STEPS} UNet steps ${row.loopMs.toFixed(1)} = ${(row.loopMs / STEPS).toFixed(2)}/step, VAE ${row.vaeMs.toFixed(1)})`);
        return row;
      };
      const rows = [
        summary(`ONNX Runtime (${ortThreads} intra-op thread${ortThreads === 1 ? '' : 's'})`, ort.map((r) => r.totalMs), ort.map((r) => r.textEncoderMs), ort.map((r) => r.loopMs), ort.map((r) => r.vaeMs)),
        summary(`PyTorch ${torchVersion} (2 threads)`, torch2.map((r) => r.total_ms), torch2.map((r) => r.text_encoder_ms), torch2.map((r) => r.loop_ms), torch2.map((r) => r.vae_ms)),
        summary(`PyTorch ${torchVersion} (1 thread)`, torch1.map((r) => r.total_ms), torch1.map((r) => r.text_encoder_ms), torch1.map((r) => r.loop_ms), torch1.map((r) => r.vae_ms)),
      ];
      const speedup = rows[1].totalMs / rows[0].totalMs;
      const speedup1 = rows[2].totalMs / rows[0].totalMs;
      console.log(`ours vs PyTorch (2 threads): ${speedup.toFixed(2)}x faster ${speedup >= 1.5 ? '(goal >= 1.5x met)' : '(goal >= 1.5x MISSED)'}; vs PyTorch (1 thread): ${speedup1.toFixed(2)}x`);
      return { model: model.dir, note: model.note, prompt: PROMPT, steps: STEPS, guidance, ortThreads, torch: torchVersion, loadBefore, loadAfter, rows, speedupVsTorch2Threads: speedup, speedupVsTorch1Thread: speedup1 };
    } finally {
      await engine.dispose();
    }
  },
};
