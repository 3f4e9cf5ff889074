// Shared by the benchmark sections: which model to measure, robust summaries, and the machine's load
// (timings on a shared machine mean little without it).
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ensureFixtures } from '../test/fixtures/make-fixtures';

export const DEFAULT_MODEL_DIR = join(__dirname, '..', 'models', 'default');

/**
 * ADADIFF_BENCH_MODEL, else the bundled default model, else (with `fixtureFallback`) the tiny
 * `optimum` test fixture, so a checkout without an exported model still runs every section.
 */
export async function resolveBenchModel(fixtureFallback = true): Promise<{ dir: string; note?: string }> {
  const dir = process.env.ADADIFF_BENCH_MODEL ?? DEFAULT_MODEL_DIR;
  if (existsSync(join(dir, 'model_index.json'))) return { dir };
  if (!fixtureFallback) throw new Error(`no model at ${dir}; set ADADIFF_BENCH_MODEL`);
  const fixture = (await ensureFixtures()).optimum;
  const note = `no model at ${dir}: measuring the tiny test fixture ${fixture} instead (figures say little about real models)`;
  console.log(`note: ${note}`);
  return { dir: fixture, note };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export const loadAverage = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

/** Prints and returns the 1/5/15-minute load average, to sit next to the timings it qualifies. */
export function noteLoad(when: string): string {
  const load = loadAverage();
  console.log(`load average ${when}: ${load}`);
  return load;
}

export const ms = (v: number, digits = 2): string => `${v.toFixed(digits)} ms`;
