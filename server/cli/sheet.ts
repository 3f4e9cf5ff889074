// `adadiff sheet`: the same prompts at several step counts side by side, from one seed each.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { composeSheet, type SheetRow } from '../pipeline/sheet';
import { bundledModelDir, type Command, intOption, modelOption, parse, readPromptsFile, seedOption, stepsOption, UsageError } from './args';
import { cliEngine } from './context';
import { progressBar } from './progress';

const usage = 'adadiff sheet (--prompts FILE | "PROMPT"...) -o FILE.png [--model DIR] [--steps 10,25,50,auto] [--seed N] [--scale 2]';

export const sheetCommand: Command = {
  name: 'sheet',
  summary: 'a labelled grid of prompts x step counts (auto = the policy\'s choice)',
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      { ...modelOption, prompts: { type: 'string' }, output: { type: 'string', short: 'o' }, steps: { type: 'string' }, seed: { type: 'string' }, scale: { type: 'string' } },
      usage,
    );
    if (!values.output) throw new UsageError(`missing -o FILE\nusage: ${usage}`);
    const prompts = values.prompts ? await readPromptsFile(values.prompts) : positionals;
    if (prompts.length === 0) throw new UsageError(`no prompts given\nusage: ${usage}`);
    const steps = (values.steps ?? '10,25,50').split(',').map((s) => stepsOption(s.trim())!);
    const seed = seedOption(values.seed) ?? 0;
    const scale = intOption('scale', values.scale, 1, 8) ?? 2;
    const engine = cliEngine();
    try {
      const handle = await engine.open(values.model ?? bundledModelDir());
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
    } finally {
      await engine.dispose();
    }
  },
};

/** The row label; with an auto column it names the steps the policy chose for this prompt. */
function rowLabel(prompt: string, steps: (number | 'auto')[], auto: number | undefined): string {
  return steps.includes('auto') && auto !== undefined ? `${prompt} (${auto})` : prompt;
}
