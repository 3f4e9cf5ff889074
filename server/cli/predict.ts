// `adadiff predict`: what the step policy picks for a prompt and what it costs, without rendering.
// Where the first-step-aware policy chooses, it makes the generation's first UNet call (as the
// editor's hover does where that call is cheap) and reports that count for the seed.
import { withFirstStep } from '../engine';
import { defineCommand } from './command';
import { withModel } from './context';
import { json, model, seed } from './options';

export const predictCommand = defineCommand({
  name: 'predict',
  summary: "show the policy's step count and the estimated time for a prompt",
  positionals: { usage: '"PROMPT"', noun: 'prompt', min: 1, max: 1 },
  options: { model, seed, json },
  run: (values, [prompt]) =>
    withModel(values.model, async (handle) => {
      const estimate = await handle.predict(prompt);
      const choice = estimate.refinedAfterFirstStep ? await handle.firstStepChoice({ prompt, seed: values.seed }) : null;
      const p = choice ? withFirstStep(estimate, choice, await handle.calibration()) : estimate;
      if (values.json) {
        const { steps, baselineSteps, candidates, probabilities, estimatedSeconds, policy } = p;
        const firstStep = p.firstStep ? { seed: p.firstStep.seed, promptOnlySteps: p.firstStep.promptOnlySteps } : null;
        console.log(JSON.stringify({ steps, baselineSteps, candidates, probabilities, estimatedSeconds, policy, baselineSeconds: p.baselineSeconds, saving: p.saving, droppedTokens: p.droppedTokens, provider: p.provider, refinedAfterFirstStep: p.refinedAfterFirstStep, firstStep }));
      } else {
        const source = p.firstStep ? `policy, after the first denoising step with seed ${p.firstStep.seed}; the prompt alone: ${p.firstStep.promptOnlySteps}` : p.policy ? 'policy' : 'no policy: baseline steps';
        console.log(`${p.steps} steps (${source}), ~${p.estimatedSeconds.toFixed(2)} s on ${p.provider}, ${(p.saving * 100).toFixed(0)}% less than ${p.baselineSteps} steps`);
        if (p.policy) {
          if (p.firstStep) console.log('From the prompt alone:');
          console.log(p.candidates.map((c, i) => `${String(c).padStart(4)}: ${'#'.repeat(Math.round(p.probabilities[i] * 40))} ${(p.probabilities[i] * 100).toFixed(1)}%`).join('\n'));
        }
      }
      return 0;
    }),
});
