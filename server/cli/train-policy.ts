// `adadiff train-policy`: reward table + REINFORCE + export for any diffusers-layout model.
import { join } from 'node:path';
import { formatEvaluationTable } from '../adadiff/evaluate';
import { readPolicyManifest } from '../adadiff/policy';
import type { PolicyManifest } from '../adadiff/policy-manifest';
import { loadOnnxScorer } from '../adadiff/reward-table';
import { DEFAULT_ARCHITECTURE } from '../adadiff/policy-net';
import { DEFAULT_CANDIDATES, REWARD_DEFAULTS } from '../adadiff/reward';
import { DEFAULT_SEEDS, trainPolicy } from '../adadiff/train-policy';
import { TRAIN_DEFAULTS } from '../adadiff/trainer';
import { DEFAULTS, resolveGeneration } from '../generation';
import { SEED, STEPS } from '../limits';
import { FEW_STEP_CANDIDATES } from '../model/layout';
import { heldOutSets, readPromptsFile, UsageError } from './args';
import { defineCommand, text } from './command';
import { cacheDir, withLoadedModel } from './context';
import { choice, guidance, int, ints, json, model, num, poolOptions, promptsFile, scheduler, scorer, seeds, size } from './options';
import { describePoolProgress, withPool } from '../pool/session';
import { poolSpec } from './pool';
import { progressBar } from './progress';

/** lambda and gamma: any weight a user might try. */
const big = { min: 0, max: 1e6 };

export const trainPolicyCommand = defineCommand({
  name: 'train-policy',
  summary: 'train a step policy for a model (reward table, policy gradient, ONNX export)',
  options: {
    prompts: { ...promptsFile('the training prompts'), required: true },
    model,
    'held-out': { ...promptsFile('a prompt set to evaluate the policy on, reported on its own'), multiple: true },
    out: text('DIR', 'where policy.onnx and policy.json go', { defaultText: "the model's adadiff/" }),
    seeds: seeds('seeds per training prompt', DEFAULT_SEEDS.join(',')),
    'held-out-seeds': seeds('seeds per held-out prompt', 'the training seeds'),
    candidates: ints('N,...', STEPS, 'the step counts the policy chooses from', { defaultText: `${DEFAULT_CANDIDATES.join(',')}; ${FEW_STEP_CANDIDATES.join(',')} for few-step models` }),
    'baseline-steps': int('N', STEPS, 'the fixed schedule savings are measured against', { defaultText: 'the largest candidate' }),
    scheduler: { ...scheduler, defaultText: `the current policy's, else the model's, else ${DEFAULTS.scheduler}` },
    guidance: { ...guidance, defaultText: `the current policy's, else the model's, else ${DEFAULTS.guidance}` },
    size,
    scorer,
    tau: num('T', { min: 0, max: 1 }, 'the fidelity (SSIM) an image must reach to count as good', { defaultText: String(REWARD_DEFAULTS.tau) }),
    lambda: num('L', big, "the quality term's weight in the reward", { defaultText: String(REWARD_DEFAULTS.lambda) }),
    gamma: num('G', big, 'the penalty for an image below tau', { defaultText: String(REWARD_DEFAULTS.gamma) }),
    'top-k': int('K', { min: 1, max: 1000 }, 'with --scorer: an image is good when its score ranks in the top k of its prompt', { defaultText: String(REWARD_DEFAULTS.topK) }),
    estimator: choice(['expected', 'reinforce'], 'the policy-gradient estimator', { defaultText: TRAIN_DEFAULTS.estimator }),
    epochs: int('N', { min: 1, max: 100000 }, 'training epochs', { defaultText: String(TRAIN_DEFAULTS.epochs) }),
    lr: num('R', { min: 0, max: 1 }, 'the learning rate (Adam)', { defaultText: String(TRAIN_DEFAULTS.learningRate) }),
    'batch-size': int('N', { min: 1, max: 100000 }, 'prompts per step', { defaultText: String(TRAIN_DEFAULTS.batchSize) }),
    samples: int('N', { min: 1, max: 1000 }, 'sampled step counts per prompt (reinforce)', { defaultText: String(TRAIN_DEFAULTS.samplesPerPrompt) }),
    entropy: num('E', { min: 0, max: 100 }, 'the entropy bonus', { defaultText: String(TRAIN_DEFAULTS.entropyBonus) }),
    'weight-decay': num('W', { min: 0, max: 100 }, 'weight decay', { defaultText: String(TRAIN_DEFAULTS.weightDecay) }),
    'attention-layers': int('N', { min: 0, max: 8 }, 'self-attention layers over the token features', { defaultText: String(DEFAULT_ARCHITECTURE.attentionLayers) }),
    hidden: int('N', { min: 1, max: 1024 }, 'the hidden width', { defaultText: String(DEFAULT_ARCHITECTURE.hiddenDim) }),
    mlp: int('N', { min: 1, max: 1024 }, "the MLP head's width", { defaultText: String(DEFAULT_ARCHITECTURE.mlpDim) }),
    seed: int('N', SEED, 'the seed of the initial weights and the sampling', { defaultText: String(TRAIN_DEFAULTS.seed) }),
    ...poolOptions,
    json,
  },
  async run(values) {
    const prompts = await readPromptsFile(values.prompts);
    const heldOut = await heldOutSets(values['held-out']);
    const modelDir = values.model;
    const policy = await currentPolicy(modelDir);
    return withLoadedModel(modelDir, async (model) => {
      const generation = resolveGeneration({
        purpose: 'training',
        request: { scheduler: values.scheduler, guidance: values.guidance, ...values.size },
        policy,
        model: model.layout.recommended,
      });
      if (values.scorer && values.redis) throw new UsageError('--scorer and --redis: pool workers score with fidelity only for now; drop one');
      const scorer = values.scorer ? await loadOnnxScorer(values.scorer, model.tokenizer, model.cpu) : undefined;
      const bar = progressBar('train-policy');
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      let poolLine = '';
      const result = await withPool(poolSpec(values), (p) => (poolLine = describePoolProgress(p)), (pool) => trainPolicy(model, {
        prompts,
        heldOut,
        scheduler: generation.scheduler,
        guidance: generation.guidance,
        width: generation.width,
        height: generation.height,
        seeds: values.seeds,
        heldOutSeeds: values['held-out-seeds'],
        candidates: values.candidates,
        scorer,
        scorerFile: values.scorer,
        reward: { tau: values.tau, lambda: values.lambda, gamma: values.gamma, topK: values['top-k'], baselineSteps: values['baseline-steps'] },
        training: {
          estimator: values.estimator,
          epochs: values.epochs,
          learningRate: values.lr,
          batchSize: values['batch-size'],
          samplesPerPrompt: values.samples,
          entropyBonus: values.entropy,
          weightDecay: values['weight-decay'],
          seed: values.seed,
          architecture: { attentionLayers: values['attention-layers'], hiddenDim: values.hidden, mlpDim: values.mlp },
        },
        cacheDir: join(cacheDir(), 'reward-tables'),
        rows: pool?.rows(),
        outDir: values.out,
        signal: abort.signal,
        onProgress: (p) => {
          if (p.phase === 'features') bar.update(p.done, p.total, 'text features');
          else if (p.phase === 'table') bar.update(p.progress.done, p.progress.total, `reward table ${poolLine}`);
          else if (p.phase === 'first-step') bar.update(p.done, p.total, 'first denoising steps');
          else if (p.phase === 'train') bar.update(p.entry.epoch, p.epochs, `training, reward ${p.entry.greedyReward.toFixed(3)}`);
          else if (p.phase === 'evaluate' && p.progress.phase === 'table') bar.update(p.progress.progress.done, p.progress.progress.total, `evaluation ${poolLine}`);
        },
      }));
      bar.end();
      if (values.json) {
        console.log(JSON.stringify({ onnxPath: result.onnxPath, manifestPath: result.manifestPath, evaluation: result.evaluation ?? null, evaluations: result.evaluations ?? [] }));
      } else {
        const m = result.manifest;
        console.log(`wrote ${result.onnxPath}${m.firstStep ? ` and ${m.firstStep.file}` : ''} and ${result.manifestPath}`);
        if (result.firstStepSkipped) console.log(`no first-step-aware policy: ${result.firstStepSkipped}`);
        const trainingSeconds = m.training.trainingSeconds + (m.firstStep?.trainingSeconds ?? 0);
        console.log(`reward table ${m.training.rewardTableSeconds.toFixed(1)} s, training ${trainingSeconds.toFixed(1)} s`);
        for (const e of result.evaluations ?? []) console.log(`\n## ${e.name}\n\n${formatEvaluationTable(e.promptOnly, e.firstStep)}`);
      }
      return 0;
    });
  },
});

/** The policy being replaced, whose scheduler and guidance a new one keeps unless flags say otherwise; a broken one counts as none. */
async function currentPolicy(modelDir: string): Promise<PolicyManifest | null> {
  try {
    return await readPolicyManifest(modelDir);
  } catch (err) {
    console.warn(`warning: ${(err as Error).message}; training with the default scheduler and guidance`);
    return null;
  }
}
