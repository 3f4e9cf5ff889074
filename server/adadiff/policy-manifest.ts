// adadiff/policy.json: everything a reader needs to use a step policy the way it was trained (which
// text-encoder output it reads, the candidates its logits stand for, the scheduler and guidance
// the steps were measured with) and to judge it (how it was trained, what it measured on
// held-out prompts). Written by export.ts, read and checked by policy.ts.

import { SCHEDULER_NAMES, type SchedulerName } from '../limits';
import type { PolicyArchitecture } from './policy-net';
import type { RewardSettings, ScorerKind } from './reward';
import type { GradientEstimator } from './trainer';

export const POLICY_FORMAT = 'adadiff-policy';
export const POLICY_VERSION = 1;

/** The ONNX graph's interface, fixed by this format version. */
export const POLICY_IO = {
  hidden: 'last_hidden_state',
  mask: 'attention_mask',
  /** The first-step-aware graph's extra input [B, E]: the first UNet call's summary (first-step.ts). */
  firstStep: 'first_step',
  logits: 'logits',
} as const;

export const FEATURE_SOURCES = ['text_encoder.last_hidden_state', 'text_encoder+text_encoder_2.hidden_states[-2]'] as const;
export type FeatureSource = (typeof FEATURE_SOURCES)[number];

export interface PolicyFeatureSpec {
  /**
   * The per-token features the policy reads, which are what the UNet reads (promptFeatures in
   * policy.ts): one text encoder's last_hidden_state, or SDXL's two encoders' penultimate hidden
   * states side by side.
   */
  source: FeatureSource;
  /**
   * Token count L the training features had (the tokenizer's padded length). The graph accepts any
   * L; padding (mask 0) is ignored, and the text encoder runs with an all-ones attention mask, as
   * Stable Diffusion pipelines run CLIP.
   */
  tokens: number;
  /** Feature width D; the graph needs exactly this. */
  dim: number;
}

export interface PolicyTrainingInfo {
  /** Number of training prompts and the sha256 of their text joined by '\n', in order. */
  prompts: number;
  promptsSha256: string;
  /** Seeds of the initial noise the reward table was made with, per prompt. */
  seeds: number[];
  /** Image size of the reward table. */
  width: number;
  height: number;
  scorer: { kind: ScorerKind; /** File name of a user's ONNX scorer. */ model?: string };
  estimator: GradientEstimator;
  epochs: number;
  batchSize: number;
  samplesPerPrompt: number;
  learningRate: number;
  entropyBonus: number;
  /** AdamW decoupled weight decay on the weight matrices (absent in policies trained before it existed). */
  weightDecay?: number;
  seed: number;
  /** Mean reward of the argmax choice on the training prompts at the end, and the best possible. */
  finalGreedyReward: number;
  oracleReward: number;
  /** Wall time of building the reward table and of training. */
  rewardTableSeconds: number;
  trainingSeconds: number;
  /** sha256 of the UNet the reward table was made with (the model folder's hash). */
  modelHash: string;
  createdAt: string;
}

/** One way of choosing steps, measured on the held-out prompts. */
export interface StrategyResult {
  avgSteps: number;
  meanQuality: number;
  /** Share of prompt x seed images with fidelity >= tau; null for a scorer without a threshold. */
  shareMeetingTau: number | null;
}

export interface PolicyEvaluation {
  prompts: number;
  promptsSha256: string;
  seeds: number[];
  /** Mean of the policy's chosen steps over the prompts. */
  avgSteps: number;
  baselineSteps: number;
  /** 100 * (1 - avgSteps / baselineSteps). */
  savingPct: number;
  /** Mean measured generation seconds per image at the chosen steps and at the baseline steps. */
  avgSeconds: number;
  baselineSeconds: number | null;
  /** The fidelity threshold, or null for a scorer judged by top-k. */
  tau: number | null;
  /** Share of prompt x seed images with quality >= tau (null without tau). */
  shareMeetingTau: number | null;
  /** Mean quality over prompt x seed images at the chosen steps. */
  meanQuality: number;
  baselines: {
    /**
     * The baseline that matters: the least fixed step count (a column of the table) whose share of
     * images meeting tau is at least the policy's; null when none is (or without tau).
     */
    fixedSameShare: (StrategyResult & { steps: number }) | null;
    /** Fixed steps: the policy's average rounded, generated and scored like every candidate. */
    fixed: StrategyResult & { steps: number };
    /** Random steps drawn from the policy's own step distribution (exact expectation). */
    random: StrategyResult;
    /** More words, more steps: the policy's step multiset handed out in order of word count. */
    wordCount: StrategyResult;
    /** The baseline schedule (the longest candidate) for every prompt. */
    full: StrategyResult;
  };
  /**
   * Bounds (with tau): per prompt, the least candidate at which every seed's image meets tau (the
   * best a prompt-only policy can do without losing images); per image, the least candidate at
   * which that image meets tau. The largest candidate where none does.
   */
  oracles?: { prompt: StrategyResult; image: StrategyResult };
  /** Spearman correlation of the chosen steps (mean over seeds) with the prompt oracle's steps. */
  oracleSpearman?: number | null;
  /** Fixed steps at every candidate: the quality-vs-steps curve the baselines lie on. */
  fixedCurve: (StrategyResult & { steps: number })[];
  /** Pearson correlation of chosen steps with the prompt's word count; null when either is constant. */
  stepsLengthCorrelation: number | null;
  /** How many prompts got each step count. */
  stepHistogram: Record<string, number>;
  /**
   * Words whose removal lowers the policy's expected steps the most, i.e. the words that push steps
   * up: mean drop in expected steps over the prompts containing the word.
   */
  occlusion: { word: string; deltaSteps: number; prompts: number }[];
}

export interface PolicyManifest {
  format: typeof POLICY_FORMAT;
  version: typeof POLICY_VERSION;
  /** Step counts the logits stand for, in order. */
  candidates: number[];
  /** The fixed schedule savings are measured against (N in the reward). */
  baselineSteps: number;
  /** Scheduler and guidance the reward table was made with: the steps are right for these. */
  scheduler: SchedulerName;
  guidance: number;
  reward: RewardSettings;
  features: PolicyFeatureSpec;
  architecture: PolicyArchitecture;
  training: PolicyTrainingInfo;
  /** The prompt-only policy on the first held-out set. */
  evaluation?: PolicyEvaluation;
  /** Every held-out set (e.g. in- and out-of-distribution), prompt-only and first-step-aware. */
  evaluations?: NamedEvaluation[];
  firstStep?: FirstStepPolicySpec;
}

export interface NamedEvaluation {
  /** The prompts file's name, or what the caller calls the set. */
  name: string;
  promptOnly: PolicyEvaluation;
  firstStep?: PolicyEvaluation;
}

/**
 * The first-step-aware policy (adadiff/policy-first-step.onnx): the same network over the prompt's
 * features plus a summary of the generation's first UNet call, trained per image on the same
 * reward table. Used where the chosen scheduler's schedules share that call and the scheduler and
 * guidance are the policy's; the prompt-only policy everywhere else.
 */
export interface FirstStepPolicySpec {
  file: typeof POLICY_FIRST_STEP_ONNX;
  /** The summary's entries in order (first-step.ts). */
  features: string[];
  architecture: PolicyArchitecture;
  /** Training images (prompt x seed) and the argmax's mean reward on them, against the per-image best. */
  images: number;
  finalGreedyReward: number;
  oracleReward: number;
  trainingSeconds: number;
}

export const POLICY_FIRST_STEP_ONNX = 'policy-first-step.onnx';

/** Checks the fields a runtime relies on; throws with the first problem in words. */
export function validatePolicyManifest(value: unknown): PolicyManifest {
  const m = value as PolicyManifest;
  const fail = (what: string): never => {
    throw new Error(`policy.json: ${what}`);
  };
  if (typeof m !== 'object' || m === null || Array.isArray(m)) fail('is not a JSON object');
  if (m.format !== POLICY_FORMAT) fail(`format is ${JSON.stringify(m.format)}, expected "${POLICY_FORMAT}"`);
  if (m.version !== POLICY_VERSION) fail(`version ${m.version} is not supported (this build reads version ${POLICY_VERSION})`);
  const positiveInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  if (!Array.isArray(m.candidates) || m.candidates.length === 0 || !m.candidates.every(positiveInt)) {
    fail('candidates must be a non-empty list of positive integer step counts');
  }
  if (!positiveInt(m.baselineSteps)) fail('baselineSteps must be a positive integer');
  if (!SCHEDULER_NAMES.includes(m.scheduler)) fail(`scheduler ${JSON.stringify(m.scheduler)} is not one of ${SCHEDULER_NAMES.join(', ')}`);
  if (typeof m.guidance !== 'number' || !Number.isFinite(m.guidance)) fail('guidance must be a number');
  if (!m.features || !positiveInt(m.features.dim) || !positiveInt(m.features.tokens)) {
    fail('features must give the text features\' tokens and dim');
  }
  // Exports always name it; a hand-written manifest may leave it out (then: last_hidden_state).
  if (m.features.source !== undefined && !FEATURE_SOURCES.includes(m.features.source)) fail(`features.source must be one of ${FEATURE_SOURCES.join(', ')}`);
  if (!m.architecture || m.architecture.outputs !== m.candidates.length || m.architecture.inputDim !== m.features.dim) {
    fail('architecture does not match the candidates and feature width');
  }
  if (m.firstStep !== undefined) {
    const f = m.firstStep;
    if (f.file !== POLICY_FIRST_STEP_ONNX) fail(`firstStep.file must be ${POLICY_FIRST_STEP_ONNX}`);
    if (!Array.isArray(f.features) || !f.architecture || f.architecture.extraDim !== f.features.length) {
      fail('firstStep.architecture.extraDim must equal the number of firstStep.features');
    }
    if (f.architecture.outputs !== m.candidates.length || f.architecture.inputDim !== m.features.dim) {
      fail('firstStep.architecture does not match the candidates and feature width');
    }
  }
  return m;
}
