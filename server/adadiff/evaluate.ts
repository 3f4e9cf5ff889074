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
import { COLORS, plotQualityVsSteps, type PlotSeries } from './plot';
import { firstStep, sharedFirstCall } from './first-step';
import type { PolicyEvaluation, StrategyResult } from './policy-manifest';
import { promptFeatures, type StepPolicy } from './policy';
import { buildRewardTable, fidelityScorer, type QualityScorer, type RewardTable, type RowRunnerFactory, type TableProgress } from './reward-table';

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

/** Spearman's rank correlation (ties get their mean rank); null when either side is constant. */
export function spearman(xs: readonly number[], ys: readonly number[]): number | null {
  const ranks = (v: readonly number[]) => {
    const order = v.map((x, i) => ({ x, i })).sort((a, b) => a.x - b.x);
    const r = new Array<number>(v.length);
    for (let i = 0; i < order.length; ) {
      let j = i;
      while (j + 1 < order.length && order[j + 1].x === order[i].x) j++;
      for (let k = i; k <= j; k++) r[order[k].i] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  return pearson(ranks(xs), ranks(ys));
}

export interface TableEvaluationInput {
  table: RewardTable;
  /**
   * The chosen step count per prompt, or per prompt and seed ([p][s], a first-step-aware policy);
   * each must be a column of the table.
   */
  chosenSteps: readonly (number | readonly number[])[];
  /** The candidates the policy chooses from (columns of the table). */
  candidates: readonly number[];
  baselineSteps: number;
  /** Fixed-steps baseline (a column of the table). */
  fixedSteps: number;
  tau: number | null;
}

/** Everything in PolicyEvaluation that follows from the table and the choices alone, counted per image. */
export function evaluateOnTable(input: TableEvaluationInput): Omit<PolicyEvaluation, 'occlusion'> {
  const { table, candidates, tau } = input;
  const P = table.prompts.length;
  const S = table.seeds.length;
  if (input.chosenSteps.length !== P) throw new Error(`evaluate: ${input.chosenSteps.length} choices for ${P} prompts`);
  const chosen = input.chosenSteps.map((c, p) => {
    const perSeed = typeof c === 'number' ? new Array<number>(S).fill(c) : [...c];
    if (perSeed.length !== S) throw new Error(`evaluate: prompt ${p} has ${perSeed.length} choices for ${S} seeds`);
    return perSeed;
  });
  const column = (steps: number) => {
    const j = table.steps.indexOf(steps);
    if (j < 0) throw new Error(`evaluate: the table has no column for ${steps} steps`);
    return j;
  };
  const images = P * S;
  const meets = (p: number, s: number, j: number) => tau !== null && table.rows[p][s].quality[j] >= tau;
  /** A strategy given as, per image, a distribution over columns. */
  const strategy = (dist: (p: number, s: number) => [number, number][]): StrategyResult => {
    let steps = 0;
    let quality = 0;
    let meeting = 0;
    for (let p = 0; p < P; p++) {
      for (let s = 0; s < S; s++) {
        for (const [j, w] of dist(p, s)) {
          steps += w * table.steps[j];
          quality += w * table.rows[p][s].quality[j];
          meeting += w * (meets(p, s, j) ? 1 : 0);
        }
      }
    }
    return { avgSteps: steps / images, meanQuality: quality / images, shareMeetingTau: tau === null ? null : meeting / images };
  };
  const fixedAt = (steps: number) => ({ steps, ...strategy(() => [[column(steps), 1]]) });

  const policy = strategy((p, s) => [[column(chosen[p][s]), 1]]);
  const all = chosen.flat();
  const histogram = new Map<number, number>();
  for (const steps of all) histogram.set(steps, (histogram.get(steps) ?? 0) + 1);
  const randomDist: [number, number][] = [...histogram].map(([steps, n]) => [column(steps), n / images]);

  // Word count: the policy's own multiset of choices, handed out by the prompts' length.
  const words = table.prompts.map((t) => promptWords(t).length);
  const byLength = table.prompts
    .map((t, p) => ({ p, words: words[p], chars: t.length }))
    .sort((a, b) => a.words - b.words || a.chars - b.chars || a.p - b.p)
    .flatMap(({ p }) => Array.from({ length: S }, (_, s) => ({ p, s })));
  const sortedSteps = [...all].sort((a, b) => a - b);
  const wordCountSteps = chosen.map((r) => r.map(() => 0));
  byLength.forEach(({ p, s }, rank) => (wordCountSteps[p][s] = sortedSteps[rank]));

  const sortedColumns = table.steps.map((steps, j) => ({ steps, j })).sort((a, b) => a.steps - b.steps);
  const fixedCurveAll = sortedColumns.map(({ steps }) => fixedAt(steps));
  const fixedSameShare =
    policy.shareMeetingTau === null ? null : (fixedCurveAll.find((r) => (r.shareMeetingTau ?? 0) >= policy.shareMeetingTau! - 1e-12) ?? null);

  // Oracles: the least candidate meeting tau (every seed's image, or each image), else the largest.
  const candidateColumns = sortedColumns.filter(({ steps }) => candidates.includes(steps));
  const largest = candidateColumns[candidateColumns.length - 1].j;
  const promptOracle = table.prompts.map((_, p) => candidateColumns.find(({ j }) => table.rows[p].every((_, s) => meets(p, s, j)))?.j ?? largest);
  const oracles =
    tau === null
      ? undefined
      : {
          prompt: strategy((p) => [[promptOracle[p], 1]]),
          image: strategy((p, s) => [[candidateColumns.find(({ j }) => meets(p, s, j))?.j ?? largest, 1]]),
        };
  const meanSteps = chosen.map((r) => r.reduce((a, b) => a + b, 0) / S);

  const msAt = (p: number, j: number) => table.rows[p].reduce((sum, r) => sum + r.ms[j], 0) / S;
  const avgSeconds = chosen.reduce((sum, r, p) => sum + r.reduce((t, steps, s) => t + table.rows[p][s].ms[column(steps)], 0), 0) / images / 1000;
  const baselineColumn = table.steps.indexOf(input.baselineSteps);
  const baselineSeconds = baselineColumn < 0 ? null : table.prompts.reduce((sum, _, p) => sum + msAt(p, baselineColumn), 0) / P / 1000;

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
      fixedSameShare,
      fixed: fixedAt(input.fixedSteps),
      random: strategy(() => randomDist),
      wordCount: strategy((p, s) => [[column(wordCountSteps[p][s]), 1]]),
      full: fixedAt(Math.max(...candidates)),
    },
    ...(oracles ? { oracles, oracleSpearman: spearman(meanSteps, promptOracle.map((j) => table.steps[j])) } : {}),
    fixedCurve: candidates.map(fixedAt),
    stepsLengthCorrelation: pearson(meanSteps, words),
    stepHistogram: Object.fromEntries([...histogram].sort((a, b) => a[0] - b[0]).map(([steps, n]) => [String(steps), n])),
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
  /** Who makes the reward table's rows: this process by default, or a pool. */
  rows?: RowRunnerFactory;
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
  /** The prompt-only policy. */
  evaluation: PolicyEvaluation;
  /** The first-step-aware policy on the same images, where the policy has one and its scheduler shares the first call. */
  firstStep?: PolicyEvaluation;
  /** Why there is no first-step evaluation although the policy has a first-step part. */
  firstStepSkipped?: string;
  /** Share of images meeting tau (or quality) against average steps, for the policies, baselines and bounds. */
  plotPng: Buffer;
  table: RewardTable;
}

/** Expected steps under the policy's probabilities: smoother than the argmax, for occlusion. */
const expectedSteps = (candidates: readonly number[], probabilities: readonly number[]) =>
  probabilities.reduce((s, p, i) => s + p * candidates[i], 0);

const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;

export async function evaluatePolicy(model: LoadedModel, policy: StepPolicy, opts: EvaluateOptions): Promise<EvaluateResult> {
  const m = policy.manifest;
  const scorer = opts.scorer ?? fidelityScorer;
  if (scorer.kind !== m.training.scorer.kind) {
    throw new Error(`evaluate: the policy was trained with the ${m.training.scorer.kind} scorer; evaluate it with the same`);
  }
  if (opts.prompts.length === 0) throw new Error('evaluate: no prompts');
  const seeds = [...(opts.seeds ?? m.training.seeds)];
  const settings = { scheduler: m.scheduler, guidance: m.guidance, width: m.training.width, height: m.training.height };
  const features = async (prompt: string) => promptFeatures(model, prompt);
  const predictPrompt = async (prompt: string) => {
    const f = await features(prompt);
    return policy.predict(f.hidden, [1, f.tokens, f.dim], f.mask);
  };

  const shared = sharedFirstCall(model.folder.schedulerConfig, m.scheduler, m.candidates);
  const refine = policy.refine && shared.shared ? policy.refine : undefined;
  const predictions = [];
  const refined: number[][] = [];
  for (const [i, prompt] of opts.prompts.entries()) {
    throwIfCancelled(opts.signal);
    const f = await features(prompt);
    predictions.push(await policy.predict(f.hidden, [1, f.tokens, f.dim], f.mask));
    if (refine) {
      const perSeed = [];
      for (const seed of seeds) {
        const first = await firstStep(model, { prompt, seed, steps: m.candidates[0], ...settings, signal: opts.signal });
        perSeed.push((await refine(f.hidden, [1, f.tokens, f.dim], f.mask, first.features)).steps);
      }
      refined.push(perSeed);
    }
    opts.onProgress?.({ phase: 'predict', done: i + 1, total: opts.prompts.length });
  }
  const chosenSteps = predictions.map((p) => p.steps);
  const fixedSteps = Math.round(mean(chosenSteps));
  const fixedRefined = refine ? Math.round(mean(refined.flat())) : fixedSteps;

  const table = await buildRewardTable(model, {
    prompts: opts.prompts,
    seeds,
    steps: [...m.candidates, fixedSteps, fixedRefined],
    ...settings,
    scorer,
    cacheDir: opts.cacheDir,
    rows: opts.rows,
    signal: opts.signal,
    onProgress: (progress) => opts.onProgress?.({ phase: 'table', progress }),
  });
  const tau = m.reward.highQuality.rule === 'threshold' ? (opts.tau ?? m.reward.highQuality.tau) : null;
  const summary = evaluateOnTable({ table, chosenSteps, candidates: m.candidates, baselineSteps: m.baselineSteps, fixedSteps, tau });
  const firstStepSummary = refine
    ? evaluateOnTable({ table, chosenSteps: refined, candidates: m.candidates, baselineSteps: m.baselineSteps, fixedSteps: fixedRefined, tau })
    : undefined;

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
  const firstStepEvaluation = firstStepSummary && { ...firstStepSummary, occlusion: [] };
  return {
    evaluation,
    ...(firstStepEvaluation ? { firstStep: firstStepEvaluation } : {}),
    ...(policy.refine && !shared.shared ? { firstStepSkipped: `the first UNet call is not shared (${shared.reason}); the prompt-only policy is used` } : {}),
    plotPng: plotEvaluation(evaluation, firstStepEvaluation),
    table,
  };
}

export function plotEvaluation(e: PolicyEvaluation, firstStep?: PolicyEvaluation): Buffer {
  // With a threshold the share of images meeting it is what the goals are about; else mean quality.
  const y = (r: StrategyResult) => (e.tau === null ? r.meanQuality : (r.shareMeetingTau ?? 0));
  const point = (r: StrategyResult) => [{ steps: r.avgSteps, quality: y(r) }];
  const series: PlotSeries[] = [
    { label: 'FIXED STEPS', color: COLORS.curve, points: e.fixedCurve.map((r) => ({ steps: r.steps, quality: y(r) })), line: true },
    { label: `FIXED ${e.baselines.fixed.steps}`, color: COLORS.fixed, points: point(e.baselines.fixed) },
    { label: 'RANDOM', color: COLORS.random, points: point(e.baselines.random) },
    { label: 'WORD COUNT', color: COLORS.wordCount, points: point(e.baselines.wordCount) },
  ];
  if (e.oracles) {
    series.push({ label: 'PROMPT ORACLE', color: COLORS.oracle, points: point(e.oracles.prompt) });
    series.push({ label: 'IMAGE ORACLE', color: COLORS.imageOracle, points: point(e.oracles.image) });
  }
  series.push({ label: 'POLICY (PROMPT)', color: COLORS.policy, points: point(e) });
  if (firstStep) series.push({ label: 'POLICY (1ST STEP)', color: COLORS.firstStep, points: point(firstStep) });
  return plotQualityVsSteps(series, {
    maxSteps: Math.max(e.baselineSteps, ...e.fixedCurve.map((r) => r.steps)),
    ...(e.tau === null
      ? {}
      : { title: `IMAGES MEETING TAU ${e.tau} VS AVERAGE STEPS`, reference: { value: 0.95, label: '95% OF IMAGES' } }),
  });
}

/** The evaluation as a Markdown table, for a model card: the policies, every baseline and the bounds. */
export function formatEvaluationTable(e: PolicyEvaluation, firstStep?: PolicyEvaluation): string {
  const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(1)}%`);
  const row = (name: string, r: StrategyResult) =>
    `| ${name} | ${r.avgSteps.toFixed(1)} | ${r.meanQuality.toFixed(4)} | ${pct(r.shareMeetingTau)} |`;
  const b = e.baselines;
  /** "12.0% fewer steps" or "3.0% more steps": a policy can spend more than what it is compared with. */
  const fewer = (steps: number, than: number) => {
    const d = 100 * (1 - steps / than);
    return d < 0 ? `${(-d).toFixed(1)}% more steps` : `${d.toFixed(1)}% fewer steps`;
  };
  const vsSameShare = (r: PolicyEvaluation) =>
    r.baselines.fixedSameShare
      ? `${fewer(r.avgSteps, r.baselines.fixedSameShare.steps)} than fixed ${r.baselines.fixedSameShare.steps}, the least fixed count meeting tau as often`
      : 'no fixed count meets tau as often';
  const corr = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : v.toFixed(2));
  return [
    `Held-out prompts: ${e.prompts} x ${e.seeds.length} seeds; quality ${e.tau === null ? 'from the ONNX scorer' : `= SSIM to the ${e.baselineSteps}-step image, tau = ${e.tau}`}.`,
    '',
    `| strategy | avg steps | mean quality | images meeting tau |`,
    `|---|---|---|---|`,
    row('AdaDiff policy, prompt only', e),
    ...(firstStep ? [row('AdaDiff policy, first-step aware', firstStep)] : []),
    ...(b.fixedSameShare ? [row(`fixed ${b.fixedSameShare.steps} steps (least meeting tau as often as the prompt-only policy)`, b.fixedSameShare)] : []),
    ...(firstStep?.baselines.fixedSameShare ? [row(`fixed ${firstStep.baselines.fixedSameShare.steps} steps (least meeting tau as often as the first-step policy)`, firstStep.baselines.fixedSameShare)] : []),
    row(`fixed ${b.fixed.steps} steps (prompt-only policy's average)`, b.fixed),
    row('random (same step distribution)', b.random),
    row('word-count heuristic (same steps)', b.wordCount),
    ...(e.oracles ? [row('bound: prompt oracle (least steps meeting tau on every seed)', e.oracles.prompt), row('bound: image oracle (least steps meeting tau per image)', e.oracles.image)] : []),
    row(`fixed ${e.baselineSteps} steps`, b.full),
    '',
    `Prompt only: ${vsSameShare(e)}; ${e.savingPct.toFixed(1)}% fewer than ${e.baselineSteps} ` +
      `(measured ${e.avgSeconds.toFixed(2)} s vs ${e.baselineSeconds === null ? 'n/a' : `${e.baselineSeconds.toFixed(2)} s`} per image). ` +
      `Steps chosen (images): ${Object.entries(e.stepHistogram).map(([s, n]) => `${s}: ${n}`).join(', ')}. ` +
      `Spearman with the prompt oracle's steps: ${corr(e.oracleSpearman)}; correlation with word count: ${corr(e.stepsLengthCorrelation)}.`,
    firstStep
      ? `First-step aware: ${vsSameShare(firstStep)}; ${fewer(firstStep.avgSteps, e.avgSteps)} than the prompt-only policy. ` +
        `Steps chosen (images): ${Object.entries(firstStep.stepHistogram).map(([s, n]) => `${s}: ${n}`).join(', ')}. Spearman with the prompt oracle: ${corr(firstStep.oracleSpearman)}.`
      : '',
    e.occlusion.length ? `Words that push steps up: ${e.occlusion.map((o) => `${o.word} (+${o.deltaSteps.toFixed(1)})`).join(', ')}.` : '',
  ].join('\n');
}
