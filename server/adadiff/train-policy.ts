// Training a step policy for a model, end to end: text features of the training prompts -> reward
// table (cached) -> policy gradient in TypeScript -> adadiff/policy.onnx + policy.json in the model
// folder -> optionally the evaluation on held-out prompts, recorded in policy.json.
// From the same table, where the scheduler's schedules share their first UNet call, a second
// network is trained per image on that call's summary (first-step.ts), not the prompt's features, and written
// beside it as adadiff/policy-first-step.onnx.

import type { LoadedModel } from '../model/contract';
import { throwIfCancelled } from '../pipeline/generate';
import { evaluatePolicy, sha256Lines, type EvaluateProgress } from './evaluate';
import { exportPolicy } from './export';
import { FIRST_STEP_STATS, firstStep, firstStepFeatureNames, sharedFirstCall } from './first-step';
import { featureSource, loadPolicy, promptFeatures } from './policy';
import { POLICY_FIRST_STEP_ONNX, POLICY_FORMAT, POLICY_VERSION, type NamedEvaluation, type PolicyEvaluation, type PolicyManifest } from './policy-manifest';
import { DEFAULT_CANDIDATES, resolveRewardSettings, type RewardOptions } from './reward';
import { buildRewardTable, fidelityScorer, type TableGeneration, type QualityScorer, type RewardTable, type RowRunnerFactory, type TableProgress } from './reward-table';
import { TRAIN_DEFAULTS, trainPolicyNet, type TrainingExample, type TrainingLogEntry, type TrainOptions } from './trainer';

export const DEFAULT_SEEDS: readonly number[] = [0, 1];

export interface TrainPolicyOptions extends TableGeneration {
  prompts: readonly string[];
  /** Evaluated after training, each set on its own (e.g. in- and out-of-distribution); the results go into policy.json. */
  heldOut?: readonly { name: string; prompts: readonly string[] }[];
  /** Train the first-step-aware policy too where the scheduler allows it. Default true. */
  firstStep?: boolean;
  /** Seeds of the initial noise per prompt; rewards are averaged over them. Default [0, 1]. */
  seeds?: readonly number[];
  /** Seeds the held-out sets are judged on (more seeds, steadier shares). Default: `seeds`. */
  heldOutSeeds?: readonly number[];
  /** Candidate step counts. Default: trainingCandidates (DEFAULT_CANDIDATES, or 1-8 for few-step models). */
  candidates?: readonly number[];
  /** Default: fidelity (SSIM to the longest candidate's image). */
  scorer?: QualityScorer;
  /** File name of a user's ONNX scorer, recorded in policy.json. */
  scorerFile?: string;
  reward?: RewardOptions;
  training?: Omit<TrainOptions, 'onEpoch' | 'signal'>;
  /** Reward-table cache directory; no caching when absent. */
  cacheDir?: string;
  /** Who makes the reward tables' rows (training and held-out): this process by default, or a pool. */
  rows?: RowRunnerFactory;
  /** Where adadiff/ is written. Default: the model folder. */
  outDir?: string;
  signal?: AbortSignal;
  onProgress?: (progress: TrainPolicyProgress) => void;
}

export type TrainPolicyProgress =
  | { phase: 'features'; done: number; total: number }
  | { phase: 'table'; progress: TableProgress }
  | { phase: 'first-step'; done: number; total: number }
  | { phase: 'train'; entry: TrainingLogEntry; epochs: number }
  | { phase: 'export'; onnxPath: string }
  | { phase: 'evaluate'; progress: EvaluateProgress };

export interface TrainedPolicy {
  manifest: PolicyManifest;
  onnxPath: string;
  manifestPath: string;
  log: TrainingLogEntry[];
  table: RewardTable;
  /** The prompt-only policy on the first held-out set. */
  evaluation?: PolicyEvaluation;
  evaluations?: NamedEvaluation[];
  /** Why no first-step-aware policy was trained, when none was. */
  firstStepSkipped?: string;
  /** The evaluation plot of the first held-out set, when held-out prompts were given. */
  plotPng?: Buffer;
}

/** The candidates asked for, else the model's own (1-8 steps for a few-step model, layout.ts), else DEFAULT_CANDIDATES. */
export function trainingCandidates(model: Pick<LoadedModel, 'layout'>, given?: readonly number[]): readonly number[] {
  return given ?? model.layout.candidates ?? DEFAULT_CANDIDATES;
}

export async function trainPolicy(model: LoadedModel, opts: TrainPolicyOptions): Promise<TrainedPolicy> {
  const candidates = [...trainingCandidates(model, opts.candidates)].sort((a, b) => a - b);
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

  const generation = { scheduler: opts.scheduler, guidance: opts.guidance, width: opts.width, height: opts.height, negativePrompt: opts.negativePrompt };
  const table = await buildRewardTable(model, {
    prompts: opts.prompts,
    seeds,
    steps: candidates,
    ...generation,
    scorer,
    cacheDir: opts.cacheDir,
    rows: opts.rows,
    signal: opts.signal,
    onProgress: (progress) => opts.onProgress?.({ phase: 'table', progress }),
  });

  const examples = features.map((f, p) => ({ features: f, quality: table.rows[p].map((r) => r.quality) }));
  const epochs = opts.training?.epochs ?? TRAIN_DEFAULTS.epochs;
  const train = (data: TrainingExample[], extraDim = 0) =>
    trainPolicyNet(data, candidates, reward, {
      ...opts.training,
      // The first-step network reads only the first call's summary (policy-net.ts, readsPrompt).
      architecture: { ...opts.training?.architecture, extraDim, ...(extraDim > 0 ? { readsPrompt: false } : {}) },
      signal: opts.signal,
      onEpoch: (entry) => opts.onProgress?.({ phase: 'train', entry, epochs }),
    });

  // The first-step-aware policy: one example per image, its own row of the table.
  const shared = sharedFirstCall(model.folder.schedulerConfig, opts.scheduler, candidates);
  const firstStepSkipped = opts.firstStep === false ? 'not asked for' : shared.shared ? undefined : shared.reason;
  const perImage: TrainingExample[] = [];
  if (!firstStepSkipped) {
    let done = 0;
    for (const [p, prompt] of opts.prompts.entries()) {
      for (const [s, seed] of seeds.entries()) {
        throwIfCancelled(opts.signal);
        const first = await firstStep(model, { prompt, seed, steps: candidates[0], ...generation, signal: opts.signal });
        perImage.push({ features: { ...features[p], extra: first.features }, quality: [table.rows[p][s].quality] });
        opts.onProgress?.({ phase: 'first-step', done: ++done, total: opts.prompts.length * seeds.length });
      }
    }
  }
  const trained = train(examples);
  let refined: { trained: ReturnType<typeof trainPolicyNet>; names: string[] } | undefined;
  if (perImage.length > 0) {
    const dim = perImage[0].features.extra!.length;
    refined = { trained: train(perImage, dim), names: firstStepFeatureNames(dim / FIRST_STEP_STATS.length) };
  }

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
    features: { source: featureSource(model), tokens: features[0].tokens, dim: features[0].dim },
    architecture: trained.options.architecture,
    training,
    ...(refined
      ? {
          firstStep: {
            file: POLICY_FIRST_STEP_ONNX,
            features: refined.names,
            architecture: refined.trained.options.architecture,
            images: opts.prompts.length * seeds.length,
            finalGreedyReward: refined.trained.final.greedyReward,
            oracleReward: refined.trained.oracleReward,
            trainingSeconds: refined.trained.durationMs / 1000,
          },
        }
      : {}),
  };
  const outDir = opts.outDir ?? model.folder.dir;
  const write = () => exportPolicy(trained.net, manifest, outDir, refined?.trained.net);
  let written = await write();
  opts.onProgress?.({ phase: 'export', onnxPath: written.onnxPath });

  const result: TrainedPolicy = { manifest, ...written, log: trained.log, table, ...(firstStepSkipped ? { firstStepSkipped } : {}) };
  const heldOut = (opts.heldOut ?? []).filter((set) => set.prompts.length > 0);
  if (heldOut.length > 0) {
    const policy = await loadPolicy(outDir);
    if (!policy) throw new Error(`train-policy: the policy just written to ${outDir} does not load`);
    try {
      const evaluations: NamedEvaluation[] = [];
      for (const set of heldOut) {
        const evaluated = await evaluatePolicy(model, policy, {
          prompts: set.prompts,
          seeds: opts.heldOutSeeds ?? seeds,
          scorer,
          cacheDir: opts.cacheDir,
          rows: opts.rows,
          signal: opts.signal,
          onProgress: (progress) => opts.onProgress?.({ phase: 'evaluate', progress }),
        });
        evaluations.push({ name: set.name, promptOnly: evaluated.evaluation, ...(evaluated.firstStep ? { firstStep: evaluated.firstStep } : {}) });
        if (evaluations.length === 1) Object.assign(result, { evaluation: evaluated.evaluation, plotPng: evaluated.plotPng });
      }
      manifest.evaluation = evaluations[0].promptOnly;
      manifest.evaluations = evaluations;
      written = await write();
      Object.assign(result, written, { evaluations });
    } finally {
      await policy.dispose();
    }
  }
  return result;
}
