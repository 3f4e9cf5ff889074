// `adadiff sheet`: the same prompts at several step counts side by side, from one seed each.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { composeSheet, type SheetRow } from '../pipeline/sheet';
import { readPromptsFile, stepsOption, UsageError } from './args';
import { defineCommand, option, text } from './command';
import { withModel } from './context';
import { int, model, promptsFile, seed } from './options';
import { progressBar } from './progress';

export const sheetCommand = defineCommand({
  name: 'sheet',
  summary: "a labelled grid of prompts x step counts (auto = the policy's choice)",
  positionals: { usage: '(--prompts FILE | "PROMPT"...)', noun: 'prompt', min: 0, max: Infinity },
  options: {
    prompts: { ...promptsFile('the rows, instead of prompts on the command line'), inUsage: false },
    output: text('FILE.png', 'the sheet to write', { short: 'o', required: true }),
    model,
    steps: option('N,...', "the columns' step counts; auto: the step policy's choice", (t) => t.split(',').map((s) => stepsOption(s.trim())!), { default: () => [10, 25, 50] }),
    seed: { ...seed, default: () => 0, defaultText: undefined },
    scale: int('K', { min: 1, max: 8 }, 'pixels per image pixel', { default: () => 2 }),
  },
  async run(values, positionals, usage) {
    const prompts = values.prompts ? await readPromptsFile(values.prompts) : positionals;
    if (prompts.length === 0) throw new UsageError(`no prompts given\nusage: ${usage}`);
    const { steps, seed, scale } = values;
    return withModel(values.model, async (handle) => {
      const bar = progressBar('sheet');
      const rows: SheetRow[] = [];
      let autoSteps: number[] = [];
      for (const [i, prompt] of prompts.entries()) {
        const cells = [];
        for (const s of steps) {
          const out = await handle.render({ prompt, steps: s, seed });
          if (s === 'auto') autoSteps.push(out.parameters.steps);
          cells.push(out.result.image);
        }
        rows.push({ label: rowLabel(prompt, steps, autoSteps.at(-1)), cells });
        bar.update(i + 1, prompts.length);
      }
      bar.end();
      const columns = steps.map((s) => (s === 'auto' ? (handle.policy ? 'POLICY' : `AUTO ${handle.baselineSteps}`) : `${s} STEPS`));
      const file = resolve(values.output);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, composeSheet(columns, rows, scale));
      console.log(`${file}: ${prompts.length} prompts x ${steps.length} step counts, seed ${seed}`);
      return 0;
    });
  },
});

/** The row label; with an auto column it names the steps the policy chose for this prompt. */
function rowLabel(prompt: string, steps: (number | 'auto')[], auto: number | undefined): string {
  return steps.includes('auto') && auto !== undefined ? `${prompt} (${auto})` : prompt;
}
