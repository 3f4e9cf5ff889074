// `adadiff assets`: generate the images a docs folder or repository asks for (Markdown images,
// `prompt` fences with `out:`, adadiff.yaml/json), only what is missing or stale; `--check` for CI.
import { resolve } from 'node:path';
import { describeAsset, describePlan, describeSummary, generateAssets } from '../assets';
import { UsageError } from './args';
import { defineCommand, flag } from './command';
import { withEngine } from './context';
import { json, model, poolOptions } from './options';
import { describePoolProgress, withPool } from '../pool/session';
import { poolSpec } from './pool';
import { progressBar } from './progress';

export const assetsCommand = defineCommand({
  name: 'assets',
  summary: 'generate missing or stale images from Markdown and adadiff.yaml; --check for CI',
  positionals: { usage: '[DIR]', noun: 'folder', min: 0, max: 1 },
  options: {
    check: flag('only say what is missing, stale or modified, and exit 1 if anything is; loads no model'),
    force: flag('overwrite images edited since they were generated, or that no lock entry accounts for'),
    'dry-run': flag('plan and estimate, write nothing'),
    model: { ...model, help: 'the model for targets that name none' },
    ...poolOptions,
    json,
  },
  run: (values, positionals, usage) =>
    withEngine(async (engine) => {
      if (values.check && (values.force || values['dry-run'])) throw new UsageError(`--check only reports; it takes neither --force nor --dry-run\nusage: ${usage}`);
      const root = resolve(positionals[0] ?? '.');
      const controller = new AbortController();
      // First Ctrl-C: finish cleanly after the current step (every finished image stays, the lock is
      // consistent); a second one exits at once, which is as safe, just less tidy.
      const onSignal = () => {
        if (controller.signal.aborted) process.exit(130);
        console.error('\ncancelling (Ctrl-C again to quit at once)');
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      const bar = values.json ? undefined : progressBar('assets');
      let poolLine = '';
      try {
        // A check or dry run renders nothing: it needs no pool.
        const spec = values.check || values['dry-run'] ? undefined : poolSpec(values);
        const summary = await withPool(spec, (p) => (poolLine = describePoolProgress(p)), (pool) => generateAssets(
          { root, model: values.model, engine, check: values.check, dryRun: values['dry-run'], force: values.force, renderer: pool?.assets() },
          {
            signal: controller.signal,
            onPlan: (plan) => {
              if (!values.json && plan.todo.length) console.error(describePlan(plan));
            },
            onProgress: (p) => {
              if (p.phase === 'render') bar?.update(p.done, p.total, poolLine ? `eta ${(p.etaSeconds ?? 0).toFixed(1)}s ${poolLine}` : `${p.out} ${p.step ?? 0}/${p.steps ?? '?'} eta ${(p.etaSeconds ?? 0).toFixed(1)}s`);
            },
          },
        ));
        bar?.end();
        if (values.json) console.log(JSON.stringify(summary, null, 2));
        else {
          for (const w of summary.warnings) console.error(`warning: ${w}`);
          for (const p of summary.problems) console.error(`error: ${p.source}: ${p.message}`);
          for (const a of summary.assets) if (a.state !== 'current' || a.action !== 'skipped') console.log(describeAsset(a));
          if (summary.orphans.length && summary.mode !== 'generate') console.log(`lock entries no target asks for: ${summary.orphans.join(', ')}`);
          console.log(describeSummary(summary));
        }
        return summary.cancelled ? 130 : summary.ok ? 0 : 1;
      } catch (err) {
        bar?.end();
        throw err;
      } finally {
        process.off('SIGINT', onSignal);
      }
    }),
});
