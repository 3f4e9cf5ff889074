// The AdaDiff reward for choosing u denoising steps for a prompt:
//
//   R(u) = O(u) + lambda * Q(u)   if the image made with u steps counts as high quality
//   R(u) = -gamma                 otherwise
//
// O(u) = 1 - (u / N)^2 is the saving term, N the baseline step count (the longest candidate by
// default). It is 1 for no steps and 0 at N, and concave: each step saved is worth more near N,
// where the image barely changes, than near zero, where quality falls off a cliff. So the policy
// is pulled hard away from N but not pushed blindly to the minimum.
//
// Q(u) is the scorer's quality. "High quality" depends on the scorer:
// - fidelity (SSIM to the image the longest schedule makes from the same noise): Q(u) >= tau. Top-k
//   makes no sense there because fidelity grows with steps, so top-k would always pick the longest.
// - a user's ONNX scorer (CLIP score, aesthetic, ...): Q(u) ranks in the top k of the candidates for
//   that prompt and seed, as in the paper. Ties count in the image's favour: it is high quality when
//   fewer than k candidates score strictly higher. lambda is in the scorer's units, so choose it
//   for the scorer's scale (the default suits scores of order 1).
// The policy sees only the prompt, so a prompt's reward for u is the mean over its seeds.

export type ScorerKind = 'fidelity' | 'onnx';

export type HighQualityRule = { rule: 'threshold'; tau: number } | { rule: 'top-k'; k: number };

/** Fully resolved reward settings, as recorded in policy.json. */
export interface RewardSettings {
  /** Weight of the quality score in a high-quality reward. */
  lambda: number;
  /** Penalty (as a positive number) for a low-quality image. */
  gamma: number;
  /** N in the saving term O(u) = 1 - (u/N)^2. */
  baselineSteps: number;
  highQuality: HighQualityRule;
}

/** What a user may set (CLI flags); everything else comes from REWARD_DEFAULTS. */
export interface RewardOptions {
  lambda?: number;
  gamma?: number;
  /** Fidelity threshold for the fidelity scorer. */
  tau?: number;
  /** k of top-k for an ONNX scorer. */
  topK?: number;
  baselineSteps?: number;
}

export const REWARD_DEFAULTS = {
  /**
   * Three times the quality. Between neighbouring candidates near 20 steps the saving term moves by
   * about 0.08 per 5 steps, while fidelity gains 0.01-0.04 there, more for hard prompts than easy
   * ones. With lambda = 1 the quality term never outweighs a step saved, the reward collapses to
   * "the fewest steps that pass tau", which on two seeds is mostly seed noise, and the trained
   * policy picked one step count for all prompts. lambda = 3 puts the break-even (fidelity +0.03 per
   * 5 steps) where prompts differ, so harder prompts earn more steps. Chosen by 5-fold
   * cross-validation on the bundled model's training prompts (lambda 1-4 tried); for a user's ONNX
   * scorer, lambda is in that scorer's units.
   */
  lambda: 3,
  /**
   * A failed image costs more than the whole saving range (O spans 1), so the policy takes the
   * extra steps whenever a seed would otherwise fail.
   */
  gamma: 1,
  /** Below 0.90 SSIM the difference from the reference is plainly visible at 64x64. */
  tau: 0.9,
  /** Half of the paper's ten candidates. */
  topK: 5,
} as const;

/**
 * Finer than the paper's 5, 10, ..., 50 where most images converge: on the bundled model half the
 * images need at most 8 steps, and 2 or 3 steps almost never meet tau (scripts/candidate-steps.ts;
 * the model card has the figures). The table costs 225 UNet calls per prompt x seed instead of 275.
 */
export const DEFAULT_CANDIDATES: readonly number[] = [4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50];

export function resolveRewardSettings(scorer: ScorerKind, candidates: readonly number[], options: RewardOptions = {}): RewardSettings {
  if (candidates.length === 0) throw new Error('reward: no candidate step counts');
  const settings: RewardSettings = {
    lambda: options.lambda ?? REWARD_DEFAULTS.lambda,
    gamma: options.gamma ?? REWARD_DEFAULTS.gamma,
    baselineSteps: options.baselineSteps ?? Math.max(...candidates),
    highQuality:
      scorer === 'fidelity'
        ? { rule: 'threshold', tau: options.tau ?? REWARD_DEFAULTS.tau }
        : { rule: 'top-k', k: options.topK ?? Math.min(REWARD_DEFAULTS.topK, candidates.length) },
  };
  if (!(settings.lambda >= 0)) throw new Error('reward: lambda must be >= 0');
  if (!(settings.gamma >= 0)) throw new Error('reward: gamma must be >= 0');
  if (!(settings.baselineSteps > 0)) throw new Error('reward: baseline steps must be > 0');
  const hq = settings.highQuality;
  if (hq.rule === 'top-k' && !(Number.isInteger(hq.k) && hq.k >= 1 && hq.k <= candidates.length)) {
    throw new Error(`reward: top-k must be an integer in 1..${candidates.length}`);
  }
  return settings;
}

/** O(u) = 1 - (u / N)^2. */
export function stepSaving(steps: number, baselineSteps: number): number {
  return 1 - (steps / baselineSteps) ** 2;
}

/** Which candidates count as high quality for one prompt and seed. */
export function highQualityMask(quality: readonly number[], rule: HighQualityRule): boolean[] {
  if (rule.rule === 'threshold') return quality.map((q) => q >= rule.tau);
  return quality.map((q) => quality.filter((other) => other > q).length < rule.k);
}

/** R(u) for every candidate, for one prompt and seed. */
export function candidateRewards(quality: readonly number[], candidates: readonly number[], settings: RewardSettings): number[] {
  if (quality.length !== candidates.length) {
    throw new Error(`reward: ${quality.length} quality scores for ${candidates.length} candidates`);
  }
  const high = highQualityMask(quality, settings.highQuality);
  return candidates.map((u, i) =>
    high[i] ? stepSaving(u, settings.baselineSteps) + settings.lambda * quality[i] : -settings.gamma,
  );
}

/** A prompt's reward per candidate: the mean of candidateRewards over its seeds ([seed][candidate] quality). */
export function promptRewards(quality: readonly (readonly number[])[], candidates: readonly number[], settings: RewardSettings): number[] {
  if (quality.length === 0) throw new Error('reward: a prompt has no seeds in the reward table');
  const sum = new Array<number>(candidates.length).fill(0);
  for (const perSeed of quality) {
    candidateRewards(perSeed, candidates, settings).forEach((r, i) => (sum[i] += r));
  }
  return sum.map((s) => s / quality.length);
}
