// Training a step policy for a model, end to end: text features of the training prompts -> reward
// table (cached) -> policy gradient in TypeScript -> adadiff/policy.onnx + policy.json in the model
// folder -> optionally the evaluation on held-out prompts, recorded in policy.json.

import type { LoadedModel } from '../model/contract';
import { throwIfCancelled } from '../pipeline/generate';
import { evaluatePolicy, sha256Lines, type EvaluateProgress } from './evaluate';
import { exportPolicy } from './export';
import { loadPolicy, promptFeatures } from './policy';
import { POLICY_FORMAT, POLICY_VERSION, type PolicyEvaluation, type PolicyManifest } from './policy-manifest';
import { DEFAULT_CANDIDATES, resolveRewardSettings, type RewardOptions } from './reward';
import { buildRewardTable, fidelityScorer, type GenerationSettings, type QualityScorer, type RewardTable, type TableProgress } from './reward-table';
import { TRAIN_DEFAULTS, trainPolicyNet, type TrainingLogEntry, type TrainOptions } from './trainer';

export const DEFAULT_SEEDS: readonly number[] = [0, 1];

export interface TrainPolicyOptions extends GenerationSettings {
  prompts: readonly string[];
  /** Evaluated after training; the result goes into policy.json. */
  heldOutPrompts?: readonly string[];
  /** Seeds of the initial noise per prompt; rewards are averaged over them. Default [0, 1]. */
  seeds?: readonly number[];
  /** Candidate step counts. Default 5, 10, ..., 50. */
  candidates?: readonly number[];
  /** Default: fidelity (SSIM to the longest candidate's image). */
  scorer?: QualityScorer;
  /** File name of a user's ONNX scorer, recorded in policy.json. */
  scorerFile?: string;
  reward?: RewardOptions;
  training?: Omit<TrainOptions, 'onEpoch' | 'signal'>;
  /** Reward-table cache directory; no caching when absent. */
  cacheDir?: string;
  /** Where adadiff/ is written. Default: the model folder. */
  outDir?: string;
  signal?: AbortSignal;
  onProgress?: (progress: TrainPolicyProgress) => void;
}

export type TrainPolicyProgress =
  | { phase: 'features'; done: number; total: number }
  | { phase: 'table'; progress: TableProgress }
  | { phase: 'train'; entry: TrainingLogEntry; epochs: number }
  | { phase: 'export'; onnxPath: string }
  | { phase: 'evaluate'; progress: EvaluateProgress };

export interface TrainPolicyResult {
  manifest: PolicyManifest;
  onnxPath: string;
  manifestPath: string;
  log: TrainingLogEntry[];
  table: RewardTable;
  evaluation?: PolicyEvaluation;
  /** The evaluation plot, when held-out prompts were given. */
  plotPng?: Buffer;
}

export async function trainPolicy(model: LoadedModel, opts: TrainPolicyOptions): Promise<TrainPolicyResult> {
  const candidates = [...(opts.candidates ?? DEFAULT_CANDIDATES)].sort((a, b) => a - b);
  if (new Set(candidates).size !== candidates.length) throw new Error('train-policy: candidates must be distinct');
  const seeds = [...(opts.seeds ?? DEFAULT_SEEDS)];
  const scorer = opts.scorer ?? fidelityScorer;
  const reward = resolveRewardSettings(scorer.kind, candidates, opts.reward);
  if (opts.prompts.length === 0) throw new Error('train-policy: no training prompts');

  const features = [];
  for (const [i, prompt] of opts.prompts.entries()) {
    throwIfCancelled(opts.signal);
    features.push(await promptFeatures(model, prompt));
    opts.onProgress?.({ phase: 'features', done: i + 1, total: opts.prompts.length });
  }

  const table = await buildRewardTable(model, {
    prompts: opts.prompts,
    seeds,
    steps: candidates,
    scheduler: opts.scheduler,
    guidance: opts.guidance,
    width: opts.width,
    height: opts.height,
    negativePrompt: opts.negativePrompt,
    scorer,
    cacheDir: opts.cacheDir,
    signal: opts.signal,
    onProgress: (progress) => opts.onProgress?.({ phase: 'table', progress }),
  });

  const examples = features.map((f, p) => ({ features: f, quality: table.rows[p].map((r) => r.quality) }));
  const epochs = opts.training?.epochs ?? TRAIN_DEFAULTS.epochs;
  const trained = trainPolicyNet(examples, candidates, reward, {
    ...opts.training,
    signal: opts.signal,
    onEpoch: (entry) => opts.onProgress?.({ phase: 'train', entry, epochs }),
  });

  const training: PolicyManifest['training'] = {
    prompts: opts.prompts.length,
    promptsSha256: sha256Lines(opts.prompts),
    seeds,
    width: table.width,
    height: table.height,
    scorer: { kind: scorer.kind, ...(opts.scorerFile ? { model: opts.scorerFile } : {}) },
    estimator: trained.options.estimator,
    epochs: trained.options.epochs,
    batchSize: trained.options.batchSize,
    samplesPerPrompt: trained.options.samplesPerPrompt,
    learningRate: trained.options.learningRate,
    entropyBonus: trained.options.entropyBonus,
    weightDecay: trained.options.weightDecay,
    seed: trained.options.seed,
    finalGreedyReward: trained.final.greedyReward,
    oracleReward: trained.oracleReward,
    rewardTableSeconds: table.generatedSeconds,
    trainingSeconds: trained.durationMs / 1000,
    modelHash: await model.folder.hash(),
    createdAt: new Date().toISOString(),
  };
  const manifest: PolicyManifest = {
    format: POLICY_FORMAT,
    version: POLICY_VERSION,
    candidates,
    baselineSteps: reward.baselineSteps,
    scheduler: opts.scheduler,
    guidance: opts.guidance,
    reward,
    features: { source: 'text_encoder.last_hidden_state', tokens: features[0].tokens, dim: features[0].dim },
    architecture: trained.options.architecture,
    training,
  };
  const outDir = opts.outDir ?? model.folder.dir;
  let written = await exportPolicy(trained.net, manifest, outDir);
  opts.onProgress?.({ phase: 'export', onnxPath: written.onnxPath });

  const result: TrainPolicyResult = { manifest, ...written, log: trained.log, table };
  if (opts.heldOutPrompts && opts.heldOutPrompts.length > 0) {
    const policy = await loadPolicy(outDir);
    if (!policy) throw new Error(`train-policy: the policy just written to ${outDir} does not load`);
    try {
      const evaluated = await evaluatePolicy(model, policy, {
        prompts: opts.heldOutPrompts,
        seeds,
        scorer,
        cacheDir: opts.cacheDir,
        signal: opts.signal,
        onProgress: (progress) => opts.onProgress?.({ phase: 'evaluate', progress }),
      });
      manifest.evaluation = evaluated.evaluation;
      written = await exportPolicy(trained.net, manifest, outDir);
      Object.assign(result, written, { evaluation: evaluated.evaluation, plotPng: evaluated.plotPng });
    } finally {
      await policy.dispose();
    }
  }
  return result;
}
