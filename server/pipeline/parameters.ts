// The AUTOMATIC1111 `parameters` text: prompt, optional "Negative prompt:" line, then one line of
// "Key: value" pairs. Image viewers, civitai and A1111's "PNG info" all parse this form.
import type { SchedulerName } from '../model/contract';

export interface GenerationParameters {
  prompt: string;
  negativePrompt?: string;
  steps: number;
  scheduler: SchedulerName;
  guidance: number;
  seed: number;
  width: number;
  height: number;
  modelHash: string;
  modelName?: string;
  /** AdaDiff: what the policy predicted for this prompt (absent when the model has no policy). */
  predictedSteps?: number;
  /** AdaDiff: what the first-step-aware policy chose after the first UNet call, when it chose. */
  firstStepSteps?: number;
  baselineSteps: number;
}

export const SAMPLER_LABELS: Record<SchedulerName, string> = {
  ddim: 'DDIM',
  euler: 'Euler',
  'euler-a': 'Euler a',
  'dpmpp-2m': 'DPM++ 2M',
  'dpmpp-2m-karras': 'DPM++ 2M Karras',
  lcm: 'LCM',
};

// A1111 quotes a value that would break the comma-separated line.
const quote = (v: string) => (/[,:"\n]/.test(v) ? JSON.stringify(v) : v);

export function formatParameters(p: GenerationParameters): string {
  const fields: [string, string | number | undefined][] = [
    ['Steps', p.steps],
    ['Sampler', SAMPLER_LABELS[p.scheduler]],
    ['CFG scale', p.guidance],
    ['Seed', p.seed],
    ['Size', `${p.width}x${p.height}`],
    ['Model hash', p.modelHash.slice(0, 10)],
    ['Model', p.modelName],
    ['AdaDiff predicted steps', p.predictedSteps],
    ['AdaDiff first-step steps', p.firstStepSteps],
    ['AdaDiff baseline steps', p.baselineSteps],
  ];
  const line = fields
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}: ${quote(String(v))}`)
    .join(', ');
  const negative = p.negativePrompt ? `\nNegative prompt: ${p.negativePrompt}` : '';
  return `${p.prompt}${negative}\n${line}`;
}

/** Parse the text back into the prompt, negative prompt and the key/value fields. */
export function parseParameters(text: string): { prompt: string; negativePrompt?: string; fields: Record<string, string> } {
  const lines = text.split('\n');
  const last = lines.pop() ?? '';
  const fields: Record<string, string> = {};
  const re = /\s*([^:,]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)/g;
  for (const m of last.matchAll(re)) {
    fields[m[1].trim()] = m[2].startsWith('"') ? JSON.parse(m[2]) : m[2].trim();
  }
  const negAt = lines.findIndex((l) => l.startsWith('Negative prompt: '));
  if (negAt < 0) return { prompt: lines.join('\n'), fields };
  return {
    prompt: lines.slice(0, negAt).join('\n'),
    negativePrompt: lines.slice(negAt).join('\n').slice('Negative prompt: '.length),
    fields,
  };
}
