// `adadiff eval`: the trained policy against fixed steps, a random policy and a word-count
// heuristic at the same average steps, on held-out prompts.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { evaluatePolicy, formatEvaluationTable } from '../adadiff/evaluate';
import { loadPolicy } from '../adadiff/policy';
import { loadOnnxScorer } from '../adadiff/reward-table';
import { bundledModelDir, type Command, heldOutSets, modelOption, numberOption, parse, seedsOption, UsageError } from './args';
import { cacheDir, cliModel } from './context';
import { progressBar } from './progress';

const usage = 'adadiff eval --prompts FILE [--prompts FILE]... [--model DIR] [--seeds 0,1] [--tau 0.9] [--scorer FILE.onnx] [--plot FILE.png] [--json]';

export const evalCommand: Command = {
  name: 'eval',
  summary: "evaluate a model's step policy on held-out prompts against baselines and bounds",
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      { ...modelOption, prompts: { type: 'string', multiple: true }, seeds: { type: 'string' }, tau: { type: 'string' }, scorer: { type: 'string' }, plot: { type: 'string' }, json: { type: 'boolean' } },
      usage,
    );
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"\nusage: ${usage}`);
    if (!values.prompts?.length) throw new UsageError(`missing --prompts FILE\nusage: ${usage}`);
    // Each file is judged on its own: e.g. prompts like the training prompts, and prompts unlike them.
    const sets = await heldOutSets(values.prompts);
    const dir = values.model ?? bundledModelDir();
    const model = await cliModel(dir);
    const policy = await loadPolicy(dir).catch(async (err) => {
      await model.dispose();
      throw err;
    });
    try {
      if (!policy) throw new UsageError(`${dir} has no step policy (adadiff/policy.onnx + policy.json); train one with adadiff train-policy`);
      const scorer = values.scorer ? await loadOnnxScorer(values.scorer, model.tokenizer, model.cpu) : undefined;
      const results = [];
      for (const [i, set] of sets.entries()) {
        const bar = progressBar(`eval ${set.name}`);
        const result = await evaluatePolicy(model, policy, {
          prompts: set.prompts,
          seeds: seedsOption(values.seeds),
          tau: numberOption('tau', values.tau, 0, 1),
          scorer,
          cacheDir: join(cacheDir(), 'reward-tables'),
          onProgress: (p) => {
            if (p.phase === 'table') bar.update(p.progress.done, p.progress.total, 'reward table');
            else bar.update(p.done, p.total, p.phase);
          },
        });
        bar.end();
        // One plot per set: FILE.png for the first, FILE-2.png, ... for the others.
        if (values.plot) await writeFile(i === 0 ? values.plot : values.plot.replace(/(\.png)?$/i, `-${i + 1}.png`), result.plotPng);
        results.push({ name: set.name, promptOnly: result.evaluation, firstStep: result.firstStep, firstStepSkipped: result.firstStepSkipped });
      }
      if (values.json) console.log(JSON.stringify(sets.length === 1 ? { ...results[0].promptOnly, firstStep: results[0].firstStep ?? null } : results));
      else {
        for (const r of results) {
          console.log(`${sets.length > 1 ? `## ${r.name}\n\n` : ''}${formatEvaluationTable(r.promptOnly, r.firstStep)}`);
          if (r.firstStepSkipped) console.log(`(no first-step-aware figures: ${r.firstStepSkipped})`);
          console.log('');
        }
      }
      return 0;
    } finally {
      await policy?.dispose();
      await model.dispose();
    }
  },
};
