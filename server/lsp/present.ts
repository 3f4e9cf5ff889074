// What the user reads: hover Markdown and CodeLens titles, from a prediction. Pure functions, so
// the wording is tested without a model.
import { isMeasured, type StepEstimate, type StepPrediction } from '../engine';
import type { Generation } from '../generation';
import { SAMPLER_LABELS } from '../pipeline/parameters';
import { formatSeconds } from '../../shared/format';
import { ClientCommands, type PromptCommandArgs, type TrainPolicyCommandArgs } from '../../shared/protocol';
import type { PromptSpan } from '../prompts/types';
import { SCAN_BUDGET_MS } from './documents';
import type { PolicyChoice } from './models';

export function formatSaving(saving: number): string {
  const pct = Math.round(saving * 100);
  return pct === 0 ? '±0%' : pct > 0 ? `-${pct}%` : `+${-pct}%`;
}

/**
 * `15 steps · ~0.4 s · -70%`; where the prompt fixes its steps and the policy would pick others,
 * what it would pick and save against them instead: `50 steps · ~0.5 s · policy: 10 steps, -78%`.
 */
export function lensTitle(p: StepEstimate, choice?: PolicyChoice): string {
  if (!isMeasured(p)) {
    // The render worker is still loading or measuring the UNet: the steps, and no invented time.
    const policy = choice ? `policy: ${choice.steps} steps` : p.policy ? `baseline ${p.baselineSteps}` : p.steps === p.baselineSteps ? 'no policy' : undefined;
    return [`${p.steps} steps`, 'time not measured yet', ...(policy ? [policy] : [])].join(' · ');
  }
  const parts = [`${p.steps} steps`, `~${formatSeconds(p.estimatedSeconds)}`];
  if (choice) parts.push(`policy: ${choice.steps} steps${choice.saving === undefined ? '' : `, ${formatSaving(choice.saving)}`}`);
  // Without a policy the steps are the baseline unless the prompt fixes them: say why there is no saving.
  else parts.push(p.policy || p.steps !== p.baselineSteps ? formatSaving(p.saving) : 'no policy');
  return parts.join(' · ');
}

/** The lens's tooltip: which policy chose the title's count, where a preview reads its first step. */
export function lensTooltip(p: StepEstimate): string | undefined {
  if (p.firstStep) return `Chosen after the first denoising step with seed ${p.firstStep.seed}, as a preview renders it (from the prompt alone: ${p.firstStep.promptOnlySteps}).`;
  if (!p.refinedAfterFirstStep) return undefined;
  const why = p.firstStepSkipped ? ` Not made here: ${p.firstStepSkipped}.` : '';
  return `Estimated from the prompt alone; a preview or an asset chooses again after its first denoising step.${why}`;
}

const BLOCKS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A bar of `width` cells for a fraction 0..1, in eighths of a cell. */
export function bar(fraction: number, width = 20): string {
  const eighths = Math.round(Math.max(0, Math.min(1, fraction)) * width * 8);
  return '█'.repeat(Math.floor(eighths / 8)) + BLOCKS[eighths % 8];
}

/** The prompt-only policy's odds per candidate; ◀ marks its pick. */
export function distributionChart(p: StepEstimate): string {
  const max = Math.max(...p.probabilities);
  const label = Math.max(...p.candidates.map((c) => String(c).length));
  return p.candidates
    .map((c, i) => {
      const prob = p.probabilities[i];
      const mark = c === (p.firstStep?.promptOnlySteps ?? p.steps) ? ' ◀' : '';
      return `${String(c).padStart(label)} │${bar(max > 0 ? prob / max : 0).padEnd(21)}${(prob * 100).toFixed(1).padStart(5)}%${mark}`;
    })
    .join('\n');
}

export function commandLink(title: string, command: string, args: PromptCommandArgs | TrainPolicyCommandArgs): string {
  return `[${title}](command:${command}?${encodeURIComponent(JSON.stringify([args]))} "${title}")`;
}

/** Generate asset is offered where the prompt names a file to write: a Markdown image target or a `prompt` fence's `out:`. */
export const hasAssetTarget = (span: PromptSpan): boolean => (span.kind === 'markdown-image' || span.kind === 'markdown-fence') && !!span.target;

export function commandArgs(uri: string, span: PromptSpan): PromptCommandArgs {
  const o = span.options;
  return {
    uri,
    range: span.range,
    prompt: span.text,
    negativePrompt: span.negative ?? o.negative,
    seed: o.seed,
    steps: o.steps,
    size: o.size,
    target: span.target ?? o.out,
  };
}

/** Markdown inline code that survives backticks in the text. */
export function code(text: string): string {
  const run = Math.max(0, ...(text.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(run + 1);
  return `${fence}${run ? ' ' : ''}${text}${run ? ' ' : ''}${fence}`;
}

export interface HoverInput {
  uri: string;
  span: PromptSpan;
  prediction: StepEstimate;
  policyChoice?: PolicyChoice;
  /** What a preview uses: its scheduler and guidance, said on the model's line. */
  generation?: Pick<Generation, 'scheduler' | 'guidance' | 'policyMeasuredWith'>;
  modelName: string;
  note?: string;
}

/** `DDIM, guidance 7` */
const sampler = (g: { scheduler: Generation['scheduler']; guidance: number }) => `${SAMPLER_LABELS[g.scheduler]}, guidance ${g.guidance}`;

/** Which policy chose the count; the chart below it is the prompt-only policy's odds. */
function firstStepLines(p: StepEstimate): string[] {
  if (p.firstStep) {
    const { seed, promptOnlySteps } = p.firstStep;
    return ['', `Chosen after the first denoising step with seed ${seed}, as a preview renders it (the first-step-aware policy read that one UNet call). From the prompt alone: ${promptOnlySteps} steps, charted below; another seed can get another count.`];
  }
  if (!p.refinedAfterFirstStep) return [];
  const why = p.firstStepSkipped ? ` Not run for this hover: ${p.firstStepSkipped}.` : '';
  return ['', `An estimate from the prompt alone, charted below: a preview or an asset chooses again after its first denoising step (the first-step-aware policy reads it), so the count can differ from seed to seed.${why}`];
}

/** The cost part of the hover's first line, or that it is not measured yet. */
function costLine(p: StepEstimate, line: (m: StepPrediction) => string): string {
  return isMeasured(p) ? line(p) : 'time not measured yet';
}

/** ` · ~0.4 s, -70% time against these 50` where the cost is known. */
const choiceCost = (choice: PolicyChoice, steps: number) =>
  choice.estimatedSeconds === undefined || choice.saving === undefined ? '' : `: ~${formatSeconds(choice.estimatedSeconds)}, ${formatSaving(choice.saving)} time against these ${steps}`;

export function hoverMarkdown({ uri, span, prediction: p, policyChoice: choice, generation, modelName, note }: HoverInput): string {
  const lines: string[] = [];
  if (typeof span.options.steps === 'number') {
    const inCode = span.options.stepsRange !== undefined;
    lines.push(`**AdaDiff: ${p.steps} steps** (${inCode ? 'fixed in the code' : "the prompt's `steps` option"}) · ${costLine(p, (m) => `~${formatSeconds(m.estimatedSeconds)} on ${m.provider} · ${formatSaving(m.saving)} time against ${m.baselineSteps} steps`)}`);
    const how = inCode ? 'a quick fix writes them into the code' : '`steps: auto`';
    const after = p.firstStep ? `, after the first denoising step with seed ${p.firstStep.seed} (from the prompt alone: ${p.firstStep.promptOnlySteps})` : '';
    if (choice) lines.push('', `The step policy would choose **${choice.steps} steps**${choiceCost(choice, p.steps)}${after} (${how}).`);
    else if (p.policy) lines.push('', `The step policy would choose these ${p.steps} steps too.`);
  } else if (p.policy) {
    lines.push(`**AdaDiff: ${p.steps} steps** instead of ${p.baselineSteps} · ${costLine(p, (m) => `~${formatSeconds(m.estimatedSeconds)} instead of ~${formatSeconds(m.baselineSeconds)} on ${m.provider} · **${formatSaving(m.saving)}** time`)}`);
    // Which policy chose comes before the chart: the chart is long enough to push it out of view.
    lines.push(...firstStepLines(p));
    lines.push('', '```text', distributionChart(p), '```');
  } else {
    lines.push(`**AdaDiff: ${p.steps} steps** (baseline) · ${costLine(p, (m) => `~${formatSeconds(m.estimatedSeconds)} on ${m.provider}`)}`);
    // The settings scope travels with the link: the command trains the model this document's settings choose.
    const train = commandLink('Train a step policy', ClientCommands.trainPolicy, { uri });
    lines.push('', `${code(modelName)} has no trained step policy, so every prompt gets the baseline ${p.baselineSteps} steps. ${train} for this model to predict fewer steps per prompt (it generates a reward table on this machine first).`);
  }
  if (!isMeasured(p)) lines.push('', `_${p.unmeasured[0].toUpperCase()}${p.unmeasured.slice(1)}; the steps above do not depend on it._`);
  lines.push('', `Model: ${code(modelName)}${generation ? ` · ${sampler(generation)}` : ''}`);
  const measured = generation?.policyMeasuredWith;
  if (measured) lines.push('', `⚠ The step policy was trained with ${sampler(measured)}: its steps and saving were measured for those.`);
  if (p.droppedTokens > 0) lines.push('', `⚠ ${p.droppedTokens} token${p.droppedTokens === 1 ? '' : 's'} past the text encoder's limit ${p.droppedTokens === 1 ? 'is' : 'are'} dropped: the end of this prompt has no effect.`);
  if (note) lines.push('', `_${note}_`);
  const args = commandArgs(uri, span);
  const links = [commandLink('Preview', ClientCommands.preview, args)];
  if (hasAssetTarget(span)) links.push(commandLink('Generate asset', ClientCommands.generateAsset, args));
  lines.push('', links.join(' · '));
  return lines.join('\n');
}

export function unavailableMarkdown(message: string, note?: string): string {
  return ['**AdaDiff: the model could not be loaded**', '', code(message), '', 'Fix `adadiff.model.path` (empty = the bundled model); the server retries on the next hover.', note ? `\n_${note}_` : '']
    .join('\n')
    .trimEnd();
}

const megabytes = (chars: number) => `${(chars / 1e6).toFixed(1)} MB`;

/** A document whose scan the time budget cut short (documents.ts): where nothing was found, say why. */
export function cutOffMarkdown(chars: number): string {
  return `**AdaDiff** stopped looking for prompts in this document (${megabytes(chars)}) after ${formatSeconds(SCAN_BUDGET_MS / 1000)}, so that the editor stays responsive: prompts it did not reach have no hover or CodeLens. A smaller file is scanned in full.`;
}

export function cutOffLensTitle(chars: number): string {
  return `AdaDiff: stopped looking for prompts after ${formatSeconds(SCAN_BUDGET_MS / 1000)} (${megabytes(chars)}); some have no lens`;
}
