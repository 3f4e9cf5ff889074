import { bundledModelDir, type Command, modelOption, parse, UsageError } from './args';
import { cliEngine } from './context';

const usage = 'adadiff predict "PROMPT" [--model DIR] [--json]';

export const predictCommand: Command = {
  name: 'predict',
  summary: "show the policy's step count and the estimated time for a prompt",
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { ...modelOption, json: { type: 'boolean' } }, usage);
    if (positionals.length !== 1) throw new UsageError(`expected one prompt, got ${positionals.length}\nusage: ${usage}`);
    const engine = cliEngine();
    try {
      const handle = await engine.open(values.model ?? bundledModelDir());
      const p = await handle.predict(positionals[0]);
      if (values.json) {
        const { steps, baselineSteps, candidates, probabilities, estimatedSeconds, policy } = p;
        console.log(JSON.stringify({ steps, baselineSteps, candidates, probabilities, estimatedSeconds, policy, baselineSeconds: p.baselineSeconds, saving: p.saving, droppedTokens: p.droppedTokens, provider: p.provider, refinedAfterFirstStep: p.refinedAfterFirstStep }));
      } else {
        const source = p.policy ? 'policy' : 'no policy: baseline steps';
        console.log(`${p.steps} steps (${source}), ~${p.estimatedSeconds.toFixed(2)} s on ${p.provider}, ${(p.saving * 100).toFixed(0)}% less than ${p.baselineSteps} steps`);
        if (p.refinedAfterFirstStep) console.log('(from the prompt alone: adadiff generate chooses again after the first denoising step, per seed)');
        if (p.policy) {
          console.log(p.candidates.map((c, i) => `${String(c).padStart(4)}: ${'#'.repeat(Math.round(p.probabilities[i] * 40))} ${(p.probabilities[i] * 100).toFixed(1)}%`).join('\n'));
        }
      }
      return 0;
    } finally {
      await engine.dispose();
    }
  },
};
