// `adadiff eval`: the trained policy against fixed steps, a random policy and a word-count
// heuristic at the same average steps, on held-out prompts.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { evaluatePolicy, formatEvaluationTable } from '../adadiff/evaluate';
import { loadPolicy } from '../adadiff/policy';
import { loadOnnxScorer } from '../adadiff/reward-table';
import { bundledModelDir, type Command, listOption, modelOption, numberOption, parse, readPromptsFile, UsageError } from './args';
import { cacheDir, cliModel } from './context';
import { progressBar } from './progress';

const usage = 'adadiff eval --prompts FILE [--model DIR] [--seeds 0,1] [--tau 0.9] [--scorer FILE.onnx] [--plot FILE.png] [--json]';

export const evalCommand: Command = {
  name: 'eval',
  summary: "evaluate a model's step policy on held-out prompts against baselines",
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      { ...modelOption, prompts: { type: 'string' }, seeds: { type: 'string' }, tau: { type: 'string' }, scorer: { type: 'string' }, plot: { type: 'string' }, json: { type: 'boolean' } },
      usage,
    );
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"\nusage: ${usage}`);
    if (!values.prompts) throw new UsageError(`missing --prompts FILE\nusage: ${usage}`);
    const prompts = await readPromptsFile(values.prompts);
    const dir = values.model ?? bundledModelDir();
    const model = await cliModel(dir);
    const policy = await loadPolicy(dir).catch(async (err) => {
      await model.dispose();
      throw err;
    });
    try {
      if (!policy) throw new UsageError(`${dir} has no step policy (adadiff/policy.onnx + policy.json); train one with adadiff train-policy`);
      const bar = progressBar('eval');
      const { evaluation, plotPng } = await evaluatePolicy(model, policy, {
        prompts,
        seeds: listOption('seeds', values.seeds, 0, 0xffffffff),
        tau: numberOption('tau', values.tau, 0, 1),
        scorer: values.scorer ? await loadOnnxScorer(values.scorer, model.tokenizer, model.cpu) : undefined,
        cacheDir: join(cacheDir(), 'reward-tables'),
        onProgress: (p) => {
          if (p.phase === 'table') bar.update(p.progress.done, p.progress.total, 'reward table');
          else bar.update(p.done, p.total, p.phase);
        },
      });
      bar.end();
      if (values.plot) await writeFile(values.plot, plotPng);
      console.log(values.json ? JSON.stringify(evaluation) : formatEvaluationTable(evaluation));
      return 0;
    } finally {
      await policy?.dispose();
      await model.dispose();
    }
  },
};
