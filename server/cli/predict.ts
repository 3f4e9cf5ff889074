// `adadiff predict`: what the step policy picks for a prompt and what it costs, without rendering.
import { defineCommand } from './command';
import { withModel } from './context';
import { json, model } from './options';

export const predictCommand = defineCommand({
  name: 'predict',
  summary: "show the policy's step count and the estimated time for a prompt",
  positionals: { usage: '"PROMPT"', noun: 'prompt', min: 1, max: 1 },
  options: { model, json },
  run: (values, [prompt]) =>
    withModel(values.model, async (handle) => {
      const p = await handle.predict(prompt);
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
    }),
});
