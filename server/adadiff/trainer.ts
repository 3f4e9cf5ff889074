// Trains the step policy on a reward table by policy gradient, entirely in TypeScript.
//
// The objective is the expected reward J = mean over prompts of sum_u pi(u | prompt) R(prompt, u),
// R averaged over the prompt's seeds (the policy sees only the prompt). Two estimators of grad J:
// - 'reinforce' (the paper): sample u ~ pi for each prompt of a minibatch, and ascend
//   mean[(R(u) - b) grad log pi(u)], with b the mean sampled reward of the minibatch (the baseline
//   lowers the variance and leaves the gradient unbiased).
// - 'expected': the table holds R for every candidate, so the expectation can be taken exactly:
//   grad J = sum_u pi(u) (R(u) - E_pi R) grad log pi(u), i.e. d J / d logit_j = pi_j (R_j - E_pi R).
//   Noise-free and usually faster to converge; the sampled estimator stays for fidelity to the paper.
// Parameters are updated by Adam; a seed fixes the initialisation, the shuffling and the sampling.

import {
  Adam,
  backward,
  createPolicyNet,
  DEFAULT_ARCHITECTURE,
  extraDimOf,
  fitExtraNormalizer,
  fitNormalizer,
  forward,
  softmax,
  zeroGrads,
  type PolicyArchitecture,
  type PolicyNet,
  type TokenFeatures,
} from './policy-net';
import { createRng } from './random';
import { promptRewards, type RewardSettings } from './reward';

export type GradientEstimator = 'reinforce' | 'expected';

/**
 * One training prompt (or, for the first-step-aware policy, one image): its features and its rows
 * of the reward table.
 */
export interface TrainingExample {
  features: TokenFeatures;
  /** quality[seed][candidate]; one row for an image. */
  quality: number[][];
}

export interface TrainOptions {
  /** Network size; inputDim and outputs follow from the data. Defaults: DEFAULT_ARCHITECTURE. */
  architecture?: Partial<Pick<PolicyArchitecture, 'hiddenDim' | 'attentionLayers' | 'mlpDim' | 'extraDim' | 'readsPrompt'>>;
  /**
   * Default 'expected': the reward table holds every candidate, so the exact gradient of the same
   * objective is available; on the bundled model's table (5-fold cross-validation over the training
   * prompts) it used the weak prompt-level signal better than sampled REINFORCE with the same
   * settings, which settled on 20/25 steps only. 'reinforce' (the paper's estimator) stays a setting.
   */
  estimator?: GradientEstimator;
  /** Passes over the training prompts. Default 150. */
  epochs?: number;
  /** Prompts per Adam step. Default 16. */
  batchSize?: number;
  /** Actions sampled per prompt and step ('reinforce' only). Default 8. */
  samplesPerPrompt?: number;
  /** Adam step size. Default 3e-3. */
  learningRate?: number;
  /**
   * Weight of the policy's entropy added to the objective. Keeps the policy from committing to a
   * candidate before the rest of the table has had its say (softmax policy gradient stalls once a
   * prompt's policy is nearly deterministic, right or wrong). It acts as a softmax temperature:
   * the optimum of E_pi[R] + beta H for one prompt is pi ∝ exp(R / beta), so beta should be of the
   * order of the reward differences between candidates that differ by prompt (a few hundredths
   * here). At 0.01 the softmax saturated on the common-mode choice and the logits of all prompts
   * became alike; 0.05 was best in cross-validation on the bundled model (0.02-0.08 tried).
   * Default 0.05.
   */
  entropyBonus?: number;
  /**
   * Decoupled weight decay on the weight matrices (AdamW). Keeps the hidden units out of tanh's
   * flat ends, where every prompt maps to the same +-1 code and the policy can only learn the
   * common-mode choice. It also keeps the policy near the choice that is right for most prompts
   * unless a prompt's features clearly say otherwise: on the bundled model the prompt explains
   * little of the fidelity (seed-to-seed correlation of a prompt's fidelity 0.06-0.17), and a
   * policy that spreads prompts over 15/20/25 steps on weak evidence loses to fixed steps at the
   * same average (the quality curve is concave). In 5-fold cross-validation over three
   * initialisation seeds, decay 1 beat fixed steps every time, decay 0 only once. Default 1.
   */
  weightDecay?: number;
  /** Fixes initialisation, shuffling and sampling. Default 0. */
  seed?: number;
  /** Called after every epoch. */
  onEpoch?: (entry: TrainingLogEntry) => void;
  signal?: AbortSignal;
}

export const TRAIN_DEFAULTS = {
  estimator: 'expected' as GradientEstimator,
  epochs: 150,
  batchSize: 16,
  samplesPerPrompt: 8,
  learningRate: 3e-3,
  entropyBonus: 0.05,
  weightDecay: 1,
  seed: 0,
};

/**
 * Figures of one epoch, taken from the forward passes the updates use (so the parameters move
 * within the epoch); no extra pass over the prompts is spent on logging.
 */
export interface TrainingLogEntry {
  epoch: number;
  /** Mean over prompts of E_pi[R]. */
  expectedReward: number;
  /** Mean reward of the argmax choice. */
  greedyReward: number;
  /** Mean argmax steps. */
  averageSteps: number;
  /** Mean policy entropy in nats. */
  entropy: number;
}

export interface TrainResult {
  net: PolicyNet;
  log: TrainingLogEntry[];
  /** The resolved options (for policy.json). */
  options: Required<Omit<TrainOptions, 'onEpoch' | 'signal' | 'architecture'>> & { architecture: PolicyArchitecture };
  /** Best achievable mean reward: every prompt gets its best candidate. */
  oracleReward: number;
  /** The trained policy's argmax choices on the training prompts, measured after the last update. */
  final: { greedyReward: number; averageSteps: number };
  durationMs: number;
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

export function trainPolicyNet(
  examples: TrainingExample[],
  candidates: readonly number[],
  reward: RewardSettings,
  options: TrainOptions = {},
): TrainResult {
  const start = performance.now();
  if (examples.length === 0) throw new Error('train: no training prompts');
  const dim = examples[0].features.dim;
  // Unset fields (a CLI flag not given) keep their defaults rather than spreading `undefined`.
  const chosen = Object.fromEntries(Object.entries(options.architecture ?? {}).filter(([, v]) => v !== undefined));
  const architecture: PolicyArchitecture = {
    ...DEFAULT_ARCHITECTURE,
    ...chosen,
    inputDim: dim,
    outputs: candidates.length,
  };
  const resolved = {
    estimator: options.estimator ?? TRAIN_DEFAULTS.estimator,
    epochs: options.epochs ?? TRAIN_DEFAULTS.epochs,
    batchSize: options.batchSize ?? TRAIN_DEFAULTS.batchSize,
    samplesPerPrompt: options.samplesPerPrompt ?? TRAIN_DEFAULTS.samplesPerPrompt,
    learningRate: options.learningRate ?? TRAIN_DEFAULTS.learningRate,
    entropyBonus: options.entropyBonus ?? TRAIN_DEFAULTS.entropyBonus,
    weightDecay: options.weightDecay ?? TRAIN_DEFAULTS.weightDecay,
    seed: options.seed ?? TRAIN_DEFAULTS.seed,
    architecture,
  };
  for (const key of ['epochs', 'batchSize', 'samplesPerPrompt'] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] < 1) throw new Error(`train: ${key} must be a positive integer`);
  }

  const rewards = examples.map((e) => promptRewards(e.quality, candidates, reward));
  const oracleReward = rewards.reduce((s, r) => s + Math.max(...r), 0) / rewards.length;

  const net = createPolicyNet(architecture, resolved.seed);
  const normalizer = fitNormalizer(
    examples.map((e) => e.features),
    dim,
  );
  net.normalizer = normalizer;
  if (extraDimOf(architecture) > 0) net.extraNormalizer = fitExtraNormalizer(examples.map((e) => e.features), extraDimOf(architecture));
  const adam = new Adam(net.params, { learningRate: resolved.learningRate, weightDecay: resolved.weightDecay });
  const rng = createRng(resolved.seed ^ 0x5eed);
  const order = examples.map((_, i) => i);
  const log: TrainingLogEntry[] = [];

  for (let epoch = 1; epoch <= resolved.epochs; epoch++) {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('train: cancelled');
    // Fisher-Yates with the seeded generator.
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng.uniform() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const stats = { expected: 0, greedy: 0, steps: 0, entropy: 0 };
    for (let b0 = 0; b0 < order.length; b0 += resolved.batchSize) {
      const batch = order.slice(b0, b0 + resolved.batchSize);
      const passes = batch.map((p) => {
        const cache = forward(net, examples[p].features);
        return { p, cache, pi: softmax(cache.logits) };
      });
      for (const { p, pi } of passes) {
        const a = argmax(pi);
        stats.expected += pi.reduce((s, v, j) => s + v * rewards[p][j], 0);
        stats.greedy += rewards[p][a];
        stats.steps += candidates[a];
        stats.entropy -= pi.reduce((s, v) => s + (v > 0 ? v * Math.log(v) : 0), 0);
      }

      const grads = zeroGrads(net);
      // d H / d logit_j = -pi_j (log pi_j + H), H = -sum pi log pi
      const entropyGradient = (pi: Float64Array) => {
        const h = -pi.reduce((s, v) => s + (v > 0 ? v * Math.log(v) : 0), 0);
        return Array.from(pi, (v) => (v > 0 ? (-resolved.entropyBonus * v * (Math.log(v) + h)) / batch.length : 0));
      };
      if (resolved.estimator === 'expected') {
        for (const { p, cache, pi } of passes) {
          const mean = pi.reduce((s, v, j) => s + v * rewards[p][j], 0);
          const e = entropyGradient(pi);
          const d = Array.from(pi, (v, j) => (v * (rewards[p][j] - mean)) / batch.length + e[j]);
          backward(net, cache, d, grads);
        }
      } else {
        const S = resolved.samplesPerPrompt;
        const samples = passes.map(({ p, pi }) => Array.from({ length: S }, () => {
          const u = rng.categorical(pi);
          return { u, r: rewards[p][u] };
        }));
        const all = samples.flat();
        const baseline = all.reduce((s, x) => s + x.r, 0) / all.length;
        passes.forEach(({ cache, pi }, i) => {
          // sum_s (r_s - b) (onehot(u_s) - pi) / (B S): grad of log pi(u) w.r.t. the logits.
          const d = Float64Array.from(entropyGradient(pi));
          for (const { u, r } of samples[i]) {
            const w = (r - baseline) / all.length;
            for (let j = 0; j < pi.length; j++) d[j] -= w * pi[j];
            d[u] += w;
          }
          backward(net, cache, d, grads);
        });
      }
      adam.step(grads, true);
    }

    const n = examples.length;
    const entry: TrainingLogEntry = {
      epoch,
      expectedReward: stats.expected / n,
      greedyReward: stats.greedy / n,
      averageSteps: stats.steps / n,
      entropy: stats.entropy / n,
    };
    log.push(entry);
    options.onEpoch?.(entry);
  }
  let greedy = 0;
  let steps = 0;
  examples.forEach((e, p) => {
    const a = choose(net, e.features).index;
    greedy += rewards[p][a];
    steps += candidates[a];
  });
  const final = { greedyReward: greedy / examples.length, averageSteps: steps / examples.length };
  return { net, log, options: resolved, oracleReward, final, durationMs: performance.now() - start };
}

/** Probabilities and the argmax candidate index for one prompt. */
export function choose(net: PolicyNet, features: TokenFeatures): { index: number; probabilities: Float64Array } {
  const probabilities = softmax(forward(net, features).logits);
  return { index: argmax(probabilities), probabilities };
}
