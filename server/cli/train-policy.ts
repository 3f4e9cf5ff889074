// `adadiff train-policy`: reward table + REINFORCE + export for any diffusers-layout model.
import { join } from 'node:path';
import { formatEvaluationTable } from '../adadiff/evaluate';
import { readPolicyManifest } from '../adadiff/policy';
import type { PolicyManifest } from '../adadiff/policy-manifest';
import { loadOnnxScorer } from '../adadiff/reward-table';
import { trainPolicy } from '../adadiff/train-policy';
import { DEFAULTS, resolveGeneration } from '../generation';
import { STEPS } from '../limits';
import {
  boundedInt,
  bundledModelDir,
  type Command,
  guidanceOption,
  heldOutSets,
  intOption,
  listOption,
  modelOption,
  numberOption,
  parse,
  readPromptsFile,
  SCHEDULER_USAGE,
  schedulerOption,
  seedOption,
  seedsOption,
  sizeOption,
  UsageError,
} from './args';
import { cacheDir, cliModel } from './context';
import { progressBar } from './progress';

const usage =
  'adadiff train-policy --prompts FILE [--model DIR] [--held-out FILE]... [--out DIR] [--seeds 0,1] [--held-out-seeds 0,1] [--candidates 5,10,...,50] ' +
  `[--baseline-steps N (largest candidate)] [--scheduler ${SCHEDULER_USAGE} (the current policy's, else the model's, else ${DEFAULTS.scheduler})] ` +
  `[--guidance G (the current policy's, else the model's, else ${DEFAULTS.guidance})] [--size WxH] [--scorer FILE.onnx] ` +
  '[--tau 0.9] [--lambda 3] [--gamma 1] [--top-k 5] ' +
  '[--estimator expected|reinforce] [--epochs 150] [--lr 0.003] [--batch-size 16] [--samples 8] [--entropy 0.05] [--weight-decay 1] ' +
  '[--attention-layers 0] [--hidden 32] [--mlp 32] [--seed 0] [--json]';

export const trainPolicyCommand: Command = {
  name: 'train-policy',
  summary: 'train a step policy for a model (reward table, policy gradient, ONNX export)',
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      {
        ...modelOption,
        prompts: { type: 'string' },
        'held-out': { type: 'string', multiple: true },
        out: { type: 'string' },
        seeds: { type: 'string' },
        'held-out-seeds': { type: 'string' },
        candidates: { type: 'string' },
        'baseline-steps': { type: 'string' },
        scheduler: { type: 'string' },
        guidance: { type: 'string' },
        size: { type: 'string' },
        scorer: { type: 'string' },
        tau: { type: 'string' },
        lambda: { type: 'string' },
        gamma: { type: 'string' },
        'top-k': { type: 'string' },
        estimator: { type: 'string' },
        epochs: { type: 'string' },
        lr: { type: 'string' },
        'batch-size': { type: 'string' },
        samples: { type: 'string' },
        entropy: { type: 'string' },
        'weight-decay': { type: 'string' },
        'attention-layers': { type: 'string' },
        hidden: { type: 'string' },
        mlp: { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
      },
      usage,
    );
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"\nusage: ${usage}`);
    if (!values.prompts) throw new UsageError(`missing --prompts FILE\nusage: ${usage}`);
    if (values.estimator && values.estimator !== 'reinforce' && values.estimator !== 'expected') {
      throw new UsageError(`--estimator must be reinforce or expected, got "${values.estimator}"`);
    }
    const prompts = await readPromptsFile(values.prompts);
    const heldOut = await heldOutSets(values['held-out']);
    const modelDir = values.model ?? bundledModelDir();
    const request = { scheduler: schedulerOption(values.scheduler), guidance: guidanceOption(values.guidance), ...sizeOption(values.size) };
    const policy = await currentPolicy(modelDir);
    const model = await cliModel(modelDir);
    try {
      const generation = resolveGeneration({ purpose: 'training', request, policy, model: model.layout.recommended });
      const scorer = values.scorer ? await loadOnnxScorer(values.scorer, model.tokenizer, model.cpu) : undefined;
      const bar = progressBar('train-policy');
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      const result = await trainPolicy(model, {
        prompts,
        heldOut,
        scheduler: generation.scheduler,
        guidance: generation.guidance,
        width: generation.width,
        height: generation.height,
        seeds: seedsOption(values.seeds),
        heldOutSeeds: seedsOption(values['held-out-seeds'], 'held-out-seeds'),
        candidates: listOption('candidates', values.candidates, STEPS.min, STEPS.max),
        scorer,
        scorerFile: values.scorer,
        reward: {
          tau: numberOption('tau', values.tau, 0, 1),
          lambda: numberOption('lambda', values.lambda, 0, 1e6),
          gamma: numberOption('gamma', values.gamma, 0, 1e6),
          topK: intOption('top-k', values['top-k'], 1, 1000),
          baselineSteps: boundedInt('baseline-steps', values['baseline-steps'], STEPS),
        },
        training: {
          estimator: values.estimator as 'reinforce' | 'expected' | undefined,
          epochs: intOption('epochs', values.epochs, 1, 100000),
          learningRate: numberOption('lr', values.lr, 0, 1),
          batchSize: intOption('batch-size', values['batch-size'], 1, 100000),
          samplesPerPrompt: intOption('samples', values.samples, 1, 1000),
          entropyBonus: numberOption('entropy', values.entropy, 0, 100),
          weightDecay: numberOption('weight-decay', values['weight-decay'], 0, 100),
          seed: seedOption(values.seed),
          architecture: {
            attentionLayers: intOption('attention-layers', values['attention-layers'], 0, 8),
            hiddenDim: intOption('hidden', values.hidden, 1, 1024),
            mlpDim: intOption('mlp', values.mlp, 1, 1024),
          },
        },
        cacheDir: join(cacheDir(), 'reward-tables'),
        outDir: values.out,
        signal: abort.signal,
        onProgress: (p) => {
          if (p.phase === 'features') bar.update(p.done, p.total, 'text features');
          else if (p.phase === 'table') bar.update(p.progress.done, p.progress.total, 'reward table');
          else if (p.phase === 'first-step') bar.update(p.done, p.total, 'first denoising steps');
          else if (p.phase === 'train') bar.update(p.entry.epoch, p.epochs, `training, reward ${p.entry.greedyReward.toFixed(3)}`);
          else if (p.phase === 'evaluate' && p.progress.phase === 'table') bar.update(p.progress.progress.done, p.progress.progress.total, 'evaluation');
        },
      });
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
    } finally {
      await model.dispose();
    }
  },
};

/** The policy being replaced, whose scheduler and guidance a new one keeps unless flags say otherwise; a broken one counts as none. */
async function currentPolicy(modelDir: string): Promise<PolicyManifest | null> {
  try {
    return await readPolicyManifest(modelDir);
  } catch (err) {
    console.warn(`warning: ${(err as Error).message}; training with the default scheduler and guidance`);
    return null;
  }
}
