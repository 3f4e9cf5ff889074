// Evaluation of a step policy on held-out prompts, against the paper's baselines at the same
// average steps:
// - fixed N: the policy's average rounded to an integer, generated for every prompt and seed from
//   the same noise and scored like the candidates (not interpolated);
// - random: steps drawn from the policy's own step distribution, independent of the prompt (taken
//   in exact expectation over the table, so it carries no sampling noise);
// - word count: the policy's step counts handed out in order of the prompts' word counts (the
//   longest prompts get the most steps), so it has the same distribution and average exactly;
// - full: the baseline (longest) schedule everywhere, for reference.
// Quality is averaged over prompt x seed images; "meeting tau" is counted per image too.

import { createHash } from 'node:crypto';
import type { LoadedModel } from '../model/contract';
import { throwIfCancelled } from '../pipeline/generate';
import { COLORS, plotQualityVsSteps } from './plot';
import type { PolicyEvaluation, StrategyResult } from './policy-manifest';
import { promptFeatures, type StepPolicy } from './policy';
import { buildRewardTable, fidelityScorer, type QualityScorer, type RewardTable, type TableProgress } from './reward-table';

/** Words as the heuristics and occlusion count them: split on whitespace and commas. */
export function promptWords(prompt: string): string[] {
  return prompt.split(/[\s,;]+/).filter((w) => /[\p{L}\p{N}]/u.test(w));
}

const normalizeWord = (w: string) => w.toLowerCase().replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');

export const sha256Lines = (lines: readonly string[]) => createHash('sha256').update(lines.join('\n')).digest('hex');

export function pearson(xs: readonly number[], ys: readonly number[]): number | null {
  const n = xs.length;
  if (n < 2) return null;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : null;
}

export interface TableEvaluationInput {
  table: RewardTable;
  /** The policy's chosen step count per prompt (each must be a column of the table). */
  chosenSteps: readonly number[];
  /** The candidates the policy chooses from (columns of the table). */
  candidates: readonly number[];
  baselineSteps: number;
  /** Fixed-steps baseline (a column of the table). */
  fixedSteps: number;
  tau: number | null;
}

/** Everything in PolicyEvaluation that follows from the table and the choices alone. */
export function evaluateOnTable(input: TableEvaluationInput): Omit<PolicyEvaluation, 'occlusion'> {
  const { table, chosenSteps, candidates, tau } = input;
  const P = table.prompts.length;
  if (chosenSteps.length !== P) throw new Error(`evaluate: ${chosenSteps.length} choices for ${P} prompts`);
  const column = (steps: number) => {
    const j = table.steps.indexOf(steps);
    if (j < 0) throw new Error(`evaluate: the table has no column for ${steps} steps`);
    return j;
  };
  const images = table.seeds.length;
  // Per prompt: mean quality, share meeting tau, mean ms at a given column.
  const at = (p: number, j: number) => {
    const rows = table.rows[p];
    return {
      quality: rows.reduce((s, r) => s + r.quality[j], 0) / images,
      meeting: tau === null ? 0 : rows.filter((r) => r.quality[j] >= tau).length / images,
      ms: rows.reduce((s, r) => s + r.ms[j], 0) / images,
    };
  };
  /** A strategy given as, per prompt, a distribution over columns. */
  const strategy = (dist: (p: number) => [number, number][]): StrategyResult => {
    let steps = 0;
    let quality = 0;
    let meeting = 0;
    for (let p = 0; p < P; p++) {
      for (const [j, w] of dist(p)) {
        const v = at(p, j);
        steps += w * table.steps[j];
        quality += w * v.quality;
        meeting += w * v.meeting;
      }
    }
    return { avgSteps: steps / P, meanQuality: quality / P, shareMeetingTau: tau === null ? null : meeting / P };
  };
  const fixedAt = (steps: number) => ({ steps, ...strategy(() => [[column(steps), 1]]) });

  const policy = strategy((p) => [[column(chosenSteps[p]), 1]]);
  const histogram = new Map<number, number>();
  for (const s of chosenSteps) histogram.set(s, (histogram.get(s) ?? 0) + 1);
  const randomDist: [number, number][] = [...histogram].map(([s, n]) => [column(s), n / P]);

  const words = table.prompts.map((t) => promptWords(t).length);
  const byLength = table.prompts
    .map((t, p) => ({ p, words: words[p], chars: t.length }))
    .sort((a, b) => a.words - b.words || a.chars - b.chars || a.p - b.p);
  const sortedSteps = [...chosenSteps].sort((a, b) => a - b);
  const wordCountSteps = new Array<number>(P);
  byLength.forEach(({ p }, rank) => (wordCountSteps[p] = sortedSteps[rank]));

  const avgSeconds =
    chosenSteps.reduce((s, steps, p) => s + at(p, column(steps)).ms, 0) / P / 1000;
  const baselineColumn = table.steps.indexOf(input.baselineSteps);
  const baselineSeconds =
    baselineColumn < 0 ? null : table.prompts.reduce((s, _, p) => s + at(p, baselineColumn).ms, 0) / P / 1000;

  return {
    prompts: P,
    promptsSha256: sha256Lines(table.prompts),
    seeds: [...table.seeds],
    avgSteps: policy.avgSteps,
    baselineSteps: input.baselineSteps,
    savingPct: 100 * (1 - policy.avgSteps / input.baselineSteps),
    avgSeconds,
    baselineSeconds,
    tau,
    shareMeetingTau: policy.shareMeetingTau,
    meanQuality: policy.meanQuality,
    baselines: {
      fixed: fixedAt(input.fixedSteps),
      random: strategy(() => randomDist),
      wordCount: strategy((p) => [[column(wordCountSteps[p]), 1]]),
      full: fixedAt(Math.max(...candidates)),
    },
    fixedCurve: candidates.map(fixedAt),
    stepsLengthCorrelation: pearson(chosenSteps, words),
    stepHistogram: Object.fromEntries([...histogram].sort((a, b) => a[0] - b[0]).map(([s, n]) => [String(s), n])),
  };
}

export interface EvaluateOptions {
  prompts: readonly string[];
  /** Seeds per prompt. Default: the training seeds from policy.json. */
  seeds?: readonly number[];
  /** Must match the scorer the policy was trained with. Default: fidelity. */
  scorer?: QualityScorer;
  /** Fidelity threshold images are counted against. Default: the tau the policy was trained with. */
  tau?: number;
  cacheDir?: string;
  /** How many occlusion words to report (0 skips the analysis). Default 10. */
  occlusionWords?: number;
  /** Words must occur in at least this many prompts to be reported. Default 2. */
  occlusionMinPrompts?: number;
  signal?: AbortSignal;
  onProgress?: (progress: EvaluateProgress) => void;
}

export type EvaluateProgress =
  | { phase: 'predict'; done: number; total: number }
  | { phase: 'table'; progress: TableProgress }
  | { phase: 'occlusion'; done: number; total: number };

export interface EvaluateResult {
  evaluation: PolicyEvaluation;
  /** Quality against average steps for the policy, the baselines and the fixed-steps curve. */
  plotPng: Buffer;
  table: RewardTable;
}

/** Expected steps under the policy's probabilities: smoother than the argmax, for occlusion. */
const expectedSteps = (candidates: readonly number[], probabilities: readonly number[]) =>
  probabilities.reduce((s, p, i) => s + p * candidates[i], 0);

export async function evaluatePolicy(model: LoadedModel, policy: StepPolicy, opts: EvaluateOptions): Promise<EvaluateResult> {
  const m = policy.manifest;
  const scorer = opts.scorer ?? fidelityScorer;
  if (scorer.kind !== m.training.scorer.kind) {
    throw new Error(`evaluate: the policy was trained with the ${m.training.scorer.kind} scorer; evaluate it with the same`);
  }
  if (opts.prompts.length === 0) throw new Error('evaluate: no prompts');
  const predictPrompt = async (prompt: string) => {
    const f = await promptFeatures(model, prompt);
    return policy.predict(f.hidden, [1, f.tokens, f.dim], f.mask);
  };

  const predictions = [];
  for (const [i, prompt] of opts.prompts.entries()) {
    throwIfCancelled(opts.signal);
    predictions.push(await predictPrompt(prompt));
    opts.onProgress?.({ phase: 'predict', done: i + 1, total: opts.prompts.length });
  }
  const chosenSteps = predictions.map((p) => p.steps);
  const fixedSteps = Math.round(chosenSteps.reduce((a, b) => a + b, 0) / chosenSteps.length);

  const table = await buildRewardTable(model, {
    prompts: opts.prompts,
    seeds: opts.seeds ?? m.training.seeds,
    steps: [...m.candidates, fixedSteps],
    scheduler: m.scheduler,
    guidance: m.guidance,
    width: m.training.width,
    height: m.training.height,
    scorer,
    cacheDir: opts.cacheDir,
    signal: opts.signal,
    onProgress: (progress) => opts.onProgress?.({ phase: 'table', progress }),
  });
  const tau = m.reward.highQuality.rule === 'threshold' ? (opts.tau ?? m.reward.highQuality.tau) : null;
  const summary = evaluateOnTable({ table, chosenSteps, candidates: m.candidates, baselineSteps: m.baselineSteps, fixedSteps, tau });

  // Occlusion: drop one word at a time and see how far the expected steps fall.
  const occlusionWords = opts.occlusionWords ?? 10;
  const deltas = new Map<string, number[]>();
  if (occlusionWords > 0) {
    for (const [p, prompt] of opts.prompts.entries()) {
      throwIfCancelled(opts.signal);
      const words = promptWords(prompt);
      if (words.length >= 2) {
        const base = expectedSteps(m.candidates, predictions[p].probabilities);
        const seen = new Set<string>();
        for (let i = 0; i < words.length; i++) {
          const word = normalizeWord(words[i]);
          if (!word || seen.has(word)) continue;
          seen.add(word);
          const without = [...words.slice(0, i), ...words.slice(i + 1)].join(' ');
          const reduced = expectedSteps(m.candidates, (await predictPrompt(without)).probabilities);
          deltas.set(word, [...(deltas.get(word) ?? []), base - reduced]);
        }
      }
      opts.onProgress?.({ phase: 'occlusion', done: p + 1, total: opts.prompts.length });
    }
  }
  const minPrompts = opts.occlusionMinPrompts ?? 2;
  const occlusion = [...deltas]
    .filter(([, d]) => d.length >= minPrompts)
    .map(([word, d]) => ({ word, deltaSteps: d.reduce((a, b) => a + b, 0) / d.length, prompts: d.length }))
    .filter((o) => o.deltaSteps > 0)
    .sort((a, b) => b.deltaSteps - a.deltaSteps)
    .slice(0, occlusionWords);

  const evaluation: PolicyEvaluation = { ...summary, occlusion };
  return { evaluation, plotPng: plotEvaluation(evaluation), table };
}

export function plotEvaluation(e: PolicyEvaluation): Buffer {
  const point = (r: StrategyResult) => [{ steps: r.avgSteps, quality: r.meanQuality }];
  return plotQualityVsSteps(
    [
      { label: 'FIXED STEPS', color: COLORS.curve, points: e.fixedCurve.map((r) => ({ steps: r.steps, quality: r.meanQuality })), line: true },
      { label: `FIXED ${e.baselines.fixed.steps}`, color: COLORS.fixed, points: point(e.baselines.fixed) },
      { label: 'RANDOM', color: COLORS.random, points: point(e.baselines.random) },
      { label: 'WORD COUNT', color: COLORS.wordCount, points: point(e.baselines.wordCount) },
      { label: 'POLICY', color: COLORS.policy, points: [{ steps: e.avgSteps, quality: e.meanQuality }] },
    ],
    { maxSteps: Math.max(e.baselineSteps, ...e.fixedCurve.map((r) => r.steps)), tau: e.tau },
  );
}

/** The evaluation as a Markdown table, for a model card. */
export function formatEvaluationTable(e: PolicyEvaluation): string {
  const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(1)}%`);
  const row = (name: string, r: StrategyResult) =>
    `| ${name} | ${r.avgSteps.toFixed(1)} | ${r.meanQuality.toFixed(4)} | ${pct(r.shareMeetingTau)} |`;
  const b = e.baselines;
  return [
    `Held-out prompts: ${e.prompts} x ${e.seeds.length} seeds; quality ${e.tau === null ? 'from the ONNX scorer' : `= SSIM to the ${e.baselineSteps}-step image, tau = ${e.tau}`}.`,
    '',
    `| strategy | avg steps | mean quality | images meeting tau |`,
    `|---|---|---|---|`,
    row('AdaDiff policy', e),
    row(`fixed ${b.fixed.steps} steps`, b.fixed),
    row('random (same step distribution)', b.random),
    row('word-count heuristic (same steps)', b.wordCount),
    row(`fixed ${e.baselineSteps} steps`, b.full),
    '',
    `Steps saved against ${e.baselineSteps}: ${e.savingPct.toFixed(1)}% ` +
      `(measured ${e.avgSeconds.toFixed(2)} s vs ${e.baselineSeconds === null ? 'n/a' : `${e.baselineSeconds.toFixed(2)} s`} per image). ` +
      `Steps chosen: ${Object.entries(e.stepHistogram).map(([s, n]) => `${s}: ${n}`).join(', ')}. ` +
      `Correlation of steps with word count: ${e.stepsLengthCorrelation === null ? 'n/a' : e.stepsLengthCorrelation.toFixed(2)}.`,
    e.occlusion.length ? `Words that push steps up: ${e.occlusion.map((o) => `${o.word} (+${o.deltaSteps.toFixed(1)})`).join(', ')}.` : '',
  ].join('\n');
}
