// `adadiff generate`: one prompt to a PNG, with the step policy's steps or the given ones.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { defineCommand, text } from './command';
import { withModel } from './context';
import { guidance, json, model, scheduler, seed, size, steps } from './options';
import { negativeIgnored } from '../pipeline/generate';
import { progressBar } from './progress';

export const generateCommand = defineCommand({
  name: 'generate',
  summary: 'render a prompt to a PNG with the policy-chosen (or given) steps',
  positionals: { usage: '"PROMPT"', noun: 'prompt', min: 1, max: 1 },
  options: {
    output: text('FILE', 'the PNG to write', { short: 'o', required: true }),
    model,
    steps,
    seed,
    scheduler,
    guidance,
    size,
    negative: text('TEXT', 'the negative prompt'),
    json,
  },
  async run(values, [prompt]) {
    const request = {
      prompt,
      negativePrompt: values.negative,
      steps: values.steps,
      seed: values.seed,
      guidance: values.guidance,
      scheduler: values.scheduler,
      ...values.size,
    };
    return withModel(values.model, async (handle) => {
      const generation = handle.generation({ request });
      const ignored = request.negativePrompt ? negativeIgnored(handle.model, generation.guidance) : undefined;
      if (ignored) console.warn(`warning: --negative has no effect: ${ignored}`);
      const measured = generation.policyMeasuredWith;
      if (measured) console.warn(`note: the step policy was trained with ${measured.scheduler}, guidance ${measured.guidance}; its steps were measured for those`);
      const bar = progressBar('denoising');
      const out = await handle.render(request, { onStep: (p) => bar.update(p.step, p.total) });
      bar.end();
      const file = resolve(values.output);
      await mkdir(dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, out.png);
      await rename(tmp, file);
      const t = out.result.timings;
      const summary = {
        file,
        steps: out.parameters.steps,
        predictedSteps: out.prediction.policy ? out.prediction.steps : null,
        firstStepSteps: out.refinedSteps ?? null,
        baselineSteps: out.prediction.baselineSteps,
        seed: out.parameters.seed,
        size: `${out.result.width}x${out.result.height}`,
        seconds: Number((t.totalMs / 1000).toFixed(3)),
        estimatedSeconds: Number(((out.prediction.estimatedSeconds / out.prediction.steps) * out.parameters.steps).toFixed(3)),
        provider: out.prediction.provider,
        droppedTokens: out.result.droppedTokens,
      };
      if (values.json) console.log(JSON.stringify(summary));
      else {
        const chosen = summary.firstStepSteps !== null ? `, chosen after the first step; the prompt alone: ${summary.predictedSteps}` : '';
        console.log(`${file}: ${summary.size}, ${summary.steps} steps (baseline ${summary.baselineSteps}${chosen}), seed ${summary.seed}, ${summary.seconds} s on ${summary.provider}`);
        if (summary.droppedTokens) console.warn(`warning: ${summary.droppedTokens} prompt tokens past the model's limit were ignored`);
      }
      return 0;
    });
  },
});
