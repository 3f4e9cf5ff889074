// The words and charts of hovers and lenses, without a model.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StepPrediction } from '../../server/engine';
import { bar, code, distributionChart, formatSaving, hoverMarkdown, lensTitle, lensTooltip } from '../../server/lsp/present';
import { formatSeconds } from '../../shared/format';
import type { PromptSpan } from '../../server/prompts/types';

const prediction: StepPrediction = {
  steps: 15,
  baselineSteps: 50,
  candidates: [5, 10, 15, 20, 50],
  probabilities: [0.05, 0.2, 0.6, 0.1, 0.05],
  policy: true,
  estimatedSeconds: 0.41,
  baselineSeconds: 1.37,
  saving: 0.7,
  droppedTokens: 0,
  provider: 'cpu',
  refinedAfterFirstStep: false,
};
const span: PromptSpan = { text: 'a fox', range: { start: { line: 2, character: 2 }, end: { line: 2, character: 7 } }, kind: 'markdown-image', options: {}, target: 'img/fox.png' };

test('lens title: steps, time and saving', () => {
  assert.equal(lensTitle(prediction), '15 steps · ~0.4 s · -70%');
  assert.equal(lensTitle({ ...prediction, policy: false, steps: 50, saving: 0 }), '50 steps · ~0.4 s · no policy');
  assert.equal(lensTitle({ ...prediction, policy: false, steps: 12, saving: 0.74 }), '12 steps · ~0.4 s · -74%');
});

test('lens title where the prompt fixes its steps: the policy\'s count and its saving against them, only when it differs', () => {
  const fixed = { ...prediction, steps: 50, estimatedSeconds: 1.37, saving: 0 };
  assert.equal(lensTitle(fixed, { steps: 10, estimatedSeconds: 0.3, saving: 0.78 }), '50 steps · ~1.4 s · policy: 10 steps, -78%');
  assert.equal(lensTitle({ ...fixed, steps: 5, estimatedSeconds: 0.16 }, { steps: 20, estimatedSeconds: 0.55, saving: -2.67 }), '5 steps · ~0.2 s · policy: 20 steps, +267%');
  assert.equal(lensTitle(fixed), '50 steps · ~1.4 s · ±0%', 'no choice (equal, or no policy): the lens as before');
});

test('numbers read naturally', () => {
  assert.deepEqual([0.004, 0.05, 0.41, 12.4, 130].map(formatSeconds), ['4 ms', '50 ms', '0.4 s', '12 s', '2 min 10 s']);
  assert.deepEqual([0.7, 0, -0.1].map(formatSaving), ['-70%', '±0%', '+10%']);
  assert.equal(bar(1, 4), '████');
  assert.equal(bar(0.5, 3), '█▌');
  assert.equal(code('a `b` c'), '`` a `b` c ``');
});

test('the distribution chart marks the chosen candidate', () => {
  const chart = distributionChart(prediction).split('\n');
  assert.equal(chart.length, 5);
  assert.match(chart[2], /^15 │█{20} *60\.0% ◀$/);
  assert.doesNotMatch(chart[0], /◀/);
});

test('hover: command links carry the prompt as JSON arguments; no policy offers training', () => {
  const md = hoverMarkdown({ uri: 'file:///w/a.md', span, prediction: { ...prediction, droppedTokens: 3 }, modelName: 'tiny' });
  assert.match(md, /\*\*AdaDiff: 15 steps\*\* instead of 50/);
  assert.match(md, /3 tokens past the text encoder's limit are dropped/);
  const link = /\[Preview\]\(command:adadiff\.preview\?([^ )]+)/.exec(md)!;
  assert.equal(JSON.parse(decodeURIComponent(link[1]))[0].prompt, 'a fox');
  assert.match(md, /\[Generate asset\]\(command:adadiff\.generateAsset\?/);
  const none = hoverMarkdown({ uri: 'file:///w/a.md', span, prediction: { ...prediction, policy: false }, modelName: 'tiny' });
  assert.match(none, /has no trained step policy/);
  assert.doesNotMatch(none, /```text/);
});

test('hover without a policy: a Train a step policy link carrying the settings scope, only then', () => {
  const none = hoverMarkdown({ uri: 'file:///w/a.md', span, prediction: { ...prediction, policy: false, steps: 50, saving: 0 }, modelName: 'tiny' });
  const link = /\[Train a step policy\]\(command:adadiff\.trainPolicy\?([^ )]+) "[^"]+"\)/.exec(none);
  assert.ok(link, none);
  assert.deepEqual(JSON.parse(decodeURIComponent(link[1])), [{ uri: 'file:///w/a.md' }]);
  assert.doesNotMatch(none, /see the README/);
  const trained = hoverMarkdown({ uri: 'file:///w/a.md', span, prediction, modelName: 'tiny' });
  assert.doesNotMatch(trained, /adadiff\.trainPolicy/);
});

test('hover: a policy that chooses again after the first step says the count is an estimate from the prompt alone', () => {
  const md = (refinedAfterFirstStep: boolean) => hoverMarkdown({ uri: 'file:///a.md', span, prediction: { ...prediction, refinedAfterFirstStep }, modelName: 'default' });
  assert.match(md(true), /estimate from the prompt alone, charted below: a preview or an asset chooses again after its first denoising step/);
  assert.doesNotMatch(md(false), /estimate from the prompt alone/);
  assert.match(lensTooltip({ ...prediction, refinedAfterFirstStep: true })!, /from the prompt alone/);
  assert.equal(lensTooltip(prediction), undefined);
});

test('hover and lens where the first step was made for the hover: the count a preview with that seed renders, and the prompt-only one beside it', () => {
  const chosen = { ...prediction, steps: 40, refinedAfterFirstStep: true, firstStep: { seed: 7, promptOnlySteps: 15 } };
  const md = hoverMarkdown({ uri: 'file:///a.md', span, prediction: chosen, modelName: 'default' });
  assert.match(md, /^\*\*AdaDiff: 40 steps\*\* instead of 50/m);
  assert.match(md, /^Chosen after the first denoising step with seed 7, as a preview renders it \(.*\)\. From the prompt alone: 15 steps, charted below/m);
  assert.ok(md.indexOf('Chosen after') < md.indexOf('```text'), 'said before the chart, which can push it out of view');
  assert.doesNotMatch(md, /An estimate from the prompt alone/);
  // The chart is the prompt-only policy's: its mark stays on that policy's pick.
  assert.match(md, /^15 │.*◀$/m);
  assert.doesNotMatch(md, /^40 │.*◀$/m);
  assert.equal(lensTooltip(chosen), 'Chosen after the first denoising step with seed 7, as a preview renders it (from the prompt alone: 15).');
  const skipped = hoverMarkdown({ uri: 'file:///a.md', span, prediction: { ...prediction, refinedAfterFirstStep: true, firstStepSkipped: 'one UNet step takes ~2.1 s on cpu here, too long for a hover' }, modelName: 'default' });
  assert.match(skipped, /An estimate from the prompt alone, charted below: .* Not run for this hover: one UNet step takes ~2\.1 s on cpu here, too long for a hover\./);
  const inCode: PromptSpan = { ...span, kind: 'code-string', options: { steps: 50, stepsRange: { start: { line: 2, character: 30 }, end: { line: 2, character: 32 } } } };
  const code = hoverMarkdown({ uri: 'file:///w/a.py', span: inCode, prediction: { ...chosen, steps: 50 }, policyChoice: { steps: 40, estimatedSeconds: 1.1, saving: 0.2 }, modelName: 'tiny' });
  assert.match(code, /^The step policy would choose \*\*40 steps\*\*: ~1\.1 s, -20% time against these 50, after the first denoising step with seed 7 \(from the prompt alone: 15\) \(a quick fix writes them into the code\)\.$/m);
});

test('hover where the prompt fixes its steps: the policy\'s count, time and saving, and how to get them', () => {
  const fixed = { ...prediction, steps: 50, estimatedSeconds: 1.37, saving: 0 };
  const choice = { steps: 10, estimatedSeconds: 0.3, saving: 0.78 };
  const literal = { start: { line: 2, character: 30 }, end: { line: 2, character: 32 } };
  const inCode: PromptSpan = { ...span, kind: 'code-string', options: { steps: 50, stepsRange: literal } };
  const code = hoverMarkdown({ uri: 'file:///w/a.py', span: inCode, prediction: fixed, policyChoice: choice, modelName: 'tiny' });
  assert.match(code, /^\*\*AdaDiff: 50 steps\*\* \(fixed in the code\) · ~1\.4 s on cpu · ±0% time against 50 steps$/m);
  assert.match(code, /^The step policy would choose \*\*10 steps\*\*: ~0\.3 s, -78% time against these 50 \(a quick fix writes them into the code\)\.$/m);
  const option = hoverMarkdown({ uri: 'file:///w/a.md', span: { ...span, options: { steps: 50 } }, prediction: fixed, policyChoice: choice, modelName: 'tiny' });
  assert.match(option, /\(the prompt's `steps` option\)/);
  assert.match(option, /would choose \*\*10 steps\*\*: ~0\.3 s, -78% time against these 50 \(`steps: auto`\)\./);
  const same = hoverMarkdown({ uri: 'file:///w/a.py', span: inCode, prediction: fixed, modelName: 'tiny' });
  assert.match(same, /The step policy would choose these 50 steps too\./);
  const none = hoverMarkdown({ uri: 'file:///w/a.py', span: inCode, prediction: { ...fixed, policy: false }, modelName: 'tiny' });
  assert.doesNotMatch(none, /step policy would/);
});
