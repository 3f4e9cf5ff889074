// The render worker's side of "Generate all assets": the same generateAssets the CLI runs, on the
// worker thread (every UNet call blocks the thread it runs on; hovers live on the main thread).
// Plan and progress go back as messages; the run's own AbortSignal comes from the main thread's
// cancel, and a cancelled run still answers with its summary (the finished images stay).
import { type AssetPlan, type AssetProgress, type AssetSummary, generateAssets, type GenerateAssetsOptions } from '../assets';
import type { Engines } from './handles';

/** What the main thread sends; the model folder and providers are the ones hovers use. */
export interface AssetsJob {
  kind: 'assets';
  id: number;
  cacheDir: string;
  model: string;
  providers: string[];
  options: Pick<GenerateAssetsOptions, 'root' | 'only' | 'force' | 'dryRun' | 'check' | 'trusted'>;
}

export type AssetsMessage = { kind: 'assets-plan'; id: number; plan: AssetPlan } | { kind: 'assets-progress'; id: number; progress: AssetProgress };

/**
 * No generation defaults from the editor's settings here, unlike previews: an asset must come out
 * the same from `adadiff assets` in CI as from the editor, so both use the model's own defaults
 * (its policy manifest's scheduler and guidance) and the lock's seed rule.
 */
export function runAssetsJob(job: AssetsJob, engines: Engines, signal: AbortSignal, post: (msg: AssetsMessage) => void): Promise<AssetSummary> {
  return generateAssets(
    { ...job.options, model: job.model, engine: engines.get(job.providers) },
    {
      signal,
      onPlan: (plan) => post({ kind: 'assets-plan', id: job.id, plan }),
      onProgress: (progress) => post({ kind: 'assets-progress', id: job.id, progress }),
    },
  );
}
