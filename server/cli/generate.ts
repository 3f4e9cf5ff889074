import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { bundledModelDir, type Command, guidanceOption, modelOption, parse, SCHEDULER_USAGE, schedulerOption, seedOption, sizeOption, stepsOption, UsageError } from './args';
import { negativeIgnored } from '../pipeline/generate';
import { cliEngine } from './context';
import { progressBar } from './progress';

const usage =
  `adadiff generate "PROMPT" -o FILE [--model DIR] [--steps auto|N] [--seed N] [--scheduler ${SCHEDULER_USAGE}] [--guidance G] [--size WxH] [--negative TEXT] [--json]`;

export const generateCommand: Command = {
  name: 'generate',
  summary: 'render a prompt to a PNG with the policy-chosen (or given) steps',
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      {
        ...modelOption,
        output: { type: 'string', short: 'o' },
        steps: { type: 'string' },
        seed: { type: 'string' },
        scheduler: { type: 'string' },
        guidance: { type: 'string' },
        size: { type: 'string' },
        negative: { type: 'string' },
        json: { type: 'boolean' },
      },
      usage,
    );
    if (positionals.length !== 1) throw new UsageError(`expected one prompt, got ${positionals.length}\nusage: ${usage}`);
    if (!values.output) throw new UsageError(`missing -o FILE\nusage: ${usage}`);
    const request = {
      prompt: positionals[0],
      negativePrompt: values.negative,
      steps: stepsOption(values.steps),
      seed: seedOption(values.seed),
      guidance: guidanceOption(values.guidance),
      scheduler: schedulerOption(values.scheduler),
      ...sizeOption(values.size),
    };
    const engine = cliEngine();
    try {
      const handle = await engine.open(values.model ?? bundledModelDir());
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
    } finally {
      await engine.dispose();
    }
  },
};
