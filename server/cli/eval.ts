// `adadiff eval`: the trained policy against fixed steps, a random policy and a word-count
// heuristic at the same average steps, on held-out prompts.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { evaluatePolicy, formatEvaluationTable } from '../adadiff/evaluate';
import { loadPolicy } from '../adadiff/policy';
import { loadOnnxScorer } from '../adadiff/reward-table';
import { heldOutSets, UsageError } from './args';
import { defineCommand, text } from './command';
import { cacheDir, withLoadedModel } from './context';
import { json, model, num, promptsFile, scorer, seeds } from './options';
import { progressBar } from './progress';

export const evalCommand = defineCommand({
  name: 'eval',
  summary: "evaluate a model's step policy on held-out prompts against baselines and bounds",
  options: {
    // Each file is judged on its own: e.g. prompts like the training prompts, and prompts unlike them.
    prompts: { ...promptsFile('a prompt set, reported on its own'), required: true, multiple: true },
    model,
    seeds: seeds('seeds per prompt', "the policy's training seeds"),
    tau: num('T', { min: 0, max: 1 }, 'the fidelity an image must reach to count as good', { defaultText: 'the policy\'s' }),
    scorer,
    plot: text('FILE.png', 'a plot of share meeting tau against average steps; FILE-2.png, ... for further sets'),
    json,
  },
  async run(values) {
    const sets = await heldOutSets(values.prompts);
    const dir = values.model;
    return withLoadedModel(dir, async (model) => {
      const policy = await loadPolicy(dir);
      try {
        if (!policy) throw new UsageError(`${dir} has no step policy (adadiff/policy.onnx + policy.json); train one with adadiff train-policy`);
        const scorerModel = values.scorer ? await loadOnnxScorer(values.scorer, model.tokenizer, model.cpu) : undefined;
        const results = [];
        for (const [i, set] of sets.entries()) {
          const bar = progressBar(`eval ${set.name}`);
          const result = await evaluatePolicy(model, policy, {
            prompts: set.prompts,
            seeds: values.seeds,
            tau: values.tau,
            scorer: scorerModel,
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
      }
    });
  },
});
